import imageio.v3 as iio
import numpy as np
import pytest
import torch
from PIL import Image

from coordnet.data import (BatchStream, ImageDataModule, MemorizationDataModule, SignalDataModule, load_image,
                           load_signal, pixel_grid)
from conftest import write_wav


def test_pixel_grid_spans_minus_one_to_one_row_major():
    grid = pixel_grid(3, 4)
    assert grid.shape == (12, 2)
    assert grid.min().item() == -1 and grid.max().item() == 1
    torch.testing.assert_close(grid[1], torch.tensor([-1.0, -1 / 3]))  # (row 0, col 1)


@pytest.mark.parametrize("protocol, n_train, n_test", [("memorize", 32 * 32, None), ("fourier", 16 * 16, 16 * 16)])
def test_image_module_coordinates_and_splits(protocol, n_train, n_test):
    dm = ImageDataModule("astronaut", 32, protocol)
    dm.setup("fit")
    assert (dm.in_features, dm.out_features, dm.data_range) == (2, 3, 1.0)
    assert dm.coords.shape == (1024, 2) and dm.values.shape == (1024, 3)
    assert dm.coords.min() == -1 and dm.coords.max() == 1
    assert 0 <= dm.values.min() and dm.values.max() <= 1
    assert dm.train_x.shape[0] == n_train
    if n_test is None:
        assert dm.test_x is None and dm.val_dataloader() == []
    else:
        assert dm.test_x.shape[0] == n_test
        grid = dm.coords.reshape(32, 32, 2)
        torch.testing.assert_close(dm.train_x, grid[::2, ::2].reshape(-1, 2))
        torch.testing.assert_close(dm.test_x, grid[1::2, 1::2].reshape(-1, 2))


def test_image_fourier_split_with_odd_size():
    dm = ImageDataModule("camera", (9, 7), "fourier")
    dm.setup()
    assert dm.train_x.shape[0] == 5 * 4 and dm.test_x.shape[0] == 4 * 3


@pytest.mark.parametrize("channels, dtype, expect_c", [
    (1, np.uint8, 1), (3, np.uint8, 3), (4, np.uint8, 4), (1, np.uint16, 1), (3, np.uint16, 3), (4, np.uint16, 4),
])
def test_png_depths_and_channels(gradient_png, channels, dtype, expect_c):
    path, raw = gradient_png(channels, dtype)
    img = load_image(str(path))
    assert img.shape == (20, 30, expect_c) and img.dtype == np.float32
    np.testing.assert_allclose(img, raw / np.iinfo(dtype).max, atol=1e-6)  # all 16 bits kept, alpha included
    assert img.max() == pytest.approx(1.0)


def test_palette_png_and_tiff_and_jpeg(tmp_path):
    rgb = (np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).convert("P").save(tmp_path / "pal.png")
    assert load_image(str(tmp_path / "pal.png")).shape == (16, 16, 3)
    iio.imwrite(tmp_path / "a.tif", (rgb[..., 0].astype(np.uint16) * 257))
    assert load_image(str(tmp_path / "a.tif")).shape == (16, 16, 1)
    iio.imwrite(tmp_path / "a.jpg", rgb)
    assert load_image(str(tmp_path / "a.jpg")).shape == (16, 16, 3)


def test_resize_crops_to_square_then_resizes():
    dm = ImageDataModule("chelsea", 64)  # 300×451 RGB
    assert dm.pixels.shape == (64, 64, 3)
    dm = ImageDataModule("chelsea", (30, 45))
    assert dm.pixels.shape == (30, 45, 3)
    assert ImageDataModule("camera", None).pixels.shape == (512, 512, 1)


@pytest.mark.parametrize("source, exc, match", [
    ("/no/such/file.png", FileNotFoundError, "no such file, and not a built-in image"),
    ("lenna", FileNotFoundError, "image 'lenna': no such file, and not a built-in image .*camera"),
])
def test_missing_images(source, exc, match):
    with pytest.raises(exc, match=match):
        load_image(source)


def test_not_an_image_and_directory_and_too_small(tmp_path):
    (tmp_path / "notes.png").write_text("hello")
    with pytest.raises(ValueError, match="notes.png'.*could not be read as an image"):
        load_image(str(tmp_path / "notes.png"))
    with pytest.raises(ValueError, match="is a directory"):
        load_image(str(tmp_path))
    iio.imwrite(tmp_path / "one.png", np.zeros((1, 1), np.uint8))
    with pytest.raises(ValueError, match="at least 2×2 pixels"):
        load_image(str(tmp_path / "one.png"))
    with pytest.raises(ValueError, match="resolution 1024×1024 is larger than the image"):
        ImageDataModule("camera", 1024)


@pytest.mark.parametrize("bits", [8, 16, 24, 32])
@pytest.mark.parametrize("channels", [1, 2])
def test_wav_bit_depths_mono_and_stereo(tmp_path, bits, channels):
    t = np.linspace(0, 1, 400)
    samples = np.stack([0.8 * np.sin(2 * np.pi * (3 + c) * t) for c in range(channels)], axis=1)
    write_wav(tmp_path / "a.wav", samples, bits)
    data = load_signal(str(tmp_path / "a.wav"))
    assert data.shape == (400, channels)
    np.testing.assert_allclose(data, samples, atol=2.5 / 2 ** (bits - 1))
    dm = SignalDataModule(str(tmp_path / "a.wav"), protocol="fourier")
    dm.setup()
    assert dm.out_features == channels and dm.train_x.shape == (200, 1) and dm.test_x.shape == (200, 1)
    assert dm.coords.min() == -1 and dm.coords.max() == 1


def test_npy_signals_and_builtins(tmp_path):
    np.save(tmp_path / "s.npy", np.arange(10.0))
    assert load_signal(str(tmp_path / "s.npy")).shape == (10, 1)
    np.save(tmp_path / "s2.npy", np.ones((10, 2)))
    assert load_signal(str(tmp_path / "s2.npy")).shape == (10, 2)
    for name in ("chirp", "sines", "square"):
        data = load_signal(name, 256)
        assert data.shape == (256, 1) and np.abs(data).max() <= 1.75 + 1e-6
    np.save(tmp_path / "nan.npy", np.array([0.0, np.nan, 1.0]))
    with pytest.raises(ValueError, match="NaN or infinite"):
        load_signal(str(tmp_path / "nan.npy"))
    np.save(tmp_path / "cube.npy", np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match=r"shape \(T,\) or \(T, C\)"):
        load_signal(str(tmp_path / "cube.npy"))
    with pytest.raises(FileNotFoundError, match="not a built-in signal"):
        load_signal("sawtooth")


def test_empty_and_bad_wav(tmp_path):
    write_wav(tmp_path / "empty.wav", np.zeros((0, 1)), 16)
    with pytest.raises(ValueError, match="holds no samples"):
        load_signal(str(tmp_path / "empty.wav"))
    (tmp_path / "bad.wav").write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(ValueError, match="not a PCM WAV file"):
        load_signal(str(tmp_path / "bad.wav"))


@pytest.mark.parametrize("inputs, d", [("gaussian", 400), ("sphere", 16), ("grid", 2)])
def test_memorization_sets(inputs, d):
    dm = MemorizationDataModule(64, d, inputs, seed=3)
    dm.setup()
    assert dm.coords.shape == (64, d) and dm.values.shape == (64, 1)
    if inputs == "sphere":
        torch.testing.assert_close(dm.coords.norm(dim=1), torch.ones(64))
    if inputs == "grid":
        assert dm.coords.min() == -1 and dm.coords.max() == 1
    again = MemorizationDataModule(64, d, inputs, seed=3)
    again.setup()
    assert torch.equal(again.values, dm.values) and torch.equal(again.coords, dm.coords)
    with pytest.raises(ValueError, match="square num_points"):
        MemorizationDataModule(60, 2, "grid")


def test_batch_stream_full_and_random_batches_depend_only_on_seed_and_step():
    x, y = torch.arange(100.0)[:, None], torch.arange(100.0)[:, None]
    full = next(iter(BatchStream(x, y, None, seed=0)))
    assert full[0] is x
    a = iter(BatchStream(x, y, 10, seed=1))
    batches = [next(a)[0] for _ in range(5)]
    resumed = iter(BatchStream(x, y, 10, seed=1, start_step=3))
    assert torch.equal(next(resumed)[0], batches[3])
    assert not torch.equal(batches[0], batches[1])
    assert batches[0].shape == (10, 1)


def test_setup_places_tensors_on_the_requested_device():
    dm = ImageDataModule("camera", 16)
    dm.setup(device="cpu")
    assert dm.train_x.device.type == "cpu"
    if torch.cuda.is_available():
        dm.setup(device="cuda")
        assert dm.train_x.device.type == "cuda" and next(iter(dm.train_dataloader()))[0].device.type == "cuda"


@pytest.mark.parametrize("kwargs, match", [
    ({"protocol": "holdout"}, "protocol must be 'memorize' or 'fourier'"),
    ({"batch_size": 0}, "batch_size must be a positive integer or null"),
])
def test_bad_data_module_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ImageDataModule("camera", 16, **kwargs)


@pytest.mark.parametrize("protocol", ["memorize", "fourier"])
def test_image_probe_points_are_spread_over_the_training_grid(protocol):
    dm = ImageDataModule("camera", 64, protocol=protocol)
    dm.setup()
    rows, cols = dm.train_grid_shape
    assert rows * cols == len(dm.train_x)
    index = dm.probe_indices(256, seed=3)
    assert len(index) == 256 == len(set(index.tolist())) and torch.equal(index, index.sort().values)
    assert torch.equal(index, dm.probe_indices(256, seed=3)) and not torch.equal(index, dm.probe_indices(256, seed=4))
    # a 16×16 probe on the training grid: every 1/4 × 1/4 block of the image holds 16 points
    r, c = index // cols, index % cols
    blocks = torch.bincount((4 * r // rows) * 4 + 4 * c // cols, minlength=16)
    assert blocks.tolist() == [16] * 16


def test_probe_points_on_signals_scattered_sets_and_small_sets():
    signal = SignalDataModule("chirp", 1000)
    signal.setup()
    index = signal.probe_indices(100)
    assert torch.equal(torch.bincount(index // 10, minlength=100), torch.ones(100, dtype=torch.long))  # 1 per cell
    scattered = MemorizationDataModule(500, 3, "gaussian")
    scattered.setup()
    assert scattered.train_grid_shape is None and len(set(scattered.probe_indices(50).tolist())) == 50
    small = ImageDataModule("camera", 8)
    small.setup()
    assert torch.equal(small.probe_indices(1024), torch.arange(64))  # fewer points than asked: all of them
    with pytest.raises(ValueError, match="num_points must be a positive integer"):
        small.probe_indices(0)
