"""Member-steps per second: M networks trained as one ``EnsembleModule`` against M single ``CoordNetModule`` fits,
both through coordnet's Trainer (``make_trainer``: logging every 50 steps, no checkpoints, validation or
reconstructions), on the same image and networks (``scripts/bench_ensemble.py``).

The single path's rate does not depend on M (its fits run one after another), so it is measured once per size on
``SINGLE_FITS`` fits, alternating with the ensembles so that both see the same machine load. Each fit's time is the
wall time of ``trainer.fit`` (device synchronised), everything included: building the Trainer is not.
"""

from __future__ import annotations

import tempfile
import time

import torch
from pytorch_lightning import seed_everything

from coordnet.data import ImageDataModule
from coordnet.data.ensemble import EnsembleDataModule
from coordnet.training import CoordNetModule, make_trainer
from coordnet.training.ensemble import EnsembleModule

SINGLE_FITS = 4
QUIET = {"enable_progress_bar": False, "enable_checkpointing": False, "val_check_interval": 10**9}


def _timed_fit(module, data, steps: int, save_dir: str) -> float:
    trainer = make_trainer(save_dir, "bench", max_steps=steps, **QUIET)
    start = time.perf_counter()
    trainer.fit(module, data)
    if trainer.strategy.root_device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def network(resolution: int, width: int) -> dict:
    """SIREN 3 × width on camera at resolution², Adam lr 1e-4 (the shipped camera_sine settings)."""
    return {"in_features": 2, "out_features": 1, "hidden": width, "depth": 3, "lr": 1e-4, "init": "siren",
            "reconstruction_every_n_steps": None}


def ensemble_rate(resolution: int, width: int, members: int, steps: int, save_dir: str) -> float:
    """Member-steps per second of one ensemble of ``members`` members (seeds 0 … M − 1)."""
    data = {"class_path": "coordnet.data.ImageDataModule", "init_args": {"image": "camera", "resolution": resolution}}
    module = EnsembleModule([network(resolution, width)] * members, list(range(members)))
    return members * steps / _timed_fit(module, EnsembleDataModule([data] * members), steps, save_dir)


def single_rate(resolution: int, width: int, steps: int, save_dir: str, fits: int = SINGLE_FITS) -> float:
    """Member-steps per second of ``fits`` single fits, one after another."""
    seconds = 0.0
    for seed in range(fits):
        seed_everything(seed, verbose=False)
        module = CoordNetModule(**network(resolution, width))
        seconds += _timed_fit(module, ImageDataModule("camera", resolution), steps, save_dir)
    return fits * steps / seconds


def compare(sizes: list[tuple[int, int, int]], member_counts: list[int]) -> list[dict]:
    """One row per (size, M): the ensemble's and the single path's member-steps per second and their ratio.
    ``sizes``: (resolution, width, steps)."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-ensemble-") as save_dir:
        for resolution, width, steps in sizes:
            device = "cuda" if torch.cuda.is_available() else "cpu"
            single = []
            for members in member_counts:
                single.append(single_rate(resolution, width, steps, save_dir, fits=1))  # alternating, 1 fit each
                ensemble = ensemble_rate(resolution, width, members, steps, save_dir)
                rows.append({"resolution": resolution, "width": width, "members": members, "steps": steps,
                             "device": device, "ensemble": ensemble})
            rate = sorted(single)[len(single) // 2]
            for row in rows[-len(member_counts):]:
                row |= {"single": rate, "ratio": row["ensemble"] / rate}
    return rows
