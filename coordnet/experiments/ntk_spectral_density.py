"""The NTK's spectral density over every training point of a config's image, without forming the kernel.

The model and data come from a YAML config exactly as ``coordnet fit`` builds them (the model at its
initialisation, seeded by the config's ``seed_everything``); the kernel is the raw ``full`` K = J Jᵀ over all
n training points (n = N·O), touched only through products v ↦ K v (``coordnet.ntk.density``):

1. the DEFLATE largest eigenpairs (λ_i, u_i) by Lanczos, exact to the solver's tolerance;
2. stochastic Lanczos quadrature on the deflated K′ = P K P, P = I − U Uᵀ: PROBES Rademacher probes z, STEPS
   Lanczos steps each from w = P z, whose tridiagonal's eigenpairs (θ_j, s_j) give the nodes θ_j with weights
   ‖w‖² s_j[0]² / PROBES, so that Σ_j weight_j f(θ_j) estimates Σ_{i>d} f(λ_i) (exact for polynomials f of
   degree < 2·STEPS, in expectation over the probes).

The density of log10 λ is the weighted nodes (the exact top eigenvalues weigh 1 each; Σ weights ≈ n) smoothed by
a Gaussian of 0.1 decades, normalised to integrate to 1. The moments check it: the SLQ trace Σ weight·node
against the exact trace Σ_i ‖∇_θ f(x_i)‖² (per-sample squared gradient norms). Up to n = 512 the kernel is formed
and its eigenvalues are the nodes instead (exact). One job: the whole measurement, with its wall time and the
process's peak memory (and the GPU's).
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import torch
from matplotlib.figure import Figure

from coordnet.cli import run_cli
from coordnet.experiments.config_runs import CONFIG_DIR
from coordnet.ntk.density import SpectralDensity, model_spectral_density
from coordnet.ntk.plots import density_figure

NAME = "ntk_spectral_density"
CONFIG = "camera_sine.yaml"  # a config in configs/, or an absolute path
RESOLUTION = 256
PROBES = 8
STEPS = 30
DEFLATE = 16
DEVICE = "auto"  # cpu, cuda, or auto: cuda when there is one


def jobs(quick: bool, out: Path) -> list[dict]:
    """One job; --quick: camera 32² (1024 points, past the exact limit of 512), 4 eigenpairs, 4 probes × 10 steps."""
    resolution, probes, steps, deflate = (32, 4, 10, 4) if quick else (RESOLUTION, PROBES, STEPS, DEFLATE)
    return [{"config": CONFIG, "resolution": resolution, "probes": probes, "steps": steps, "deflate": deflate,
             "device": DEVICE}]


def run(job: dict) -> dict:
    """The density of the config's model at init on all its training points: nodes, weights, the exact top
    eigenvalues and trace, and the facts (n, device, seconds, peak RSS in MB, peak GPU memory in MB)."""
    cli = run_cli(["--config", str(CONFIG_DIR / job["config"]), "--data.init_args.resolution", str(job["resolution"])],
                  run=False)
    auto = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(auto if job["device"] == "auto" else job["device"])
    data, model = cli.datamodule, cli.model.to(device)
    data.setup(device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    density = model_spectral_density(model, data.train_x, num_probes=job["probes"], steps=job["steps"],
                                     deflate=job["deflate"], progress=True)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return {"n": density.n, "points": data.train_x.shape[0], "run_device": str(device), "seconds": seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_gpu_mb": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
            "lambda_max": density.lambda_max, "trace_slq": density.trace, "exact_trace": density.exact_trace,
            "frobenius_norm": density.frobenius_norm, "floor": density.floor, "num_probes": density.num_probes,
            "lanczos_steps": density.steps, "top": density.top.tolist(), "nodes": density.nodes.tolist(),
            "weights": density.weights.tolist()}


def density_of(record: dict) -> SpectralDensity:
    """The ``SpectralDensity`` a record holds (its float64 values round-trip JSON exactly)."""
    as_tensor = lambda key: torch.tensor(record[key], dtype=torch.float64)  # noqa: E731
    return SpectralDensity(as_tensor("nodes"), as_tensor("weights"), as_tensor("top"), record["n"],
                           record["num_probes"], record["lanczos_steps"], record["exact_trace"])


def tables(records: list[dict]) -> dict[str, list[dict]]:
    """density.csv: the density of log10 λ on ``log_grid``; nodes.csv: the quadrature nodes and weights."""
    density = density_of(records[0])
    grid = density.log_grid()
    return {"density": [{"log10_lambda": g, "density": d}
                        for g, d in zip(grid.tolist(), density.log_density(grid).tolist())],
            "nodes": [{"node": v, "weight": w} for v, w in zip(density.nodes.tolist(), density.weights.tolist())]}


def report(records: list[dict]) -> tuple[Figure, str]:
    """The density figure; the settings, time and memory, λ_max and the top eigenvalues, the moments checked."""
    record = records[0]
    density = density_of(record)
    trace_error = density.trace / density.exact_trace - 1
    top = ", ".join(f"{v:.4g}" for v in density.top.flip(0)[:10].tolist())
    gpu = f", peak GPU memory {record['peak_gpu_mb']:.0f} MB" if record["peak_gpu_mb"] is not None else ""
    summary = "\n".join([
        f"# NTK spectral density of {Path(record['config']).name} at init, all {record['points']} training points "
        f"(n = {density.n})", "",
        f"Raw J Jᵀ, never formed: {len(density.top)} largest eigenpairs by Lanczos, then SLQ with "
        f"{density.num_probes} Rademacher probes × {density.steps} Lanczos steps on the deflated kernel.", "",
        f"- device {record['run_device']}: {record['seconds']:.1f} s, peak RSS {record['peak_rss_mb']:.0f} MB{gpu}",
        f"- λ_max = {density.lambda_max:.6g}; the 10 largest: {top}",
        f"- trace: SLQ {density.trace:.6g}, exact {density.exact_trace:.6g} (Σ per-sample squared gradient norms): "
        f"{100 * trace_error:+.2f}%",
        f"- Frobenius norm (SLQ): {density.frobenius_norm:.6g}; numerical floor n·eps·λ_max = {density.floor:.3g}",
    ])
    return density_figure(density), summary
