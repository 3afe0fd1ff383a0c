import math

import pytest
import torch

from coordnet.models import ACTIVATIONS, Abs, AbsLinear, Cos, Gaussian, ReLU, Sine, get_activation

ALL = [Cos(5.0), Cos(2.0, phase=0.3), Sine(30.0), ReLU(), Abs(), AbsLinear(0.3, 1.7), AbsLinear(-1.0, 0.5),
       Gaussian(0.4)]


@pytest.mark.parametrize("act", ALL, ids=repr)
def test_derivative_matches_autograd_everywhere_including_zero(act):
    x = torch.cat([torch.linspace(-3, 3, 601, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)])
    x.requires_grad_(True)
    (grad,) = torch.autograd.grad(act(x).sum(), x)
    torch.testing.assert_close(act.derivative(x.detach()), grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("act", ALL, ids=repr)
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
    assert set(ACTIVATIONS) == {"abrelu", "abs", "cos", "gaussian", "relu", "sine"}
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
