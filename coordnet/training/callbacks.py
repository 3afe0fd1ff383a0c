"""Lightning callbacks for coordinate networks."""

from __future__ import annotations

import math
import time
from pathlib import Path

from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.callbacks import TQDMProgressBar
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only

from coordnet.data.base import CoordDataModule
from coordnet.tables import write_csv
from coordnet.training.metrics import predict, prediction_psnr, psnr


class ProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar, also showing the latest logged ``train/loss`` and ``train/psnr``.

    ``CoordNetModule`` logs them with ``prog_bar=False``: Lightning turns progress-bar metrics into Python
    numbers after every step, which on a GPU waits for the device each step. This bar reads them from
    ``trainer.callback_metrics`` only when it redraws (every ``refresh_rate`` steps).
    """

    def get_metrics(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, int | str | float | dict]:
        metrics = super().get_metrics(trainer, pl_module)
        for key in ("train/loss", "train/psnr"):
            if key in trainer.callback_metrics:
                metrics[key] = trainer.callback_metrics[key].item()
        return metrics


class ReconstructionLogger(Callback):
    """Logs the model's prediction on the data module's whole grid to TensorBoard.

    Every ``every_n_steps`` optimiser steps and at the end of training, it asks the data module to
    draw the prediction (``CoordDataModule.log_reconstruction``: an image, or a figure for signals)
    under the tag ``reconstruction``. Runs on rank zero, in eval mode without gradients; does nothing
    without a ``TensorBoardLogger`` or a ``CoordDataModule``.

    Args:
        every_n_steps: logging period in optimiser steps.
    """

    def __init__(self, every_n_steps: int = 250) -> None:
        if every_n_steps <= 0:
            raise ValueError(f"ReconstructionLogger: every_n_steps must be > 0, got {every_n_steps!r}")
        self.every_n_steps = every_n_steps

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int) -> None:
        if trainer.global_step % self.every_n_steps == 0:
            self._log(trainer, pl_module)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.global_step % self.every_n_steps != 0:
            self._log(trainer, pl_module)

    @rank_zero_only
    def _log(self, trainer: Trainer, pl_module: LightningModule) -> None:
        datamodule = trainer.datamodule
        loggers = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        if not loggers or not isinstance(datamodule, CoordDataModule):
            return
        prediction = predict(pl_module, datamodule.coords)
        datamodule.log_reconstruction(loggers[0].experiment, prediction, trainer.global_step)


class PSNRHistory(Callback):
    """Records how fast a fit converges: train PSNR at every step, test PSNR at every validation, and time.

    Rows (``history``, and ``<run dir>/psnr_history.csv`` at the end of training), one per optimiser step s =
    0 … max_steps − 1 plus one for the final parameters (s = max_steps):
    - ``train_psnr``: PSNR of the batch loss the model had after s steps (the loss step s+1 trained on; the
      whole training set under full-batch training, this process's share of it under DDP). The final row
      evaluates the whole training set.
    - ``test_psnr``: PSNR on the test split after s steps, at the validations the Trainer runs
      (``val_check_interval``) and on the final row; empty for the ``memorize`` protocol.
    - ``seconds``: time spent in the s training steps before it — forward, backward and optimiser step,
      from ``on_train_batch_start`` to this callback's ``on_train_batch_end`` (the device synchronised),
      so logging and the other callbacks' measurements are not counted. Place it first among the callbacks.

    Its rows are saved in checkpoints, so a resumed run's file holds every step once.
    """

    FILE = "psnr_history.csv"

    def __init__(self) -> None:
        self.history: list[dict] = []
        self._test_psnr: dict[int, float] = {}  # step → test PSNR of the parameters after that many steps
        self._seconds = 0.0
        self._start = 0.0
        self.run_dir: str | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.run_dir = trainer.log_dir  # a collective under multi-process training: every process asks

    def state_dict(self) -> dict:
        return {"history": [dict(row) for row in self.history], "test_psnr": dict(self._test_psnr),
                "seconds": self._seconds}

    def load_state_dict(self, state_dict: dict) -> None:
        self.history = [dict(row) for row in state_dict["history"]]
        self._test_psnr, self._seconds = dict(state_dict["test_psnr"]), state_dict["seconds"]

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch, batch_idx: int) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int) -> None:
        value = psnr(outputs["loss"].detach(), pl_module.data_range).item()  # .item() synchronises the device
        self.history.append({"step": trainer.global_step - 1, "train_psnr": value,
                             "seconds": self._seconds})
        self._seconds += time.perf_counter() - self._start

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if "test/psnr" in trainer.callback_metrics:
            self._test_psnr[trainer.global_step] = float(trainer.callback_metrics["test/psnr"])

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        data = trainer.datamodule
        final = {"step": trainer.global_step, "seconds": self._seconds,  # not kept: a resumed run measures that step
                 "train_psnr": prediction_psnr(pl_module, data.train_x, data.train_y, pl_module.data_range)}
        if data.test_x is not None:
            self._test_psnr[trainer.global_step] = prediction_psnr(pl_module, data.test_x, data.test_y,
                                                                   pl_module.data_range)
        rows = [row | {"test_psnr": self._test_psnr.get(row["step"], math.nan)} for row in [*self.history, final]]
        if trainer.is_global_zero and self.run_dir is not None:
            write_csv(Path(self.run_dir) / self.FILE, rows)
