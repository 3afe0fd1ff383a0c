"""Where a network leaves the kernel regime: the linearised prediction's test PSNR next to the real one.

Each network fits IMAGE at RESOLUTION² under the ``fourier`` protocol (a quarter of the pixels train, the rest are
held out) with full-batch gradient descent on ½‖f(X) − Y‖² at η = 1/λ_max(Θ₀), in float64, for STEPS steps, the
output offset fixed at the mean training target (as ``center_targets``). ``LinearisedGD`` predicts the same run
from the kernel at step 0: f_k(X*) = f₀(X*) + Θ₀(X*, X) Θ₀⁺ (I − (I − ηΘ₀)^k)(Y − f₀(X)). Every EVAL_EVERY
steps both test PSNRs are recorded. A network in the kernel regime (wide, NTK parametrisation) follows its
prediction; one whose kernel moves while it trains (SIREN) parts from it. One job per (network, seed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from coordnet.data import ImageDataModule
from coordnet.experiments.reporting import markdown_table
from coordnet.models import CoordMLP, Sine
from coordnet.ntk import LinearisedGD
from coordnet.training.metrics import psnr

NAME = "ntk_linearised"
IMAGE = "camera"
RESOLUTION = 32
STEPS = 1000
EVAL_EVERY = 25
SEEDS = 2
WIDE = 2048
TOLERANCE_DB = 0.5
NETWORKS = {  # name → CoordMLP settings (hidden widths filled in by jobs: 2 × WIDE, or SIREN's 3 × 256)
    "relu, NTK parametrisation": {"activation": "relu", "init": "he", "parametrization": "ntk", "bias_std": 0.1,
                                  "wide": True},
    "SIREN ω0 = 30": {"activation": "sine", "init": "siren", "wide": False},
}


def jobs(quick: bool, out: Path) -> list[dict]:
    resolution, steps, every, seeds, wide = (16, 60, 10, 1, 256) if quick else (RESOLUTION, STEPS, EVAL_EVERY,
                                                                                SEEDS, WIDE)
    return [{"network": name, "hidden": [wide, wide] if settings["wide"] else [256, 256, 256], "image": IMAGE,
             "resolution": resolution, "steps": steps, "eval_every": every, "seed": seed}
            for name, settings in NETWORKS.items() for seed in range(seeds)]


def network(job: dict) -> CoordMLP:
    settings = NETWORKS[job["network"]]
    activation = Sine(30.0) if settings["activation"] == "sine" else settings["activation"]
    torch.manual_seed(job["seed"])
    extra = {k: settings[k] for k in ("parametrization", "bias_std") if k in settings}
    return CoordMLP(2, 1, job["hidden"], activation=activation, init=settings["init"], **extra).double()


def run(job: dict) -> dict:
    """The real and the predicted test PSNR every ``eval_every`` steps of gradient descent."""
    data = ImageDataModule(job["image"], job["resolution"], protocol="fourier")
    data.setup()
    x, y = data.train_x.double(), data.train_y.double()
    x_test, y_test = data.test_x.double(), data.test_y.double()
    net = network(job)
    model = WithOffset(net, y.mean(0))
    predictor = LinearisedGD.from_model(model, x, y, x_test)
    eta = 1 / predictor.eigenvalues[-1].item()
    optimizer = torch.optim.SGD(net.parameters(), lr=eta)
    steps, real, predicted = [], [], []
    for step in range(job["steps"] + 1):
        if step % job["eval_every"] == 0:
            with torch.no_grad():
                real_test = model(x_test)
            _, predicted_test = predictor.after_steps(step, eta)
            steps.append(step)
            real.append(psnr(((real_test - y_test) ** 2).mean()).item())
            predicted.append(psnr(((predicted_test - y_test) ** 2).mean()).item())
        if step == job["steps"]:
            break
        optimizer.zero_grad()
        (0.5 * ((model(x) - y) ** 2).sum()).backward()
        optimizer.step()
    return {"eta": eta, "kernel_rank": int(predictor.kept.sum()), "curve_step": steps, "curve_real": real,
            "curve_predicted": predicted}


class WithOffset(torch.nn.Module):
    """f(x) = net(x) + offset, the offset fixed (not a parameter); ``empirical_ntk`` reads the network inside."""

    def __init__(self, net: CoordMLP, offset: torch.Tensor) -> None:
        super().__init__()
        self.net, self.offset = net, offset

    def ntk_model(self) -> CoordMLP:
        return self.net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) + self.offset


def label(record: dict) -> str:
    """The network's name with its hidden widths, e.g. ``relu, NTK parametrisation, 2 × 2048``."""
    return f"{record['network']}, {len(record['hidden'])} × {record['hidden'][0]}"


def parting(record: dict, tolerance: float = TOLERANCE_DB) -> tuple[float, int | None]:
    """(the largest |real − predicted| test PSNR over the curve, the first step where it exceeds ``tolerance``)."""
    gaps = np.abs(np.array(record["curve_real"]) - np.array(record["curve_predicted"]))
    over = np.nonzero(gaps > tolerance)[0]
    return float(gaps.max()), (record["curve_step"][over[0]] if len(over) else None)


def figure(records: list[dict]) -> Figure:
    """Test PSNR against step, real (solid) and linearised at step 0 (dashed), one colour per network, every seed."""
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    for i, name in enumerate(dict.fromkeys(r["network"] for r in records)):
        for j, r in enumerate(r for r in records if r["network"] == name):
            first_seed = j == 0  # one legend entry per network
            ax.plot(r["curve_step"], r["curve_real"], color=f"C{i}", lw=1.2,
                    label=f"{label(r)}: real" if first_seed else None)
            ax.plot(r["curve_step"], r["curve_predicted"], color=f"C{i}", lw=1.2, ls="--",
                    label=f"{label(r)}: linearised at step 0" if first_seed else None)
    first = records[0]
    ax.set(xlabel="gradient-descent step (η = 1/λ_max(Θ₀))", ylabel="test PSNR (dB), held-out pixels",
           title=f"{first['image']} {first['resolution']}², fourier split, real against the kernel's prediction")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def report(records: list[dict]) -> tuple[Figure, str]:
    rows = []
    for r in records:
        largest, step = parting(r)
        rows.append([label(r), r["seed"], r["curve_real"][-1],
                     r["curve_predicted"][-1], largest, "never" if step is None else step])
    first = records[0]
    return figure(records), "\n".join([
        "# Where a network leaves the kernel regime: real and linearised test PSNR",
        "",
        f"{first['image']} {first['resolution']}², fourier protocol, full-batch GD on ½‖f − y‖² at η = 1/λ_max(Θ₀) "
        f"in float64, {first['steps']} steps; the prediction is the model linearised at step 0 (LinearisedGD).",
        "",
        markdown_table(["network", "seed", "final test PSNR, real", "linearised", "largest gap (dB)",
                        f"first step with a gap > {TOLERANCE_DB} dB"], rows),
    ])
