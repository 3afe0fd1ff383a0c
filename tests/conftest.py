"""Shared fixtures: small image and audio files written by the tests themselves."""

import sys
import textwrap
import wave

import imageio.v3 as iio
import numpy as np
import png
import pytest
import torch
from pytorch_lightning import Callback


def write_wav(path, samples: np.ndarray, bits: int, rate: int = 8000) -> None:
    """Write float samples in [−1, 1] of shape (T, C) as PCM WAV with ``bits`` per sample."""
    width = bits // 8
    if width == 1:
        raw = np.round(samples * 127 + 128).astype(np.uint8).tobytes()
    elif width == 3:
        ints = np.round(samples * (2**23 - 1)).astype(np.int32).reshape(-1)
        raw = np.stack([(ints >> s) & 0xFF for s in (0, 8, 16)], axis=1).astype(np.uint8).tobytes()
    else:
        dtype = {2: "<i2", 4: "<i4"}[width]
        raw = np.round(samples * (2 ** (bits - 1) - 1)).astype(dtype).tobytes()
    with wave.open(str(path), "wb") as f:
        f.setnchannels(samples.shape[1])
        f.setsampwidth(width)
        f.setframerate(rate)
        f.writeframes(raw)


class Poison(Callback):
    """Sets one weight of a ``CoordNetModule`` to NaN after optimiser step ``at_step``."""

    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.at_step:
            with torch.no_grad():
                pl_module.model.linears[1].weight[0, 0] = float("nan")


@pytest.fixture
def gradient_png(tmp_path):
    """Factory: write a 20×30 test image with the given channels and dtype, return its path."""

    def make(channels: int = 3, dtype=np.uint8, name: str = "img.png"):
        rows = np.linspace(0, 1, 20)[:, None, None]
        cols = np.linspace(0, 1, 30)[None, :, None]
        img = (rows * cols * np.ones((1, 1, channels))) * np.iinfo(dtype).max
        img = np.round(img).astype(dtype)
        path = tmp_path / name
        if dtype == np.uint16 and channels > 1:  # Pillow cannot write 16-bit colour PNGs
            png.from_array(img.reshape(20, -1), {3: "RGB", 4: "RGBA"}[channels] + ";16").save(path)
        else:
            iio.imwrite(path, img[..., 0] if channels == 1 else img)
        return path, img

    return make


TINY = textwrap.dedent("""\
    seed_everything: 7
    model:
      hidden: 32
      depth: 2
      activation: {class_path: Sine, init_args: {omega0: 30.0}}
      init: siren
      lr: 1.0e-3
    data:
      class_path: ImageDataModule
      init_args: {image: IMAGE, resolution: 32}
    trainer:
      max_steps: 50
      log_every_n_steps: 10
    """)


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    """main(args) runs LightningCLI in-process, which must not see pytest's own arguments."""
    monkeypatch.setattr(sys, "argv", ["coordnet"])


@pytest.fixture
def tiny_config(tmp_path, monkeypatch):
    """A 32×32 RGB PNG and a config fitting it with SIREN 2×32 for 50 steps, in a fresh working directory."""
    monkeypatch.chdir(tmp_path)
    image = tmp_path / "photo.png"
    r, c = np.meshgrid(np.linspace(0, 1, 32), np.linspace(0, 1, 32), indexing="ij")
    pattern = np.stack([r, c, 0.5 + 0.5 * np.sin(6 * r + 4 * c)], axis=-1)
    iio.imwrite(image, np.round(255 * pattern).astype(np.uint8))
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.replace("IMAGE", str(image)))
    return path
