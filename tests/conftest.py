"""Shared fixtures: small image and audio files written by the tests themselves."""

import wave

import imageio.v3 as iio
import numpy as np
import png
import pytest


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
