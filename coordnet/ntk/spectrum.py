"""Eigen-spectrum of a kernel matrix, and kernel comparisons, in float64.

``spectrum(K)`` solves the symmetric eigenproblem densely (``torch.linalg.eigvalsh``) on K's device.
Eigenvalues below the numerical floor `floor = n · eps(dtype) · λ_max` (n the matrix size; the usual
bound on eigvalsh's absolute error) cannot be told from zero: then ``lambda_min`` reports the floor,
``lambda_min_reliable`` is False, and the condition number is a lower bound λ_max/floor. A negative
λ_min is never reported as a value.

``top_eigenvalues(matvec, n, k)`` finds the k largest eigenvalues by Lanczos (ARPACK through
``scipy.sparse.linalg.eigsh``) from a matrix-free product, for kernels too big to form.
``model_spectrum`` picks between the two by the kernel's size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn


@dataclass
class Spectrum:
    """Summary of the eigenvalues of a symmetric positive semi-definite kernel (all floats are float64).

    eigenvalues: ascending, as computed (the smallest may be slightly negative from round-off).
    lambda_min: the smallest eigenvalue, or the floor when it is below the floor (never negative).
    lambda_max, trace: the largest eigenvalue and the sum of the diagonal.
    condition_number: lambda_max / lambda_min.
    effective_rank: exp of the Shannon entropy of p_i = λ_i / Σλ (eigenvalues clipped at 0).
    participation_ratio: (Σλ)² / Σλ².
    floor: n · eps · lambda_max.   lambda_min_reliable: whether the raw λ_min lies above the floor.
    """

    eigenvalues: Tensor
    lambda_min: float
    lambda_max: float
    condition_number: float
    trace: float
    effective_rank: float
    participation_ratio: float
    floor: float
    lambda_min_reliable: bool

    def as_dict(self) -> dict[str, float | bool]:
        """The scalar fields, for logging."""
        return {k: v for k, v in self.__dict__.items() if k != "eigenvalues"}


def _check_square(kernel: Tensor) -> None:
    if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1] or kernel.shape[0] == 0:
        raise ValueError(f"expected a non-empty square kernel matrix, got shape {tuple(kernel.shape)}")
    if not torch.isfinite(kernel).all():
        raise ValueError("the kernel holds NaN or infinite entries (non-finite parameters or inputs?)")


def numerical_floor(n: int, lambda_max: float, dtype: torch.dtype = torch.float64) -> float:
    """`n · eps(dtype) · λ_max`: eigenvalues of an n × n kernel below it cannot be told from zero."""
    return n * torch.finfo(dtype).eps * max(lambda_max, 0.0)


def spectrum_from_eigenvalues(eigenvalues: Tensor, trace: float | None = None) -> Spectrum:
    """A ``Spectrum`` from the full set of ascending eigenvalues of an n × n kernel."""
    lam = eigenvalues.to(torch.float64)
    n = lam.numel()
    lambda_max = lam[-1].item()
    floor = numerical_floor(n, lambda_max, eigenvalues.dtype)
    raw_min = lam[0].item()
    reliable = raw_min > floor
    lambda_min = raw_min if reliable else floor
    positive = lam.clamp_min(0)
    total = positive.sum().item()
    if total > 0:
        p = positive / total
        entropy = -(p[p > 0] * p[p > 0].log()).sum().item()
        effective_rank = math.exp(entropy)
        participation = total**2 / (positive**2).sum().item()
    else:
        effective_rank = participation = 0.0
    return Spectrum(
        eigenvalues=eigenvalues,
        lambda_min=lambda_min,
        lambda_max=lambda_max,
        condition_number=lambda_max / lambda_min if lambda_min > 0 else math.inf,
        trace=lam.sum().item() if trace is None else trace,
        effective_rank=effective_rank,
        participation_ratio=participation,
        floor=floor,
        lambda_min_reliable=reliable,
    )


def spectrum(kernel: Tensor) -> Spectrum:
    """Dense eigen-spectrum of a symmetric PSD kernel (n, n), computed in float64 on its device.

    Raises:
        ValueError: not square, non-finite entries, or clearly indefinite (an eigenvalue below −n·eps·max|λ|,
            eps that of the kernel's dtype).
    """
    _check_square(kernel)
    k64 = kernel.to(torch.float64)
    k64 = 0.5 * (k64 + k64.T)  # eigvalsh reads one triangle; symmetrise round-off first
    eigenvalues = torch.linalg.eigvalsh(k64)
    lowest, highest = eigenvalues[0].item(), eigenvalues[-1].item()
    if -lowest > numerical_floor(len(eigenvalues), max(-lowest, highest), kernel.dtype):
        raise ValueError(f"spectrum: the kernel is not positive semi-definite (eigenvalues from {lowest:.6g} to "
                         f"{highest:.6g}, beyond round-off); expected a Gram matrix such as an NTK")
    return spectrum_from_eigenvalues(eigenvalues, torch.diagonal(k64).sum().item())


def top_eigenpairs(matvec: Callable[[Tensor], Tensor], n: int, k: int = 10,
                   tol: float = 1e-12) -> tuple[Tensor, Tensor]:
    """The ``k`` largest eigenvalues (ascending, float64) and their eigenvectors (n, k) of the n × n operator
    v ↦ matvec(v), by implicitly restarted Lanczos (ARPACK through ``scipy.sparse.linalg.eigsh``), on the CPU."""
    import numpy as np
    from scipy.sparse.linalg import LinearOperator, eigsh

    if not 0 < k < n:
        raise ValueError(f"top_eigenvalues: need 0 < k < n, got k={k}, n={n}")

    def apply(v: np.ndarray) -> np.ndarray:
        return matvec(torch.from_numpy(np.ascontiguousarray(v, dtype=np.float64))).cpu().numpy()

    op = LinearOperator((n, n), matvec=apply, matmat=apply, dtype=np.float64)
    start = np.random.default_rng(0).standard_normal(n)  # seeded: the same answer every call, on every process
    values, vectors = eigsh(op, k=k, which="LA", tol=tol, v0=start)
    order = np.argsort(values)
    return torch.from_numpy(values[order]), torch.from_numpy(np.ascontiguousarray(vectors[:, order]))


def top_eigenvalues(matvec: Callable[[Tensor], Tensor], n: int, k: int = 10, tol: float = 1e-12) -> Tensor:
    """The ``k`` largest eigenvalues (ascending, float64) of the n × n operator v ↦ matvec(v), by Lanczos."""
    return top_eigenpairs(matvec, n, k, tol)[0]


def kernel_distance(k0: Tensor, k1: Tensor) -> float:
    """`1 − ⟨K0, K1⟩_F / (‖K0‖_F ‖K1‖_F)` (Fort et al. 2020): 0 for proportional kernels (never below 0).

    Raises:
        ValueError: the kernels differ in shape, hold NaN or infinite entries, or one is all zeros (no direction).
    """
    if k0.shape != k1.shape:
        raise ValueError(f"kernel_distance: the kernels differ in shape, {tuple(k0.shape)} and {tuple(k1.shape)}")
    a, b = k0.to(torch.float64), k1.to(torch.float64)
    for name, k in (("k0", a), ("k1", b)):
        if not torch.isfinite(k).all():
            raise ValueError(f"kernel_distance: {name} holds NaN or infinite entries")
        if not k.abs().sum() > 0:
            raise ValueError(f"kernel_distance: {name} is all zeros; the distance is undefined")
    return max(0.0, 1.0 - ((a * b).sum() / (a.norm() * b.norm())).item())  # round-off can dip below 0


def target_alignment(kernel: Tensor, targets: Tensor) -> float:
    """Centred kernel–target alignment `⟨K_c, Y_c⟩_F / (‖K_c‖_F ‖Y_c‖_F)`, Y = y yᵀ (Cortes et al. 2012).

    ``kernel`` is (N, N) (a trace/mean/per-output kernel) and ``targets`` (N,) or (N, O);
    K_c = C K C with C = I − 11ᵀ/N.
    """
    k = kernel.to(torch.float64)
    y = targets.to(device=k.device, dtype=torch.float64).reshape(k.shape[0], -1)
    y = y - y.mean(dim=0)  # C y, so that C y yᵀ C = (C y)(C y)ᵀ
    kc = k - k.mean(dim=0, keepdim=True) - k.mean(dim=1, keepdim=True) + k.mean()
    yy = y @ y.T
    return ((kc * yy).sum() / (kc.norm() * yy.norm())).item()


def model_spectrum(model: nn.Module, x: Tensor, normalization: str = "raw", dense_limit: int = 8192,
                   k: int = 10) -> Spectrum:
    """Spectrum of the ``full`` empirical NTK of ``model`` on ``x`` (size n = N·O).

    n ≤ ``dense_limit``: the dense ``spectrum`` of the formed kernel. Above it the kernel is never
    formed: the ``k`` largest eigenvalues come from Lanczos on the matrix-free product and the trace
    from the exact diagonal; fields that need every eigenvalue (λ_min, condition number, effective
    rank, participation ratio) are NaN and ``lambda_min_reliable`` is False.
    """
    from coordnet.ntk.empirical import empirical_ntk, find_mlp, ntk_diagonal, ntk_matvec

    mlp = find_mlp(model)
    n = x.shape[0] * (mlp.out_features if mlp is not None else 1)
    if mlp is None or n <= dense_limit:
        return spectrum(empirical_ntk(model, x, mode="full", normalization=normalization))
    top = top_eigenvalues(ntk_matvec(model, x, normalization=normalization), n, k)
    lambda_max = top[-1].item()
    nan = math.nan
    return Spectrum(top, nan, lambda_max, nan, ntk_diagonal(model, x, normalization=normalization).sum().item(),
                    nan, nan, numerical_floor(n, lambda_max), False)
