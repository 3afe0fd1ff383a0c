"""``SafeCheckpointIO``: every checkpoint is written whole or not at all, and never holds NaN or inf parameters.

Lightning's own writer saves to a temporary file in the system's temporary directory and copies it over the
target: with ``runs/`` on another filesystem, a process killed during the copy leaves a truncated ``last.ckpt``,
and a full disk leaves a 0-byte file. Here the checkpoint goes to a temporary file beside its target
(``.<name>.<pid>.tmp``), is flushed to the disk, and replaces the target by an atomic ``os.replace``: a reader
sees the old file or the new one, never a part. A write that fails (a full disk, a permission) removes its
temporary file and leaves the previous checkpoint as it was. Temporary files of writers that died (SIGKILL,
power loss) are removed by the next write into the same directory.

A checkpoint whose ``state_dict`` holds a non-finite float is refused before anything is written, on every
path that writes one (``ModelCheckpoint`` with or without ``save_weights_only``, the interrupt checkpoint,
``trainer.save_checkpoint``), with ``TrainingDiverged`` naming the last good checkpoint beside it.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins import CheckpointIO, TorchCheckpointIO

from coordnet.training.divergence import TrainingDiverged, last_good_checkpoint, non_finite_entries

_TEMP = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.tmp")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user
        return True
    return True


def remove_dead_temporaries(directory: Path) -> None:
    """Delete the temporary files that writers no longer running left in ``directory``."""
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(directory):
            match = _TEMP.fullmatch(entry.name)
            if match and not _alive(int(match["pid"])):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save(obj)`` to ``path`` through a temporary file in the same directory and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_temporaries(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    buffer = io.BytesIO()
    torch.save(obj, buffer)  # in memory first: torch's zip writer turns a failed disk write into a RuntimeError
    try:
        with open(temporary, "wb") as file:
            file.write(buffer.getbuffer())
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        if isinstance(err, OSError):
            raise OSError(err.errno, f"could not write checkpoint {path} ({err.strerror}); the checkpoints "
                                     "already there are kept") from None
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself reaches the disk
    finally:
        os.close(directory)


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning's ``TorchCheckpointIO`` with atomic, same-directory writes that refuse diverged parameters."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike,
                        storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("SafeCheckpointIO.save_checkpoint takes no storage_options")
        bad = non_finite_entries(checkpoint.get("state_dict", {}))
        if bad:
            raise TrainingDiverged(
                f"training diverged by step {checkpoint.get('global_step', '?')}: the parameters are NaN or infinite "
                f"({', '.join(bad[:3])}{', …' if len(bad) > 3 else ''}); {Path(path).name} was not written; "
                f"{last_good_checkpoint(Path(path).parent.glob('*.ckpt'))}")
        atomic_save(checkpoint, path)


def with_safe_checkpoint_io(plugins: Any) -> list:
    """``plugins`` (None, one, or a list) plus a ``SafeCheckpointIO``, unless they already hold a CheckpointIO."""
    plugins = [] if plugins is None else list(plugins) if isinstance(plugins, (list, tuple)) else [plugins]
    if not any(isinstance(p, CheckpointIO) for p in plugins):
        plugins.append(SafeCheckpointIO())
    return plugins
