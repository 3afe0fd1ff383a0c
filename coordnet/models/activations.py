"""Activation objects: each carries its forward map φ and its derivative φ′.

Notation used across coordnet: ``x`` is a pre-activation (any shape), ``φ(x)`` the activation and
``φ′(x)`` its derivative, both elementwise and shape-preserving. The layer-wise NTK engine reads
``derivative`` instead of differentiating ``forward`` with autograd, so every ``derivative`` here
equals autograd's derivative of the matching ``forward`` everywhere, including at x = 0.

Families (special cases are thin subclasses, so the general form is tested against each one):

- ``AbsLinear(a, b)``: φ(x) = a·x + b·|x|, the "(a, b)-ReLU" of Terjék & González-Sánchez
  (arXiv 2501.13225). ``ReLU`` is (½, ½), ``Abs`` is (0, 1). Its Edge-of-Chaos weight variance is
  σ² = 1/(a² + b²) (He for ReLU, 1 for |x|).
- ``Cos(s, phase)``: φ(x) = cos(s·x + phase), the periodic activation of Saratchandran et al.
  (arXiv 2402.04783). ``Sine(omega0)`` is SIREN's sin(ω0·x) = cos(ω0·x − π/2).
- ``Gaussian(sigma)``: φ(x) = exp(−x²/(2σ²)) (Ramasinghe & Lucey, arXiv 2111.15135).

Each activation also carries its Gaussian duals, ``dual(var1, var2, cov)`` =
(E[φ(u)φ(v)], E[φ′(u)φ′(v)]) for (u, v) ~ N(0, [[var1, cov], [cov, var2]]), which the infinite-width
kernels (``coordnet.ntk.analytic``) read: closed forms for the three families (arc-cosine for a·x + b·|x|,
Gaussian characteristic functions for cos, a Gaussian integral for the Gaussian bump), Gauss–Hermite
quadrature for any other subclass.

Look one up by name with ``get_activation("relu")``; YAML configs may also give a ``class_path``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

Duals = tuple[Tensor, Tensor]


def _correlation(var1: Tensor, var2: Tensor, cov: Tensor) -> tuple[Tensor, Tensor]:
    """(√(var1·var2), ρ = cov/√(var1·var2) clipped to [−1, 1], 0 where a variance is 0)."""
    norm = torch.sqrt(var1 * var2)
    rho = torch.where(norm > 0, cov / torch.where(norm > 0, norm, 1.0), 0.0)
    return norm, rho.clamp(-1.0, 1.0)


def gauss_hermite_duals(activation: "Activation", var1: Tensor, var2: Tensor, cov: Tensor, order: int = 96,
                        chunk: int = 2048) -> Duals:
    """``activation.dual`` by an ``order``² Gauss–Hermite rule over u = √var1·z1, v = t·z1 + r·z2.

    t = cov/√var1 and r = √(var2 − t²), z1, z2 ~ N(0, 1) independent. Exact to round-off for
    polynomials of degree < 2·order; smooth activations converge exponentially, kinks only polynomially
    (hence the closed forms). Inputs broadcast; computed in float64, ``chunk`` entries at a time.
    """
    nodes, weights = np.polynomial.hermite_e.hermegauss(order)
    z = torch.from_numpy(nodes)
    w = torch.from_numpy(weights / math.sqrt(2 * math.pi))
    var1, var2, cov = torch.broadcast_tensors(*(torch.as_tensor(t, dtype=torch.float64) for t in (var1, var2, cov)))
    shape = var1.shape
    out_f, out_d = [], []
    for a, b, c in zip(*(t.reshape(-1).split(chunk) for t in (var1, var2, cov))):
        z, w = z.to(a.device), w.to(a.device)
        su = a.sqrt()
        t = torch.where(su > 0, c / torch.where(su > 0, su, 1.0), 0.0)
        r = (b - t**2).clamp_min(0).sqrt()
        u = su[:, None, None] * z[None, :, None]  # (n, Q, 1)
        v = t[:, None, None] * z[None, :, None] + r[:, None, None] * z[None, None, :]  # (n, Q, Q)
        ww = w[:, None] * w[None, :]
        out_f.append((activation(u) * activation(v) * ww).sum((1, 2)))
        out_d.append((activation.derivative(u) * activation.derivative(v) * ww).sum((1, 2)))
    return torch.cat(out_f).reshape(shape), torch.cat(out_d).reshape(shape)


class Activation(nn.Module):
    """Elementwise φ with its derivative φ′. Subclasses implement both; shapes are preserved."""

    def forward(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def derivative(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def dual(self, var1: Tensor, var2: Tensor, cov: Tensor) -> Duals:
        """(E[φ(u)φ(v)], E[φ′(u)φ′(v)]) for (u, v) ~ N(0, [[var1, cov], [cov, var2]]), elementwise, float64.

        This base version integrates numerically (``gauss_hermite_duals``); subclasses with a closed form
        override it.
        """
        return gauss_hermite_duals(self, var1, var2, cov)

    def eoc_variance(self) -> float:
        """Weight variance σ² that puts a deep network of this activation at the Edge of Chaos."""
        raise ValueError(
            f"Edge-of-Chaos initialisation is defined for the abrelu family (relu, abs, abrelu); "
            f"got activation {self!r}. Use init='he', 'standard' or 'siren' instead."
        )


def _check_positive(name: str, value: float, owner: str) -> float:
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{owner}: {name} must be a finite number > 0, got {value!r}")
    return float(value)


class AbsLinear(Activation):
    """`φ(x) = a·x + b·|x|`, with `φ′(x) = a + b·sgn(x)` and `φ′(0) = a`.

    Args:
        a: slope of the linear part.
        b: slope of the absolute-value part. Δ_φ = b²/(a² + b²) measures how far φ is from linear.
    """

    def __init__(self, a: float = 0.5, b: float = 0.5) -> None:
        super().__init__()
        if not (math.isfinite(a) and math.isfinite(b)) or (a == 0 and b == 0):
            raise ValueError(f"abrelu: a and b must be finite and not both 0, got a={a!r}, b={b!r}")
        self.a, self.b = float(a), float(b)

    def forward(self, x: Tensor) -> Tensor:
        return self.a * x + self.b * x.abs()

    def derivative(self, x: Tensor) -> Tensor:
        return self.a + self.b * torch.sign(x)

    def dual(self, var1: Tensor, var2: Tensor, cov: Tensor) -> Duals:
        """Arc-cosine closed forms (Cho & Saul 2009; Daniely et al. 2016), with ρ = cov/√(var1·var2):

        E[φ(u)φ(v)] = a²·cov + b²·√(var1·var2)·(2/π)(ρ·arcsin ρ + √(1 − ρ²))   (E[u|v|] = 0 by symmetry)
        E[φ′(u)φ′(v)] = a² + b²·(2/π)·arcsin ρ, and φ′(0)·a (φ′(0)² if both vanish) where a variance is 0.
        """
        norm, rho = _correlation(var1, var2, cov)
        two_pi = 2 / math.pi
        phi = self.a**2 * cov + self.b**2 * norm * two_pi * (rho * torch.asin(rho) + (1 - rho**2).clamp_min(0).sqrt())
        d0 = self.derivative(torch.zeros((), dtype=torch.float64)).item()  # φ′(0): a, or 0 for ReLU and |x|
        degenerate = torch.where((var1 > 0) | (var2 > 0), torch.full_like(norm, d0 * self.a), torch.full_like(norm, d0**2))
        dphi = torch.where(norm > 0, self.a**2 + self.b**2 * two_pi * torch.asin(rho), degenerate)
        return phi, dphi

    def eoc_variance(self) -> float:
        """σ² = 1/(a² + b²) (arXiv 2501.13225, Def. 3)."""
        return 1.0 / (self.a**2 + self.b**2)

    @property
    def delta(self) -> float:
        """Δ_φ = b²/(a² + b²): 0 for the identity, ½ for ReLU, 1 for |x|."""
        return self.b**2 / (self.a**2 + self.b**2)

    def extra_repr(self) -> str:
        return f"a={self.a:g}, b={self.b:g}"


class ReLU(AbsLinear):
    """`φ(x) = max(x, 0)`, the (½, ½) member of ``AbsLinear``.

    φ′(0) = 0 here (torch's and Nguyen et al.'s convention), where the general family has φ′(0) = a;
    the two differ only on the measure-zero set x = 0.
    """

    def __init__(self) -> None:
        super().__init__(0.5, 0.5)

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(x)

    def derivative(self, x: Tensor) -> Tensor:
        return (x > 0).to(x.dtype)

    def extra_repr(self) -> str:
        return ""


class Abs(AbsLinear):
    """`φ(x) = |x|`, the (0, 1) member of ``AbsLinear``; φ′(0) = 0."""

    def __init__(self) -> None:
        super().__init__(0.0, 1.0)

    def forward(self, x: Tensor) -> Tensor:
        return x.abs()

    def derivative(self, x: Tensor) -> Tensor:
        return torch.sign(x)

    def extra_repr(self) -> str:
        return ""


class Cos(Activation):
    """`φ(x) = cos(s·x + phase)`, with `φ′(x) = −s·sin(s·x + phase)`.

    Args:
        s: frequency s > 0 (the paper's s; 5 in arXiv 2402.04783 §6).
        phase: phase shift in radians.
    """

    def __init__(self, s: float = 1.0, phase: float = 0.0) -> None:
        super().__init__()
        self.s = _check_positive("frequency s", s, "cos")
        self.phase = float(phase)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cos(self.s * x + self.phase)

    def derivative(self, x: Tensor) -> Tensor:
        return -self.s * torch.sin(self.s * x + self.phase)

    def dual(self, var1: Tensor, var2: Tensor, cov: Tensor) -> Duals:
        """From E[cos(s(u ∓ v))] = exp(−s²(var1 + var2 ∓ 2cov)/2), with e∓ those two exponentials:

        E[φ(u)φ(v)] = ½(e₋ + cos(2·phase)·e₊),   E[φ′(u)φ′(v)] = (s²/2)(e₋ − cos(2·phase)·e₊).
        """
        e_minus = torch.exp(-0.5 * self.s**2 * (var1 + var2 - 2 * cov))
        e_plus = torch.exp(-0.5 * self.s**2 * (var1 + var2 + 2 * cov))
        c2 = math.cos(2 * self.phase)
        return 0.5 * (e_minus + c2 * e_plus), 0.5 * self.s**2 * (e_minus - c2 * e_plus)

    def extra_repr(self) -> str:
        return f"s={self.s:g}, phase={self.phase:g}"


class Sine(Cos):
    """SIREN's `φ(x) = sin(ω0·x)` = cos(ω0·x − π/2), with `φ′(x) = ω0·cos(ω0·x)`.

    Args:
        omega0: frequency ω0 (30 in Sitzmann et al. 2020).
    """

    def __init__(self, omega0: float = 30.0) -> None:
        super().__init__(s=_check_positive("omega0", omega0, "sine"), phase=-math.pi / 2)

    @property
    def omega0(self) -> float:
        return self.s

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(self.s * x)

    def derivative(self, x: Tensor) -> Tensor:
        return self.s * torch.cos(self.s * x)

    def extra_repr(self) -> str:
        return f"omega0={self.s:g}"


class Gaussian(Activation):
    """`φ(x) = exp(−x²/(2σ²))`, with `φ′(x) = −(x/σ²)·φ(x)`.

    Args:
        sigma: width σ > 0 (0.05 in the Lucey group's image configs, relative to SIREN-scale inputs).
    """

    def __init__(self, sigma: float = 0.1) -> None:
        super().__init__()
        self.sigma = _check_positive("sigma", sigma, "gaussian")

    def forward(self, x: Tensor) -> Tensor:
        return torch.exp(-0.5 * (x / self.sigma) ** 2)

    def derivative(self, x: Tensor) -> Tensor:
        return -(x / self.sigma**2) * self.forward(x)

    def dual(self, var1: Tensor, var2: Tensor, cov: Tensor) -> Duals:
        """Gaussian integrals, with D = det(I + C/σ²) = (1 + var1/σ²)(1 + var2/σ²) − cov²/σ⁴:

        E[φ(u)φ(v)] = D^(−1/2),   E[φ′(u)φ′(v)] = E[uv·φ(u)φ(v)]/σ⁴ = cov·D^(−3/2)/σ⁴.
        """
        s2 = self.sigma**2
        det = (1 + var1 / s2) * (1 + var2 / s2) - cov**2 / s2**2
        return det**-0.5, cov * det**-1.5 / s2**2

    def extra_repr(self) -> str:
        return f"sigma={self.sigma:g}"


ACTIVATIONS: dict[str, type[Activation]] = {
    "abrelu": AbsLinear,
    "abs": Abs,
    "cos": Cos,
    "gaussian": Gaussian,
    "relu": ReLU,
    "sine": Sine,
}


def get_activation(name_or_obj: str | Activation, **kwargs: float) -> Activation:
    """Return an ``Activation`` from its registry name (``"cos"``, ``"sine"``, …) or pass one through.

    Raises:
        ValueError: unknown name, or an object that is not an ``Activation``.
    """
    if isinstance(name_or_obj, Activation):
        if kwargs:
            raise ValueError(f"activation parameters {kwargs} given with an instance {name_or_obj!r}")
        return name_or_obj
    if not isinstance(name_or_obj, str):
        raise ValueError(f"activation must be a name or an Activation, got {type(name_or_obj).__name__}")
    key = name_or_obj.lower()
    if key not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {name_or_obj!r}; expected one of {', '.join(sorted(ACTIVATIONS))}"
        )
    return ACTIVATIONS[key](**kwargs)
