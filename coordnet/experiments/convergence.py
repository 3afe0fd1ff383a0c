"""How fast each activation fits an image, and what the NTK on a probe does meanwhile.

Every run goes through the CLI's own path: a shipped config (``configs/camera_*.yaml``) with command-line
overrides, fitted by ``fit_config`` with two callbacks — ``PSNRHistory`` (train PSNR every step, test PSNR at
every validation, time in training steps) and ``NTKSpectrumCallback`` (λ_min, κ of the raw J Jᵀ on a
stratified probe of PROBE_POINTS training pixels, mean over output channels, every STEPS/6 steps). The configs fix
each network's depth, init and learning rate (full-batch Adam); a job overrides the image, resolution, protocol,
seed, step count and width. One job per (image, protocol, variant, seed) of IMAGES × PROTOCOLS × VARIANTS ×
SEEDS, at RESOLUTION², STEPS steps, HIDDEN wide; validation every STEPS/12 steps.

VARIANTS: name → (config, overrides). cos(s·) for s ∈ {1, 5, 15} (He), sine ω0 ∈ {10, 30, 60} (SIREN init),
ReLU (He), ReLU with Gaussian Fourier features and |x| at the Edge of Chaos. ``{sigma}`` in a name or an
override is the Fourier features' σ = 2.5 · resolution/256: Tancik et al.'s σ = 10 for 512² images on [0, 1]²
carried to our [−1, 1]² coordinates (halved) and to the resolution. On camera at 64² (fourier protocol, 300
steps) test PSNR was 25.8 / 24.1 / 19.3 / 11.4 / 9.9 dB for σ = 0.5 / 1 / 2 / 5 / 10: a σ too large for the
pixel spacing memorises the training pixels and generalises to none.

Per run: steps and seconds until the train PSNR first reaches 25/30/35 dB (None if never), final train and
test PSNR, best test PSNR, and λ_min, κ at init and at the end. Seeds change the network's init only (the
data and probe are fixed). Each run's TensorBoard logs go to ``<out>/runs/<image>-<protocol>-<variant>-seed<i>``.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
import time
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from pytorch_lightning import Trainer

from coordnet.experiments.config_runs import CONFIG_DIR, fit_config
from coordnet.experiments.reporting import markdown_table
from coordnet.ntk.history import read_history
from coordnet.ntk.plots import draw_kappa_floor
from coordnet.ntk.spectrum import numerical_floor
from coordnet.tables import read_csv_columns
from coordnet.training import PSNRHistory
from coordnet.training.ensemble import safe_name

NAME = "convergence"
IMAGES = ("camera", "astronaut")
PROTOCOLS = ("memorize", "fourier")
RESOLUTION = 64  # image side in pixels
STEPS = 300  # full-batch Adam steps per run
HIDDEN = 256  # hidden width (the shipped configs' own)
SEEDS = 3
PROBE_POINTS = 256  # NTK probe size
VARIANTS = ({f"cos s={s:g}": ("camera_cos.yaml", ("--model.activation.init_args.s", str(s))) for s in (1.0, 5.0, 15.0)}
            | {f"sine ω0={w:g}": ("camera_sine.yaml", ("--model.activation.init_args.omega0", str(w)))
               for w in (10.0, 30.0, 60.0)}
            | {"relu": ("camera_relu.yaml", ()),
               "relu+FF σ={sigma:g}": ("camera_relu_ff.yaml", ("--model.encoding.init_args.sigma", "{sigma}")),
               "abs EOC": ("camera_abs_eoc.yaml", ())})


def jobs(quick: bool, out: Path) -> list[dict]:
    """One job per (image, protocol, variant, seed), its TensorBoard logs under ``<out>/runs``; --quick: 32²,
    cos s=5, sine ω0=30 and relu, 1 seed, 40 steps, a 64-pixel probe."""
    resolution, steps, seeds, probe_points = (32, 40, 1, 64) if quick else (RESOLUTION, STEPS, SEEDS, PROBE_POINTS)
    variants = {k: VARIANTS[k] for k in ("cos s=5", "sine ω0=30", "relu")} if quick else VARIANTS
    sigma = 2.5 * resolution / 256
    return [{"variant": name.format(sigma=sigma), "config": config,
             "overrides": [override.format(sigma=sigma) for override in overrides], "image": image,
             "protocol": protocol, "resolution": resolution, "hidden": HIDDEN, "steps": steps, "seed": seed,
             "probe_points": probe_points, "ntk_every": max(1, steps // 6), "eval_every": max(1, steps // 12),
             "save_dir": str(Path(out) / "runs")}
            for image in IMAGES for protocol in PROTOCOLS for name, (config, overrides) in variants.items()
            for seed in range(seeds)]


def run_name(job: dict) -> str:
    """The run's directory name under ``save_dir``: image-protocol-variant-seed, in file-name-safe characters."""
    return safe_name(f"{job['image']}-{job['protocol']}-{job['variant']}-seed{job['seed']}")


def steps_to_psnr(values: list[float], target: float) -> int | None:
    """The first step t with PSNR ``values[t]`` ≥ ``target`` dB, or None."""
    return next((i for i, v in enumerate(values) if v >= target), None)


def member_overrides(job: dict) -> list[str]:
    """The job's network and data, as command-line overrides of its config."""
    return [*job["overrides"], "--data.init_args.image", job["image"], "--data.init_args.resolution",
            str(job["resolution"]), "--data.init_args.protocol", job["protocol"], "--seed_everything", str(job["seed"]),
            "--model.hidden", str(job["hidden"])]


def callbacks(job: dict) -> list[dict]:
    """The PSNR and NTK callbacks of a job, as class configs."""
    return [{"class_path": "coordnet.training.PSNRHistory"},  # first: its step times exclude the NTK's
            {"class_path": "coordnet.training.NTKSpectrumCallback",
             "init_args": {"num_points": job["probe_points"], "every_n_steps": job["ntk_every"], "log_figure": False}}]


def quiet_lightning() -> None:
    for name in ("pytorch_lightning", "lightning_fabric"):  # the per-run banners would bury the progress bar
        logging.getLogger(name).setLevel(logging.WARNING)


def fit_job(job: dict) -> tuple[Trainer, float]:
    """Fit ``job`` through ``fit_config`` (the CLI's path, quiet, with the PSNR and NTK callbacks); the finished
    Trainer (``trainer.log_dir``: the run's directory) and the fit's wall time in seconds."""
    quiet_lightning()
    overrides = [*member_overrides(job), "--trainer.max_steps", str(job["steps"]),
                 "--trainer.val_check_interval", str(job["eval_every"]),
                 "--trainer.callbacks", json.dumps(callbacks(job)),
                 "--trainer.logger.init_args.save_dir", job["save_dir"],
                 "--trainer.logger.init_args.name", run_name(job), "--progress_bar.refresh_rate", "0",
                 "--summary.verbose", "false"]  # the study's own bar reports progress, not a line per run
    return fit_config(CONFIG_DIR / job["config"], overrides)


def run(job: dict) -> dict:
    """Fit one job and read its PSNR and NTK histories back: the scalar results and the curves."""
    trainer, wall = fit_job(job)
    return results(trainer.log_dir, str(trainer.strategy.root_device), wall)


def group(job: dict) -> str:
    """One ensemble per (image, protocol, config): the variants of one activation family and their seeds."""
    return json.dumps([job["image"], job["protocol"], job["config"], job["resolution"], job["hidden"], job["steps"]])


def run_group(jobs: list[dict]) -> list[dict]:
    """``run`` for every job at once: one ``EnsembleModule`` of their networks (each parsed from its config as the
    CLI parses it, with the job's overrides), split into ensembles that fit the device; each member's histories
    read back from its run directory. ``seconds`` are the ensemble's training time divided by its members. A group
    of one is its single run."""
    from coordnet.cli import parse_config
    from coordnet.cli.sweep import ensemble_settings, split_to_fit
    from coordnet.data.ensemble import EnsembleDataModule
    from coordnet.training import NTKSpectrumCallback, make_trainer
    from coordnet.training.ensemble import EnsembleModule

    if len(jobs) == 1:
        return [run(jobs[0])]

    quiet_lightning()
    first = jobs[0]
    configs = [parse_config(["--config", str(CONFIG_DIR / job["config"]), *member_overrides(job)]) for job in jobs]
    ensemble, rows = ensemble_settings(configs, [run_name(job) for job in jobs])
    out = []
    for chunk in split_to_fit(ensemble, rows):
        module, data = EnsembleModule(**chunk["model"]), EnsembleDataModule(**chunk["data"])
        ntk = NTKSpectrumCallback(first["probe_points"], first["ntk_every"], log_figure=False)
        name = f"{first['image']}-{first['protocol']}-{Path(first['config']).stem}"
        trainer = make_trainer(first["save_dir"], name, max_steps=first["steps"], val_check_interval=first["eval_every"],
                               callbacks=[ntk], enable_progress_bar=False)
        start = time.perf_counter()
        trainer.fit(module, data)
        wall = time.perf_counter() - start
        device = str(trainer.strategy.root_device)
        out += [results(Path(trainer.log_dir) / name, device, wall / module.num_members, 1 / module.num_members)
                for name in module.names]
    return out


def results(run_dir: str | Path, device: str, wall: float, seconds_scale: float = 1.0) -> dict:
    """A run's scalar results and curves from its ``psnr_history.csv`` and ``ntk_spectrum.csv``."""
    fit = read_csv_columns(Path(run_dir) / PSNRHistory.FILE)
    ntk = read_history(run_dir)
    train, seconds = fit["train_psnr"], [s * seconds_scale for s in fit["seconds"]]
    tested = [[int(s), v] for s, v in zip(fit["step"], fit["test_psnr"]) if not math.isnan(v)]
    results = {"run_dir": str(run_dir), "device": device, "fit_seconds": wall,
               "train_seconds": seconds[-1], "final_train_psnr": train[-1],
               "final_test_psnr": tested[-1][1] if tested else None,
               "best_test_psnr": max(v for _, v in tested) if tested else None}
    for target in (25.0, 30.0, 35.0):
        step = steps_to_psnr(train, target)
        results[f"steps_to_{target:g}dB"] = step
        results[f"seconds_to_{target:g}dB"] = seconds[step] if step is not None else None
    floor_limited = [lm <= fl for lm, fl in zip(ntk["lambda_min"], ntk["floor"])]
    results |= {"lambda_min_0": ntk["lambda_min"][0], "kappa_0": ntk["condition_number"][0],
                "kappa_0_floor_limited": floor_limited[0], "lambda_min_end": ntk["lambda_min"][-1],
                "kappa_end": ntk["condition_number"][-1], "kappa_end_floor_limited": floor_limited[-1]}
    return results | {"curve_train_psnr": train, "curve_seconds": seconds, "curve_test": tested,
                      "curve_ntk_step": ntk["step"], "curve_lambda_min": ntk["lambda_min"],
                      "curve_kappa": ntk["condition_number"]}


def psnr_targets(records: list[dict]) -> list[float]:
    """The PSNR targets (dB) the runs recorded steps to, from their ``steps_to_<t>dB`` fields."""
    return [float(k[len("steps_to_"):-len("dB")]) for k in records[0] if k.startswith("steps_to_")]


def tables(records: list[dict]) -> dict[str, list[dict]]:
    """runs.csv: one row per run, its settings and scalar results; curves.csv: long-format curves, one row per
    (run, step): train PSNR, seconds, test PSNR (at validations) and λ_min, κ (at NTK measurements), NaN elsewhere."""
    runs = [{k: v for k, v in r.items() if not k.startswith("curve_") and k not in ("overrides", "save_dir")}
            for r in records]
    curves = []
    for r in records:
        test = dict(r["curve_test"])
        ntk = {int(s): (lm, k) for s, lm, k in zip(r["curve_ntk_step"], r["curve_lambda_min"], r["curve_kappa"])}
        for step, (value, sec) in enumerate(zip(r["curve_train_psnr"], r["curve_seconds"])):
            lm, kappa = ntk.get(step, (math.nan, math.nan))
            curves.append({"image": r["image"], "protocol": r["protocol"], "variant": r["variant"], "seed": r["seed"],
                           "step": step, "train_psnr": value, "seconds": sec, "test_psnr": test.get(step, math.nan),
                           "lambda_min": lm, "kappa": kappa})
    return {"runs": runs, "curves": curves}


def _median_reached(runs: list[dict], column: str) -> str:
    reached = [r[column] for r in runs if r[column] is not None]
    if not reached:
        return f"never (0/{len(runs)})"
    return f"{statistics.median(reached):.4g} ({len(reached)}/{len(runs)})"


def _kappa(runs: list[dict], column: str) -> str:
    geo = math.exp(statistics.fmean(math.log(r[column]) for r in runs))
    return ("≥ " if any(r[f"{column}_floor_limited"] for r in runs) else "") + f"{geo:.3g}"


def summary_rows(records: list[dict]) -> list[list]:
    """Per (image, protocol, variant), over seeds: final train/test PSNR mean ± sd, median steps to each target
    and seconds to 30 dB among the seeds that reached it (how many did), and the geometric-mean κ at init and at
    the end ("≥" when a run's λ_min sat at the float64 floor)."""
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for r in records:
        groups.setdefault((r["image"], r["protocol"], r["variant"]), []).append(r)
    rows = []
    for (image, protocol, variant), runs in groups.items():
        train = [r["final_train_psnr"] for r in runs]
        test = [r["final_test_psnr"] for r in runs if r["final_test_psnr"] is not None]
        spread = lambda v: f"{statistics.fmean(v):.2f} ± {statistics.pstdev(v):.2f}" if v else "—"  # noqa: E731
        row = [image, protocol, variant, spread(train), spread(test)]
        row += [_median_reached(runs, f"steps_to_{t:g}dB") for t in psnr_targets(records)]
        row += [_median_reached(runs, "seconds_to_30dB"), _kappa(runs, "kappa_0"), _kappa(runs, "kappa_end")]
        rows.append(row)
    return rows


def rank_correlations(records: list[dict]) -> list[list]:
    """Spearman correlation of κ at init with the steps to 30 dB, per (image, protocol); runs that never got
    there count as the step cap + 1."""
    from scipy.stats import spearmanr

    out = []
    for image, protocol in dict.fromkeys((r["image"], r["protocol"]) for r in records):
        runs = [r for r in records if (r["image"], r["protocol"]) == (image, protocol)]
        steps = [r["steps_to_30dB"] if r["steps_to_30dB"] is not None else r["steps"] + 1 for r in runs]
        rho, p = spearmanr([r["kappa_0"] for r in runs], steps)
        out.append([image, protocol, len(runs), float(rho), float(p)])
    return out


def _draw_panel(axes, records: list[dict], image: str, protocol: str, variants: list[str]) -> None:
    """One (image, protocol) column: mean PSNR against step (top), geometric-mean κ against step (bottom), each
    with the seeds' range shaded."""
    for i, variant in enumerate(variants):
        runs = [r for r in records if (r["image"], r["protocol"], r["variant"]) == (image, protocol, variant)]
        if not runs:
            continue
        if protocol == "memorize":
            curves = np.array([r["curve_train_psnr"] for r in runs])
            steps = np.arange(curves.shape[1])
            axes[0].plot(steps, curves.mean(axis=0), color=f"C{i}", lw=1, label=variant)
        else:
            steps = [s for s, _ in runs[0]["curve_test"]]
            curves = np.array([[v for _, v in r["curve_test"]] for r in runs])
            axes[0].plot(steps, curves.mean(axis=0), color=f"C{i}", lw=1, marker=".", ms=3, label=variant)
        axes[0].fill_between(steps, curves.min(axis=0), curves.max(axis=0), color=f"C{i}", alpha=0.15, lw=0)
        kappas = np.array([r["curve_kappa"] for r in runs])
        kappa = np.exp(np.log(kappas).mean(axis=0))
        axes[1].plot(runs[0]["curve_ntk_step"], kappa, color=f"C{i}", lw=1, marker=".", ms=3)
        axes[1].fill_between(runs[0]["curve_ntk_step"], kappas.min(axis=0), kappas.max(axis=0), color=f"C{i}",
                             alpha=0.15, lw=0)
    first = next(r for r in records if (r["image"], r["protocol"]) == (image, protocol))
    size = f"{first['resolution']}², {len(first['curve_train_psnr']) - 1} steps"
    which = "train" if protocol == "memorize" else "test"
    axes[0].set(title=f"{image}, {protocol} ({size})", xlabel="step", ylabel=f"{which} PSNR (dB)")
    for target in psnr_targets(records):
        axes[0].axhline(target, color="0.8", lw=0.6, zorder=0)
    draw_kappa_floor(axes[1], 1 / numerical_floor(first["probe_points"], 1.0))
    axes[1].set(yscale="log", xlabel="step", ylabel=f"κ of the NTK on {first['probe_points']} pixels")


def figure(records: list[dict]) -> Figure:
    """Top row: PSNR against step, mean over seeds (their range shaded), per (image, protocol) — train PSNR under
    ``memorize``, test PSNR (markers at the validations) under ``fourier``. Bottom row: κ of the probe NTK against
    step (geometric mean over seeds, their range shaded) and its float64 floor 1/(N·eps), N the probe size (every
    run has more training pixels than that). One legend below the panels, which all share its series."""
    panels = list(dict.fromkeys((r["image"], r["protocol"]) for r in records))
    variants = list(dict.fromkeys(r["variant"] for r in records))
    fig = Figure(figsize=(4.5 * len(panels), 8), layout="constrained")
    axes = fig.subplots(2, len(panels), squeeze=False)
    for col, (image, protocol) in enumerate(panels):
        _draw_panel(axes[:, col], records, image, protocol, variants)
    entries = {label: handle for ax in axes.flat for handle, label in zip(*ax.get_legend_handles_labels())}
    fig.legend(entries.values(), entries.keys(), loc="outside lower center", ncol=len(entries), fontsize=9)
    return fig


def engine_note(records: list[dict]) -> str:
    """How the runs were trained, for the summary: one at a time, or as ensembles (seconds shared out)."""
    if all(r.get("engine", "single") == "single" for r in records):
        return "one network at a time"
    return ("the variants of one config and their seeds trained as one ensemble; a member's seconds are the "
            "ensemble's divided by its members")


def report(records: list[dict]) -> tuple[Figure, str]:
    """The figure, and summary.md: the settings, the per-activation table and the κ–speed rank correlations."""
    first = records[0]
    devices = sorted({r["device"] for r in records})
    header = ["image", "protocol", "activation", "final train PSNR", "final test PSNR",
              *(f"steps to {t:g} dB" for t in psnr_targets(records)), "seconds to 30 dB", "κ at init", "κ at end"]
    lines = [f"# Convergence speed across activations ({first['resolution']}², {first['steps']} full-batch Adam "
             f"steps, {len({r['seed'] for r in records})} seeds, device {', '.join(devices)})", "",
             "Each network, init and learning rate as in its shipped config (configs/camera_*.yaml). Steps/seconds "
             "to a PSNR: median over the seeds that reached it (how many did), from the train PSNR; seconds count "
             f"training steps only ({engine_note(records)}). κ: raw J Jᵀ on "
             f"{first['probe_points']} training pixels, geometric mean over seeds.", "",
             markdown_table(header, summary_rows(records)), "",
             "Spearman rank correlation of κ at init with the steps to 30 dB (never = cap + 1):", "",
             markdown_table(["image", "protocol", "runs", "ρ", "p"], rank_correlations(records))]
    return figure(records), "\n".join(lines)
