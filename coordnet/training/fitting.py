"""Fit one image with one network through the Lightning path, recording PSNR and time.

Shared by ``coordnet demo`` and ``scripts/bench_fit.py``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from pytorch_lightning import Callback, LightningModule, Trainer, seed_everything

from coordnet.data import ImageDataModule
from coordnet.models import Activation, ReLU, Sine
from coordnet.training.module import CoordNetModule
from coordnet.training.trainer import make_trainer
from coordnet.training.metrics import prediction_psnr


@dataclass
class NetworkSpec:
    """A named network recipe: activation (with its own init, ``Activation.default_init``), Adam learning rate,
    hidden × depth."""

    name: str
    activation: Activation
    lr: float
    hidden: int = 256
    depth: int = 3


def siren_and_relu() -> list[NetworkSpec]:
    """SIREN 3×256 (ω0 = 30, lr 1e-4; sine's init, SIREN's) and ReLU 3×256 (lr 1e-3; ReLU's init, He)."""
    return [NetworkSpec("sine", Sine(30.0), 1e-4), NetworkSpec("relu", ReLU(), 1e-3)]


class PSNRRecorder(Callback):
    """Records the PSNR of the model on the whole training set after chosen steps, and step times."""

    def __init__(self, at_steps: tuple[int, ...] = ()) -> None:
        self.at_steps = set(at_steps)
        self.psnr: dict[int, float] = {}
        self.step_ends: list[float] = []

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int) -> None:
        self.step_ends.append(time.perf_counter())
        if trainer.global_step in self.at_steps:
            dm = trainer.datamodule
            self.psnr[trainer.global_step] = prediction_psnr(pl_module, dm.train_x, dm.train_y, dm.data_range)
            self.step_ends[-1] = time.perf_counter()  # do not count the evaluation as training time

    def step_time(self, skip: int = 5) -> float:
        """Median seconds per step, leaving out the first ``skip`` steps (warm-up)."""
        gaps = sorted(b - a for a, b in zip(self.step_ends[skip:], self.step_ends[skip + 1:]))
        return gaps[len(gaps) // 2] if gaps else float("nan")


@dataclass
class FitResult:
    spec: NetworkSpec
    init: str  # the init the network was built with (its activation's default)
    final_psnr: float
    psnr_at: dict[int, float]
    step_time: float
    seconds: float
    log_dir: str
    device: str = "cpu"


def fit_image(spec: NetworkSpec, image: str = "camera", resolution: int = 128, steps: int = 500,
              record_steps: tuple[int, ...] = (), save_dir: str = "runs", progress: bool = True, seed: int = 0,
              **trainer_kwargs) -> FitResult:
    """Fit ``image`` at ``resolution``² (protocol memorize, full batch) for ``steps`` Adam steps.

    The initial weights come from ``seed``; ``trainer_kwargs`` go to ``make_trainer`` (e.g. ``accelerator="cpu"``).
    """
    seed_everything(seed, verbose=False)
    datamodule = ImageDataModule(image, resolution)
    module = CoordNetModule(datamodule.in_features, datamodule.out_features, spec.hidden, spec.depth,
                            spec.activation, lr=spec.lr, reconstruction_every_n_steps=max(steps // 4, 1))
    recorder = PSNRRecorder(tuple(record_steps) + (steps,))
    trainer = make_trainer(save_dir, f"{image}_{spec.name}", max_steps=steps, callbacks=[recorder],
                           enable_progress_bar=progress, **trainer_kwargs)
    start = time.perf_counter()
    trainer.fit(module, datamodule)
    seconds = time.perf_counter() - start
    return FitResult(spec, module.model.init, recorder.psnr[steps], {k: recorder.psnr[k] for k in sorted(record_steps)},
                     recorder.step_time(), seconds, trainer.log_dir, str(trainer.strategy.root_device))
