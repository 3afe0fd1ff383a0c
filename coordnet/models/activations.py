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

Look one up by name with ``get_activation("relu")``; YAML configs may also give a ``class_path``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class Activation(nn.Module):
    """Elementwise φ with its derivative φ′. Subclasses implement both; shapes are preserved."""

    def forward(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def derivative(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

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
