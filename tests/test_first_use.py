"""What a researcher meets right after the demo: predict renders, every checkpoint loads, an extended run logs at
its steps, TensorBoard's HParams tab compares runs, runs are named after what they fit, and the messages say what
is happening."""

import functools
import sys
import wave
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import png
import pytest
import torch

from conftest import write_wav
from coordnet import CoordNetModule, FourierFeatures, ImageDataModule, PositionalEncoding, Sine, make_trainer, predict
from coordnet.cli import main
from coordnet.models import ACTIVATIONS, AbsLinear, Cos, Gaussian
from coordnet.models.config import init_config
from coordnet.ntk.density import spectral_density
from tensorboard_server import hparams_tab
from test_reliability import logged

NTK = "[{class_path: NTKSpectrumCallback, init_args: {num_points: 64, every_n_steps: 10, log_figure: false}}]"


def fit_tiny(*extra: str) -> None:
    main(["fit", "--config", "tiny.yaml", "--trainer.enable_progress_bar", "false", *extra])


# -- every checkpoint loads with torch.load's defaults ----------------------------------------------------------


@pytest.mark.parametrize("encoding", [
    None, functools.partial(FourierFeatures, num_features=8, sigma=2.0), lambda d: PositionalEncoding(d, 3),
])
def test_a_checkpoint_of_the_readme_snippet_loads_with_torch_defaults(tmp_path, encoding):
    data = ImageDataModule("camera", resolution=16)
    model = CoordNetModule(data.in_features, data.out_features, hidden=16, depth=2, activation=Sine(30.0),
                           init="siren", lr=1e-4, encoding=encoding)
    trainer = make_trainer(str(tmp_path), "my_run", max_steps=3, enable_progress_bar=False)
    trainer.fit(model, data)
    path = trainer.checkpoint_callback.last_model_path
    checkpoint = torch.load(path)  # weights_only=True, torch's default since 2.6
    assert checkpoint["hyper_parameters"]["activation"]["init_args"] == {"omega0": 30.0}
    loaded = CoordNetModule.load_from_checkpoint(path, weights_only=True)
    assert torch.equal(predict(loaded, data.coords), predict(model, data.coords))
    assert type(ImageDataModule.load_from_checkpoint(path, weights_only=True)) is ImageDataModule


@pytest.mark.parametrize("part", [*(cls() for cls in ACTIVATIONS.values()), AbsLinear(0.3, 0.7), Cos(5.0, 0.2),
                                  Sine(60.0), Gaussian(0.3), FourierFeatures(2, 4, 3.0, seed=5),
                                  PositionalEncoding(2, 4, include_input=False)])
def test_every_activation_and_encoding_is_rebuilt_from_its_config(part):
    config = init_config(part)
    module_name, _, name = config["class_path"].rpartition(".")
    rebuilt = getattr(sys.modules[module_name], name)(**config["init_args"])
    x = torch.linspace(-2, 2, 12).reshape(6, 2)
    assert repr(rebuilt) == repr(part) and torch.equal(rebuilt(x), part(x))


# -- resume that extends a finished run -------------------------------------------------------------------------


def test_extending_a_finished_run_logs_at_the_steps_of_an_uninterrupted_one(tiny_config, tmp_path):
    fit_tiny("--trainer.max_steps", "100", "--trainer.log_every_n_steps", "50")
    fit_tiny("--trainer.max_steps", "200", "--trainer.log_every_n_steps", "50",
             "--ckpt_path", "runs/tiny/version_0/checkpoints/last.ckpt")
    fit_tiny("--trainer.max_steps", "200", "--trainer.log_every_n_steps", "50")  # never stopped: version_1
    extended, straight = (logged(tmp_path / f"runs/tiny/version_{k}") for k in (0, 1))
    assert [s for s, _ in extended["train/loss"]] == [s for s, _ in straight["train/loss"]] == [49, 99, 149, 199]
    assert torch.load(tmp_path / "runs/tiny/version_0/checkpoints/last.ckpt")["loops"]["fit_loop"][
        "epoch_loop.state_dict"]["_batches_that_stepped"] == 200


# -- coordnet predict -------------------------------------------------------------------------------------------


def runs_listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in (root / "runs").rglob("*") if "predictions" not in p.parts)


def test_predict_renders_a_run_at_a_resolution_to_png_and_makes_no_run_directory(tiny_config, tmp_path, capsys):
    fit_tiny("--trainer.max_steps", "20")
    before = runs_listing(tmp_path)
    ckpt = "runs/tiny/version_0/checkpoints/last.ckpt"
    main(["predict", "--config", "runs/tiny/version_0/config.yaml", "--ckpt_path", ckpt, "--resolution", "64"])
    out = tmp_path / "runs/tiny/version_0/predictions/step20_64x64.png"
    assert str(out.relative_to(tmp_path)) in capsys.readouterr().out
    info = png.Reader(filename=str(out)).read()[3]
    assert (info["size"], info["bitdepth"], info["planes"]) == ((64, 64), 8, 3)
    main(["test", "--config", "runs/tiny/version_0/config.yaml", "--ckpt_path", ckpt])
    main(["validate", "--config", "runs/tiny/version_0/config.yaml", "--ckpt_path", ckpt])
    assert runs_listing(tmp_path) == before  # predict, test and validate train nothing and write no run
    # on the training grid, to .npy: the network's own prediction
    main(["predict", "--ckpt_path", ckpt, "--output", "grid.npy"])
    model = CoordNetModule.load_from_checkpoint(ckpt)
    data = ImageDataModule.load_from_checkpoint(ckpt)
    data.setup()
    expected = predict(model, data.coords).reshape(32, 32, 3).numpy()
    np.testing.assert_array_equal(np.load(tmp_path / "grid.npy"), expected)
    with pytest.raises(SystemExit) as exit_info:  # an existing output is never replaced without --overwrite
        main(["predict", "--ckpt_path", ckpt, "--output", "grid.npy"])
    assert exit_info.value.code == 2 and "exists" in capsys.readouterr().err
    main(["predict", "--ckpt_path", ckpt, "--resolution", "64"])  # the default name is numbered, not replaced
    assert out.with_name("step20_64x64_1.png").is_file()


def test_predict_keeps_the_source_bit_depth_and_alpha(tiny_config, tmp_path):
    ramp = np.linspace(0, 1, 16 * 16 * 4).reshape(16, 16, 4)
    png.from_array(np.round(ramp * 65535).astype(np.uint16).reshape(16, -1), "RGBA;16").save(tmp_path / "deep.png")
    fit_tiny("--trainer.max_steps", "5", "--data.init_args.image", "deep.png", "--data.init_args.resolution", "16")
    main(["predict", "--ckpt_path", "runs/tiny_deep/version_0/checkpoints/last.ckpt", "--scale", "2",
          "--output", "big.png"])
    width, height, rows, info = png.Reader(filename=str(tmp_path / "big.png")).read()
    assert (width, height, info["bitdepth"], info["planes"], info["alpha"]) == (32, 32, 16, 4, True)


def test_predict_writes_a_wav_signal_at_its_rate_and_refuses_sizes_of_another_kind(tiny_config, tmp_path, capsys):
    write_wav(tmp_path / "tone.wav", 0.5 * np.sin(np.linspace(0, 40, 400))[:, None], 16, rate=8000)
    fit_tiny("--trainer.max_steps", "5", "--data", "SignalDataModule", "--data.init_args.signal", "tone.wav",
             "--trainer.callbacks=[]")
    ckpt = "runs/tiny_tone/version_0/checkpoints/last.ckpt"
    main(["predict", "--ckpt_path", ckpt, "--sample_rate", "16000", "--output", "up.wav"])
    with wave.open(str(tmp_path / "up.wav")) as f:
        assert (f.getframerate(), f.getnframes(), f.getnchannels(), f.getsampwidth()) == (16000, 800, 1, 2)
    with pytest.raises(SystemExit):
        main(["predict", "--ckpt_path", ckpt, "--resolution", "512"])
    assert "--resolution: SignalDataModule takes --num_samples or --sample_rate or --scale" in capsys.readouterr().err


# -- TensorBoard's HParams tab, through a real server -----------------------------------------------------------


def test_the_hparams_tab_lists_each_run_with_its_settings_and_final_metrics(tiny_config, tmp_path):
    fit_tiny("--trainer.max_steps", "20", "--trainer.callbacks", NTK)
    fit_tiny("--trainer.max_steps", "20", "--model.lr", "3e-3", "--data.init_args.protocol", "fourier")
    experiment, groups = hparams_tab("runs", 4 + 2)
    names = {info["name"] for info in experiment["hparamInfos"]}
    assert {"model/activation", "model/init", "model/hidden", "model/lr", "data/image", "data/protocol"} <= names
    metrics = {info["name"]["tag"] for info in experiment["metricInfos"]}
    assert {"final/train_psnr", "final/test_psnr", "final/kappa_init", "final/kappa_end", "final/lambda_min"} <= metrics
    runs = {g["name"]: g for g in groups["sessionGroups"]}
    assert set(runs) == {"tiny/version_0", "tiny/version_1"}
    first, second = runs["tiny/version_0"], runs["tiny/version_1"]
    assert first["hparams"]["model/activation"] == "Sine(omega0=30.0)" and second["hparams"]["model/lr"] == 3e-3
    values = lambda group: {m["name"]["tag"]: m["value"] for m in group["metricValues"]}  # noqa: E731
    assert {"final/train_psnr", "final/kappa_init", "final/kappa_end", "final/lambda_min"} <= values(first).keys()
    assert {"final/train_psnr", "final/test_psnr"} <= values(second).keys() and values(second)["final/train_psnr"] > 10


# -- names and messages -----------------------------------------------------------------------------------------


def test_a_run_is_named_after_its_config_and_the_file_it_fits_or_the_name_given(tiny_config, tmp_path):
    iio.imwrite(tmp_path / "cat.png", np.zeros((32, 32, 3), np.uint8))
    fit_tiny("--trainer.max_steps", "2", "--data.init_args.image", "cat.png")
    fit_tiny("--trainer.max_steps", "2")  # the config's own image: the config's name
    fit_tiny("--trainer.max_steps", "2", "--name", "my_study")
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["my_study", "tiny", "tiny_cat"]


def test_fit_ends_with_one_summary_line_and_no_advertising(tiny_config, tmp_path, capfd):
    fit_tiny("--trainer.max_steps", "20", "--trainer.callbacks", NTK, "--data.init_args.protocol", "fourier")
    out = capfd.readouterr()
    (line,) = [line for line in out.out.splitlines() if line.startswith("coordnet: done")]
    assert "at step 20: train PSNR" in line and "test PSNR" in line and "κ " in line and "(NTK on 64 points)" in line
    assert "run: runs/tiny/version_0; view: tensorboard --logdir runs/tiny" in line
    assert "litlogger" not in out.out + out.err and "Tip:" not in out.out + out.err


def test_a_long_spectral_density_says_what_it_measures_and_how_long_first(capsys):
    kernel = torch.randn(600, 600, dtype=torch.float64)
    kernel = kernel @ kernel.T
    spectral_density(lambda v: kernel @ v, 600, num_probes=2, steps=10, deflate=4, progress=True)
    (line,) = [line for line in capsys.readouterr().out.splitlines() if "spectral density" in line]
    assert "600 × 600 kernel" in line and "4 largest eigenpairs" in line and "2 probes × 10" in line
    assert " s–" in line or "min–" in line  # an estimated range


def test_an_rgba_image_keeps_its_alpha_and_says_so(tmp_path, recwarn):
    iio.imwrite(tmp_path / "a.png", np.full((8, 8, 4), 128, np.uint8))
    data = ImageDataModule(str(tmp_path / "a.png"), resolution=None)
    assert data.out_features == 4
    assert any("alpha channel is fitted as channel 4 of 4" in str(w.message) for w in recwarn)


def test_the_help_lists_every_subcommand_and_describes_every_model_key(capsys):
    main(["--help"])
    text = capsys.readouterr().out
    assert all(f"\n  {name} " in text for name in ("fit", "validate", "test", "predict", "demo"))
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    text = capsys.readouterr().out
    assert "Fit a coordinate MLP to a data module's points with the mean squared error:" in text
    section = text[text.index("--model CONFIG"):text.index("The data, one of")]
    keys = [line.split()[0] for line in section.splitlines() if line.startswith("  --model.")]
    assert len(keys) >= 17
    for key in keys:  # the line after each key (or its own tail) is a description, not just "(type: …)"
        block = section[section.index(f"  {key}"):].split("\n  --")[0]
        described = " ".join(block.split("\n")[0].split()[2:] + block.split("\n")[1:2])
        assert not described.strip().startswith("(type:"), key


def test_the_reconstruction_of_a_long_signal_shows_the_whole_and_a_readable_window():
    from coordnet import SignalDataModule

    class Writer:
        def add_figure(self, tag, figure, step):
            self.figure = figure

    data = SignalDataModule("chirp", num_samples=4096)
    data.setup()
    prediction = data.values.clone()
    prediction[3000] += 1.0  # the largest error
    writer = Writer()
    data.log_reconstruction(writer, prediction, step=0)
    whole, zoom = writer.figure.axes
    assert whole.get_xlim()[1] - whole.get_xlim()[0] > 1.9  # all of [−1, 1]
    shown = zoom.lines[0].get_xdata()
    assert len(shown) == SignalDataModule.WINDOW <= 300 and shown[0] < data.coords[3000, 0] < shown[-1]
