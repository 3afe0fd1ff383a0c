"""The spectral density of a kernel too large to form, by stochastic Lanczos quadrature (SLQ) with deflation.

For an n × n symmetric PSD operator K given only as v ↦ K v (``ntk_matvec``: for every pixel of a 256² image
n = 65,536, a kernel of 34 GB in float64 that is never built):

1. The d largest eigenpairs (λ_i, u_i) by Lanczos (``top_eigenpairs``) — exact to the solver's tolerance.
2. The rest of the spectrum, of K′ = P K P with P = I − U Uᵀ, by SLQ (Ubaru, Chen & Saad 2017): for each of p
   Rademacher probes z, m steps of Lanczos on K′ from w = P z (fully reorthogonalised, against U too) give a
   tridiagonal T with eigenpairs (θ_j, s_j); then zᵀ P f(K′) P z ≈ ‖w‖² Σ_j s_j[0]² f(θ_j), the Gauss quadrature of
   w's spectral measure, exact for polynomials f of degree < 2m. Averaged over probes this estimates
   Σ_{i>d} f(λ_i), the Hutchinson trace of f(K′).

The density is the set of nodes with weights — the d exact eigenvalues with weight 1, each probe's θ_j with
weight ‖w‖² s_j[0]² / p — summing to ≈ n eigenvalues. Deflation is what makes it accurate: a kernel's few large
eigenvalues dominate its trace and Frobenius norm, and the Hutchinson estimate of a sum dominated by one
eigenvalue has a relative error of ~√(2/p); with them removed exactly, the error is that of the flatter rest.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from coordnet.ntk.spectrum import numerical_floor, top_eigenpairs


EXACT_LIMIT = 512


@dataclass
class SpectralDensity:
    """Quadrature nodes and weights of a kernel's eigenvalue distribution (float64, on the CPU).

    nodes, weights: the eigenvalue estimates and how many eigenvalues each stands for (Σ weights ≈ n).
    top: the d largest eigenvalues, exact (ascending; they are also among the nodes, weight 1 each).
    n: the kernel's size.  num_probes, steps: the SLQ settings.  exact_trace: the exact trace when known.
    """

    nodes: Tensor
    weights: Tensor
    top: Tensor
    n: int
    num_probes: int
    steps: int
    exact_trace: float | None = None

    @property
    def lambda_max(self) -> float:
        return self.top[-1].item() if self.top.numel() else self.nodes.max().item()

    def moment(self, power: int) -> float:
        """The estimate of tr(K^power) = Σ_i λ_i^power."""
        return (self.weights * self.nodes**power).sum().item()

    @property
    def trace(self) -> float:
        return self.moment(1)

    @property
    def frobenius_norm(self) -> float:
        """‖K‖_F = (Σ λ_i²)^½."""
        return math.sqrt(self.moment(2))

    @property
    def floor(self) -> float:
        """`n · eps · λ_max`: eigenvalues below it cannot be told from zero."""
        return numerical_floor(self.n, self.lambda_max)

    def log_grid(self, points: int = 400) -> Tensor:
        """log10 λ from half a decade below the smallest node (at least the floor) to half above λ_max."""
        low = self.nodes.clamp_min(self.floor).min().log10().item()
        return torch.linspace(low - 0.5, math.log10(self.lambda_max) + 0.5, points, dtype=torch.float64)

    def log_density(self, grid: Tensor, bandwidth: float = 0.1) -> Tensor:
        """The density of log10 λ on ``grid`` (log10 values): the weighted nodes smoothed by a Gaussian of std
        ``bandwidth`` decades, normalised to integrate to 1. Nodes below the floor count at the floor."""
        x = self.nodes.clamp_min(self.floor).log10()
        kernel = torch.exp(-0.5 * ((grid[:, None] - x[None, :]) / bandwidth) ** 2) / (bandwidth * math.sqrt(2 * math.pi))
        return kernel @ self.weights / self.weights.sum()


def lanczos_tridiagonal(matvec: Callable[[Tensor], Tensor], start: Tensor, steps: int,
                        deflate: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Independent Lanczos runs from each column of ``start`` (n, b), batched: every product is one
    ``matvec`` of b columns. Full reorthogonalisation (two Gram–Schmidt passes per step) against each run's
    earlier vectors and the orthonormal columns of ``deflate`` (n, d). Returns the tridiagonals' diagonals
    α (b, steps) and off-diagonals β (b, steps − 1); a run that exhausts its Krylov space gets β = 0 there,
    which decouples the remaining nodes (they get zero quadrature weight).
    """
    n, b = start.shape
    basis = start.new_zeros(steps, n, b)
    q = start / start.norm(dim=0)
    alphas, betas = [], []
    tiny = torch.finfo(start.dtype).eps
    for j in range(steps):
        basis[j] = q
        w = matvec(q).to(start)
        alphas.append((q * w).sum(0))
        for _ in range(2):
            w = w - torch.einsum("jnb,jb->nb", basis[:j + 1], torch.einsum("jnb,nb->jb", basis[:j + 1], w))
            if deflate is not None:
                w = w - deflate @ (deflate.T @ w)
        if j == steps - 1:
            break
        beta = w.norm(dim=0)
        scale = max(alphas[0].abs().max().item(), tiny)
        done = beta <= tiny * scale * math.sqrt(n)  # the Krylov space is exhausted (invariant subspace)
        betas.append(torch.where(done, torch.zeros_like(beta), beta))
        q = torch.where(done, torch.zeros_like(w), w / torch.where(done, torch.ones_like(beta), beta))
    return torch.stack(alphas, 1), torch.stack(betas, 1) if betas else start.new_zeros(b, 0)


@contextmanager
def _counting(matvec: Callable[[Tensor], Tensor], desc: str, total: int | None, show: bool):
    """``matvec`` wrapped to advance a progress bar by the columns of each product."""
    bar = tqdm(total=total, desc=desc, unit="col", disable=not show)

    def counted(v: Tensor) -> Tensor:
        out = matvec(v)
        bar.update(1 if v.ndim == 1 else v.shape[1])
        return out

    try:
        yield counted
    finally:
        bar.close()


def _seconds(matvec: Callable[[Tensor], Tensor], v: Tensor) -> float:
    start = time.perf_counter()
    out = matvec(v)
    if out.device.type == "cuda":
        torch.cuda.synchronize(out.device)
    return time.perf_counter() - start


def announce(matvec: Callable[[Tensor], Tensor], n: int, num_probes: int, steps: int, deflate: int,
             device: torch.device | str) -> str:
    """One line saying what ``spectral_density`` is about to measure and how long it should take, from one timed
    product of one column and one of ``num_probes`` columns. ARPACK took 1.3–2.4 × ncv products for the d largest
    eigenpairs of SIREN and ReLU kernels (ncv = max(2d + 1, 20)), so the estimate is a range."""
    ones = torch.ones(n, num_probes, dtype=torch.float64, device=device)
    _seconds(matvec, ones[:, 0])  # the first product may build the layer factors
    single, batch = _seconds(matvec, ones[:, 0]), _seconds(matvec, ones)
    ncv = max(2 * deflate + 1, 20) if deflate else 0
    low, high = (1.3 * ncv * single + steps * batch, 2.4 * ncv * single + steps * batch)
    span = lambda t: f"{t / 60:.0f} min" if t >= 90 else f"{t:.0f} s"  # noqa: E731
    eigen = f"the {deflate} largest eigenpairs (Lanczos), then " if deflate else ""
    return (f"coordnet: measuring the NTK's spectral density over the {n:,} × {n:,} kernel without forming it: {eigen}"
            f"{num_probes} probes × {steps} Lanczos steps; one product takes {single:.2g} s, so about "
            f"{span(low)}–{span(high)}")


def spectral_density(matvec: Callable[[Tensor], Tensor], n: int, num_probes: int = 10, steps: int = 80,
                     deflate: int = 32, seed: int = 0, device: torch.device | str = "cpu",
                     progress: bool = False, exact_limit: int = EXACT_LIMIT) -> SpectralDensity:
    """The SLQ spectral density of the n × n PSD operator v ↦ ``matvec(v)`` (see the module docstring).

    Up to n = ``exact_limit`` the kernel is formed from n products instead and its eigenvalues are the nodes
    (weight 1 each; ``num_probes`` and ``steps`` are then 0): exact, and cheaper than the estimate.

    Args:
        matvec: takes (n, b) float64 and returns (n, b); it may compute on another ``device``.
        num_probes: p Rademacher probes, run as one batch of p Lanczos runs.
        steps: m Lanczos steps per probe (quadrature exact for polynomials of degree < 2m).
        deflate: d largest eigenpairs found first and removed (0: plain SLQ).
        seed: seeds the probes (a private generator).
        progress: print what is measured with a time estimate (``announce``), then show a progress bar of the
            kernel-vector products (columns) per stage.
    """
    if n <= exact_limit:  # forming K costs n products, fewer than Lanczos and SLQ would take
        kernel = matvec(torch.eye(n, dtype=torch.float64, device=device)).to(torch.float64).cpu()
        eigenvalues = torch.linalg.eigvalsh(0.5 * (kernel + kernel.T))
        return SpectralDensity(eigenvalues, torch.ones_like(eigenvalues), eigenvalues[n - min(deflate, n):], n, 0, 0)
    if not 0 <= deflate < n - 1 or num_probes < 1 or not 0 < steps <= n - deflate:
        raise ValueError(f"spectral_density: need 0 ≤ deflate < n − 1, num_probes ≥ 1 and 0 < steps ≤ n − deflate, "
                         f"got n={n}, deflate={deflate}, num_probes={num_probes}, steps={steps}")
    if progress:
        tqdm.write(announce(matvec, n, num_probes, steps, deflate, device))
    top = torch.zeros(0, dtype=torch.float64)
    vectors = None
    if deflate:
        with _counting(matvec, f"the {deflate} largest eigenvalues (Lanczos)", None, progress) as counted:
            top, vectors = top_eigenpairs(counted, n, deflate)
        vectors = vectors.to(device)
    generator = torch.Generator().manual_seed(seed)
    z = (torch.randint(0, 2, (n, num_probes), generator=generator, dtype=torch.float64) * 2 - 1).to(device)
    w = z - vectors @ (vectors.T @ z) if vectors is not None else z
    with _counting(matvec, f"SLQ, {num_probes} probes × {steps} steps", steps * num_probes, progress) as counted:
        alpha, beta = lanczos_tridiagonal(counted, w, steps, vectors)
    nodes, weights = [top], [torch.ones_like(top)]
    norms = (w**2).sum(0).cpu()
    for a, b_, norm in zip(alpha.cpu(), beta.cpu(), norms):
        theta, s = np.linalg.eigh(np.diag(a.numpy()) + np.diag(b_.numpy(), 1) + np.diag(b_.numpy(), -1))
        nodes.append(torch.from_numpy(theta))
        weights.append(norm * torch.from_numpy(s[0] ** 2) / num_probes)
    return SpectralDensity(torch.cat(nodes), torch.cat(weights), top, n, num_probes, steps)


def model_spectral_density(model: nn.Module, x: Tensor, normalization: str = "raw", num_probes: int = 10,
                           steps: int = 80, deflate: int = 32, seed: int = 0,
                           progress: bool = False) -> SpectralDensity:
    """``spectral_density`` of the ``full`` empirical NTK of a ``CoordMLP`` model on ``x`` (n = N·O), from the
    layer-wise matrix-free product, with the exact trace (Σ per-sample squared gradient norms) attached."""
    from coordnet.ntk.empirical import ntk_diagonal, ntk_matvec, require_mlp

    mlp = require_mlp(model, "model_spectral_density")
    device = mlp.linears[0].weight.device
    n = x.shape[0] * mlp.out_features
    density = spectral_density(ntk_matvec(model, x, normalization=normalization), n, num_probes, steps, deflate, seed,
                               device, progress)
    density.exact_trace = ntk_diagonal(model, x, normalization=normalization).sum().item()
    return density
