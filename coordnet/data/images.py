"""Images as coordinate data: pixel (row, col) in [−1, 1]² → value in [0, 1]^C.

Sources: a built-in name (images shipped inside scikit-image, so nothing is downloaded) or a path
to any file imageio reads (PNG, JPEG, TIFF, …; 8- or 16-bit; grey, grey+alpha, RGB, RGBA, palette).
An alpha channel is fitted as one more channel (RGBA: 4 outputs, grey+alpha: 2), straight (not premultiplied),
and a note says so; ``coordnet predict`` writes it back as the PNG's alpha.

Protocols (``protocol``):
- ``memorize``: train on every pixel; the metric is training PSNR (SIREN, FINER, WIRE).
- ``fourier``: train on pixels [::2, ::2], test on [1::2, 1::2] (Tancik et al. 2020).
"""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from torch import Tensor

from coordnet.data.base import CoordDataModule, Protocol, refuse_sizes
from coordnet.data.sources import check_size, resolve_source
from coordnet.notes import note

# scikit-image sample images that ship inside the package (checked offline with scikit-image 0.26).
BUILTIN_IMAGES = (
    "astronaut", "brick", "camera", "cat", "cell", "checkerboard", "chelsea", "clock", "coffee", "coins",
    "colorwheel", "grass", "gravel", "horse", "hubble_deep_field", "immunohistochemistry", "logo",
    "microaneurysms", "moon", "page", "retina", "rocket", "shepp_logan_phantom", "text",
)


def _to_unit_range(array: np.ndarray, source: str) -> np.ndarray:
    """Integer images scaled by their dtype's maximum; float images must already lie in [0, 1]."""
    if array.dtype == bool:
        return array.astype(np.float32)
    if np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(array.dtype)
        if info.min < 0:
            raise ValueError(f"image {source!r}: signed integer pixels ({array.dtype}) are not supported")
        return (array / info.max).astype(np.float32)
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise ValueError(f"image {source!r}: float pixels must be finite and in [0, 1], "
                             f"got range [{np.nanmin(array):g}, {np.nanmax(array):g}]")
        return array.astype(np.float32)
    raise ValueError(f"image {source!r}: unsupported pixel type {array.dtype}")


def _read_file(path: Path, source: str) -> np.ndarray:
    """Pixels of an image file as stored (integer or float dtype), via imageio; 16-bit colour PNGs via pypng.

    The declared size is checked (``check_size``) before any pixel is decoded. CMYK images (JPEG, TIFF) are
    converted to RGB by Pillow, without a colour profile, and a note says so.
    """
    unreadable = lambda err: ValueError(  # noqa: E731
        f"image {source!r}: could not be read as an image ({type(err).__name__}: {err})")
    png_header = None
    try:  # imageio and pypng raise many types, all meaning "not an image it can read"
        if path.suffix.lower() == ".png":
            import png

            png_header = png.Reader(filename=str(path))
            png_header.preamble()
            shape = (png_header.height, png_header.width, png_header.planes)
        else:
            shape = iio.improps(path).shape
    except Exception as err:
        raise unreadable(err) from None
    check_size("image", source, shape)
    try:
        if png_header is not None and png_header.bitdepth == 16 and png_header.color_type != 0:
            # Pillow would cut these to 8 bits
            width, height, rows, info = png.Reader(filename=str(path)).asDirect()
            return np.vstack([np.asarray(row, np.uint16) for row in rows]).reshape(height, width, info["planes"])
        if png_header is None and _pillow_mode(path) == "CMYK":
            note(f"image {source!r}: CMYK converted to RGB (Pillow's conversion, no colour profile applied)")
            return np.asarray(iio.imread(path, plugin="pillow", mode="RGB"))
        return np.asarray(iio.imread(path))
    except Exception as err:
        raise unreadable(err) from None


def _pillow_mode(path: Path) -> str | None:
    """Pillow's mode of the image (``RGB``, ``CMYK``, …), or None where Pillow cannot open it."""
    try:
        return iio.immeta(path, plugin="pillow").get("mode")
    except Exception:  # not a format Pillow reads: imageio's other plugins decide
        return None


def read_image(source: str) -> tuple[np.ndarray, int]:
    """Read ``source`` (a built-in name or a file path) as (float32 (H, W, C) in [0, 1], bits per sample).

    C is 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA); the bits are 16 for 16-bit files, else 8.

    Raises:
        FileNotFoundError: not a file and not a built-in name.
        ValueError: the file is not a readable 2-D grey/RGB(A) image, or declares more values than allowed.
    """
    path = resolve_source(source, "image", BUILTIN_IMAGES)
    if path is not None:
        array = _read_file(path, source)
    else:
        import skimage.data

        array = np.asarray(getattr(skimage.data, source)())
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(f"image {source!r}: expected a 2-D grey or RGB(A) image, got array shape {array.shape}")
    if min(array.shape[:2]) < 2:
        raise ValueError(f"image {source!r}: expected at least 2×2 pixels, got {array.shape[0]}×{array.shape[1]}")
    if array.shape[-1] in (2, 4):
        note(f"image {source!r}: its alpha channel is fitted as channel {array.shape[-1]} of {array.shape[-1]} "
             "(straight alpha, not premultiplied)")
    bits = 8 if array.dtype in (np.uint8, bool) else 16
    return _to_unit_range(array, source), bits


def load_image(source: str) -> np.ndarray:
    """The pixels of ``read_image(source)``: float32 (H, W, C) in [0, 1]."""
    return read_image(source)[0]


def resize_image(image: np.ndarray, resolution: int | tuple[int, int] | None, source: str = "image") -> np.ndarray:
    """Resize (H, W, C) to ``resolution``: an int centre-crops to a square first; None keeps the size.

    Raises:
        ValueError: the resolution is not positive, or larger than the image (no upsampling).
    """
    if resolution is None:
        return image
    from skimage.transform import resize

    h, w = image.shape[:2]
    if isinstance(resolution, int):
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        image, target = image[top:top + side, left:left + side], (resolution, resolution)
    else:
        target = tuple(resolution)
    if len(target) != 2 or any(isinstance(t, bool) or not isinstance(t, int) or t < 2 for t in target):
        raise ValueError(f"resolution must be an integer ≥ 2 or a pair (height, width), got {resolution!r}")
    if target[0] > image.shape[0] or target[1] > image.shape[1]:
        raise ValueError(f"image {source!r}: resolution {target[0]}×{target[1]} is larger than the image "
                         f"({image.shape[0]}×{image.shape[1]}); coordnet does not upsample targets")
    if target == image.shape[:2]:
        return image
    return resize(image, target, order=1, anti_aliasing=True, preserve_range=True).astype(np.float32)


def pixel_grid(height: int, width: int) -> Tensor:
    """Pixel coordinates (H·W, 2) in row-major order: (row, col), each linspace(−1, 1)."""
    rows, cols = torch.linspace(-1, 1, height), torch.linspace(-1, 1, width)
    return torch.stack(torch.meshgrid(rows, cols, indexing="ij"), dim=-1).reshape(-1, 2)


class ImageDataModule(CoordDataModule):
    """Fit an image: coordinates (H·W, 2) in [−1, 1]², targets (H·W, C) in [0, 1].

    Args:
        image: a built-in name (``camera``, ``astronaut``, … see ``BUILTIN_IMAGES``) or a file path.
        resolution: side of the square crop-and-resize, a (height, width) pair, or None (native size).
        protocol: ``memorize`` (train and score on every pixel) or ``fourier`` (train on pixels [::2, ::2], test on
            [1::2, 1::2]).
        batch_size: pixels per step, or None for the full training set each step.
        seed: seed of the random pixel batches.
    """

    def __init__(self, image: str = "camera", resolution: int | tuple[int, int] | None = 256,
                 protocol: Protocol = "memorize", batch_size: int | None = None, seed: int = 0) -> None:
        super().__init__(protocol, batch_size, seed)
        self.image = image
        pixels, self.bit_depth = read_image(image)
        self.pixels = resize_image(pixels, resolution, image)  # (H, W, C)
        self.height, self.width, self.out_features = self.pixels.shape
        self.in_features, self.data_range = 2, 1.0

    def _build(self) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        h, w, c = self.pixels.shape
        values = torch.from_numpy(self.pixels).reshape(-1, c)
        index = torch.arange(h * w).reshape(h, w)
        if self.protocol == "memorize":
            return pixel_grid(h, w), values, index.flatten(), None
        return pixel_grid(h, w), values, index[::2, ::2].flatten(), index[1::2, 1::2].flatten()

    @property
    def train_grid_shape(self) -> tuple[int, int]:
        if self.protocol == "memorize":
            return self.height, self.width
        return (self.height + 1) // 2, (self.width + 1) // 2

    def log_reconstruction(self, writer, prediction: Tensor, step: int) -> None:
        """Logs `reconstruction` as [target | prediction] side by side, clipped to [0, 1]."""
        pred = prediction.detach().clamp(0, 1).reshape(self.height, self.width, -1).cpu()
        target = self.values.reshape(self.height, self.width, -1).cpu()
        shown = torch.cat([target, pred], dim=1)
        writer.add_image("reconstruction", shown[..., :1] if shown.shape[-1] == 2 else shown, step, dataformats="HWC")

    @property
    def grid_shape(self) -> tuple[int, int]:
        return self.height, self.width

    def render_shape(self, resolution: int | None = None, scale: float | None = None, num_samples: int | None = None,
                     sample_rate: float | None = None) -> tuple[int, int]:
        """(H', W') for ``coordnet predict``: the longer side ``resolution`` with the image's aspect ratio, or
        ``scale`` × (H, W), or (H, W)."""
        asked = {"resolution": resolution, "scale": scale, "num_samples": num_samples, "sample_rate": sample_rate}
        refuse_sizes(self, asked, allowed=("resolution", "scale"))
        if resolution is not None and scale is not None:
            raise ValueError("--resolution and --scale: give one of them")
        if resolution is not None:
            scale = resolution / max(self.height, self.width)
        if scale is None:
            return self.height, self.width
        return max(1, round(self.height * scale)), max(1, round(self.width * scale))

    def grid(self, shape: tuple[int, ...]) -> Tensor:
        return pixel_grid(*shape)

    prediction_format = ".png"

    def save_prediction(self, values: np.ndarray, path: Path) -> None:
        """.png: clipped to [0, 1] and written with the source's bits (8 or 16) and channels (grey, grey + alpha,
        RGB, RGBA); .npy: the raw (H, W, C) float32 values."""
        if path.suffix.lower() != ".png":
            return super().save_prediction(values, path)
        import png

        height, width, channels = values.shape
        top = 2**self.bit_depth - 1
        ints = np.round(np.clip(values, 0, 1) * top).astype(np.uint16 if self.bit_depth == 16 else np.uint8)
        mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels] + f";{self.bit_depth}"
        with open(path, "wb") as file:
            png.from_array(ints.reshape(height, width * channels), mode).write(file)
