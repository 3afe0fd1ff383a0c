"""CoordNetModule under the Lightning Trainer: logging, protocols, batching, checkpoints."""

import copy
import glob
from functools import partial

import pytest
import torch
from pytorch_lightning import Callback
from pytorch_lightning.callbacks import LearningRateMonitor
from pytorch_lightning.plugins import MixedPrecision
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from coordnet.data import ImageDataModule, MemorizationDataModule, SignalDataModule
from coordnet.experiments.benchmarks import InterleavedPlainLoop
from coordnet.models import FourierFeatures
from coordnet.training import CoordNetModule, ProgressBar, make_trainer, predict, psnr


def read_events(log_dir: str) -> EventAccumulator:
    (event_file,) = glob.glob(f"{log_dir}/events.out.tfevents.*")
    acc = EventAccumulator(event_file, size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def fit(tmp_path, dm, steps=30, **module_kwargs):
    module = CoordNetModule(dm.in_features, dm.out_features, data_range=dm.data_range, **module_kwargs)
    trainer = make_trainer(str(tmp_path), "t", max_steps=steps, enable_progress_bar=False, log_every_n_steps=5,
                           val_check_interval=10)
    trainer.fit(module, dm)
    return module, trainer


def test_psnr_formula():
    assert psnr(torch.tensor(0.01)).item() == pytest.approx(20.0)
    assert psnr(torch.tensor(0.04), data_range=2.0).item() == pytest.approx(20.0)


def test_image_fit_logs_loss_psnr_test_split_and_reconstruction(tmp_path):
    dm = ImageDataModule("camera", 16, protocol="fourier")
    module, trainer = fit(tmp_path, dm, hidden=32, depth=2, activation="sine", init="siren", lr=1e-3,
                          reconstruction_every_n_steps=10)
    acc = read_events(trainer.log_dir)
    tags = acc.Tags()
    assert {"train/loss", "train/psnr", "test/loss", "test/psnr"} <= set(tags["scalars"])
    assert "reconstruction" in tags["images"]
    psnrs = [e.value for e in acc.Scalars("train/psnr")]
    assert psnrs[-1] > psnrs[0]  # it learns
    # test/psnr is the PSNR on the [1::2, 1::2] pixels at the logged step
    final = predict(module.cpu(), dm.test_x.cpu())
    logged = acc.Scalars("test/psnr")[-1]
    expected = psnr(((final - dm.test_y.cpu()) ** 2).mean()).item()
    assert logged.step == 30 and logged.value == pytest.approx(expected, abs=1e-3)
    assert glob.glob(f"{trainer.log_dir}/checkpoints/last.ckpt")


def test_memorize_protocol_has_no_test_metrics(tmp_path):
    _, trainer = fit(tmp_path, ImageDataModule("camera", 8), hidden=16, depth=1, activation="relu", init="he",
                     reconstruction_every_n_steps=None)
    scalars = read_events(trainer.log_dir).Tags()["scalars"]
    assert "train/psnr" in scalars and not any(t.startswith("test/") for t in scalars)


def test_signal_reconstruction_is_a_figure(tmp_path):
    dm = SignalDataModule("sines", 256)
    _, trainer = fit(tmp_path, dm, steps=10, hidden=16, depth=2, activation="sine", init="siren",
                     reconstruction_every_n_steps=5)
    assert "reconstruction" in read_events(trainer.log_dir).Tags()["images"]  # add_figure stores an image


def test_random_pixel_batches_and_memorization_set(tmp_path):
    dm = MemorizationDataModule(64, 3, "sphere", batch_size=16)
    module, trainer = fit(tmp_path, dm, steps=20, hidden=32, depth=1, activation="abs", init="eoc",
                          reconstruction_every_n_steps=10)
    assert trainer.global_step == 20


def test_checkpoint_rebuilds_the_model_with_its_encoding(tmp_path):
    dm = ImageDataModule("camera", 8)
    module, trainer = fit(tmp_path, dm, steps=5, hidden=16, depth=2, activation="relu", init="he",
                          encoding=partial(FourierFeatures, num_features=8, sigma=2.0), reconstruction_every_n_steps=None)
    loaded = CoordNetModule.load_from_checkpoint(f"{trainer.log_dir}/checkpoints/last.ckpt")
    x = torch.rand(10, 2)
    torch.testing.assert_close(predict(loaded.cpu(), x), predict(module.cpu(), x))
    assert loaded.output_offset.abs().sum() > 0  # the target-mean offset came back too


def test_optimizer_and_scheduler_are_injectable_and_the_scheduler_steps_every_step(tmp_path):
    dm = ImageDataModule("camera", 8)
    module = CoordNetModule(2, 1, 8, 1, "relu", "he", optimizer=lambda p: torch.optim.SGD(p, lr=0.5),
                            lr_scheduler=lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=1, gamma=0.5),
                            reconstruction_every_n_steps=None)
    trainer = make_trainer(str(tmp_path), max_steps=4, log_every_n_steps=1, enable_progress_bar=False,
                           enable_checkpointing=False, callbacks=[LearningRateMonitor()])
    trainer.fit(module, dm)
    (opt,) = trainer.optimizers
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["lr"] == pytest.approx(0.5 * 0.5**4)
    # LearningRateMonitor logs a step-interval scheduler at every step: the lr each step was taken with
    logged = [e.value for e in read_events(trainer.log_dir).Scalars("lr-SGD")]
    assert logged == pytest.approx([0.5, 0.25, 0.125, 0.0625])


@pytest.mark.parametrize("kwargs, match", [
    ({"lr": float("nan")}, "lr must be a finite number > 0"),
    ({"lr": -1e-3}, "lr must be a finite number > 0"),
    ({"reconstruction_every_n_steps": 0}, "reconstruction_every_n_steps must be > 0"),
    ({"gradient_clip_val": 0.0}, "gradient_clip_val must be a finite number > 0"),
    ({"gradient_clip_val": float("inf")}, "gradient_clip_val must be a finite number > 0"),
])
def test_bad_module_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CoordNetModule(**kwargs)


@pytest.mark.parametrize("center", [True, False])
def test_output_offset_is_the_mean_training_target(tmp_path, center):
    dm = ImageDataModule("astronaut", 8)
    module, _ = fit(tmp_path, dm, steps=2, hidden=8, depth=1, activation="relu", init="he",
                    reconstruction_every_n_steps=None, center_targets=center)
    expected = dm.train_y.mean(dim=0).cpu() if center else torch.zeros(3)
    torch.testing.assert_close(module.output_offset.cpu(), expected)
    x = torch.rand(5, 2)
    torch.testing.assert_close(module.cpu()(x), module.model(x) + expected)


def test_psnr_history_records_every_step_the_validations_and_the_final_fit(tmp_path):
    from coordnet.tables import read_csv_columns
    from coordnet.training import PSNRHistory

    dm = ImageDataModule("camera", 16, protocol="fourier")
    module = CoordNetModule(2, 1, hidden=32, depth=2, activation="sine", init="siren", lr=1e-3)
    history = PSNRHistory()
    trainer = make_trainer(str(tmp_path), "t", max_steps=20, enable_progress_bar=False, log_every_n_steps=1,
                           val_check_interval=5, callbacks=[history])
    trainer.fit(module, dm)
    rows = read_csv_columns(f"{trainer.log_dir}/{PSNRHistory.FILE}")
    assert rows["step"] == list(range(21))
    logged = {e.step: e.value for e in read_events(trainer.log_dir).Scalars("train/psnr")}
    for step in range(20):  # both: the PSNR of the parameters after s steps, on the batch step s + 1 trains on
        assert rows["train_psnr"][step] == pytest.approx(logged[step], abs=1e-4)
    tested = {int(s): v for s, v in zip(rows["step"], rows["test_psnr"]) if v == v}
    test_logged = {e.step: e.value for e in read_events(trainer.log_dir).Scalars("test/psnr")}
    assert set(tested) == {5, 10, 15, 20} and all(tested[s] == pytest.approx(test_logged[s], abs=1e-4) for s in tested)
    final = predict(module, dm.train_x)
    assert rows["train_psnr"][-1] == pytest.approx(psnr(((final - dm.train_y) ** 2).mean()).item(), abs=1e-4)
    seconds = rows["seconds"]
    assert seconds[0] == 0 and all(b > a for a, b in zip(seconds, seconds[1:]))


@pytest.mark.filterwarnings("ignore:The dirpath has changed")  # the resumed run logs to a new version dir
def test_psnr_history_is_saved_in_checkpoints_and_resumes(tmp_path):
    from coordnet.tables import read_csv_columns
    from coordnet.training import PSNRHistory

    def run(steps, ckpt=None):
        trainer = make_trainer(str(tmp_path), "t", max_steps=steps, enable_progress_bar=False, val_check_interval=5,
                               callbacks=[PSNRHistory()])
        torch.manual_seed(0)
        trainer.fit(CoordNetModule(2, 1, hidden=8, depth=1, activation="sine", init="siren"),
                    ImageDataModule("camera", 8, protocol="fourier"), ckpt_path=ckpt)
        return trainer

    first = run(5)
    resumed = run(10, f"{first.log_dir}/checkpoints/last.ckpt")
    rows = read_csv_columns(f"{resumed.log_dir}/{PSNRHistory.FILE}")
    assert rows["step"] == list(range(11))  # each step once
    assert [s for s, v in zip(rows["step"], rows["test_psnr"]) if v == v] == [5, 10]


def test_a_fit_takes_exactly_the_steps_of_the_benchmarks_plain_loop(tmp_path):
    """The written-out training step (zero_grad, forward, MSE, backward, Adam step) under the Trainer gives, bit
    for bit, the parameters of the bare loop scripts/bench_train.py times beside it (``InterleavedPlainLoop``, from
    the same initial weights): the benchmark compares the same work."""
    dm = ImageDataModule("camera", 16)
    torch.manual_seed(3)
    module = CoordNetModule(2, 1, 16, 2, "sine", "siren", lr=1e-3, reconstruction_every_n_steps=None)
    plain = InterleavedPlainLoop(warmup=2)
    trainer = make_trainer(str(tmp_path), max_steps=7, enable_progress_bar=False, enable_checkpointing=False,
                           callbacks=[plain])
    trainer.fit(module, dm)
    assert len(plain.lightning_seconds) == len(plain.plain_seconds) == 5  # steps 3 … 7 timed
    for trained, bare in zip(module.model.parameters(), plain.model.parameters(), strict=True):
        assert torch.equal(trained, bare)


@pytest.mark.parametrize("loss_scaling", [False, True], ids=["float32", "16-mixed with a grad scaler"])
def test_gradient_clipping_bounds_the_step(tmp_path, loss_scaling):
    """SGD with lr 1 moves the parameters by the clipped gradient: its global norm is gradient_clip_val. With a
    gradient scaler (scale 1024) the clipping must see the unscaled gradients, or the step is 1024× too small."""
    dm = ImageDataModule("camera", 8)
    torch.manual_seed(0)
    module = CoordNetModule(2, 1, 8, 1, "relu", "he", optimizer=lambda p: torch.optim.SGD(p, lr=1.0),
                            gradient_clip_val=1e-3, reconstruction_every_n_steps=None)
    before = torch.cat([p.detach().flatten().clone() for p in module.parameters()])
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    plugins = [MixedPrecision("16-mixed", "cpu", scaler)] if loss_scaling else []
    trainer = make_trainer(str(tmp_path), max_steps=1, enable_progress_bar=False, enable_checkpointing=False,
                           accelerator="cpu", plugins=plugins)
    trainer.fit(module, dm)
    after = torch.cat([p.detach().flatten() for p in module.parameters()])
    assert (after - before).norm().item() == pytest.approx(1e-3, rel=1e-4)


def test_progress_bar_shows_the_train_metrics_lightning_does_not_convert_every_step(tmp_path):
    dm = ImageDataModule("camera", 8)
    module = CoordNetModule(2, 1, 8, 1, "relu", "he", reconstruction_every_n_steps=None)
    trainer = make_trainer(str(tmp_path), max_steps=10, log_every_n_steps=5, enable_checkpointing=False)
    trainer.fit(module, dm)
    (bar,) = [cb for cb in trainer.callbacks if isinstance(cb, ProgressBar)]
    shown = bar.get_metrics(trainer, module)
    assert shown["train/psnr"] == trainer.callback_metrics["train/psnr"].item()
    assert shown["train/loss"] == trainer.callback_metrics["train/loss"].item()
    assert "train/psnr" not in trainer.progress_bar_metrics  # off Lightning's per-step conversion


@pytest.mark.filterwarnings("ignore:The dirpath has changed")  # resumed into a new version_k, on purpose
def test_a_checkpoint_from_automatic_optimisation_resumes_at_its_step(tmp_path):
    """Checkpoints written while CoordNetModule used Lightning's automatic optimisation keep their step count
    in that loop's progress; resuming one continues at its step, not at 0."""
    dm = ImageDataModule("camera", 8)
    trainer = make_trainer(str(tmp_path), max_steps=6, enable_progress_bar=False)
    trainer.fit(CoordNetModule(2, 1, 8, 1, "relu", "he", reconstruction_every_n_steps=None), dm)
    checkpoint = torch.load(f"{trainer.log_dir}/checkpoints/last.ckpt")
    loops = checkpoint["loops"]["fit_loop"]
    manual = loops["epoch_loop.manual_optimization.optim_step_progress"]
    loops["epoch_loop.automatic_optimization.optim_progress"]["optimizer"]["step"] = copy.deepcopy(manual)
    for counts in manual.values():
        counts.update(ready=0, completed=0)
    torch.save(checkpoint, tmp_path / "old.ckpt")

    started_at = []
    class StartStep(Callback):
        def on_train_start(self, trainer, pl_module):
            started_at.append(trainer.global_step)
    trainer = make_trainer(str(tmp_path), max_steps=10, enable_progress_bar=False, callbacks=[StartStep()])
    trainer.fit(CoordNetModule(2, 1, 8, 1, "relu", "he", reconstruction_every_n_steps=None), dm,
                ckpt_path=tmp_path / "old.ckpt")
    assert started_at == [6] and trainer.global_step == 10
