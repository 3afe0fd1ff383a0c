"""Faults, misuse and hostile input, run through the CLI as a user would: nothing lost, nothing run, nothing
changed silently, and one line naming the input for each mistake."""

import math
import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from coordnet.cli import main
from coordnet.data import ImageDataModule, load_image
from coordnet.models import CoordMLP
from coordnet.notes import InputNote
from coordnet.ntk import kernel_distance, ntk_matvec, spectrum
from coordnet.training import CoordNetModule, make_trainer, predict

SIGNAL = ["--data", "SignalDataModule", "--data.init_args.signal"]


def png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG that declares width × height 16-bit RGB pixels and holds one compressed empty row: ~100 bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0"))
                     + chunk(b"IEND", b""))


def assert_one_error_line(err: str, message: str) -> None:
    """stderr ends in one ``coordnet: error:`` line holding ``message``, with no traceback or usage dump."""
    lines = err.strip().splitlines()
    assert lines[-1].startswith("coordnet: error: ") and message in lines[-1], lines[-1]
    assert sum(line.startswith("coordnet: error") for line in lines) == 1
    assert "Traceback" not in err and "usage:" not in err


@pytest.fixture
def fault_files(tmp_path):
    """Inputs a user may hand the CLI by mistake (or on purpose), written beside the tiny config."""
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "list.yaml").write_text("- model\n- data\n")
    (tmp_path / "scalar.yaml").write_text("42\n")
    (tmp_path / "binary.yaml").write_bytes(bytes(range(256)))
    (tmp_path / "malformed.yaml").write_text("model: {hidden: [1, 2\n")
    (tmp_path / "twice.yaml").write_text("model:\n  hidden: 16\n  hidden: 64\n")
    (tmp_path / "empty.ckpt").write_bytes(b"")
    (tmp_path / "adir").mkdir()
    os.mkfifo(tmp_path / "fifo.png")
    (tmp_path / "empty.npy").write_bytes(b"")
    np.savez(tmp_path / "archive.npz", a=np.zeros(10))
    (tmp_path / "archive.npz").rename(tmp_path / "disguised.npy")
    np.save(tmp_path / "loud.npy", np.full(100, 1e20, np.float32))
    np.save(tmp_path / "huge64.npy", np.full(100, 1e300))
    np.save(tmp_path / "complex.npy", np.exp(1j * np.linspace(0, 6, 100)))
    np.save(tmp_path / "wide.npy", np.zeros((3, 50)))
    png_header_only(tmp_path / "bomb.png", 14000, 14000)


STEP_LR = "{class_path: torch.optim.lr_scheduler.StepLR, init_args: {step_size: 0}}"
NAN_GAMMA = "{class_path: torch.optim.lr_scheduler.MultiStepLR, init_args: {milestones: [3], gamma: .nan}}"
PE = "{class_path: PositionalEncoding, init_args: {num_frequencies: 1100}}"
NTK_FULL = "[{class_path: NTKSpectrumCallback, init_args: {num_points: 4, full_data_every_n_steps: 1}}]"


@pytest.mark.parametrize("override, message", [
    # checkpoints that are not ones
    (["--ckpt_path", "tiny.yaml"], "ckpt_path 'tiny.yaml': not a checkpoint (torch.save writes a zip archive"),
    (["--ckpt_path", "empty.ckpt"], "ckpt_path 'empty.ckpt': the file is empty, expected a checkpoint"),
    (["--ckpt_path", "adir"], "ckpt_path 'adir': is a directory, expected a checkpoint file"),
    # trainer values Lightning takes and then fails on, or changes
    (["--trainer.log_every_n_steps", "0"], "trainer.log_every_n_steps must be ≥ 1, got 0"),
    (["--trainer.val_check_interval", "0"], "trainer.val_check_interval must be a step count ≥ 1"),
    (["--model.lr_scheduler", STEP_LR], "model.lr_scheduler StepLR(step_size=0"),
    (["--model.lr_scheduler", NAN_GAMMA], "the learning rate became nan after 3 steps; check its settings"),
    (["--model.hidden", "300000"], "GiB, more than this machine's"),
    (["--seed_everything", "99999999999"], "seed_everything must be an integer in [0, 4294967295], got 99999999999"),
    (["--data.init_args.seed", "-1"], "data.seed must be an integer in [0, 4294967295], got -1"),
    (["--model.encoding", PE], "PositionalEncoding: num_frequencies 1100 is too many"),
    # config files
    (["--config", "empty.yaml"], "config 'empty.yaml': is empty"),
    (["--config", "list.yaml"], "config 'list.yaml': its top level is a list; expected a mapping"),
    (["--config", "scalar.yaml"], "config 'scalar.yaml': its top level is a number"),
    (["--config", "binary.yaml"], "config 'binary.yaml': is not a text file"),
    (["--config", "malformed.yaml"], "config 'malformed.yaml': not valid YAML (line 2)"),
    (["--config", "twice.yaml"], "config 'twice.yaml': not valid YAML (line 3): the key 'hidden' is given twice"),
    (["--config", "missing.yaml"], "config 'missing.yaml': no such file"),
    # data sources
    (["--data.init_args.image", "fifo.png"], "image 'fifo.png': is not a regular file (a FIFO, socket or device)"),
    (["--data.init_args.image", "adir"], "image 'adir': is a directory, expected a file"),
    ([*SIGNAL, "adir"], "signal 'adir': is a directory, expected a file"),
    (["--data.init_args.image", "~nosuchuser/cat.png"], "image '~nosuchuser/cat.png': cannot expand '~nosuchuser'"),
    ([*SIGNAL, "empty.npy"], "signal 'empty.npy': could not be read as a .npy array"),
    ([*SIGNAL, "disguised.npy"], "signal 'disguised.npy': is a .npz archive of arrays, expected one .npy array"),
    ([*SIGNAL, "loud.npy"], "signal 'loud.npy': values up to 1e+20 in magnitude"),
    ([*SIGNAL, "huge64.npy"], "signal 'huge64.npy': values up to 1e+300 in magnitude"),
    ([*SIGNAL, "complex.npy"], "signal 'complex.npy': complex values (complex128); expected a real array"),
    ([*SIGNAL, "wide.npy"], "signal 'wide.npy': shape (3, 50) has fewer samples than channels"),
    (["--data.init_args.image", "bomb.png"], "image 'bomb.png': declares 14000 × 14000 × 3 = 588,000,000 values, "
                                            "more than the limit of 300,000,000 (set COORDNET_MAX_VALUES"),
    # a config may not run code: LambdaCallback calls any function it names
    (["--trainer.callbacks", "[{class_path: LambdaCallback, init_args: {on_fit_start: builtins.print}}]"],
     "trainer.callbacks: a config may not import"),
])
def test_fault_exits_2_with_one_line_naming_the_input(tiny_config, fault_files, capsys, override, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(tiny_config), "--trainer.max_steps", "5", *override])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert_one_error_line(err, message)
    assert not list(Path("runs").rglob("*")) or all(any(d.iterdir()) for d in Path("runs").glob("*/version_*"))


@pytest.mark.parametrize("limit, source", [("100", "photo.png"), ("100", "tone.wav"), ("100", "tone.npy")])
def test_every_reader_checks_the_declared_size_before_decoding(tiny_config, tmp_path, capsys, monkeypatch, limit,
                                                               source):
    from conftest import write_wav

    write_wav(tmp_path / "tone.wav", np.zeros((300, 1)), 16)
    np.save(tmp_path / "tone.npy", np.zeros(300))
    monkeypatch.setenv("COORDNET_MAX_VALUES", limit)
    key = ["--data.init_args.image"] if source.endswith(".png") else SIGNAL
    with pytest.raises(SystemExit):
        main(["fit", "--config", str(tiny_config), *key, source])
    assert "more than the limit of 100 (set COORDNET_MAX_VALUES" in capsys.readouterr().err


def test_a_cmyk_jpeg_is_fitted_in_its_true_colours_with_a_note(tmp_path):
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 255
    Image.fromarray(red).convert("CMYK").save(tmp_path / "red.jpg", quality=100)
    with pytest.warns(InputNote, match="CMYK converted to RGB"):
        pixels = load_image(str(tmp_path / "red.jpg"))
    assert pixels.shape == (16, 16, 3)
    np.testing.assert_allclose(pixels.mean(axis=(0, 1)), [1, 0, 0], atol=0.02)


def test_tiny_data_with_full_data_measurements_is_measured_exactly(tiny_config, tmp_path):
    # 2 samples, trained on 1: a 1 × 1 full kernel (the old Lanczos defaults refused it, naming `deflate`)
    main(["fit", "--config", str(tiny_config), "--trainer.max_steps", "2", *SIGNAL, "chirp",
          "--data.init_args.num_samples", "2", "--data.init_args.protocol", "fourier", "--trainer.callbacks", NTK_FULL])
    rows = (tmp_path / "runs/tiny/version_0/ntk_full_spectrum.csv").read_text().splitlines()
    assert len(rows) == 4  # header and steps 0, 1, 2


# -- resuming: refused mismatches, what the checkpoint holds, branches, reruns ----------------------------------


@pytest.fixture
def finished_run(tiny_config, tmp_path):
    """tiny.yaml fitted for 40 steps with a checkpoint every 20 (kept): runs/tiny/version_0."""
    tiny_config.write_text(tiny_config.read_text() + "checkpoint:\n  every_n_train_steps: 20\n  save_top_k: -1\n")
    main(["fit", "--config", str(tiny_config), "--trainer.max_steps", "40"])
    return tmp_path / "runs/tiny/version_0"


def test_resuming_with_other_settings_is_refused_naming_each(tiny_config, finished_run, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(tiny_config), "--ckpt_path", str(finished_run / "checkpoints/last.ckpt"),
              "--model.lr", "0.5", "--model.hidden", "64", "--model.activation", "relu", "--model.init", "he"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    for part in ("model.activation: the checkpoint has Sine(omega0=30.0), the config asks for relu",
                 "model.hidden: the checkpoint has 32, the config asks for 64",
                 "model.lr: the checkpoint has 0.001, the config asks for 0.5", "model.init: the checkpoint has siren"):
        assert part in err


def test_another_tasks_checkpoint_says_what_it_holds(tiny_config, tmp_path, capsys):
    main(["fit", "--config", str(tiny_config), "--trainer.max_steps", "2", *SIGNAL, "chirp",
          "--data.init_args.num_samples", "64", "--trainer.logger.init_args.name", "signal"])
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(tiny_config), "--ckpt_path", "runs/signal/version_0/checkpoints/last.ckpt"])
    assert exit_info.value.code == 2
    assert "data: the checkpoint has SignalDataModule, the config asks for ImageDataModule" in capsys.readouterr().err


def test_a_truncated_checkpoint_is_named(tiny_config, finished_run, capsys):
    data = (finished_run / "checkpoints/last.ckpt").read_bytes()
    Path("cut.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(SystemExit):
        main(["fit", "--config", str(tiny_config), "--ckpt_path", "cut.ckpt"])
    assert "ckpt_path 'cut.ckpt': not a checkpoint torch can read, or cut short" in capsys.readouterr().err


def file_digests(run_dir: Path) -> dict[str, bytes]:
    return {str(f.relative_to(run_dir)): f.read_bytes() for f in sorted(run_dir.rglob("*")) if f.is_file()}


def test_branching_from_an_older_checkpoint_starts_a_new_version(tiny_config, finished_run, capsys):
    before = file_digests(finished_run)
    main(["fit", "--config", str(tiny_config), "--ckpt_path", str(finished_run / "checkpoints/epoch=0-step=20.ckpt"),
          "--trainer.max_steps", "30"])
    assert "is not the latest checkpoint" in capsys.readouterr().err
    assert file_digests(finished_run) == before  # the original run is as it was
    branch = finished_run.parent / "version_1"
    assert torch.load(branch / "checkpoints/last.ckpt")["global_step"] == 30


def test_rerunning_a_resume_config_and_an_explicit_version(tiny_config, finished_run, capsys):
    last = str(finished_run / "checkpoints/last.ckpt")
    main(["fit", "--config", str(tiny_config), "--ckpt_path", last, "--trainer.max_steps", "50"])
    main(["fit", "--config", str(finished_run / "config_resume_1.yaml"), "--trainer.max_steps", "60"])
    assert (finished_run / "config_resume_2.yaml").is_file()
    assert torch.load(last)["global_step"] == 60
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(tiny_config), "--trainer.logger.init_args.version", "0"])
    assert exit_info.value.code == 2
    assert "trainer.logger.init_args.version 0: runs/tiny/version_0 already holds a run" in capsys.readouterr().err


def test_the_logger_off_twice_gives_two_run_directories(tiny_config, tmp_path):
    for _ in range(2):
        main(["fit", "--config", str(tiny_config), "--trainer.logger", "false", "--trainer.max_steps", "2"])
    for version in (0, 1):
        run = tmp_path / f"runs/tiny/version_{version}"
        assert (run / "config.yaml").is_file() and (run / "checkpoints/last.ckpt").is_file()
    assert not (tmp_path / "config.yaml").exists() and not (tmp_path / "checkpoints").exists()


def test_two_trainers_of_one_process_claim_two_versions(tmp_path):
    first, second = make_trainer(str(tmp_path), "sweep"), make_trainer(str(tmp_path), "sweep")
    assert {first.logger.version, second.logger.version} == {0, 1}
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir()) == ["version_0", "version_1"]


def test_coordnet_test_scores_every_point_and_writes_nothing(tiny_config, finished_run, capsys):
    before = sorted(p for p in Path(".").rglob("*"))
    main(["test", "--config", str(tiny_config), "--ckpt_path", str(finished_run / "checkpoints/last.ckpt")])
    out = capsys.readouterr().out
    assert "test/psnr" in out and "test/loss" in out
    assert sorted(p for p in Path(".").rglob("*")) == before


def test_the_progress_bar_can_be_turned_off(tiny_config, tmp_path, capsys):
    main(["fit", "--config", str(tiny_config), "--trainer.enable_progress_bar", "false", "--trainer.max_steps", "2"])
    assert "Epoch 0" not in capsys.readouterr().err
    assert (tmp_path / "runs/tiny/version_0/checkpoints/last.ckpt").is_file()


# -- checkpoints: never of diverged parameters, never half-written ---------------------------------------------


@pytest.mark.parametrize("weights_only", [True, False])
def test_divergence_never_replaces_a_good_checkpoint(tiny_config, tmp_path, capsys, weights_only):
    """The learning rate jumps to 1e27 after 25 steps; checkpoints every 20 (every one kept) and 45, logs every 50."""
    scheduler = "{class_path: torch.optim.lr_scheduler.MultiStepLR, init_args: {milestones: [25], gamma: 1.0e+30}}"
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(tiny_config), "--model.lr_scheduler", scheduler, "--trainer.max_steps", "45",
              "--trainer.log_every_n_steps", "50", "--checkpoint.every_n_train_steps", "20",
              "--checkpoint.save_weights_only", str(weights_only).lower()])
    assert exit_info.value.code == 1
    assert "last good checkpoint: runs/tiny/version_0/checkpoints/last.ckpt (step 20)" in capsys.readouterr().err
    checkpoints = tmp_path / "runs/tiny/version_0/checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["epoch=0-step=20.ckpt", "last.ckpt"]
    for path in checkpoints.iterdir():
        state = torch.load(path)
        assert state["global_step"] == 20 and all(torch.isfinite(t).all() for t in state["state_dict"].values())


@pytest.fixture
def small_mount(tmp_path):
    """Factory: a tmpfs of ``size`` mounted at a fresh directory (another filesystem than the temporary one)."""
    mounted = []

    def mount(name: str, size: str, read_only: bool = False) -> Path:
        point = tmp_path / name
        point.mkdir()
        options = f"size={size}" + (",ro" if read_only else "")
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({result.stderr.decode().strip() or 'mount failed'})")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def test_a_full_disk_keeps_the_checkpoints_there_and_leaves_no_partial_file(tiny_config, small_mount, capsys):
    runs = small_mount("runs", "160k")
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(tiny_config), "--model.hidden", "128", "--trainer.max_steps", "40",
              "--checkpoint.every_n_train_steps", "1", "--trainer.logger.init_args.save_dir", str(runs)])
    assert exit_info.value.code == 2
    assert "(No space left on device); the checkpoints already there are kept" in capsys.readouterr().err
    leftovers = [p for p in runs.rglob("*") if p.is_file() and (p.stat().st_size == 0 or p.name.endswith(".tmp"))]
    assert not leftovers


def test_a_read_only_runs_directory_is_one_line(tiny_config, small_mount, capsys):
    runs = small_mount("runs", "1m", read_only=True)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(tiny_config), "--trainer.logger.init_args.save_dir", str(runs)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == \
        f"coordnet: error: {runs}/tiny: Read-only file system"


def test_sigkill_during_checkpoint_writes_never_leaves_a_broken_last_ckpt(tiny_config, small_mount):
    """SIGKILL at 12 random moments of a run writing a checkpoint every step onto a tmpfs: every time last.ckpt
    loads, and the only stray files are the killed writer's temporaries, which the next run removes."""
    runs = small_mount("runs", "64m")
    rng = np.random.default_rng(0)
    command = [sys.executable, "-m", "coordnet.cli", "fit", "--config", str(tiny_config), "--model.hidden", "128",
               "--trainer.max_steps", "100000", "--checkpoint.every_n_train_steps", "1",
               "--trainer.enable_progress_bar", "false", "--trainer.logger.init_args.save_dir", str(runs),
               "--trainer.logger.init_args.version", "0"]
    last = runs / "tiny/version_0/checkpoints/last.ckpt"
    killed = []
    for _ in range(12):
        resume = ["--ckpt_path", str(last)] if last.exists() else []
        process = subprocess.Popen(command[:-2] + resume if resume else command, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while not last.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.05, 1.0))
            process.kill()
            process.wait(timeout=30)
            killed.append(process.pid)
        finally:
            process.kill()
        torch.load(last)  # readable, whole
        strays = [p.name for p in last.parent.iterdir() if not p.name.endswith(".ckpt")]
        assert all(name.startswith(".") and name.endswith(tuple(f".{pid}.tmp" for pid in killed))
                   for name in strays), strays
    assert len(killed) == 12
    # one more short run in the same directory removes the dead writer's temporaries
    subprocess.run(command[:-2] + ["--ckpt_path", str(last), "--trainer.max_steps",
                                   str(torch.load(last)["global_step"] + 1)], check=True,
                   capture_output=True)
    assert all(p.name.endswith(".ckpt") for p in last.parent.iterdir())


# -- interrupts keep the work ----------------------------------------------------------------------------------


@pytest.mark.parametrize("signum, code", [(2, 130), (15, 143)])  # SIGINT, SIGTERM
def test_an_interrupted_fit_saves_its_step_and_resumes_bitwise(tiny_config, tmp_path, signum, code):
    import signal
    import time

    from coordnet.ntk.history import HISTORY_FILE

    config = ["--config", str(tiny_config), "--trainer.max_steps", "400", "--trainer.enable_progress_bar", "false",
              "--trainer.callbacks", "[{class_path: NTKSpectrumCallback, init_args: {num_points: 16, "
              "every_n_steps: 10, log_figure: false}}]"]
    process = subprocess.Popen([sys.executable, "-m", "coordnet.cli", "fit", *config], stderr=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, text=True)
    history = tmp_path / "runs/tiny/version_0" / HISTORY_FILE
    deadline = time.monotonic() + 90
    while not (history.exists() and len(history.read_text().splitlines()) > 3):  # past step 20
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before it was interrupted"
        time.sleep(0.01)
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == code
    last_line = err.strip().splitlines()[-1]
    assert last_line.startswith(f"coordnet: interrupted by {signal.Signals(signum).name} at step ")
    step = int(last_line.split(" at step ")[1].split(";")[0])
    assert 20 <= step < 400  # sent once step 20's NTK row is written, inside step 20 at the earliest
    resume = last_line.split("resume with: ")[1]
    assert resume == ("coordnet fit --config runs/tiny/version_0/config.yaml --ckpt_path "
                      "runs/tiny/version_0/checkpoints/last.ckpt")
    assert torch.load("runs/tiny/version_0/checkpoints/last.ckpt")["global_step"] == step

    cli = [sys.executable, "-m", "coordnet.cli"]  # every run as the user runs it, in a process of its own
    subprocess.run(cli + resume.split()[1:], check=True, capture_output=True)
    subprocess.run(cli + ["fit", *config, "--trainer.logger.init_args.name", "uninterrupted"], check=True,
                   capture_output=True)
    assert sorted(p.name for p in Path("runs/tiny/version_0/checkpoints").iterdir()) == ["last.ckpt"]
    resumed = torch.load("runs/tiny/version_0/checkpoints/last.ckpt")
    straight = torch.load("runs/uninterrupted/version_0/checkpoints/last.ckpt")
    assert resumed["global_step"] == straight["global_step"] == 400
    a, b = resumed["state_dict"], straight["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- a config does not run code --------------------------------------------------------------------------------


def test_a_class_path_beside_the_config_is_not_imported(tiny_config, tmp_path):
    (tmp_path / "evil.py").write_text("open('imported', 'w').close()\nclass X:\n    pass\n")
    (tmp_path / "evil.yaml").write_text("trainer:\n  callbacks:\n    - class_path: evil.X\n")
    result = subprocess.run([sys.executable, "-m", "coordnet.cli", "fit", "--config", str(tiny_config),
                             "--config", "evil.yaml"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2 and not (tmp_path / "imported").exists()
    assert result.stderr.strip().splitlines()[-1] == (
        "coordnet: error: trainer.callbacks: a config may not import 'evil.X' (only coordnet, torch.optim, torch.nn "
        "and Lightning, without LambdaCallback); to trust package 'evil', add --allow_import evil")


# -- the Python API: shapes named, kernels checked -------------------------------------------------------------


def test_python_api_shape_errors_name_the_argument():
    model = CoordMLP(2, 3, 16, 2, "relu", "he")
    with pytest.raises(ValueError, match=r"CoordMLP input: expected coordinates of shape \(N, 2\) with N ≥ 1, "
                                         r"got \(5, 3\)"):
        model(torch.zeros(5, 3))
    with pytest.raises(ValueError, match=r"got \(0, 2\)"):
        model(torch.zeros(0, 2))
    with pytest.raises(ValueError, match=r"predict: coords: expected coordinates of shape \(N, 2\)"):
        predict(CoordNetModule(2, 3, 16, 2, "relu", "he"), torch.zeros(4, 4, 2))
    matvec = ntk_matvec(model, torch.rand(4, 2))
    with pytest.raises(ValueError, match=r"ntk_matvec: expected v of shape \(N·O,\) or \(N·O, k\) with N·O = 4 · 3 "
                                         r"= 12, got \(5,\)"):
        matvec(torch.ones(5))


def test_kernel_comparisons_refuse_kernels_they_cannot_compare():
    k = torch.eye(3) + 0.1
    with pytest.raises(ValueError, match="k1 is all zeros"):
        kernel_distance(k, torch.zeros(3, 3))
    with pytest.raises(ValueError, match="k1 holds NaN or infinite entries"):
        kernel_distance(k, torch.full((3, 3), math.nan))
    with pytest.raises(ValueError, match="not positive semi-definite"):
        spectrum(-2 * torch.eye(4))
    assert spectrum(torch.zeros(3, 3)).lambda_max == 0  # PSD, if degenerate: reported, not refused


def test_a_non_finite_loss_before_any_update_is_diagnosed_as_an_input_fault(tmp_path):
    model = CoordNetModule(2, 1, 16, 2, "relu", "he", reconstruction_every_n_steps=None, bias_std=1e30)
    model.model.linears[0].weight.data.fill_(1e30)
    trainer = make_trainer(str(tmp_path), "init", max_steps=3, log_every_n_steps=1, enable_progress_bar=False)
    with pytest.raises(Exception, match="the loss at step 0, before any update, is .*: the network's output at "
                                        "initialisation is NaN or infinite"):
        trainer.fit(model, ImageDataModule("camera", 8))
