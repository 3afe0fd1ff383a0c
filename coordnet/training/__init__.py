"""Training: the LightningModule, its callbacks and the Trainer defaults."""

from coordnet.training.callbacks import ReconstructionLogger
from coordnet.training.module import CoordNetModule, predict, psnr
from coordnet.training.trainer import CHECKPOINT_DEFAULTS, PROGRESS_BAR_DEFAULTS, TRAINER_DEFAULTS, make_trainer

__all__ = ["CoordNetModule", "ReconstructionLogger", "make_trainer", "predict", "psnr",
           "CHECKPOINT_DEFAULTS", "PROGRESS_BAR_DEFAULTS", "TRAINER_DEFAULTS"]
