"""The infinite-width NNGP and NTK of a ``CoordMLP`` at initialisation, in closed form.

For a ``CoordMLP`` with L linear layers (fan-ins n_0 … n_{L−1}, c_w, c_b each layer's forward scales,
q_l = (c_w·std_W)² and r_l = (c_b·std_b)² the effective weight and bias variances of layer l), the
wide-network limit replaces every inner product of the layer-wise decomposition used by
``empirical_ntk`` with its expectation (Jacot et al. 2018; Lee et al. 2019; Arora et al. 2019):

    P_0(x, x′) = ⟨γ(x), γ(x′)⟩                      (γ the fixed encoding, or the identity)
    Σ_l = q_l · P_{l−1} + r_l                        pre-activation covariance of layer l (the NNGP)
    P_l = n_l · E[φ(u)φ(v)],  D_l = n_l · E[φ′(u)φ′(v)],  (u, v) ~ N(0, Σ_l on {x, x′})
    Π_L = 1,  Π_l = D_l · q_{l+1} · Π_{l+1}          E[G_l(x)·G_l(x′)], the backward factor
    Θ = Σ_l Π_l · (c_w² · P_{l−1} + c_b²)            per output; outputs are independent: Θ ⊗ I_O

The duals E[φφ], E[φ′φ′] come from the activation (``Activation.dual``). Under the NTK parametrisation
every term is O(1) as the widths grow; under the standard one the layer-l term grows like n_{l−1}, and Θ
is the expectation at the model's own widths — either way it is the number the empirical kernel of the
same model concentrates around, so the two compare entry by entry. Exact for Gaussian weights (inits
``he``, ``standard``, ``eoc``); for ``siren``'s uniform weights the first layer's pre-activations (fan-in 2)
are not Gaussian and the result is the Gaussian kernel with the same variances.

Modes and normalisations are those of ``empirical_ntk``: ``full`` (N·O, M·O) = Θ ⊗ I_O, ``trace`` = O·Θ,
``mean`` = Θ, ``per_output`` (O, N, M); ``raw`` or ``by_n`` (divided by N = len(x1)).

``eoc_ntk(x1, x2, delta, depth)`` (and ``eoc_ntk_by_depth`` for every depth at once) is paper 2's closed form (arXiv 2501.13225 Prop. 6) for bias-free
(a, b)-ReLU networks at the Edge of Chaos, which depends on (a, b) only through Δ = b²/(a²+b²).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import Tensor

from coordnet.models.mlp import CoordMLP
from coordnet.ntk.empirical import Mode, Normalization, _check, require_mlp


@dataclass
class AnalyticKernels:
    """Per-output infinite-width kernels between x1 (N points) and x2 (M points), float64.

    nngp: Σ_L, the covariance of each output at init (N, M).  ntk: Θ (N, M).
    layers: each layer's term of Θ, (L, N, M), summing to ``ntk``.
    """

    nngp: Tensor
    ntk: Tensor
    layers: Tensor


def _layer_variances(mlp: CoordMLP) -> list[tuple[float, float, float, float]]:
    """Per layer: (q_l, r_l, c_w², c_b²), with r_l = c_b² = 0 for a layer without bias."""
    out = []
    for lin in mlp.linears:
        has_bias = lin.bias is not None
        out.append(((lin.weight_scale * lin.init_weight_std) ** 2,
                    (lin.bias_scale * lin.init_bias_std) ** 2 if has_bias else 0.0,
                    lin.weight_scale**2, lin.bias_scale**2 if has_bias else 0.0))
    return out


def analytic_kernels(mlp: CoordMLP | torch.nn.Module, x1: Tensor, x2: Tensor | None = None) -> AnalyticKernels:
    """The per-output NNGP and NTK of ``mlp``'s infinite-width limit (see the module docstring).

    ``mlp``: a ``CoordMLP``, or a module whose ``ntk_model()`` returns one (``CoordNetModule``).
    """
    mlp = require_mlp(mlp, "analytic_kernels")
    device = mlp.linears[0].weight.device
    with torch.no_grad():  # encodings compute in their input's dtype
        h1 = mlp.encode(x1.to(device=device, dtype=torch.float64))
        h2 = h1 if x2 is None else mlp.encode(x2.to(device=device, dtype=torch.float64))
    # P for (x1, x2) and the two diagonals (x1, x1), (x2, x2), which set the variances of u and v
    cross, diag1, diag2 = h1 @ h2.T, (h1**2).sum(1), (h2**2).sum(1)
    symmetric = x2 is None

    def exact_diagonal(matrix: Tensor) -> Tensor:
        # K(x, x) must see ρ = 1 exactly: arccos is so steep at 1 that one ulp off costs ~1e-8
        if symmetric:
            matrix.diagonal().copy_(diag1)
        return matrix

    cross = exact_diagonal(cross)
    variances = _layer_variances(mlp)
    act = mlp.activation
    feature_terms, dual_derivs = [cross], []
    for (q, r, _, _), lin in zip(variances[:-1], mlp.linears[:-1]):
        sigma, var1, var2 = q * cross + r, q * diag1 + r, q * diag2 + r
        n = lin.out_features
        phi, dphi = act.dual(var1[:, None], var2[None, :], sigma)
        diag1 = n * act.dual(var1, var1, var1)[0]
        diag2 = n * act.dual(var2, var2, var2)[0]
        cross = exact_diagonal(n * phi)
        feature_terms.append(cross)
        dual_derivs.append(n * dphi)
    q_last, r_last, _, _ = variances[-1]
    nngp = q_last * cross + r_last
    backward = torch.ones_like(cross)
    layers = [None] * len(variances)
    for l in range(len(variances) - 1, -1, -1):
        _, _, cw2, cb2 = variances[l]
        layers[l] = backward * (cw2 * feature_terms[l] + cb2)
        if l > 0:
            backward = backward * dual_derivs[l - 1] * variances[l][0]
    stacked = torch.stack(layers)
    return AnalyticKernels(nngp, stacked.sum(0), stacked)


def analytic_ntk(mlp: CoordMLP | torch.nn.Module, x1: Tensor, x2: Tensor | None = None, mode: Mode = "full",
                 normalization: Normalization = "raw") -> Tensor:
    """The infinite-width NTK of ``mlp`` at init, shaped like ``empirical_ntk(mlp, x1, x2, mode, normalization)``."""
    _check(mode, normalization)
    mlp = require_mlp(mlp, "analytic_ntk")
    theta = analytic_kernels(mlp, x1, x2).ntk
    outputs = mlp.out_features
    if mode == "full":
        eye = torch.eye(outputs, dtype=theta.dtype, device=theta.device)
        kernel = torch.kron(theta, eye)  # rows (point, output), output fastest
    elif mode == "per_output":
        kernel = theta.expand(outputs, *theta.shape).clone()
    else:
        kernel = theta * outputs if mode == "trace" else theta
    return kernel / x1.shape[0] if normalization == "by_n" else kernel


def eoc_cosine_map(rho: Tensor, delta: float) -> tuple[Tensor, Tensor]:
    """Paper 2's ϱ(ρ) = ρ + Δ(2/π)(√(1−ρ²) − ρ·arccos ρ) and ϱ′(ρ) = 1 − Δ(2/π)·arccos ρ (Prop. 5)."""
    rho = rho.clamp(-1.0, 1.0)
    acos = torch.acos(rho)
    return (rho + delta * (2 / math.pi) * ((1 - rho**2).clamp_min(0).sqrt() - rho * acos),
            1 - delta * (2 / math.pi) * acos)


def eoc_ntk_by_depth(x1: Tensor, x2: Tensor | None = None, delta: float = 0.5, max_depth: int = 3,
                     normalization: Normalization = "by_n") -> Iterator[tuple[int, Tensor]]:
    """(l, ``eoc_ntk`` at depth l) for l = 1 … ``max_depth``, by the recurrence K_{l+1} = K_l·ϱ′(ρ_l) + ‖x‖‖x′‖ρ_{l+1}."""
    if not 0 <= delta <= 1:
        raise ValueError(f"eoc_ntk: delta must lie in [0, 1], got {delta!r}")
    if isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 1:
        raise ValueError(f"eoc_ntk: depth must be a positive integer, got {max_depth!r}")
    _check("full", normalization)
    a = x1.to(torch.float64)
    b = a if x2 is None else x2.to(torch.float64)
    norms = a.norm(dim=1)[:, None] * b.norm(dim=1)[None, :]
    rho = (a @ b.T) / norms.clamp_min(torch.finfo(torch.float64).tiny)
    if x2 is None:
        rho.diagonal().fill_(1.0)  # exactly: arccos is so steep at 1 that one ulp off costs ~1e-8
    scale = norms / a.shape[0] if normalization == "by_n" else norms
    total = rho  # Σ_k ρ_k ∏_{k′=k}^{l−1} ϱ′(ρ_k′) at l = 1
    for depth in range(1, max_depth + 1):
        yield depth, scale * total
        rho, derivative = eoc_cosine_map(rho, delta)
        total = total * derivative + rho


def eoc_ntk(x1: Tensor, x2: Tensor | None = None, delta: float = 0.5, depth: int = 3,
            normalization: Normalization = "by_n") -> Tensor:
    """Paper 2's closed-form limiting NTK at the Edge of Chaos (arXiv 2501.13225 Prop. 6), (N, M) float64:

        K∞(x, x′) = ‖x‖‖x′‖ Σ_{k=1}^{l} ϱ^{∘(k−1)}(ρ_1) ∏_{k′=k}^{l−1} ϱ′(ϱ^{∘(k′−1)}(ρ_1)),   ρ_1 = cos∠(x, x′),

    for a bias-free (a, b)-ReLU network with ``depth`` = l weight matrices and Δ = ``delta`` = b²/(a²+b²);
    ``by_n`` (the paper's matrix) divides by N. Equals ``analytic_ntk`` of a ``CoordMLP`` with l−1 hidden
    layers, ``init="eoc"``, NTK parametrisation, no bias, ``first_layer_fan_in=False`` and a² + b² = 1.
    """
    for _, kernel in eoc_ntk_by_depth(x1, x2, delta, depth, normalization):
        pass
    return kernel
