"""``DivergenceGuard``: stop training at the first NaN or infinite loss, and never checkpoint diverged parameters.

Each step's loss stays on its device as it is computed; the losses are checked together when the Trainer
writes logs (every ``log_every_n_steps`` steps, where the logged loss waits for the device anyway), before
every checkpoint is written and when training ends, so a GPU run never stops to wait for the check. A
checkpoint whose parameters are not all finite (a finite loss whose update overflowed) is refused too.
Either way ``TrainingDiverged`` is raised before the checkpoint is written, so the last good one is kept;
the message names the step, the loss and that checkpoint. The parameters are checked by the writer itself
(``SafeCheckpointIO``), so checkpoints saved with ``save_weights_only``, which skip callback hooks, are refused
too. A non-finite loss at step 0, before any update, is an input or configuration fault, not divergence: the
message says which (the network's output at initialisation, or the targets' squared error). Under DDP each process
checks the loss of its own share of the batch: the process that sees a non-finite loss raises, and Lightning's
launcher stops the others.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import torch
from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.callbacks import ModelCheckpoint
from torch import Tensor


class TrainingDiverged(RuntimeError):
    """Training produced a NaN or infinite loss or parameters; the message names the step and the last good
    checkpoint."""


def non_finite_entries(state_dict: dict) -> list[str]:
    """Names of the floating-point tensors of ``state_dict`` with a NaN or infinite entry."""
    return [name for name, t in state_dict.items()
            if isinstance(t, Tensor) and t.is_floating_point() and not torch.isfinite(t).all()]


def last_good_checkpoint(paths: Iterable[str | Path]) -> str:
    """"last good checkpoint: <the newest of ``paths`` that is a file> (step s)", or that there is none. Every
    checkpoint coordnet writes holds finite parameters (``SafeCheckpointIO`` refuses the others)."""
    files = [Path(p) for p in paths if p and Path(p).is_file()]
    if not files:
        return "no checkpoint was saved before it"
    newest = max(files, key=lambda f: f.stat().st_mtime_ns)
    saved_at = torch.load(newest, map_location="cpu", weights_only=True, mmap=True)["global_step"]
    return f"last good checkpoint: {newest} (step {saved_at})"


def diverged(trainer: Trainer, step: int, what: str) -> TrainingDiverged:
    """The error for divergence at ``step``, naming the newest checkpoint file: the ``ModelCheckpoint`` files
    and the checkpoint resumed from."""
    paths = [str(trainer.ckpt_path)] if trainer.ckpt_path else []
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint):
            paths += [callback.last_model_path, callback.best_model_path, *callback.best_k_models]
    return TrainingDiverged(f"training diverged at step {step}: {what}; {last_good_checkpoint(paths)}")


def initial_fault(pl_module: LightningModule, datamodule: object) -> str:
    """Why the loss before any update is not finite: the network's output at initialisation, or the targets."""
    x, y = getattr(datamodule, "train_x", None), getattr(datamodule, "train_y", None)
    if x is None or y is None:
        return "the network's output or the targets are not finite"
    from coordnet.training.metrics import predict

    if not torch.isfinite(predict(pl_module, x)).all():
        return ("the network's output at initialisation is NaN or infinite: an input or configuration fault "
                "(an encoding's frequencies, the activation's parameters or the init out of range)")
    return (f"the targets (up to {y.abs().max().item():.3g} in magnitude) make the squared error overflow "
            f"{y.dtype}: rescale the data")


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
        if non_finite_entries(checkpoint["state_dict"]):  # SafeCheckpointIO would refuse it, naming no step
            raise diverged(trainer, trainer.global_step, "the parameters are NaN or infinite")

    def _check_losses(self, trainer: Trainer) -> None:
        if not self.pending:
            return
        steps, losses = zip(*self.pending)
        self.pending = []
        finite = torch.isfinite(torch.stack(losses)).cpu()  # the one wait for the device
        if not finite.all():
            first = int((~finite).nonzero()[0])
            if steps[first] == 0:
                fault = initial_fault(trainer.lightning_module, trainer.datamodule)
                raise TrainingDiverged(f"the loss at step 0, before any update, is {losses[first].item()}: {fault}")
            raise diverged(trainer, steps[first], f"the loss is {losses[first].item()}")
