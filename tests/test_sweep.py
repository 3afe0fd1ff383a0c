"""``coordnet sweep``: a sweep from a config in one command, each member its own run in TensorBoard's HParams tab."""

import math
from pathlib import Path

import pytest
import torch
import yaml

from coordnet.cli import main
from coordnet.cli.sweep import expand, member_name, split_options, sweep_main
from coordnet.tables import read_csv_columns
from tensorboard_server import hparams_tab

TINY = """
sweep:
  vary:
    model.lr: [1.0e-3, 3.0e-3]
    seed_everything: [0, 1]
model:
  activation: {class_path: Sine, init_args: {omega0: 30.0}}
  hidden: 16
  depth: 2
  reconstruction_every_n_steps: 10
data:
  class_path: ImageDataModule
  init_args: {image: camera, resolution: 16, protocol: fourier}
trainer:
  max_steps: 20
  val_check_interval: 10
  enable_progress_bar: false
  callbacks:
    - class_path: NTKSpectrumCallback
      init_args: {num_points: 16, every_n_steps: 10, log_figure: false}
"""


@pytest.fixture
def tiny_sweep(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.yaml").write_text(TINY)
    return tmp_path


def test_expand_takes_every_combination_or_pairs_them():
    vary = {"model.lr": [1e-4, 1e-3], "seed_everything": [0, 1]}
    assert expand(vary) == [{"model.lr": 1e-4, "seed_everything": 0}, {"model.lr": 1e-4, "seed_everything": 1},
                            {"model.lr": 1e-3, "seed_everything": 0}, {"model.lr": 1e-3, "seed_everything": 1}]
    assert expand(vary, "zip") == [{"model.lr": 1e-4, "seed_everything": 0}, {"model.lr": 1e-3, "seed_everything": 1}]
    assert member_name(3, {"model.activation.init_args.omega0": 30.0, "seed_everything": 2}) == "m3-omega0=30-seed=2"
    with pytest.raises(ValueError, match="differ in length"):
        expand({"model.lr": [1e-4, 1e-3], "seed_everything": [0]}, "zip")
    with pytest.raises(ValueError, match="trainer's settings are the run's"):
        expand({"trainer.max_steps": [10, 20]})
    assert split_options(["--model.hidden", "8", "--trainer.max_steps=5", "--seed_everything", "3", "--name", "x"]) \
        == (["--model.hidden", "8", "--seed_everything", "3"], ["--trainer.max_steps=5", "--name", "x"])


def test_a_sweep_from_a_config_lists_every_member_in_the_hparams_tab(tiny_sweep, capsys):
    main(["sweep", "--config", "tiny.yaml"])
    out = capsys.readouterr().out
    assert out.count("coordnet sweep: m") == 4 and "runs/sweep_tiny/version_0" in out
    run = tiny_sweep / "runs/sweep_tiny/version_0"
    names = ["m0-lr=0.001-seed=0", "m1-lr=0.001-seed=1", "m2-lr=0.003-seed=0", "m3-lr=0.003-seed=1"]
    assert sorted(p.name for p in run.iterdir() if p.is_dir() and p.name.startswith("m")) == names
    # each member: final/train_psnr, final/test_psnr, final/stopped_at and the three NTK finals
    experiment, groups = hparams_tab(run, 4 * 6)
    sessions = {g["name"]: g for g in groups["sessionGroups"]}
    assert set(sessions) == set(names)
    assert sessions[names[2]]["hparams"]["model/lr"] == 3e-3 and sessions[names[1]]["hparams"]["seed"] == 1
    assert sessions[names[0]]["hparams"]["model/activation"] == "Sine(omega0=30.0)"
    values = {name: {m["name"]["tag"]: m["value"] for m in g["metricValues"]} for name, g in sessions.items()}
    for name in names:
        history = read_csv_columns(run / name / "psnr_history.csv")
        assert values[name]["final/test_psnr"] == pytest.approx(history["test_psnr"][-1], rel=1e-5)
        assert values[name]["final/stopped_at"] == -1 and values[name]["final/kappa_init"] > 1
    metrics = {info["name"]["tag"] for info in experiment["metricInfos"]}
    assert {"final/train_psnr", "final/test_psnr", "final/kappa_end"} <= metrics
    images = {name: images_logged(run / name) for name in names}  # the first member's reconstructions, by default
    assert images[names[0]] == {"reconstruction"} and images[names[1]] == set()


def images_logged(directory) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(directory))
    events.Reload()
    return set(events.Tags()["images"])


def test_the_members_whose_reconstructions_are_logged_are_chosen(tiny_sweep, capsys):
    main(["sweep", "--config", "tiny.yaml", "--vary", "seed_everything=[0]", "--trainer.max_steps", "10",
          "--reconstruct", "1"])
    run = tiny_sweep / "runs/sweep_tiny/version_0"
    assert images_logged(run / "m0-lr=0.001-seed=0") == set()
    assert images_logged(run / "m1-lr=0.003-seed=0") == {"reconstruction"}
    with pytest.raises(SystemExit):
        main(["sweep", "--config", "tiny.yaml", "--reconstruct", "7"])
    assert "members are numbered 0 … 3, got [7]" in capsys.readouterr().err


def test_the_single_engine_runs_the_same_members_one_fit_each(tiny_sweep):
    main(["sweep", "--config", "tiny.yaml", "--vary", "seed_everything=[0]", "--trainer.max_steps", "10"])
    main(["sweep", "--config", "tiny.yaml", "--vary", "seed_everything=[0]", "--trainer.max_steps", "10",
          "--engine", "single"])
    for member in ("m0-lr=0.001-seed=0", "m1-lr=0.003-seed=0"):
        ensemble = read_csv_columns(tiny_sweep / f"runs/sweep_tiny/version_0/{member}/psnr_history.csv")
        single = yaml.safe_load((tiny_sweep / f"runs/sweep_tiny/{member}/version_0/config.yaml").read_text())
        assert single["seed_everything"] == 0 and single["model"]["lr"] in (1e-3, 3e-3)
        checkpoint = torch.load(tiny_sweep / f"runs/sweep_tiny/{member}/version_0/checkpoints/last.ckpt",
                                weights_only=True)
        assert checkpoint["global_step"] == 10 and len(ensemble["train_psnr"]) == 11


def test_an_interrupted_sweep_resumes_from_its_checkpoint(tiny_sweep):
    main(["sweep", "--config", "tiny.yaml", "--trainer.max_steps", "10"])
    run = "runs/sweep_tiny/version_0"
    main(["sweep", "--config", f"{run}/config.yaml", "--ckpt_path", f"{run}/checkpoints/last.ckpt",
          "--trainer.max_steps", "20"])
    main(["sweep", "--config", "tiny.yaml"])  # never stopped: version_1
    for member in ("m0-lr=0.001-seed=0", "m3-lr=0.003-seed=1"):
        resumed = read_csv_columns(tiny_sweep / run / member / "psnr_history.csv")
        straight = read_csv_columns(tiny_sweep / f"runs/sweep_tiny/version_1/{member}/psnr_history.csv")
        assert resumed["train_psnr"] == straight["train_psnr"]  # bitwise, every step
        assert [v for v in resumed["test_psnr"] if not math.isnan(v)] == \
            [v for v in straight["test_psnr"] if not math.isnan(v)]


def test_the_shipped_sweep_lists_its_members(capsys):
    config = Path(__file__).parents[1] / "configs" / "sweeps" / "camera_sine.yaml"
    rows = sweep_main(["--config", str(config), "--list"])
    assert len(rows) == 12 and rows[0] == {"member": "m0-lr=0.0001-omega0=20-seed=0", "model.lr": 1e-4,
                                            "model.activation.init_args.omega0": 20.0, "seed_everything": 0}
    assert capsys.readouterr().out.count("\n") == 12


def test_members_of_two_shapes_are_refused_by_the_ensemble(tiny_sweep, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", "--config", "tiny.yaml", "--vary", "model.hidden=[8,16]"])
    assert exit_info.value.code == 2
    assert "member 1 has hidden widths [16, 16], member 0 [8, 8]" in capsys.readouterr().err
