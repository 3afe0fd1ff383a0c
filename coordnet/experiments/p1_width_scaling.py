"""Paper 1's width exponent tested directly (Saratchandran, Chng & Lucey, arXiv 2402.04783): λ_min against n1, and
which layer makes the kernel.

Paper 1 claims λ_min(J Jᵀ) = Θ(n1^{3/2}) for cos networks and Θ(n1) for ReLU. Here N = POINTS points
x ~ N(0, I_400) stay fixed while n1, the width of the wide layer of paper 1's network 400 → n1 → N2 → 1
(``networks.p1_network``, no bias), grows; the raw empirical NTK J Jᵀ in float64, under two weight regimes:
``he`` (the paper's experiments: N(0, 2/fan_in)) and ``fixed`` (its theorem's: variances independent of the
widths).

- **Exponents.** log λ_min against log n1 is curved, so one straight line through it (kept, with its 95%
  Student-t interval, for comparison) says little; the reading is the local slope over each doubling of n1,
  of the geometric mean over seeds, with its seed-bootstrap 95% interval (``reporting.local_slopes``).
- **Layers.** K = Σ_l K_l, K_l the Gram of the gradients with respect to W_l (``ntk_layer_kernels``): W1
  (input → n1), W2 (n1 → N2, the term built on the wide layer's features) and W3 (N2 → 1). Each layer's share of
  the trace, tr K_l / tr K, and of λ_min, v·K_l·v / λ_min with v the bottom eigenvector of K (the shares of each
  sum to 1), and λ_min(K_l) alone.
- **A narrow layer after the wide one**: N = NARROW_POINTS (< POINTS), n1 = NARROW_N1 and n2 ∈ NARROW_N2 (one
  below N), He.

One job per kernel (regime, activation, n1, N2, N, seed), the widest first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from coordnet.experiments.networks import p1_inputs, p1_network
from coordnet.experiments.reporting import interval, local_slopes, markdown_table, ticks_at
from coordnet.models import Cos, ReLU
from coordnet.ntk import ntk_layer_kernels, spectrum, spectrum_from_eigenvalues

NAME = "p1_width_scaling"
ACTIVATIONS = {"cos(1·)": Cos(1.0), "cos(5·)": Cos(5.0), "cos(30·)": Cos(30.0), "relu": ReLU()}
WEIGHTS = ("he", "fixed")
POINTS = 500
WIDTHS = (500, 1000, 2000, 4000, 8000, 16000)
N2 = 400
SEEDS = 8
INPUT_DIM = 400
NARROW_POINTS = 100
NARROW_N1 = 800
NARROW_N2 = (50, 400)
LAYERS = ("W1 (input → n1)", "W2 (n1 → n2)", "W3 (n2 → 1)")


def fit_exponent(xs: list[float], ys: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """Least-squares slope of log y on log x with its ``level`` confidence interval (Student t): (slope, lo, hi)."""
    from scipy import stats

    fit = stats.linregress(np.log(xs), np.log(ys))
    half = stats.t.ppf(0.5 + level / 2, len(xs) - 2) * fit.stderr
    return float(fit.slope), float(fit.slope - half), float(fit.slope + half)


def jobs(quick: bool, out: Path) -> list[dict]:
    points, widths, seeds = (100, (100, 200, 400, 800), 2) if quick else (POINTS, WIDTHS, SEEDS)
    narrow_points, narrow_n1 = (50, 200) if quick else (NARROW_POINTS, NARROW_N1)
    job = lambda weights, name, n1, n2, n, seed: {"weights": weights, "activation": name, "n1": n1,  # noqa: E731
                                                  "n2": n2, "points": n, "seed": seed, "input_dim": INPUT_DIM}
    configs = [job(w, name, n1, N2, points, seed) for w in WEIGHTS for name in ACTIVATIONS for n1 in widths
               for seed in range(seeds)]
    configs += [job("he", name, narrow_n1, n2, narrow_points, seed) for name in ACTIVATIONS for n2 in NARROW_N2
                for seed in range(seeds)]
    return sorted(configs, key=lambda job: -job["n1"] * job["points"])  # biggest first: a pessimistic estimate


def run(job: dict) -> dict:
    """λ_min, λ_max of J Jᵀ, whether λ_min lies above the float64 floor n·eps·λ_max, and each layer's shares."""
    torch.manual_seed(job["seed"])
    network = p1_network(job["n1"], ACTIVATIONS[job["activation"]], job["input_dim"], job["n2"], job["weights"])
    terms = ntk_layer_kernels(network, p1_inputs(job["points"], job["seed"], job["input_dim"]))  # (3, N, N)
    kernel = terms.sum(0)
    eigenvalues, eigenvectors = torch.linalg.eigh(kernel)  # once: the spectrum and the bottom eigenvector
    spec = spectrum_from_eigenvalues(eigenvalues, kernel.diagonal().sum().item())
    bottom = eigenvectors[:, 0]
    rayleigh = torch.einsum("i,lij,j->l", bottom, terms, bottom)
    return {"lambda_min": spec.lambda_min, "lambda_max": spec.lambda_max,
            "lambda_min_reliable": int(spec.lambda_min_reliable),
            "trace_share": (terms.diagonal(dim1=1, dim2=2).sum(1) / spec.trace).tolist(),
            "lambda_min_share": (rayleigh / rayleigh.sum()).tolist(),
            "layer_lambda_min": [spectrum(term).lambda_min for term in terms]}


def _width_sweep(records: list[dict]) -> list[dict]:
    """The width sweep's records (N = the sweep's points, n2 = N2), by (regime, activation, n1, seed)."""
    points = max(r["points"] for r in records)
    rows = [r for r in records if r["points"] == points and r["n2"] == N2]
    return sorted(rows, key=lambda r: (WEIGHTS.index(r["weights"]), list(ACTIVATIONS).index(r["activation"]),
                                       r["n1"], r["seed"]))


def kernels(records: list[dict]) -> list[dict]:
    """One row per kernel: its settings, λ_min, λ_max and each layer's shares (columns per layer)."""
    rows = sorted(records, key=lambda r: (WEIGHTS.index(r["weights"]), list(ACTIVATIONS).index(r["activation"]),
                                          r["points"], r["n2"], r["n1"], r["seed"]))
    columns = ("weights", "activation", "points", "n1", "n2", "seed", "lambda_min", "lambda_max",
               "lambda_min_reliable")
    return [{k: r[k] for k in columns}
            | {f"{field}_W{l + 1}": r[field][l] for field in ("trace_share", "lambda_min_share", "layer_lambda_min")
               for l in range(len(LAYERS))} for r in rows]


def _by_width(rows: list[dict], weights: str, name: str, field=lambda r: r["lambda_min"]) -> dict[int, list[float]]:
    """n1 → ``field`` of each seed (in seed order) for one regime and activation."""
    out: dict[int, list[float]] = {}
    for r in rows:
        if r["weights"] == weights and r["activation"] == name:
            out.setdefault(r["n1"], []).append(field(r))
    return dict(sorted(out.items()))


def exponents(records: list[dict]) -> list[dict]:
    """Per (regime, activation): the one-line fit over every (n1, seed) with its 95% t-interval, and the local
    slope of each doubling with its seed-bootstrap interval (``slopes``: (n1, 2·n1, slope, low, high))."""
    rows = _width_sweep(records)
    out = []
    for weights in WEIGHTS:
        for name in ACTIVATIONS:
            by_width = _by_width(rows, weights, name)
            if not by_width:
                continue
            xs = [w for w, values in by_width.items() for _ in values]
            slope, lo, hi = fit_exponent(xs, [v for values in by_width.values() for v in values])
            out.append({"weights": weights, "activation": name, "exponent": slope, "ci_low": lo, "ci_high": hi,
                        "slopes": local_slopes(list(by_width), list(by_width.values())),
                        "claimed": 1.5 if name.startswith("cos") else 1.0})
    return out


def shares(records: list[dict], weights: str = "he") -> list[dict]:
    """Per (activation, n1) of the width sweep in ``weights``: the median over seeds of each layer's share of the
    trace and of λ_min, and of λ_min(K_l) alone."""
    rows = _width_sweep(records)
    out = []
    for name in ACTIVATIONS:
        for field in ("trace_share", "lambda_min_share", "layer_lambda_min"):
            for n1, values in _by_width(rows, weights, name, lambda r: r[field]).items():
                out.append({"weights": weights, "activation": name, "n1": n1, "quantity": field,
                            **{layer: float(np.median([v[l] for v in values])) for l, layer in enumerate(LAYERS)}})
    return out


def tables(records: list[dict]) -> dict[str, list[dict]]:
    local = [{"weights": e["weights"], "activation": e["activation"], "n1_from": a, "n1_to": b, "slope": s,
              "ci_low": lo, "ci_high": hi} for e in exponents(records) for a, b, s, lo, hi in e["slopes"]]
    return {"width_scaling": kernels(records), "local_slopes": local,
            "layer_shares": [row for weights in WEIGHTS for row in shares(records, weights)]}


def figure(records: list[dict], fits: list[dict]) -> Figure:
    """(a) λ_min against n1, every seed a dot, He solid and fixed variances dashed; (b) the local slope of each
    doubling with its 95% interval, against paper 1's claims; (c) each layer's share of λ_min under He."""
    rows = _width_sweep(records)
    fig = Figure(figsize=(14, 4.8), layout="constrained")
    ax_lam, ax_slope, ax_share = fig.subplots(1, 3)
    styles = {"he": "-", "fixed": "--"}
    widths = sorted({r["n1"] for r in rows})
    for e in fits:
        i = list(ACTIVATIONS).index(e["activation"])
        by_width = _by_width(rows, e["weights"], e["activation"])
        for n1, values in by_width.items():
            ax_lam.plot([n1] * len(values), values, ".", ms=3, alpha=0.5, color=f"C{i}")
        ax_lam.plot(list(by_width), [np.exp(np.mean(np.log(v))) for v in by_width.values()], ls=styles[e["weights"]],
                    color=f"C{i}", label=f"{e['activation']}, {e['weights']}")
        middles = [np.sqrt(a * b) * (1.03 if e["weights"] == "fixed" else 0.97) for a, b, *_ in e["slopes"]]
        values = np.array([s for _, _, s, _, _ in e["slopes"]])
        spread = [values - [lo for *_, lo, _ in e["slopes"]], [hi for *_, hi in e["slopes"]] - values]
        ax_slope.errorbar(middles, values, yerr=spread, ls=styles[e["weights"]], marker="o", ms=3, capsize=2,
                          color=f"C{i}")
    for claim, label, where in ((1.5, "paper 1: cos, 3/2", "bottom"), (1.0, "paper 1: ReLU, 1", "top")):
        ax_slope.axhline(claim, color="0.4", lw=0.8, ls=":")
        ax_slope.text(widths[0] * 1.03, claim + (0.02 if where == "bottom" else -0.02), label, fontsize=7,
                      color="0.3", va=where)
    seeds = len({r["seed"] for r in rows})
    ax_lam.set(xscale="log", yscale="log", xlabel="n1", ylabel="λ_min(J Jᵀ)",
               title=f"(a) N = {rows[0]['points']}, {seeds} seeds (dots), geometric mean")
    ax_slope.set(xscale="log", xlabel="n1 (middle of the doubling)", ylabel="local slope d log λ_min / d log n1",
                 title="(b) slope per doubling, seed-bootstrap 95%")
    layer_styles = ("-", (0, (5, 2)), ":")
    for i, name in enumerate(ACTIVATIONS):
        for l, ls in enumerate(layer_styles):
            he = _by_width(rows, "he", name, lambda r: r["lambda_min_share"][l])
            ax_share.plot(list(he), [np.median(v) for v in he.values()], ls=ls, marker=".", color=f"C{i}")
    ax_share.set(xscale="log", xlabel="n1", ylabel="v·K_l·v / λ_min (median over seeds)", ylim=(-0.02, 1.02),
                 title="(c) each layer's share of λ_min, He")
    for ax in (ax_lam, ax_slope, ax_share):
        ticks_at(ax.xaxis, widths)
        ax.grid(alpha=0.3, which="both")
    handles, labels = ax_lam.get_legend_handles_labels()
    handles += [Line2D([], [], color="k", ls=ls) for ls in layer_styles]
    labels += [f"(c) {layer}" for layer in LAYERS]
    fig.legend(handles, labels, loc="outside lower center", ncol=6, fontsize=8)
    return fig


def report(records: list[dict]) -> tuple[Figure, str]:
    """The figure; summary.md: local slopes and the one-line fit against paper 1's claims, each layer's shares,
    and the narrow second layer."""
    rows, fits = _width_sweep(records), exponents(records)
    seeds = len({r["seed"] for r in rows})
    doublings = [f"{a}→{b}" for a, b, *_ in fits[0]["slopes"]]
    slope_rows = [[e["weights"], e["activation"]] + [interval(s, lo, hi, 2) for _, _, s, lo, hi in e["slopes"]]
                  + [interval(e["exponent"], e["ci_low"], e["ci_high"], 2), e["claimed"]] for e in fits]
    by = {(row["activation"], row["n1"], row["quantity"]): row for row in shares(records, "he")}
    percent = lambda v: f"{100 * v:.1f}%" if v >= 0.001 else f"{100 * v:.1g}%"  # noqa: E731
    share_table = [[name, n1] + [percent(by[name, n1, q][layer]) for q in ("trace_share", "lambda_min_share")
                                 for layer in LAYERS] + [by[name, n1, "layer_lambda_min"][LAYERS[1]]]
                   for name, n1 in sorted({(a, n) for a, n, _ in by}, key=lambda k: (list(ACTIVATIONS).index(k[0]),
                                                                                   k[1]))]
    narrow = sorted((r for r in records if r["points"] != rows[0]["points"]), key=lambda r: (list(ACTIVATIONS).index(r["activation"]),
                                                                         r["n2"], r["seed"]))
    narrow_rows = []
    for name in ACTIVATIONS:
        for n2 in sorted({r["n2"] for r in narrow}):
            mine = [r for r in narrow if r["activation"] == name and r["n2"] == n2]
            if mine:
                kappa = [r["lambda_max"] / r["lambda_min"] for r in mine]
                narrow_rows.append([name, n2, float(np.median([r["lambda_min"] for r in mine])),
                                    float(np.median(kappa)), float(np.median([r["lambda_min_share"][0] for r in mine])),
                                    f"{sum(r['lambda_min_reliable'] for r in mine)}/{len(mine)}"])
    narrow_text = []
    if narrow_rows:
        n, n1 = narrow[0]["points"], narrow[0]["n1"]
        narrow_text = ["", f"**A narrow layer after the wide one** (He, N = {n}, n1 = {n1}; medians over {seeds} seeds):",
                       "", markdown_table(["activation", "n2", "λ_min", "κ", "W1's share of λ_min",
                                           "λ_min above the floor"], narrow_rows)]
    return figure(records, fits), "\n".join([
        "# Paper 1's width exponent: λ_min(J Jᵀ) against n1 at fixed N, and each layer's part",
        "",
        f"400 → n1 → {N2} → 1, no bias, N = {rows[0]['points']} points x ~ N(0, I_400), raw J Jᵀ in float64, "
        f"{seeds} seeds per width. Weights: he = N(0, 2/fan_in) (paper 1's experiments); fixed = N(0, 2/400) in "
        "every layer (its theorem's width-independent variances).",
        "",
        "**Local slope** d log λ_min / d log n1 over each doubling (geometric mean over seeds; [a, b] a seed-bootstrap "
        "95% interval), and the one line fitted through every (n1, seed) with its 95% t-interval, which averages "
        "over the curvature:",
        "",
        markdown_table(["weights", "activation"] + doublings + ["one line", "paper 1's claim"], slope_rows),
        "",
        f"**Each layer's part** of K = Σ_l K_l (He; medians over {seeds} seeds): its share of the trace, tr K_l / tr K, "
        "its share of λ_min, v·K_l·v / λ_min(K) with v the bottom eigenvector of K, and λ_min of the wide layer's own "
        "term K_W2 alone (layer_shares.csv has every layer's λ_min(K_l), and the fixed variances):",
        "",
        markdown_table(["activation", "n1"] + [f"{q} {layer.split()[0]}" for q in ("trace", "λ_min") for layer in LAYERS]
                       + ["λ_min(K_W2)"], share_table),
        *narrow_text,
    ])
