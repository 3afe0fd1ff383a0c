"""Fixed input encodings γ: R^d → R^m applied to coordinates before the first linear layer.

Both are deterministic, parameter-free transforms (their matrices are buffers, saved in checkpoints
but never trained), so the NTK engine treats them as part of the input.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class Encoding(nn.Module):
    """Base class: maps (N, in_features) to (N, out_features)."""

    in_features: int
    out_features: int


class FourierFeatures(Encoding):
    """Gaussian Fourier features `γ(v) = [sin(2π B v), cos(2π B v)]`, B ~ N(0, σ²) of shape (m, d).

    Tancik et al. 2020 (arXiv 2006.10739), "gaussian" mapping; σ = 10 suits natural images at 512².

    Args:
        in_features: d, the coordinate dimension.
        num_features: m; the encoding has 2m outputs.
        sigma: standard deviation σ of B's entries.
        seed: seed of B, so that one config always gives the same encoding.
    """

    def __init__(self, in_features: int, num_features: int = 256, sigma: float = 10.0, seed: int = 0) -> None:
        super().__init__()
        if in_features <= 0 or num_features <= 0:
            raise ValueError(
                f"FourierFeatures: in_features and num_features must be > 0, got {in_features}, {num_features}"
            )
        if not math.isfinite(sigma) or sigma <= 0:
            raise ValueError(f"FourierFeatures: sigma must be > 0, got {sigma!r}")
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("B", sigma * torch.randn(num_features, in_features, generator=generator))
        self.in_features, self.out_features, self.sigma = in_features, 2 * num_features, sigma
        self.num_features, self.seed = num_features, seed

    def forward(self, v: Tensor) -> Tensor:
        proj = 2 * math.pi * v @ self.B.T.to(v.dtype)  # (N, d) -> (N, m)
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, num_features={self.out_features // 2}, sigma={self.sigma:g}"


class PositionalEncoding(Encoding):
    """NeRF positional encoding `γ(v) = [v, sin(2^k π v), cos(2^k π v)]` for k = 0 … L−1, per axis.

    Mildenhall et al. 2020 (arXiv 2003.08934) eq. 4; 2L·d (+ d with the input) outputs.

    Args:
        in_features: d, the coordinate dimension.
        num_frequencies: L.
        include_input: also pass v itself through.
    """

    MAX_FREQUENCIES = 24

    def __init__(self, in_features: int, num_frequencies: int = 10, include_input: bool = True) -> None:
        super().__init__()
        if in_features <= 0 or num_frequencies <= 0:
            raise ValueError(
                f"PositionalEncoding: in_features and num_frequencies must be > 0, got {in_features}, "
                f"{num_frequencies}"
            )
        if num_frequencies > self.MAX_FREQUENCIES:
            raise ValueError(
                f"PositionalEncoding: num_frequencies {num_frequencies} is too many: the highest frequency "
                f"2^{num_frequencies - 1}·π puts sin(2^k·π·x) beyond float32's resolution (past k = 23 its argument "
                f"has no fractional digits left, and past k = 127 it overflows); at most {self.MAX_FREQUENCIES} "
                "(NeRF uses 10)")
        self.register_buffer("freqs", math.pi * 2.0 ** torch.arange(num_frequencies, dtype=torch.float64))
        self.in_features, self.include_input, self.num_frequencies = in_features, include_input, num_frequencies
        self.out_features = 2 * num_frequencies * in_features + (in_features if include_input else 0)

    def forward(self, v: Tensor) -> Tensor:
        proj = (v[..., None] * self.freqs.to(v.dtype)).flatten(-2)  # (N, d) -> (N, d·L)
        parts = [v] if self.include_input else []
        return torch.cat(parts + [torch.sin(proj), torch.cos(proj)], dim=-1)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, num_frequencies={len(self.freqs)}, include_input={self.include_input}"
