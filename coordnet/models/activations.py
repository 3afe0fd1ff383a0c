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
Gaussian characteristic functions for cos, a Gaussian integral for the Gaussian bump), error-controlled
quadrature (``coordnet.models.quadrature``) for any other subclass.

Each activation names the initialisation the science pairs it with, ``default_init`` (stated in its
docstring with the source), which ``CoordMLP(init="auto")`` — the default everywhere — takes.

Look one up by name with ``get_activation("relu")``; YAML configs may also give a ``class_path``. A new
activation is one subclass and one ``register_activation("name", Class)`` line (docs/extending.md).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor, nn

from coordnet.models.quadrature import gaussian_duals

Duals = tuple[Tensor, Tensor]


def _correlation(var1: Tensor, var2: Tensor, cov: Tensor) -> tuple[Tensor, Tensor]:
    """(√(var1·var2), ρ = cov/√(var1·var2) clipped to [−1, 1], 0 where a variance is 0)."""
    norm = torch.sqrt(var1 * var2)
    rho = torch.where(norm > 0, cov / torch.where(norm > 0, norm, 1.0), 0.0)
    return norm, rho.clamp(-1.0, 1.0)


class Activation(nn.Module):
    """Elementwise φ with its derivative φ′. Subclasses implement both; shapes are preserved.

    ``default_init``: the initialisation ``CoordMLP(init="auto")`` uses with this activation — one of
    ``he``, ``standard``, ``eoc``, ``siren`` (``CoordMLP``'s docstring defines them). He unless a subclass
    names the one its source pairs it with.
    """

    default_init: ClassVar[str] = "he"
    #: Pre-activations where φ or φ′ is not smooth, where the duals' quadrature splits its panels.
    kinks: ClassVar[tuple[float, ...]] = ()

    def forward(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def derivative(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def dual(self, var1: Tensor, var2: Tensor, cov: Tensor) -> Duals:
        """(E[φ(u)φ(v)], E[φ′(u)φ′(v)]) for (u, v) ~ N(0, [[var1, cov], [cov, var2]]), elementwise, float64.

        This base version integrates numerically with an error estimate (``coordnet.models.quadrature``: adaptive
        Gauss–Legendre split at ``kinks``, accurate to 1e-9 + 1e-6·E|φ(u)φ(v)|, warning ``QuadratureWarning``
        where it cannot get there); subclasses with a closed form override it.
        """
        return gaussian_duals(self.forward, self.derivative, var1, var2, cov, kinks=self.kinks)

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

    Init ``eoc``: weight variance 1/((a² + b²)·fan_in), the Edge of Chaos of arXiv 2501.13225 (Def. 3); for
    ReLU that is He's 2/fan_in, for |x| 1/fan_in.

    Args:
        a: slope of the linear part.
        b: slope of the absolute-value part. Δ_φ = b²/(a² + b²) measures how far φ is from linear.
    """

    default_init = "eoc"
    kinks = (0.0,)

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
    the two differ only on the measure-zero set x = 0. Init ``he`` (He et al. 2015): N(0, 2/fan_in), which
    is also ReLU's Edge of Chaos.
    """

    default_init = "he"

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

    Init ``he``: N(0, 2/fan_in) on every layer, as paper 1 (arXiv 2402.04783 §6) trains cos networks.

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

    Init ``siren``: first layer U(±1/fan_in), later ones U(±√(6/fan_in)/ω0) (Sitzmann et al. 2020, §3.2 and
    their code).

    Args:
        omega0: frequency ω0 (30 in Sitzmann et al. 2020).
    """

    default_init = "siren"

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

    Init ``he``: Ramasinghe & Lucey (arXiv 2111.15135) state no init of their own (their code keeps
    PyTorch's default linear layers); coordnet uses He, as for the other non-periodic activations.

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


def register_activation(name: str, cls: type[Activation]) -> type[Activation]:
    """Make ``cls`` known by ``name`` (case-insensitive) to ``get_activation``, configs and the CLI; returns ``cls``.

    Everything that reads an activation (training, the exact and analytic NTK, the callback, the property
    tests over ``ACTIVATIONS``) then works with it: it needs only ``forward`` and ``derivative``.

    Raises:
        ValueError: ``name`` is taken by another class, or ``cls`` is not an ``Activation`` subclass.
    """
    if not (isinstance(cls, type) and issubclass(cls, Activation)):
        raise ValueError(f"register_activation: {cls!r} is not a subclass of coordnet's Activation")
    key = name.lower()
    if ACTIVATIONS.get(key, cls) is not cls:
        raise ValueError(f"register_activation: the name {name!r} is taken by {ACTIVATIONS[key].__name__}")
    ACTIVATIONS[key] = cls
    return cls


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
