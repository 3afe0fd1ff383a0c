"""Paper 2, Fig. 1 (Terjék & González-Sánchez, arXiv 2501.13225): condition number of the EOC NTK against depth.

κ = λ_max/λ_min of the limiting NTK matrix [K∞(x_i, x_j)/n] (``coordnet.ntk.eoc_ntk``, float64 ``eigvalsh``) for
the eight (a, b)-ReLUs of ``paper_data.P2_PAIRS``, depth l = 2 … MAX_DEPTH weight matrices, averaged over
DATASETS datasets of POINTS points uniform on the sphere S^(DIM−1). As l → ∞ Theorem 13 gives κ → 1 + n/3 for
equal-norm data. One job per dataset (the same datasets serve every Δ and depth).
"""

from __future__ import annotations

import statistics
from pathlib import Path

import torch
from matplotlib.figure import Figure

from coordnet.experiments.networks import sphere_points
from coordnet.experiments.paper_data import P2_DEPTHS, P2_KAPPA, P2_PAIRS
from coordnet.experiments.reporting import markdown_table, ticks_at
from coordnet.ntk.analytic import eoc_ntk_by_depth

NAME = "p2_condition_vs_depth"
DATASETS = 100
POINTS = 32
DIM = 16
MAX_DEPTH = 64


def jobs(quick: bool, out: Path) -> list[dict]:
    datasets, max_depth = (8, 16) if quick else (DATASETS, MAX_DEPTH)
    return [{"dataset": i, "points": POINTS, "dim": DIM, "max_depth": max_depth} for i in range(datasets)]


def run(job: dict) -> dict:
    """κ at depths 2 … max_depth for every Δ, on dataset ``job["dataset"]`` (the i-th drawn from seed 0)."""
    generator = torch.Generator().manual_seed(0)
    for _ in range(job["dataset"] + 1):
        x = sphere_points(job["points"], job["dim"], generator)
    kappas = {}
    for delta in P2_PAIRS:
        eigs = [torch.linalg.eigvalsh(kernel) for depth, kernel in eoc_ntk_by_depth(x, delta=delta,
                                                                                     max_depth=job["max_depth"])]
        kappas[str(delta)] = [(e[-1] / e[0]).item() for e in eigs[1:]]  # depths 2 … max_depth
    return {"kappa_by_depth": kappas}


def table(records: list[dict]) -> list[dict]:
    """One row per (Δ, depth): mean and std of κ over the datasets, and paper 2's value where it tabulates one."""
    rows = []
    for delta, (a, b) in P2_PAIRS.items():
        per_depth = zip(*(r["kappa_by_depth"][str(delta)] for r in records))
        for depth, values in enumerate(per_depth, start=2):
            paper = P2_KAPPA[delta][P2_DEPTHS.index(depth)] if depth in P2_DEPTHS else None
            mean = statistics.fmean(values)
            rows.append({"delta": delta, "a": a, "b": b, "depth": depth, "kappa_mean": mean,
                         "kappa_std": statistics.stdev(values) if len(values) > 1 else 0.0,
                         "paper_kappa": paper if paper is not None else "",
                         "relative_difference": (mean - paper) / paper if paper is not None else ""})
    return rows


def tables(records: list[dict]) -> dict[str, list[dict]]:
    return {"condition_vs_depth": table(records)}


def figure(rows: list[dict], num_points: int) -> Figure:
    """κ against depth, one line per Δ (ours), paper 2's tabulated values as crosses, the limit 1 + n/3 dashed."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for i, delta in enumerate(P2_PAIRS):
        mine = [r for r in rows if r["delta"] == delta]
        ax.plot([r["depth"] for r in mine], [r["kappa_mean"] for r in mine], color=f"C{i}", lw=1.3,
                label=f"Δ = {delta:.3g}")
        tabulated = [r for r in mine if r["paper_kappa"] != ""]
        ax.plot([r["depth"] for r in tabulated], [r["paper_kappa"] for r in tabulated], "x", color=f"C{i}", ms=6)
    ax.axhline(1 + num_points / 3, color="k", ls="--", lw=1, label=f"1 + n/3 = {1 + num_points / 3:.2f}")
    ax.plot([], [], "x", color="0.3", label="paper 2 (its CSVs)")
    ax.set(xscale="log", yscale="log", xlabel="depth l (weight matrices)", ylabel="mean κ(K∞)",
           title=f"EOC NTK condition number, n = {num_points} points on the sphere")
    depths = sorted({r["depth"] for r in rows})
    ticks_at(ax.xaxis, [d for d in P2_DEPTHS if d <= depths[-1]])
    ticks_at(ax.yaxis, [10, 15, 20, 30, 50, 100])
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def report(records: list[dict]) -> tuple[Figure, str]:
    """The figure, and ours next to paper 2's at every tabulated depth and Δ with the largest difference."""
    rows, n, dim = table(records), records[0]["points"], records[0]["dim"]
    tabulated = [r for r in rows if r["paper_kappa"] != ""]
    body = markdown_table(["Δ", "(a, b)", "depth", "κ ours (mean ± std)", "κ paper 2", "difference"],
                          [[f"{r['delta']:.3g}", f"({r['a']:.3g}, {r['b']:.3g})", r["depth"],
                            f"{r['kappa_mean']:.2f} ± {r['kappa_std']:.2f}", f"{r['paper_kappa']:.2f}",
                            f"{100 * r['relative_difference']:+.1f}%"] for r in tabulated])
    lines = ["# Paper 2, Fig. 1: condition number of the EOC NTK against depth", "",
             f"Closed-form K∞ (Prop. 6, matrix K∞/n), float64 eigvalsh; mean over {len(records)} datasets of "
             f"{n} points uniform on S^{dim - 1}. Limit 1 + n/3 = {1 + n / 3:.2f}.", ""]
    if tabulated:
        worst = max(tabulated, key=lambda r: abs(r["relative_difference"]))
        lines += [f"Largest difference from paper 2's table: {100 * worst['relative_difference']:+.2f}% "
                  f"(Δ = {worst['delta']:.3g}, depth {worst['depth']}).", ""]
    return figure(rows, n), "\n".join(lines + [body])
