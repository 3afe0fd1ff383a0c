"""``RunSummary``: a run's hyper-parameters and final metrics in TensorBoard's HParams tab, and one closing line.

At the start of a fit it writes the HParams plugin's experiment and session records into the run's events: the
model's and data module's settings (``model/…`` and ``data/…``; a class config as ``Sine(omega0=30.0)``) and the
metric tags the tab shows. When training ends it logs those metrics at the last step, measured on the final
parameters: ``final/train_psnr`` and ``final/test_psnr`` (the whole training and test split, not the last batch),
and, when an ``NTKSpectrumCallback`` ran, ``final/lambda_min``, ``final/kappa_init`` and ``final/kappa_end`` of its
first and last measurement. With ``verbose`` it prints them in one line with the run directory and the
``tensorboard`` command.
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path
from typing import Any, Mapping

from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.loggers import TensorBoardLogger
from torch.utils.tensorboard.summary import hparams

from coordnet.data.base import CoordDataModule
from coordnet.training.metrics import prediction_psnr
from coordnet.training.ntk_callback import NTKSpectrumCallback
from coordnet.training.runs import show_setting

PSNR_TAGS = ("final/train_psnr", "final/test_psnr")
NTK_TAGS = ("final/lambda_min", "final/kappa_init", "final/kappa_end")


def hparam_values(model: Mapping[str, Any], data: Mapping[str, Any] | None = None,
                  data_class: str | None = None) -> dict[str, Any]:
    """Model and data settings as the HParams tab takes them (``model/…``, ``data/…``): numbers, strings and booleans,
    a class config as ``Sine(omega0=30.0)``; keys starting with ``_`` left out."""
    values = {}
    for prefix, part in (("model", model), ("data", data or {})):
        for key, value in part.items():
            if key.startswith("_"):
                continue
            values[f"{prefix}/{key}"] = value if isinstance(value, (bool, int, float, str)) else show_setting(value)
    if data_class is not None:
        values["data/class"] = data_class
    return values


def write_hparams(writer, values: dict[str, Any], extra_tags: tuple[str, ...] = ()) -> None:
    """The HParams plugin's experiment and session records of a run with these settings into a ``SummaryWriter``'s
    events, with the metric tags ``PSNR_TAGS``, ``NTK_TAGS`` and ``extra_tags``. Every run lists every tag: the tab
    takes its columns from one run's record, so a run without the NTK callback would otherwise hide the κ columns of
    all the others."""
    file_writer = writer._get_file_writer()
    for record in hparams(values, {tag: math.nan for tag in PSNR_TAGS + NTK_TAGS + extra_tags}):
        file_writer.add_summary(record)


def _is_ensemble(pl_module: LightningModule) -> bool:
    """An ``EnsembleModule``, whose members write their own records (``EnsembleRuns``)."""
    return hasattr(pl_module, "num_members")


def _ntk_callback(trainer: Trainer) -> NTKSpectrumCallback | None:
    return next((c for c in trainer.callbacks if isinstance(c, NTKSpectrumCallback)), None)


class RunSummary(Callback):
    """Write the run's HParams record at fit start and its final metrics at the end (see the module docstring).

    Args:
        verbose: print the closing line (``coordnet fit`` does; ``make_trainer``'s default is quiet).
    """

    def __init__(self, verbose: bool = True) -> None:
        self.verbose = verbose
        self.final: dict[str, float] = {}
        self.run_dir: str | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        # trainer.log_dir is a collective under multi-process training: every process must ask, so here
        self.run_dir = trainer.log_dir if trainer.logger is not None else None

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        logger = trainer.logger
        if _is_ensemble(pl_module) or not trainer.is_global_zero or not isinstance(logger, TensorBoardLogger):
            return
        data = trainer.datamodule
        write_hparams(logger.experiment, hparam_values(pl_module.hparams, data.hparams if data is not None else None,
                                                       type(data).__name__ if data is not None else None))

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if _is_ensemble(pl_module) or not trainer.is_global_zero:
            return
        data = trainer.datamodule
        if isinstance(data, CoordDataModule):
            for tag, (x, y) in zip(PSNR_TAGS, ((data.train_x, data.train_y), (data.test_x, data.test_y))):
                if x is not None:
                    self.final[tag] = prediction_psnr(pl_module, x, y, data.data_range)
        ntk = _ntk_callback(trainer)
        if ntk is not None and ntk.history:
            first, last = ntk.history[0], ntk.history[-1]
            self.final |= {"final/lambda_min": last["lambda_min"], "final/kappa_init": first["condition_number"],
                           "final/kappa_end": last["condition_number"]}
        for logger in trainer.loggers:
            logger.log_metrics(self.final, step=trainer.global_step)
        if self.verbose:
            print(self.line(trainer, ntk), flush=True)

    def line(self, trainer: Trainer, ntk: NTKSpectrumCallback | None) -> str:
        """``coordnet: done at step 400: train PSNR 33.97 dB, test …, κ 4.8e6 → 247 (NTK on 1024 points); run: …``"""
        parts = [f"{name} PSNR {self.final[tag]:.2f} dB" for name, tag in zip(("train", "test"), PSNR_TAGS)
                 if tag in self.final]
        if "final/kappa_end" in self.final:
            bound = lambda row: "≥ " if row["lambda_min"] <= row["floor"] else ""  # noqa: E731  κ only bounded
            first, last = ntk.history[0], ntk.history[-1]
            parts.append(f"κ {bound(first)}{first['condition_number']:.3g} → {bound(last)}{last['condition_number']:.3g} "
                         f"(NTK on {ntk.probe_x.shape[0]} points)")
        text = f"coordnet: done at step {trainer.global_step}: " + ", ".join(parts)
        if self.run_dir:
            text += f"; run: {self.run_dir}; view: tensorboard --logdir {shlex.quote(str(Path(self.run_dir).parent))}"
        return text
