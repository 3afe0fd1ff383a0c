"""Activation properties. Every test over ``every_activation()`` runs for each registered activation (its default
instance) as soon as it is registered, plus a few other parameters of the built-in families."""

import importlib
import math

import pytest
import torch

from coordnet.models import ACTIVATIONS, Abs, AbsLinear, Activation, CoordMLP, Cos, Gaussian, ReLU, Sine, get_activation
from coordnet.models.config import init_config
from coordnet.models.mlp import INITS

OTHER_PARAMETERS = [Cos(5.0), Cos(2.0, phase=0.3), AbsLinear(0.3, 1.7), AbsLinear(-1.0, 0.5), Gaussian(0.4)]
# (var1, var2, cov): generic, negative correlation, unequal scales
COVARIANCES = [(1.0, 1.0, 0.3), (0.7, 1.3, -0.6), (0.2, 3.0, 0.5)]


def every_activation() -> list[Activation]:
    return [cls() for cls in ACTIVATIONS.values()] + OTHER_PARAMETERS


def name(act: Activation) -> str:
    registered = [key for key, cls in ACTIVATIONS.items() if type(act) is cls]
    return f"{registered[0] if registered else type(act).__name__}({act.extra_repr()})"


ALL = every_activation()


@pytest.mark.parametrize("act", ALL, ids=name)
def test_derivative_matches_autograd_everywhere_including_zero(act):
    x = torch.cat([torch.linspace(-3, 3, 601, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)])
    x.requires_grad_(True)
    (grad,) = torch.autograd.grad(act(x).sum(), x)
    torch.testing.assert_close(act.derivative(x.detach()), grad, rtol=1e-12, atol=1e-12)


def gaussian_samples(replicates: int = 8, log2_points: int = 16) -> list[torch.Tensor]:
    """Independent scrambled-Sobol draws of (z1, z2) ~ N(0, I), each (2, 2^log2_points): randomised quasi-Monte
    Carlo, whose error falls almost as 1/n and whose spread over the replicates estimates it."""
    draws = []
    for seed in range(replicates):
        cube = torch.quasirandom.SobolEngine(2, scramble=True, seed=seed).draw(2**log2_points, dtype=torch.float64)
        draws.append(torch.special.ndtri(cube.clamp(1e-15, 1 - 1e-15)).T)
    return draws


SAMPLES = gaussian_samples()


@pytest.mark.parametrize("act", ALL, ids=name)
def test_duals_agree_with_monte_carlo(act):
    """E[φ(u)φ(v)] and E[φ′(u)φ′(v)] against 8 × 65 536 quasi-Monte Carlo samples, within 8 standard errors."""
    for var1, var2, cov in COVARIANCES:
        t = cov / math.sqrt(var1)
        estimates = []
        for z1, z2 in SAMPLES:
            u, v = math.sqrt(var1) * z1, t * z1 + math.sqrt(var2 - t**2) * z2
            estimates.append([(act(u) * act(v)).mean(), (act.derivative(u) * act.derivative(v)).mean()])
        estimates = torch.tensor(estimates)  # (replicates, 2)
        mean, error = estimates.mean(0), 8 * estimates.std(0) / math.sqrt(len(estimates)) + 1e-9
        duals = torch.stack(act.dual(*(torch.tensor(value, dtype=torch.float64) for value in (var1, var2, cov))))
        assert ((duals - mean).abs() <= error).all(), (var1, var2, cov, duals, mean, error)


@pytest.mark.parametrize("act", ALL, ids=name)
def test_edge_of_chaos_where_defined(act):
    """σ²·E[φ′(u)²] = 1 at the EOC variance (the gradient neither grows nor shrinks with depth), for every q."""
    try:
        sigma2 = act.eoc_variance()
    except ValueError as err:
        assert "Edge-of-Chaos" in str(err)
        return
    for q in (0.1, 1.0, 10.0):
        q = torch.tensor(q, dtype=torch.float64)
        assert sigma2 * act.dual(q, q, q)[1].item() == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("act", ALL, ids=name)
def test_default_init_builds_a_network(act):
    assert act.default_init in INITS and act.default_init != "auto"
    model = CoordMLP(2, 1, 16, 2, act)
    assert model.init == act.default_init
    assert torch.isfinite(model(torch.rand(5, 2))).all()


@pytest.mark.parametrize("act", ALL, ids=name)
def test_its_config_rebuilds_it(act):
    """Checkpoints keep an activation as {class_path, init_args}: every argument must be kept as an attribute."""
    config = init_config(act)
    module, _, cls = config["class_path"].rpartition(".")
    rebuilt = getattr(importlib.import_module(module), cls)(**config["init_args"])
    x = torch.linspace(-2, 2, 41)
    assert type(rebuilt) is type(act) and torch.equal(rebuilt(x), act(x))


@pytest.mark.parametrize("act", ALL, ids=name)
def test_shape_is_preserved(act):
    x = torch.randn(3, 4, 5)
    assert act(x).shape == x.shape and act.derivative(x).shape == x.shape


def test_special_cases_equal_the_general_family():
    x = torch.randn(1000, dtype=torch.float64)
    torch.testing.assert_close(ReLU()(x), AbsLinear(0.5, 0.5)(x), rtol=0, atol=0)
    torch.testing.assert_close(Abs()(x), AbsLinear(0.0, 1.0)(x), rtol=0, atol=0)
    torch.testing.assert_close(Sine(7.0)(x), Cos(7.0, phase=-math.pi / 2)(x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(Sine(7.0).derivative(x), Cos(7.0, phase=-math.pi / 2).derivative(x), rtol=1e-12,
                               atol=1e-12)
    # Away from 0 the derivatives of the special cases equal the family's a + b·sgn(x).
    nz = x[x != 0]
    torch.testing.assert_close(ReLU().derivative(nz), AbsLinear(0.5, 0.5).derivative(nz))


def test_closed_forms():
    x = torch.tensor([0.0, 0.5, -1.0], dtype=torch.float64)
    torch.testing.assert_close(Cos(3.0)(x), torch.cos(3 * x))
    torch.testing.assert_close(Gaussian(0.5)(x), torch.exp(-x**2 / 0.5))
    torch.testing.assert_close(AbsLinear(0.2, 0.7)(x), 0.2 * x + 0.7 * x.abs())
    assert AbsLinear(0.2, 0.7).derivative(torch.tensor([0.0])).item() == pytest.approx(0.2)  # φ′(0) = a


def test_edge_of_chaos_variances_and_delta():
    assert ReLU().eoc_variance() == pytest.approx(2.0)  # He
    assert Abs().eoc_variance() == pytest.approx(1.0)
    assert AbsLinear(1.0, math.sqrt(3)).eoc_variance() == pytest.approx(0.25)
    assert ReLU().delta == pytest.approx(0.5) and Abs().delta == pytest.approx(1.0)
    with pytest.raises(ValueError, match="Edge-of-Chaos.*abrelu"):
        Sine().eoc_variance()


def test_registry_and_lookup():
    assert {"abrelu", "abs", "cos", "gaussian", "relu", "sine"} <= set(ACTIVATIONS)
    assert isinstance(get_activation("ReLU"), ReLU)
    assert get_activation("cos", s=5.0).s == 5.0
    act = Sine(10.0)
    assert get_activation(act) is act
    with pytest.raises(ValueError, match="unknown activation 'swish'; expected one of abrelu"):
        get_activation("swish")


@pytest.mark.parametrize("make, match", [
    (lambda: Cos(0.0), "frequency s must be a finite number > 0"),
    (lambda: Sine(-1.0), "omega0 must be"),
    (lambda: Gaussian(float("nan")), "sigma must be"),
    (lambda: AbsLinear(0.0, 0.0), "not both 0"),
])
def test_bad_parameters_are_rejected(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_auto_init_is_each_activations_own():
    assert [CoordMLP(2, 1, 8, 1, act).init for act in ("sine", "cos", "relu", "abs", "abrelu", "gaussian")] == \
        ["siren", "he", "he", "eoc", "eoc", "he"]
    torch.manual_seed(0)
    auto = CoordMLP(2, 1, 8, 2, Sine(30.0))
    torch.manual_seed(0)
    assert torch.equal(auto(torch.ones(1, 2)), CoordMLP(2, 1, 8, 2, Sine(30.0), "siren")(torch.ones(1, 2)))


def test_register_refuses_a_taken_name_and_a_non_activation():
    from coordnet.models import register_activation

    with pytest.raises(ValueError, match="'relu' is taken by ReLU"):
        register_activation("relu", Abs)
    with pytest.raises(ValueError, match="not a subclass of coordnet's Activation"):
        register_activation("tanh", torch.nn.Tanh)
    assert register_activation("ReLU", ReLU) is ReLU  # registering the same class again is harmless
