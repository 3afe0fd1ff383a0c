"""``InterruptCheckpoint``: on SIGINT (Ctrl-C) or SIGTERM (what schedulers send before they kill a job), finish
the current optimiser step, write ``last.ckpt`` at it and stop with ``TrainingInterrupted``.

Lightning alone exits 0 on SIGTERM and 1 on Ctrl-C, without a checkpoint. Here the checkpoint is taken at a step
boundary (``on_train_batch_end``, where ``ModelCheckpoint`` saves too), so resuming from it continues bitwise as if
the run had never stopped. One line on stderr says the signal was seen; a second signal stops at once, without a
checkpoint. The handlers are installed when training starts and the previous ones restored when it ends (main
thread only: elsewhere Python cannot receive signals). A long measurement inside a step (a full-image NTK)
finishes before the checkpoint is written.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.callbacks import ModelCheckpoint

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(Exception):
    """Training stopped on a signal at ``step``; ``checkpoint`` is the file written there."""

    def __init__(self, signum: int, step: int, checkpoint: Path) -> None:
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        super().__init__(f"interrupted by {signal.Signals(signum).name} at step {step}; checkpoint: {checkpoint}")

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a process the signal ended (130, 143)."""
        return 128 + self.signum


def interrupt_checkpoint_path(trainer: Trainer) -> Path:
    """``last.ckpt`` in the first ``ModelCheckpoint``'s directory, else in ``<log dir>/checkpoints``."""
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.dirpath:
            return Path(callback.dirpath) / f"{callback.CHECKPOINT_NAME_LAST}{callback.FILE_EXTENSION}"
    return Path(trainer.log_dir or trainer.default_root_dir) / "checkpoints" / "last.ckpt"


class InterruptCheckpoint(Callback):
    """Checkpoint at the step boundary after SIGINT or SIGTERM, then raise ``TrainingInterrupted``."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.signum = None
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._receive) for s in SIGNALS}

    def _receive(self, signum: int, frame) -> None:
        if self.signum is not None:  # the second signal: stop now
            self._restore()
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.signum = signum
        print(f"coordnet: {signal.Signals(signum).name} received: stopping after this step with a checkpoint "
              "(send it again to stop at once, without one)", file=sys.stderr, flush=True)

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int) -> None:
        if self.signum is None:
            return
        path = interrupt_checkpoint_path(trainer)
        for callback in trainer.checkpoint_callbacks:  # before saving: its state goes into the checkpoint, and a
            if isinstance(callback, ModelCheckpoint) and Path(callback.dirpath or "") == path.parent:
                callback.last_model_path = str(path)  # resumed run that finds another last.ckpt writes last-v1.ckpt
        trainer.save_checkpoint(path)
        raise TrainingInterrupted(self.signum, trainer.global_step, path)

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._restore()

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        self._restore()
