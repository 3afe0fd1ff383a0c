"""``EnsembleRuns``: every member of an ``EnsembleModule`` as a run of its own, ``<run dir>/<member name>/``.

Each member's directory holds its TensorBoard events and ``psnr_history.csv``, as a single run's would:

- its HParams record at fit start (``model/…`` its settings, ``data/…`` its data's, ``seed``), so TensorBoard's
  HParams tab lists and compares the members; ``final/train_psnr``, ``final/test_psnr`` (whole splits, final
  parameters) when training ends, and ``final/stopped_at`` (−1: never stopped);
- ``train/loss`` and ``train/psnr`` at step s (the batch seen after s optimiser steps) every ``log_every_n_steps``
  steps, ``test/loss`` and ``test/psnr`` at each validation;
- ``reconstruction`` for the ensemble's ``reconstruction_members``, every ``reconstruction_every_n_steps`` steps and
  at the end;
- ``psnr_history.csv``: ``step``, ``train_psnr`` (every step), ``test_psnr`` (at validations), ``seconds`` (the
  ensemble's training time before that step: the wall time of whole steps, the device synchronised where losses
  are read, at log steps).

A member that stops (NaN or infinite loss or update) is reported once, by name and step, with a warning
(``MemberStopped``) and a ``stopped`` text in its run. The history goes into checkpoints, and a resumed run's
events past the checkpoint's step are hidden (``purge_step``), so each step appears once.
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path

import torch
from pytorch_lightning import Callback, LightningModule, Trainer
from torch.utils.tensorboard import SummaryWriter

from coordnet.tables import write_csv
from coordnet.training.callbacks import PSNRHistory
from coordnet.training.runs import wait_to_log_after
from coordnet.training.summary import PSNR_TAGS, hparam_values, write_hparams


class MemberStopped(UserWarning):
    """An ensemble member stopped training: its loss or its update was NaN or infinite."""


class EnsembleRuns(Callback):
    """Log each member of an ``EnsembleModule`` into its own run directory (see the module docstring)."""

    def __init__(self) -> None:
        self.writers: list[SummaryWriter] = []
        self.losses: list[list[float]] = []  # per step: every member's training loss
        self.seconds: list[float] = []  # per step: training seconds before it
        self.test_psnr: dict[int, list[float]] = {}  # step → every member's test PSNR
        self.reported: list[int] = []  # members whose stop was reported
        self.final: list[dict[str, float]] = []  # per member: final/train_psnr, final/test_psnr
        self.run_dir: str | None = None
        self._pending: list[torch.Tensor] = []  # (M,) losses of steps not read back yet
        self._start = 0.0
        self._elapsed = 0.0

    def member_dirs(self, pl_module: LightningModule) -> list[Path]:
        return [Path(self.run_dir) / name for name in pl_module.names]

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.run_dir = trainer.log_dir  # a collective under multi-process training: every process asks

    def state_dict(self) -> dict:
        self._read_pending()
        return {"losses": [list(r) for r in self.losses], "seconds": list(self.seconds),
                "test_psnr": {k: list(v) for k, v in self.test_psnr.items()}, "reported": list(self.reported),
                "elapsed": self._elapsed}

    def load_state_dict(self, state_dict: dict) -> None:
        self.losses, self.seconds = [list(r) for r in state_dict["losses"]], list(state_dict["seconds"])
        self.test_psnr = {int(k): list(v) for k, v in state_dict["test_psnr"].items()}
        self.reported, self._elapsed = list(state_dict["reported"]), state_dict["elapsed"]

    def writer(self, trainer: Trainer, pl_module: LightningModule, m: int) -> SummaryWriter:
        """Member m's ``SummaryWriter``; the members' runs are opened at the first call (their HParams written)."""
        if not self.writers:
            self._open(trainer, pl_module)
        return self.writers[m]

    def _open(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # After the checkpoint's step is restored: a resumed run hides what its interrupted self wrote past it
        purge = trainer.global_step + 1 if trainer.global_step else None
        directories = self.member_dirs(pl_module)
        if purge:
            for directory in directories:
                wait_to_log_after(directory)
        self.writers = [SummaryWriter(str(d), purge_step=purge) for d in directories]
        data = trainer.datamodule
        for m, writer in enumerate(self.writers):
            member_data = data.hparams["member_data"][m] if data is not None else {}
            values = hparam_values(pl_module.settings[m], member_data.get("init_args", {}),
                                   member_data.get("class_path", "").rsplit(".", 1)[-1] or None)
            write_hparams(writer, values | {"seed": pl_module.hparams.seeds[m], "ensemble/member": m},
                          extra_tags=("final/stopped_at",))

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.is_global_zero and self.run_dir is not None and not self.writers:
            self._open(trainer, pl_module)

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch, batch_idx: int) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int) -> None:
        self._elapsed += time.perf_counter() - self._start
        self.seconds.append(self._elapsed)
        self._pending.append(pl_module.member_losses)
        step = trainer.global_step - 1  # the step the losses were measured at
        if (step + 1) % trainer.log_every_n_steps == 0:
            self._flush(trainer, pl_module, log_step=step)
        every = pl_module.settings[0]["reconstruction_every_n_steps"]
        if every and trainer.global_step % every == 0:
            self._log_reconstructions(trainer, pl_module)

    def _read_pending(self) -> torch.Tensor | None:
        """The pending losses (steps, M), read back to the CPU (the one wait for the device) and kept."""
        if not self._pending:
            return None
        losses = torch.stack(self._pending).cpu()
        self._pending = []
        self.losses += losses.tolist()
        return losses

    def _flush(self, trainer: Trainer, pl_module: LightningModule, log_step: int | None) -> None:
        """Read the pending losses back, log the last one at ``log_step`` (if given), report stops."""
        losses = self._read_pending()
        if losses is not None and log_step is not None:
            values = pl_module.member_psnr(losses[-1].to(pl_module.device)).tolist()
            for m, writer in enumerate(self.writers):
                writer.add_scalar("train/loss", losses[-1, m].item(), log_step)
                writer.add_scalar("train/psnr", values[m], log_step)
        self._report_stops(trainer, pl_module)

    def _report_stops(self, trainer: Trainer, pl_module: LightningModule) -> None:
        for m, step in enumerate(pl_module.stopped_at.cpu().tolist()):
            if step >= 0 and m not in self.reported:
                self.reported.append(m)
                message = (f"ensemble member {pl_module.names[m]} stopped at step {step}: its loss or update became "
                           f"NaN or infinite; its parameters after {step} steps (the last finite ones) are kept, the "
                           "other members go on")
                warnings.warn(message, MemberStopped, stacklevel=2)
                if self.writers:
                    self.writers[m].add_text("stopped", message, step)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if pl_module.test_losses is None or trainer.sanity_checking:
            return
        step = trainer.global_step
        values = pl_module.member_psnr(pl_module.test_losses).cpu().tolist()
        self.test_psnr[step] = values
        for m, writer in enumerate(self.writers):
            writer.add_scalar("test/loss", pl_module.test_losses[m].item(), step)
            writer.add_scalar("test/psnr", values[m], step)

    def _log_reconstructions(self, trainer: Trainer, pl_module: LightningModule) -> None:
        data = trainer.datamodule
        if not self.writers or data is None or not pl_module.reconstruction_members:
            return
        prediction = pl_module.predict_members(data.coords)
        for m in pl_module.reconstruction_members:
            data.members[m].log_reconstruction(self.writers[m], prediction[m], trainer.global_step)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._flush(trainer, pl_module, log_step=None)
        data = trainer.datamodule
        step = trainer.global_step
        every = pl_module.settings[0]["reconstruction_every_n_steps"]
        if every and step % every:
            self._log_reconstructions(trainer, pl_module)
        final = {}
        for tag, (x, y) in zip(PSNR_TAGS, ((data.train_x, data.train_y), (data.test_x, data.test_y))):
            if x is not None:
                mse = (pl_module.predict_members(x) - y).square().flatten(1).mean(1)
                final[tag] = pl_module.member_psnr(mse).cpu().tolist()
        self.final = [{tag: values[m] for tag, values in final.items()} for m in range(pl_module.num_members)]
        if "final/test_psnr" in final:
            self.test_psnr[step] = final["final/test_psnr"]
        stopped = pl_module.stopped_at.cpu().tolist()
        if trainer.is_global_zero:
            for m, writer in enumerate(self.writers):
                for tag, value in self.final[m].items():
                    writer.add_scalar(tag, value, step)
                writer.add_scalar("final/stopped_at", stopped[m], step)
            self._write_histories(pl_module, final.get("final/train_psnr"), step)

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        for writer in self.writers:
            writer.close()
        self.writers = []

    def _write_histories(self, pl_module: LightningModule, final_train: list[float] | None, step: int) -> None:
        """Each member's ``psnr_history.csv``: one row per step 0 … step − 1, and one for the final parameters."""
        train = pl_module.member_psnr(torch.tensor(self.losses, device=pl_module.device)).cpu().tolist() \
            if self.losses else []
        untested = [math.nan] * pl_module.num_members
        for m, directory in enumerate(self.member_dirs(pl_module)):
            rows = [{"step": s, "train_psnr": train[s][m], "seconds": self.seconds[s - 1] if s else 0.0,
                     "test_psnr": self.test_psnr.get(s, untested)[m]} for s in range(len(train))]
            rows.append({"step": step, "train_psnr": final_train[m] if final_train else math.nan,
                         "seconds": self.seconds[-1] if self.seconds else 0.0,
                         "test_psnr": self.test_psnr.get(step, untested)[m]})
            directory.mkdir(parents=True, exist_ok=True)
            write_csv(directory / PSNRHistory.FILE, rows)
