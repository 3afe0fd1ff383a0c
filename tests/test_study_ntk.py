"""The NTK studies: --quick runs through the runner, files written, numbers sane."""

import json

import numpy as np
import pytest

from coordnet.tables import read_csv_columns

from studies import run_quick


def test_ntk_spectral_density_quick(tmp_path):
    printed = run_quick("ntk_spectral_density.py", tmp_path).stdout
    assert {p.name for p in tmp_path.iterdir()} == {"records.jsonl", "records.csv", "density.csv", "nodes.csv",
                                                    "ntk_spectral_density.png", "summary.md"}
    summary = (tmp_path / "summary.md").read_text()
    assert summary.strip() in printed
    assert "all 1024 training points (n = 1024)" in summary and "peak RSS" in summary
    (record,) = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert record["lanczos_steps"] == 10 and record["num_probes"] == 4 and len(record["top"]) == 4
    # the weights count the eigenvalues; the SLQ trace is an estimate of the exact one (about 1% off)
    nodes = read_csv_columns(tmp_path / "nodes.csv")
    assert sum(nodes["weight"]) == pytest.approx(1024, rel=0.05) and min(nodes["weight"]) >= 0
    assert record["trace_slq"] == pytest.approx(record["exact_trace"], rel=0.05)
    # λ_max is the largest node, alone: a gap of more than 10× down to the next (docs/results.md)
    assert record["lambda_max"] == max(nodes["node"]) and record["top"][-1] > 10 * record["top"][-2]
    # the smoothed density of log10 λ is positive and integrates to 1 over its grid
    density = read_csv_columns(tmp_path / "density.csv")
    assert min(density["density"]) >= 0
    assert np.trapezoid(density["density"], density["log10_lambda"]) == pytest.approx(1, abs=0.01)


def test_ntk_cos_vs_relu_quick_and_a_rerun_only_redraws(tmp_path):
    out, runs = tmp_path / "out", tmp_path / "runs"
    run_quick("ntk_cos_vs_relu.py", out, "--set", f"SAVE_DIR={runs}")
    assert {p.name for p in out.iterdir()} == {"records.jsonl", "records.csv", "history_camera_cos.csv",
                                               "history_camera_relu.csv", "ntk_cos_vs_relu.png", "summary.md"}
    cos, relu = (read_csv_columns(out / f"history_camera_{name}.csv") for name in ("cos", "relu"))
    for history, name in ((cos, "cos"), (relu, "relu")):
        own = runs / f"camera_{name}" / "version_0" / "ntk_spectrum.csv"  # the run's own CSV, again
        assert (out / f"history_camera_{name}.csv").read_text() == own.read_text()
        assert history["step"] == [0, 20, 40, 60] and history["kernel_distance_init"][0] < 1e-12
    # the ReLU network's kernel is far worse conditioned than cos(5x)'s at every measurement
    assert all(r < 1e-3 * c for r, c in zip(relu["lambda_min"], cos["lambda_min"]))
    assert all(r > 1e3 * c for r, c in zip(relu["condition_number"], cos["condition_number"]))
    assert max(cos["condition_number"]) < 10
    summary = (out / "summary.md").read_text()
    assert summary.count("| cos(5x), He |") == 2 and summary.count("| ReLU, He |") == 2
    printed = run_quick("ntk_cos_vs_relu.py", out, "--set", f"SAVE_DIR={runs}").stderr
    assert "2 of 2 already done" in printed  # resumed from records.jsonl: nothing trained again
    assert not (runs / "camera_cos" / "version_1").exists() and (out / "summary.md").read_text() == summary


def test_ntk_linearised_quick_the_wide_network_follows_its_kernel_and_siren_parts(tmp_path):
    printed = run_quick("ntk_linearised.py", tmp_path).stdout
    assert "real and linearised test PSNR" in printed
    records = {r["network"]: r for r in map(json.loads, (tmp_path / "records.jsonl").read_text().splitlines())}
    from coordnet.experiments.ntk_linearised import parting

    wide, siren = records["relu, NTK parametrisation"], records["SIREN ω0 = 30"]
    assert wide["curve_real"][0] == pytest.approx(wide["curve_predicted"][0], abs=1e-9)  # step 0: the same network
    assert parting(wide)[0] < 0.5 and parting(siren)[0] > 2 * parting(wide)[0]
    assert all(np.isfinite(r["curve_predicted"]).all() for r in records.values())


def test_ntk_eigenfunctions_quick_draws_every_network(tmp_path):
    printed = run_quick("ntk_eigenfunctions.py", tmp_path).stdout
    assert "eigenfunctions" in printed and (tmp_path / "ntk_eigenfunctions.png").stat().st_size > 10_000
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert len(records) == 3
    for r in records:
        vectors = np.load(r["vectors"])
        assert vectors.shape == (32 * 32, 4)
        np.testing.assert_allclose(vectors.T @ vectors, np.eye(4), atol=1e-5)  # orthonormal (stored as float32)
        assert r["eigenvalues"] == sorted(r["eigenvalues"], reverse=True) and 0 < r["energy_fraction"] < 1
