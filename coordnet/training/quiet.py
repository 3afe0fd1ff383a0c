"""Lightning's messages that no coordnet user can act on, silenced when coordnet builds a Trainer.

Nothing is silenced at import: ``silence_lightning_noise()`` runs in ``make_trainer`` and the CLI, so
a program that imports coordnet keeps its own warning and logging set-up until it trains through them.
"""

from __future__ import annotations

import logging
import warnings

_IGNORED_WARNINGS = (
    # Raised inside Lightning 2.6 by torch >= 2.9's pytree API.
    ".*isinstance\\(treespec, LeafSpec\\)` is deprecated.*",
    # ModelCheckpoint warns that under manual optimisation a checkpoint holds the parameters after the step: so
    # it does under automatic optimisation too, and global_step counts that step (resuming is bitwise exact).
    "Using ModelCheckpoint with manual optimization",
    # coordnet's data live in memory as tensors: worker processes would only copy them.
    ".*does not have many workers.*",
    ".*Total length of `list` across ranks is zero.*",
)


def _no_tip(record: logging.LogRecord) -> bool:
    # Lightning 2.6 prints "💡 Tip: … try installing litlogger / litmodels" on every Trainer: advertising. And an
    # EnsembleModule replaces a Trainer's NTKSpectrumCallback by its ensemble form by design, which Lightning reports.
    text = str(record.msg)
    return "💡 Tip" not in text and not text.endswith("override existing callbacks passed to Trainer: NTKSpectrumCallback")


def silence_lightning_noise() -> None:
    """Ignore the warnings above and Lightning's install tips (idempotent)."""
    for message in _IGNORED_WARNINGS:
        warnings.filterwarnings("ignore", message)
    logger = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    if _no_tip not in logger.filters:
        logger.addFilter(_no_tip)
