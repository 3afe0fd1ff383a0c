"""gaussian_duals: adaptive Gaussian dual integrals against closed forms and brute-force references.

Tolerances are the function's own contract |F̂ − F| ≤ atol + rtol·E|φ(u)φ(v)|, with the scale bounded
above by Cauchy–Schwarz, E|φ(u)φ(v)| ≤ √(E[φ(u)²]·E[φ(v)²]), from the diagonal closed forms.
"""

import math
import warnings

import numpy as np
import pytest
import torch

from coordnet.models import Abs, AbsLinear, Cos, Gaussian, ReLU
from coordnet.models.quadrature import QuadratureWarning, gaussian_duals

RTOL, ATOL = 1e-6, 1e-9


@pytest.fixture(autouse=True)
def one_thread():
    """Many small tensor ops: on a shared 2-core machine torch's 2 threads make these tests ~5× slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def f64(*values):
    return torch.tensor(values, dtype=torch.float64)


def gabor_closed_form(var1, var2, cov, alpha, beta):
    """E[φ(u)φ(v)] and, by Price's theorem ∂/∂cov E[φ(u)φ(v)] = E[φ′(u)φ′(v)], the derivative dual, for
    φ(x) = exp(−αx²)·cos(βx). With A = 2α·I and C the covariance, E[exp(−½ xᵀAx + i·bᵀx)] =
    det(I + CA)^(−½)·exp(−½ bᵀ C(I + AC)⁻¹ b), and cos(βu)cos(βv) = ½[cos β(u − v) + cos β(u + v)].
    """
    cov = cov.clone().requires_grad_(True)
    det = (1 + 2 * alpha * var1) * (1 + 2 * alpha * var2) - (2 * alpha * cov) ** 2
    s11 = (var1 * (1 + 2 * alpha * var2) - 2 * alpha * cov**2) / det
    s22 = (var2 * (1 + 2 * alpha * var1) - 2 * alpha * cov**2) / det
    s12 = cov / det
    f = 0.5 * det**-0.5 * sum(torch.exp(-0.5 * beta**2 * (s11 + s22 + 2 * sign * s12)) for sign in (1, -1))
    (d,) = torch.autograd.grad(f.sum(), cov)
    return f.detach(), d


def contract_tol(f11, f22):
    return ATOL + RTOL * (f11 * f22).sqrt()


def quiet(*args, **kwargs):
    """gaussian_duals with QuadratureWarning turned into an error: these cases must meet the tolerance."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", QuadratureWarning)
        return gaussian_duals(*args, return_error=True, **kwargs)


def gabor_like(x):
    return torch.exp(-x**2) * torch.cos(5 * x)


def gabor_like_derivative(x):
    return -torch.exp(-x**2) * (2 * x * torch.cos(5 * x) + 5 * torch.sin(5 * x))


def test_gabor_like_at_variance_10_reaches_the_closed_form():
    # The case is cov = 5 (true 4.65e-7; order-96 Gauss–Hermite gives −3.1e-3); cov = 10 is E[φ(u)²].
    var, cov = f64(10, 10, 10, 10, 10), f64(5, 10, 0, 9, -3)
    f, d, err_f, err_d = quiet(gabor_like, gabor_like_derivative, var, var, cov)
    true_f, true_d = gabor_closed_form(var, var, cov, 1.0, 5.0)
    diag_f, diag_d = gabor_closed_form(var, var, var, 1.0, 5.0)
    assert true_f[0].item() == pytest.approx(4.6538e-7, rel=1e-4)
    assert ((f - true_f).abs() <= contract_tol(diag_f, diag_f)).all(), (f, true_f)
    assert ((d - true_d).abs() <= contract_tol(diag_d, diag_d)).all(), (d, true_d)
    assert ((f - true_f).abs() <= err_f).all() and ((d - true_d).abs() <= err_d).all()  # honest estimates
    assert (f[0] - true_f[0]).abs() < 1e-3 * true_f[0]  # the tiny off-diagonal value itself, to 0.1 %


def test_gabor_closed_form_matches_a_one_dimensional_integral():
    mpmath = pytest.importorskip("mpmath")
    density = lambda x: mpmath.exp(-x**2 / 20) / mpmath.sqrt(20 * mpmath.pi)  # noqa: E731  N(0, 10)
    ref = mpmath.quad(lambda x: (mpmath.exp(-x**2) * mpmath.cos(5 * x)) ** 2 * density(x), mpmath.linspace(-8, 8, 33))
    assert gabor_closed_form(f64(10), f64(10), f64(10), 1.0, 5.0)[0].item() == pytest.approx(float(ref), rel=1e-12)


def test_unreachable_tolerance_warns_and_strict_raises():
    cos = Cos(1.0)
    with pytest.warns(QuadratureWarning, match=r"phi=Cos\(s=1, phase=0\)\.forward.*rtol=1e-15.*estimated error"):
        gaussian_duals(cos.forward, cos.derivative, 1.0, 1.0, 0.5, rtol=1e-15, atol=0.0, max_panels=8)
    with pytest.raises(ValueError, match="1 of 1 entries miss"):
        gaussian_duals(cos.forward, cos.derivative, 1.0, 1.0, 0.5, rtol=1e-15, atol=0.0, max_panels=8, strict=True)
    # Only the inner integral over v | u fails here (cos(30·v) with sd(v | u) = 2); the outer one, over a
    # nearly constant φ(u) at var1 = 1e−4, converges, so the warning rests on the propagated inner error.
    cos30 = Cos(30.0)
    with pytest.warns(QuadratureWarning, match="1 of 1 entries"):
        gaussian_duals(cos30, cos30.derivative, 1e-4, 4.0, 0.0, max_panels=16)
    finer, finer_d = finer_pair(30.0)  # ~10³ oscillations across ±9σ at variance 4: out of reach of 16 panels
    with pytest.warns(QuadratureWarning, match="1 of 2 entries"):
        gaussian_duals(finer, finer_d, f64(4.0, 1e-4), f64(4.0, 1e-4), f64(2.0, 5e-5), kinks=(0.0,), max_panels=16)


@pytest.mark.parametrize("act", [ReLU(), Abs(), AbsLinear(0.3, 1.7)], ids=repr)
def test_kinked_activations_match_the_arc_cosine_closed_form(act):
    var1 = f64(1.0, 0.3, 7.0, 2.0, 1e-3, 1.0, 5.0)
    var2 = f64(1.0, 2.0, 0.01, 2.0, 4.0, 1.0, 0.2)
    rho = f64(0.3, -0.9, 0.999, -0.999, 0.5, 0.0, 0.97)
    cov = rho * (var1 * var2).sqrt()
    f, d, _, _ = quiet(act, act.derivative, var1, var2, cov, kinks=(0.0,))
    true_f, true_d = act.dual(var1, var2, cov)
    (f11, d11), (f22, d22) = act.dual(var1, var1, var1), act.dual(var2, var2, var2)
    assert ((f - true_f).abs() <= contract_tol(f11, f22)).all(), (f - true_f)
    assert ((d - true_d).abs() <= contract_tol(d11, d22)).all(), (d - true_d)


def finer_pair(omega0):
    def finer(x):
        return torch.sin(omega0 * (x.abs() + 1) * x)

    def finer_derivative(x):
        return omega0 * (2 * x.abs() + 1) * torch.cos(omega0 * (x.abs() + 1) * x)

    return finer, finer_derivative


def composite_legendre(a, b, panels, nodes=20):
    x, w = np.polynomial.legendre.leggauss(nodes)
    edges = np.linspace(a, b, panels + 1)
    half, mid = (edges[1:] - edges[:-1]) / 2, (edges[1:] + edges[:-1]) / 2
    return torch.tensor((mid[:, None] + half[:, None] * x).ravel()), torch.tensor((half[:, None] * w).ravel())


def brute_force(fn, var1, var2, cov, panels=40):
    """∬ fn(u)fn(v) p(u, v) du dv on a tensor composite Gauss–Legendre grid in (u, v) over ±9σ split at 0,
    with the bivariate normal density p itself (a different rule from the nested z1, z2 one)."""
    def axis(var):
        s = 9 * math.sqrt(var)
        (a, wa), (b, wb) = composite_legendre(-s, 0.0, panels), composite_legendre(0.0, s, panels)
        return torch.cat([a, b]), torch.cat([wa, wb])

    (u, wu), (v, wv) = axis(var1), axis(var2)
    det = var1 * var2 - cov**2
    u, v = u[:, None], v[None, :]
    density = torch.exp(-(var2 * u**2 - 2 * cov * u * v + var1 * v**2) / (2 * det)) / (2 * math.pi * math.sqrt(det))
    return (fn(u) * fn(v) * density * wu[:, None] * wv[None, :]).sum().item()


def brute_force_diagonal(fn, var, panels=400):
    s = 9 * math.sqrt(var)
    (a, wa), (b, wb) = composite_legendre(-s, 0.0, panels), composite_legendre(0.0, s, panels)
    z, w = torch.cat([a, b]), torch.cat([wa, wb])
    return (fn(z) ** 2 * w * torch.exp(-z**2 / (2 * var))).sum().item() / math.sqrt(2 * math.pi * var)


@pytest.mark.parametrize("var", [1e-4, 1e-2, 0.1])
def test_finer_with_its_kink_matches_a_brute_force_reference(var):
    finer, finer_d = finer_pair(30.0)
    var1, var2 = f64(var, var, var), f64(var, 0.7 * var, 0.7 * var)
    cov = f64(1.0, 0.5, -0.3) * (var1 * var2).sqrt()
    f, d, _, _ = quiet(finer, finer_d, var1, var2, cov, kinks=(0.0,))
    for got, fn in ((f, finer), (d, finer_d)):
        ref = f64(brute_force_diagonal(fn, var), *(brute_force(fn, var, 0.7 * var, c.item()) for c in cov[1:]))
        diag1, diag2 = brute_force_diagonal(fn, var), f64(*(brute_force_diagonal(fn, v.item()) for v in var2))
        assert ((got - ref).abs() <= contract_tol(torch.tensor(diag1), diag2)).all(), (got, ref)


def test_degenerate_variances_and_perfect_correlation_give_no_nan():
    # u ≡ 0, v ≡ 0, both, and v = ±√(var2/var1)·u (cov² = var1·var2, so r = 0).
    var1, var2 = f64(0.0, 2.0, 0.0, 1.0, 3.0, 0.5), f64(1.5, 0.0, 0.0, 4.0, 0.2, 0.5)
    cov = f64(0.0, 0.0, 0.0, 2.0, -math.sqrt(0.6), 0.5)
    for act in (Cos(2.0, phase=0.3), AbsLinear(0.3, 1.7)):
        f, d, _, _ = quiet(act, act.derivative, var1, var2, cov, kinks=(0.0,))
        true_f, true_d = act.dual(var1, var2, cov)
        assert torch.isfinite(f).all() and torch.isfinite(d).all()
        (f11, d11), (f22, d22) = act.dual(var1, var1, var1), act.dual(var2, var2, var2)
        assert ((f - true_f).abs() <= contract_tol(f11, f22)).all(), (act, f, true_f)
        # where a variance is 0 the bound √(d11·d22) still holds with φ′(0)² in place of E[φ′(0)²]
        assert ((d - true_d).abs() <= contract_tol(d11, d22) + ATOL).all(), (act, d, true_d)


def test_smooth_cos_matches_its_closed_form_including_cancellation():
    gen = torch.Generator().manual_seed(0)
    var1, var2, rho = torch.rand(3, 200, generator=gen, dtype=torch.float64)
    var1, var2 = 10 ** (5 * var1 - 4), 10 ** (5 * var2 - 4)  # 1e−4 … 10
    cov = (2 * rho - 1) * (var1 * var2).sqrt()
    act = Cos(5.0, phase=0.3)
    f, d, _, _ = quiet(act, act.derivative, var1, var2, cov)
    true_f, true_d = act.dual(var1, var2, cov)
    assert true_f.abs().min() < 1e-20  # entries where E[φφ] is tiny next to E|φφ| ≈ ½
    (f11, d11), (f22, d22) = act.dual(var1, var1, var1), act.dual(var2, var2, var2)
    assert ((f - true_f).abs() <= contract_tol(f11, f22)).all()
    assert ((d - true_d).abs() <= contract_tol(d11, d22)).all()


def test_gabor_with_support_and_period_hints_across_variances():
    omega0, s0 = 30.0, 10.0

    def gabor(x):
        return torch.exp(-((s0 * x) ** 2)) * torch.cos(omega0 * x)

    def gabor_d(x):
        return -torch.exp(-((s0 * x) ** 2)) * (2 * s0**2 * x * torch.cos(omega0 * x) + omega0 * torch.sin(omega0 * x))

    var1 = f64(1e-4, 1e-4, 1e-2, 1.0, 100.0, 100.0, 100.0)
    var2 = var1 * f64(1.0, 0.5, 2.0, 0.3, 1.0, 1.0, 0.01)
    cov = f64(1.0, 0.7, -0.4, 0.9, 1.0, 0.999, 0.5) * (var1 * var2).sqrt()
    # exp(−(s0·x)²) < 1e−18 beyond |x| = 0.65; the envelope's width 1/s0 is the shortest feature
    f, d, _, _ = quiet(gabor, gabor_d, var1, var2, cov, support=(-0.65, 0.65), period=0.1)
    true_f, true_d = gabor_closed_form(var1, var2, cov, s0**2, omega0)
    diag1, diag2 = (gabor_closed_form(v, v, v, s0**2, omega0) for v in (var1, var2))
    assert ((f - true_f).abs() <= contract_tol(diag1[0], diag2[0])).all(), (f, true_f)
    assert ((d - true_d).abs() <= contract_tol(diag1[1], diag2[1])).all(), (d, true_d)


def test_a_period_hint_turns_a_missed_narrow_bump_into_a_warning():
    bump = Gaussian(0.01)  # width 0.01 against σ = 10: unhinted nodes (spacing ~0.1) can miss it
    with pytest.warns(QuadratureWarning):
        gaussian_duals(bump, bump.derivative, 100.0, 100.0, 0.0, period=0.01, max_panels=64)
    f, d, _, _ = quiet(bump, bump.derivative, 100.0, 100.0, 0.0, support=(-0.1, 0.1), period=0.01)
    true_f, true_d = bump.dual(f64(100.0), f64(100.0), f64(0.0))
    assert f.item() == pytest.approx(true_f.item(), rel=1e-5) and abs(d.item() - true_d.item()) < ATOL


def test_broadcast_shapes_and_chunking():
    act = Cos(2.0)
    var1, var2, cov = torch.linspace(0.1, 2.0, 3)[:, None], torch.linspace(0.2, 1.0, 4)[None, :], 0.05
    out = gaussian_duals(act, act.derivative, var1, var2, cov, return_error=True, chunk=5)
    assert all(t.shape == (3, 4) and t.dtype == torch.float64 for t in out)
    true_f, true_d = act.dual(var1.double(), var2.double(), torch.tensor(cov, dtype=torch.float64))
    torch.testing.assert_close(out[0], true_f, rtol=0, atol=1e-7)
    torch.testing.assert_close(out[1], true_d, rtol=0, atol=1e-6)
