"""Paper 1's studies: --quick runs through the runner, numbers sane."""

import pytest
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
    assert "Local slope" in printed and "A narrow layer after the wide one" in printed
    columns = read_csv_columns(tmp_path / "width_scaling.csv")
    assert len(columns["n1"]) == 2 * 4 * 4 * 2 + 4 * 2 * 2  # weights × activations × n1 × seeds, + the narrow n2
    assert all(columns["lambda_min_reliable"])
    rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
    for row in rows:
        for field in ("trace_share", "lambda_min_share"):  # each layer's shares add up to the whole
            assert sum(row[f"{field}_W{l}"] for l in (1, 2, 3)) == pytest.approx(1, abs=1e-9)
        # Weyl: λ_min of a sum of PSD terms is at least the sum of theirs
        assert row["lambda_min"] >= sum(row[f"layer_lambda_min_W{l}"] for l in (1, 2, 3)) * (1 - 1e-9)
    he_cos5 = [r for r in rows if r["weights"] == "he" and r["activation"] == "cos(5·)"]
    assert all(r["trace_share_W1"] > 0.8 for r in he_cos5)  # the first layer's term makes cos(5·)'s kernel
    assert len({round(r["lambda_min"], 6) for r in rows if r["n1"] == 100 and r["seed"] == 0}) == 8  # 8 networks
    slopes = read_csv_columns(tmp_path / "local_slopes.csv")
    assert len(slopes["slope"]) == 2 * 4 * 3  # weights × activations × doublings
    assert all(lo <= s <= hi for s, lo, hi in zip(slopes["slope"], slopes["ci_low"], slopes["ci_high"]))


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
