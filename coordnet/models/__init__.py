"""Models: activation objects, fixed encodings and the coordinate MLP."""

from coordnet.models.activations import (
    ACTIVATIONS, Abs, AbsLinear, Activation, Cos, Gaussian, ReLU, Sine, get_activation, register_activation,
)
from coordnet.models.encodings import Encoding, FourierFeatures, PositionalEncoding
from coordnet.models.ensemble import CoordMLPEnsemble
from coordnet.models.mlp import CoordMLP, MLPTrace, ScaledLinear

__all__ = [
    "ACTIVATIONS", "Abs", "AbsLinear", "Activation", "CoordMLP", "CoordMLPEnsemble", "Cos", "Encoding", "FourierFeatures",
    "Gaussian", "MLPTrace", "PositionalEncoding", "ReLU", "ScaledLinear", "Sine", "get_activation",
    "register_activation",
]
