"""Memorisation of random targets across activations, and how well the NTK at init predicts it.

Data: N = NUM_POINTS points with targets y ~ N(0, 1) (``MemorizationDataModule``): Gaussian inputs in R^DIM, or a
√N × √N pixel grid in [−1, 1]². Network: one hidden layer of width m (m/N ∈ WIDTH_RATIOS), biases on (zero at init,
except SIREN's U(±1/√fan_in)), each activation of ACTIVATIONS with its own init (``Activation.default_init``: He
for cos and ReLU, SIREN for sine, Edge of Chaos for the (a, b)-ReLU, a² + b² = 1 and Δ = b²).

Training, full batch, at most STEPS steps, on L = ½‖f(X) − y‖² (a sum, so that the kernel is the raw J Jᵀ):
- ``gd``: gradient descent with η = 1/λ_max(K₀), K₀ = J Jᵀ at init. The linearised model predicts the
  residual r_t = Σ_i (1 − ηλ_i)^t ⟨v_i, r_0⟩ v_i from K₀'s eigenpairs (λ_i, v_i), so the predicted relative
  loss is Σ_i (1 − ηλ_i)^{2t} c_i² / Σ_i c_i² with c_i = ⟨v_i, r_0⟩.
- ``adam``: Adam with the fixed learning rate 1e-3 on the same loss.

Each run records the relative loss ‖r_t‖²/‖r_0‖² every step, the steps to reach 1e-2 and 1e-4 (None at the
cap), λ_min(K₀) and κ(K₀) (float64, with the numerical floor of ``coordnet.ntk.spectrum``). One job per
(inputs, activation, width, optimiser, seed); SEEDS seeds change the data and the init together.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from torch import Tensor

from coordnet.data import MemorizationDataModule
from coordnet.experiments.reporting import markdown_table, ticks_at
from coordnet.models import CoordMLP, get_activation
from coordnet.models.ensemble import CoordMLPEnsemble
from coordnet.ntk import empirical_ntk, spectrum
from coordnet.ntk.spectrum import Spectrum
from coordnet.training.member_optim import MemberAdam, MemberSGD

NAME = "memorization"
NUM_POINTS = 256  # N, a square for the grid
DIM = 16  # dimension of the Gaussian inputs
STEPS = 1000  # step cap per run
SEEDS = 1
WIDTH_RATIOS = (0.25, 0.5, 1.0, 2.0, 8.0)  # m/N
# name → [registry name, parameters] for ``get_activation``: cos(s·), sine ω0 = 30, ReLU, the EOC (a, b)-ReLU by Δ
ACTIVATIONS = ({f"cos({s:g}·)": ["cos", {"s": s}] for s in (1.0, 5.0, 30.0)}
               | {"sine ω0=30": ["sine", {"omega0": 30.0}], "relu": ["relu", {}]}
               | {f"abrelu Δ={d:g}": ["abrelu", {"a": math.sqrt(1 - d), "b": math.sqrt(d)}]
                  for d in (0.25, 0.5, 0.75, 1.0)})


def jobs(quick: bool, out: Path) -> list[dict]:
    """One job per (inputs, activation, width, optimiser, seed); --quick: N = 64, widths N and 8N, cos(5·), relu
    and |x| (abrelu Δ=1), 200 steps. ``out`` is not used: runs write nothing of their own.

    Raises:
        ValueError: N is not a square (the grid inputs need one).
    """
    n, steps, ratios = (64, 200, (1.0, 8.0)) if quick else (NUM_POINTS, STEPS, WIDTH_RATIOS)
    names = ("cos(5·)", "relu", "abrelu Δ=1") if quick else tuple(ACTIVATIONS)
    if math.isqrt(n) ** 2 != n:
        raise ValueError(f"grid inputs need a square number of points, got NUM_POINTS={n}")
    return [{"activation": name, "activation_config": ACTIVATIONS[name], "inputs": inputs, "N": n,
             "width": max(1, round(ratio * n)), "optimizer": optimizer, "seed": seed, "step_cap": steps, "dim": DIM,
             "adam_lr": 1e-3}
            for inputs in ("gaussian", "grid") for name in names for ratio in ratios for optimizer in ("gd", "adam")
            for seed in range(SEEDS)]


def memorization_data(num_points: int, inputs: str, dim: int, seed: int) -> tuple[Tensor, Tensor]:
    """(X, y) in float64: ``inputs`` = ``gaussian`` (N(0, I_dim)) or ``grid`` (a √N × √N pixel grid), y ~ N(0, 1)."""
    data = MemorizationDataModule(num_points, dim if inputs == "gaussian" else 2, inputs, 1, seed=seed)
    data.setup()
    return data.train_x.double(), data.train_y.double()


def linearised_loss(kernel: Tensor, residual: Tensor, lr: float, steps: int) -> Tensor:
    """Relative loss ‖r_t‖²/‖r_0‖² = Σ_i (1 − ηλ_i)^{2t} c_i² / Σ_i c_i², c_i = ⟨v_i, r_0⟩, for t = 0 … steps: what
    GD with step η = ``lr`` on ½‖r‖² gives the model linearised at K₀ = ``kernel`` (eigenpairs (λ_i, v_i))."""
    eigenvalues, vectors = torch.linalg.eigh(kernel)
    weights = (vectors.T @ residual.reshape(-1)) ** 2
    decay = (1 - lr * eigenvalues) ** 2
    t = torch.arange(steps + 1, dtype=kernel.dtype)[:, None]
    return (weights * decay[None, :] ** t).sum(1) / weights.sum()


def steps_to_loss(curve: list[float], threshold: float) -> int | None:
    """The first step t with relative loss ``curve[t]`` ≤ ``threshold``, or None."""
    return next((t for t, value in enumerate(curve) if value <= threshold), None)


def train(net: CoordMLP, x: Tensor, y: Tensor, optimizer: str, steps: int, lr: float) -> list[float]:
    """Full-batch training of ``net`` (in x's dtype) on ½‖f(x) − y‖²; the relative loss at every step (0 = init).

    Stops early once the relative loss is below 1e-6 (every threshold is then reached) or not finite.
    """
    params = list(net.parameters())
    opt = torch.optim.SGD(params, lr=lr) if optimizer == "gd" else torch.optim.Adam(params, lr=lr)
    curve, start = [], None
    for _ in range(steps + 1):
        opt.zero_grad(set_to_none=True)
        loss = 0.5 * ((net(x) - y) ** 2).sum()
        start = loss.item() if start is None else start
        curve.append(loss.item() / start)
        if curve[-1] < 1e-6 or not math.isfinite(curve[-1]) or len(curve) > steps:
            break
        loss.backward()
        opt.step()
    return curve


def network(job: dict, in_features: int) -> CoordMLP:
    """The job's network, float64, its weights drawn under ``torch.manual_seed(seed)``."""
    kind, parameters = job["activation_config"]
    torch.manual_seed(job["seed"])
    return CoordMLP(in_features, 1, [job["width"]], activation=get_activation(kind, **parameters)).double()


def results(job: dict, kernel: Tensor, spec0: Spectrum, residual0: Tensor, lr: float, curve: list[float]) -> dict:
    """The job's results from K₀ and its spectrum, the residual at init, the learning rate and the training curve."""
    predicted = linearised_loss(kernel, residual0, lr, len(curve) - 1).tolist() if job["optimizer"] == "gd" else []
    out = {"width_ratio": job["width"] / job["N"], "lr": lr, "lambda_min_K0": spec0.lambda_min,
           "lambda_max_K0": spec0.lambda_max, "kappa_K0": spec0.condition_number,
           "lambda_min_reliable": int(spec0.lambda_min_reliable), "steps_run": len(curve) - 1, "final_loss": curve[-1]}
    out |= {f"steps_to_{threshold:g}": steps_to_loss(curve, threshold) for threshold in (1e-2, 1e-4)}
    return out | {"curve": curve, "predicted": predicted}


def learning_rate(job: dict, spec0: Spectrum) -> float:
    """η = 1/λ_max(K₀) for GD, Adam's fixed rate otherwise."""
    return 1.0 / spec0.lambda_max if job["optimizer"] == "gd" else job["adam_lr"]


def run(job: dict) -> dict:
    """One run: K₀'s spectrum, the training curve, the linearised prediction (GD; [] for Adam), the thresholds."""
    x, y = memorization_data(job["N"], job["inputs"], job["dim"], job["seed"])
    net = network(job, x.shape[1])
    kernel = empirical_ntk(net, x, mode="full")
    spec0 = spectrum(kernel)
    lr = learning_rate(job, spec0)
    with torch.no_grad():
        residual0 = net(x) - y
    return results(job, kernel, spec0, residual0, lr, train(net, x, y, job["optimizer"], job["step_cap"], lr))


def group(job: dict) -> str:
    """Jobs that train as one ensemble: one inputs, activation class, width and optimiser (their activation
    settings and seeds differ)."""
    kind, parameters = job["activation_config"]
    family = type(get_activation(kind, **parameters)).__name__
    return json.dumps([job["inputs"], family, job["width"], job["optimizer"], job["N"], job["dim"], job["step_cap"]])


def run_group(jobs: list[dict]) -> list[dict]:
    """``run`` for every job at once: one ``CoordMLPEnsemble`` of their networks (each built as ``run`` builds it),
    every member's K₀ in one batched call, trained by ``train_members``. A group of one is its single run."""
    if len(jobs) == 1:
        return [run(jobs[0])]
    data = [memorization_data(job["N"], job["inputs"], job["dim"], job["seed"]) for job in jobs]
    xs, y = torch.stack([x for x, _ in data]), torch.stack([y for _, y in data])
    x = xs[0] if all(torch.equal(xs[0], other) for other in xs[1:]) else xs
    ensemble = CoordMLPEnsemble([network(job, xs.shape[-1]) for job in jobs])
    kernels = empirical_ntk(ensemble, x, mode="full")
    spectra = [spectrum(kernel) for kernel in kernels]
    lrs = [learning_rate(job, spec0) for job, spec0 in zip(jobs, spectra)]
    with torch.no_grad():
        residuals = ensemble(x) - y
    curves = train_members(ensemble, x, y, jobs[0]["optimizer"], jobs[0]["step_cap"], lrs)
    return [results(*member) for member in zip(jobs, kernels, spectra, residuals, lrs, curves)]


def train_members(ensemble: CoordMLPEnsemble, x: Tensor, y: Tensor, optimizer: str, steps: int,
                  lrs: list[float]) -> list[list[float]]:
    """``train`` for every member at once (y: (M, N, 1)), each with its own learning rate: a member stops where its
    own run would (relative loss below 1e-6 or not finite, or the step cap), the others go on."""
    params = list(ensemble.parameters())
    opt = MemberSGD(params, lrs) if optimizer == "gd" else MemberAdam(params, lrs)
    curves: list[list[float]] = [[] for _ in lrs]
    training = list(range(len(lrs)))  # only these are computed: the others' runs have ended
    start = None
    for _ in range(steps + 1):
        opt.zero_grad(set_to_none=True)
        losses = 0.5 * ((ensemble(x, training) - y[training]) ** 2).flatten(1).sum(1)
        values = losses.tolist()
        start = values if start is None else start
        ended = []
        for i, m in enumerate(training):
            curves[m].append(values[i] / start[m])
            if curves[m][-1] < 1e-6 or not math.isfinite(curves[m][-1]) or len(curves[m]) > steps:
                ended.append(i)
        if len(ended) == len(training):
            break
        keep = torch.tensor([i not in ended for i in range(len(training))])
        torch.where(keep, losses, 0.0).sum().backward()
        training = [m for i, m in enumerate(training) if i not in ended]
        opt.step()  # a finished member's parameters are never read again
    return curves


def linearisation_error(record: dict, steps: int = 20, floor: float = 1e-3) -> float | None:
    """max_t |L_t − L̂_t| / L̂_t over the first ``steps`` GD steps while the actual relative loss L_t is above
    ``floor``, L̂_t the linearised prediction; None for Adam (no prediction)."""
    if not record["predicted"]:
        return None
    pairs = [(a, p) for a, p in zip(record["curve"][:steps + 1], record["predicted"][:steps + 1]) if a > floor]
    return max(abs(a - p) / p for a, p in pairs) if pairs else 0.0


def thresholds(records: list[dict]) -> list[list]:
    """Per (inputs, optimizer, activation): the smallest width/N that reached each loss threshold."""
    columns = [k for k in records[0] if k.startswith("steps_to_")]
    out = []
    for key in sorted({(r["inputs"], r["optimizer"], r["activation"]) for r in records}):
        mine = [r for r in records if (r["inputs"], r["optimizer"], r["activation"]) == key]
        row = list(key)
        for column in columns:
            reached = [r["width_ratio"] for r in mine if r[column] is not None]
            row.append(f"{min(reached):g}" if reached else "none")
        out.append(row)
    return out


def rank_correlations(records: list[dict]) -> list[list]:
    """Spearman correlation of κ(K₀) with the steps to 1e-2, per (inputs, optimizer); runs that never got there
    count as the step cap + 1."""
    from scipy.stats import spearmanr

    out = []
    for inp, opt in sorted({(r["inputs"], r["optimizer"]) for r in records}):
        mine = [r for r in records if (r["inputs"], r["optimizer"]) == (inp, opt)]
        reached = [r["steps_to_0.01"] if r["steps_to_0.01"] is not None else r["step_cap"] + 1 for r in mine]
        rho, p = spearmanr([r["kappa_K0"] for r in mine], reached)
        out.append([inp, opt, len(mine), float(rho), float(p)])
    return out


def _draw_panels(axes, records: list[dict], inp: str, names: list[str]) -> None:
    """``inp``'s two panels: GD curves at the widest width (actual, linearised) and steps to 1e-2 against width/N."""
    widest = max(r["width"] for r in records)
    ax = axes[0]
    for i, name in enumerate(names):
        for r in records:
            if (r["inputs"], r["activation"], r["width"], r["optimizer"], r["seed"]) == (inp, name, widest, "gd", 0):
                ax.plot(r["curve"], color=f"C{i}", lw=1.2)
                ax.plot(r["predicted"], color=f"C{i}", lw=1, ls=":")
    ax.set_xscale("symlog", linthresh=1)
    ax.set(yscale="log", xlabel="GD step", ylabel="relative loss", xlim=(0, None), ylim=(1e-6, 2),
           title=f"{inp} inputs: GD at width m = {widest}")
    ax = axes[1]
    cap = max(r["steps_run"] for r in records) + 1
    for i, name in enumerate(names):
        for opt, ls in (("gd", "-"), ("adam", "--")):
            mine = sorted((r for r in records if (r["inputs"], r["activation"], r["optimizer"], r["seed"]) ==
                           (inp, name, opt, 0)), key=lambda r: r["width"])
            ax.plot([r["width_ratio"] for r in mine],
                    [r["steps_to_0.01"] if r["steps_to_0.01"] is not None else cap for r in mine],
                    marker="o", ms=3, ls=ls, color=f"C{i}")
    ax.set(xscale="log", yscale="log", xlabel="width / N", ylabel="steps to relative loss 1e-2 (top = never)",
           title=f"{inp} inputs: steps to 1e-2")
    ticks_at(ax.xaxis, sorted({r["width_ratio"] for r in records}))
    ax.grid(alpha=0.3, which="both")


def figure(records: list[dict]) -> Figure:
    """Top: relative loss against step at the widest width, GD actual (solid) and linearised at K₀ (dotted).
    Bottom: steps to relative loss 1e-2 against width/N (GD solid, Adam dashed; the cap drawn as the top).
    Colour is the activation; one legend below the panels names the colours and the line styles."""
    inputs = sorted({r["inputs"] for r in records})
    names = list(dict.fromkeys(r["activation"] for r in records))
    fig = Figure(figsize=(6 * len(inputs), 9.5), layout="constrained")
    axes = fig.subplots(2, len(inputs), squeeze=False)
    for col, inp in enumerate(inputs):
        _draw_panels(axes[:, col], records, inp, names)
    handles = [Line2D([], [], color=f"C{i}", lw=2, label=name) for i, name in enumerate(names)]
    handles += [Line2D([], [], color="k", lw=1.2, label="GD, η = 1/λ_max(K₀)"),
                Line2D([], [], color="k", lw=1, ls=":", label="GD linearised at K₀ (top)"),
                Line2D([], [], color="k", lw=1, ls="--", marker="o", ms=3,
                       label=f"Adam, lr {records[0]['adam_lr']:g} (bottom)")]
    fig.legend(handles=handles, loc="outside lower center", ncol=math.ceil(len(handles) / 2), fontsize=9)
    fig.suptitle(f"Memorising N = {records[0]['N']} random targets, one hidden layer")
    return fig


def report(records: list[dict]) -> tuple[Figure, str]:
    """The figure and summary.md: memorisation thresholds, κ–speed rank correlations, the linearisation error at
    the widest width, and κ(K₀) / steps to 1e-4 per width (seed 0)."""
    num_points, steps, dim = records[0]["N"], records[0]["step_cap"], records[0]["dim"]
    widths = sorted({r["width"] for r in records})
    table = []
    for key in sorted({(r["inputs"], r["optimizer"], r["activation"]) for r in records}):
        mine = {r["width"]: r for r in records
                if (r["inputs"], r["optimizer"], r["activation"]) == key and r["seed"] == 0}
        table.append(list(key) + [f"{mine[w]['kappa_K0']:.3g} / {mine[w]['steps_to_0.0001'] or '—'}" if w in mine
                                  else "" for w in widths])
    linear = [[r["inputs"], r["activation"], linearisation_error(r)] for r in records
              if r["width"] == widths[-1] and r["optimizer"] == "gd" and r["seed"] == 0]
    return figure(records), "\n".join([
        "# Memorising random targets: conditioning of the NTK at init and speed",
        "",
        f"N = {num_points} points, targets N(0, 1); Gaussian inputs in R^{dim} or a pixel grid in [−1, 1]²; one hidden "
        f"layer of width m; full batch, at most {steps} steps; GD with η = 1/λ_max(K₀) on ½‖f − y‖², Adam lr 1e-3"
        + ("; the networks of one activation family, width and optimiser trained as one ensemble."
           if any(r.get("engine") == "ensemble" for r in records) else "."),
        "",
        "Smallest width/N that reached each relative loss within the step cap (the memorisation threshold):",
        "",
        markdown_table(["inputs", "optimizer", "activation", "loss ≤ 1e-2", "loss ≤ 1e-4"], thresholds(records)),
        "",
        "Spearman rank correlation of κ(K₀) with the steps to 1e-2:",
        "",
        markdown_table(["inputs", "optimizer", "runs", "ρ", "p-value"], rank_correlations(records)),
        "",
        f"Linearised prediction (from K₀) against actual GD at width {widths[-1]}: largest relative error over the "
        "first 20 steps while the loss is above 1e-3:",
        "",
        markdown_table(["inputs", "activation", "relative error"], linear),
        "",
        f"κ(K₀) / steps to 1e-4 (— : not within the cap), seed 0. κ = 1/(N·eps) = "
        f"{1 / (num_points * 2.220446049250313e-16):.3g} means λ_min(K₀) lies at the float64 floor: the kernel is "
        "singular to working precision and κ only a lower bound.",
        "",
        markdown_table(["inputs", "optimizer", "activation"] + [f"m = {w}" for w in widths], table),
    ])


def tables(records: list[dict]) -> dict[str, list[dict]]:
    """runs.csv: one row per run, its settings and scalar results (the learning rate next to the optimiser);
    curves.csv: one row per (run, step), the actual relative loss and, for GD, the linearised one."""
    first = ("activation", "inputs", "N", "width", "width_ratio", "optimizer", "lr")
    runs = [{k: r[k] for k in first} | {k: v for k, v in r.items()
                                        if k not in ("activation_config", "curve", "predicted")} for r in records]
    named = ("activation", "inputs", "N", "width", "optimizer", "seed", "step_cap", "dim", "adam_lr")
    curves = [{k: r[k] for k in named} | {"step": t, "relative_loss": loss,
                                          "linearised": r["predicted"][t] if r["predicted"] else ""}
              for r in records for t, loss in enumerate(r["curve"])]
    return {"runs": runs, "curves": curves}
