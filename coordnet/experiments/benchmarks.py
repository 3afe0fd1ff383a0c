"""Side-by-side timings: the Lightning path against a plain loop (``scripts/bench_train.py``), and a
config with and without its NTK callback (``scripts/bench_callback.py``).

Both training loops train the same ``CoordMLP`` (same seed, so the same initial weights) on the same
resident image tensors with the same Adam settings, full batch, in the same order (zero_grad,
forward, backward, step). Time per step is the wall time
from the end of step ``warmup`` to the end of the last step, divided by the steps in between,
with the device synchronised at both ends.
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from pytorch_lightning import Callback, LightningModule, Trainer

from coordnet.data import ImageDataModule
from coordnet.experiments.config_runs import fit_config
from coordnet.training import CoordNetModule, NTKSpectrumCallback, make_trainer


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _StepClock(Callback):
    """Timestamps the end of step ``warmup`` and the end of training."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.end = warmup, None, None

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int) -> None:
        if trainer.global_step == self.warmup:
            _sync(pl_module.device)
            self.start = time.perf_counter()

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        _sync(pl_module.device)
        self.end = time.perf_counter()


def _module(dm: ImageDataModule, width: int, seed: int) -> CoordNetModule:
    torch.manual_seed(seed)
    return CoordNetModule(dm.in_features, dm.out_features, width, 3, "sine", "siren", lr=1e-4,
                          reconstruction_every_n_steps=None)


def lightning_step_time(resolution: int, width: int, steps: int, warmup: int = 10, accelerator: str = "auto",
                        save_dir: str = "runs/bench") -> tuple[float, str]:
    """Seconds per step of ``CoordNetModule`` under ``make_trainer`` (its defaults: TensorBoard every 50 steps)."""
    dm = ImageDataModule("camera", resolution)
    clock = _StepClock(warmup)
    trainer = make_trainer(save_dir, "bench_train", max_steps=steps, callbacks=[clock], enable_progress_bar=False,
                           enable_checkpointing=False, accelerator=accelerator)
    trainer.fit(_module(dm, width, 0), dm)
    return (clock.end - clock.start) / (steps - warmup), str(trainer.strategy.root_device)


def plain_step_time(resolution: int, width: int, steps: int, warmup: int = 10, device: str = "cpu") -> float:
    """Seconds per step of a bare PyTorch loop (forward, MSE, backward, Adam) on the same model and data."""
    dm = ImageDataModule("camera", resolution)
    dm.setup(device=device)
    model = _module(dm, width, 0).to(device)  # the same forward, output offset included
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x, y = dm.train_x, dm.train_y
    for step in range(1, steps + 1):
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        if step == warmup:
            _sync(x.device)
            start = time.perf_counter()
    _sync(x.device)
    return (time.perf_counter() - start) / (steps - warmup)


def compare_training_loops(resolution: int, width: int, steps: int, repeats: int = 5,
                           accelerator: str = "auto") -> dict[str, float | str]:
    """Runs the two loops back to back ``repeats`` times.

    Returns each loop's median ms/step and the median of the per-pair ratios Lightning/plain: a pair
    runs seconds apart, so the ratio cancels most of a shared machine's drift in speed.
    """
    lightning, plain, device = [], [], "cpu"
    for _ in range(repeats):
        seconds, device = lightning_step_time(resolution, width, steps, accelerator=accelerator)
        lightning.append(seconds)
        plain.append(plain_step_time(resolution, width, steps, device=device))
    ratios = sorted(a / b for a, b in zip(lightning, plain))
    return {"resolution": resolution, "width": width, "device": device,
            "plain_ms": 1e3 * statistics.median(plain), "lightning_ms": 1e3 * statistics.median(lightning),
            "ratio": statistics.median(ratios), "ratio_min": ratios[0], "ratio_max": ratios[-1]}


def callback_overhead(config: str, overrides: list[str] = (), repeats: int = 2) -> dict[str, float | str]:
    """Wall time of ``trainer.fit`` for ``config`` with ``--trainer.callbacks=[]`` and as given (its
    ``NTKSpectrumCallback`` on), run back to back ``repeats`` times with the same ``overrides``.

    Returns the median seconds of each, the median of the per-pair ratios with/without, the number of
    NTK measurements per run and the extra seconds per measurement.
    """
    without, with_ntk, measurements, device = [], [], 0, "cpu"
    for _ in range(repeats):
        without.append(fit_config(config, [*overrides, "--trainer.callbacks=[]"])[1])
        trainer, seconds = fit_config(config, overrides)
        with_ntk.append(seconds)
        ntk = [cb for cb in trainer.callbacks if isinstance(cb, NTKSpectrumCallback)]
        if not ntk:
            raise ValueError(f"config {config!r} has no NTKSpectrumCallback under trainer.callbacks")
        measurements, device = len(ntk[0].history), str(trainer.strategy.root_device)
    ratios = sorted(a / b for a, b in zip(with_ntk, without))
    seconds_with, seconds_without = statistics.median(with_ntk), statistics.median(without)
    return {"device": device, "without_s": seconds_without, "with_s": seconds_with,
            "ratio": statistics.median(ratios), "ratio_min": ratios[0], "ratio_max": ratios[-1],
            "measurements": measurements, "per_measurement_s": (seconds_with - seconds_without) / measurements}


# Columns of a convergence run that do not depend on timing: what a parallel sweep must reproduce.
RESULT_COLUMNS = ("final_train_psnr", "final_test_psnr", "steps_to_25dB", "steps_to_30dB", "steps_to_35dB",
                  "lambda_min_0", "kappa_0", "kappa_end")


def sweep_speedup(jobs: list[dict], workers: int, out_dir: str) -> dict[str, float]:
    """The convergence ``jobs`` run twice into fresh logs under ``out_dir``: in this process, then in ``workers``
    processes (``run_sweep``); the wall time of each and how far their results differ (``RESULT_COLUMNS``: the
    largest relative difference of a number, NaN if one side is NaN, and how many steps-to-target or missing
    entries differ)."""
    from coordnet.experiments.convergence import KEY, convergence_run
    from coordnet.experiments.sweeps import run_sweep

    if Path(out_dir).exists() and any(Path(out_dir).iterdir()):
        raise ValueError(f"sweep_speedup: {out_dir} is not empty; its finished runs would be skipped, not timed")
    times, tables = [], []
    for name, count in (("sequential", 1), ("parallel", workers)):
        mine = [job | {"save_dir": f"{out_dir}/{name}/runs"} for job in jobs]
        start = time.perf_counter()
        tables.append(run_sweep(mine, convergence_run, f"{out_dir}/{name}/runs.jsonl", KEY, count, desc=name))
        times.append(time.perf_counter() - start)
    largest, differing = 0.0, 0
    for a, b in zip(*tables):
        for column in RESULT_COLUMNS:
            x, y = a[column], b[column]
            if column.startswith("steps_to") or x is None or y is None:
                differing += x != y
            elif not (x != x and y != y):  # both NaN (no test split) agree
                gap = abs(x - y) / max(abs(x), 1e-300)
                largest = math.nan if gap != gap else max(largest, gap)
    return {"runs": len(jobs), "workers": workers, "sequential_s": times[0], "parallel_s": times[1],
            "speedup": times[0] / times[1], "largest_relative_difference": largest, "steps_to_differing": differing}
