"""λ_min and condition number of the empirical NTK while cos and ReLU networks fit the camera image.

Each job trains one shipped config (configs/camera_cos.yaml: cos(5x), He init, biases; configs/camera_relu.yaml:
ReLU, He init) through ``fit_config``, as ``coordnet fit`` would, for MAX_STEPS full-batch Adam steps on camera
RESOLUTION², its ``NTKSpectrumCallback`` measuring Θ = J Jᵀ (raw, float64, mean over outputs) on a fixed probe
of PROBE_POINTS training pixels every NTK_EVERY steps (the configs' own 1024 and 100 in the full run): λ_min and
λ_max (λ_min never below the float64 floor n·eps·λ_max, where κ = λ_max/λ_min reads only as a lower bound,
1/(n·eps)) and the kernel distance to step 0, 1 − ⟨Θ_0, Θ_t⟩_F / (‖Θ_0‖_F ‖Θ_t‖_F). A ReLU network is affine on
each linear region, so probe points sharing a region have Jacobian rows spanning at most 3 dimensions and its
kernel is singular to float64 (docs/results.md: on 1024 pixels of camera 128², cos(5x)'s κ is 59 at init and ReLU's
sits at the floor). The TensorBoard runs go to SAVE_DIR/<config stem>/version_k.
"""

from __future__ import annotations

import json
from pathlib import Path

from matplotlib.figure import Figure

from coordnet.experiments.config_runs import CONFIG_DIR, fit_config
from coordnet.experiments.reporting import markdown_table
from coordnet.ntk.history import read_history
from coordnet.ntk.plots import history_figure

NAME = "ntk_cos_vs_relu"
NETWORKS = (("cos(5x), He", "camera_cos.yaml"), ("ReLU, He", "camera_relu.yaml"))  # (label, config in configs/)
MAX_STEPS = 2000
RESOLUTION = 256
PROBE_POINTS = 1024
NTK_EVERY = 100
SAVE_DIR = "runs"  # the runs' TensorBoard root


def jobs(quick: bool, out: Path) -> list[dict]:
    """One job per network; --quick: camera 32², 60 steps, the NTK on 64 pixels every 20 steps."""
    steps, resolution, probe, every = (60, 32, 64, 20) if quick else (MAX_STEPS, RESOLUTION, PROBE_POINTS, NTK_EVERY)
    return [{"network": label, "config": config, "max_steps": steps, "resolution": resolution, "probe_points": probe,
             "ntk_every": every, "save_dir": SAVE_DIR} for label, config in NETWORKS]


def run(job: dict) -> dict:
    """Fit the job's config and read back its NTK history (``ntk_spectrum.csv``: column → values by measurement)."""
    callback = {"class_path": "coordnet.training.NTKSpectrumCallback",
                "init_args": {"num_points": job["probe_points"], "every_n_steps": job["ntk_every"]}}
    trainer, seconds = fit_config(CONFIG_DIR / job["config"], [
        "--trainer.max_steps", str(job["max_steps"]), "--data.init_args.resolution", str(job["resolution"]),
        "--trainer.callbacks", json.dumps([callback]), "--trainer.logger.init_args.save_dir", job["save_dir"]])
    history = read_history(trainer.log_dir)
    history["step"] = [int(step) for step in history["step"]]  # as the callback writes them
    return {"run_dir": trainer.log_dir, "fit_seconds": seconds, "history": history}


def history_rows(record: dict) -> list[dict]:
    """A run's NTK history as rows, one per measurement: the callback's ``ntk_spectrum.csv`` again."""
    columns = record["history"]
    return [{k: values[i] for k, values in columns.items()} for i in range(len(columns["step"]))]


def tables(records: list[dict]) -> dict[str, list[dict]]:
    """history_<config>.csv for each run."""
    return {f"history_{Path(r['config']).stem}": history_rows(r) for r in records}


def report(records: list[dict]) -> tuple[Figure, str]:
    """λ_min and κ against the step, one line per network; the first and last measurement of each run."""
    histories = {r["network"]: r["history"] for r in records}
    probe, resolution = records[0]["probe_points"], records[0]["resolution"]
    figure = history_figure(histories, ("lambda_min", "condition_number"),
                            title=f"Empirical NTK on {probe} pixels of camera {resolution}² (raw JJᵀ)")
    rows = [[label, f"{h['step'][i]:.0f}", f"{h['lambda_min'][i]:.4g}", f"{h['lambda_max'][i]:.4g}",
             f"{h['condition_number'][i]:.4g}", f"{h['kernel_distance_init'][i]:.3g}"]
            for label, h in histories.items() for i in (0, -1)]
    body = markdown_table(["network", "step", "λ_min", "λ_max", "condition number", "kernel distance to step 0"], rows)
    lines = [f"# The NTK while cos and ReLU networks fit camera {resolution}²", "",
             f"{records[0]['max_steps']} steps; raw J Jᵀ on {probe} training pixels every {records[0]['ntk_every']} "
             "steps, first and last measurement. κ = 1/(n·eps) means λ_min sits at the float64 floor n·eps·λ_max "
             "(κ is then a lower bound).", "", body, "",
             *(f"- {r['network']}: run directory {r['run_dir']}" for r in records)]
    return figure, "\n".join(lines)
