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


# -- where --quick runs write ----------------------------------------------------------------------------

def test_quick_runs_write_to_their_own_folder_and_an_explicit_out_wins(tmp_path, monkeypatch):
    from coordnet.experiments.reporting import experiment_args

    def default_out(*argv: str) -> str:
        monkeypatch.setattr(sys, "argv", ["study.py", *argv])
        return experiment_args("A study.", "study", "small sizes", "~1 min", "~1 s").out

    assert default_out() == "results/study"
    assert default_out("--quick") == "results/study-quick"
    assert default_out("--quick", "--out", "elsewhere") == "elsewhere"
    # as a user runs a script: the full study's folder is not touched
    result = subprocess.run([sys.executable, str(SCRIPTS / "p2_spectrum_bounds.py"), "--quick"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "results" / "p2_spectrum_bounds-quick" / "summary.md").is_file()
    assert not (tmp_path / "results" / "p2_spectrum_bounds").exists()


# -- figures a reader can read ---------------------------------------------------------------------------

def drawn(fig):
    """``fig`` drawn on an Agg canvas; the renderer, for window extents."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    return fig.canvas.get_renderer()


def assert_readable(fig) -> None:
    """Every axes and figure title lies inside the figure and no two titles, nor two tick labels of one axis, come
    within 2 pixels of each other (labels that touch read as one: "3×10²4×10²")."""
    renderer = drawn(fig)
    page = fig.bbox
    padded = lambda text: text.get_window_extent(renderer).padded(1)  # noqa: E731
    titles = [ax.title for ax in fig.axes if ax.get_title()] + [t for t in fig.texts if t.get_text()]
    for t in titles:
        box = t.get_window_extent(renderer)
        assert page.x0 - 0.5 <= box.x0 and box.x1 <= page.x1 + 0.5 and box.y1 <= page.y1 + 0.5, \
            f"title {t.get_text()!r} is cut off by the figure's edge"
    for i, a in enumerate(titles):
        for b in titles[i + 1:]:
            assert not padded(a).overlaps(padded(b)), f"titles {a.get_text()!r} and {b.get_text()!r} overlap"
    for ax in fig.axes:
        frame = ax.get_window_extent(renderer)
        for axis, lo, hi, centre in ((ax.xaxis, frame.x0, frame.x1, lambda b: (b.x0 + b.x1) / 2),
                                     (ax.yaxis, frame.y0, frame.y1, lambda b: (b.y0 + b.y1) / 2)):
            labels = [t for t in axis.get_ticklabels(which="both") if t.get_visible() and t.get_text()
                      and lo - 1 <= centre(t.get_window_extent(renderer)) <= hi + 1]
            for i, a in enumerate(labels):
                for b in labels[i + 1:]:
                    assert not padded(a).overlaps(padded(b)), \
                        f"tick labels {a.get_text()!r} and {b.get_text()!r} overlap"


def legend_labels(fig) -> list[str]:
    """The entries of every legend in ``fig``: its figure-level legends and its axes' legends."""
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    return [t.get_text() for legend in legends for t in legend.get_texts()]


def test_spectrum_bounds_figure_titles_fit_and_one_legend_names_every_series():
    from coordnet.experiments.paper2 import spectrum_bounds, spectrum_bounds_figure, spectrum_bounds_table

    table = spectrum_bounds_table(spectrum_bounds(datasets=1, progress=False))  # the full run's n, l and Δ
    fig = spectrum_bounds_figure(table)
    assert_readable(fig)
    assert len(fig.legends) == 1  # one legend for both panels, which share their series
    labels = legend_labels(fig)
    for delta, n in {(t["delta"], t["n"]) for t in table}:
        assert any(f"Δ = {delta:g}" in label and f"n = {n}" in label for label in labels), (delta, n, labels)
    assert any("Theorem 13" in label for label in labels)  # what the dashed lines are


def test_finite_width_figure_tick_labels_do_not_collide():
    from coordnet.experiments.paper2 import FINITE_WIDTH_ACTIVATIONS, finite_width_figure, finite_width_table

    rows = [{"activation": a, "delta": d, "depth": depth, "width": w, "seed": 0,
             "relative_error": 0.1 * depth ** 0.3 * (256 / w) ** 0.5 / d}
            for a, d in FINITE_WIDTH_ACTIVATIONS.items() for depth in (3, 6, 12) for w in (256, 1024, 4096)]
    assert_readable(finite_width_figure(finite_width_table(rows)))  # the full run's widths


def convergence_records(resolution: int = 64, steps: int = 300, probe_points: int = 256) -> list[dict]:
    """Made-up records with the full study's panels and variants (what ``convergence_figure`` reads)."""
    from coordnet.experiments.convergence import default_variants

    records = []
    for image in ("camera", "astronaut"):
        for protocol in ("memorize", "fourier"):
            for i, v in enumerate(default_variants(resolution)):
                t = np.arange(steps + 1)
                records.append({"image": image, "protocol": protocol, "variant": v.name, "seed": 0,
                                "resolution": resolution, "probe_points": probe_points,
                                "curve_train_psnr": list(10 + (i + 1) * np.log1p(t)),
                                "curve_test": [(int(s), 10.0 + i + s / 100) for s in t[25::25]],
                                "curve_ntk_step": list(range(0, steps + 1, 50)),
                                "curve_kappa": [10.0 ** (1 + i) for _ in range(0, steps + 1, 50)]})
    return records


def test_convergence_figure_has_one_legend_for_all_panels_and_the_float64_floor_on_every_kappa_panel():
    from coordnet.experiments.convergence import convergence_figure

    records = convergence_records()
    fig = convergence_figure(records)
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


def test_memorization_figure_legend_lists_every_activation_and_both_optimizers(tmp_path):
    from coordnet.experiments.memorization import default_activations, memorization_figures, sweep

    specs = default_activations()
    records = sweep(specs, ("gaussian", "grid"), 16, (1.0, 8.0), ("gd", "adam"), 20, 1, tmp_path / "runs.jsonl",
                    dim=4, progress=False)
    fig = memorization_figures(records, 16)
    assert_readable(fig)
    assert len(fig.legends) == 1 and not any(ax.get_legend() for ax in fig.axes)
    labels = legend_labels(fig)
    assert set(labels) >= {s.name for s in specs}
    assert any(label.startswith("GD") for label in labels) and any(label.startswith("Adam") for label in labels)
