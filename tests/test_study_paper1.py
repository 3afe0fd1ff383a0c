"""Paper 1's studies: --quick runs through the runner, numbers sane."""

import torch

from coordnet.tables import read_csv_columns

from studies import run_quick


def test_p1_min_eig_vs_n_quick(tmp_path):
    printed = run_quick("p1_min_eig_vs_n.py", tmp_path).stdout
    assert {p.name for p in tmp_path.iterdir()} == {"records.jsonl", "records.csv", "min_eig_vs_n.csv",
                                                    "p1_min_eig_vs_n.png", "summary.md"}
    assert "Log-log slope" in printed and (tmp_path / "p1_min_eig_vs_n.png").stat().st_size > 10_000
    columns = read_csv_columns(tmp_path / "min_eig_vs_n.csv")
    assert len(columns["N"]) == 2 * 2 * 3 * 2  # activations × multipliers × N × seeds
    assert all(columns["lambda_min_reliable"])
    rows = list(zip(columns["multiplier"], columns["N"], columns["seed"], columns["lambda_min"]))
    half = len(rows) // 2  # sorted: cos rows first, then relu rows in the same order
    for (mult, n, seed, cos), (mult_r, n_r, seed_r, relu) in zip(rows[:half], rows[half:]):
        assert (mult, n, seed) == (mult_r, n_r, seed_r) and cos > 50 * relu  # cos is far better conditioned


def test_p1_width_scaling_quick(tmp_path):
    printed = run_quick("p1_width_scaling.py", tmp_path).stdout
    assert "exponent (ours)" in printed
    columns = read_csv_columns(tmp_path / "width_scaling.csv")
    assert len(columns["n1"]) == 4 * 4 * 2 and all(columns["lambda_min_reliable"])
    by_activation = {}
    for act, lam in zip(columns["activation"], columns["lambda_min"]):
        by_activation.setdefault(act, []).append(lam)
    assert len({round(v[0], 6) for v in by_activation.values()}) == 4  # four different networks, not one


def test_p1_lipschitz_quick(tmp_path):
    run_quick("p1_lipschitz.py", tmp_path)
    columns = read_csv_columns(tmp_path / "lipschitz.csv")
    cos = [e for a, e in zip(columns["activation"], columns["elip"]) if a == "cos"]
    relu = [e for a, e in zip(columns["activation"], columns["elip"]) if a == "relu"]
    assert min(cos) > 1000 * max(relu)  # cos(30·) features are far steeper, as paper 1 reports


def test_feature_jacobian_norms_equal_autograd():
    from coordnet.experiments.p1_lipschitz import feature_jacobian_norms
    from coordnet.models import CoordMLP, Cos

    torch.manual_seed(0)
    net = CoordMLP(12, 1, [5, 7, 9], activation=Cos(3.0), init="he", bias=False)
    x = torch.randn(4, 12, dtype=torch.float64)
    features = lambda v: net.activation(net.linears[2](net.activation(net.linears[1](  # noqa: E731
        net.activation(net.linears[0](v))))))
    net.double()
    expected = torch.stack([torch.linalg.matrix_norm(torch.autograd.functional.jacobian(features, xi), ord=2)
                            for xi in x])
    torch.testing.assert_close(feature_jacobian_norms(net, x), expected)
