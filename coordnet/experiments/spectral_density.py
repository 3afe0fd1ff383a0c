"""The NTK spectral density over every training point of a config's data, matrix-free (``coordnet.ntk.density``).

The model and data come from a YAML config exactly as ``coordnet fit`` builds them (the model at its
initialisation, seeded by the config's ``seed_everything``); the kernel is the raw ``full`` J Jᵀ on all
training points, never formed. Reported with the wall time and the peak memory of the process (and of the GPU).
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import torch

from coordnet.cli import run_cli
from coordnet.ntk.density import SpectralDensity, model_spectral_density


def config_density(config: str | Path, overrides: list[str] = (), num_probes: int = 10, steps: int = 80,
                   deflate: int = 32, seed: int = 0, device: str | None = None,
                   progress: bool = True) -> tuple[SpectralDensity, dict]:
    """The spectral density of ``config``'s model at init on all its training points, and a dict of facts
    (n, device, seconds, peak RSS in MB, peak GPU memory in MB)."""
    cli = run_cli(["--config", str(config), *overrides], run=False)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    data, model = cli.datamodule, cli.model.to(device)
    data.setup(device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    density = model_spectral_density(model, data.train_x, num_probes=num_probes, steps=steps, deflate=deflate,
                                     seed=seed, progress=progress)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    facts = {"n": density.n, "points": data.train_x.shape[0], "device": str(device),
             "seconds": time.perf_counter() - start,
             "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
             "peak_gpu_mb": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None}
    return density, facts


def density_summary(density: SpectralDensity, facts: dict, config: str) -> str:
    """summary.md: the settings, the time and memory, λ_max and the top eigenvalues, the moments checked."""
    trace_error = density.trace / density.exact_trace - 1
    top = ", ".join(f"{v:.4g}" for v in density.top.flip(0)[:10].tolist())
    gpu = f", peak GPU memory {facts['peak_gpu_mb']:.0f} MB" if facts["peak_gpu_mb"] is not None else ""
    return "\n".join([
        f"# NTK spectral density of {config} at init, all {facts['points']} training points (n = {density.n})", "",
        f"Raw J Jᵀ, never formed: {len(density.top)} largest eigenpairs by Lanczos, then SLQ with "
        f"{density.num_probes} Rademacher probes × {density.steps} Lanczos steps on the deflated kernel.", "",
        f"- device {facts['device']}: {facts['seconds']:.1f} s, peak RSS {facts['peak_rss_mb']:.0f} MB{gpu}",
        f"- λ_max = {density.lambda_max:.6g}; the 10 largest: {top}",
        f"- trace: SLQ {density.trace:.6g}, exact {density.exact_trace:.6g} (Σ per-sample squared gradient norms): "
        f"{100 * trace_error:+.2f}%",
        f"- Frobenius norm (SLQ): {density.frobenius_norm:.6g}; numerical floor n·eps·λ_max = {density.floor:.3g}",
    ])
