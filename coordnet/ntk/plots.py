"""Figures of NTK spectra: one sorted spectrum with its numerical floor, and histories over training.

Both return a ``matplotlib.figure.Figure`` (no pyplot state, safe in callbacks and headless runs);
``SummaryWriter.add_figure`` or ``Figure.savefig`` renders it.
"""

from __future__ import annotations

from typing import Sequence

import torch
from matplotlib.figure import Figure
from torch import Tensor

LABELS = {
    "lambda_min": "λ_min",
    "lambda_max": "λ_max",
    "condition_number": "condition number κ = λ_max / λ_min",
    "trace": "trace",
    "effective_rank": "effective rank",
    "kernel_distance_init": "kernel distance to step 0",
    "kernel_velocity": "kernel distance per step",
    "target_alignment": "kernel–target alignment",
}
LOG_SCALE = {"lambda_min", "lambda_max", "condition_number", "trace", "kernel_velocity"}


def spectrum_figure(eigenvalues: Tensor, floor: float, title: str = "",
                    reference: Tensor | None = None, reference_label: str = "step 0") -> Figure:
    """Eigenvalues sorted largest first against their index, log scale, with the floor drawn.

    Values below ``floor`` (round-off, possibly negative) are drawn at the floor. ``reference``: a
    second spectrum (e.g. at initialisation), drawn dashed in grey.
    """
    fig = Figure(figsize=(5.5, 3.6))
    ax = fig.subplots()
    clip = max(floor, torch.finfo(torch.float64).tiny)
    if reference is not None:
        ref = reference.detach().double().cpu().flip(0).clamp_min(clip)
        ax.plot(range(1, len(ref) + 1), ref.numpy(), color="0.6", ls="--", lw=1, label=reference_label)
    lam = eigenvalues.detach().double().cpu().flip(0).clamp_min(clip)
    ax.plot(range(1, len(lam) + 1), lam.numpy(), color="C0", lw=1.5, label="now")
    ax.axhline(clip, color="C3", ls=":", lw=1, label="numerical floor n·eps·λ_max")
    ax.set(xscale="log", yscale="log", xlabel="index i (largest first)", ylabel="eigenvalue λ_i", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def draw_kappa_floor(ax, ceiling: float) -> None:
    """The float64 floor of κ, dotted across ``ax``: ``ceiling`` = 1/(n·eps), the κ = λ_max/(n·eps·λ_max) of an n × n
    kernel whose λ_min sits at the numerical floor; a κ drawn there is only a lower bound."""
    ax.axhline(ceiling, color="0.5", ls=":", lw=1, label="float64 floor 1/(n·eps)")


def history_figure(histories: dict[str, dict[str, list[float]]],
                   quantities: Sequence[str] = ("lambda_min", "condition_number"), title: str = "") -> Figure:
    """One panel per quantity, one line per run: ``histories`` maps a run's label to ``read_history``'s columns.

    Where a run's λ_min sat at the numerical floor (its ``floor`` column), the λ_min and condition-number
    points are drawn hollow: there λ_min is only an upper bound and κ a lower bound, 1/(n·eps) (``draw_kappa_floor``).
    """
    fig = Figure(figsize=(5 * len(quantities), 3.8))
    axes = fig.subplots(1, len(quantities), squeeze=False)[0]
    for ax, quantity in zip(axes, quantities):
        any_at_floor = False
        for i, (label, columns) in enumerate(histories.items()):
            if quantity not in columns:
                raise ValueError(f"run {label!r} has no {quantity!r} in its NTK history "
                                 f"(columns: {', '.join(columns)})")
            steps, values = columns["step"], columns[quantity]
            ax.plot(steps, values, marker="o", ms=3, color=f"C{i}", label=label)
            if quantity in ("lambda_min", "condition_number") and "floor" in columns:
                at_floor = [j for j, (lam, floor) in enumerate(zip(columns["lambda_min"], columns["floor"]))
                            if lam <= floor]
                ax.plot([steps[j] for j in at_floor], [values[j] for j in at_floor], "o", ms=6, mfc="white",
                        color=f"C{i}")
                any_at_floor = any_at_floor or bool(at_floor)
        if any_at_floor:
            bound = "upper" if quantity == "lambda_min" else "lower"
            ax.plot([], [], "o", ms=6, mfc="white", color="0.3", label=f"hollow: λ_min at the float64 floor "
                                                                         f"({bound} bound)")
            if quantity == "condition_number":
                columns = next(iter(histories.values()))
                draw_kappa_floor(ax, columns["lambda_max"][0] / columns["floor"][0])
        ax.set(xlabel="optimiser step", ylabel=LABELS.get(quantity, quantity),
               yscale="log" if quantity in LOG_SCALE else "linear")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def density_figure(density, title: str = "", bandwidth: float = 0.1) -> Figure:
    """The spectral density of log10 λ (a ``SpectralDensity``, smoothed by ``bandwidth`` decades), with the
    exact top eigenvalues as ticks along the top and the numerical floor dotted."""
    grid = density.log_grid()
    fig = Figure(figsize=(6, 3.8))
    ax = fig.subplots()
    ax.plot((10**grid).numpy(), density.log_density(grid, bandwidth).numpy(), color="C0", lw=1.5)
    for value in density.top.numpy():
        ax.axvline(value, ymin=0.94, ymax=1.0, color="C1", lw=0.8)
    ax.axvline(density.floor, color="C3", ls=":", lw=1, label="numerical floor n·eps·λ_max")
    ax.plot([], [], color="C1", lw=0.8, label=f"{len(density.top)} largest eigenvalues (exact)")
    ax.set(xscale="log", xlabel="eigenvalue λ", ylabel="density of log10 λ", ylim=(0, None),
           title=title or f"NTK spectral density, n = {density.n}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
