"""Paper 2 (with its companion): the empirical Edge-of-Chaos NTK converging to the closed form as the width grows.

The empirical NTK K_m = JJᵀ/n of finite EOC networks (``networks.eoc_network``: NTK parametrisation, no bias,
first layer without 1/√fan_in, a² + b² = 1) against paper 2's limit ``eoc_ntk`` (Prop. 6, matrix K∞/n), on POINTS
points uniform on S^(DIM−1). Two errors, which differ by 2–4× and must not be confused:

- **one network's error** ‖K_m − K∞‖_F / ‖K∞‖_F, per seed: right-skewed over seeds, so reported as the median
  over SEEDS networks with a seed-bootstrap 95% interval;
- **the seed-averaged error** ‖K̄_m − K∞‖_F / ‖K∞‖_F of K̄_m, the mean kernel of the SEEDS networks (a Monte-Carlo
  estimate of E[K_m], whose error falls with the seeds as well as with m; the research notes first quoted this),
  with what is left of it once the seeds' noise is taken out, an estimate of ‖E K_m − K∞‖ / ‖K∞‖, and the error of
  kernels averaged over 4 seeds (the notes' 4-seed number), over the disjoint groups of 4.

The rate: the log-log slope of the median one-network error against m (−1/2 expected), with its seed-bootstrap
interval. One job per (activation, depth, width, seed); its record keeps its kernel.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from coordnet.experiments.networks import eoc_network, sphere_points
from coordnet.experiments.reporting import interval, loglog_slope, markdown_table, seed_bootstrap, ticks_at
from coordnet.ntk import empirical_ntk
from coordnet.ntk.analytic import eoc_ntk

NAME = "p2_finite_width"
ACTIVATIONS = {"|x| (Δ = 1)": 1.0, "ReLU (Δ = 1/2)": 0.5}  # name → Δ
WIDTHS = (256, 1024, 4096)
DEPTHS = (3, 6, 12)
SEEDS = 16
POINTS = 16
DIM = 16


def jobs(quick: bool, out: Path) -> list[dict]:
    widths, depths, seeds = ((64, 256), (3,), 2) if quick else (WIDTHS, DEPTHS, SEEDS)
    return [{"activation": name, "delta": delta, "depth": depth, "width": width, "seed": seed, "points": POINTS,
             "dim": DIM} for name, delta in ACTIVATIONS.items() for depth in depths for width in widths
            for seed in range(seeds)]


@cache
def limit_kernel(delta: float, depth: int, points: int, dim: int) -> np.ndarray:
    """Paper 2's K∞/n on the study's points (seed 0 on S^(dim−1)), float64."""
    x = sphere_points(points, dim, torch.Generator().manual_seed(0))
    return eoc_ntk(x, delta=delta, depth=depth).numpy()


def run(job: dict) -> dict:
    x = sphere_points(job["points"], job["dim"], torch.Generator().manual_seed(0))
    torch.manual_seed(job["seed"])
    network = eoc_network(job["delta"], job["depth"], job["width"], job["dim"])
    empirical = empirical_ntk(network, x, mode="full", normalization="by_n").numpy()
    return {"relative_error": relative_error(empirical, limit_kernel(job["delta"], job["depth"], job["points"],
                                                                      job["dim"])),
            "kernel": empirical.tolist()}


def relative_error(kernel: np.ndarray, limit: np.ndarray) -> float:
    return float(np.linalg.norm(kernel - limit) / np.linalg.norm(limit))


def _groups(records: list[dict]) -> dict[tuple[str, int, int], list[dict]]:
    """(activation, depth, width) → its records, by seed."""
    groups: dict[tuple[str, int, int], list[dict]] = {}
    for r in sorted(records, key=lambda r: r["seed"]):
        groups.setdefault((r["activation"], r["depth"], r["width"]), []).append(r)
    return dict(sorted(groups.items()))


def table(records: list[dict]) -> list[dict]:
    """Per (activation, depth, width): the median one-network error over seeds with its seed-bootstrap 95% interval,
    the mean one-network error, the seed-averaged kernel's error, and ``bias``, an estimate of the error of E[K_m]
    itself, ‖E K_m − K∞‖/‖K∞‖: the averaged kernel's squared error less the seeds' variance over S (unbiased
    for the squared bias; 0 where the noise explains all of it). A bootstrap of the averaged kernel's error would
    be biased upwards (resampled seeds repeat), so it has no interval."""
    rows = []
    for (name, depth, width), group in _groups(records).items():
        r0 = group[0]
        limit = limit_kernel(r0["delta"], depth, r0["points"], r0["dim"])
        errors = [r["relative_error"] for r in group]
        kernels = np.array([r["kernel"] for r in group])
        median = seed_bootstrap([errors], np.median)
        # ‖K̄ − K∞‖² = ‖E K_m − K∞‖² + (the seeds' variance)/S on average: the part that is not seed noise
        mean_kernel = kernels.mean(axis=0)
        squared = np.linalg.norm(mean_kernel - limit) ** 2
        noise = kernels.var(axis=0, ddof=1).sum() / len(group) if len(group) > 1 else float("nan")
        # the notes' quantity: the error of kernels averaged over 4 seeds, for each disjoint group of 4
        fours = [relative_error(kernels[i:i + 4].mean(axis=0), limit) for i in range(0, len(group) - 3, 4)]
        rows.append({"activation": name, "depth": depth, "width": width, "seeds": len(group),
                     "error_median": median[0], "error_median_low": median[1], "error_median_high": median[2],
                     "error_mean": float(np.mean(errors)),
                     "averaged_error": relative_error(mean_kernel, limit),
                     "bias": float(np.sqrt(max(squared - noise, 0.0)) / np.linalg.norm(limit)),
                     "averaged4_median": float(np.median(fours)) if fours else float("nan"),
                     "averaged4_min": min(fours, default=float("nan")),
                     "averaged4_max": max(fours, default=float("nan"))})
    return rows


def rates(records: list[dict]) -> list[dict]:
    """Per (activation, depth): the slope of log(median one-network error) on log m over the widths, with its
    seed-bootstrap 95% interval (seed s resampled at every width at once)."""
    groups = _groups(records)
    out = []
    for name, depth in sorted({(a, d) for a, d, _ in groups}):
        widths = sorted(w for a, d, w in groups if (a, d) == (name, depth))
        samples = [[r["relative_error"] for r in groups[name, depth, w]] for w in widths]
        slope = lambda *errors: loglog_slope(widths, [np.median(e) for e in errors])  # noqa: E731
        value, low, high = seed_bootstrap(samples, slope)
        out.append({"activation": name, "depth": depth, "rate": value, "rate_low": low, "rate_high": high})
    return out


def figure(records: list[dict]) -> Figure:
    """One panel per activation: every seed's error as a dot, the median as a line with its 95% interval, the
    seed-averaged kernel's error dotted, one colour per depth; an m^(−1/2) guide; x ticks at the widths."""
    rows = table(records)
    names = sorted({r["activation"] for r in rows})
    fig = Figure(figsize=(9, 5), layout="constrained")
    axes = fig.subplots(1, len(names), sharey=True, squeeze=False)[0]
    for ax, name in zip(axes, names):
        for i, depth in enumerate(sorted({r["depth"] for r in rows})):
            mine = [r for r in rows if r["activation"] == name and r["depth"] == depth]
            widths = [r["width"] for r in mine]
            dots = [r for r in records if r["activation"] == name and r["depth"] == depth]
            ax.plot([r["width"] * 1.04 ** (i - 1) for r in dots], [r["relative_error"] for r in dots], ".",
                    ms=3, alpha=0.4, color=f"C{i}")
            medians = np.array([r["error_median"] for r in mine])
            spread = [medians - [r["error_median_low"] for r in mine], [r["error_median_high"] for r in mine] - medians]
            ax.errorbar(widths, medians, yerr=spread, marker="o", ms=4, capsize=3, color=f"C{i}",
                        label=f"l = {depth}: one network (median, 95%)")
            ax.plot(widths, [r["averaged_error"] for r in mine], "s:", ms=3, color=f"C{i}",
                    label=f"l = {depth}: kernel averaged over the seeds")
        widths = sorted({r["width"] for r in rows})
        first = min(r["error_median"] for r in rows if r["activation"] == name and r["width"] == widths[0])
        ax.plot(widths, [first * (widths[0] / w) ** 0.5 for w in widths], color="0.5", lw=0.8, ls="--",
                label="∝ m^(−1/2)")
        ax.set(xscale="log", yscale="log", xlabel="width m", title=name)
        ticks_at(ax.xaxis, widths)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("‖K_m − K∞‖_F / ‖K∞‖_F")
    seeds = len({r["seed"] for r in records})
    fig.suptitle(f"Empirical EOC NTK (JJᵀ/n) against paper 2's closed form, {seeds} seeds (dots)", fontsize=10)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=4, fontsize=7)
    return fig


def report(records: list[dict]) -> tuple[Figure, str]:
    rows, fitted = table(records), rates(records)
    widths = sorted({t["width"] for t in rows})
    by = {(t["activation"], t["depth"], t["width"]): t for t in rows}
    pairs = sorted({(t["activation"], t["depth"]) for t in rows})
    seeds = len({r["seed"] for r in records})
    one = [[a, d] + [interval(*(by[a, d, w][k] for k in ("error_median", "error_median_low", "error_median_high")))
                     for w in widths] for a, d in pairs]
    averaged = [[a, d] + [f"{by[a, d, w]['averaged_error']:.3g} ({by[a, d, w]['bias']:.2g})" for w in widths]
                for a, d in pairs]
    fours = [[a, d] + [interval(*(by[a, d, w][k] for k in ("averaged4_median", "averaged4_min", "averaged4_max")))
                       for w in widths] for a, d in pairs]
    ratio_lines = []
    abs_name, relu_name = ACTIVATIONS  # |x| first: its constant is the smaller
    if {abs_name, relu_name} <= {a for a, _ in pairs}:
        ratios = [by[relu_name, d, w]["error_median"] / by[abs_name, d, w]["error_median"]
                  for a, d in pairs if a == abs_name for w in widths]
        ratio_lines = ["", f"{relu_name}'s median error over {abs_name}'s: {min(ratios):.2f}–{max(ratios):.2f}× "
                           "across the depths and widths."]
    return figure(records), "\n".join([
        "# Paper 2 (with its companion): the finite-width EOC NTK converges to the closed form",
        "",
        f"n = {records[0]['points']} points on S^{records[0]['dim'] - 1}; NTK parametrisation, EOC weights, no bias, "
        f"first layer without 1/√fan_in, a² + b² = 1; relative Frobenius error against K∞/n, {seeds} seeds; "
        "[a, b] is a percentile seed-bootstrap 95% interval.",
        "",
        f"**One network's error** (median over {seeds} networks):",
        "",
        markdown_table(["activation", "depth l"] + [f"m = {w}" for w in widths], one),
        "",
        f"**The seed-averaged kernel's error** (the mean of the {seeds} kernels against K∞; a different quantity, "
        "which also falls with the number of seeds), and in brackets the estimated error of E[K_m] itself, what "
        "is left of it once the seeds' noise is taken out (0: the noise explains it all):",
        "",
        markdown_table(["activation", "depth l"] + [f"m = {w}" for w in widths], averaged),
        "",
        *([f"**Averaged over 4 seeds** (the research notes' first quantity): the median, [smallest, largest] over "
           f"the {seeds // 4} disjoint groups of 4 seeds:", "",
           markdown_table(["activation", "depth l"] + [f"m = {w}" for w in widths], fours), ""] if seeds >= 4 else []),
        "**The rate**: slope of log(median one-network error) on log m (−0.5 expected), with its seed-bootstrap "
        "95% interval:",
        "",
        markdown_table(["activation", "depth l", "slope"],
                       [[f["activation"], f["depth"], interval(f["rate"], f["rate_low"], f["rate_high"])]
                        for f in fitted]),
        *ratio_lines,
    ])


def tables(records: list[dict]) -> dict[str, list[dict]]:
    return {"finite_width": [{k: r[k] for k in ("activation", "delta", "depth", "width", "seed", "relative_error")}
                             for r in records],
            "finite_width_summary": table(records), "finite_width_rates": rates(records)}
