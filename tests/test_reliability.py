"""Reliability: no run overwrites another, the same seed gives the same run, a killed run resumes bitwise,
and a diverging run stops with its last good checkpoint kept."""

import hashlib
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from conftest import Poison
from coordnet.cli import main
from coordnet.data import ImageDataModule
from coordnet.ntk.history import HISTORY_FILE
from coordnet.training import CoordNetModule, TrainingDiverged, make_trainer
from coordnet.training.runs import wait_to_log_after

# SIREN 2×32 on a 32×32 image for 60 steps: train/* logged at steps 4, 9, …, 59, test/* and a
# reconstruction every 20 steps, the NTK every 10, a checkpoint every 20.
CONFIG = textwrap.dedent("""\
    seed_everything: 7
    model:
      hidden: 32
      depth: 2
      activation: {class_path: Sine, init_args: {omega0: 30.0}}
      init: siren
      lr: 1.0e-3
      reconstruction_every_n_steps: 20
    data:
      class_path: ImageDataModule
      init_args: {image: IMAGE, resolution: 32, protocol: fourier}
    trainer:
      max_steps: 60
      log_every_n_steps: 5
      val_check_interval: 20
      callbacks:
        - class_path: NTKSpectrumCallback
          init_args: {num_points: 64, every_n_steps: 10, log_figure: false}
    checkpoint:
      every_n_train_steps: 20
    """)
# The learning rate jumps from 1e-3 to 1e27 after 25 steps: the loss at step 26 overflows.
DIVERGE = textwrap.dedent("""\
    model:
      lr_scheduler:
        class_path: torch.optim.lr_scheduler.MultiStepLR
        init_args: {milestones: [25], gamma: 1.0e+30}
    """)


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    """``run.yaml`` (CONFIG) fitting a 32×32 RGB PNG, both in a directory of their own."""
    folder = tmp_path_factory.mktemp("config")
    r, c = np.meshgrid(np.linspace(0, 1, 32), np.linspace(0, 1, 32), indexing="ij")
    pattern = np.stack([r, c, 0.5 + 0.5 * np.sin(6 * r + 4 * c)], axis=-1)
    iio.imwrite(folder / "photo.png", np.round(255 * pattern).astype(np.uint8))
    path = folder / "run.yaml"
    path.write_text(CONFIG.replace("IMAGE", str(folder / "photo.png")))
    return path


def file_digests(run_dir: Path) -> dict[str, str]:
    return {str(f.relative_to(run_dir)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(run_dir.rglob("*")) if f.is_file()}


def events(run_dir: Path) -> EventAccumulator:
    """All event files of a run directory, read in order: TensorBoard's purges applied."""
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0, "histograms": 0})
    acc.Reload()
    return acc


def logged(run_dir: Path) -> dict[str, list]:
    """{tag: [(step, value)]} for scalars, {tag: [step]} for images and histograms."""
    acc = events(run_dir)
    tags = acc.Tags()
    out = {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in tags["scalars"]}
    out |= {tag: [e.step for e in acc.Images(tag)] for tag in tags["images"]}
    return out | {tag: [e.step for e in acc.Histograms(tag)] for tag in tags["histograms"]}


def final_parameters(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints/last.ckpt", map_location="cpu")["state_dict"]


def assert_bitwise_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def two_runs(config, tmp_path_factory):
    """``coordnet fit --config run.yaml`` twice in one working directory; version_0's file digests after the
    first run and after the second."""
    work = tmp_path_factory.mktemp("two_runs")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(work)
        patch.setattr(sys, "argv", ["coordnet"])
        main(["fit", "--config", str(config)])
        first = file_digests(work / "runs/run/version_0")
        main(["fit", "--config", str(config)])
    return work / "runs/run", first, file_digests(work / "runs/run/version_0")


def test_a_second_run_gets_its_own_directory_and_leaves_the_first_untouched(two_runs):
    runs, before, after = two_runs
    assert sorted(p.name for p in runs.iterdir()) == ["version_0", "version_1"]
    assert {"config.yaml", "hparams.yaml", HISTORY_FILE, "checkpoints/last.ckpt", "checkpoints/epoch=0-step=60.ckpt"} \
        <= before.keys()
    assert any(name.startswith("events.out.tfevents") for name in before)
    assert after == before  # same files, byte for byte


def test_the_same_config_and_seed_give_bitwise_identical_runs(two_runs):
    runs, _, _ = two_runs
    assert_bitwise_equal(final_parameters(runs / "version_0"), final_parameters(runs / "version_1"))
    first, second = logged(runs / "version_0"), logged(runs / "version_1")
    assert first == second and len(first["train/loss"]) == 12 and len(first["ntk/lambda_min"]) == 7
    assert (runs / "version_0" / HISTORY_FILE).read_text() == (runs / "version_1" / HISTORY_FILE).read_text()


def last_ntk_step(csv: Path) -> int | None:
    """The step of the last complete row of the NTK history a running process rewrites, if any."""
    try:
        lines = csv.read_text().splitlines()
    except FileNotFoundError:
        return None
    if len(lines) < 2 or lines[-1].count(",") != lines[0].count(","):
        return None
    return int(float(lines[-1].split(",")[0]))


@pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty")  # resuming into it, on purpose
def test_a_killed_run_resumed_from_last_ckpt_ends_bitwise_equal_with_continuous_logs(two_runs, config, tmp_path,
                                                                                    monkeypatch):
    uninterrupted = two_runs[0] / "version_0"
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "runs/run/version_0"
    # the same run, but long enough that it cannot finish before it is killed
    process = subprocess.Popen([sys.executable, "-m", "coordnet.cli", "fit", "--config", str(config),
                                "--trainer.max_steps", "100000"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # kill 10 steps past a checkpoint (the NTK is measured every 10 steps, checkpoints every 20)
        deadline = time.monotonic() + 60
        while (step := last_ntk_step(run_dir / HISTORY_FILE)) is None or step < 30 or step % 20 != 10:
            assert process.poll() is None and time.monotonic() < deadline, "the run ended before it was killed"
            assert step is None or step < 60, "the run passed step 60 before it could be killed"
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        process.kill()
    checkpoint_step = torch.load(run_dir / "checkpoints/last.ckpt")["global_step"]
    assert checkpoint_step == step - 10
    # the killed run logged past its checkpoint: the resumed one must not show those steps twice
    assert max(s for s, _ in logged(run_dir)["train/loss"]) > checkpoint_step
    assert last_ntk_step(run_dir / HISTORY_FILE) > checkpoint_step
    config_yaml = (run_dir / "config.yaml").read_bytes()

    main(["fit", "--config", str(config), "--ckpt_path", "runs/run/version_0/checkpoints/last.ckpt"])

    assert [p.name for p in (tmp_path / "runs/run").iterdir()] == ["version_0"]  # resumed in its own directory
    assert (run_dir / "config.yaml").read_bytes() == config_yaml
    assert "ckpt_path: runs/run/version_0/checkpoints/last.ckpt" in (run_dir / "config_resume_1.yaml").read_text()
    assert_bitwise_equal(final_parameters(run_dir), final_parameters(uninterrupted))
    resumed = logged(run_dir)
    assert [s for s, _ in resumed["train/loss"]] == list(range(4, 60, 5))  # each step once, in order
    assert resumed == logged(uninterrupted)  # every tag at the same steps, every scalar the same value
    assert (run_dir / HISTORY_FILE).read_text() == (uninterrupted / HISTORY_FILE).read_text()


def test_a_resumed_writer_is_read_after_the_killed_runs_file_of_the_same_second(tmp_path):
    # the killed run's file: another process, its name in a second the resumed writer would otherwise share
    killed = SummaryWriter(str(tmp_path))
    for step in range(10):
        killed.add_scalar("loss", 1.0, step)
    killed.close()
    (old,) = tmp_path.glob("events.out.tfevents.*")
    old.rename(tmp_path / f"events.out.tfevents.{int(time.time()) + 1:010d}.host.99999999.0")
    wait_to_log_after(tmp_path)
    resumed = SummaryWriter(str(tmp_path), purge_step=5)
    for step in range(5, 10):
        resumed.add_scalar("loss", 2.0, step)
    resumed.close()
    assert [(e.step, e.value) for e in events(tmp_path).Scalars("loss")] == [(s, 1.0 if s < 5 else 2.0)
                                                                             for s in range(10)]


@pytest.mark.filterwarnings("ignore:Attribute 'activation' is an instance of `nn.Module`")  # see module.py
def test_a_huge_learning_rate_stops_at_the_step_and_keeps_the_last_good_checkpoint(config, tmp_path, monkeypatch,
                                                                                   capsys):
    monkeypatch.chdir(tmp_path)
    diverge = tmp_path / "diverge.yaml"
    diverge.write_text(DIVERGE)
    # the NTK callback meets the diverged parameters first: it warns and skips, the guard then stops the run
    with pytest.warns(UserWarning, match="step 30: the NTK has NaN or infinite entries"), \
            pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(config), "--config", str(diverge)])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("coordnet: error: training diverged at step 26: the loss is inf; last good checkpoint: "
                       "runs/diverge/version_0/checkpoints/last.ckpt (step 20)")
    assert len(err) <= 2  # at most Lightning's "Seed set to …" before it: no traceback
    checkpoints = tmp_path / "runs/diverge/version_0/checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["epoch=0-step=20.ckpt", "last.ckpt"]
    checkpoint = torch.load(checkpoints / "last.ckpt")
    assert checkpoint["global_step"] == 20
    assert all(torch.isfinite(t).all() for t in checkpoint["state_dict"].values())
    CoordNetModule.load_from_checkpoint(checkpoints / "last.ckpt")  # it loads


@pytest.mark.parametrize("at_step, message", [
    (2, "training diverged at step 2: the loss is nan; no checkpoint was saved before it"),
    # the last update made the parameters NaN: no loss shows it, the checkpoint at the end of training does
    (4, "training diverged at step 4: the parameters are NaN or infinite; no checkpoint was saved before it"),
])
def test_make_trainer_never_writes_a_checkpoint_of_diverged_parameters(tmp_path, at_step, message):
    # nothing is checked before the end of training (logs every 50 steps), where save_last would write last.ckpt
    trainer = make_trainer(str(tmp_path), "nan", max_steps=4, enable_progress_bar=False, callbacks=[Poison(at_step)])
    with pytest.raises(TrainingDiverged) as error:
        trainer.fit(CoordNetModule(2, 3, 16, 2, "relu", "he", reconstruction_every_n_steps=None),
                    ImageDataModule("astronaut", 8))
    assert str(error.value) == message
    assert not list(tmp_path.rglob("*.ckpt"))
