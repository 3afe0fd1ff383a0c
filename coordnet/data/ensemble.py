"""``EnsembleDataModule``: the data of M ensemble members, as member-major tensors resident on the device.

Each member has its own data module (an image, a signal, a memorisation set); members whose configs are equal
share one. After ``setup``:

- ``train_x``: (N, d) when every member trains on the same points (one image for all, or M images on one grid),
  else (M, N, d) (M memorisation sets of N points each); likewise ``test_x``, or None without a test split;
- ``train_y``: (M, N, O), member m's targets in row m; likewise ``test_y``;
- ``data_range``: (M,) tensor, each member's peak-to-peak range R (PSNR = 10·log10(R²/MSE)).

Batches are (x, y) with those layouts: the whole training split, or ``batch_size`` rows drawn by (seed, step)
and shared by every member (then every member must use one ``batch_size`` and one data seed, so that each
member sees the batches its single run would).
"""

from __future__ import annotations

from typing import Any, Iterator

import torch
from pytorch_lightning import LightningDataModule
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset

from coordnet.data.base import BatchStream, CoordDataModule
from coordnet.models.config import build_part


def data_config(data: CoordDataModule) -> dict[str, Any]:
    """A data module's ``{class_path, init_args}`` config, from its saved hyper-parameters."""
    args = {k: v for k, v in data.hparams.items() if not k.startswith("_")}
    return {"class_path": f"{type(data).__module__}.{type(data).__qualname__}", "init_args": args}


class _MemberMajor(IterableDataset):
    """Endless member-major batches, x (B, d) or (M, B, d) and y (M, B, O): the resident tensors themselves under
    full-batch training, else a ``BatchStream`` over point-major views ((N, M, ·): one row index picks a point of
    every member), transposed back."""

    def __init__(self, x: Tensor, y: Tensor, batch_size: int | None, seed: int, start_step: int) -> None:
        self.x, self.y, self.batch_size, self.seed, self.start_step = x, y, batch_size, seed, start_step

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        if self.batch_size is None or self.batch_size >= self.x.shape[-2]:
            while True:
                yield self.x, self.y
        point_major = lambda t: t if t.ndim == 2 else t.transpose(0, 1)  # noqa: E731  (M, N, ·) → (N, M, ·)
        for x, y in BatchStream(point_major(self.x), point_major(self.y), self.batch_size, self.seed, self.start_step):
            yield (x if x.ndim == 2 else x.transpose(0, 1)), y.transpose(0, 1)


class EnsembleDataModule(LightningDataModule):
    """The members' data (see the module docstring).

    Args:
        member_data: each member's data, as a ``CoordDataModule`` or its ``{class_path, init_args}`` config (the
            ``data:`` section of its config).
    """

    def __init__(self, member_data: list[dict[str, Any] | CoordDataModule]) -> None:
        super().__init__()
        if not member_data:
            raise ValueError("EnsembleDataModule: expected at least one member's data")
        configs = [data_config(m) if isinstance(m, CoordDataModule) else m for m in member_data]
        self.save_hyperparameters({"member_data": configs})
        built: dict[str, CoordDataModule] = {}
        self.members: list[CoordDataModule] = []
        for member, config in zip(member_data, configs):
            key = repr(config)
            if key not in built:
                built[key] = build_part(member, CoordDataModule, what="ensemble data")
            self.members.append(built[key])
        self._check_compatible()
        first = self.members[0]
        self.in_features, self.out_features = first.in_features, first.out_features
        self.batch_size, self.seed = first.batch_size, first.seed
        self.train_x = self.train_y = self.test_x = self.test_y = self.coords = None
        self.data_range = torch.tensor([m.data_range for m in self.members], dtype=torch.float32)
        self._start_step = 0

    def _check_compatible(self) -> None:
        first = self.members[0]
        for m, data in enumerate(self.members[1:], 1):
            for key in ("in_features", "out_features", "protocol", "batch_size"):
                if getattr(data, key) != getattr(first, key):
                    raise ValueError(f"ensemble data: member {m} has {key} {getattr(data, key)!r}, member 0 "
                                     f"{getattr(first, key)!r}; an ensemble's members share them")
            if first.batch_size is not None and data.seed != first.seed:
                raise ValueError(f"ensemble data: member {m} has data.seed {data.seed}, member 0 {first.seed}; with "
                                 f"random batches (batch_size {first.batch_size}) every member draws the same rows, "
                                 "so they need one seed")

    @property
    def num_members(self) -> int:
        return len(self.members)

    def setup(self, stage: str | None = None, device: torch.device | str | None = None) -> None:
        """Build every distinct member's data on ``device`` (default: the Trainer's, else CPU) and stack it."""
        if device is None:
            device = self.trainer.strategy.root_device if self.trainer is not None else "cpu"
        distinct = list({id(m): m for m in self.members}.values())
        for data in distinct:
            data.setup(stage, device)
        self.coords = self._points([m.coords for m in self.members], "coordinates")
        self.values = torch.stack([m.values for m in self.members])
        self.train_x = self._points([m.train_x for m in self.members], "training points")
        self.train_y = torch.stack([m.train_y for m in self.members])
        if self.members[0].test_x is not None:
            self.test_x = self._points([m.test_x for m in self.members], "test points")
            self.test_y = torch.stack([m.test_y for m in self.members])
        self.data_range = self.data_range.to(device)

    def _points(self, points: list[Tensor], what: str) -> Tensor:
        """(N, d) when every member's points are equal, else (M, N, d)."""
        if all(p is points[0] or torch.equal(p, points[0]) for p in points[1:]):
            return points[0]
        for m, p in enumerate(points[1:], 1):
            if p.shape != points[0].shape:
                raise ValueError(f"ensemble data: member {m} has {p.shape[0]} {what}, member 0 {points[0].shape[0]}; "
                                 "an ensemble's members need as many points each")
        return torch.stack(points)

    def probe_indices(self, num_points: int, seed: int = 0) -> Tensor:
        """Member 0's ``probe_indices``: every member's training points are laid out alike."""
        return self.members[0].probe_indices(num_points, seed)

    def train_dataloader(self) -> _MemberMajor:
        return _MemberMajor(self.train_x, self.train_y, self.batch_size, self.seed, self._start_step)

    def val_dataloader(self) -> DataLoader | list:
        return [] if self.test_x is None else DataLoader([(self.test_x, self.test_y)], batch_size=None)

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        if isinstance(batch, tuple) and all(isinstance(t, Tensor) and t.device == device for t in batch):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def state_dict(self) -> dict:
        return {"step": self.trainer.global_step if self.trainer is not None else 0}

    def load_state_dict(self, state_dict: dict) -> None:
        self._start_step = int(state_dict.get("step", 0))
