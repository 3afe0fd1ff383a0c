"""How fast each activation fits an image, and what the NTK on a probe does meanwhile.

Every run goes through the CLI's own path: a shipped config (``configs/camera_*.yaml``) with command-line
overrides, fitted by ``fit_config`` with two callbacks — ``PSNRHistory`` (train PSNR every step, test PSNR at
every validation, time in training steps) and ``NTKSpectrumCallback`` (λ_min, κ of the raw J Jᵀ on a
stratified probe of training pixels, mean over output channels, every ``ntk_every`` steps). The configs fix each
network's depth, init and learning rate (full-batch Adam); a job overrides the image, resolution, protocol,
seed, step count and, optionally, the width.

Per run: steps and seconds until the train PSNR first reaches 25/30/35 dB (None if never), final train and
test PSNR, best test PSNR, and λ_min, κ at init and at the end. Seeds change the network's init only (the
data and probe are fixed).
"""

from __future__ import annotations

import json
import logging
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from coordnet.experiments.config_runs import CONFIG_DIR, fit_config
from coordnet.experiments.reporting import markdown_table
from coordnet.ntk.history import read_history
from coordnet.ntk.plots import draw_kappa_floor
from coordnet.ntk.spectrum import numerical_floor
from coordnet.tables import read_csv_columns
from coordnet.training import PSNRHistory

PSNR_TARGETS = (25.0, 30.0, 35.0)


@dataclass(frozen=True)
class Variant:
    """An activation setting: a shipped config and the overrides that make it this variant."""

    name: str
    config: str
    overrides: tuple[str, ...] = ()


def default_variants(resolution: int = 256) -> list[Variant]:
    """cos(s·) for s ∈ {1, 5, 15} (He), sine ω0 ∈ {10, 30, 60} (SIREN init), ReLU (He), ReLU with Gaussian
    Fourier features and |x| at the Edge of Chaos.

    The Fourier features' σ scales with the image: σ = 2.5 · resolution/256, Tancik et al.'s σ = 10 for 512²
    images on [0, 1]² carried to our [−1, 1]² coordinates (halved) and to the resolution. On camera at 64²
    (fourier protocol, 300 steps) test PSNR was 25.8 / 24.1 / 19.3 / 11.4 / 9.9 dB for σ = 0.5 / 1 / 2 / 5 / 10:
    a σ too large for the pixel spacing memorises the training pixels and generalises to none.
    """
    sigma = 2.5 * resolution / 256
    variants = [Variant(f"cos s={s:g}", "camera_cos.yaml", ("--model.activation.init_args.s", str(s)))
                for s in (1.0, 5.0, 15.0)]
    variants += [Variant(f"sine ω0={w:g}", "camera_sine.yaml", ("--model.activation.init_args.omega0", str(w)))
                 for w in (10.0, 30.0, 60.0)]
    return variants + [Variant("relu", "camera_relu.yaml"), Variant(f"relu+FF σ={sigma:g}", "camera_relu_ff.yaml",
                                                                  ("--model.encoding.init_args.sigma", str(sigma))),
                       Variant("abs EOC", "camera_abs_eoc.yaml")]


# Everything a run's result depends on: a resumed sweep with other settings redoes its runs.
KEY = ("variant", "config", "overrides", "image", "protocol", "resolution", "hidden", "steps", "seed",
       "probe_points", "ntk_every", "eval_every")


def convergence_jobs(variants: list[Variant], images: tuple[str, ...], protocols: tuple[str, ...], resolution: int,
                     steps: int, seeds: int, save_dir: str | Path, hidden: int | None = None, probe_points: int = 256,
                     ntk_every: int = 50, eval_every: int = 25) -> list[dict]:
    """One job (a dict of settings) per (image, protocol, variant, seed); ``hidden`` None keeps the config's width."""
    return [{"variant": v.name, "config": v.config, "overrides": list(v.overrides), "image": image,
             "protocol": protocol, "resolution": resolution, "hidden": hidden, "steps": steps, "seed": seed,
             "probe_points": probe_points, "ntk_every": ntk_every, "eval_every": eval_every, "save_dir": str(save_dir)}
            for image in images for protocol in protocols for v in variants for seed in range(seeds)]


def run_name(job: dict) -> str:
    """The run's directory name under ``save_dir``: image-protocol-variant-seed, in file-name-safe characters."""
    text = f"{job['image']}-{job['protocol']}-{job['variant']}-seed{job['seed']}"
    return "".join(c if c.isalnum() or c in "-_.=+" else "_" for c in text)


def steps_to(values: list[float], target: float) -> int | None:
    """The first index at which ``values`` reaches ``target``, or None."""
    return next((i for i, v in enumerate(values) if v >= target), None)


def convergence_run(job: dict) -> dict:
    """Fit one job through ``fit_config`` and read its PSNR and NTK histories back; the job's record."""
    for name in ("pytorch_lightning", "lightning_fabric"):  # the per-run banners would bury the progress bar
        logging.getLogger(name).setLevel(logging.WARNING)
    callbacks = [{"class_path": "coordnet.training.PSNRHistory"},  # first: its step times exclude the NTK's
                 {"class_path": "coordnet.training.NTKSpectrumCallback",
                  "init_args": {"num_points": job["probe_points"], "every_n_steps": job["ntk_every"],
                                "log_figure": False}}]
    overrides = [*job["overrides"], "--data.init_args.image", job["image"],
                 "--data.init_args.resolution", str(job["resolution"]), "--data.init_args.protocol", job["protocol"],
                 "--seed_everything", str(job["seed"]), "--trainer.max_steps", str(job["steps"]),
                 "--trainer.val_check_interval", str(job["eval_every"]), "--trainer.callbacks", json.dumps(callbacks),
                 "--trainer.logger.init_args.save_dir", job["save_dir"],
                 "--trainer.logger.init_args.name", run_name(job), "--progress_bar.refresh_rate", "0",
                 "--summary.verbose", "false"]  # the sweep's own bar reports progress, not a line per run
    if job["hidden"] is not None:
        overrides += ["--model.hidden", str(job["hidden"])]
    trainer, wall = fit_config(CONFIG_DIR / job["config"], overrides)
    fit = read_csv_columns(Path(trainer.log_dir) / PSNRHistory.FILE)
    ntk = read_history(trainer.log_dir)
    train, seconds = fit["train_psnr"], fit["seconds"]
    tested = [(int(s), v) for s, v in zip(fit["step"], fit["test_psnr"]) if not math.isnan(v)]
    record = job | {"run_dir": trainer.log_dir, "device": str(trainer.strategy.root_device), "fit_seconds": wall,
                    "train_seconds": seconds[-1], "final_train_psnr": train[-1],
                    "final_test_psnr": tested[-1][1] if tested else None,
                    "best_test_psnr": max(v for _, v in tested) if tested else None}
    for target in PSNR_TARGETS:
        step = steps_to(train, target)
        record[f"steps_to_{target:g}dB"] = step
        record[f"seconds_to_{target:g}dB"] = seconds[step] if step is not None else None
    floor_limited = [lm <= fl for lm, fl in zip(ntk["lambda_min"], ntk["floor"])]
    record |= {"lambda_min_0": ntk["lambda_min"][0], "kappa_0": ntk["condition_number"][0],
               "kappa_0_floor_limited": floor_limited[0], "lambda_min_end": ntk["lambda_min"][-1],
               "kappa_end": ntk["condition_number"][-1], "kappa_end_floor_limited": floor_limited[-1]}
    return record | {"curve_train_psnr": train, "curve_seconds": seconds, "curve_test": tested,
                     "curve_ntk_step": ntk["step"], "curve_lambda_min": ntk["lambda_min"],
                     "curve_kappa": ntk["condition_number"]}


def run_table(records: list[dict]) -> list[dict]:
    """One row per run: its settings and scalar results (the curves are in ``curve_rows``)."""
    return [{k: v for k, v in r.items() if not k.startswith("curve_") and k not in ("overrides", "save_dir")}
            for r in records]


def curve_rows(records: list[dict]) -> list[dict]:
    """Long-format curves: (run, step, train PSNR, seconds, test PSNR, λ_min, κ) at every recorded step."""
    rows = []
    for r in records:
        test = dict(r["curve_test"])
        ntk = {int(s): (lm, k) for s, lm, k in zip(r["curve_ntk_step"], r["curve_lambda_min"], r["curve_kappa"])}
        for step, (value, sec) in enumerate(zip(r["curve_train_psnr"], r["curve_seconds"])):
            lm, kappa = ntk.get(step, (math.nan, math.nan))
            rows.append({"image": r["image"], "protocol": r["protocol"], "variant": r["variant"], "seed": r["seed"],
                         "step": step, "train_psnr": value, "seconds": sec, "test_psnr": test.get(step, math.nan),
                         "lambda_min": lm, "kappa": kappa})
    return rows


def _groups(records: list[dict]) -> dict[tuple[str, str, str], list[dict]]:
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for r in records:
        groups.setdefault((r["image"], r["protocol"], r["variant"]), []).append(r)
    return groups


def _median_reached(runs: list[dict], column: str) -> str:
    reached = [r[column] for r in runs if r[column] is not None]
    if not reached:
        return f"never (0/{len(runs)})"
    return f"{statistics.median(reached):.4g} ({len(reached)}/{len(runs)})"


def _kappa(runs: list[dict], column: str) -> str:
    geo = math.exp(statistics.fmean(math.log(r[column]) for r in runs))
    return ("≥ " if any(r[f"{column}_floor_limited"] for r in runs) else "") + f"{geo:.3g}"


def summary_rows(records: list[dict]) -> list[list]:
    """Per (image, protocol, variant), over seeds: final train/test PSNR mean ± sd, median steps and seconds to
    each target among the seeds that reached it (how many did), and the geometric-mean κ at init and at the end
    ("≥" when a run's λ_min sat at the float64 floor)."""
    rows = []
    for (image, protocol, variant), runs in _groups(records).items():
        train = [r["final_train_psnr"] for r in runs]
        test = [r["final_test_psnr"] for r in runs if r["final_test_psnr"] is not None]
        spread = lambda v: f"{statistics.fmean(v):.2f} ± {statistics.pstdev(v):.2f}" if v else "—"  # noqa: E731
        row = [image, protocol, variant, spread(train), spread(test)]
        row += [_median_reached(runs, f"steps_to_{t:g}dB") for t in PSNR_TARGETS]
        row += [_median_reached(runs, f"seconds_to_{t:g}dB") for t in PSNR_TARGETS[1:2]]
        rows.append(row + [_kappa(runs, "kappa_0"), _kappa(runs, "kappa_end")])
    return rows


SUMMARY_HEADER = ["image", "protocol", "activation", "final train PSNR", "final test PSNR",
                  *(f"steps to {t:g} dB" for t in PSNR_TARGETS), "seconds to 30 dB", "κ at init", "κ at end"]


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


def convergence_figure(records: list[dict]) -> Figure:
    """Top row: PSNR against step, mean over seeds, per (image, protocol) — train PSNR under ``memorize``,
    test PSNR (markers at the validations) under ``fourier``. Bottom row: κ of the probe NTK against step
    (geometric mean over seeds) and its float64 floor 1/(N·eps), N the probe size (every run has more training
    pixels than that). One legend below the panels, which all share its series."""
    panels = list(dict.fromkeys((r["image"], r["protocol"]) for r in records))
    variants = list(dict.fromkeys(r["variant"] for r in records))
    fig = Figure(figsize=(4.5 * len(panels), 8), layout="constrained")
    axes = fig.subplots(2, len(panels), squeeze=False)
    for col, (image, protocol) in enumerate(panels):
        for i, variant in enumerate(variants):
            runs = [r for r in records if (r["image"], r["protocol"], r["variant"]) == (image, protocol, variant)]
            if not runs:
                continue
            if protocol == "memorize":
                axes[0, col].plot(np.mean([r["curve_train_psnr"] for r in runs], axis=0), color=f"C{i}", lw=1,
                                  label=variant)
            else:
                steps = [s for s, _ in runs[0]["curve_test"]]
                axes[0, col].plot(steps, np.mean([[v for _, v in r["curve_test"]] for r in runs], axis=0),
                                  color=f"C{i}", lw=1, marker=".", ms=3, label=variant)
            kappa = np.exp(np.mean([np.log(r["curve_kappa"]) for r in runs], axis=0))
            axes[1, col].plot(runs[0]["curve_ntk_step"], kappa, color=f"C{i}", lw=1, marker=".", ms=3)
        first = next(r for r in records if (r["image"], r["protocol"]) == (image, protocol))
        size = f"{first['resolution']}², {len(first['curve_train_psnr']) - 1} steps"
        which = "train" if protocol == "memorize" else "test"
        axes[0, col].set(title=f"{image}, {protocol} ({size})", xlabel="step", ylabel=f"{which} PSNR (dB)")
        for target in PSNR_TARGETS:
            axes[0, col].axhline(target, color="0.8", lw=0.6, zorder=0)
        draw_kappa_floor(axes[1, col], 1 / numerical_floor(first["probe_points"], 1.0))
        axes[1, col].set(yscale="log", xlabel="step", ylabel=f"κ of the NTK on {first['probe_points']} pixels")
    entries = {label: handle for ax in axes.flat for handle, label in zip(*ax.get_legend_handles_labels())}
    fig.legend(entries.values(), entries.keys(), loc="outside lower center", ncol=len(entries), fontsize=9)
    return fig


def convergence_summary(records: list[dict]) -> str:
    """summary.md: the settings, the per-activation table and the κ–speed rank correlations."""
    first = records[0]
    devices = sorted({r["device"] for r in records})
    lines = [f"# Convergence speed across activations ({first['resolution']}², {first['steps']} full-batch Adam "
             f"steps, {len({r['seed'] for r in records})} seeds, device {', '.join(devices)})", "",
             "Each network, init and learning rate as in its shipped config (configs/camera_*.yaml). Steps/seconds "
             "to a PSNR: median over the seeds that reached it (how many did), from the train PSNR; seconds count "
             "training steps only. κ: raw J Jᵀ on "
             f"{first['probe_points']} training pixels, geometric mean over seeds.", "",
             markdown_table(SUMMARY_HEADER, summary_rows(records)), "",
             "Spearman rank correlation of κ at init with the steps to 30 dB (never = cap + 1):", "",
             markdown_table(["image", "protocol", "runs", "ρ", "p"], rank_correlations(records))]
    return "\n".join(lines)
