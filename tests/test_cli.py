"""`coordnet fit --config …` end to end, and the CLI's handling of bad input."""

import glob
import subprocess
import sys
import textwrap
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from coordnet.cli import main

CONFIGS = sorted(Path(__file__).parents[1].joinpath("configs").glob("*.yaml"))

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


@pytest.mark.parametrize("override, message", [
    (["--data.init_args.image", "missing.png"], "image 'missing.png': no such file, and not a built-in image"),
    (["--data.init_args.image", "tiny.yaml"], "image 'tiny.yaml': could not be read as an image"),
    (["--data.init_args.image", "mandrill"], "image 'mandrill': no such file, and not a built-in image"),
    (["--model.activation", "swish"], "unknown activation 'swish'; expected one of"),
    (["--model.hidden", "0"], "hidden width must be a positive integer, got 0"),
    (["--model.depth", "-1"], "depth must be a positive integer, got -1"),
])
def test_bad_input_exits_2_with_one_clear_line(tiny_config, capsys, override, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(tiny_config), *override])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("coordnet: error: ") and message in err[-1]


@pytest.mark.skipif(not (Path(sys.executable).parent / "coordnet").exists(), reason="coordnet is not pip-installed")
def test_console_entry_point_exits_non_zero_without_traceback(tiny_config):
    result = subprocess.run([Path(sys.executable).parent / "coordnet", "fit", "--config", str(tiny_config),
                             "--model.activation", "swish"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "unknown activation 'swish'" in result.stderr
