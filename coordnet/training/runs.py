"""Run directories ``<save_dir>/<name>/version_k``: claimed atomically, and what a checkpoint says about its run.

A new run claims ``version_k`` by creating it (``mkdir`` fails if another Trainer or process got there first,
and the next k is tried), so two Trainers never log into one directory. A fit resumed from a checkpoint
continues in that checkpoint's run directory only when the checkpoint is the run's latest (its step at least
that of every other checkpoint beside it): a killed or finished run is extended in place. Resuming from an
older checkpoint is a branch, which logs to a new version, so the original run's logs and tables stay as they
were.
"""

from __future__ import annotations

import pickle
import re
import time
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only

from coordnet.data.sources import existing_file


def claim_version(root: Path) -> int:
    """The first k past the versions in ``root`` whose ``root/version_k`` this call created (atomically)."""
    root.mkdir(parents=True, exist_ok=True)
    taken = [int(m[1]) for p in root.iterdir() if (m := re.fullmatch(r"version_(\d+)", p.name))]
    version = max(taken, default=-1) + 1
    while True:
        try:
            (root / f"version_{version}").mkdir()
            return version
        except FileExistsError:
            version += 1


class RunLogger(TensorBoardLogger):
    """``TensorBoardLogger`` that claims its new ``version_k`` directory atomically when first asked for it, and
    removes it again if the run fails before writing anything into it."""

    def _get_next_version(self) -> int:
        if rank_zero_only.rank != 0:  # only global rank zero writes; the others are told its log_dir
            return super()._get_next_version()
        return claim_version(Path(self.root_dir))

    @rank_zero_only
    def finalize(self, status: str) -> None:
        super().finalize(status)
        log_dir = Path(self.log_dir)
        if status != "success" and log_dir.is_dir() and not any(log_dir.iterdir()):
            log_dir.rmdir()


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint at ``path`` (memory-mapped), after checking it is one coordnet can resume from.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a directory, an empty or unreadable file, or not a Lightning checkpoint of a coordinate
            network; the message names the path and what it holds.
    """
    name = f"ckpt_path '{path}'"
    found = existing_file(path, name, f"a checkpoint file (e.g. {Path(path) / 'last.ckpt'})")
    if found is None:
        raise FileNotFoundError(f"{name}: no such checkpoint file")
    path = found
    if path.stat().st_size == 0:
        raise ValueError(f"{name}: the file is empty, expected a checkpoint")
    with open(path, "rb") as file:
        if file.read(4) != b"PK\x03\x04":
            raise ValueError(f"{name}: not a checkpoint (torch.save writes a zip archive; this file is not one)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as err:
        if "Weights only load failed" not in str(err):
            raise ValueError(f"{name}: not a checkpoint torch can read ({err})") from None
        unsupported = next((line.strip() for line in str(err).splitlines() if "Unsupported global" in line), "")
        raise ValueError(f"{name}: it holds pickled Python objects ({unsupported}), which coordnet does not unpickle "
                         "(torch.load's weights_only=True); checkpoints coordnet writes hold none") from None
    except Exception as err:  # torch raises many types for "not a checkpoint": zip, EOF errors
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ValueError(f"{name}: not a checkpoint torch can read, or cut short ({type(err).__name__}: "
                         f"{first_line[:160]})") from None
    if not isinstance(checkpoint, dict) or not {"state_dict", "global_step"} <= checkpoint.keys():
        raise ValueError(f"{name}: not a Lightning checkpoint (expected a dict with state_dict and global_step)")
    hyper_parameters = checkpoint.get("hyper_parameters") or {}
    if "hidden" not in hyper_parameters and "members" not in hyper_parameters:  # CoordNetModule, EnsembleModule
        raise ValueError(f"{name}: not a checkpoint of coordnet's CoordNetModule (no model hyper-parameters)")
    return checkpoint


def _comparable(value: Any) -> Any:
    """A value of a hyper-parameter in a form that compares across checkpoints and configs, or None to skip."""
    if isinstance(value, dict) and "class_path" in value:
        args = value.get("init_args") or {}
        return value["class_path"].rsplit(".", 1)[-1], tuple(sorted((k, _comparable(v)) for k, v in args.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_comparable(v) for v in value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return None  # an object (e.g. from the Python API): no settings to compare it by


def show_setting(value: Any) -> str:
    """A setting as one string: a class config as ``Sine(omega0=30.0)``, anything else as ``str``."""
    if isinstance(value, dict) and "class_path" in value:
        args = ", ".join(f"{k}={v}" for k, v in (value.get("init_args") or {}).items())
        return f"{value['class_path'].rsplit('.', 1)[-1]}({args})"
    return str(value)


def setting_differences(saved: dict[str, Any], asked: dict[str, Any], prefix: str) -> list[tuple[str, str, str]]:
    """(key, saved, asked) for each setting both dicts hold whose values differ (keys with ``_`` skipped)."""
    out = []
    for key in saved.keys() & asked.keys():
        if key.startswith("_"):
            continue
        a, b = _comparable(saved[key]), _comparable(asked[key])
        if a is not None and b is not None and a != b:
            out.append((f"{prefix}.{key}", show_setting(saved[key]), show_setting(asked[key])))
    return sorted(out)


def checkpoint_differences(checkpoint: dict, model: dict[str, Any], data: dict[str, Any] | None) -> list[tuple[str, str, str]]:
    """(key, the checkpoint's value, the config's) for each model and data setting a config (its ``model:`` and
    ``data:`` sections, as dicts) asks for differently from the checkpoint (data class first)."""
    differences = setting_differences(checkpoint["hyper_parameters"], model, "model")
    saved_data = checkpoint.get("datamodule_hyper_parameters")
    if saved_data is not None and data is not None:
        differences += setting_differences(saved_data, data.get("init_args", data), "data")
        saved_class, asked_class = saved_data.get("_class_path", ""), data.get("class_path", "")
        if saved_class and asked_class and saved_class.rsplit(".", 1)[-1] != asked_class.rsplit(".", 1)[-1]:
            differences.insert(0, ("data", saved_class.rsplit(".", 1)[-1], asked_class.rsplit(".", 1)[-1]))
    return differences


def run_of_checkpoint(path: Path) -> Path | None:
    """``<save_dir>/<name>/version_k`` when ``path`` lies in that run's ``checkpoints/``, else None."""
    if path.parent.name != "checkpoints" or not re.fullmatch(r"version_\d+", path.parent.parent.name) \
            or len(path.parents) < 4:
        return None
    return path.parents[1]


def newer_checkpoint(path: Path, step: int) -> tuple[Path, int] | None:
    """A checkpoint beside ``path`` of a later step than ``step`` (the latest one), or None if there is none."""
    latest = None
    for other in path.parent.glob("*.ckpt"):
        if other.resolve() == path.resolve():
            continue
        try:
            other_step = torch.load(other, map_location="cpu", weights_only=True, mmap=True)["global_step"]
        except Exception:  # an unreadable neighbour says nothing about which is latest
            continue
        if other_step > step and (latest is None or other_step > latest[1]):
            latest = (other, other_step)
    return latest


def wait_to_log_after(directory: Path) -> None:
    """Return once a new event file in ``directory`` would be read after every one already there.

    TensorBoard reads a directory's event files in name order, ``events.out.tfevents.<seconds>.<host>.<pid>.…``:
    a resumed run that opens its file in the same second as the killed run it continues sorts by process id, and
    may be read first, so the purge of the killed run's late steps would not apply. This sleeps (under a second)
    until the clock is past the newest file's second."""
    seconds = [int(m[1]) for p in directory.glob("events.out.tfevents.*")
               if (m := re.match(r"events\.out\.tfevents\.(\d+)\.", p.name))]
    past = max(seconds, default=0) + 1
    while time.time() < past:
        time.sleep(max(past - time.time(), 0.0))
