"""Memorisation of random targets across activations, and how well the NTK at init predicts it.

Data: N points with targets y ~ N(0, 1) (``MemorizationDataModule``): Gaussian inputs in R^d, or a √N × √N
pixel grid in [−1, 1]². Network: one hidden layer of width m (m/N ∈ {¼, ½, 1, 2, 8}), biases on (zero at
init, except SIREN's U(±1/√fan_in)), the activation's usual init (He for ReLU and cos, SIREN for sine, Edge of Chaos for the abrelu family).

Training, full batch, on L = ½‖f(X) − y‖² (a sum, so that the kernel is the raw J Jᵀ):
- ``gd``: gradient descent with η = 1/λ_max(K₀), K₀ = J Jᵀ at init. The linearised model predicts the
  residual r_t = Σ_i (1 − ηλ_i)^t ⟨v_i, r_0⟩ v_i from K₀'s eigenpairs (λ_i, v_i), so the predicted relative
  loss is Σ_i (1 − ηλ_i)^{2t} c_i² / Σ_i c_i² with c_i = ⟨v_i, r_0⟩.
- ``adam``: Adam with a fixed learning rate on the same loss.

Each run records the relative loss ‖r_t‖²/‖r_0‖² every step, the steps to reach 1e-2 and 1e-4 (None at the
cap), λ_min(K₀) and κ(K₀) (float64, with the numerical floor of ``coordnet.ntk.spectrum``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from torch import Tensor

from coordnet.data import MemorizationDataModule
from coordnet.experiments.reporting import markdown_table, ticks_at
from coordnet.experiments.sweeps import run_sweep
from coordnet.models import AbsLinear, Activation, CoordMLP, Cos, ReLU, Sine
from coordnet.ntk import empirical_ntk, spectrum

THRESHOLDS = (1e-2, 1e-4)


@dataclass(frozen=True)
class ActivationSpec:
    """A named activation with the init it is used with."""

    name: str
    build: Callable[[], Activation | str]  # picklable (a class or functools.partial), so sweeps can use processes
    init: str


def default_activations() -> list[ActivationSpec]:
    """cos(s·) for s ∈ {1, 5, 30} (He), sine ω0 = 30 (SIREN), ReLU (He), and the (a, b)-ReLU at the EOC with
    a² + b² = 1 and Δ = b² ∈ {¼, ½, ¾, 1} (Δ = 1 is |x|)."""
    specs = [ActivationSpec(f"cos({s:g}·)", partial(Cos, s), "he") for s in (1.0, 5.0, 30.0)]
    specs += [ActivationSpec("sine ω0=30", partial(Sine, 30.0), "siren"), ActivationSpec("relu", ReLU, "he")]
    specs += [ActivationSpec(f"abrelu Δ={d:g}", partial(AbsLinear, math.sqrt(1 - d), math.sqrt(d)), "eoc")
              for d in (0.25, 0.5, 0.75, 1.0)]
    return specs


def memorization_data(num_points: int, inputs: str, dim: int, seed: int) -> tuple[Tensor, Tensor]:
    """(X, y): ``inputs`` = ``gaussian`` (N(0, I_dim)) or ``grid`` (a √N × √N pixel grid), y ~ N(0, 1)."""
    data = MemorizationDataModule(num_points, dim if inputs == "gaussian" else 2, inputs, 1, seed=seed)
    data.setup()
    return data.train_x.double(), data.train_y.double()


def linearised_loss(kernel: Tensor, residual: Tensor, lr: float, steps: int) -> Tensor:
    """Relative loss ‖r_t‖²/‖r_0‖² for t = 0 … steps that GD on ½‖r‖² gives the model linearised at K₀."""
    eigenvalues, vectors = torch.linalg.eigh(kernel)
    weights = (vectors.T @ residual.reshape(-1)) ** 2
    decay = (1 - lr * eigenvalues) ** 2
    t = torch.arange(steps + 1, dtype=kernel.dtype)[:, None]
    return (weights * decay[None, :] ** t).sum(1) / weights.sum()


def steps_to(curve: list[float], threshold: float) -> int | None:
    """The first step at which ``curve`` is at or below ``threshold``, or None."""
    return next((t for t, value in enumerate(curve) if value <= threshold), None)


def train(net: CoordMLP, x: Tensor, y: Tensor, optimizer: str, steps: int, lr: float) -> list[float]:
    """Full-batch training of ``net`` (in x's dtype) on ½‖f(x) − y‖²; the relative loss at every step (0 = init).

    Stops early once the relative loss is below 1e-6 (every threshold is then reached).
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


def memorization_run(spec: ActivationSpec, inputs: str, num_points: int, width: int, optimizer: str,
                     steps: int, dim: int = 16, seed: int = 0, adam_lr: float = 1e-3) -> dict:
    """One run: K₀'s spectrum, the training curve, the linearised prediction (GD) and the thresholds."""
    x, y = memorization_data(num_points, inputs, dim, seed)
    torch.manual_seed(seed)
    net = CoordMLP(x.shape[1], 1, [width], activation=spec.build(), init=spec.init).double()
    kernel = empirical_ntk(net, x, mode="full")
    spec0 = spectrum(kernel)
    lr = 1.0 / spec0.lambda_max if optimizer == "gd" else adam_lr
    with torch.no_grad():
        residual0 = net(x) - y
    curve = train(net, x, y, optimizer, steps, lr)
    predicted = linearised_loss(kernel, residual0, lr, len(curve) - 1).tolist() if optimizer == "gd" else None
    row = {"activation": spec.name, "inputs": inputs, "N": num_points, "width": width, "width_ratio": width / num_points,
           "optimizer": optimizer, "lr": lr, "seed": seed, "step_cap": steps, "dim": dim, "adam_lr": adam_lr, "lambda_min_K0": spec0.lambda_min,
           "lambda_max_K0": spec0.lambda_max, "kappa_K0": spec0.condition_number,
           "lambda_min_reliable": int(spec0.lambda_min_reliable), "steps_run": len(curve) - 1,
           "final_loss": curve[-1]}
    for threshold in THRESHOLDS:
        row[f"steps_to_{threshold:g}"] = steps_to(curve, threshold)
    return row | {"curve": curve, "predicted": predicted}


# -- the sweep -----------------------------------------------------------------------------------------

# Everything a run's result depends on: a resumed sweep with other settings redoes its runs.
KEY = ("activation", "inputs", "N", "width", "optimizer", "seed", "step_cap", "dim", "adam_lr")


def sweep(specs: list[ActivationSpec], inputs: tuple[str, ...], num_points: int, width_ratios: tuple[float, ...],
          optimizers: tuple[str, ...], steps: int, seeds: int, log_path: Path, dim: int = 16, adam_lr: float = 1e-3,
          progress: bool = True, workers: int = 1) -> list[dict]:
    """Every (activation, inputs, width, optimizer, seed) run, appended to ``log_path`` (JSON lines) as it
    finishes; runs already in the log with the same settings (``KEY``) are read back, not redone, so an
    interrupted sweep resumes; ``workers`` processes run them (``coordnet.experiments.sweeps``)."""
    if "grid" in inputs and math.isqrt(num_points) ** 2 != num_points:
        raise ValueError(f"grid inputs need a square number of points, got num_points={num_points}")
    jobs = [{"activation": spec.name, "spec": spec, "inputs": inp, "N": num_points,
             "width": max(1, round(ratio * num_points)), "optimizer": opt, "seed": seed, "step_cap": steps, "dim": dim,
             "adam_lr": adam_lr}
            for inp in inputs for spec in specs for ratio in width_ratios for opt in optimizers for seed in range(seeds)]
    return run_sweep(jobs, memorization_job, log_path, KEY, workers, desc="memorisation", progress=progress)


def memorization_job(job: dict) -> dict:
    """``memorization_run`` for one sweep job (its ``spec`` and settings)."""
    return memorization_run(job["spec"], job["inputs"], job["N"], job["width"], job["optimizer"], job["step_cap"],
                            job["dim"], job["seed"], job["adam_lr"])


def linearisation_error(record: dict, steps: int = 20, floor: float = 1e-3) -> float | None:
    """Largest |actual − predicted| / predicted over the first ``steps`` GD steps while the loss is above ``floor``."""
    if record["predicted"] is None:
        return None
    pairs = [(a, p) for a, p in zip(record["curve"][:steps + 1], record["predicted"][:steps + 1]) if a > floor]
    return max(abs(a - p) / p for a, p in pairs) if pairs else 0.0


def thresholds(records: list[dict]) -> list[list]:
    """Per (inputs, optimizer, activation): the smallest width/N that reached each loss threshold."""
    out = []
    for key in sorted({(r["inputs"], r["optimizer"], r["activation"]) for r in records}):
        mine = sorted((r for r in records if (r["inputs"], r["optimizer"], r["activation"]) == key),
                      key=lambda r: r["width"])
        row = list(key)
        for threshold in THRESHOLDS:
            reached = [r["width_ratio"] for r in mine if r[f"steps_to_{threshold:g}"] is not None]
            row.append(f"{min(reached):g}" if reached else "none")
        out.append(row)
    return out


def rank_correlations(records: list[dict], steps: int) -> list[list]:
    """Spearman correlation of κ(K₀) with the steps to 1e-2 (runs that never got there count as steps + 1)."""
    from scipy.stats import spearmanr

    out = []
    for inp, opt in sorted({(r["inputs"], r["optimizer"]) for r in records}):
        mine = [r for r in records if (r["inputs"], r["optimizer"]) == (inp, opt)]
        reached = [r["steps_to_0.01"] if r["steps_to_0.01"] is not None else steps + 1 for r in mine]
        rho, p = spearmanr([r["kappa_K0"] for r in mine], reached)
        out.append([inp, opt, len(mine), float(rho), float(p)])
    return out


def memorization_figures(records: list[dict], num_points: int) -> Figure:
    """Top: relative loss against step at the widest width, GD actual (solid) and linearised at K₀ (dotted).
    Bottom: steps to relative loss 1e-2 against width/N (GD solid, Adam dashed; the cap drawn as the top).
    Colour is the activation; one legend below the panels names the colours and the line styles."""
    inputs = sorted({r["inputs"] for r in records})
    names = list(dict.fromkeys(r["activation"] for r in records))
    widest = max(r["width"] for r in records)
    fig = Figure(figsize=(6 * len(inputs), 9.5), layout="constrained")
    axes = fig.subplots(2, len(inputs), squeeze=False)
    for col, inp in enumerate(inputs):
        ax = axes[0, col]
        for i, name in enumerate(names):
            for r in records:
                if (r["inputs"], r["activation"], r["width"], r["optimizer"], r["seed"]) == (inp, name, widest, "gd", 0):
                    ax.plot(r["curve"], color=f"C{i}", lw=1.2)
                    ax.plot(r["predicted"], color=f"C{i}", lw=1, ls=":")
        ax.set_xscale("symlog", linthresh=1)
        ax.set(yscale="log", xlabel="GD step", ylabel="relative loss", xlim=(0, None), ylim=(1e-6, 2),
               title=f"{inp} inputs: GD at width m = {widest}")
        ax = axes[1, col]
        cap = max(r["steps_run"] for r in records) + 1
        for i, name in enumerate(names):
            for opt, ls in (("gd", "-"), ("adam", "--")):
                mine = sorted((r for r in records if (r["inputs"], r["activation"], r["optimizer"], r["seed"]) ==
                               (inp, name, opt, 0)), key=lambda r: r["width"])
                ax.plot([r["width_ratio"] for r in mine],
                        [r["steps_to_0.01"] if r["steps_to_0.01"] is not None else cap for r in mine],
                        marker="o", ms=3, ls=ls, color=f"C{i}")
        ratios = sorted({r["width_ratio"] for r in records})
        ax.set(xscale="log", yscale="log", xlabel="width / N", ylabel="steps to relative loss 1e-2 (top = never)",
               title=f"{inp} inputs: steps to 1e-2")
        ticks_at(ax.xaxis, ratios)
        ax.grid(alpha=0.3, which="both")
    adam_lr = records[0]["adam_lr"]
    handles = [Line2D([], [], color=f"C{i}", lw=2, label=name) for i, name in enumerate(names)]
    handles += [Line2D([], [], color="k", lw=1.2, label="GD, η = 1/λ_max(K₀)"),
                Line2D([], [], color="k", lw=1, ls=":", label="GD linearised at K₀ (top)"),
                Line2D([], [], color="k", lw=1, ls="--", marker="o", ms=3, label=f"Adam, lr {adam_lr:g} (bottom)")]
    fig.legend(handles=handles, loc="outside lower center", ncol=math.ceil(len(handles) / 2), fontsize=9)
    fig.suptitle(f"Memorising N = {num_points} random targets, one hidden layer")
    return fig


def memorization_summary(records: list[dict], num_points: int, steps: int, dim: int) -> str:
    widths = sorted({r["width"] for r in records})
    table = []
    for key in sorted({(r["inputs"], r["optimizer"], r["activation"]) for r in records}):
        mine = {r["width"]: r for r in records if (r["inputs"], r["optimizer"], r["activation"]) == key and r["seed"] == 0}
        table.append(list(key) + [f"{mine[w]['kappa_K0']:.3g} / {mine[w]['steps_to_0.0001'] or '—'}" if w in mine
                                  else "" for w in widths])
    linear = [[r["inputs"], r["activation"], linearisation_error(r)] for r in records
              if r["width"] == widths[-1] and r["optimizer"] == "gd" and r["seed"] == 0]
    return "\n".join([
        "# Memorising random targets: conditioning of the NTK at init and speed",
        "",
        f"N = {num_points} points, targets N(0, 1); Gaussian inputs in R^{dim} or a pixel grid in [−1, 1]²; one hidden "
        f"layer of width m; full batch, at most {steps} steps; GD with η = 1/λ_max(K₀) on ½‖f − y‖², Adam lr 1e-3.",
        "",
        "Smallest width/N that reached each relative loss within the step cap (the memorisation threshold):",
        "",
        markdown_table(["inputs", "optimizer", "activation", "loss ≤ 1e-2", "loss ≤ 1e-4"], thresholds(records)),
        "",
        "Spearman rank correlation of κ(K₀) with the steps to 1e-2:",
        "",
        markdown_table(["inputs", "optimizer", "runs", "ρ", "p-value"], rank_correlations(records, steps)),
        "",
        f"Linearised prediction (from K₀) against actual GD at width {widths[-1]}: largest relative error over the "
        "first 20 steps while the loss is above 1e-3:",
        "",
        markdown_table(["inputs", "activation", "relative error"], linear),
        "",
        f"κ(K₀) / steps to 1e-4 (— : not within the cap), seed 0. κ = 1/(N·eps) = {1 / (num_points * 2.220446049250313e-16):.3g} "
        "means λ_min(K₀) lies at the float64 floor: the kernel is singular to working precision and κ only a lower bound.",
        "",
        markdown_table(["inputs", "optimizer", "activation"] + [f"m = {w}" for w in widths], table),
    ])


def curve_rows(records: list[dict]) -> list[dict]:
    """The loss curves in long form: one row per (run, step) with the actual and, for GD, the linearised loss."""
    rows = []
    for r in records:
        for t, loss in enumerate(r["curve"]):
            rows.append({k: r[k] for k in KEY} | {"step": t, "relative_loss": loss,
                                                   "linearised": r["predicted"][t] if r["predicted"] else ""})
    return rows


def run_table(records: list[dict]) -> list[dict]:
    """The records without their curves: one CSV row per run."""
    return [{k: v for k, v in r.items() if k not in ("curve", "predicted")} for r in records]
