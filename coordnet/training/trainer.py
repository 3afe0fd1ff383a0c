"""The Trainer settings coordnet uses everywhere (CLI, demo, benchmarks, experiments).

Full-batch coordinate-network training runs one optimiser step per batch and one endless epoch,
so per-step overheads matter: no sanity validation, sparse logging and progress-bar refreshes.
Checkpoints: ``last.ckpt`` every 500 steps and at the end of training, for resuming, written atomically and
never of non-finite parameters (``SafeCheckpointIO``). Always on: ``DivergenceGuard`` (a NaN or infinite loss
stops training with ``TrainingDiverged`` and keeps the last good checkpoint) and ``InterruptCheckpoint`` (SIGINT
or SIGTERM stops at the step's end with a checkpoint, raising ``TrainingInterrupted``) and ``RunSummary`` (the
run's settings and final metrics in TensorBoard's HParams tab).
"""

from __future__ import annotations

from typing import Any

from pytorch_lightning import Trainer
from pytorch_lightning.callbacks import ModelCheckpoint

from coordnet.training.callbacks import ProgressBar
from coordnet.training.checkpoint_io import with_safe_checkpoint_io
from coordnet.training.divergence import DivergenceGuard
from coordnet.training.interrupts import InterruptCheckpoint
from coordnet.training.quiet import silence_lightning_noise
from coordnet.training.runs import RunLogger
from coordnet.training.summary import RunSummary

TRAINER_DEFAULTS: dict[str, Any] = {
    "max_steps": 1000,
    "devices": 1,
    "num_sanity_val_steps": 0,
    "log_every_n_steps": 50,
    "val_check_interval": 100,
    "check_val_every_n_epoch": None,
    "enable_model_summary": False,
}
CHECKPOINT_DEFAULTS: dict[str, Any] = {"save_last": True, "every_n_train_steps": 500, "save_on_train_epoch_end": True}
PROGRESS_BAR_DEFAULTS: dict[str, Any] = {"refresh_rate": 10}


def make_trainer(save_dir: str = "runs", name: str = "coordnet", **overrides: Any) -> Trainer:
    """A ``Trainer`` with coordnet's defaults, logging to ``save_dir/name/version_k`` (a new k each run, claimed
    when the Trainer first needs it, so Trainers of one process or of many never share one).

    ``overrides`` replace the defaults, except ``callbacks`` and ``plugins``, which are added to them.
    """
    silence_lightning_noise()
    callbacks = [DivergenceGuard(), InterruptCheckpoint(), RunSummary(verbose=False)]
    if overrides.get("enable_checkpointing", True):
        callbacks.append(ModelCheckpoint(**CHECKPOINT_DEFAULTS))
    if overrides.get("enable_progress_bar", True):
        callbacks.append(ProgressBar(**PROGRESS_BAR_DEFAULTS))
    callbacks += list(overrides.pop("callbacks", []))
    plugins = with_safe_checkpoint_io(overrides.pop("plugins", None))
    logger = RunLogger(save_dir, name=name, default_hp_metric=False)
    return Trainer(**(TRAINER_DEFAULTS | {"logger": logger, "callbacks": callbacks, "plugins": plugins} | overrides))
