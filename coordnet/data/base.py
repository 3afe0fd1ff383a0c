"""``CoordDataModule``: a sampled signal held as two tensors on the model's device.

Every data module in coordnet produces coordinates X (N, d) and targets Y (N, O) once, in
``setup``, on the device the Trainer runs on. Training draws from them with no DataLoader: the
train loader is a ``BatchStream``, which yields either the whole training set (full batch) or a random
batch of ``batch_size`` rows per step, indexed on the device. The stream never ends; ``max_steps``
bounds training (one long epoch).

Random batches are a function of (seed, step) alone, and the module saves the step it has reached
in checkpoints, so a resumed run draws the same batches as an uninterrupted one.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterator, Literal

import numpy as np
import torch
from pytorch_lightning import LightningDataModule
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset

Protocol = Literal["memorize", "fourier"]

MAX_SEED = 2**32 - 1


def check_seed(name: str, seed: int) -> int:
    """Raise a ValueError naming ``name`` unless ``seed`` is an integer in [0, 2³² − 1] (NumPy's range)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{name} must be an integer in [0, {MAX_SEED}], got {seed!r}")
    return seed


def stratified_grid_indices(shape: tuple[int, ...], num_points: int, generator: torch.Generator) -> Tensor:
    """``num_points`` distinct row-major indices into a grid of ``shape``, spread evenly over it.

    The grid is cut into k_1 × … × k_d near-equal cells, k_i = ⌈shape_i · (num_points / size)^(1/d)⌉
    (so Π k_i ≥ num_points and k_i ≤ shape_i); one uniformly drawn point per cell, then ``num_points``
    of the cells drawn without replacement. Returned sorted.
    """
    size = math.prod(shape)
    if not 0 < num_points <= size:
        raise ValueError(f"need 0 < num_points ≤ {size} grid points, got {num_points}")
    fraction = (num_points / size) ** (1 / len(shape))
    cells = [min(n, math.ceil(n * fraction - 1e-9)) for n in shape]  # 1e-9: 32.000000001 is 32 cells
    axes = []
    for n, k in zip(shape, cells):
        edges = torch.arange(k + 1) * n // k  # cell i spans [edges[i], edges[i+1]), never empty as k ≤ n
        width = edges[1:] - edges[:-1]
        axes.append(edges[:-1] + (torch.rand(k, generator=generator) * width).long())
    points = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(shape))
    points = points[torch.randperm(points.shape[0], generator=generator)[:num_points]]
    strides = torch.tensor([math.prod(shape[i + 1:]) for i in range(len(shape))])
    return (points * strides).sum(-1).sort().values


class BatchStream(IterableDataset):
    """Endless stream of (x, y) batches: the full set, or `batch_size` rows drawn by (seed, step).

    Under data-parallel training with ``world`` processes, process ``rank`` yields rows rank, rank + world, …
    of that global batch, so the processes share out one batch (the full set, or the same `batch_size` rows)
    and their averaged gradients are the single-process gradient of it (exactly, when `world` divides it).
    """

    def __init__(self, x: Tensor, y: Tensor, batch_size: int | None, seed: int, start_step: int = 0,
                 rank: int = 0, world: int = 1) -> None:
        self.x, self.y, self.batch_size, self.seed, self.start_step = x, y, batch_size, seed, start_step
        self.rank, self.world = rank, world

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = self.x.shape[0]
        if self.batch_size is None or self.batch_size >= n:
            x, y = self.x, self.y  # the resident tensors themselves, no copy
            if self.world > 1:
                x, y = x[self.rank::self.world].contiguous(), y[self.rank::self.world].contiguous()
            while True:
                yield x, y
        generator = torch.Generator(device=self.x.device)
        step = self.start_step
        while True:
            generator.manual_seed(self.seed * 1_000_003 + step)
            idx = torch.randint(n, (self.batch_size,), device=self.x.device, generator=generator)
            idx = idx[self.rank::self.world]
            yield self.x[idx], self.y[idx]
            step += 1


def refuse_sizes(data: "CoordDataModule", asked: dict[str, Any], allowed: tuple[str, ...]) -> None:
    """Raise a ValueError naming the first size in ``asked`` that is given but not ``allowed`` for ``data``, or that
    is not a positive number."""
    for key, value in asked.items():
        if value is None:
            continue
        if key not in allowed:
            kinds = " or ".join(f"--{k}" for k in allowed) or "no size (it renders its own points)"
            raise ValueError(f"--{key}: {type(data).__name__} takes {kinds}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"--{key}: expected a positive number, got {value!r}")


class CoordDataModule(LightningDataModule):
    """The data, one of ImageDataModule, SignalDataModule, MemorizationDataModule (--data.help NAME lists its keys).

    The base of the image, signal and memorisation data modules.

    Subclasses set ``in_features``, ``out_features`` and ``data_range`` in ``__init__`` (the CLI
    links them into the model) and implement ``_build`` and ``log_reconstruction``.

    After ``setup``: ``coords``/``values`` are the whole grid (N, d)/(N, O); ``train_x``/``train_y``
    the training split; ``test_x``/``test_y`` the test split or None (protocol ``memorize``).
    """

    in_features: int
    out_features: int
    data_range: float

    def __init__(self, protocol: Protocol = "memorize", batch_size: int | None = None, seed: int = 0) -> None:
        super().__init__()
        if protocol not in ("memorize", "fourier"):
            raise ValueError(f"protocol must be 'memorize' or 'fourier', got {protocol!r}")
        if batch_size is not None and (isinstance(batch_size, bool) or batch_size <= 0):
            raise ValueError(f"batch_size must be a positive integer or null (full batch), got {batch_size!r}")
        check_seed("data.seed", seed)
        # the subclass's settings go into checkpoints, so a resume can be checked against them
        self.save_hyperparameters()
        # so that CoordDataModule.load_from_checkpoint rebuilds the subclass, as for a checkpoint the CLI wrote
        self.hparams.setdefault("_class_path", f"{type(self).__module__}.{type(self).__qualname__}")
        self.hparams.setdefault("_instantiator", "pytorch_lightning.cli.instantiate_module")
        self.protocol, self.batch_size, self.seed = protocol, batch_size, seed
        self.coords = self.values = self.train_x = self.train_y = None
        self.test_x: Tensor | None = None
        self.test_y: Tensor | None = None
        self._start_step = 0

    def _build(self) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """(coords (N, d), values (N, O), train indices, test indices or None), on the CPU."""
        raise NotImplementedError

    def setup(self, stage: str | None = None, device: torch.device | str | None = None) -> None:
        """Build the tensors on ``device`` (default: the attached Trainer's device, else CPU)."""
        if device is None:
            device = self.trainer.strategy.root_device if self.trainer is not None else "cpu"
        coords, values, train_idx, test_idx = self._build()
        self.coords, self.values = coords.to(device), values.to(device)
        self.train_x, self.train_y = self.coords[train_idx], self.values[train_idx]
        if test_idx is not None:
            self.test_x, self.test_y = self.coords[test_idx], self.values[test_idx]

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        # The batches are slices of the tensors setup() put on the Trainer's device; Lightning's generic move
        # would walk them anyway, ~0.07 ms a step (1% of a 64² step on a CPU).
        if isinstance(batch, tuple) and all(isinstance(t, Tensor) and t.device == device for t in batch):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    @property
    def train_grid_shape(self) -> tuple[int, ...] | None:
        """Shape of the grid the training points form in row-major order, or None if they are scattered."""
        return None

    def probe_indices(self, num_points: int, seed: int = 0) -> Tensor:
        """Indices (sorted, into ``train_x``) of ``num_points`` training points for measurements like the NTK.

        Spread over the training grid when there is one (``stratified_grid_indices``), else a uniform
        random subset; all training points when there are no more than ``num_points``. Seeded by ``seed``
        alone, on a private generator: the global RNG is not touched.
        """
        if self.train_x is None:
            raise RuntimeError("probe_indices needs the data: call setup() first")
        if isinstance(num_points, bool) or not isinstance(num_points, int) or num_points <= 0:
            raise ValueError(f"num_points must be a positive integer, got {num_points!r}")
        total = self.train_x.shape[0]
        if num_points >= total:
            return torch.arange(total)
        generator = torch.Generator().manual_seed(seed)
        shape = self.train_grid_shape
        if shape is None:
            return torch.randperm(total, generator=generator)[:num_points].sort().values
        return stratified_grid_indices(shape, num_points, generator)

    def train_dataloader(self) -> BatchStream:
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer is not None else (0, 1)
        rows = min(self.batch_size or self.train_x.shape[0], self.train_x.shape[0])
        if rows < world:
            raise ValueError(f"batch_size {self.batch_size}: {rows} rows per step cannot be shared out over {world} "
                             "processes; expected at least one per process")
        # Lightning iterates it as it is; a DataLoader around it would cost ~25 µs a step and add nothing
        return BatchStream(self.train_x, self.train_y, self.batch_size, self.seed, self._start_step, rank, world)

    def val_dataloader(self) -> DataLoader | list:
        if self.test_x is None:
            return []
        return DataLoader([(self.test_x, self.test_y)], batch_size=None)

    def test_dataloader(self) -> DataLoader:
        """The test split, or every point when there is none (``memorize``): what ``coordnet test`` scores."""
        if self.test_x is None:
            return DataLoader([(self.coords, self.values)], batch_size=None)
        return DataLoader([(self.test_x, self.test_y)], batch_size=None)

    def state_dict(self) -> dict:
        # The optimiser step reached, not the batches produced: the loader prefetches one ahead.
        return {"step": self.trainer.global_step if self.trainer is not None else 0}

    def load_state_dict(self, state_dict: dict) -> None:
        self._start_step = int(state_dict.get("step", 0))

    def log_reconstruction(self, writer, prediction: Tensor, step: int) -> None:
        """Write the model's `prediction` on ``coords`` (N, O) to a TensorBoard ``SummaryWriter``."""
        raise NotImplementedError

    # What ``coordnet predict`` renders: the data's grid at another size, written in the data's own format.

    @property
    def grid_shape(self) -> tuple[int, ...] | None:
        """Shape of the grid ``coords`` form in row-major order (all points, both splits), or None if scattered."""
        return None

    def render_shape(self, resolution: int | None = None, scale: float | None = None, num_samples: int | None = None,
                     sample_rate: float | None = None) -> tuple[int, ...] | None:
        """The grid ``coordnet predict`` renders: ``grid_shape`` here, refusing any size asked for; images take a
        ``resolution`` or ``scale``, signals a ``num_samples``, ``sample_rate`` or ``scale``."""
        asked = {"resolution": resolution, "scale": scale, "num_samples": num_samples, "sample_rate": sample_rate}
        refuse_sizes(self, asked, allowed=())
        return self.grid_shape

    def grid(self, shape: tuple[int, ...]) -> Tensor:
        """Coordinates (Π shape, d) of a row-major grid of ``shape`` over the data's domain."""
        raise ValueError(f"{type(self).__name__}: its points are scattered, not a grid; they can be predicted only "
                         "where they are")

    @property
    def prediction_format(self) -> str:
        """The file suffix ``coordnet predict`` writes by default."""
        return ".npy"

    def save_prediction(self, values: np.ndarray, path: Path) -> None:
        """Write ``values`` (grid shape + (O,), or (N, O) for scattered points) to ``path``: ``.npy`` here;
        subclasses add their formats (PNG, WAV)."""
        if path.suffix.lower() != ".npy":
            raise ValueError(f"output '{path}': {type(self).__name__} writes .npy, got {path.suffix or 'no suffix'}")
        with open(path, "wb") as file:
            np.save(file, values.astype(np.float32))
