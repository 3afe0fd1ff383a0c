"""The kernel's eigenfunctions over a whole signal: the top-k eigenvectors of Θ on every point, matrix-free.

Θ = J Jᵀ (raw, ``full``: N·O × N·O) on the points x is never formed: Lanczos (``top_eigenpairs``, ARPACK) runs
on ``ntk_matvec``. Eigenvector i, reshaped to the signal's grid, is the i-th eigenfunction sampled at the points;
under gradient descent on ½‖f − y‖² the residual's part along it decays as (1 − ηλ_i)^k, so the top ones are what
the network fits first. ``energy_fraction`` is ‖V_kᵀ ỹ‖² / ‖ỹ‖² for the centred target ỹ (each output's mean
removed): the share of the target that those directions carry.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from coordnet.ntk.empirical import ntk_matvec, require_mlp
from coordnet.ntk.spectrum import top_eigenpairs


@dataclass
class Eigenfunctions:
    """eigenvalues: (k,), largest first; vectors: (N·O, k) orthonormal columns, rows (point, output), each signed
    so that its largest entry is positive; energy_fraction: the centred target's share in their span, or None."""

    eigenvalues: Tensor
    vectors: Tensor
    energy_fraction: float | None


def kernel_eigenfunctions(model: nn.Module, x: Tensor, k: int = 16, targets: Tensor | None = None,
                          tol: float = 1e-8) -> Eigenfunctions:
    """The ``k`` largest eigenpairs of the raw ``full`` NTK of ``model`` on ``x`` (N, d), by Lanczos on the
    matrix-free product (float64, relative tolerance ``tol``); with ``targets`` (N, O), the centred target's
    energy fraction in their span."""
    outputs = require_mlp(model, "kernel_eigenfunctions").out_features
    values, vectors = top_eigenpairs(ntk_matvec(model, x), x.shape[0] * outputs, k, tol)
    values, vectors = values.flip(0), vectors.flip(1)
    peak = vectors.gather(0, vectors.abs().argmax(0, keepdim=True))
    vectors = vectors * torch.sign(peak)
    fraction = None
    if targets is not None:
        centred = (targets.double() - targets.double().mean(0)).reshape(-1)
        fraction = ((vectors.T @ centred) ** 2).sum().item() / (centred @ centred).item()
    return Eigenfunctions(values, vectors, fraction)
