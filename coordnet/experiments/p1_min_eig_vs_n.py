"""Paper 1, Figs. 1–2 (Saratchandran, Chng & Lucey, arXiv 2402.04783): λ_min of cos vs ReLU NTKs against N.

The bias-free network 400 → n1 → 400 → 1 with He init (N(0, 2/fan_in) on all three weight matrices,
``networks.p1_network``), cos(5·) or ReLU, on N points x ~ N(0, I_400), with n1 = 8N (Fig. 1) or 15N (Fig. 2);
λ_min of the raw empirical NTK J Jᵀ (N × N, float64, layer-wise engine). The paper does not state its data, seeds
or precision; this protocol reproduces its ReLU curve (docs/science.md §1.7). Slopes are least-squares fits of
log λ_min against log N. One job per kernel (activation, n1/N, N, seed), the biggest first.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from matplotlib.figure import Figure

from coordnet.experiments.networks import p1_kernel_spectrum
from coordnet.experiments.paper_data import P1_MIN_EIG, P1_NS
from coordnet.experiments.reporting import (group_means, interval, loglog_slope, markdown_table, seed_bootstrap,
                                           slopes_ours_and_paper)
from coordnet.models import Cos, ReLU

NAME = "p1_min_eig_vs_n"
ACTIVATIONS = {"cos": Cos(5.0), "relu": ReLU()}  # the tables' name → activation (He init for both)
NS = P1_NS
MULTIPLIERS = (8, 15)  # n1 / N
SEEDS = 5
INPUT_DIM = 400




def jobs(quick: bool, out: Path) -> list[dict]:
    ns, seeds = ((100, 150, 200), 2) if quick else (NS, SEEDS)
    configs = [{"activation": act, "multiplier": mult, "N": n, "n1": mult * n, "seed": seed, "input_dim": INPUT_DIM}
               for act in ACTIVATIONS for mult in MULTIPLIERS for n in ns for seed in range(seeds)]
    return sorted(configs, key=lambda job: -job["n1"] * job["N"])  # biggest first: a pessimistic time estimate


def run(job: dict) -> dict:
    """λ_min, λ_max of J Jᵀ and whether λ_min lies above the float64 floor n·eps·λ_max."""
    spec = p1_kernel_spectrum(job["n1"], ACTIVATIONS[job["activation"]], job["N"], job["seed"], job["input_dim"])
    return {"lambda_min": spec.lambda_min, "lambda_max": spec.lambda_max,
            "lambda_min_reliable": int(spec.lambda_min_reliable)}


def kernels(records: list[dict]) -> list[dict]:
    """One row per kernel, ordered by (activation, n1/N, N, seed)."""
    rows = sorted(records, key=lambda r: (r["activation"], r["multiplier"], r["N"], r["seed"]))
    columns = ("activation", "multiplier", "N", "n1", "seed", "lambda_min", "lambda_max", "lambda_min_reliable")
    return [{k: r[k] for k in columns} for r in rows]


def tables(records: list[dict]) -> dict[str, list[dict]]:
    return {"min_eig_vs_n": kernels(records)}


def summarise(records: list[dict]) -> list[dict]:
    """Per (activation, n1/N, N): mean and std of λ_min over seeds, paper 1's value and ours/paper."""
    out = []
    for m in group_means(records, ("activation", "multiplier", "N"), ("lambda_min",)):
        act, mult, n, mean = m["activation"], m["multiplier"], m["N"], m["lambda_min"]
        values = [r["lambda_min"] for r in records if (r["activation"], r["multiplier"], r["N"]) == (act, mult, n)]
        paper = dict(zip(P1_NS, P1_MIN_EIG.get((act, mult), ()))).get(n)
        out.append({"activation": act, "multiplier": mult, "N": n, "lambda_min_mean": mean,
                    "lambda_min_std": statistics.stdev(values) if len(values) > 1 else 0.0,
                    "seeds": m["count"], "paper": paper, "ratio_to_paper": mean / paper if paper else None})
    return out


def figure(summary: list[dict]) -> Figure:
    """λ_min against N, one panel per n1/N: ours (mean ± std over seeds) and paper 1's digitised values."""
    multipliers = sorted({s["multiplier"] for s in summary})
    fig = Figure(figsize=(5.5 * len(multipliers), 4))
    axes = fig.subplots(1, len(multipliers), squeeze=False)[0]
    for ax, mult in zip(axes, multipliers):
        for i, act in enumerate(ACTIVATIONS):
            mine = [s for s in summary if s["activation"] == act and s["multiplier"] == mult]
            ax.errorbar([s["N"] for s in mine], [s["lambda_min_mean"] for s in mine],
                        yerr=[s["lambda_min_std"] for s in mine], marker="o", ms=4, color=f"C{i}", capsize=3,
                        label=f"{act}: ours")
            paper = [s for s in mine if s["paper"]]
            ax.plot([s["N"] for s in paper], [s["paper"] for s in paper], "x--", color=f"C{i}", lw=0.8,
                    label=f"{act}: paper 1 (digitised)")
        ax.set(xscale="log", yscale="log", xlabel="N (points)", ylabel="λ_min(J Jᵀ)",
               title=f"n1 = {mult}N, 400 → n1 → 400 → 1, He, no bias")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def slopes(summary: list[dict], records: list[dict]) -> list[list]:
    """Per (activation, n1/N): the log-log slope of mean λ_min in N, ours with its seed-bootstrap 95% interval and
    paper 1's data's, and paper 1's width claim (which this slope does not test: n1 grows with N)."""
    rows, by_seed_order = [], sorted(records, key=lambda r: r["seed"])
    for act in ACTIVATIONS:
        for mult in sorted({s["multiplier"] for s in summary}):
            mine = [s for s in summary if s["activation"] == act and s["multiplier"] == mult]
            ns = [s["N"] for s in mine]
            by_seed = [[r["lambda_min"] for r in by_seed_order
                        if (r["activation"], r["multiplier"], r["N"]) == (act, mult, n)] for n in ns]
            ours, paper = slopes_ours_and_paper(mine, "N", "lambda_min_mean")
            _, low, high = seed_bootstrap(by_seed, lambda *v: loglog_slope(ns, [x.mean() for x in v]))
            rows.append([act, f"{mult}N", interval(ours, low, high), paper, "1.5" if act == "cos" else "1"])
    return rows


def ratios(summary: list[dict]) -> list[list]:
    """Per (n1/N, N): mean λ_min of cos over that of ReLU, ours and paper 1's."""
    by_key = {(s["activation"], s["multiplier"], s["N"]): s for s in summary}
    rows = []
    for mult in sorted({s["multiplier"] for s in summary}):
        for n in sorted({s["N"] for s in summary}):
            cos, relu = by_key.get(("cos", mult, n)), by_key.get(("relu", mult, n))
            if cos and relu:
                paper = cos["paper"] / relu["paper"] if cos["paper"] and relu["paper"] else None
                rows.append([f"{mult}N", n, cos["lambda_min_mean"] / relu["lambda_min_mean"],
                             f"{paper:.3g}" if paper else "—"])
    return rows


def report(records: list[dict]) -> tuple[Figure, str]:
    """The figure; summary.md: the table, the fitted slopes (ours and the paper's), the cos/ReLU ratios and, where
    paper 1 plotted ReLU points, the largest |ours/paper − 1| over them (the curve this protocol pins down)."""
    summary = summarise(records)
    table = markdown_table(
        ["activation", "n1", "N", "λ_min ours (mean ± std)", "λ_min paper 1", "ours / paper"],
        [[s["activation"], f"{s['multiplier']}N", s["N"], f"{s['lambda_min_mean']:.4g} ± {s['lambda_min_std']:.2g}",
          f"{s['paper']:.4g}" if s["paper"] else "—", f"{s['ratio_to_paper']:.3f}" if s["paper"] else "—"]
         for s in summary])
    reliable = sum(r["lambda_min_reliable"] for r in records)
    lines = [
        "# Paper 1, Figs. 1–2: λ_min of the empirical NTK against N, cos(5·) vs ReLU", "",
        f"400 → n1 → 400 → 1, no bias, He init, x ~ N(0, I_400), raw J Jᵀ in float64, "
        f"{max(s['seeds'] for s in summary)} seeds (λ_min above the float64 floor in {reliable} of {len(records)} "
        "kernels).", "", table, "",
        "Log-log slope of mean λ_min against N, with n1 = kN: N and n1 grow together, so this is not the width "
        "exponent paper 1 claims (p1_width_scaling holds N fixed and varies n1); [a, b] is a seed-bootstrap 95% "
        "interval:", "",
        markdown_table(["activation", "n1", "slope ours", "slope paper 1's data", "paper 1's width claim"],
                       slopes(summary, records)),
        "", "cos / ReLU ratio of λ_min:", "",
        markdown_table(["n1", "N", "ours", "paper 1"], ratios(summary)),
    ]
    relu_plotted = [abs(s["ratio_to_paper"] - 1) for s in summary if s["activation"] == "relu" and s["paper"]]
    if relu_plotted:
        lines += ["", f"ReLU against paper 1's plotted points: largest |ours/paper − 1| = "
                      f"{100 * max(relu_plotted):.1f}% (target ≤ 15%)."]
    return figure(summary), "\n".join(lines)
