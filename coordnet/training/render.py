"""Render a trained run: the network evaluated on its data's grid, at that size or another, written to a file.

    coordnet predict --ckpt_path runs/demo/camera_sine/version_0/checkpoints/last.ckpt --resolution 512

The checkpoint alone rebuilds the network and the data module (both keep their settings as configs, see
``CoordNetModule``), so rendering needs no config and trains nothing: it writes one file and no run directory.
Images are sampled on ``pixel_grid(H', W')``, signals on ``linspace(−1, 1, T')``: the same domain [−1, 1]^d as
training, more or less densely, so a larger size shows what the network puts between the pixels it was fitted on.
Formats: ``.png`` (images: the source's channels and bit depth, 8 or 16), ``.wav`` (signals read from a WAV file:
16-bit PCM lasting as long as the source) and ``.npy`` (anything: the raw float32 values, grid shape + (O,)).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from coordnet.data.base import CoordDataModule
from coordnet.training.metrics import predict
from coordnet.training.module import CoordNetModule
from coordnet.models.config import imported_class
from coordnet.training.runs import read_checkpoint, run_of_checkpoint

FORMATS = (".png", ".wav", ".npy")


def load_run(ckpt_path: str | Path, device: torch.device | str = "cpu") -> tuple[CoordNetModule, CoordDataModule, int]:
    """(the model on ``device`` in eval mode, its data module, the checkpoint's step) from a coordnet checkpoint.

    Raises:
        ValueError: not a checkpoint of a ``CoordNetModule``, or one that holds no data module settings.
        FileNotFoundError: no such checkpoint, or the data's source file is gone.
    """
    checkpoint = read_checkpoint(Path(ckpt_path))
    class_path = (checkpoint.get("datamodule_hyper_parameters") or {}).get("_class_path", "")
    data_class = imported_class(class_path, CoordDataModule)
    if data_class is None:
        raise ValueError(f"ckpt_path '{ckpt_path}': the checkpoint names no coordnet data module (it names "
                         f"{class_path or 'none'}), so there is no grid to render on")
    model = CoordNetModule.load_from_checkpoint(ckpt_path, map_location=device).eval()
    return model, data_class.load_from_checkpoint(ckpt_path), int(checkpoint["global_step"])


def render(model: torch.nn.Module, data: CoordDataModule, shape: tuple[int, ...] | None) -> np.ndarray:
    """``model`` on ``data.grid(shape)``: float32 of shape ``shape + (O,)``; for scattered data (``shape`` None), the
    prediction at the data's own points, (N, O)."""
    device = next(model.parameters()).device
    if shape is None:
        data.setup("predict", device=device)
        return predict(model, data.coords).cpu().numpy()
    values = predict(model, data.grid(shape).to(device))
    return values.reshape(*shape, -1).cpu().numpy()


def default_output(ckpt_path: Path, data: CoordDataModule, shape: tuple[int, ...] | None, step: int) -> Path:
    """``<run>/predictions/step<k>_<H>x<W>.<png|wav|npy>`` beside the checkpoint's run (beside the checkpoint when it
    is not in a run directory), numbered ``_1``, ``_2``, … rather than replace a file already there."""
    run_dir = run_of_checkpoint(ckpt_path) or ckpt_path.parent
    suffix = data.prediction_format
    size = "x".join(map(str, shape)) if shape is not None else "points"
    stem = run_dir / "predictions" / f"step{step}_{size}"
    path, k = stem.with_suffix(suffix), 0
    while path.exists():
        k += 1
        path = stem.with_name(f"{stem.name}_{k}").with_suffix(suffix)
    return path


def write_prediction(data: CoordDataModule, values: np.ndarray, path: Path, overwrite: bool = False) -> None:
    """``data.save_prediction(values, path)`` into a temporary file beside ``path``, renamed into place: a
    failed write leaves no partial file. An existing ``path`` is refused unless ``overwrite``."""
    if path.suffix.lower() not in FORMATS:
        raise ValueError(f"output '{path}': expected a file ending in {', '.join(FORMATS)}")
    if path.exists() and not overwrite:
        raise ValueError(f"output '{path}': the file exists; choose another name, or pass --overwrite")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        data.save_prediction(values, partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
