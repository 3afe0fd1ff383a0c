"""Ensembles: M networks trained as one batched model are M single runs, member by member."""

import copy
import math
import warnings

import pytest
import torch
from pytorch_lightning import seed_everything

from coordnet.data import ImageDataModule, MemorizationDataModule
from coordnet.data.ensemble import EnsembleDataModule
from coordnet.models import CoordMLP, FourierFeatures, Sine, get_activation
from coordnet.models.ensemble import CoordMLPEnsemble
from coordnet.ntk import empirical_ntk
from coordnet.tables import read_csv_columns
from coordnet.training import CoordNetModule, PSNRHistory, make_trainer
from coordnet.training.ensemble import EnsembleModule
from coordnet.training.ensemble_runs import MemberStopped

SEEDS, LRS, OMEGAS = [0, 1, 2, 3], [1e-4, 3e-4, 1e-3, 2e-4], [30.0, 20.0, 40.0, 30.0]
COMMON = {"in_features": 2, "out_features": 1, "hidden": 32, "depth": 2, "reconstruction_every_n_steps": None}
CAMERA = {"class_path": "coordnet.data.ImageDataModule", "init_args": {"image": "camera", "resolution": 32}}
QUIET = {"enable_progress_bar": False, "enable_checkpointing": False, "val_check_interval": 10**9,
         "log_every_n_steps": 10}


def sine_member(lr: float, omega0: float) -> dict:
    return COMMON | {"lr": lr, "activation": {"class_path": "coordnet.models.Sine", "init_args": {"omega0": omega0}}}


def fit_ensemble(tmp_path, members, seeds, data, steps, name="ens", **trainer):
    module = EnsembleModule(members, seeds, names=[f"m{i}" for i in range(len(members))])
    t = make_trainer(str(tmp_path), name, max_steps=steps, **(QUIET | trainer))
    t.fit(module, EnsembleDataModule(data))
    return module, t


@pytest.fixture(scope="module")
def four_members(tmp_path_factory):
    """The issue's check: 4 members (seeds, learning rates, ω0 all different), 50 steps, as one ensemble and as
    four single CoordNetModule runs."""
    tmp = tmp_path_factory.mktemp("four")
    members = [sine_member(lr, w) for lr, w in zip(LRS, OMEGAS)]
    ensemble, t = fit_ensemble(tmp, members, SEEDS, [CAMERA] * 4, 50)
    singles = []
    for seed, lr, omega0 in zip(SEEDS, LRS, OMEGAS):
        seed_everything(seed, verbose=False)
        single = CoordNetModule(**(COMMON | {"lr": lr, "activation": Sine(omega0)}))
        history = PSNRHistory()
        make_trainer(str(tmp), "single", max_steps=50, callbacks=[history], **QUIET).fit(single,
                                                                                        ImageDataModule("camera", 32))
        singles.append((single, history))
    return ensemble, t, singles


def test_a_member_starts_from_the_weights_of_its_single_run():
    members = []
    for seed, omega0 in zip(SEEDS, OMEGAS):
        torch.manual_seed(seed)
        members.append(CoordMLP(2, 3, 32, 2, activation=Sine(omega0)))
    references = copy.deepcopy(members)
    ensemble = CoordMLPEnsemble(members)
    x = torch.rand(64, 2) * 2 - 1
    out = ensemble(x)
    for m, reference in enumerate(references):
        assert torch.equal(out[m], reference(x))  # the same float operations: bitwise
        assert torch.equal(ensemble.member(m)(x), reference(x))


def test_four_members_train_as_their_four_single_runs(four_members):
    """Float32 round-off, not more: the batched products (bmm) may add in another order than one network's (mm),
    a few ulps per step: after 50 steps the weights differ by ≤ 5.5e-6 of their largest entry (~50 float32 ulps)
    and the PSNRs by ≤ 1e-5 dB (measured); the bounds hold 4× and 10× those."""
    ensemble, t, singles = four_members
    for m, (single, history) in enumerate(singles):
        for l, linear in enumerate(single.model.linears):
            scale = linear.weight.abs().max().item()
            assert torch.allclose(ensemble.model.weights[l][m], linear.weight, rtol=0, atol=2e-5 * scale)
            assert torch.allclose(ensemble.model.biases[l][m], linear.bias, rtol=0, atol=2e-5 * scale)
        mine = read_csv_columns(f"{t.log_dir}/m{m}/psnr_history.csv")
        theirs = [row["train_psnr"] for row in history.history]
        assert len(mine["train_psnr"]) == len(theirs) + 1 == 51
        assert mine["train_psnr"][:50] == pytest.approx(theirs, abs=1e-4)  # dB, every step (measured ≤ 1e-5)
        final_single = 10 * math.log10(1 / ((single(single.trainer.datamodule.train_x)
                                              - single.trainer.datamodule.train_y) ** 2).mean().item())
        assert mine["train_psnr"][-1] == pytest.approx(final_single, abs=1e-4)


@pytest.mark.parametrize("mode", ["full", "trace", "mean", "per_output"])
def test_the_ntk_of_every_member_is_its_single_kernel(mode):
    """One batched call against M calls, float64: equal to 1e-10 (the factors are the same float64 numbers)."""
    members, references = [], []
    for seed, omega0 in zip(SEEDS, OMEGAS):
        torch.manual_seed(seed)
        members.append(CoordMLP(2, 3, 24, 2, activation=Sine(omega0),
                                encoding=FourierFeatures(2, 8, sigma=1.0, seed=seed)))
    references = copy.deepcopy(members)
    ensemble = CoordMLPEnsemble(members)
    x = torch.rand(30, 2) * 2 - 1
    kernels = empirical_ntk(ensemble, x, mode=mode)
    assert kernels.shape[0] == 4 and kernels.dtype == torch.float64
    for m, reference in enumerate(references):
        single = empirical_ntk(reference, x, mode=mode)
        assert (kernels[m] - single).abs().max().item() <= 1e-10 * single.abs().max().item()


def test_the_ntk_of_members_on_their_own_points_and_parameters():
    """Per-member inputs (M, N, d), per-member (a, b) of the abrelu family, the NTK parametrisation."""
    settings = [(0.5, 0.5), (0.0, 1.0), (0.3, 0.9)]
    members = []
    for seed, (a, b) in enumerate(settings):
        torch.manual_seed(seed)
        members.append(CoordMLP(16, 1, 20, 2, activation=get_activation("abrelu", a=a, b=b), parametrization="ntk",
                                bias_std=0.1))
    references = copy.deepcopy(members)
    ensemble = CoordMLPEnsemble(members)
    x = torch.randn(3, 25, 16)
    kernels = empirical_ntk(ensemble, x, mode="full", normalization="by_n")
    for m, reference in enumerate(references):
        single = empirical_ntk(reference, x[m], mode="full", normalization="by_n")
        assert (kernels[m] - single).abs().max().item() <= 1e-10 * single.abs().max().item()


def test_a_diverging_member_stops_alone_and_the_others_finish_as_without_it(tmp_path):
    members = [sine_member(lr, w) for lr, w in zip(LRS, OMEGAS)]
    members[2] = sine_member(1e30, 40.0)  # its first Adam steps make the output overflow float32
    with pytest.warns(MemberStopped, match=r"ensemble member m2 stopped at step \d+"):
        ensemble, t = fit_ensemble(tmp_path, members, SEEDS, [CAMERA] * 4, 30)
    stopped = ensemble.stopped_at.tolist()
    assert stopped[2] >= 1 and [stopped[m] for m in (0, 1, 3)] == [-1, -1, -1]
    assert all(torch.isfinite(p).all() for p in ensemble.parameters())  # its last finite parameters are kept
    others = [members[m] for m in (0, 1, 3)]
    without, _ = fit_ensemble(tmp_path, others, [SEEDS[m] for m in (0, 1, 3)], [CAMERA] * 3, 30, name="without")
    for l, weight in enumerate(without.model.weights):
        assert torch.allclose(ensemble.model.weights[l][[0, 1, 3]], weight, rtol=0, atol=1e-6)
    history = read_csv_columns(f"{t.log_dir}/m2/psnr_history.csv")
    assert not all(math.isfinite(v) for v in history["train_psnr"][:-1])  # the diverged loss is recorded
    assert not math.isnan(history["train_psnr"][-1])  # the kept parameters are scored (their loss overflows: −inf dB)


def test_checkpoint_and_resume_restore_the_whole_ensemble_bitwise(tmp_path):
    members = [sine_member(lr, w) for lr, w in zip(LRS[:3], OMEGAS[:3])]
    data = [CAMERA, CAMERA | {"init_args": {"image": "astronaut", "resolution": 32}}, CAMERA]
    members[1] = members[1] | {"out_features": 3}
    with pytest.raises(ValueError, match="member 1 has out_features 3"):
        EnsembleModule(members, SEEDS[:3])
    members[1] = members[1] | {"out_features": 1}
    data[1] = {"class_path": "coordnet.data.ImageDataModule", "init_args": {"image": "moon", "resolution": 32}}
    straight, _ = fit_ensemble(tmp_path, members, SEEDS[:3], data, 40, name="straight")
    first, t = fit_ensemble(tmp_path, members, SEEDS[:3], data, 20, name="resumed", enable_checkpointing=True)
    checkpoint = f"{t.log_dir}/checkpoints/last.ckpt"
    resumed = EnsembleModule(members, SEEDS[:3], names=["m0", "m1", "m2"])
    t2 = make_trainer(str(tmp_path), "resumed2", max_steps=40, **(QUIET | {"enable_checkpointing": True}))
    t2.fit(resumed, EnsembleDataModule(data), ckpt_path=checkpoint)
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
    history = read_csv_columns(f"{t2.log_dir}/m1/psnr_history.csv")
    straight_history = read_csv_columns(f"{tmp_path}/straight/version_0/m1/psnr_history.csv")
    assert history["train_psnr"] == straight_history["train_psnr"]


def test_members_of_other_shapes_and_unsupported_settings_are_named():
    members = [sine_member(1e-4, 30.0), sine_member(1e-4, 30.0) | {"hidden": 16}]
    with pytest.raises(ValueError, match=r"member 1 has hidden widths \[16, 16\], member 0 \[32, 32\]"):
        EnsembleModule(members, [0, 1])
    scheduler = {"class_path": "torch.optim.lr_scheduler.StepLR", "init_args": {"step_size": 10}}
    with pytest.raises(ValueError, match="lr_scheduler is not supported by the ensemble engine"):
        EnsembleModule([sine_member(1e-4, 30.0) | {"lr_scheduler": scheduler}], [0])
    sgd = {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.1}}
    with pytest.raises(ValueError, match="share the optimiser"):
        EnsembleModule([sine_member(1e-4, 30.0), sine_member(1e-4, 30.0) | {"optimizer": sgd}], [0, 1])
    with pytest.raises(ValueError, match="trains with torch.optim.Adam or torch.optim.SGD"):
        EnsembleModule([sine_member(1e-4, 30.0) | {"optimizer": {"class_path": "torch.optim.RMSprop"}}], [0])
    with pytest.raises(ValueError, match="random batches"):
        EnsembleDataModule([{"class_path": "coordnet.data.MemorizationDataModule",
                             "init_args": {"batch_size": 8, "seed": s}} for s in (0, 1)])
    assert MemorizationDataModule  # the memorisation data is a member's data like any other (test below)


def test_members_memorise_their_own_random_sets_with_sgd(tmp_path):
    """M memorisation sets (each its own Gaussian inputs and targets), SGD with a learning rate per member."""
    sets = [{"class_path": "coordnet.data.MemorizationDataModule",
             "init_args": {"num_points": 32, "in_features": 4, "seed": s}} for s in (0, 1)]
    sgd = lambda lr: {"class_path": "torch.optim.SGD", "init_args": {"lr": lr}}  # noqa: E731
    members = [{"in_features": 4, "hidden": [64], "activation": "relu", "optimizer": sgd(lr),
                "reconstruction_every_n_steps": None} for lr in (0.01, 0.03)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", MemberStopped)
        ensemble, t = fit_ensemble(tmp_path, members, [0, 1], sets, 30)
    data = t.datamodule
    assert data.train_x.shape == (2, 32, 4) and data.train_y.shape == (2, 32, 1)
    for m, (config, lr) in enumerate(zip(sets, (0.01, 0.03))):
        seed_everything(m, verbose=False)
        single = CoordNetModule(4, 1, [64], activation="relu", reconstruction_every_n_steps=None,
                                optimizer=lambda p, lr=lr: torch.optim.SGD(p, lr=lr))
        make_trainer(str(tmp_path), "single", max_steps=30, **QUIET).fit(
            single, MemorizationDataModule(**config["init_args"]))
        for l, linear in enumerate(single.model.linears):
            assert torch.allclose(ensemble.model.weights[l][m], linear.weight, rtol=0, atol=1e-6)


def test_the_ntk_callback_logs_every_member_into_its_own_run(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from coordnet.training import NTKSpectrumCallback
    from coordnet.training.ensemble_ntk import EnsembleNTKCallback

    members = [sine_member(lr, w) for lr, w in zip(LRS[:3], OMEGAS[:3])]
    ntk = NTKSpectrumCallback(num_points=24, every_n_steps=5, log_figure=False)
    ensemble, t = fit_ensemble(tmp_path, members, SEEDS[:3], [CAMERA] * 3, 10, callbacks=[ntk])
    (callback,) = [c for c in t.callbacks if isinstance(c, NTKSpectrumCallback)]
    assert isinstance(callback, EnsembleNTKCallback)
    for m in range(3):
        rows = read_csv_columns(f"{t.log_dir}/m{m}/ntk_spectrum.csv")
        assert rows["step"] == [0, 5, 10]
        events = EventAccumulator(f"{t.log_dir}/m{m}")
        events.Reload()
        assert [e.value for e in events.Scalars("ntk/condition_number")] == pytest.approx(rows["condition_number"])
        kernel = empirical_ntk(ensemble.model.member(m), callback.probe_x, mode="mean")  # the final parameters
        assert rows["lambda_max"][-1] == pytest.approx(torch.linalg.eigvalsh(kernel)[-1].item(), rel=1e-9)
        assert events.Scalars("final/kappa_end")[0].value == pytest.approx(rows["condition_number"][-1])


def test_the_python_example_of_docs_ensembles_runs(tmp_path, monkeypatch):
    import re
    from pathlib import Path

    monkeypatch.chdir(tmp_path)
    doc = (Path(__file__).parents[1] / "docs" / "ensembles.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    namespace: dict = {}
    exec(compile(code, "docs/ensembles.md", "exec"), namespace)
    assert namespace["net"].activation.omega0 == 30.0 and namespace["module"].stopped_at.tolist() == [-1] * 4
    assert (tmp_path / "runs/my_sweep/version_0/w30-lr1e-3/psnr_history.csv").is_file()


def test_a_step_in_passes_of_members_is_the_step_in_one(tmp_path):
    """Passes of one member (what a CPU does for large networks) against one pass of all: the same parameters."""
    members = [sine_member(lr, w) for lr, w in zip(LRS, OMEGAS)]
    trained = []
    for per_pass in (None, 1, 3):
        module = EnsembleModule(members, SEEDS, members_per_pass=per_pass)
        assert len(module.member_passes(1024)) == {None: 1, 1: 4, 3: 2}[per_pass]
        make_trainer(str(tmp_path), "passes", max_steps=15, **QUIET).fit(module, EnsembleDataModule([CAMERA] * 4))
        trained.append(module)
    for other in trained[1:]:
        for a, b in zip(trained[0].parameters(), other.parameters()):
            assert torch.allclose(a, b, rtol=0, atol=2e-5 * a.abs().max().item())  # float32 round-off, as above
