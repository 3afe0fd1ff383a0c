"""Lightning callbacks for coordinate networks."""

from __future__ import annotations

from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only

from coordnet.data.base import CoordDataModule
from coordnet.training.module import predict


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
