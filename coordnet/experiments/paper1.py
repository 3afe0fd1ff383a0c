"""Reproductions of paper 1 (Saratchandran, Chng & Lucey, arXiv 2402.04783): λ_min of cos vs ReLU NTKs.

``min_eig_vs_n`` is its Figs. 1–2: the bias-free network 400 → n1 → 400 → 1 with He init
(N(0, 2/fan_in) on all three weight matrices), cos(5·) or ReLU, on N points x ~ N(0, I_400), with
n1 = 8N (Fig. 1) or 15N (Fig. 2); λ_min of the raw empirical NTK J Jᵀ (N × N, float64, layer-wise
engine). The paper does not state its data, seeds or precision; this protocol reproduces its ReLU
curve (papers.md §1.7). Slopes are least-squares fits of log λ_min against log N.
"""

from __future__ import annotations

import statistics

import numpy as np
import torch
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from coordnet.experiments.paper_data import P1_MIN_EIG, P1_NS
from coordnet.experiments.reporting import markdown_table, ticks_at
from coordnet.models import Activation, CoordMLP, Cos
from coordnet.ntk import Spectrum, empirical_ntk, spectrum

P1_ACTIVATIONS = {"cos": lambda: Cos(5.0), "relu": lambda: "relu"}


def p1_network(n1: int, activation: Activation | str, input_dim: int = 400, n2: int = 400) -> CoordMLP:
    """Paper 1's network: input_dim → n1 → n2 → 1, no biases, He init."""
    return CoordMLP(input_dim, 1, [n1, n2], activation=activation, init="he", bias=False)


def p1_kernel_spectrum(n1: int, activation: Activation | str, num_points: int, seed: int,
                       input_dim: int = 400) -> Spectrum:
    """Spectrum of the raw J Jᵀ (float64) of ``p1_network`` (weights seeded by ``seed``) on N(0, I) inputs."""
    torch.manual_seed(seed)
    x = torch.randn(num_points, input_dim, generator=torch.Generator().manual_seed(10_000 + seed))
    return spectrum(empirical_ntk(p1_network(n1, activation, input_dim), x, mode="full", normalization="raw"))


def loglog_slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def min_eig_vs_n(ns: tuple[int, ...] = P1_NS, multipliers: tuple[int, ...] = (8, 15), seeds: int = 5,
                 input_dim: int = 400, progress: bool = True) -> list[dict]:
    """One row per (activation, n1/N, N, seed): λ_min, λ_max and whether λ_min lies above the float64 floor."""
    configs = [(act, mult, n, seed) for act in P1_ACTIVATIONS for mult in multipliers for n in ns
               for seed in range(seeds)]
    rows = []
    # biggest first, so the progress bar's time estimate is pessimistic rather than optimistic
    for act, mult, n, seed in tqdm(sorted(configs, key=lambda c: -c[1] * c[2] ** 2), desc="paper 1 Figs. 1-2",
                                   disable=not progress):
        spec = p1_kernel_spectrum(mult * n, P1_ACTIVATIONS[act](), n, seed, input_dim)
        rows.append({"activation": act, "multiplier": mult, "N": n, "n1": mult * n, "seed": seed,
                     "lambda_min": spec.lambda_min, "lambda_max": spec.lambda_max,
                     "lambda_min_reliable": int(spec.lambda_min_reliable)})
    return sorted(rows, key=lambda r: (r["activation"], r["multiplier"], r["N"], r["seed"]))


def summarise_min_eig(rows: list[dict]) -> list[dict]:
    """Per (activation, n1/N, N): mean and std of λ_min over seeds, paper 1's value and ours/paper."""
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        groups.setdefault((r["activation"], r["multiplier"], r["N"]), []).append(r["lambda_min"])
    out = []
    for (act, mult, n), values in groups.items():
        paper = dict(zip(P1_NS, P1_MIN_EIG.get((act, mult), ()))).get(n)
        mean = statistics.fmean(values)
        out.append({"activation": act, "multiplier": mult, "N": n, "lambda_min_mean": mean,
                    "lambda_min_std": statistics.stdev(values) if len(values) > 1 else 0.0,
                    "seeds": len(values), "paper": paper, "ratio_to_paper": mean / paper if paper else None})
    return out


def min_eig_figure(summary: list[dict]) -> Figure:
    """λ_min against N, one panel per n1/N: ours (mean ± std over seeds) and paper 1's digitised values."""
    multipliers = sorted({s["multiplier"] for s in summary})
    fig = Figure(figsize=(5.5 * len(multipliers), 4))
    axes = fig.subplots(1, len(multipliers), squeeze=False)[0]
    for ax, mult in zip(axes, multipliers):
        for i, act in enumerate(P1_ACTIVATIONS):
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


def min_eig_summary(rows: list[dict], summary: list[dict]) -> str:
    """summary.md: the table, the fitted slopes (ours and the paper's) and the cos/ReLU ratios."""
    table = markdown_table(
        ["activation", "n1", "N", "λ_min ours (mean ± std)", "λ_min paper 1", "ours / paper"],
        [[s["activation"], f"{s['multiplier']}N", s["N"], f"{s['lambda_min_mean']:.4g} ± {s['lambda_min_std']:.2g}",
          f"{s['paper']:.4g}" if s["paper"] else "—", f"{s['ratio_to_paper']:.3f}" if s["paper"] else "—"]
         for s in summary])
    slopes = []
    for act in P1_ACTIVATIONS:
        for mult in sorted({s["multiplier"] for s in summary}):
            mine = [s for s in summary if s["activation"] == act and s["multiplier"] == mult]
            paper = [s for s in mine if s["paper"]]
            slopes.append([act, f"{mult}N", loglog_slope([s["N"] for s in mine], [s["lambda_min_mean"] for s in mine]),
                           loglog_slope([s["N"] for s in paper], [s["paper"] for s in paper]) if len(paper) > 1
                           else "—", "1.5" if act == "cos" else "1"])
    ratios = []
    for mult in sorted({s["multiplier"] for s in summary}):
        for n in sorted({s["N"] for s in summary}):
            cos = [s for s in summary if (s["activation"], s["multiplier"], s["N"]) == ("cos", mult, n)]
            relu = [s for s in summary if (s["activation"], s["multiplier"], s["N"]) == ("relu", mult, n)]
            if cos and relu:
                paper = cos[0]["paper"] / relu[0]["paper"] if cos[0]["paper"] and relu[0]["paper"] else None
                ratios.append([f"{mult}N", n, cos[0]["lambda_min_mean"] / relu[0]["lambda_min_mean"],
                               f"{paper:.3g}" if paper else "—"])
    reliable = sum(r["lambda_min_reliable"] for r in rows)
    seeds = max(s["seeds"] for s in summary)
    return "\n".join([
        "# Paper 1, Figs. 1–2: λ_min of the empirical NTK against N, cos(5·) vs ReLU",
        "",
        f"400 → n1 → 400 → 1, no bias, He init, x ~ N(0, I_400), raw J Jᵀ in float64, {seeds} seeds "
        f"(λ_min above the float64 floor in {reliable} of {len(rows)} kernels).",
        "",
        table,
        "",
        "Log-log slope of λ_min against N (n1 grows with N, so this is also the slope in n1):",
        "",
        markdown_table(["activation", "n1", "slope ours", "slope paper 1's data", "paper 1's claim"], slopes),
        "",
        "cos / ReLU ratio of λ_min:",
        "",
        markdown_table(["n1", "N", "ours", "paper 1"], ratios),
    ])


def min_eig_reference_check(summary: list[dict]) -> float:
    """The largest |ours/paper − 1| over the ReLU points paper 1 plotted (the curve this protocol pins down)."""
    return max(abs(s["ratio_to_paper"] - 1) for s in summary if s["activation"] == "relu" and s["paper"])



# -- the width exponent ------------------------------------------------------------------------------

WIDTH_ACTIVATIONS = {"cos(1·)": lambda: Cos(1.0), "cos(5·)": lambda: Cos(5.0), "cos(30·)": lambda: Cos(30.0),
                     "relu": lambda: "relu"}


def fit_exponent(xs: list[float], ys: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """Least-squares slope of log y on log x with its ``level`` confidence interval (Student t): (slope, lo, hi)."""
    from scipy import stats

    fit = stats.linregress(np.log(xs), np.log(ys))
    half = stats.t.ppf(0.5 + level / 2, len(xs) - 2) * fit.stderr
    return float(fit.slope), float(fit.slope - half), float(fit.slope + half)


def width_scaling(num_points: int = 500, widths: tuple[int, ...] = (500, 1000, 2000, 4000, 8000, 16000),
                  seeds: int = 5, input_dim: int = 400, progress: bool = True) -> list[dict]:
    """λ_min of J Jᵀ for 400 → n1 → 400 → 1 (paper 1's network) at fixed N over a range of n1, per activation.

    Paper 1 claims λ_min = Θ(n1^{3/2}) for cos and Θ(n1) for ReLU; one row per (activation, n1, seed).
    """
    configs = [(name, width, seed) for name in WIDTH_ACTIVATIONS for width in widths for seed in range(seeds)]
    rows = []
    for name, width, seed in tqdm(sorted(configs, key=lambda c: -c[1]), desc="paper 1 width exponent",
                                  disable=not progress):
        spec = p1_kernel_spectrum(width, WIDTH_ACTIVATIONS[name](), num_points, seed, input_dim)
        rows.append({"activation": name, "n1": width, "seed": seed, "lambda_min": spec.lambda_min,
                     "lambda_max": spec.lambda_max, "lambda_min_reliable": int(spec.lambda_min_reliable)})
    return sorted(rows, key=lambda r: (list(WIDTH_ACTIVATIONS).index(r["activation"]), r["n1"], r["seed"]))


def width_exponents(rows: list[dict]) -> list[dict]:
    """Per activation: the fitted exponent of λ_min in n1 over every (n1, seed) point, with its 95% interval."""
    out = []
    for name in WIDTH_ACTIVATIONS:
        mine = [r for r in rows if r["activation"] == name]
        slope, lo, hi = fit_exponent([r["n1"] for r in mine], [r["lambda_min"] for r in mine])
        w1, w2 = sorted({r["n1"] for r in mine})[-2:]
        means = [statistics.fmean(r["lambda_min"] for r in mine if r["n1"] == w) for w in (w1, w2)]
        out.append({"activation": name, "exponent": slope, "ci_low": lo, "ci_high": hi,
                    "last_doubling": loglog_slope([w1, w2], means), "claimed": 1.5 if name.startswith("cos") else 1.0})
    return out


def width_scaling_figure(rows: list[dict], exponents: list[dict], num_points: int) -> Figure:
    """λ_min against n1 (every seed as a dot, the fit as a line), one colour per activation; the legend below the
    axes, where it hides no points."""
    fig = Figure(figsize=(6.5, 5), layout="constrained")
    ax = fig.subplots()
    for i, e in enumerate(exponents):
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


def width_scaling_summary(rows: list[dict], exponents: list[dict], num_points: int) -> str:
    widths = sorted({r["n1"] for r in rows})
    seeds = len({r["seed"] for r in rows})
    means = [[name] + [statistics.fmean(r["lambda_min"] for r in rows if r["activation"] == name and r["n1"] == w)
                       for w in widths] for name in WIDTH_ACTIVATIONS]
    return "\n".join([
        "# Paper 1's width exponent: λ_min(J Jᵀ) against n1 at fixed N",
        "",
        f"400 → n1 → 400 → 1, no bias, He init, N = {num_points} points x ~ N(0, I_400), raw J Jᵀ in float64, "
        f"{seeds} seeds per width; the exponent is the least-squares slope of log λ_min on log n1 over every "
        f"(n1, seed), with a 95% t-interval.",
        "",
        markdown_table(["activation", "exponent (ours)", "95% interval", "slope over the widest doubling",
                        "paper 1's claim"],
                       [[e["activation"], e["exponent"], f"[{e['ci_low']:.3f}, {e['ci_high']:.3f}]",
                         e["last_doubling"], e["claimed"]] for e in exponents]),
        "",
        "Mean λ_min over seeds:",
        "",
        markdown_table(["activation"] + [f"n1 = {w}" for w in widths], means),
    ])


# -- the empirical Lipschitz constant of the layer-3 features ------------------------------------------

P1_LIP_WIDTHS = (64, 128, 256, 512, 1024, 2048)
P1_LIPSCHITZ = {  # paper 1, Figs. 3 (cos(30·)) and 4 (ReLU inset), max_x ‖J(f_3)(x)‖_op at n3 = P1_LIP_WIDTHS
    ("cos", 200): (1.08e5, 1.36e5, 1.87e5, 2.46e5, 3.46e5, 4.75e5),
    ("cos", 400): (1.07e5, 1.31e5, 1.84e5, 2.40e5, 3.35e5, 4.62e5),
    ("relu", 200): (4.0, 5.3, 7.3, 9.9, 13.0, 18.4),
    ("relu", 400): (3.6, 5.5, 6.0, 9.8, 11.8, 17.8),
}
LIP_ACTIVATIONS = {"cos": lambda: Cos(30.0), "relu": lambda: "relu"}


def feature_jacobian_norms(net: CoordMLP, x: torch.Tensor, chunk: int = 128) -> torch.Tensor:
    """‖∂f_k(x)/∂x‖_op for every point, f_k the output of the last hidden layer of ``net``, float64, (N,).

    J = D_k W_k ⋯ D_2 W_2 D_1 W_1 with D_l = diag φ′(s_l). Written as J = A·W_1 (A of shape n_k × n_1), its
    norm² is λ_max(Lᵀ AᵀA L) with W_1 W_1ᵀ = L Lᵀ: an n_1 × n_1 eigenproblem per point, never the n_k × n_0 J.
    Needs n_1 ≤ n_0 (W_1 W_1ᵀ invertible), as in paper 1's 64-wide first layer, and a bias-free network
    without encoding (paper 1's).
    """
    if net.encoding is not None or any(lin.bias is not None for lin in net.linears):
        raise ValueError("feature_jacobian_norms needs a bias-free CoordMLP without encoding (paper 1's network)")
    with torch.no_grad():
        weights = [(lin.weight.double() * lin.weight_scale) for lin in net.linears[:-1]]
        chol = torch.linalg.cholesky(weights[0] @ weights[0].T)
    norms = []
    with torch.no_grad():
        for xs in x.double().split(chunk):
            h, derivs = xs, []
            for w in weights:
                s = h @ w.T
                derivs.append(net.activation.derivative(s))
                h = net.activation(s)
            a = torch.diag_embed(derivs[0])  # (n, n_1, n_1)
            for w, d in zip(weights[1:], derivs[1:]):
                a = d[:, :, None] * (w @ a)  # (n, n_l, n_1)
            m = chol.T @ (a.transpose(1, 2) @ a) @ chol
            norms.append(torch.linalg.eigvalsh(m)[:, -1].clamp_min(0).sqrt())
    return torch.cat(norms)


def lipschitz(widths: tuple[int, ...] = P1_LIP_WIDTHS, input_dims: tuple[int, ...] = (200, 400),
              num_points: int = 1000, seeds: int = 3, progress: bool = True) -> list[dict]:
    """max_x ‖J(f_3)(x)‖_op for n0 → 64 → 64 → n3 → 1, cos(30·) or ReLU, He init, no bias, x ~ N(0, I_n0)."""
    configs = [(act, n0, n3, seed) for act in LIP_ACTIVATIONS for n0 in input_dims for n3 in widths
               for seed in range(seeds)]
    rows = []
    for act, n0, n3, seed in tqdm(configs, desc="paper 1 Figs. 3-4", disable=not progress):
        torch.manual_seed(seed)
        net = CoordMLP(n0, 1, [64, 64, n3], activation=LIP_ACTIVATIONS[act](), init="he", bias=False)
        x = torch.randn(num_points, n0, generator=torch.Generator().manual_seed(20_000 + seed))
        norms = feature_jacobian_norms(net, x)
        rows.append({"activation": act, "n0": n0, "n3": n3, "seed": seed, "elip": norms.max().item(),
                     "median_norm": norms.median().item()})
    return rows


def lipschitz_table(rows: list[dict]) -> list[dict]:
    """Per (activation, n0, n3): mean ELip over seeds and paper 1's value."""
    out = []
    for (act, n0) in sorted({(r["activation"], r["n0"]) for r in rows}):
        for n3 in sorted({r["n3"] for r in rows}):
            values = [r["elip"] for r in rows if (r["activation"], r["n0"], r["n3"]) == (act, n0, n3)]
            paper = dict(zip(P1_LIP_WIDTHS, P1_LIPSCHITZ.get((act, n0), ()))).get(n3)
            out.append({"activation": act, "n0": n0, "n3": n3, "elip_mean": statistics.fmean(values),
                        "paper": paper})
    return out


def lipschitz_figure(table: list[dict]) -> Figure:
    fig = Figure(figsize=(11, 4))
    axes = fig.subplots(1, 2)
    for ax, act in zip(axes, LIP_ACTIVATIONS):
        for i, n0 in enumerate(sorted({t["n0"] for t in table})):
            mine = [t for t in table if t["activation"] == act and t["n0"] == n0]
            ax.plot([t["n3"] for t in mine], [t["elip_mean"] for t in mine], "o-", color=f"C{i}", label=f"n0 = {n0}: ours")
            paper = [t for t in mine if t["paper"]]
            ax.plot([t["n3"] for t in paper], [t["paper"] for t in paper], "x--", color=f"C{i}", lw=0.8,
                    label=f"n0 = {n0}: paper 1")
        ax.set(xscale="log", yscale="log", xlabel="n3", ylabel="max_x ‖J(f_3)(x)‖_op",
               title=f"{'cos(30·)' if act == 'cos' else 'ReLU'}: n0 → 64 → 64 → n3, He, no bias")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def lipschitz_summary(rows: list[dict], table: list[dict], num_points: int) -> str:
    slopes = []
    for act, n0 in sorted({(t["activation"], t["n0"]) for t in table}):
        mine = [t for t in table if (t["activation"], t["n0"]) == (act, n0)]
        paper = [t for t in mine if t["paper"]]
        slopes.append([act, n0, loglog_slope([t["n3"] for t in mine], [t["elip_mean"] for t in mine]),
                       loglog_slope([t["n3"] for t in paper], [t["paper"] for t in paper]) if len(paper) > 1 else "—"])
    seeds = len({r["seed"] for r in rows})
    return "\n".join([
        "# Paper 1, Figs. 3–4: empirical Lipschitz constant of the layer-3 features",
        "",
        f"ELip = max over {num_points} points x ~ N(0, I_n0) of ‖∂f_3/∂x‖_op, f_3 = φ(W_3 φ(W_2 φ(W_1 x))), "
        f"n0 → 64 → 64 → n3 → 1, no bias, He init (paper 1 does not state its init), mean over {seeds} seeds.",
        "",
        markdown_table(["activation", "n0", "n3", "ELip ours", "ELip paper 1", "ours / paper"],
                       [[t["activation"], t["n0"], t["n3"], t["elip_mean"], t["paper"] or "—",
                         t["elip_mean"] / t["paper"] if t["paper"] else "—"] for t in table]),
        "",
        "Log-log slope of ELip against n3 (paper 1's reference curve is n3^0.5):",
        "",
        markdown_table(["activation", "n0", "slope ours", "slope paper 1's data"], slopes),
    ])
