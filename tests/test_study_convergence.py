"""The convergence study."""

from pathlib import Path

import numpy as np
import pytest

from coordnet.tables import read_csv_columns

from studies import assert_readable, legend_labels, run_quick


def test_convergence_quick_goes_through_the_cli_path_in_two_processes_and_resumes(tmp_path):
    printed = run_quick("convergence.py", tmp_path, "--workers", "2", "--engine", "single").stdout
    assert "Convergence speed across activations" in printed and "Spearman" in printed
    assert {"records.jsonl", "records.csv", "runs.csv", "curves.csv", "convergence.png", "summary.md", "runs"} <= {
        p.name for p in tmp_path.iterdir()}
    columns = read_csv_columns(tmp_path / "runs.csv")
    assert {"variant", "image", "protocol", "seed", "final_train_psnr", "final_test_psnr", "steps_to_25dB",
            "steps_to_30dB", "steps_to_35dB", "seconds_to_30dB", "lambda_min_0", "kappa_0", "kappa_end",
            "run_dir"} <= set(columns)
    assert len(columns["variant"]) == 3 * 2 * 2  # activations × images × protocols
    for run_dir, protocol, test in zip(columns["run_dir"], columns["protocol"], columns["final_test_psnr"]):
        assert Path(run_dir).parent.parent == tmp_path / "runs"  # the run's TensorBoard logs: under the study's folder
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
    assert "(12 of 12 already done)" in run_quick("convergence.py", tmp_path, "--engine", "single").stderr
    assert len(list((tmp_path / "runs").glob("*/version_*"))) == 12


def test_an_ensemble_of_jobs_gives_each_the_results_of_its_own_run(tmp_path):
    """Two variants of one config and two seeds as one ensemble, against four single runs: the same curves to
    float32 round-off, the same step counts."""
    from coordnet.experiments import convergence

    jobs = [job for job in convergence.jobs(True, tmp_path) if job["image"] == "camera" and job["protocol"] == "fourier"
            and job["variant"] == "sine ω0=30"]
    jobs = [job | {"seed": seed, "variant": variant, "overrides": ["--model.activation.init_args.omega0", omega]}
            for job in jobs for seed in (0, 1) for variant, omega in (("sine ω0=30", "30.0"), ("sine ω0=10", "10.0"))]
    assert len({convergence.group(job) for job in jobs}) == 1
    together = convergence.run_group(jobs)
    for job, ensemble in zip(jobs, together):
        single = convergence.run(job)
        assert np.allclose(ensemble["curve_train_psnr"], single["curve_train_psnr"], rtol=0, atol=1e-3)
        assert [v for _, v in ensemble["curve_test"]] == \
            pytest.approx([v for _, v in single["curve_test"]], abs=1e-3)
        assert ensemble["kappa_0"] == pytest.approx(single["kappa_0"], rel=1e-6)
        assert ensemble["steps_to_25dB"] == single["steps_to_25dB"]
        assert Path(ensemble["run_dir"]).parent.parent.parent == tmp_path / "runs"


def convergence_records(steps: int = 300, probe_points: int = 256) -> list[dict]:
    """Made-up records with the full study's panels and variants (what ``convergence.figure`` reads)."""
    from coordnet.experiments import convergence

    variants = dict.fromkeys(job["variant"] for job in convergence.jobs(False, Path("unused")))
    records = []
    for image in ("camera", "astronaut"):
        for protocol in ("memorize", "fourier"):
            for i, variant in enumerate(variants):
                t = np.arange(steps + 1)
                records.append({"image": image, "protocol": protocol, "variant": variant, "seed": 0,
                                "resolution": convergence.RESOLUTION, "probe_points": probe_points,
                                "curve_train_psnr": list(10 + (i + 1) * np.log1p(t)),
                                "curve_test": [(int(s), 10.0 + i + s / 100) for s in t[25::25]],
                                "curve_ntk_step": list(range(0, steps + 1, 50)),
                                "curve_kappa": [10.0 ** (1 + i) for _ in range(0, steps + 1, 50)]})
    return records


def test_convergence_figure_has_one_legend_for_all_panels_and_the_float64_floor_on_every_kappa_panel():
    from coordnet.experiments.convergence import figure

    records = convergence_records()
    fig = figure(records)
    assert_readable(fig)
    assert len(fig.legends) == 1 and not any(ax.get_legend() for ax in fig.axes)
    assert set(legend_labels(fig)) >= {r["variant"] for r in records}
    kappa_axes = [ax for ax in fig.axes if ax.get_ylabel().startswith("κ")]
    assert len(kappa_axes) == 4
    floor = 1 / (256 * np.finfo(np.float64).eps)  # κ of a 256-point kernel whose λ_min sits at the floor
    for ax in kappa_axes:
        lines = [line for line in ax.get_lines() if line.get_label().startswith("float64 floor")]
        assert len(lines) == 1 and np.allclose(lines[0].get_ydata(), floor)
    assert any(label.startswith("float64 floor") for label in legend_labels(fig))
