"""Paper 2's studies: --quick runs through the runner, numbers sane, figures readable."""

from pathlib import Path

import numpy as np
import pytest

from coordnet.tables import read_csv_columns

from studies import assert_readable, legend_labels, run_quick


def test_p2_condition_vs_depth_quick(tmp_path):
    printed = run_quick("p2_condition_vs_depth.py", tmp_path).stdout
    assert {p.name for p in tmp_path.iterdir()} == {"condition_vs_depth.csv", "p2_condition_vs_depth.png", "summary.md",
                                                    "records.csv", "records.jsonl"}
    assert (tmp_path / "summary.md").read_text().strip() in printed
    columns = read_csv_columns(tmp_path / "condition_vs_depth.csv")
    assert len(columns["depth"]) == 8 * 15  # eight (a, b) pairs, depths 2..16
    tabulated = [d for d in columns["relative_difference"] if d == d]
    assert len(tabulated) == 8 * 4 and max(abs(d) for d in tabulated) < 0.10  # 8 datasets only: sampling noise
    # deeper is better conditioned for every Δ, as in paper 2's Fig. 1
    for delta in set(columns["delta"]):
        kappas = [k for k, dl in zip(columns["kappa_mean"], columns["delta"]) if dl == delta]
        assert kappas[-1] < kappas[0]


def test_p2_finite_width_quick(tmp_path):
    printed = run_quick("p2_finite_width.py", tmp_path).stdout
    assert "One network's error" in printed and "seed-averaged kernel's error" in printed
    columns = read_csv_columns(tmp_path / "finite_width.csv")
    errors = {}
    for act, width, error in zip(columns["activation"], columns["width"], columns["relative_error"]):
        errors.setdefault((act, width), []).append(error)
    for act in {a for a, _ in errors}:  # 4× the width: the error falls (about halves, as m^(−1/2))
        assert np.mean(errors[act, 256]) < 0.8 * np.mean(errors[act, 64])
    summary = read_csv_columns(tmp_path / "finite_width_summary.csv")
    for i, (act, width) in enumerate(zip(summary["activation"], summary["width"])):
        assert summary["error_median"][i] == pytest.approx(np.median(errors[act, width]))
        assert summary["error_median_low"][i] <= summary["error_median"][i] <= summary["error_median_high"][i]
        # averaging kernels over seeds removes part of one network's error; what is left is at most all of it
        assert 0 <= summary["bias"][i] <= summary["averaged_error"][i] <= summary["error_mean"][i]
    rates = read_csv_columns(tmp_path / "finite_width_rates.csv")
    assert all(-1.2 < r < -0.2 for r in rates["rate"])


def test_p2_spectrum_bounds_quick(tmp_path):
    run_quick("p2_spectrum_bounds.py", tmp_path)
    c = read_csv_columns(tmp_path / "spectrum_bounds.csv")
    for lam, predicted, bulk_max in zip(c["lambda_max"], c["lambda_max_predicted"], c["bulk_max"]):
        assert lam > 3 * bulk_max and lam == pytest.approx(predicted, rel=0.5)  # one spike, near its leading term
    for delta in (0.5, 1.0):  # the bulk flattens with depth
        spread = {d: s for dl, d, s in zip(c["delta"], c["depth"], c["bulk_spread"]) if dl == delta}
        assert spread[16] < spread[8]


def test_spectrum_bounds_figure_titles_fit_and_one_legend_names_every_series(monkeypatch):
    from coordnet.experiments import p2_spectrum_bounds as study
    from coordnet.experiments.reporting import group_means

    monkeypatch.setattr(study, "DATASETS", 1)
    records = [job | study.run(job) for job in study.jobs(False, Path("unused"))]  # the full run's n, l and Δ
    table = group_means(study.spectra(records), ("delta", "n", "depth"), study._FIELDS)
    fig = study.figure(table)
    assert_readable(fig)
    assert len(fig.legends) == 1  # one legend for both panels, which share their series
    labels = legend_labels(fig)
    for delta, n in {(t["delta"], t["n"]) for t in table}:
        assert any(f"Δ = {delta:g}" in label and f"n = {n}" in label for label in labels), (delta, n, labels)
    assert any("Theorem 13" in label for label in labels)  # what the dashed lines are


def test_finite_width_figure_tick_labels_do_not_collide():
    from coordnet.experiments import p2_finite_width as study

    records = []
    for job in study.jobs(False, Path("unused")):  # the full run's widths and depths, two seeds
        if job["seed"] < 2:
            limit = study.limit_kernel(job["delta"], job["depth"], job["points"], job["dim"])
            kernel = limit * (1 + 0.3 * (job["seed"] + 1) * (256 / job["width"]) ** 0.5)
            records.append(job | {"relative_error": study.relative_error(kernel, limit), "kernel": kernel.tolist()})
    assert_readable(study.figure(records))
