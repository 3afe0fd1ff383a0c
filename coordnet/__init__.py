"""coordnet: coordinate networks with Lightning training and Neural Tangent Kernel monitoring.

The names below load on first use, so that ``import coordnet.models`` or ``import coordnet.ntk`` does not
import Lightning (only ``coordnet.training``, ``coordnet.data`` and the CLI do).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    # Models
    "Activation": "coordnet.models", "AbsLinear": "coordnet.models", "Abs": "coordnet.models",
    "ReLU": "coordnet.models", "Cos": "coordnet.models", "Sine": "coordnet.models", "Gaussian": "coordnet.models",
    "get_activation": "coordnet.models", "register_activation": "coordnet.models",
    "FourierFeatures": "coordnet.models", "PositionalEncoding": "coordnet.models", "CoordMLP": "coordnet.models",
    "CoordMLPEnsemble": "coordnet.models",
    # Data
    "ImageDataModule": "coordnet.data", "SignalDataModule": "coordnet.data", "MemorizationDataModule": "coordnet.data",
    "EnsembleDataModule": "coordnet.data",
    # Training
    "CoordNetModule": "coordnet.training", "EnsembleModule": "coordnet.training", "make_trainer": "coordnet.training", "predict": "coordnet.training",
    "psnr": "coordnet.training",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'coordnet' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
