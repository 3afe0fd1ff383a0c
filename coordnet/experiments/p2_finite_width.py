"""Paper 2 (with its companion): the empirical Edge-of-Chaos NTK converging to the closed form as the width grows.

The empirical NTK JJᵀ/n of finite EOC networks (``networks.eoc_network``: NTK parametrisation, no bias, first
layer without 1/√fan_in, a² + b² = 1) against paper 2's limit ``eoc_ntk`` (Prop. 6, matrix K∞/n), on POINTS
points uniform on S^(DIM−1); the relative Frobenius error ‖K_m − K∞‖_F / ‖K∞‖_F of one network per seed.
One job per (activation, depth, width, seed).
"""

from __future__ import annotations

from pathlib import Path

import torch
from matplotlib.figure import Figure

from coordnet.experiments.networks import eoc_network, sphere_points
from coordnet.experiments.reporting import group_means, markdown_table, ticks_at
from coordnet.ntk import empirical_ntk
from coordnet.ntk.analytic import eoc_ntk

NAME = "p2_finite_width"
ACTIVATIONS = {"|x| (Δ = 1)": 1.0, "ReLU (Δ = 1/2)": 0.5}  # name → Δ
WIDTHS = (256, 1024, 4096)
DEPTHS = (3, 6, 12)
SEEDS = 4
POINTS = 16
DIM = 16


def jobs(quick: bool, out: Path) -> list[dict]:
    widths, depths, seeds = ((64, 256), (3,), 2) if quick else (WIDTHS, DEPTHS, SEEDS)
    return [{"activation": name, "delta": delta, "depth": depth, "width": width, "seed": seed, "points": POINTS,
             "dim": DIM} for name, delta in ACTIVATIONS.items() for depth in depths for width in widths
            for seed in range(seeds)]


def run(job: dict) -> dict:
    x = sphere_points(job["points"], job["dim"], torch.Generator().manual_seed(0))
    torch.manual_seed(job["seed"])
    network = eoc_network(job["delta"], job["depth"], job["width"], job["dim"])
    empirical = empirical_ntk(network, x, mode="full", normalization="by_n")
    limit = eoc_ntk(x, delta=job["delta"], depth=job["depth"])
    return {"relative_error": ((empirical - limit).norm() / limit.norm()).item()}


def table(records: list[dict]) -> list[dict]:
    """The mean error over seeds per (activation, depth, width)."""
    means = group_means(records, ("activation", "depth", "width"), ("relative_error",))
    return [{"activation": m["activation"], "depth": m["depth"], "width": m["width"], "error_mean": m["relative_error"]}
            for m in means]


def figure(table: list[dict]) -> Figure:
    """Mean relative error of the empirical NTK against the width, one colour per depth, |x| solid and ReLU dashed,
    with an m^(−1/2) guide through the first point; x ticks at the measured widths."""
    fig = Figure(figsize=(6.5, 4.3))
    ax = fig.subplots()
    names = sorted({t["activation"] for t in table})
    styles = {name: ls for name, ls in zip(names, ("-", "--"))}
    for i, depth in enumerate(sorted({t["depth"] for t in table})):
        for name in names:
            mine = [t for t in table if t["depth"] == depth and t["activation"] == name]
            ax.plot([t["width"] for t in mine], [t["error_mean"] for t in mine], "o", ls=styles[name],
                    color=f"C{i}", label=f"{name}, l = {depth}")
    widths = sorted({t["width"] for t in table})
    ax.plot(widths, [table[0]["error_mean"] * (widths[0] / w) ** 0.5 for w in widths], color="0.5", lw=0.8,
            ls=":", label="∝ m^(−1/2)")
    ax.set(xscale="log", yscale="log", xlabel="width m", ylabel="‖K_m − K∞‖_F / ‖K∞‖_F",
           title="Empirical EOC NTK (JJᵀ/n) against paper 2's closed form")
    ticks_at(ax.xaxis, widths)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def report(records: list[dict]) -> tuple[Figure, str]:
    means = table(records)
    widths = sorted({t["width"] for t in means})
    error = {(t["activation"], t["depth"], t["width"]): t["error_mean"] for t in means}
    body = [[a, d] + [error[a, d, w] for w in widths] for a, d in sorted({(t["activation"], t["depth"]) for t in means})]
    seeds = len({r["seed"] for r in records})
    return figure(means), "\n".join([
        "# Paper 2 (with its companion): the finite-width EOC NTK converges to the closed form",
        "",
        f"n = {records[0]['points']} points on S^{records[0]['dim'] - 1}; NTK parametrisation, EOC weights, no bias, "
        f"first layer without 1/√fan_in, a² + b² = 1; relative Frobenius error of JJᵀ/n against K∞/n, mean over "
        f"{seeds} seeds of one network's error (docs/science.md §2.6 compares it with the error of the kernel "
        "averaged over seeds, a different quantity).",
        "",
        markdown_table(["activation", "depth l"] + [f"m = {w}" for w in widths], body),
    ])


def tables(records: list[dict]) -> dict[str, list[dict]]:
    return {"finite_width": [{k: r[k] for k in ("activation", "delta", "depth", "width", "seed", "relative_error")}
                             for r in records]}
