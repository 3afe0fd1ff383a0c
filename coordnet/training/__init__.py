"""Training: the LightningModule, its callbacks and the Trainer defaults."""

from coordnet.training.callbacks import ProgressBar, PSNRHistory, ReconstructionLogger
from coordnet.training.checkpoint_io import SafeCheckpointIO
from coordnet.training.divergence import DivergenceGuard, TrainingDiverged
from coordnet.training.ensemble import EnsembleModule
from coordnet.training.ensemble_runs import MemberStopped
from coordnet.training.interrupts import InterruptCheckpoint, TrainingInterrupted
from coordnet.training.ntk_callback import NTKSpectrumCallback
from coordnet.training.metrics import predict, prediction_psnr, psnr
from coordnet.training.module import CoordNetModule
from coordnet.training.runs import RunLogger
from coordnet.training.summary import RunSummary
from coordnet.training.trainer import CHECKPOINT_DEFAULTS, PROGRESS_BAR_DEFAULTS, TRAINER_DEFAULTS, make_trainer

__all__ = ["CoordNetModule", "DivergenceGuard", "EnsembleModule", "MemberStopped", "InterruptCheckpoint", "NTKSpectrumCallback", "ProgressBar",
           "PSNRHistory", "ReconstructionLogger", "RunLogger", "RunSummary", "SafeCheckpointIO", "TrainingDiverged",
           "TrainingInterrupted", "make_trainer", "predict", "psnr",
           "CHECKPOINT_DEFAULTS", "PROGRESS_BAR_DEFAULTS", "TRAINER_DEFAULTS"]
