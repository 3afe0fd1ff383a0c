"""``CoordDataModule``: a sampled signal held as two tensors on the model's device.

Every data module in coordnet produces coordinates X (N, d) and targets Y (N, O) once, in
``setup``, on the device the Trainer runs on. Training draws from them with no per-sample
DataLoader: the train loader yields either the whole training set (full batch) or a random batch
of ``batch_size`` rows per step, indexed on the device. The stream never ends; ``max_steps``
bounds training (one long epoch).

Random batches are a function of (seed, step) alone, and the module saves the step it has reached
in checkpoints, so a resumed run draws the same batches as an uninterrupted one.
"""

from __future__ import annotations

import warnings
from typing import Iterator, Literal

import torch
from pytorch_lightning import LightningDataModule
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset

Protocol = Literal["memorize", "fourier"]

# The data already lives on the device: loader workers would only add copies. A data set without a
# test split returns an empty validation loader on purpose.
warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*Total length of `list` across ranks is zero.*")


class BatchStream(IterableDataset):
    """Endless stream of (x, y) batches: the full set, or `batch_size` rows drawn by (seed, step)."""

    def __init__(self, x: Tensor, y: Tensor, batch_size: int | None, seed: int, start_step: int = 0) -> None:
        self.x, self.y, self.batch_size, self.seed, self.start_step = x, y, batch_size, seed, start_step

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = self.x.shape[0]
        if self.batch_size is None or self.batch_size >= n:
            while True:
                yield self.x, self.y
        generator = torch.Generator(device=self.x.device)
        step = self.start_step
        while True:
            generator.manual_seed(self.seed * 1_000_003 + step)
            idx = torch.randint(n, (self.batch_size,), device=self.x.device, generator=generator)
            yield self.x[idx], self.y[idx]
            step += 1


class CoordDataModule(LightningDataModule):
    """Base of the image, signal and memorisation data modules.

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

    def train_dataloader(self) -> DataLoader:
        stream = BatchStream(self.train_x, self.train_y, self.batch_size, self.seed, self._start_step)
        return DataLoader(stream, batch_size=None)

    def val_dataloader(self) -> DataLoader | list:
        if self.test_x is None:
            return []
        return DataLoader([(self.test_x, self.test_y)], batch_size=None)

    def state_dict(self) -> dict:
        # The optimiser step reached, not the batches produced: the loader prefetches one ahead.
        return {"step": self.trainer.global_step if self.trainer is not None else 0}

    def load_state_dict(self, state_dict: dict) -> None:
        self._start_step = int(state_dict.get("step", 0))

    def log_reconstruction(self, writer, prediction: Tensor, step: int) -> None:
        """Write the model's `prediction` on ``coords`` (N, O) to a TensorBoard ``SummaryWriter``."""
        raise NotImplementedError
