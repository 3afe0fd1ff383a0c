"""The study runner and its sweeps: processes, job order, resume, failures, output folders."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from studies import SCRIPTS


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


def test_quick_runs_write_to_their_own_folder_and_an_explicit_out_wins(tmp_path):
    from coordnet.experiments.study import load_study, output_dir

    study = load_study("p2_spectrum_bounds")
    assert output_dir(study, quick=False).as_posix() == "results/p2_spectrum_bounds"
    assert output_dir(study, quick=True).as_posix() == "results/p2_spectrum_bounds-quick"
    # as a user runs a script: the full study's folder is not touched
    result = subprocess.run([sys.executable, str(SCRIPTS / "p2_spectrum_bounds.py"), "--quick"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "results" / "p2_spectrum_bounds-quick" / "summary.md").is_file()
    assert not (tmp_path / "results" / "p2_spectrum_bounds").exists()
    elsewhere = tmp_path / "elsewhere"
    result = subprocess.run([sys.executable, str(SCRIPTS / "p2_spectrum_bounds.py"), "--quick", "--out",
                             str(elsewhere)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and (elsewhere / "summary.md").is_file()


def slow_study(tmp_path: Path, *options: str) -> subprocess.Popen:
    """tests/slow_study.py through the runner, in its own process; each job notes its start in tmp_path/starts."""
    code = "import sys; from coordnet.experiments.study import main; main('slow_study', sys.argv[1:])"
    return subprocess.Popen([sys.executable, "-c", code, "--out", str(tmp_path / "out"), *options],
                            cwd=Path(__file__).parent, env=os.environ | {"STARTS": str(tmp_path / "starts")},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_study_killed_mid_run_resumes_without_running_a_finished_job_twice(tmp_path):
    log = tmp_path / "out" / "records.jsonl"
    first = slow_study(tmp_path)
    deadline = time.monotonic() + 120
    while (not log.exists() or len(log.read_text().splitlines()) < 2) and time.monotonic() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)  # no chance to tidy up: as a crash, a lost node or a closed laptop
    first.wait()
    finished = [json.loads(line)["x"] for line in log.read_text().splitlines() if line.endswith("}")]
    assert 2 <= len(finished) < 6
    second = slow_study(tmp_path)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert f"({len(finished)} of 6 already done)" in err
    starts = [int(x) for x in (tmp_path / "starts").read_text().split()]
    assert all(starts.count(x) == 1 for x in finished), starts  # finished jobs never ran again
    assert sorted(set(starts)) == list(range(6))
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted(r["x"] for r in records) == list(range(6)) and all(r["square"] == r["x"] ** 2 for r in records)
    assert "| 5 | 25 |" in out and (tmp_path / "out" / "records.csv").read_text().count("\n") == 7


def test_settings_are_overridden_by_name_and_type(tmp_path):
    from coordnet.experiments import p2_finite_width
    from coordnet.experiments.study import apply_settings, load_study

    study = load_study("p2_finite_width")
    assert study is p2_finite_width
    saved = study.SEEDS, study.WIDTHS
    try:
        apply_settings(study, ["SEEDS=16", "WIDTHS=[64, 128]"])
        assert study.SEEDS == 16 and study.WIDTHS == (64, 128)
        assert len(study.jobs(False, Path("unused"))) == 2 * 3 * 2 * 16
        for bad, message in (("SEEDS=many", "SEEDS is a int"), ("seeds=3", "KEY one of"), ("SEEDS", "KEY=VALUE"),
                             ("NOPE=1", "KEY one of ACTIVATIONS, WIDTHS")):
            with pytest.raises(ValueError, match=message):
                apply_settings(study, [bad])
    finally:
        study.SEEDS, study.WIDTHS = saved
    with pytest.raises(ValueError, match="unknown study 'p3'; coordnet's are .*p2_finite_width"):
        load_study("p3")
    with pytest.raises(ValueError, match="coordnet.experiments.reporting is not a study: it lacks NAME, jobs"):
        load_study("coordnet.experiments.reporting")


def test_seed_bootstrap_and_local_slopes():
    from coordnet.experiments.reporting import local_slopes, seed_bootstrap

    xs = [100, 200, 400]
    exact = [[3.0 * x**1.5] * 6 for x in xs]  # no seed noise: the interval is the value itself
    for _, _, slope, low, high in local_slopes(xs, exact):
        assert slope == pytest.approx(1.5) and low == pytest.approx(1.5) and high == pytest.approx(1.5)
    rng = np.random.default_rng(0)
    noisy = [[3.0 * x**1.5 * np.exp(rng.normal(0, 0.2)) for _ in range(16)] for x in xs]
    steps = local_slopes(xs, noisy)
    assert all(low < slope < high and high - low < 0.6 for _, _, slope, low, high in steps)
    assert sum(low <= 1.5 <= high for *_, low, high in steps) >= 1
    value, low, high = seed_bootstrap([list(range(1, 17))], np.median)
    assert value == 8.5 and 5 <= low < 8.5 < high <= 12
