"""The networks and inputs the paper reproductions share, each as its paper states it."""

from __future__ import annotations

import math

import torch

from coordnet.models import AbsLinear, Activation, CoordMLP
from coordnet.ntk import Spectrum, empirical_ntk, spectrum


def sphere_points(num_points: int, dim: int, generator: torch.Generator) -> torch.Tensor:
    """``num_points`` points uniform on the unit sphere in R^dim, float64 (paper 2's data)."""
    x = torch.randn(num_points, dim, generator=generator, dtype=torch.float64)
    return x / x.norm(dim=1, keepdim=True)


def eoc_network(delta: float, depth: int, width: int, dim: int) -> CoordMLP:
    """Paper 2's finite network: dim → width × (depth − 1) → 1, (a, b)-ReLU with a² + b² = 1 and Δ = b²,
    NTK parametrisation (q = 0), EOC weights, first layer without 1/√fan_in, no biases."""
    activation = AbsLinear(math.sqrt(1 - delta), math.sqrt(delta))
    return CoordMLP(dim, 1, [width] * (depth - 1), activation=activation, parametrization="ntk", bias=False,
                    first_layer_fan_in=False)


def p1_network(n1: int, activation: Activation | str, input_dim: int = 400, n2: int = 400,
               weights: str = "he") -> CoordMLP:
    """Paper 1's network: input_dim → n1 → n2 → 1, no biases. ``weights``: ``he`` (its experiments, §6.1: every
    layer N(0, 2/fan_in)) or ``fixed`` (its theorem's regime, §2: N(0, β²) with β independent of the widths; here
    every layer takes the first layer's He variance β² = 2/input_dim, whatever its fan-in)."""
    if weights not in ("he", "fixed"):
        raise ValueError(f"weights {weights!r}: expected he or fixed")
    network = CoordMLP(input_dim, 1, [n1, n2], activation=activation, init="he", bias=False)
    if weights == "fixed":
        std = math.sqrt(2.0 / input_dim)
        with torch.no_grad():
            for linear in network.linears:
                linear.weight.normal_(0.0, std)
                linear.init_weight_std = std
    return network


def p1_inputs(num_points: int, seed: int, input_dim: int = 400) -> torch.Tensor:
    """Paper 1's data as the project reads it: ``num_points`` points x ~ N(0, I_input_dim), drawn for ``seed``."""
    return torch.randn(num_points, input_dim, generator=torch.Generator().manual_seed(10_000 + seed))


def p1_kernel_spectrum(n1: int, activation: Activation | str, num_points: int, seed: int,
                       input_dim: int = 400) -> Spectrum:
    """Spectrum of the raw J Jᵀ (float64) of ``p1_network`` (weights seeded by ``seed``) on N(0, I) inputs."""
    torch.manual_seed(seed)
    x = p1_inputs(num_points, seed, input_dim)
    return spectrum(empirical_ntk(p1_network(n1, activation, input_dim), x, mode="full", normalization="raw"))
