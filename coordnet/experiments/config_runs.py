"""Fitting a shipped YAML config from Python, as ``coordnet fit --config`` would, and timing it."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from pytorch_lightning import Trainer

from coordnet.cli import run_cli

# inside the package, so an installed coordnet has them; configs/ in a checkout links here
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def fit_config(config: str | Path, overrides: list[str] = ()) -> tuple[Trainer, float]:
    """Fit ``config`` with command-line style ``overrides`` (e.g. ``["--trainer.max_steps", "500"]``).

    Returns the finished Trainer (``trainer.log_dir`` is the run directory) and the wall time of
    ``trainer.fit`` in seconds (parsing and building the model and data are not counted; the device is
    synchronised at the end).
    """
    config = Path(config)
    if not config.is_file():
        raise FileNotFoundError(f"config {str(config)!r}: no such file (shipped configs live in {CONFIG_DIR})")
    cli = run_cli(["--config", str(config), *overrides], run=False)
    start = time.perf_counter()
    cli.trainer.fit(cli.model, cli.datamodule)
    if cli.trainer.strategy.root_device.type == "cuda":
        torch.cuda.synchronize()
    return cli.trainer, time.perf_counter() - start
