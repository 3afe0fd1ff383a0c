"""Paper 1's width exponent tested directly (Saratchandran, Chng & Lucey, arXiv 2402.04783): λ_min against n1.

Paper 1 claims λ_min(J Jᵀ) = Θ(n1^{3/2}) for cos networks and Θ(n1) for ReLU. Here N = POINTS points
x ~ N(0, I_400) stay fixed while n1, the width of the wide layer of paper 1's network 400 → n1 → 400 → 1
(``networks.p1_network``: He init, no bias), grows; λ_min of the raw empirical NTK J Jᵀ in float64. The exponent
is the least-squares slope of log λ_min on log n1 over every (n1, seed), with a 95% Student-t interval, and the
slope between the mean λ_min of the two widest n1. One job per kernel (activation, n1, seed), the widest first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from coordnet.experiments.networks import p1_kernel_spectrum
from coordnet.experiments.reporting import group_means, loglog_slope, markdown_table, ticks_at
from coordnet.models import Cos, ReLU

NAME = "p1_width_scaling"
ACTIVATIONS = {"cos(1·)": Cos(1.0), "cos(5·)": Cos(5.0), "cos(30·)": Cos(30.0), "relu": ReLU()}
POINTS = 500
WIDTHS = (500, 1000, 2000, 4000, 8000, 16000)
SEEDS = 5
INPUT_DIM = 400


def fit_exponent(xs: list[float], ys: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """Least-squares slope of log y on log x with its ``level`` confidence interval (Student t): (slope, lo, hi)."""
    from scipy import stats

    fit = stats.linregress(np.log(xs), np.log(ys))
    half = stats.t.ppf(0.5 + level / 2, len(xs) - 2) * fit.stderr
    return float(fit.slope), float(fit.slope - half), float(fit.slope + half)


def jobs(quick: bool, out: Path) -> list[dict]:
    points, widths, seeds = (100, (100, 200, 400, 800), 2) if quick else (POINTS, WIDTHS, SEEDS)
    configs = [{"activation": name, "n1": width, "seed": seed, "points": points, "input_dim": INPUT_DIM}
               for name in ACTIVATIONS for width in widths for seed in range(seeds)]
    return sorted(configs, key=lambda job: -job["n1"])  # widest first: a pessimistic time estimate


def run(job: dict) -> dict:
    """λ_min, λ_max of J Jᵀ and whether λ_min lies above the float64 floor n·eps·λ_max."""
    spec = p1_kernel_spectrum(job["n1"], ACTIVATIONS[job["activation"]], job["points"], job["seed"],
                              job["input_dim"])
    return {"lambda_min": spec.lambda_min, "lambda_max": spec.lambda_max,
            "lambda_min_reliable": int(spec.lambda_min_reliable)}


def kernels(records: list[dict]) -> list[dict]:
    """One row per kernel, ordered by (activation as in ACTIVATIONS, n1, seed)."""
    rows = sorted(records, key=lambda r: (list(ACTIVATIONS).index(r["activation"]), r["n1"], r["seed"]))
    columns = ("activation", "n1", "seed", "lambda_min", "lambda_max", "lambda_min_reliable")
    return [{k: r[k] for k in columns} for r in rows]


def tables(records: list[dict]) -> dict[str, list[dict]]:
    return {"width_scaling": kernels(records)}


def mean_lambda_min(rows: list[dict]) -> dict[tuple[str, int], float]:
    """(activation, n1) → the mean λ_min over seeds."""
    means = group_means(rows, ("activation", "n1"), ("lambda_min",))
    return {(m["activation"], m["n1"]): m["lambda_min"] for m in means}


def exponents(rows: list[dict]) -> list[dict]:
    """Per activation: the fitted exponent of λ_min in n1 over every (n1, seed) point, with its 95% interval, and
    the slope over the widest doubling (``rows`` as ``kernels`` orders them)."""
    means = mean_lambda_min(rows)
    out = []
    for name in ACTIVATIONS:
        mine = [r for r in rows if r["activation"] == name]
        slope, lo, hi = fit_exponent([r["n1"] for r in mine], [r["lambda_min"] for r in mine])
        w1, w2 = sorted({r["n1"] for r in mine})[-2:]
        out.append({"activation": name, "exponent": slope, "ci_low": lo, "ci_high": hi,
                    "last_doubling": loglog_slope([w1, w2], [means[name, w1], means[name, w2]]),
                    "claimed": 1.5 if name.startswith("cos") else 1.0})
    return out


def figure(rows: list[dict], fits: list[dict], num_points: int) -> Figure:
    """λ_min against n1 (every seed as a dot, the fit as a line), one colour per activation; the legend below the
    axes, where it hides no points."""
    fig = Figure(figsize=(6.5, 5), layout="constrained")
    ax = fig.subplots()
    for i, e in enumerate(fits):
        mine = [r for r in rows if r["activation"] == e["activation"]]
        xs, ys = [r["n1"] for r in mine], [r["lambda_min"] for r in mine]
        ax.plot(xs, ys, "o", ms=3, alpha=0.6, color=f"C{i}")
        grid = np.array(sorted(set(xs)), dtype=float)
        intercept = np.mean(np.log(ys) - e["exponent"] * np.log(xs))
        ax.plot(grid, np.exp(intercept) * grid ** e["exponent"], color=f"C{i}",
                label=f"{e['activation']}: n1^{e['exponent']:.2f} [{e['ci_low']:.2f}, {e['ci_high']:.2f}]")
    ax.set(xscale="log", yscale="log", xlabel="n1 (width of the wide layer)", ylabel="λ_min(J Jᵀ)",
           title=f"N = {num_points}: paper 1 claims n1^1.5 (cos) and n1^1 (ReLU)")
    ticks_at(ax.xaxis, sorted({r["n1"] for r in rows}))
    ax.grid(alpha=0.3, which="both")
    fig.legend(loc="outside lower center", ncol=2, fontsize=8)
    return fig


def report(records: list[dict]) -> tuple[Figure, str]:
    """The figure; summary.md: the fitted exponents next to paper 1's claims, and the mean λ_min per width."""
    rows, num_points = kernels(records), records[0]["points"]
    fits, means = exponents(rows), mean_lambda_min(rows)
    widths = sorted({r["n1"] for r in rows})
    seeds = len({r["seed"] for r in rows})
    return figure(rows, fits, num_points), "\n".join([
        "# Paper 1's width exponent: λ_min(J Jᵀ) against n1 at fixed N",
        "",
        f"400 → n1 → 400 → 1, no bias, He init, N = {num_points} points x ~ N(0, I_400), raw J Jᵀ in float64, "
        f"{seeds} seeds per width; the exponent is the least-squares slope of log λ_min on log n1 over every "
        f"(n1, seed), with a 95% t-interval.",
        "",
        markdown_table(["activation", "exponent (ours)", "95% interval", "slope over the widest doubling",
                        "paper 1's claim"],
                       [[e["activation"], e["exponent"], f"[{e['ci_low']:.3f}, {e['ci_high']:.3f}]",
                         e["last_doubling"], e["claimed"]] for e in fits]),
        "",
        "Mean λ_min over seeds:",
        "",
        markdown_table(["activation"] + [f"n1 = {w}" for w in widths],
                       [[name] + [means[name, w] for w in widths] for name in ACTIVATIONS]),
    ])
