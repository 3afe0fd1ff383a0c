"""The empirical NTK against an independent float64 Jacobian, and the spectrum on known matrices."""

import copy
import math

import pytest
import torch
from torch.func import functional_call, jacrev

from coordnet.models import Abs, AbsLinear, CoordMLP, Cos, FourierFeatures, Gaussian, ReLU, Sine
from coordnet.ntk import (as_blocks, empirical_ntk, kernel_distance, model_spectrum, ntk_diagonal, ntk_layer_diagonals,
                          ntk_layer_kernels, ntk_matvec, spectrum, spectrum_from_eigenvalues, target_alignment, top_eigenvalues)
from coordnet.ntk.history import HISTORY_FILE, read_history
from coordnet.tables import write_csv
from coordnet.training import CoordNetModule


def reference_ntk(model, x1, x2):
    """J(x1) J(x2)ᵀ with J the (N·O, P) Jacobian of a float64 copy of the model, by torch.func.jacrev."""
    model = copy.deepcopy(model).double()
    params = {k: p.detach() for k, p in model.named_parameters()}

    def jac(x):
        j = jacrev(lambda p: functional_call(model, p, (x.double(),)).reshape(-1))(params)
        return torch.cat([v.reshape(v.shape[0], -1) for v in j.values()], dim=1)

    return jac(x1) @ jac(x2).T  # (N·O, M·O), rows (point, output)


def reduce(full, mode, outputs, n):
    blocks = as_blocks(full, outputs)  # (N, M, O, O)
    diag = torch.diagonal(blocks, dim1=2, dim2=3)  # (N, M, O)
    return {"full": full, "trace": diag.sum(-1), "mean": diag.mean(-1), "per_output": diag.permute(2, 0, 1)}[mode]


def rel_err(a, b):
    return ((a - b).norm() / b.norm()).item()


ACTIVATIONS = [Cos(5.0), Sine(30.0), ReLU(), Abs(), AbsLinear(0.3, 1.2), Gaussian(0.7)]
INITS = {Cos: "he", Sine: "siren", ReLU: "he", Abs: "eoc", AbsLinear: "eoc", Gaussian: "he"}


@pytest.mark.parametrize("act", ACTIVATIONS, ids=repr)
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("outputs", [1, 3])
def test_layerwise_kernel_equals_jacobian_reference(act, bias, outputs):
    torch.manual_seed(0)
    model = CoordMLP(2, outputs, [24, 16, 20], activation=act, init=INITS[type(act)], bias=bias, bias_std=0.2)
    x1, x2 = torch.rand(7, 2) * 2 - 1, torch.rand(5, 2) * 2 - 1
    ref = reference_ntk(model, x1, x2)
    for mode in ("full", "trace", "mean", "per_output"):
        for normalization, divide in (("raw", 1), ("by_n", 7)):
            got = empirical_ntk(model, x1, x2, mode=mode, normalization=normalization)
            assert got.dtype == torch.float64
            assert rel_err(got, reduce(ref, mode, outputs, 7) / divide) <= 1e-10


@pytest.mark.parametrize("parametrization", ["standard", "ntk"])
def test_encodings_and_parametrisations(parametrization):
    torch.manual_seed(1)
    model = CoordMLP(2, 3, 32, 2, "relu", "he", parametrization, bias=True, bias_std=0.5,
                     encoding=FourierFeatures(2, 8, 3.0), first_layer_fan_in=False)
    x = torch.rand(6, 2)
    assert rel_err(empirical_ntk(model, x), reference_ntk(model, x, x)) <= 1e-10


def test_generic_path_agrees_and_is_used_for_other_modules():
    torch.manual_seed(2)
    mlp = CoordMLP(2, 2, 16, 2, "sine", "siren")
    x1, x2 = torch.rand(9, 2), torch.rand(4, 2)
    for mode in ("full", "trace", "mean", "per_output"):
        fast = empirical_ntk(mlp, x1, x2, mode=mode)
        generic = empirical_ntk(mlp, x1, x2, mode=mode, method="jacobian", chunk_size=4)
        assert rel_err(generic, fast) <= 1e-12
    other = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    assert rel_err(empirical_ntk(other, x1, mode="trace"), reduce(reference_ntk(other, x1, x1), "trace", 2, 9)) <= 1e-10


def test_lightning_module_uses_its_mlp():
    torch.manual_seed(3)
    module = CoordNetModule(2, 1, hidden=8, depth=2, activation="relu", init="he")
    x = torch.rand(5, 2)
    torch.testing.assert_close(empirical_ntk(module, x), empirical_ntk(module.model, x))


def test_float32_kernel_and_kernel_on_model_dtype():
    torch.manual_seed(4)
    model = CoordMLP(2, 1, 16, 2, "relu", "he")
    x = torch.rand(5, 2)
    k32 = empirical_ntk(model, x, dtype=torch.float32)
    assert k32.dtype == torch.float32 and rel_err(k32.double(), empirical_ntk(model, x)) < 1e-5


def test_matrix_free_product_equals_kernel_times_vector():
    torch.manual_seed(5)
    model = CoordMLP(2, 3, [20, 12], activation="cos", init="he", bias=True, bias_std=0.3)
    x = torch.rand(11, 2)
    for normalization in ("raw", "by_n"):
        kernel = empirical_ntk(model, x, normalization=normalization)
        matvec = ntk_matvec(model, x, normalization=normalization)
        v = torch.randn(33, dtype=torch.float64)
        assert rel_err(matvec(v), kernel @ v) <= 1e-12
        vs = torch.randn(33, 4, dtype=torch.float64)
        assert rel_err(matvec(vs), kernel @ vs) <= 1e-12


def test_bad_modes_and_shapes():
    model = CoordMLP(2, 1, 8, 1, "relu", "he")
    with pytest.raises(ValueError, match="unknown NTK mode 'diag'"):
        empirical_ntk(model, torch.rand(3, 2), mode="diag")
    with pytest.raises(ValueError, match="unknown NTK normalization"):
        empirical_ntk(model, torch.rand(3, 2), normalization="per_sample")
    with pytest.raises(ValueError, match="same d"):
        empirical_ntk(model, torch.rand(3, 2), torch.rand(3, 3))
    with pytest.raises(ValueError, match="layerwise' needs a CoordMLP"):
        empirical_ntk(torch.nn.Linear(2, 1), torch.rand(3, 2), method="layerwise")


def known_matrix(eigenvalues, seed=0):
    q, _ = torch.linalg.qr(torch.randn(len(eigenvalues), len(eigenvalues), generator=torch.Generator().manual_seed(seed),
                                       dtype=torch.float64))
    return q @ torch.diag(torch.tensor(eigenvalues, dtype=torch.float64)) @ q.T


def test_spectrum_fields_on_a_known_spectrum():
    lam = [0.5, 1.0, 2.0, 4.0]
    s = spectrum(known_matrix(lam))
    torch.testing.assert_close(s.eigenvalues, torch.tensor(lam, dtype=torch.float64), rtol=1e-12, atol=1e-12)
    assert s.lambda_min == pytest.approx(0.5) and s.lambda_max == pytest.approx(4.0)
    assert s.condition_number == pytest.approx(8.0) and s.trace == pytest.approx(7.5)
    p = torch.tensor(lam) / 7.5
    assert s.effective_rank == pytest.approx(math.exp(-(p * p.log()).sum().item()))
    assert s.participation_ratio == pytest.approx(7.5**2 / sum(v * v for v in lam))
    assert s.lambda_min_reliable and s.floor == pytest.approx(4 * torch.finfo(torch.float64).eps * 4.0)
    flat = spectrum(torch.eye(5) * 3)
    assert flat.effective_rank == pytest.approx(5) and flat.participation_ratio == pytest.approx(5)


def test_near_singular_kernel_reports_the_floor_never_a_negative_lambda_min():
    torch.manual_seed(6)
    model = CoordMLP(2, 1, 64, 2, "relu", "he")
    x = torch.rand(10, 2)
    x = torch.cat([x, x[:3]])  # duplicated probe points: three exactly zero eigenvalues
    s = spectrum(empirical_ntk(model, x))
    assert not s.lambda_min_reliable and s.lambda_min == s.floor > 0
    assert s.condition_number == pytest.approx(s.lambda_max / s.floor) and s.condition_number > 1e14
    s = spectrum_from_eigenvalues(torch.tensor([-1e-13, 1.0, 2.0], dtype=torch.float64))
    assert s.lambda_min > 0 and not s.lambda_min_reliable


def test_spectrum_rejects_bad_matrices():
    with pytest.raises(ValueError, match="square"):
        spectrum(torch.ones(2, 3))
    with pytest.raises(ValueError, match="NaN or infinite"):
        spectrum(torch.tensor([[1.0, float("nan")], [0.0, 1.0]]))


def test_lanczos_top_eigenvalues_match_dense():
    torch.manual_seed(7)
    model = CoordMLP(2, 1, 64, 3, "sine", "siren")
    x = torch.rand(300, 2) * 2 - 1
    dense = torch.linalg.eigvalsh(empirical_ntk(model, x))[-10:]
    top = top_eigenvalues(ntk_matvec(model, x), 300, k=10)
    assert ((top - dense).abs() / dense).max().item() <= 1e-8


def test_kernel_distance_and_alignment():
    k = known_matrix([1.0, 2.0, 3.0])
    assert kernel_distance(k, 5 * k) == pytest.approx(0.0, abs=1e-14)
    assert kernel_distance(torch.eye(2), torch.tensor([[0.0, 1.0], [1.0, 0.0]])) == pytest.approx(1.0)
    y = torch.tensor([1.0, -1.0, 2.0, 0.5])
    yc = y - y.mean()
    assert target_alignment(torch.outer(y, y) + 7.0, y) == pytest.approx(1.0)  # centring removes the constant
    assert target_alignment(torch.outer(yc, yc), y) == pytest.approx(1.0)


def test_diagonal_and_model_spectrum_dense_and_matrix_free_agree():
    torch.manual_seed(8)
    model = CoordMLP(2, 2, [32, 16], activation="abs", init="eoc", bias=True, bias_std=0.1)
    x = torch.rand(150, 2) * 2 - 1
    kernel = empirical_ntk(model, x, normalization="by_n")
    torch.testing.assert_close(ntk_diagonal(model, x, normalization="by_n"), torch.diagonal(kernel), rtol=1e-12,
                               atol=0)
    dense = model_spectrum(model, x, normalization="by_n")
    lanczos = model_spectrum(model, x, normalization="by_n", dense_limit=100, k=6)
    torch.testing.assert_close(lanczos.eigenvalues, dense.eigenvalues[-6:], rtol=1e-8, atol=0)
    assert lanczos.trace == pytest.approx(dense.trace, rel=1e-12) and lanczos.lambda_max == pytest.approx(
        dense.lambda_max, rel=1e-10)
    assert math.isnan(lanczos.lambda_min) and not lanczos.lambda_min_reliable


def test_layer_diagonals_are_per_layer_squared_gradient_norms():
    torch.manual_seed(9)
    model = CoordMLP(2, 2, [12, 10], activation="sine", init="siren")
    x = torch.rand(6, 2)
    per_layer = ntk_layer_diagonals(model, x)
    assert per_layer.shape == (3, 12)
    double = copy.deepcopy(model).double()
    for layer, linear in enumerate(double.linears):
        prefix = f"linears.{layer}."

        def outputs(p):  # f(x) as a function of this layer's parameters only
            return functional_call(double, {prefix + k: v for k, v in p.items()}, (x.double(),)).reshape(-1)

        jac = jacrev(outputs)(dict(linear.named_parameters()))  # each (N·O, *param shape)
        norms = sum((j.reshape(j.shape[0], -1) ** 2).sum(1) for j in jac.values())
        torch.testing.assert_close(per_layer[layer], norms, rtol=1e-10, atol=0)
    torch.testing.assert_close(per_layer.sum(0), ntk_diagonal(model, x))


def test_layer_kernels_are_each_layers_jacobian_gram_and_sum_to_the_kernel():
    torch.manual_seed(10)
    model = CoordMLP(2, 2, [12, 10], activation="cos", bias=True)
    x = torch.rand(6, 2)
    terms = ntk_layer_kernels(model, x)
    assert terms.shape == (3, 12, 12)
    double = copy.deepcopy(model).double()
    for layer, linear in enumerate(double.linears):
        prefix = f"linears.{layer}."

        def outputs(p):  # f(x) as a function of this layer's parameters only
            return functional_call(double, {prefix + k: v for k, v in p.items()}, (x.double(),)).reshape(-1)

        jac = torch.cat([j.reshape(j.shape[0], -1) for j in jacrev(outputs)(dict(linear.named_parameters())).values()],
                        dim=1)
        torch.testing.assert_close(terms[layer], jac @ jac.T, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(terms.sum(0), empirical_ntk(model, x), rtol=1e-12, atol=1e-12)
    by_n = ntk_layer_kernels(model, x, mode="trace", normalization="by_n")
    torch.testing.assert_close(by_n.sum(0), empirical_ntk(model, x, mode="trace", normalization="by_n"))


def test_history_csv_round_trip(tmp_path):
    rows = [{"step": 0, "lambda_min": 0.1 + 0.2, "kernel_velocity": math.nan},
            {"step": 100, "lambda_min": 1e-300, "kernel_velocity": 2.5e-5}]
    write_csv(tmp_path / HISTORY_FILE, rows)
    columns = read_history(tmp_path)  # a run directory finds its ntk_spectrum.csv
    assert columns["step"] == [0, 100] and columns["lambda_min"] == [0.1 + 0.2, 1e-300]  # exact round trip
    assert math.isnan(columns["kernel_velocity"][0]) and columns["kernel_velocity"][1] == 2.5e-5
    with pytest.raises(FileNotFoundError, match="no NTK history"):
        read_history(tmp_path / "missing")
