"""``DivergenceGuard``: stop training at the first NaN or infinite loss, and never checkpoint diverged parameters.

Each step's loss stays on its device as it is computed; the losses are checked together when the Trainer
writes logs (every ``log_every_n_steps`` steps, where the logged loss waits for the device anyway), before
every checkpoint is written and when training ends, so a GPU run never stops to wait for the check. A
checkpoint whose parameters are not all finite (a finite loss whose update overflowed) is refused too.
Either way ``TrainingDiverged`` is raised before the checkpoint is written, so the last good one is kept;
the message names the step, the loss and that checkpoint.

Checkpoints saved with ``save_weights_only`` skip callback hooks, so they are not guarded. Under DDP each process
checks the loss of its own share of the batch: the process that sees a non-finite loss raises, and Lightning's
launcher stops the others.
"""

from __future__ import annotations

from pathlib import Path

import torch
from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.callbacks import ModelCheckpoint
from torch import Tensor


class TrainingDiverged(RuntimeError):
    """Training produced a NaN or infinite loss or parameters; the message names the step and the last good
    checkpoint."""


def diverged(trainer: Trainer, step: int, what: str) -> TrainingDiverged:
    """The error for divergence at ``step``, naming the newest checkpoint file: the ``ModelCheckpoint`` files
    and the checkpoint resumed from, which all hold finite parameters since the guard refuses the others."""
    paths = [str(trainer.ckpt_path)] if trainer.ckpt_path else []
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint):
            paths += [callback.last_model_path, callback.best_model_path, *callback.best_k_models]
    files = [Path(p) for p in paths if p and Path(p).is_file()]
    if not files:
        return TrainingDiverged(f"training diverged at step {step}: {what}; no checkpoint was saved before it")
    newest = max(files, key=lambda f: f.stat().st_mtime_ns)
    saved_at = torch.load(newest, map_location="cpu", weights_only=False, mmap=True)["global_step"]
    return TrainingDiverged(f"training diverged at step {step}: {what}; last good checkpoint: {newest} "
                            f"(step {saved_at})")


class DivergenceGuard(Callback):
    """Raise ``TrainingDiverged`` at the first NaN or infinite loss or checkpoint (see the module docstring)."""

    def __init__(self) -> None:
        self.pending: list[tuple[int, Tensor]] = []  # (step, loss) not checked yet

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.pending = []

    def on_before_backward(self, trainer: Trainer, pl_module: LightningModule, loss: Tensor) -> None:
        # global_step is the number of optimiser steps taken: the step train/loss is logged at
        self.pending.append((trainer.global_step, loss.detach()))

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int) -> None:
        if trainer.log_every_n_steps and trainer.global_step % trainer.log_every_n_steps == 0:
            self._check_losses(trainer)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._check_losses(trainer)

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict) -> None:
        self._check_losses(trainer)
        if not all(torch.isfinite(t).all() for t in checkpoint["state_dict"].values() if t.is_floating_point()):
            raise diverged(trainer, trainer.global_step, "the parameters are NaN or infinite")

    def _check_losses(self, trainer: Trainer) -> None:
        if not self.pending:
            return
        steps, losses = zip(*self.pending)
        self.pending = []
        finite = torch.isfinite(torch.stack(losses)).cpu()  # the one wait for the device
        if not finite.all():
            first = int((~finite).nonzero()[0])
            raise diverged(trainer, steps[first], f"the loss is {losses[first].item()}")
