"""NTK spectra at scale: Lanczos and stochastic Lanczos quadrature against a dense 2,048-point kernel."""

import pytest
import torch

from coordnet.models import CoordMLP, Sine
from coordnet.ntk import empirical_ntk, ntk_matvec, top_eigenvalues
from coordnet.ntk.density import lanczos_tridiagonal, model_spectral_density, spectral_density


@pytest.fixture(scope="module")
def kernel_2048():
    """SIREN 3×64 at init on 2,048 random points of [−1, 1]², its dense raw kernel and eigenvalues."""
    torch.manual_seed(11)
    model = CoordMLP(2, 1, 64, 3, Sine(30.0), "siren").double()
    x = torch.rand(2048, 2, dtype=torch.float64) * 2 - 1
    kernel = empirical_ntk(model, x)
    return model, x, kernel, torch.linalg.eigvalsh(kernel)


def test_lanczos_top_10_match_dense_eigvalsh(kernel_2048):
    model, x, _, eigenvalues = kernel_2048
    top = top_eigenvalues(ntk_matvec(model, x), 2048, k=10)
    assert ((top - eigenvalues[-10:]).abs() / eigenvalues[-10:]).max().item() <= 1e-8


def test_slq_moments_match_the_exact_trace_and_frobenius_norm(kernel_2048):
    model, x, kernel, eigenvalues = kernel_2048
    density = model_spectral_density(model, x, num_probes=30, steps=60, deflate=32)
    assert density.exact_trace == pytest.approx(eigenvalues.sum().item(), rel=1e-12)
    assert density.trace == pytest.approx(density.exact_trace, rel=0.02)
    assert density.frobenius_norm == pytest.approx(kernel.norm().item(), rel=0.02)
    assert density.lambda_max == pytest.approx(eigenvalues[-1].item(), rel=1e-10)
    torch.testing.assert_close(density.top, eigenvalues[-32:], rtol=1e-8, atol=0)
    assert density.weights.sum().item() == pytest.approx(2048, rel=0.02)  # the nodes stand for n eigenvalues
    grid = density.log_grid()
    mass = torch.trapezoid(density.log_density(grid), grid).item()
    assert mass == pytest.approx(1.0, abs=1e-3)


def test_each_probe_quadrature_is_exact_for_low_degree_moments(kernel_2048):
    """Gauss quadrature from m Lanczos steps integrates λ^p exactly for p < 2m: ‖w‖² Σ_j s_j[0]² θ_j^p = wᵀ K^p w."""
    _, _, kernel, _ = kernel_2048
    w = torch.randn(2048, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    alpha, beta = lanczos_tridiagonal(lambda v: kernel @ v, w, steps=8)
    for probe in range(3):
        t = torch.diag(alpha[probe]) + torch.diag(beta[probe], 1) + torch.diag(beta[probe], -1)
        theta, s = torch.linalg.eigh(t)
        weights = (w[:, probe] ** 2).sum() * s[0] ** 2
        v = w[:, probe]
        for power in (1, 2, 3, 5):
            exact = v @ torch.linalg.matrix_power(kernel, power) @ v
            assert (weights * theta**power).sum().item() == pytest.approx(exact.item(), rel=1e-9)


def test_slq_stops_cleanly_when_the_krylov_space_is_exhausted():
    """A diagonal 6 × 6 operator with 3 distinct eigenvalues: the Krylov space ends after 3 of the 5 steps, and
    Rademacher probes of a diagonal matrix give its moments exactly (zᵀ D^p z = tr D^p)."""
    values = torch.tensor([1.0, 1.0, 2.0, 2.0, 5.0, 5.0], dtype=torch.float64)
    density = spectral_density(lambda v: values[:, None] * v, 6, num_probes=10, steps=5, deflate=0, exact_limit=0)
    assert torch.isfinite(density.nodes).all() and torch.isfinite(density.weights).all()
    assert density.trace == pytest.approx(values.sum().item(), rel=1e-12)
    assert density.frobenius_norm == pytest.approx(values.norm().item(), rel=1e-12)
    with pytest.raises(ValueError, match="deflate"):
        spectral_density(lambda v: v, 6, deflate=6, exact_limit=0)


def _distributed_worker(rank: int, world: int, init_file: str) -> None:
    import torch.distributed as dist

    from coordnet.ntk.distributed import distributed_ntk, distributed_ntk_matvec

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.manual_seed(3)
        model = CoordMLP(2, 2, [48, 32], activation=Sine(30.0), init="siren").double()
        x = torch.rand(301, 2, dtype=torch.float64) * 2 - 1  # 301 points: blocks of 151 and 150
        for mode in ("full", "mean", "per_output"):
            expected = empirical_ntk(model, x, mode=mode, normalization="by_n")
            got = distributed_ntk(model, x, mode=mode, normalization="by_n")
            torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12 * expected.abs().max().item())
        v = torch.randn(602, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        kernel = empirical_ntk(model, x)
        product = distributed_ntk_matvec(model, x)(v)
        torch.testing.assert_close(product, kernel @ v, rtol=1e-11, atol=1e-11 * (kernel @ v).abs().max().item())
        top = top_eigenvalues(distributed_ntk_matvec(model, x), 602, k=5)  # ARPACK in lockstep on both ranks
        torch.testing.assert_close(top, torch.linalg.eigvalsh(kernel)[-5:], rtol=1e-8, atol=0)
    finally:
        dist.destroy_process_group()


def test_distributed_kernel_and_product_equal_the_single_process_ones(tmp_path):
    torch.multiprocessing.spawn(_distributed_worker, args=(2, str(tmp_path / "rendezvous")), nprocs=2)


def test_data_parallel_processes_share_out_each_batch():
    from coordnet.data.base import BatchStream

    x, y = torch.arange(40.0)[:, None], torch.arange(40.0)[:, None] * 2
    for batch_size in (None, 16):
        (whole,) = [next(iter(BatchStream(x, y, batch_size, seed=3, start_step=5)))[0]]
        shards = [next(iter(BatchStream(x, y, batch_size, seed=3, start_step=5, rank=r, world=2)))[0] for r in (0, 1)]
        assert sorted(torch.cat(shards).flatten().tolist()) == sorted(whole.flatten().tolist())
        assert len(shards[0]) == len(shards[1]) == len(whole) // 2


DDP_CONFIG = """\
seed_everything: 5
model: {hidden: 16, depth: 2, activation: relu, init: he, lr: 1.0e-3}
data: {class_path: ImageDataModule, init_args: {image: camera, resolution: 16, batch_size: 64}}
trainer:
  max_steps: 10
  log_every_n_steps: 2
  accelerator: cpu
  devices: 2
  strategy: ddp
  callbacks:
    - {class_path: NTKSpectrumCallback, init_args: {num_points: 32, every_n_steps: 5, log_figure: false}}
"""


def test_coordnet_fit_with_ddp_on_two_cpu_processes_logs_and_checkpoints_once(tmp_path):
    import subprocess
    import sys

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from coordnet.ntk.history import read_history

    (tmp_path / "ddp.yaml").write_text(DDP_CONFIG)
    result = subprocess.run([sys.executable, "-m", "coordnet.cli", "fit", "--config", "ddp.yaml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in result.stderr  # two processes trained
    (run,) = (tmp_path / "runs" / "ddp").iterdir()  # one run directory
    (events,) = run.glob("events.out.tfevents.*")  # written once, by rank zero
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    assert [e.step for e in accumulator.Scalars("train/loss")] == [1, 3, 5, 7, 9]
    assert read_history(run)["step"] == [0, 5, 10]  # NTK measured on rank zero only
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["last.ckpt"]
    assert torch.load(run / "checkpoints" / "last.ckpt")["global_step"] == 10


def test_ntk_callback_measures_every_training_point_matrix_free(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from coordnet.data import ImageDataModule
    from coordnet.ntk.history import FULL_HISTORY_FILE, read_history
    from coordnet.training import CoordNetModule, NTKSpectrumCallback, make_trainer

    data = ImageDataModule("astronaut", 12)  # 144 pixels × 3 channels: n = 432
    module = CoordNetModule(2, 3, hidden=24, depth=2, activation="sine", init="siren", lr=1e-3)
    callback = NTKSpectrumCallback(num_points=32, every_n_steps=5, full_data_every_n_steps=5, log_figure=True)
    trainer = make_trainer(str(tmp_path), "full", max_steps=10, enable_progress_bar=False, callbacks=[callback])
    trainer.fit(module, data)
    rows = read_history(f"{trainer.log_dir}/{FULL_HISTORY_FILE}")
    assert rows["step"] == [0, 5, 10]
    final = torch.linalg.eigvalsh(empirical_ntk(module, data.train_x, mode="full"))
    assert rows["lambda_max"][-1] == pytest.approx(final[-1].item(), rel=1e-8)
    assert rows["trace"][-1] == pytest.approx(final.sum().item(), rel=1e-10)
    assert rows["trace_slq"][-1] == pytest.approx(final.sum().item(), rel=0.2)  # 10 probes: an estimate
    (events,) = glob_events(trainer.log_dir)
    accumulator = EventAccumulator(events, size_guidance={"images": 0})
    accumulator.Reload()
    assert [e.step for e in accumulator.Scalars("ntk_full/lambda_max")] == [0, 5, 10]
    assert [e.step for e in accumulator.Images("ntk_full/density")] == [0, 5, 10]


def glob_events(log_dir: str) -> list[str]:
    import glob

    return glob.glob(f"{log_dir}/events.out.tfevents.*")


def test_full_data_measurements_keep_their_own_period(tmp_path):
    from coordnet.data import ImageDataModule
    from coordnet.ntk.history import FULL_HISTORY_FILE, HISTORY_FILE, read_history
    from coordnet.training import CoordNetModule, NTKSpectrumCallback, make_trainer

    callback = NTKSpectrumCallback(num_points=16, every_n_steps=4, full_data_every_n_steps=3, log_figure=False)
    trainer = make_trainer(str(tmp_path), "periods", max_steps=9, enable_progress_bar=False, callbacks=[callback])
    trainer.fit(CoordNetModule(2, 1, hidden=8, depth=1, activation="relu", init="he"), ImageDataModule("camera", 8))
    assert read_history(f"{trainer.log_dir}/{FULL_HISTORY_FILE}")["step"] == [0, 3, 6, 9]
    assert read_history(f"{trainer.log_dir}/{HISTORY_FILE}")["step"] == [0, 4, 8]
    with pytest.raises(ValueError, match="full_data_every_n_steps must be a positive integer"):
        NTKSpectrumCallback(full_data_every_n_steps=0)
