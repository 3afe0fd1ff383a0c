"""coordnet: coordinate networks with Lightning training and Neural Tangent Kernel monitoring."""

import logging
import warnings

# Raised inside Lightning 2.6 by torch >= 2.9's pytree API; nothing a coordnet user can act on.
warnings.filterwarnings("ignore", ".*isinstance\\(treespec, LeafSpec\\)` is deprecated.*")
# Lightning 2.6 prints "💡 Tip: … try installing litlogger / litmodels" on every Trainer: advertising, not information.
logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(lambda record: "💡 Tip" not in str(record.msg))

from coordnet.data import ImageDataModule, MemorizationDataModule, SignalDataModule  # noqa: E402
from coordnet.models import (  # noqa: E402
    Abs, AbsLinear, Activation, CoordMLP, Cos, FourierFeatures, Gaussian, PositionalEncoding, ReLU, Sine,
    get_activation,
)
from coordnet.training import CoordNetModule, make_trainer, predict, psnr  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    # Models
    "Activation", "AbsLinear", "Abs", "ReLU", "Cos", "Sine", "Gaussian", "get_activation",
    "FourierFeatures", "PositionalEncoding", "CoordMLP",
    # Data
    "ImageDataModule", "SignalDataModule", "MemorizationDataModule",
    # Training
    "CoordNetModule", "make_trainer", "predict", "psnr",
]
