"""The memorisation study."""

import json

import pytest

from coordnet.tables import read_csv_columns

from studies import assert_readable, legend_labels, run_quick


@pytest.fixture
def small(monkeypatch):
    """The memorisation study at N = 16 in R^4, widths N and 8N, 20 steps (settings restored afterwards)."""
    from coordnet.experiments import memorization

    for key, value in {"NUM_POINTS": 16, "DIM": 4, "WIDTH_RATIOS": (1.0, 8.0), "STEPS": 20}.items():
        monkeypatch.setattr(memorization, key, value)
    return memorization


def test_memorization_quick_and_the_linearised_prediction(tmp_path):
    from coordnet.experiments.memorization import linearisation_error

    printed = run_quick("memorization.py", tmp_path, "--workers", "2").stdout
    assert "memorisation threshold" in printed and "Spearman" in printed
    assert {"records.jsonl", "records.csv", "runs.csv", "curves.csv", "memorization.png", "summary.md"} <= {
        p.name for p in tmp_path.iterdir()}
    columns = read_csv_columns(tmp_path / "runs.csv")
    assert {"lambda_min_K0", "kappa_K0", "steps_to_0.01", "steps_to_0.0001", "final_loss"} <= set(columns)
    assert len(columns["activation"]) == 3 * 2 * 2 * 2  # activations × inputs × widths × optimisers
    curves = read_csv_columns(tmp_path / "curves.csv")
    assert {"step", "relative_loss", "linearised"} <= set(curves)
    assert len(curves["step"]) == sum(int(s) + 1 for s in columns["steps_run"])  # every step of every run
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    for r in records:  # GD on a wide ReLU or |x| network follows the model linearised at K₀
        if r["optimizer"] == "gd" and r["width"] == 8 * 64 and r["activation"] in ("relu", "abrelu Δ=1"):
            assert linearisation_error(r) <= 0.05
    # a second call finds every run in records.jsonl and redoes none
    assert "(24 of 24 already done)" in run_quick("memorization.py", tmp_path).stderr
    assert len((tmp_path / "records.jsonl").read_text().splitlines()) == 24


def test_an_ensemble_of_jobs_gives_each_the_results_of_its_own_run(tmp_path):
    """cos(1·), cos(5·) and cos(30·) with two seeds (their data differ) as one ensemble, GD with a learning rate each
    and Adam, against single runs: the same curves to float64 round-off and the same step counts."""
    from coordnet.experiments import memorization

    for optimizer in ("gd", "adam"):
        jobs = [job | {"activation": name, "activation_config": memorization.ACTIVATIONS[name], "seed": seed,
                       "step_cap": 60}
                for job in memorization.jobs(True, tmp_path)[:1] for name in ("cos(1·)", "cos(5·)", "cos(30·)")
                for seed in (0, 1)]
        jobs = [job | {"optimizer": optimizer} for job in jobs]
        assert len({memorization.group(job) for job in jobs}) == 1
        for job, ensemble in zip(jobs, memorization.run_group(jobs)):
            single = memorization.run(job)
            assert ensemble["lr"] == pytest.approx(single["lr"], rel=1e-12)
            assert ensemble["curve"] == pytest.approx(single["curve"], rel=1e-9)
            assert ensemble["predicted"] == pytest.approx(single["predicted"], rel=1e-9)
            assert (ensemble["steps_to_0.01"], ensemble["steps_run"]) == (single["steps_to_0.01"], single["steps_run"])


def test_memorization_resumes_only_runs_with_the_same_settings(tmp_path, small, monkeypatch):
    from coordnet.experiments.study import run_study

    monkeypatch.setattr(small, "ACTIVATIONS", {"relu": small.ACTIVATIONS["relu"]})
    monkeypatch.setattr(small, "WIDTH_RATIOS", (1.0,))
    monkeypatch.setattr(small, "STEPS", 5)
    log = tmp_path / "records.jsonl"
    first, _ = run_study(small, out=tmp_path, progress=False)
    assert len(first) == 2 * 2  # inputs × optimisers
    again, _ = run_study(small, out=tmp_path, progress=False)
    assert again == first and len(log.read_text().splitlines()) == 4  # read back, not redone
    monkeypatch.setattr(small, "STEPS", 7)
    longer, _ = run_study(small, out=tmp_path, progress=False)
    assert {r["step_cap"] for r in longer} == {7} and len(log.read_text().splitlines()) == 8  # other settings: run
    monkeypatch.setattr(small, "NUM_POINTS", 15)
    with pytest.raises(ValueError, match="grid inputs need a square number of points"):
        small.jobs(False, tmp_path)


@pytest.mark.filterwarnings("ignore:An input array is constant")  # no run reaches 1e-2 in 20 Adam steps
def test_memorization_figure_legend_lists_every_activation_and_both_optimizers(tmp_path, small):
    from coordnet.experiments.study import run_study

    records, _ = run_study(small, out=tmp_path, progress=False)
    assert (tmp_path / "memorization.png").is_file()
    fig, _ = small.report(records)
    assert_readable(fig)
    assert len(fig.legends) == 1 and not any(ax.get_legend() for ax in fig.axes)
    labels = legend_labels(fig)
    assert set(labels) >= set(small.ACTIVATIONS)
    assert any(label.startswith("GD") for label in labels) and any(label.startswith("Adam") for label in labels)
