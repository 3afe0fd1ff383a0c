"""Side-by-side timings: the Lightning path against a plain loop (``scripts/bench_train.py``), and a
config with and without its NTK callback (``scripts/bench_callback.py``).

The two training loops run interleaved, step by step, in one process: after every step the Trainer takes,
a callback runs one step of a bare loop (zero_grad, forward, MSE, backward, Adam step) on its own copy of
the same ``CoordNetModule`` (same initial weights and output offset) with the same resident data and Adam
settings. Alternating every few milliseconds puts both loops under the same machine load, which on a shared
2-core VM drifts by ±25% over seconds — more than the difference being measured.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from functools import partial
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


class InterleavedPlainLoop(Callback):
    """Times the Trainer's steps and, between them, the steps of a bare PyTorch loop on a copy of the module.

    A Lightning step is the wall time from the end of this callback's ``on_train_batch_end`` to its next
    call: everything the Trainer does per step (fetching the batch, hooks, forward, backward, Adam, logging,
    validation if there is any). A plain step is timed inside the hook. The device is synchronised at every
    timestamp, so on a GPU both are latencies without overlap of Python and kernels. Steps up to ``warmup``
    are not recorded.
    ``lightning_seconds`` and ``plain_seconds`` hold one entry per recorded step.
    """

    def __init__(self, warmup: int = 10) -> None:
        self.warmup = warmup
        self.lightning_seconds: list[float] = []
        self.plain_seconds: list[float] = []

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.model = copy.deepcopy(pl_module.model)
        self.offset = pl_module.output_offset.clone()  # set from the data in on_fit_start
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=pl_module.hparams.lr)
        self.x, self.y = trainer.datamodule.train_x, trainer.datamodule.train_y
        self.device, self.resumed_at = self.x.device, None

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int) -> None:
        _sync(self.device)
        now = time.perf_counter()
        record = trainer.global_step > self.warmup
        if record:
            self.lightning_seconds.append(now - self.resumed_at)
        self.optimizer.zero_grad(set_to_none=True)
        F.mse_loss(self.model(self.x) + self.offset, self.y).backward()
        self.optimizer.step()
        _sync(self.device)
        self.resumed_at = time.perf_counter()
        if record:
            self.plain_seconds.append(self.resumed_at - now)


def interleaved_step_times(resolution: int, width: int, steps: int, warmup: int = 10, accelerator: str = "auto",
                           save_dir: str = "runs/bench") -> tuple[InterleavedPlainLoop, str]:
    """``CoordNetModule`` (3 hidden sine layers of ``width``, SIREN init, Adam lr 1e-4) fitting camera at
    ``resolution``² full batch for ``steps`` steps under ``make_trainer`` (its defaults: TensorBoard every 50
    steps; camera's memorize protocol has no test split to validate on), with the plain loop interleaved.
    Returns the timing callback and the device."""
    dm = ImageDataModule("camera", resolution)
    timer = InterleavedPlainLoop(warmup)
    trainer = make_trainer(save_dir, "bench_train", max_steps=steps, callbacks=[timer], enable_progress_bar=False,
                           enable_checkpointing=False, accelerator=accelerator)
    torch.manual_seed(0)
    module = CoordNetModule(dm.in_features, dm.out_features, width, 3, "sine", "siren", lr=1e-4,
                            reconstruction_every_n_steps=None)
    trainer.fit(module, dm)
    return timer, str(trainer.strategy.root_device)


def compare_training_loops(resolution: int, width: int, steps: int, repeats: int = 5,
                           accelerator: str = "auto") -> dict[str, float | str]:
    """``repeats`` interleaved runs (``interleaved_step_times``).

    Per run, the ratio is total Lightning time over total plain time across the recorded steps, so the
    periodic work (logging, validation) counts. Returns the median per-step ms of each loop over all runs,
    and the median, smallest and largest of the per-run ratios.
    """
    lightning, plain, ratios, device = [], [], [], "cpu"
    for _ in range(repeats):
        timer, device = interleaved_step_times(resolution, width, steps, accelerator=accelerator)
        lightning += timer.lightning_seconds
        plain += timer.plain_seconds
        ratios.append(sum(timer.lightning_seconds) / sum(timer.plain_seconds))
    ratios.sort()
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
    from coordnet.experiments import convergence
    from coordnet.experiments.study import record
    from coordnet.experiments.sweeps import run_sweep

    if Path(out_dir).exists() and any(Path(out_dir).iterdir()):
        raise ValueError(f"sweep_speedup: {out_dir} is not empty; its finished runs would be skipped, not timed")
    times, tables = [], []
    for name, count in (("sequential", 1), ("parallel", workers)):
        mine = [job | {"save_dir": f"{out_dir}/{name}/runs"} for job in jobs]
        start = time.perf_counter()
        tables.append(run_sweep(mine, partial(record, convergence.run), f"{out_dir}/{name}/records.jsonl",
                                sorted(mine[0]), count, desc=name))
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
