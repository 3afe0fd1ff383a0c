"""The paper reproductions' --quick modes: files written, numbers sane (full runs are recorded in the README)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from coordnet.tables import read_csv_columns

SCRIPTS = Path(__file__).parents[1] / "scripts"


def run_quick(script: str, out: Path, *options: str) -> subprocess.CompletedProcess:
    """``scripts/<script> --quick --out <out> [options]``, which must succeed; its captured stdout and stderr."""
    result = subprocess.run([sys.executable, str(SCRIPTS / script), "--quick", "--out", str(out), *options],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def test_p2_condition_vs_depth_quick(tmp_path):
    printed = run_quick("p2_condition_vs_depth.py", tmp_path).stdout
    assert {p.name for p in tmp_path.iterdir()} == {"condition_vs_depth.csv", "condition_vs_depth.png", "summary.md"}
    assert (tmp_path / "summary.md").read_text().strip() in printed
    columns = read_csv_columns(tmp_path / "condition_vs_depth.csv")
    assert len(columns["depth"]) == 8 * 15  # eight (a, b) pairs, depths 2..16
    tabulated = [d for d in columns["relative_difference"] if d == d]
    assert len(tabulated) == 8 * 4 and max(abs(d) for d in tabulated) < 0.10  # 8 datasets only: sampling noise
    # deeper is better conditioned for every Δ, as in paper 2's Fig. 1
    for delta in set(columns["delta"]):
        kappas = [k for k, dl in zip(columns["kappa_mean"], columns["delta"]) if dl == delta]
        assert kappas[-1] < kappas[0]


def test_p1_min_eig_vs_n_quick(tmp_path):
    printed = run_quick("p1_min_eig_vs_n.py", tmp_path).stdout
    assert "Log-log slope" in printed and (tmp_path / "min_eig_vs_n.png").stat().st_size > 10_000
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
    from coordnet.experiments.paper1 import feature_jacobian_norms
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


def test_p2_finite_width_quick(tmp_path):
    run_quick("p2_finite_width.py", tmp_path)
    columns = read_csv_columns(tmp_path / "finite_width.csv")
    errors = {}
    for act, width, error in zip(columns["activation"], columns["width"], columns["relative_error"]):
        errors.setdefault((act, width), []).append(error)
    for act in {a for a, _ in errors}:  # 4× the width: the error falls (about halves, as m^(−1/2))
        assert np.mean(errors[act, 256]) < 0.8 * np.mean(errors[act, 64])


def test_p2_spectrum_bounds_quick(tmp_path):
    run_quick("p2_spectrum_bounds.py", tmp_path)
    c = read_csv_columns(tmp_path / "spectrum_bounds.csv")
    for lam, predicted, bulk_max in zip(c["lambda_max"], c["lambda_max_predicted"], c["bulk_max"]):
        assert lam > 3 * bulk_max and lam == pytest.approx(predicted, rel=0.5)  # one spike, near its leading term
    for delta in (0.5, 1.0):  # the bulk flattens with depth
        spread = {d: s for dl, d, s in zip(c["delta"], c["depth"], c["bulk_spread"]) if dl == delta}
        assert spread[16] < spread[8]


def test_memorization_quick_and_the_linearised_prediction(tmp_path):
    import json

    from coordnet.experiments.memorization import linearisation_error

    printed = run_quick("memorization.py", tmp_path, "--workers", "2").stdout
    assert "memorisation threshold" in printed and "Spearman" in printed
    columns = read_csv_columns(tmp_path / "runs.csv")
    assert {"lambda_min_K0", "kappa_K0", "steps_to_0.01", "steps_to_0.0001", "final_loss"} <= set(columns)
    assert len(columns["activation"]) == 3 * 2 * 2 * 2  # activations × inputs × widths × optimisers
    records = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    for r in records:  # GD on a wide ReLU or |x| network follows the model linearised at K₀
        if r["optimizer"] == "gd" and r["width"] == 8 * 64 and r["activation"] in ("relu", "abrelu Δ=1"):
            assert linearisation_error(r) <= 0.05
    # a second call finds every run in runs.jsonl and redoes none
    assert "(24 of 24 already done)" in run_quick("memorization.py", tmp_path).stderr
    assert len((tmp_path / "runs.jsonl").read_text().splitlines()) == 24


def test_memorization_sweep_resumes_only_runs_with_the_same_settings(tmp_path):
    from coordnet.experiments.memorization import default_activations, sweep

    relu = [s for s in default_activations() if s.name == "relu"]
    log = tmp_path / "runs.jsonl"
    first = sweep(relu, ("gaussian",), 16, (1.0,), ("gd",), 5, 1, log, progress=False)
    again = sweep(relu, ("gaussian",), 16, (1.0,), ("gd",), 5, 1, log, progress=False)
    assert again == first and len(log.read_text().splitlines()) == 1  # read back, not redone
    longer = sweep(relu, ("gaussian",), 16, (1.0,), ("gd",), 7, 1, log, progress=False)
    assert longer[0]["step_cap"] == 7 and len(log.read_text().splitlines()) == 2  # other settings: run again
    with pytest.raises(ValueError, match="grid inputs need a square number of points"):
        sweep(relu, ("gaussian", "grid"), 15, (1.0,), ("gd",), 5, 1, log, progress=False)


def test_convergence_quick_goes_through_the_cli_path_in_two_processes_and_resumes(tmp_path):
    printed = run_quick("convergence.py", tmp_path, "--workers", "2").stdout
    assert "Convergence speed across activations" in printed and "Spearman" in printed
    columns = read_csv_columns(tmp_path / "runs.csv")
    assert {"variant", "image", "protocol", "seed", "final_train_psnr", "final_test_psnr", "steps_to_25dB",
            "steps_to_30dB", "steps_to_35dB", "seconds_to_30dB", "lambda_min_0", "kappa_0", "kappa_end",
            "run_dir"} <= set(columns)
    assert len(columns["variant"]) == 3 * 2 * 2  # activations × images × protocols
    for run_dir, protocol, test in zip(columns["run_dir"], columns["protocol"], columns["final_test_psnr"]):
        assert {"config.yaml", "psnr_history.csv", "ntk_spectrum.csv"} <= {p.name for p in Path(run_dir).iterdir()}
        assert (test == test) == (protocol == "fourier")  # a test PSNR exactly when there is a test split
    # SIREN beats ReLU on both images, as everywhere in the literature
    final = {(i, p, v): f for i, p, v, f in zip(columns["image"], columns["protocol"], columns["variant"],
                                                  columns["final_train_psnr"])}
    for image in ("camera", "astronaut"):
        assert final[image, "memorize", "sine ω0=30"] > final[image, "memorize", "relu"] + 10
    curves = read_csv_columns(tmp_path / "curves.csv")
    assert {"step", "train_psnr", "seconds", "test_psnr", "lambda_min", "kappa"} <= set(curves)
    assert len(curves["step"]) == 12 * 41  # steps 0..40 of every run
    # a second call redoes nothing and starts no run
    assert "(12 of 12 already done)" in run_quick("convergence.py", tmp_path).stderr
    assert len(list((tmp_path / "runs").glob("*/version_*"))) == 12


def square(job: dict) -> dict:
    import os

    return job | {"square": job["x"] ** 2, "pid": os.getpid()}


def test_sweep_runs_in_processes_in_job_order_and_skips_finished_jobs(tmp_path):
    import os

    from coordnet.experiments.sweeps import run_sweep

    jobs = [{"x": x} for x in range(6)]
    log = tmp_path / "runs.jsonl"
    log.write_text('{"x": 4, "square": 16, "pid": 0}\n{"x": 5, "squ')  # one finished job and a line cut by a kill
    records = run_sweep(jobs, square, log, ("x",), workers=2, progress=False)
    assert [r["square"] for r in records] == [x * x for x in range(6)]
    assert records[4]["pid"] == 0  # read back, not redone
    assert {r["pid"] for r in records[:4] + records[5:]} - {os.getpid()}  # run in other processes
    sequential = run_sweep(jobs, square, log, ("x",), workers=1, progress=False)
    assert sequential == records  # everything already in the log: nothing runs
    with pytest.raises(ValueError, match="lack the key settings"):
        run_sweep(jobs, square, log, ("y",), progress=False)


def square_unless_three(job: dict) -> dict:
    if job["x"] == 3:
        raise ArithmeticError("three")
    return square(job)


def test_a_failed_job_keeps_the_others_and_says_which_failed(tmp_path):
    from coordnet.experiments.sweeps import read_log, run_sweep

    log = tmp_path / "runs.jsonl"
    with pytest.raises(RuntimeError, match=r"1 of 6 sweep jobs failed .* ArithmeticError\('three'\)"):
        run_sweep([{"x": x} for x in range(6)], square_unless_three, log, ("x",), workers=2, progress=False)
    assert sorted(r["x"] for r in read_log(log, ("x",)).values()) == [0, 1, 2, 4, 5]
    with pytest.raises(ValueError, match="line 1: no \\['y'\\] settings; it was written by another sweep"):
        read_log(log, ("x", "y"))
