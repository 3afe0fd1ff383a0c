"""``coordnet predict``: render a checkpoint to a file (``coordnet.training.render``)."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import yaml

from coordnet.cli.lightning_cli import _StrictLoader
from coordnet.training.runs import checkpoint_differences, read_checkpoint


def predict_main(argv: list[str]) -> Path:
    """``coordnet predict``: render a checkpoint to a file (``coordnet.training.render``); returns the file."""
    from coordnet.training.render import default_output, load_run, render, write_prediction

    parser = argparse.ArgumentParser(
        prog="coordnet predict", description="Render a trained run on its data's grid, at its training size or "
        "another, to PNG (images, the source's bit depth), WAV (signals read from WAV) or .npy (anything).")
    parser.add_argument("--ckpt_path", help="the checkpoint (default: <run>/checkpoints/last.ckpt of --config's run)")
    parser.add_argument("--config", help="a run's config.yaml (runs/<name>/version_k/config.yaml); with --ckpt_path "
                        "its model and data settings must be the checkpoint's")
    parser.add_argument("--resolution", type=int, help="images: the longer side in pixels, aspect ratio kept")
    parser.add_argument("--scale", type=float, help="images and signals: this many times the training size")
    parser.add_argument("--num_samples", type=int, help="signals: the number of samples")
    parser.add_argument("--sample_rate", type=float, help="signals read from WAV: the rate in Hz (same duration)")
    parser.add_argument("--output", help="the file to write, .png, .wav or .npy (default: "
                        "<run>/predictions/step<k>_<size>.<png|wav|npy>)")
    parser.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    args = parser.parse_args(argv)
    ckpt_path = _predict_checkpoint(args.ckpt_path, args.config)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, data, step = load_run(ckpt_path, device)
    shape = data.render_shape(args.resolution, args.scale, args.num_samples, args.sample_rate)
    output = Path(args.output) if args.output else default_output(ckpt_path, data, shape, step)
    write_prediction(data, render(model, data, shape), output, args.overwrite)
    size = "×".join(map(str, shape)) if shape is not None else f"{data.coords.shape[0]} points"
    print(f"coordnet: rendered step {step} of {ckpt_path} at {size} on {device}: {output}")
    return output


def _predict_checkpoint(ckpt_path: str | None, config: str | None) -> Path:
    """The checkpoint ``coordnet predict`` renders: ``ckpt_path``, else the last.ckpt of ``config``'s run; with both,
    the config's model and data settings are checked against the checkpoint's."""
    if ckpt_path is None and config is None:
        raise ValueError("coordnet predict: give --ckpt_path CHECKPOINT, or --config runs/<name>/version_k/config.yaml")
    if ckpt_path is None:
        path = Path(config).parent / "checkpoints" / "last.ckpt"
        if not path.is_file():
            raise FileNotFoundError(f"config '{config}': no checkpoint beside it ({path}); give --ckpt_path")
        return path
    if config is not None:
        settings = yaml.load(Path(config).read_text(encoding="utf-8"), Loader=_StrictLoader)
        differences = checkpoint_differences(read_checkpoint(Path(ckpt_path)), settings.get("model") or {},
                                             settings.get("data"))
        if differences:
            listed = "; ".join(f"{key}: the checkpoint has {saved}, the config {asked}" for key, saved, asked in differences)
            raise ValueError(f"ckpt_path '{ckpt_path}' and config '{config}' describe different runs: {listed}")
    return Path(ckpt_path)
