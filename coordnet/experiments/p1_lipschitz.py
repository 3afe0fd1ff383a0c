"""Paper 1, Figs. 3–4 (Saratchandran, Chng & Lucey, arXiv 2402.04783): the empirical Lipschitz constant of the
layer-3 features, cos(30·) against ReLU.

ELip = max_x ‖J(f_3)(x)‖_op over POINTS points x ~ N(0, I_n0), f_3 = φ(W_3 φ(W_2 φ(W_1 x))) the features of the
network n0 → 64 → 64 → n3 → 1, no bias, He init (paper 1 does not state its init), for n0 ∈ INPUT_DIMS and
n3 ∈ WIDTHS; compared with paper 1's digitised values (``P1_LIPSCHITZ``), and the log-log slope of ELip against
n3 with that of paper 1's data (its reference curve is n3^0.5). One job per network (activation, n0, n3, seed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from coordnet.experiments.paper_data import P1_LIP_WIDTHS, P1_LIPSCHITZ
from coordnet.experiments.reporting import group_means, markdown_table, slopes_ours_and_paper
from coordnet.models import CoordMLP, Cos, ReLU

NAME = "p1_lipschitz"
ACTIVATIONS = {"cos": Cos(30.0), "relu": ReLU()}  # the tables' name → activation (He init for both)
WIDTHS = P1_LIP_WIDTHS  # n3
INPUT_DIMS = (200, 400)  # n0
POINTS = 1000
SEEDS = 3


def feature_jacobian_norms(net: CoordMLP, x: torch.Tensor, chunk: int = 128) -> torch.Tensor:
    """‖∂f_k(x)/∂x‖_op for every point, f_k the output of the last hidden layer of ``net``, float64, (N,).

    J = D_k W_k ⋯ D_2 W_2 D_1 W_1 with D_l = diag φ′(s_l), s_l the pre-activations of ``net.trace``. Written as
    J = A·W_1 (A of shape n_k × n_1), its norm² is λ_max(Lᵀ AᵀA L) with W_1 W_1ᵀ = L Lᵀ: an n_1 × n_1
    eigenproblem per point, never the n_k × n_0 J. Needs n_1 ≤ n_0 (W_1 W_1ᵀ invertible), as in paper 1's 64-wide
    first layer, and a bias-free network without encoding (paper 1's).
    """
    if net.encoding is not None or any(lin.bias is not None for lin in net.linears):
        raise ValueError("feature_jacobian_norms needs a bias-free CoordMLP without encoding (paper 1's network)")
    norms = []
    with torch.no_grad():
        weights = [lin.scaled_weight(torch.float64) for lin in net.linears[:-1]]
        chol = torch.linalg.cholesky(weights[0] @ weights[0].T)
        for xs in x.double().split(chunk):
            derivs = [net.activation.derivative(s) for s in net.trace(xs).preacts]
            a = torch.diag_embed(derivs[0])  # (n, n_1, n_1)
            for w, d in zip(weights[1:], derivs[1:]):
                a = d[:, :, None] * (w @ a)  # (n, n_l, n_1)
            m = chol.T @ (a.transpose(1, 2) @ a) @ chol
            norms.append(torch.linalg.eigvalsh(m)[:, -1].clamp_min(0).sqrt())
    return torch.cat(norms)


def jobs(quick: bool, out: Path) -> list[dict]:
    widths, points, seeds = ((64, 128), 200, 1) if quick else (WIDTHS, POINTS, SEEDS)
    return [{"activation": act, "n0": n0, "n3": n3, "seed": seed, "points": points}
            for act in ACTIVATIONS for n0 in INPUT_DIMS for n3 in widths for seed in range(seeds)]


def run(job: dict) -> dict:
    """ELip (the largest ‖J(f_3)(x)‖_op over the points) and the median norm, for the network seeded by ``seed``."""
    torch.manual_seed(job["seed"])
    net = CoordMLP(job["n0"], 1, [64, 64, job["n3"]], activation=ACTIVATIONS[job["activation"]], init="he",
                   bias=False)
    x = torch.randn(job["points"], job["n0"], generator=torch.Generator().manual_seed(20_000 + job["seed"]))
    norms = feature_jacobian_norms(net, x)
    return {"elip": norms.max().item(), "median_norm": norms.median().item()}


def tables(records: list[dict]) -> dict[str, list[dict]]:
    """One row per network, in the jobs' order (activation, n0, n3, seed)."""
    columns = ("activation", "n0", "n3", "seed", "elip", "median_norm")
    return {"lipschitz": [{k: r[k] for k in columns} for r in records]}


def table(records: list[dict]) -> list[dict]:
    """Per (activation, n0, n3): mean, smallest and largest ELip over seeds, and paper 1's value."""
    seeds = lambda m: [r["elip"] for r in records  # noqa: E731
                       if (r["activation"], r["n0"], r["n3"]) == (m["activation"], m["n0"], m["n3"])]
    return [{"activation": m["activation"], "n0": m["n0"], "n3": m["n3"], "elip_mean": m["elip"],
             "elip_min": min(seeds(m)), "elip_max": max(seeds(m)),
             "paper": dict(zip(P1_LIP_WIDTHS, P1_LIPSCHITZ.get((m["activation"], m["n0"]), ()))).get(m["n3"])}
            for m in group_means(records, ("activation", "n0", "n3"), ("elip",))]


def figure(table: list[dict]) -> Figure:
    """ELip against n3, one panel per activation, one colour per n0: ours (mean, bars from the smallest to the
    largest seed) and paper 1's digitised values."""
    fig = Figure(figsize=(11, 4))
    axes = fig.subplots(1, 2)
    for ax, act in zip(axes, ACTIVATIONS):
        for i, n0 in enumerate(sorted({t["n0"] for t in table})):
            mine = [t for t in table if t["activation"] == act and t["n0"] == n0]
            means = np.array([t["elip_mean"] for t in mine])
            spread = [means - [t["elip_min"] for t in mine], [t["elip_max"] for t in mine] - means]
            ax.errorbar([t["n3"] for t in mine], means, yerr=spread, fmt="o-", ms=4, capsize=3, color=f"C{i}",
                        label=f"n0 = {n0}: ours (mean, seeds' range)")
            paper = [t for t in mine if t["paper"]]
            ax.plot([t["n3"] for t in paper], [t["paper"] for t in paper], "x--", color=f"C{i}", lw=0.8,
                    label=f"n0 = {n0}: paper 1")
        ax.set(xscale="log", yscale="log", xlabel="n3", ylabel="max_x ‖J(f_3)(x)‖_op",
               title=f"{'cos(30·)' if act == 'cos' else 'ReLU'}: n0 → 64 → 64 → n3, He, no bias")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def report(records: list[dict]) -> tuple[Figure, str]:
    """The figure; summary.md: ELip per (activation, n0, n3) next to paper 1's, and the log-log slopes in n3."""
    means = table(records)
    slopes = []
    for act, n0 in sorted({(t["activation"], t["n0"]) for t in means}):
        mine = [t for t in means if (t["activation"], t["n0"]) == (act, n0)]
        slopes.append([act, n0, *slopes_ours_and_paper(mine, "n3", "elip_mean")])
    seeds = len({r["seed"] for r in records})
    return figure(means), "\n".join([
        "# Paper 1, Figs. 3–4: empirical Lipschitz constant of the layer-3 features",
        "",
        f"ELip = max over {records[0]['points']} points x ~ N(0, I_n0) of ‖∂f_3/∂x‖_op, "
        f"f_3 = φ(W_3 φ(W_2 φ(W_1 x))), n0 → 64 → 64 → n3 → 1, no bias, He init (paper 1 does not state its init), "
        f"mean over {seeds} seeds.",
        "",
        markdown_table(["activation", "n0", "n3", "ELip ours", "ELip paper 1", "ours / paper"],
                       [[t["activation"], t["n0"], t["n3"], t["elip_mean"], t["paper"] or "—",
                         t["elip_mean"] / t["paper"] if t["paper"] else "—"] for t in means]),
        "",
        "Log-log slope of ELip against n3 (paper 1's reference curve is n3^0.5):",
        "",
        markdown_table(["activation", "n0", "slope ours", "slope paper 1's data"], slopes),
    ])
