"""The measurements behind ``scripts/bench_ntk.py``: the layer-wise NTK against PyTorch's recipe.

The recipe is the "Jacobian contraction" of PyTorch's NTK tutorial (torch.func): per-sample
Jacobians of every parameter by ``vmap(jacrev)``, then ``einsum('Naf,Mbf->NMab')`` per parameter,
summed; it holds the whole (N, O, P) Jacobian. Each measurement runs in a fresh process, so its
peak resident memory (``ru_maxrss``) can be read; "peak above the model" subtracts the resident
memory measured once the model and inputs exist and one warm-up call on 8 points has run. On a GPU it is ``torch.cuda.max_memory_allocated``
above the memory allocated before the call.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import time
from dataclasses import dataclass

import torch

from coordnet.models import CoordMLP


def tutorial_ntk(model: torch.nn.Module, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """Full NTK (N, M, O, O) by the tutorial's Jacobian contraction, in the model's dtype."""
    from torch.func import functional_call, jacrev, vmap

    params = {k: v.detach() for k, v in model.named_parameters()}

    def fnet_single(p: dict, x: torch.Tensor) -> torch.Tensor:
        return functional_call(model, p, (x.unsqueeze(0),)).squeeze(0)

    jac1 = [j.flatten(2) for j in vmap(jacrev(fnet_single), (None, 0))(params, x1).values()]
    # x2 is x1 here: reusing jac1 halves the recipe's time and memory (the tutorial computes both)
    jac2 = jac1 if x2 is x1 else [j.flatten(2) for j in vmap(jacrev(fnet_single), (None, 0))(params, x2).values()]
    return torch.stack([torch.einsum("Naf,Mbf->NMab", j1, j2) for j1, j2 in zip(jac1, jac2)]).sum(0)


@dataclass
class NTKCase:
    """One measurement: a 2 → width×depth → outputs MLP on N random points in [−1, 1]²."""

    method: str  # "layerwise" or "recipe"
    activation: str
    n: int
    outputs: int = 1
    width: int = 512
    depth: int = 4
    dtype: str = "float32"
    with_spectrum: bool = False
    device: str = "cpu"


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _run_case(case: NTKCase) -> dict:
    from coordnet.ntk import empirical_ntk, spectrum

    torch.set_num_threads(1)
    torch.manual_seed(0)
    dtype = getattr(torch, case.dtype)
    model = CoordMLP(2, case.outputs, case.width, case.depth, case.activation).to(case.device)  # the activation's init
    x = (torch.rand(case.n, 2) * 2 - 1).to(case.device)
    cuda = case.device.startswith("cuda")
    if case.method == "recipe":
        model, x = model.to(dtype), x.to(dtype)
    kernel_fn = (lambda z: tutorial_ntk(model, z, z)) if case.method == "recipe" else \
        (lambda z: empirical_ntk(model, z, dtype=dtype))
    kernel_fn(x[:8])  # warm-up: one-time library and CUDA start-up costs stay out of the timing
    if cuda:
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        base = _rss_mb()
    start = time.perf_counter()
    kernel = kernel_fn(x)
    result = {"lambda_max": None}
    if case.with_spectrum:
        result["lambda_max"] = spectrum(kernel).lambda_max
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = (torch.cuda.max_memory_allocated() - base) / 2**20 if cuda else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base
    return result | {"seconds": seconds, "peak_mb": peak, "peak_rss_mb": resource.getrusage(
        resource.RUSAGE_SELF).ru_maxrss / 1024}


def _run_case_safely(case: NTKCase) -> dict:
    try:
        return _run_case(case)
    except torch.OutOfMemoryError as err:
        return {"error": f"out of memory ({str(err).splitlines()[0][:80]})"}


def measure(case: NTKCase) -> dict:
    """Run ``case`` in a fresh process; returns seconds, peak MB above the model, peak RSS MB (or error)."""
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(_run_case_safely, (case,))
