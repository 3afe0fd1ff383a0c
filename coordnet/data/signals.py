"""1-D signals as coordinate data: time t in [−1, 1] → amplitude (one value per channel).

Sources: a PCM WAV file (read with the standard library's ``wave``; 8-bit unsigned, 16/24/32-bit
signed; mono or multi-channel, scaled to [−1, 1]), a ``.npy`` array of shape (T,) or (T, C), or a
built-in synthetic signal (``chirp``, ``sines``, ``square``).

Protocols: ``memorize`` trains on every sample; ``fourier`` trains on samples [::2] and tests on [1::2].
PSNR is measured against the signal's peak-to-peak range (``data_range``).
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from coordnet.data.base import CoordDataModule, Protocol, refuse_sizes
from coordnet.data.sources import check_size, resolve_source

BUILTIN_SIGNALS = ("chirp", "sines", "square")


def synthetic_signal(name: str, num_samples: int) -> np.ndarray:
    """A built-in test signal on t = linspace(−1, 1, num_samples), shape (num_samples, 1).

    - ``chirp``: sin(2π(2t + 12t²)): instantaneous frequency rising from −22 to 26 cycles/unit time.
    - ``sines``: sin(2π·3t) + 0.5·sin(2π·17t + 1) + 0.25·sin(2π·41t + 2).
    - ``square``: sign(sin(2π·4t)), a band-unlimited signal.
    """
    t = np.linspace(-1, 1, num_samples)
    if name == "chirp":
        y = np.sin(2 * np.pi * (2 * t + 12 * t**2))
    elif name == "sines":
        y = np.sin(2 * np.pi * 3 * t) + 0.5 * np.sin(2 * np.pi * 17 * t + 1) + 0.25 * np.sin(2 * np.pi * 41 * t + 2)
    elif name == "square":
        y = np.sign(np.sin(2 * np.pi * 4 * t))
    else:
        raise ValueError(f"unknown built-in signal {name!r}; expected one of {', '.join(BUILTIN_SIGNALS)}")
    return y.astype(np.float32)[:, None]


def read_wav(path: Path, source: str) -> tuple[np.ndarray, int]:
    """PCM WAV → (float32 (T, C) in [−1, 1], sample rate in Hz); the declared size is checked (``check_size``)
    before reading."""
    try:
        with wave.open(str(path), "rb") as f:
            width, channels, frames, rate = f.getsampwidth(), f.getnchannels(), f.getnframes(), f.getframerate()
            check_size("signal", source, (frames, channels))
            raw = f.readframes(frames)
    except (wave.Error, EOFError) as err:
        raise ValueError(f"signal {source!r}: not a PCM WAV file ({err or 'truncated header'})") from None
    if frames == 0 or not raw:
        raise ValueError(f"signal {source!r}: the WAV file holds no samples")
    if width == 1:
        data = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128) / 128
    elif width == 2:
        data = np.frombuffer(raw, "<i2").astype(np.float32) / 2**15
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        ints = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        data = (np.where(ints >= 2**23, ints - 2**24, ints) / 2**23).astype(np.float32)
    elif width == 4:
        data = (np.frombuffer(raw, "<i4") / 2**31).astype(np.float32)
    else:
        raise ValueError(f"signal {source!r}: unsupported WAV sample width {8 * width} bits")
    return data[: len(data) // channels * channels].reshape(-1, channels), rate


# Larger amplitudes make the squared error of a float32 fit overflow (float32's largest number is 3.4e38).
MAX_AMPLITUDE = 1e15


def read_npy(path: Path, source: str) -> np.ndarray:
    """A ``.npy`` array of shape (T,) or (T, C), T ≥ C, real and finite, as float32 (T, C).

    Its header is read first (memory-mapped), so the size is checked (``check_size``) before the data is read.
    """
    try:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"signal {source!r}: could not be read as a .npy array ({err or 'the file is empty'})") \
            from None
    if not isinstance(data, np.ndarray):  # np.load opens a zip archive whatever its name
        data.close()
        raise ValueError(f"signal {source!r}: is a .npz archive of arrays, expected one .npy array (np.save)")
    if np.iscomplexobj(data):
        raise ValueError(f"signal {source!r}: complex values ({data.dtype}); expected a real array, e.g. the real "
                         "and imaginary parts as two channels, np.stack([z.real, z.imag], axis=-1)")
    if not np.issubdtype(data.dtype, np.number) or data.ndim not in (1, 2):
        raise ValueError(f"signal {source!r}: expected a numeric array of shape (T,) or (T, C), "
                         f"got {data.dtype} {data.shape}")
    check_size("signal", source, data.shape)
    if data.ndim == 2 and data.shape[0] < data.shape[1]:
        raise ValueError(f"signal {source!r}: shape {data.shape} has fewer samples than channels; expected (T, C) "
                         f"with samples along the first axis (if it is (C, T), save its transpose)")
    data = np.asarray(data).reshape(len(data), -1)
    if not np.isfinite(data).all():
        raise ValueError(f"signal {source!r}: contains NaN or infinite values")
    peak = float(np.abs(data).max()) if data.size else 0.0
    if peak > MAX_AMPLITUDE:
        raise ValueError(f"signal {source!r}: values up to {peak:.3g} in magnitude; coordnet fits in float32, where "
                         f"their squared error overflows: rescale the signal (at most {MAX_AMPLITUDE:g})")
    return data.astype(np.float32)


def read_signal(source: str, num_samples: int = 4096) -> tuple[np.ndarray, int | None]:
    """Read ``source`` (a .wav or .npy path, or a built-in name) as (float32 (T, C), the WAV's sample rate in Hz or
    None for the others).

    Raises:
        FileNotFoundError: not a file and not a built-in name.
        ValueError: an unsupported or malformed file, non-finite or overflowing values, fewer than 2 samples,
            or more values than allowed.
    """
    path = resolve_source(source, "signal", BUILTIN_SIGNALS)
    rate = None
    if path is None:
        data = synthetic_signal(source, num_samples)
    elif path.suffix.lower() == ".wav":
        data, rate = read_wav(path, source)
    elif path.suffix.lower() == ".npy":
        data = read_npy(path, source)
    else:
        raise ValueError(f"signal {source!r}: expected a .wav or .npy file")
    if data.shape[0] < 2 or data.shape[1] == 0:
        raise ValueError(f"signal {source!r}: expected at least 2 samples, got shape {data.shape}")
    return data, rate  # finite: WAV samples and the built-ins always are, read_npy checks


def load_signal(source: str, num_samples: int = 4096) -> np.ndarray:
    """The samples of ``read_signal(source, num_samples)``: float32 (T, C)."""
    return read_signal(source, num_samples)[0]


class SignalDataModule(CoordDataModule):
    """Fit a 1-D signal: coordinates (T, 1) = linspace(−1, 1, T), targets (T, C).

    Args:
        signal: ``chirp``, ``sines``, ``square``, or a path to a .wav or .npy file.
        num_samples: length T of a built-in signal.
        protocol: ``memorize`` (train and score on every sample) or ``fourier`` (train on [::2], test on [1::2]).
        batch_size: samples per step, or None for the full training set.
        seed: seed of the random batches.
    """

    WINDOW = 256  # samples in the reconstruction's zoomed panel

    def __init__(self, signal: str = "chirp", num_samples: int = 4096, protocol: Protocol = "memorize",
                 batch_size: int | None = None, seed: int = 0) -> None:
        super().__init__(protocol, batch_size, seed)
        if isinstance(num_samples, bool) or num_samples < 2:
            raise ValueError(f"num_samples must be an integer ≥ 2, got {num_samples!r}")
        self.signal = signal
        self.samples, self.sample_rate = read_signal(signal, num_samples)
        self.in_features, self.out_features = 1, self.samples.shape[1]
        self.data_range = float(self.samples.max() - self.samples.min()) or 1.0

    def _build(self) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        n = len(self.samples)
        coords, index = torch.linspace(-1, 1, n)[:, None], torch.arange(n)
        if self.protocol == "memorize":
            return coords, torch.from_numpy(self.samples), index, None
        return coords, torch.from_numpy(self.samples), index[::2], index[1::2]

    @property
    def train_grid_shape(self) -> tuple[int]:
        n = len(self.samples)
        return (n,) if self.protocol == "memorize" else ((n + 1) // 2,)

    def log_reconstruction(self, writer, prediction: Tensor, step: int) -> None:
        """Logs `reconstruction` as a figure, one row per channel: the whole signal (target and prediction against
        t), and beside it the ``WINDOW`` samples around the largest error, where single samples can be told apart."""
        from matplotlib.figure import Figure

        t = self.coords[:, 0].cpu().numpy()
        target, pred = self.values.cpu().numpy(), prediction.detach().cpu().numpy()
        channels = target.shape[1]
        worst = int(np.abs(pred - target).max(axis=1).argmax())
        lo = min(max(worst - self.WINDOW // 2, 0), max(len(t) - self.WINDOW, 0))
        window = slice(lo, min(lo + self.WINDOW, len(t)))
        fig = Figure(figsize=(11, 2.4 * channels), layout="constrained")
        axes = fig.subplots(channels, 2, squeeze=False, width_ratios=[2, 1])
        for c in range(channels):
            whole, zoom = axes[c]
            whole.plot(t, target[:, c], lw=0.6, label="target")
            whole.plot(t, pred[:, c], lw=0.6, alpha=0.8, label="prediction")
            whole.axvspan(t[window][0], t[window][-1], color="0.85", zorder=0)
            zoom.plot(t[window], target[window, c], lw=1, marker=".", ms=2, label="target")
            zoom.plot(t[window], pred[window, c], lw=1, ls="--", label="prediction")
            whole.set_ylabel(f"channel {c}")
        axes[0, 0].set_title(f"all {len(t)} samples")
        axes[0, 1].set_title(f"samples {lo}–{window.stop - 1}, around the largest error")
        axes[0, 1].legend(loc="upper right", fontsize="small")
        axes[-1, 0].set_xlabel("t")
        axes[-1, 1].set_xlabel("t")
        writer.add_figure("reconstruction", fig, step)

    @property
    def grid_shape(self) -> tuple[int]:
        return (len(self.samples),)

    def render_shape(self, resolution: int | None = None, scale: float | None = None, num_samples: int | None = None,
                     sample_rate: float | None = None) -> tuple[int]:
        """(T',) for ``coordnet predict``: ``num_samples``, or T scaled by ``scale`` or by ``sample_rate`` over the
        WAV's rate (the same span of time, sampled more or less densely), or T."""
        asked = {"resolution": resolution, "scale": scale, "num_samples": num_samples, "sample_rate": sample_rate}
        refuse_sizes(self, asked, allowed=("num_samples", "sample_rate", "scale"))
        if sum(v is not None for v in (scale, num_samples, sample_rate)) > 1:
            raise ValueError("--num_samples, --sample_rate and --scale: give one of them")
        if sample_rate is not None:
            if self.sample_rate is None:
                raise ValueError(f"--sample_rate: signal {self.signal!r} has no sample rate (not a WAV file); give "
                                 "--num_samples or --scale")
            scale = sample_rate / self.sample_rate
        if num_samples is not None:
            return (int(num_samples),)
        return (max(2, round(len(self.samples) * scale)),) if scale is not None else self.grid_shape

    def grid(self, shape: tuple[int, ...]) -> Tensor:
        return torch.linspace(-1, 1, shape[0])[:, None]

    @property
    def prediction_format(self) -> str:
        return ".wav" if self.sample_rate is not None else ".npy"

    def save_prediction(self, values: np.ndarray, path: Path) -> None:
        """.wav (for a WAV source): 16-bit PCM, clipped to [−1, 1], at the source's rate × T'/T, so it lasts as long
        as the source; .npy: the raw (T', C) float32 values."""
        if path.suffix.lower() != ".wav":
            return super().save_prediction(values, path)
        if self.sample_rate is None:
            raise ValueError(f"output '{path}': signal {self.signal!r} is not a WAV file, so it has no sample rate; "
                             "write .npy")
        sample_rate = self.sample_rate * len(values) / len(self.samples)
        ints = np.round(np.clip(values, -1, 1) * (2**15 - 1)).astype("<i2")
        with wave.open(str(path), "wb") as file:
            file.setnchannels(values.shape[1])
            file.setsampwidth(2)
            file.setframerate(round(sample_rate))
            file.writeframes(ints.tobytes())
