"""Data modules: every one yields coordinates (N, d) and targets (N, O) resident on the device."""

from coordnet.data.base import BatchStream, CoordDataModule
from coordnet.data.ensemble import EnsembleDataModule
from coordnet.data.images import BUILTIN_IMAGES, ImageDataModule, load_image, pixel_grid
from coordnet.data.memorization import MemorizationDataModule
from coordnet.data.signals import BUILTIN_SIGNALS, SignalDataModule, load_signal

__all__ = [
    "BUILTIN_IMAGES", "BUILTIN_SIGNALS", "BatchStream", "CoordDataModule", "EnsembleDataModule", "ImageDataModule",
    "MemorizationDataModule", "SignalDataModule", "load_image", "load_signal", "pixel_grid",
]
