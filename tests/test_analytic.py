"""Infinite-width kernels: the duals against direct quadrature, wide networks against the limit, paper 2's form."""

import math

import numpy as np
import pytest
import torch

from coordnet.models import ACTIVATIONS as REGISTRY
from coordnet.models import Abs, AbsLinear, Activation, CoordMLP, Cos, Gaussian, ReLU, Sine
from coordnet.ntk import empirical_ntk
from coordnet.ntk.analytic import analytic_kernels, analytic_ntk, eoc_cosine_map, eoc_ntk

# every registered activation (its defaults) and other parameters of the built-in families
ACTIVATIONS = [cls() for cls in REGISTRY.values()] + [AbsLinear(0.3, 1.2), AbsLinear(1.0, -0.5), Cos(5.0),
                                                      Cos(2.0, 0.4), Sine(3.0), Gaussian(0.5)]
# (var1, var2, cov): generic, negative correlation, nearly collinear, unequal scales
COVARIANCES = [(1.0, 1.0, 0.3), (0.7, 1.3, -0.6), (1.0, 2.0, 0.999 * math.sqrt(2.0)), (0.2, 3.0, 0.5)]


class Softplus(Activation):
    """An activation without a closed-form dual: its ``dual`` is the base class's quadrature."""

    def forward(self, x):
        return torch.nn.functional.softplus(x)

    def derivative(self, x):
        return torch.sigmoid(x)


def gauss_legendre(lo, hi, n=240):
    """Nodes and weights of an n-point Gauss–Legendre rule on [lo, hi] (arrays broadcast)."""
    x, w = np.polynomial.legendre.leggauss(n)
    lo, hi = np.asarray(lo, float)[..., None], np.asarray(hi, float)[..., None]
    return 0.5 * (hi - lo) * x + 0.5 * (hi + lo), 0.5 * (hi - lo) * w


def reference_duals(f, var1, var2, cov, half_width=12.0):
    """E[f(u) f(v)] by piecewise Gauss–Legendre over z1, z2 ∈ [−12, 12], split where u = 0 and v = 0.

    u = √var1·z1, v = t·z1 + r·z2: with the kinks of |x| and ReLU on the splits every piece is smooth,
    so the rule converges to round-off; independent of the closed forms and of Gauss–Hermite.
    """
    t = cov / math.sqrt(var1)
    r = math.sqrt(var2 - t**2)
    density = lambda z: np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)  # noqa: E731
    total = 0.0
    for lo, hi in ((-half_width, 0.0), (0.0, half_width)):
        z1, w1 = gauss_legendre(lo, hi)  # (n,)
        split = np.clip(-t * z1 / r, -half_width, half_width)  # v = 0
        inner = 0.0
        for a, b in ((np.full_like(split, -half_width), split), (split, np.full_like(split, half_width))):
            z2, w2 = gauss_legendre(a, b)  # (n, n)
            v = t * z1[:, None] + r * z2
            inner = inner + (f(v) * density(z2) * w2).sum(1)
        total += (f(math.sqrt(var1) * z1) * inner * density(z1) * w1).sum()
    return total


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=repr)
def test_duals_equal_direct_quadrature_of_their_expectations(activation):
    phi = lambda x: activation(torch.from_numpy(np.asarray(x))).numpy()  # noqa: E731
    dphi = lambda x: activation.derivative(torch.from_numpy(np.asarray(x))).numpy()  # noqa: E731
    for var1, var2, cov in COVARIANCES:
        got_phi, got_dphi = activation.dual(*(torch.tensor(v, dtype=torch.float64) for v in (var1, var2, cov)))
        assert got_phi.item() == pytest.approx(reference_duals(phi, var1, var2, cov), abs=1e-8, rel=1e-8)
        assert got_dphi.item() == pytest.approx(reference_duals(dphi, var1, var2, cov), abs=1e-8, rel=1e-8)


def test_quadrature_fallback_for_an_activation_without_a_closed_form():
    act = Softplus()
    phi = lambda x: act(torch.from_numpy(np.asarray(x))).numpy()  # noqa: E731
    dphi = lambda x: act.derivative(torch.from_numpy(np.asarray(x))).numpy()  # noqa: E731
    for var1, var2, cov in COVARIANCES:
        got = act.dual(*(torch.tensor(v, dtype=torch.float64) for v in (var1, var2, cov)))
        assert got[0].item() == pytest.approx(reference_duals(phi, var1, var2, cov), rel=1e-8)
        assert got[1].item() == pytest.approx(reference_duals(dphi, var1, var2, cov), rel=1e-8)
    # and the base class's quadrature agrees with every closed form, kinked ones included
    v1, v2, c = (torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64), torch.tensor([1.0, 1.5, 0.3], dtype=torch.float64),
                 torch.tensor([0.2, -0.8, 0.7], dtype=torch.float64))
    for act in (Cos(2.0, 0.4), Sine(3.0), Gaussian(0.5), ReLU(), AbsLinear(0.3, 1.2)):
        for closed, numeric in zip(act.dual(v1, v2, c), Activation.dual(act, v1, v2, c)):
            torch.testing.assert_close(numeric, closed, rtol=1e-7, atol=1e-9)


def test_abrelu_duals_when_a_variance_is_zero():
    zero, one = torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)
    # u ≡ 0: E[φ(0)φ(v)] = 0 and E[φ′(0)φ′(v)] = φ′(0)·a, with φ′(0) = a for the family, 0 for ReLU and |x|
    assert AbsLinear(0.3, 1.2).dual(zero, one, zero) == (pytest.approx(0.0), pytest.approx(0.09))
    assert ReLU().dual(zero, one, zero)[1].item() == 0.0
    assert AbsLinear(0.3, 1.2).dual(zero, zero, zero)[1].item() == pytest.approx(0.09)


def test_relu_is_the_arc_cosine_kernel_and_eoc_map_matches_it():
    rho = torch.linspace(-1, 1, 41, dtype=torch.float64)
    arc_cos = (torch.sqrt(1 - rho**2) + rho * (math.pi - torch.acos(rho))) / math.pi  # Cho & Saul, degree 1
    phi, dphi = ReLU().dual(torch.ones_like(rho), torch.ones_like(rho), rho)
    torch.testing.assert_close(2 * phi, arc_cos)  # σ² = 2 (He) times E[relu relu]
    torch.testing.assert_close(eoc_cosine_map(rho, 0.5)[0], arc_cos)
    torch.testing.assert_close(2 * dphi, 1 - torch.acos(rho) / math.pi)


# Frequency 1 for cos and sine, neural-tangents' default: the error falls like c/√width for every frequency, but
# c grows with it (c ≈ 1.5 at s = 1, ≈ 4.3 at s = 3 over widths 256–8192), and the bound below is 3/√width.
WIDE = [
    ("relu", "he", "ntk", True), ("relu", "he", "standard", False), (Abs(), "eoc", "ntk", False),
    (AbsLinear(0.3, 1.2), "eoc", "standard", True), (Cos(1.0), "he", "standard", True),
    (Sine(1.0), "he", "ntk", True), (Gaussian(0.5), "standard", "standard", True),
]


@pytest.mark.parametrize("activation, init, parametrization, bias", WIDE, ids=lambda v: repr(v))
def test_width_4096_networks_concentrate_around_the_analytic_ntk(activation, init, parametrization, bias):
    x = torch.rand(32, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1
    errors = []
    for seed in range(4):
        torch.manual_seed(seed)
        net = CoordMLP(2, 1, 4096, 2, activation, init, parametrization, bias=bias, bias_std=0.5 if bias else 0.0)
        empirical, analytic = empirical_ntk(net, x, mode="mean"), analytic_ntk(net, x, mode="mean")
        errors.append(((empirical - analytic).norm() / analytic.norm()).item())
    assert np.mean(errors) <= 3 / math.sqrt(4096), errors


def test_nngp_is_the_output_covariance_over_initialisations():
    x = torch.tensor([[0.5, -0.2], [0.1, 0.9], [-0.7, -0.4]])
    outputs = []
    for seed in range(3000):
        torch.manual_seed(seed)
        outputs.append(CoordMLP(2, 1, 64, 2, Cos(2.0), "he", bias=True, bias_std=0.3)(x)[:, 0])
    sample = torch.stack(outputs).double()
    covariance = sample.T @ sample / len(outputs)
    expected = analytic_kernels(CoordMLP(2, 1, 64, 2, Cos(2.0), "he", bias=True, bias_std=0.3), x).nngp
    torch.testing.assert_close(covariance, expected, atol=0.06, rtol=0.0)  # Monte Carlo: ~3/√3000 of ~1


@pytest.mark.parametrize("delta", [0.125, 0.5, 0.875, 1.0])
@pytest.mark.parametrize("depth", [1, 2, 7])
def test_paper_2_closed_form_equals_the_general_recursion(delta, depth):
    x = torch.randn(12, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    a, b = math.sqrt(1 - delta), math.sqrt(delta)  # a² + b² = 1: σ² = 1, so paper 2's X_1 = ⟨x, x′⟩
    net = CoordMLP(16, 1, [32] * (depth - 1) or [32], 1, AbsLinear(a, b), "eoc", "ntk", bias=False,
                   first_layer_fan_in=False)
    if depth == 1:  # one weight matrix: the NTK of a linear model, ⟨x, x′⟩
        torch.testing.assert_close(eoc_ntk(x, delta=delta, depth=1, normalization="raw"), x @ x.T)
        return
    closed = eoc_ntk(x, delta=delta, depth=depth)
    torch.testing.assert_close(analytic_ntk(net, x, normalization="by_n"), closed, rtol=1e-12, atol=1e-12)
    # at the EOC K(x, x) = l·‖x‖² (paper 2 §3)
    torch.testing.assert_close(torch.diagonal(closed) * 12, depth * (x**2).sum(1), rtol=1e-12, atol=0)


def test_output_modes_and_normalisation_match_the_empirical_engine():
    net = CoordMLP(2, 3, 16, 2, "relu", "he")
    x1, x2 = torch.rand(5, 2), torch.rand(4, 2)
    for mode in ("full", "trace", "mean", "per_output"):
        for normalization in ("raw", "by_n"):
            analytic = analytic_ntk(net, x1, x2, mode, normalization)
            assert analytic.shape == empirical_ntk(net, x1, x2, mode, normalization).shape
    theta = analytic_kernels(net, x1, x2).ntk
    torch.testing.assert_close(analytic_ntk(net, x1, x2, "full").view(5, 3, 4, 3)[:, 1, :, 1], theta)
    assert analytic_ntk(net, x1, x2, "full").view(5, 3, 4, 3)[:, 0, :, 1].abs().max() == 0
    torch.testing.assert_close(analytic_ntk(net, x1, x2, "trace", "by_n"), 3 * theta / 5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="needs a CoordMLP"):
        analytic_kernels(torch.nn.Linear(2, 1), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="delta must lie in"):
        eoc_ntk(torch.ones(2, 3), delta=1.5)
    with pytest.raises(ValueError, match="depth must be a positive integer"):
        eoc_ntk(torch.ones(2, 3), depth=0)
