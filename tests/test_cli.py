"""`coordnet fit --config …` end to end, and the CLI's handling of bad input."""

import glob
import subprocess
import sys
import wave
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import png
import pytest
import torch
import yaml
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import write_wav
from coordnet.cli import main

CONFIGS = sorted(Path(__file__).parents[1].joinpath("configs").glob("*.yaml"))


def test_fit_from_yaml_logs_train_psnr_and_saves_the_resolved_config(tiny_config, tmp_path):
    main(["fit", "--config", str(tiny_config)])
    (run,) = glob.glob(str(tmp_path / "runs/tiny/version_0"))
    (events,) = glob.glob(f"{run}/events.out.tfevents.*")
    acc = EventAccumulator(events)
    acc.Reload()
    psnrs = acc.Scalars("train/psnr")
    assert psnrs[-1].step == 49 and psnrs[-1].value > psnrs[0].value
    saved = yaml.safe_load(Path(run, "config.yaml").read_text())
    assert saved["seed_everything"] == 7 and saved["model"]["hidden"] == 32
    assert saved["model"]["activation"]["class_path"].endswith("Sine")
    # a second run gets a new directory; nothing of the first is overwritten
    main(["fit", "--config", str(tiny_config), "--data.init_args.resolution", "16", "--trainer.max_steps", "2"])
    assert Path(tmp_path / "runs/tiny/version_1/config.yaml").exists() and Path(run, "config.yaml").exists()


def test_print_config(tiny_config, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(tiny_config), "--print_config"])
    assert exit_info.value.code == 0
    assert "omega0: 30.0" in capsys.readouterr().out


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_parse(config, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(config), "--print_config"])
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["trainer"]["max_steps"] >= 1000
    if config.name.startswith("camera"):  # the image configs watch the NTK by default
        (ntk,) = printed["trainer"]["callbacks"]
        assert ntk["class_path"].endswith("NTKSpectrumCallback") and ntk["init_args"]["num_points"] == 1024


def test_ntk_callback_from_yaml_writes_its_history(tiny_config, tmp_path):
    tiny_config.write_text(tiny_config.read_text() + "  callbacks:\n    - class_path: NTKSpectrumCallback\n"
                           "      init_args: {num_points: 128, every_n_steps: 25}\n")
    main(["fit", "--config", str(tiny_config)])
    history = (tmp_path / "runs/tiny/version_0/ntk_spectrum.csv").read_text().splitlines()
    assert history[0].startswith("step,lambda_min,lambda_max,condition_number")
    assert [line.split(",")[0] for line in history[1:]] == ["0", "25", "50"]


@pytest.fixture
def bad_files(tmp_path):
    """Files a user might point the CLI at by mistake, written next to the tiny config."""
    good = tmp_path / "good.png"
    iio.imwrite(good, np.full((8, 8, 3), 128, np.uint8))
    (tmp_path / "empty.png").write_bytes(b"")
    data = good.read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    iio.imwrite(tmp_path / "one.png", np.zeros((1, 1, 3), np.uint8))
    with wave.open(str(tmp_path / "empty.wav"), "wb") as f:
        f.setnchannels(1), f.setsampwidth(2), f.setframerate(8000), f.writeframes(b"")
    np.save(tmp_path / "nan.npy", np.array([0.0, np.nan, 1.0]))
    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 4)))
    (tmp_path / "typo.yaml").write_text("model:\n  hiden: 8\n")


SIGNAL = ["--data", "SignalDataModule", "--data.init_args.signal"]
NTK = "[{class_path: NTKSpectrumCallback, init_args: {%s}}]"


@pytest.mark.parametrize("override, message", [
    (["--data.init_args.image", "missing.png"], "image 'missing.png': no such file, and not a built-in image"),
    (["--data.init_args.image", "tiny.yaml"], "image 'tiny.yaml': could not be read as an image"),
    (["--data.init_args.image", "empty.png"], "image 'empty.png': could not be read as an image"),
    (["--data.init_args.image", "truncated.png"], "image 'truncated.png': could not be read as an image"),
    (["--data.init_args.image", "one.png"], "image 'one.png': expected at least 2×2 pixels, got 1×1"),
    (["--data.init_args.image", "mandrill"], "image 'mandrill': no such file, and not a built-in image"),
    (["--data.init_args.resolution", "64"], "resolution 64×64 is larger than the image (32×32)"),
    (["--data.init_args.protocol", "bogus"], "data.protocol: expected Literal['memorize', 'fourier'], got bogus"),
    ([*SIGNAL, "missing.wav"], "signal 'missing.wav'"),
    ([*SIGNAL, "empty.wav"], "signal 'empty.wav': the WAV file holds no samples"),
    ([*SIGNAL, "nan.npy"], "signal 'nan.npy': contains NaN or infinite values"),
    ([*SIGNAL, "cube.npy"], "signal 'cube.npy': expected a numeric array of shape (T,) or (T, C), got float64 (2, 3, 4)"),
    (["--model.activation", "swish"], "unknown activation 'swish'; expected one of"),
    (["--model.activation", "{class_path: Cos, init_args: {s: 0}}"], "cos: frequency s must be a finite number > 0"),
    (["--model.activation", "{class_path: Cos, init_args: {s: -2}}"], "cos: frequency s must be a finite number > 0"),
    (["--model.hidden", "0"], "hidden width must be a positive integer, got 0"),
    (["--model.hidden", "abc"], "model.hidden: expected int or list[int], got abc"),
    (["--model.depth", "-1"], "depth must be a positive integer, got -1"),
    (["--model.depth", "0"], "depth must be a positive integer, got 0"),
    (["--model.init", "xavier"], "model.init: expected Literal['auto', 'he', 'standard', 'eoc', 'siren'], got xavier"),
    (["--model.lr", "-1"], "lr must be a finite number > 0, got -1.0"),
    (["--model.lr", ".nan"], "lr must be a finite number > 0, got nan"),
    (["--model.lr", "nan"], "model.lr: expected float, got nan"),
    (["--model.hiden", "8"], "model.hiden: unknown key; expected one that --help lists"),
    (["--config", "typo.yaml"], "model.hiden: unknown key; expected one that --help lists"),
    (["--ckpt_path", "runs/tiny/version_9/checkpoints/last.ckpt"],
     "ckpt_path 'runs/tiny/version_9/checkpoints/last.ckpt': no such checkpoint file"),
    (["--trainer.max_steps", "x"], "trainer.max_steps: expected int, got x"),
    (["--trainer.gradient_clip_val", "1"], "trainer.gradient_clip_val: CoordNetModule takes its optimiser steps"),
    (["--trainer.accumulate_grad_batches", "2"], "Automatic gradient accumulation is not supported"),
    (["--checkpoint.train_time_interval", "0:10:00"], "checkpoint.train_time_interval: Lightning's ModelCheckpoint"),
    (["--model.gradient_clip_val", "0"], "gradient_clip_val must be a finite number > 0 or null, got 0.0"),
    (["--trainer.callbacks", NTK % "every_n_steps: 0"], "NTKSpectrumCallback: every_n_steps must be a positive integer"),
    (["--trainer.callbacks", NTK % "num_points: 0"], "NTKSpectrumCallback: num_points must be a positive integer"),
    (["--trainer.callbacks", NTK % "mode: per_output"],
     "trainer.callbacks.mode: expected Literal['mean', 'trace', 'full']"),
])
def test_bad_input_exits_2_with_one_clear_line(tiny_config, bad_files, capsys, override, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(tiny_config), *override])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("coordnet: error: ") and message in err[-1]
    assert len(err) <= 2  # at most Lightning's "Seed set to …" before it: no usage dump, no traceback


@pytest.mark.skipif(not (Path(sys.executable).parent / "coordnet").exists(), reason="coordnet is not pip-installed")
def test_console_entry_point_exits_non_zero_without_traceback(tiny_config):
    result = subprocess.run([Path(sys.executable).parent / "coordnet", "fit", "--config", str(tiny_config),
                             "--model.activation", "swish"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "unknown activation 'swish'" in result.stderr


@pytest.fixture
def odd_files(tmp_path):
    """Valid inputs of unusual kinds: 16-bit RGB, palette and RGBA PNGs, 8- and 24-bit WAVs."""
    ramp = np.linspace(0, 1, 16 * 16 * 4).reshape(16, 16, 4)
    deep = np.round(ramp[..., :3] * 65535).astype(np.uint16)
    png.from_array(deep.reshape(16, -1), "RGB;16").save(tmp_path / "deep.png")  # Pillow cannot write 16-bit colour
    Image.fromarray(np.round(ramp[..., :3] * 255).astype(np.uint8)).convert("P").save(tmp_path / "palette.png")
    iio.imwrite(tmp_path / "rgba.png", np.round(ramp * 255).astype(np.uint8))
    tone = 0.8 * np.sin(np.linspace(0, 20, 300))[:, None]
    write_wav(tmp_path / "8bit.wav", tone, 8)
    write_wav(tmp_path / "24bit.wav", tone, 24)


IMAGE16 = ["--data.init_args.resolution", "16", "--data.init_args.image"]


@pytest.mark.parametrize("override, out_features", [
    ([*IMAGE16, "deep.png"], 3),
    ([*IMAGE16, "palette.png"], 3),
    ([*IMAGE16, "rgba.png"], 4),  # alpha fitted as a fourth channel
    ([*SIGNAL, "8bit.wav"], 1),
    ([*SIGNAL, "24bit.wav"], 1),
])
def test_valid_inputs_of_unusual_kinds_train(tiny_config, odd_files, tmp_path, override, out_features):
    main(["fit", "--config", str(tiny_config), "--trainer.max_steps", "2", *override])
    source = Path(override[-1]).stem  # the run is named after the config and the file it fits
    checkpoint = torch.load(tmp_path / f"runs/tiny_{source}/version_0/checkpoints/last.ckpt")
    assert checkpoint["global_step"] == 2 and checkpoint["hyper_parameters"]["out_features"] == out_features


def test_a_probe_larger_than_the_data_takes_every_training_point(tiny_config, tmp_path):
    main(["fit", "--config", str(tiny_config), "--trainer.max_steps", "2", "--data.init_args.resolution", "16",
          "--trainer.callbacks", NTK % "num_points: 5000, every_n_steps: 1, log_figure: false"])
    checkpoint = torch.load(tmp_path / "runs/tiny/version_0/checkpoints/last.ckpt")
    (state,) = [v for k, v in checkpoint["callbacks"].items() if k.startswith("NTKSpectrumCallback")]
    assert state["probe_x"].shape == (16 * 16, 2) and [row["step"] for row in state["history"]] == [0, 1, 2]
