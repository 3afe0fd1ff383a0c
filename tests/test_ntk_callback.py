"""NTKSpectrumCallback: logged values against direct engine calls, no effect on training, resume, TensorBoard."""

import copy
import glob
import json
import math
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from types import SimpleNamespace

import pytest
import torch
from pytorch_lightning import Callback, Trainer
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import Poison
from coordnet.data import ImageDataModule
from coordnet.ntk import empirical_ntk, kernel_distance, ntk_layer_diagonals, spectrum, target_alignment
from coordnet.ntk.history import HISTORY_FILE, read_history
from coordnet.training import TRAINER_DEFAULTS, CoordNetModule, NTKSpectrumCallback
from coordnet.training.ntk_callback import isolated

SCALARS = ["lambda_min", "lambda_max", "condition_number", "trace", "effective_rank", "floor",
           "kernel_distance_init", "kernel_velocity", "target_alignment"]


class ParameterSnapshots(Callback):
    """Copies of the module's state at step 0 and after every optimiser step, keyed by step."""

    def __init__(self) -> None:
        self.states: dict[int, dict] = {}

    def on_train_start(self, trainer, pl_module) -> None:
        self.states[trainer.global_step] = copy.deepcopy(pl_module.state_dict())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.states[trainer.global_step] = copy.deepcopy(pl_module.state_dict())


class LossRecorder(Callback):
    def __init__(self) -> None:
        self.losses: list[torch.Tensor] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(outputs["loss"].detach().clone())


class Interrupt(Callback):
    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.at_step:
            raise RuntimeError("interrupted")


def module(seed: int = 0) -> CoordNetModule:
    torch.manual_seed(seed)
    return CoordNetModule(2, 3, 16, 2, "sine", "siren", lr=1e-3, reconstruction_every_n_steps=None)


def trainer(save_dir, steps: int, callbacks: list, version: int | None = None, checkpoint_every: int = 500) -> Trainer:
    logger = TensorBoardLogger(str(save_dir), name="ntk", version=version, default_hp_metric=False)
    checkpoint = ModelCheckpoint(save_last=True, every_n_train_steps=checkpoint_every)
    return Trainer(**(TRAINER_DEFAULTS | {"max_steps": steps, "logger": logger, "callbacks": [*callbacks, checkpoint],
                                          "enable_progress_bar": False, "log_every_n_steps": 5}))


def events(log_dir: str) -> EventAccumulator:
    (event_file,) = glob.glob(f"{log_dir}/events.out.tfevents.*")
    acc = EventAccumulator(event_file, size_guidance={"scalars": 0, "histograms": 0, "images": 0})
    acc.Reload()
    return acc


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """An RGB image (astronaut 12×12 = 144 pixels), probe of 64 pixels, measured at steps 0, 5, 10, 15."""
    dm = ImageDataModule("astronaut", 12)
    ntk = NTKSpectrumCallback(num_points=64, every_n_steps=5)
    snapshots = ParameterSnapshots()
    t = trainer(tmp_path_factory.mktemp("run"), 15, [ntk, snapshots])
    t.fit(module(), dm)
    return t.log_dir, ntk, snapshots, dm


def test_every_logged_value_equals_a_direct_engine_call(run):
    log_dir, ntk, snapshots, dm = run
    assert torch.equal(ntk.probe_x, dm.train_x[dm.probe_indices(64, seed=0)])
    acc = events(log_dir)
    tags = acc.Tags()
    shares = [f"trace_share/layer_{l}" for l in range(3)]
    assert {f"ntk/{name}" for name in SCALARS + shares} <= set(tags["scalars"])
    assert "ntk/log10_eigenvalues" in tags["histograms"] and "ntk/spectrum" in tags["images"]
    assert [e.step for e in acc.Images("ntk/spectrum")] == [0, 5, 10, 15]

    net = module()
    kernels = {}
    for step in (0, 5, 10, 15):
        net.load_state_dict(snapshots.states[step])
        kernels[step] = empirical_ntk(net, ntk.probe_x, mode="mean")
        spec = spectrum(kernels[step])
        diagonals = ntk_layer_diagonals(net, ntk.probe_x).sum(1)
        expected = {"lambda_min": spec.lambda_min, "lambda_max": spec.lambda_max,
                    "condition_number": spec.condition_number, "trace": spec.trace,
                    "effective_rank": spec.effective_rank, "floor": spec.floor,
                    "kernel_distance_init": kernel_distance(kernels[0], kernels[step]),
                    "target_alignment": target_alignment(kernels[step], ntk.probe_y)}
        expected |= {f"trace_share/layer_{l}": (d / diagonals.sum()).item() for l, d in enumerate(diagonals)}
        if step:
            expected["kernel_velocity"] = kernel_distance(kernels[step - 5], kernels[step]) / 5
        for name, value in expected.items():
            (logged,) = [e.value for e in acc.Scalars(f"ntk/{name}") if e.step == step]
            assert logged == pytest.approx(value, rel=1e-6, abs=1e-12), (name, step)  # events hold float32
        (hist,) = [e.histogram_value for e in acc.Histograms("ntk/log10_eigenvalues") if e.step == step]
        log_eigs = spec.eigenvalues.clamp_min(spec.floor).log10()
        assert hist.num == 64 and hist.min == pytest.approx(log_eigs.min().item(), rel=1e-6)
        assert hist.max == pytest.approx(log_eigs.max().item(), rel=1e-6)
    assert not [e for e in acc.Scalars("ntk/kernel_velocity") if e.step == 0]
    assert kernel_distance(kernels[0], kernels[15]) > 1e-4  # the kernel moved, so the checks above mean something


def test_the_csv_holds_the_history_the_callback_logged(run):
    log_dir, ntk, _, _ = run
    columns = read_history(log_dir)
    assert columns["step"] == [0, 5, 10, 15]
    for name in SCALARS:
        assert columns[name] == pytest.approx([row[name] for row in ntk.history], nan_ok=True)
    assert math.isnan(columns["kernel_velocity"][0])
    shares = [sum(columns[f"trace_share/layer_{l}"][i] for l in range(3)) for i in range(4)]
    assert shares == pytest.approx([1.0] * 4)


def test_training_is_bitwise_identical_with_and_without_the_callback(tmp_path):
    results = []
    for callbacks in ([], [NTKSpectrumCallback(num_points=48, every_n_steps=3)]):
        losses = LossRecorder()
        net = module()
        dm = ImageDataModule("astronaut", 10, batch_size=50)  # random batches: the data RNG must not shift
        trainer(tmp_path, 10, [*callbacks, losses]).fit(net, dm)
        results.append((net.state_dict(), torch.stack(losses.losses)))
    (params_a, losses_a), (params_b, losses_b) = results
    assert torch.equal(losses_a, losses_b)
    assert all(torch.equal(params_a[k], params_b[k]) for k in params_a)


class StateProbe(Callback):
    """Placed before and after the NTK callback: gradients, modes and RNG state must not change in between."""

    def __init__(self, before: "StateProbe | None" = None) -> None:
        self.before, self.checked = before, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        state = ([None if p.grad is None else p.grad.clone() for p in pl_module.parameters()],
                 [m.training for m in pl_module.modules()], torch.get_rng_state())
        if self.before is None:
            self.state = state
            return
        grads, modes, rng = self.before.state
        assert all((a is None and b is None) or torch.equal(a, b) for a, b in zip(grads, state[0]))
        assert modes == state[1] and torch.equal(rng, state[2])
        self.checked += 1


def test_measuring_leaves_gradients_modes_and_rng_alone(tmp_path):
    before = StateProbe()
    after = StateProbe(before)
    ntk = NTKSpectrumCallback(num_points=32, every_n_steps=1)
    trainer(tmp_path, 4, [before, ntk, after]).fit(module(), ImageDataModule("astronaut", 8))
    assert after.checked == 4 and len(ntk.history) == 5


def test_isolated_restores_each_submodules_mode_and_the_rng():
    net = module()
    net.model.activation.eval()
    state = torch.get_rng_state()
    with isolated(net):
        assert not any(m.training for m in net.modules())
        torch.rand(3)
    assert net.training and not net.model.activation.training and net.model.training
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.filterwarnings("ignore:The dirpath has changed")  # the resumed run logs to a new version on purpose
def test_resumed_history_is_continuous_and_measured_against_step_0(tmp_path):
    dm = lambda: ImageDataModule("astronaut", 10)  # noqa: E731
    straight = NTKSpectrumCallback(num_points=40, every_n_steps=10)
    trainer(tmp_path / "straight", 40, [straight]).fit(module(), dm())

    first = NTKSpectrumCallback(num_points=40, every_n_steps=10)
    interrupted = trainer(tmp_path / "resumed", 40, [first, Interrupt(at_step=25)], version=0, checkpoint_every=20)
    with pytest.raises(RuntimeError, match="interrupted"):
        interrupted.fit(module(), dm())
    assert [row["step"] for row in first.history] == [0, 10, 20]

    second = NTKSpectrumCallback(num_points=40, every_n_steps=10)
    resumed = trainer(tmp_path / "resumed", 40, [second], version=1, checkpoint_every=20)
    resumed.fit(module(seed=1), dm(), ckpt_path=f"{interrupted.log_dir}/checkpoints/last.ckpt")
    columns = read_history(resumed.log_dir)
    assert columns["step"] == [0, 10, 20, 30, 40]
    for name in SCALARS:  # the same numbers as the run that was never interrupted
        assert columns[name] == pytest.approx([row[name] for row in straight.history], rel=1e-12, nan_ok=True)
    # TensorBoard in the new run directory: the restored history re-logged, then the new steps, once each
    acc = events(resumed.log_dir)
    assert [e.step for e in acc.Scalars("ntk/kernel_distance_init")] == [0, 10, 20, 30, 40]
    assert [e.step for e in acc.Scalars("ntk/kernel_velocity")] == [10, 20, 30, 40]


def test_only_global_rank_zero_measures():
    ntk = NTKSpectrumCallback(num_points=8, every_n_steps=1)
    other_rank = SimpleNamespace(is_global_zero=False, global_step=0, datamodule=None, log_dir=None, loggers=[])
    net = module()
    ntk.on_fit_start(other_rank, net)  # would raise on rank zero: there is no CoordDataModule
    ntk.on_train_start(other_rank, net)
    ntk.on_train_batch_end(other_rank, net, None, None, 0)
    assert ntk.probe_x is None and ntk.history == [] and ntk.state_dict() == {}


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="every_n_steps must be a positive integer"):
        NTKSpectrumCallback(every_n_steps=0)
    with pytest.raises(ValueError, match="mode must be 'mean', 'trace' or 'full'"):
        NTKSpectrumCallback(mode="per_output")
    with pytest.raises(ValueError, match="normalization must be 'raw' or 'by_n'"):
        NTKSpectrumCallback(normalization="N")


def test_full_mode_kernel_and_by_n_normalization(tmp_path):
    ntk = NTKSpectrumCallback(num_points=20, every_n_steps=5, mode="full", normalization="by_n", log_figure=False)
    net = module()
    t = trainer(tmp_path, 5, [ntk])
    t.fit(net, ImageDataModule("astronaut", 6))
    kernel = empirical_ntk(net, ntk.probe_x, mode="full", normalization="by_n")
    assert kernel.shape == (60, 60)
    assert ntk.history[-1]["lambda_max"] == pytest.approx(spectrum(kernel).lambda_max, rel=1e-12)
    assert ntk.history[-1]["target_alignment"] == pytest.approx(target_alignment(kernel, ntk.probe_y.reshape(-1)))
    assert "ntk/spectrum" not in events(t.log_dir).Tags()["images"]


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_a_tensorboard_server_serves_the_ntk_scalars(run):
    log_dir, ntk, _, _ = run
    server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", log_dir, "--host", "127.0.0.1",
                               "--port", "0", "--reload_interval", "1", "--load_fast", "false"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line and server.poll() is not None:
                break
            found = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
            url = found.group(1) if found else None
        assert url, "tensorboard did not report its address"
        tags = {}
        while not any("ntk/lambda_min" in t for t in tags.values()) and time.monotonic() < deadline:
            time.sleep(0.5)
            tags = _get_json(f"{url}/data/plugin/scalars/tags")
        (run_name,) = [r for r, t in tags.items() if "ntk/lambda_min" in t]
        assert {f"ntk/{name}" for name in SCALARS} <= set(tags[run_name])
        for name in ("lambda_min", "condition_number"):
            query = urllib.parse.urlencode({"run": run_name, "tag": f"ntk/{name}"})
            points = _get_json(f"{url}/data/plugin/scalars/scalars?{query}")  # [[wall time, step, value], …]
            assert [p[1] for p in points] == [0, 5, 10, 15]
            assert [p[2] for p in points] == pytest.approx([row[name] for row in ntk.history], rel=1e-6)
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.filterwarnings("ignore")  # process-group and spawn notices
def test_multi_process_training_measures_on_rank_zero_only(tmp_path):
    ntk = NTKSpectrumCallback(num_points=16, every_n_steps=2, log_figure=False)
    logger = TensorBoardLogger(str(tmp_path), name="ddp", default_hp_metric=False)
    t = Trainer(**(TRAINER_DEFAULTS | {"max_steps": 4, "logger": logger, "callbacks": [ntk], "accelerator": "cpu",
                                       "devices": 2, "strategy": "ddp_spawn", "enable_progress_bar": False,
                                       "enable_checkpointing": False}))
    t.fit(module(), ImageDataModule("astronaut", 6))
    (history,) = glob.glob(f"{tmp_path}/ddp/version_*/{HISTORY_FILE}")  # written by rank zero's process
    assert read_history(history)["step"] == [0, 2, 4]


def test_non_finite_parameters_give_a_warning_not_a_crash(tmp_path):
    ntk = NTKSpectrumCallback(num_points=16, every_n_steps=1, log_figure=False)
    with pytest.warns(UserWarning, match="step 2: the NTK has NaN or infinite entries"):
        trainer(tmp_path, 2, [Poison(at_step=2), ntk]).fit(module(), ImageDataModule("astronaut", 6))
    assert [row["step"] for row in ntk.history] == [0, 1]
