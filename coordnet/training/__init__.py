"""Training: the LightningModule, its callbacks and the Trainer defaults."""

from coordnet.training.callbacks import ProgressBar, PSNRHistory, ReconstructionLogger
from coordnet.training.divergence import DivergenceGuard, TrainingDiverged
from coordnet.training.ntk_callback import NTKSpectrumCallback
from coordnet.training.module import CoordNetModule, predict, psnr
from coordnet.training.trainer import CHECKPOINT_DEFAULTS, PROGRESS_BAR_DEFAULTS, TRAINER_DEFAULTS, make_trainer

__all__ = ["CoordNetModule", "DivergenceGuard", "NTKSpectrumCallback", "ProgressBar", "PSNRHistory",
           "ReconstructionLogger", "TrainingDiverged", "make_trainer", "predict", "psnr",
           "CHECKPOINT_DEFAULTS", "PROGRESS_BAR_DEFAULTS", "TRAINER_DEFAULTS"]
