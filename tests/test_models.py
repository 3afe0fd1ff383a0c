import math

import pytest
import torch

from coordnet.models import Abs, AbsLinear, CoordMLP, Cos, FourierFeatures, PositionalEncoding, ReLU, Sine

WIDTH = 1024


def _expected_stds(init, act, fans, weight_var=1.0, first_layer_fan_in=True):
    """Weight std of every layer from the formulas in the issue / module docstring."""
    out = []
    for layer, fan in enumerate(fans):
        if init == "siren":
            bound = 1 / fan if layer == 0 else math.sqrt(6 / fan) / act.s
            out.append(bound / math.sqrt(3))
            continue
        beta2 = {"he": 2.0, "standard": weight_var, "eoc": None}[init] or act.eoc_variance()
        out.append(math.sqrt(beta2 / (fan if layer > 0 or first_layer_fan_in else 1)))
    return out


CASES = [
    ("he", ReLU(), {}), ("he", Cos(5.0), {}), ("standard", Cos(1.0), {"weight_var": 0.7}),
    ("eoc", ReLU(), {}), ("eoc", Abs(), {}), ("eoc", AbsLinear(1.0, math.sqrt(3)), {}),
    ("eoc", Abs(), {"first_layer_fan_in": False}), ("siren", Sine(30.0), {}), ("siren", Cos(10.0), {}),
]


@pytest.mark.parametrize("parametrization", ["standard", "ntk"])
@pytest.mark.parametrize("init, act, extra", CASES, ids=lambda c: repr(c) if not isinstance(c, dict) else str(c))
def test_init_statistics_within_5_percent(init, act, extra, parametrization):
    torch.manual_seed(0)
    model = CoordMLP(3, 4, WIDTH, 3, act, init, parametrization, bias=False, **extra)
    fans = [3, WIDTH, WIDTH, WIDTH]
    for linear, expected in zip(model.linears, _expected_stds(init, act, fans, **extra)):
        effective = linear.weight * linear.weight_scale  # the weight the forward pass uses
        assert effective.std().item() == pytest.approx(expected, rel=0.05)
        if parametrization == "ntk":
            assert linear.weight.std().item() == pytest.approx(1.0, rel=0.05)
            assert linear.weight_scale == pytest.approx(expected)


def test_siren_draws_uniform_weights_and_pytorch_style_biases():
    torch.manual_seed(0)
    model = CoordMLP(2, 1, WIDTH, 2, Sine(30.0), "siren")
    first, hidden = model.linears[0], model.linears[1]
    assert first.weight.abs().max().item() <= 1 / 2 and first.weight.abs().max().item() > 0.49
    bound = math.sqrt(6 / WIDTH) / 30
    assert hidden.weight.abs().max().item() <= bound and hidden.weight.abs().max().item() > 0.99 * bound
    assert hidden.bias.abs().max().item() <= 1 / math.sqrt(WIDTH)


def test_bias_on_off_and_bias_std():
    torch.manual_seed(0)
    assert all(l.bias is None for l in CoordMLP(2, 1, 64, 2, "relu", "he", bias=False).linears)
    zero = CoordMLP(2, 1, 64, 2, "relu", "he", bias=True)
    assert all(torch.all(l.bias == 0) for l in zero.linears)
    noisy = CoordMLP(2, 1, WIDTH, 2, "relu", "he", bias=True, bias_std=0.1)
    assert noisy.linears[1].bias.std().item() == pytest.approx(0.1, rel=0.1)
    ntk = CoordMLP(2, 1, WIDTH, 2, "relu", "he", "ntk", bias=True, bias_std=0.1)
    assert ntk.linears[1].bias_scale == 0.1 and ntk.linears[1].bias.std().item() == pytest.approx(1.0, rel=0.1)


def test_ntk_and_standard_parametrisations_compute_the_same_function_family():
    torch.manual_seed(0)
    std = CoordMLP(2, 1, 32, 2, "relu", "he", "standard", bias=False)
    ntk = CoordMLP(2, 1, 32, 2, "relu", "he", "ntk", bias=False)
    with torch.no_grad():
        for a, b in zip(std.linears, ntk.linears):
            b.weight.copy_(a.weight / b.weight_scale)
    x = torch.randn(10, 2)
    torch.testing.assert_close(std(x), ntk(x))


def test_widths_from_int_or_list_and_trace():
    model = CoordMLP(2, 3, [4096], activation="cos", init="he", bias=False)
    assert model.widths == [4096] and len(model.linears) == 2
    model = CoordMLP(2, 3, 16, depth=4, activation="sine", init="siren")
    assert model.widths == [16] * 4 and model.in_features == 2 and model.out_features == 3
    x = torch.randn(7, 2)
    trace = model.trace(x)
    torch.testing.assert_close(trace.output, model(x))
    assert [h.shape for h in trace.inputs] == [(7, 2)] + [(7, 16)] * 4
    assert [s.shape for s in trace.preacts] == [(7, 16)] * 4
    for s, h in zip(trace.preacts, trace.inputs[1:]):
        torch.testing.assert_close(model.activation(s), h)


@pytest.mark.parametrize("kwargs, match", [
    ({"hidden": 0}, "hidden width must be a positive integer, got 0"),
    ({"hidden": -3}, "hidden width must be a positive integer"),
    ({"hidden": [64, 0]}, "hidden width must be a positive integer, got 0"),
    ({"hidden": []}, "at least one hidden width"),
    ({"depth": 0}, "depth must be a positive integer, got 0"),
    ({"in_features": 0}, "in_features must be a positive integer"),
    ({"activation": "swish"}, "unknown activation 'swish'"),
    ({"init": "xavier"}, "unknown init 'xavier'"),
    ({"parametrization": "mup"}, "unknown parametrization 'mup'"),
    ({"init": "siren", "activation": "relu"}, "init='siren' needs a sine or cos"),
    ({"init": "eoc", "activation": "sine"}, "Edge-of-Chaos"),
    ({"parametrization": "ntk", "init": "he", "bias": True}, "needs bias_std > 0"),
    ({"encoding": FourierFeatures(3, 8)}, "encoding expects 3-d coordinates but in_features=2"),
])
def test_bad_arguments_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CoordMLP(**({"in_features": 2, "activation": "sine", "init": "siren"} | kwargs))


def test_fourier_features_formula_and_determinism():
    enc = FourierFeatures(2, num_features=8, sigma=3.0, seed=1)
    v = torch.rand(5, 2)
    proj = 2 * math.pi * v @ enc.B.T
    torch.testing.assert_close(enc(v), torch.cat([proj.sin(), proj.cos()], dim=1))
    assert enc.out_features == 16 and torch.equal(enc.B, FourierFeatures(2, 8, 3.0, seed=1).B)
    assert FourierFeatures(2, 4096, 3.0).B.std().item() == pytest.approx(3.0, rel=0.05)
    assert "B" in enc.state_dict() and not list(enc.parameters())


def test_positional_encoding_formula():
    enc = PositionalEncoding(2, num_frequencies=3)
    v = torch.tensor([[0.25, -0.5]])
    out = enc(v)
    assert out.shape == (1, enc.out_features) == (1, 2 + 2 * 3 * 2)
    torch.testing.assert_close(out[0, :2], v[0])
    # sin part ordered per axis then frequency: [x·π, x·2π, x·4π, y·π, y·2π, y·4π]
    expect = torch.sin(torch.tensor([0.25 * math.pi, 0.5 * math.pi, math.pi, -0.5 * math.pi, -math.pi, -2 * math.pi]))
    torch.testing.assert_close(out[0, 2:8], expect)
    assert PositionalEncoding(1, 4, include_input=False).out_features == 8


def test_mlp_with_encoding_runs_and_sizes_first_layer():
    model = CoordMLP(2, 3, 32, 2, "relu", "he", encoding=PositionalEncoding(2, 5))
    assert model.linears[0].in_features == 22 and model(torch.rand(4, 2)).shape == (4, 3)
