"""Paper 2, Theorem 13: the EOC NTK is a spike plus a flat bulk; λ_max and the bulk against their predicted values.

λ_max and the bulk λ_2 … λ_n of K∞/n (closed form, unit-norm data, τ = 1) for n points uniform on S^(DIM−1).
Predicted: λ_max ≈ (1 + 3/n)·l/4 + (1 − 1/n)·ξ and bulk ≈ (3l/4 − ξ)/n, with ξ from ``theorem13_xi`` and W the
data's mean inverse cosine distance (the theorem only says W = Θ(1)). Also the ξ the measured λ_max implies,
ξ_measured = (λ_max − (1 + 3/n)l/4)/(1 − 1/n); as tr(K∞/n) = l exactly, the bulk mean implies the same ξ, so
flatness is measured by the bulk's spread (λ_2 − λ_n)/mean instead. One job per (n, dataset).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from coordnet.experiments.networks import sphere_points
from coordnet.experiments.reporting import group_means, markdown_table, ticks_at
from coordnet.ntk.analytic import eoc_ntk_by_depth

NAME = "p2_spectrum_bounds"
SIZES = (16, 32, 64)
DEPTHS = (8, 16, 32, 64)
DELTAS = (0.5, 1.0)  # ReLU and |x|
DATASETS = 20
DIM = 16
_FIELDS = ("lambda_max", "lambda_max_predicted", "bulk_mean", "bulk_min", "bulk_max", "bulk_predicted",
          "bulk_spread", "xi_formula", "xi_measured")


def jobs(quick: bool, out: Path) -> list[dict]:
    sizes, depths, datasets = ((16,), (8, 16), 3) if quick else (SIZES, DEPTHS, DATASETS)
    draws = [(n, d) for n in sizes for d in range(datasets)]  # drawn in this order from one generator
    return [{"n": n, "dataset": d, "draw": i, "sizes": list(sizes), "datasets": datasets, "depths": list(depths),
             "deltas": list(DELTAS), "dim": DIM} for i, (n, d) in enumerate(draws)]


def inverse_cosine_distance(x: torch.Tensor) -> float:
    """Mean over pairs i ≠ j of w_ij = ((1 − ρ_ij)/2)^(−1/2), ρ_ij = cos∠(x_i, x_j): our stand-in for Theorem 13's W."""
    unit = x / x.norm(dim=1, keepdim=True)
    rho = unit @ unit.T
    off = ~torch.eye(len(x), dtype=torch.bool)
    return ((1 - rho[off]) / 2).rsqrt().mean().item()


def theorem13_xi(delta: float, depth: int, w: float) -> float:
    """ξ = (3/8)(Δ⁻¹(π/2)W + log(Δ⁻¹(3π/4)W + l − 1) − 1) (paper 2, Theorem 13)."""
    return 0.375 * (math.pi / 2 * w / delta + math.log(3 * math.pi / 4 * w / delta + depth - 1) - 1)


def run(job: dict) -> dict:
    """Every (Δ, depth) row of the job's dataset: the ``draw``-th of the sequence drawn from seed 0."""
    generator = torch.Generator().manual_seed(0)
    sizes = [n for n in job["sizes"] for _ in range(job["datasets"])]
    for n in sizes[:job["draw"] + 1]:
        x = sphere_points(n, job["dim"], generator)
    n, w, rows = job["n"], inverse_cosine_distance(x), []
    for delta in job["deltas"]:
        for depth, kernel in eoc_ntk_by_depth(x, delta=delta, max_depth=max(job["depths"])):
            if depth not in job["depths"]:
                continue
            eig = torch.linalg.eigvalsh(kernel)
            xi, bulk = theorem13_xi(delta, depth, w), eig[:-1]
            rows.append({"delta": delta, "depth": depth, "W": w, "xi_formula": xi, "lambda_max": eig[-1].item(),
                         "lambda_max_predicted": (1 + 3 / n) * depth / 4 + (1 - 1 / n) * xi,
                         "bulk_mean": bulk.mean().item(), "bulk_min": bulk[0].item(), "bulk_max": bulk[-1].item(),
                         "bulk_predicted": (3 * depth / 4 - xi) / n,
                         "bulk_spread": ((bulk[-1] - bulk[0]) / bulk.mean()).item(),
                         "xi_measured": (eig[-1].item() - (1 + 3 / n) * depth / 4) / (1 - 1 / n)})
    return {"rows": rows}


def spectra(records: list[dict]) -> list[dict]:
    """One row per (n, dataset, Δ, depth), in the order of the records."""
    return [{"n": r["n"], "dataset": r["dataset"]} | row for r in records for row in r["rows"]]


def tables(records: list[dict]) -> dict[str, list[dict]]:
    return {"spectrum_bounds": spectra(records)}


def figure(table: list[dict]) -> Figure:
    """λ_max (left) and the bulk mean (right) of K∞/n against depth, measured (solid) and Theorem 13's leading term
    (dashed), one colour per (Δ, n); one legend beside the panels, which share their series."""
    deltas = sorted({t["delta"] for t in table})
    fig = Figure(figsize=(11, 4.3), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, (quantity, predicted, label) in zip(axes, (("lambda_max", "lambda_max_predicted", "λ_max"),
                                                      ("bulk_mean", "bulk_predicted", "mean of λ_2 … λ_n"))):
        for i, (delta, n) in enumerate((d, n) for d in deltas for n in sorted({t["n"] for t in table})):
            mine = [t for t in table if t["delta"] == delta and t["n"] == n]
            ax.plot([t["depth"] for t in mine], [t[quantity] for t in mine], "o-", color=f"C{i}", ms=4,
                    label=f"Δ = {delta:g}, n = {n}")
            ax.plot([t["depth"] for t in mine], [t[predicted] for t in mine], "--", color=f"C{i}", lw=0.8)
        ax.set(xscale="log", yscale="log", xlabel="depth l", ylabel=label, title=label)
        ticks_at(ax.xaxis, sorted({t["depth"] for t in table}))
        ax.grid(alpha=0.3, which="both")
    handles, labels = axes[0].get_legend_handles_labels()
    handles += [Line2D([], [], color="k", marker="o", ms=4), Line2D([], [], color="k", ls="--", lw=0.8)]
    labels += ["measured", "Theorem 13's leading term"]
    fig.legend(handles, labels, loc="outside right center", fontsize=8)
    fig.suptitle("Spectrum of the EOC NTK K∞/n: measured against Theorem 13")
    return fig


def report(records: list[dict]) -> tuple[Figure, str]:
    means = group_means(spectra(records), ("delta", "n", "depth"), _FIELDS)
    body = [[f"{t['delta']:g}", t["n"], t["depth"]] + [t[f] for f in _FIELDS if f not in ("bulk_min", "bulk_max")]
            for t in means]
    return figure(means), "\n".join([
        "# Paper 2, Theorem 13: the EOC NTK is a spike plus a flat bulk",
        "",
        f"K∞/n by the closed form, n points uniform on S^{records[0]['dim'] - 1} (τ = 1), mean over "
        f"{records[0]['datasets']} datasets. Predicted: "
        "λ_max ≈ (1 + 3/n)·l/4 + (1 − 1/n)·ξ, bulk ≈ (3l/4 − ξ)/n, ξ = (3/8)(Δ⁻¹(π/2)W + log(Δ⁻¹(3π/4)W + l − 1) − 1) "
        "with W = the data's mean inverse cosine distance (the theorem fixes W only up to Θ(1); its error terms are "
        "O(Δ⁻¹ + Δ⁻²/l + l/n²) for λ_max and O(Δ⁻¹/n + Δ⁻²/l + l/n²) for the bulk). ξ measured: the ξ the measured "
        "λ_max implies (the bulk mean implies the same one, since tr(K∞/n) = l exactly). Bulk spread: "
        "(λ_2 − λ_n)/mean of λ_2 … λ_n; a flat bulk has spread → 0.",
        "",
        markdown_table(["Δ", "n", "l", "λ_max", "λ_max predicted", "bulk mean", "bulk predicted", "bulk spread",
                        "ξ formula", "ξ measured"], body),
    ])
