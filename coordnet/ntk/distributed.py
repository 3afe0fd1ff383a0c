"""The empirical NTK of a ``CoordMLP`` across processes with ``torch.distributed`` (gloo on CPU, NCCL on GPU).

Every process of the default group holds the same model and the same N points; rank r of W takes the r-th of W
contiguous blocks of points (``torch.tensor_split``) and computes only their layer factors (H_{l−1}, G_l).

- ``distributed_ntk``: the factors are all-gathered and rank r builds its row block
  Θ[rows_r, :] = Σ_l (G_l[rows_r] G_lᵀ) ⊙ (c_w² H_{l−1}[rows_r] H_{l−1}ᵀ + c_b²) (``kernel_from_factors``); the blocks
  are all-gathered, so every rank returns the whole kernel — the single-process ``empirical_ntk`` up to the order
  of floating-point sums. Memory per rank: the kernel plus the gathered factors, N·O·Σ widths.
- ``distributed_ntk_matvec``: v ↦ Θ v, each rank applying its rows' factors with the sums over points
  all-reduced and the rows of the result all-gathered; the N × N kernel is never formed. A collective: every rank
  calls it with the same v in the same order (so Lanczos and SLQ run in lockstep, identically, on every rank).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.distributed as dist
from torch import Tensor, nn

from coordnet.ntk.empirical import (LayerFactors, Mode, Normalization, _check, _finish, kernel_from_factors,
                                    layer_factors, matvec_from_factors, no_tf32, require_mlp)


def _rank_rows(n: int) -> tuple[list[int], slice]:
    """The number of points of every rank, and this rank's slice of the N points."""
    counts = [len(block) for block in torch.tensor_split(torch.arange(n), dist.get_world_size())]
    start = sum(counts[:dist.get_rank()])
    return counts, slice(start, start + counts[dist.get_rank()])


def _all_gather_rows(local: Tensor, counts: list[int], dim: int = 0) -> Tensor:
    """Concatenate every rank's ``local`` along ``dim``, where rank r holds ``counts[r]`` (times a fixed factor)
    entries there; padded to the largest for ``all_gather``, which needs equal shapes."""
    local = local.movedim(dim, 0).contiguous()
    per_point = local.shape[0] // counts[dist.get_rank()] if counts[dist.get_rank()] else 0
    sizes = [c * per_point for c in counts]
    padded = local.new_zeros((max(sizes), *local.shape[1:]))
    padded[:local.shape[0]] = local
    parts = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(parts, padded)
    return torch.cat([part[:size] for part, size in zip(parts, sizes)]).movedim(0, dim)


def _local_factors(model: nn.Module, x: Tensor, dtype: torch.dtype, what: str) -> tuple[LayerFactors, list[int]]:
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError(f"{what} needs torch.distributed initialised (torch.distributed.init_process_group)")
    mlp = require_mlp(model, what)
    if x.shape[0] < dist.get_world_size():
        raise ValueError(f"{what}: {x.shape[0]} points cannot be shared out over {dist.get_world_size()} processes")
    counts, rows = _rank_rows(x.shape[0])
    with no_tf32():
        return layer_factors(mlp, x[rows], dtype), counts


def distributed_ntk(model: nn.Module, x: Tensor, mode: Mode = "full", normalization: Normalization = "raw",
                    dtype: torch.dtype = torch.float64) -> Tensor:
    """The empirical NTK of ``model`` on ``x`` (N, d), built in row blocks across the default process group;
    shapes and conventions as ``empirical_ntk`` (which it equals); on every rank, on the model's device."""
    _check(mode, normalization)
    local, counts = _local_factors(model, x, dtype, "distributed_ntk")
    gathered = LayerFactors([_all_gather_rows(h, counts) for h in local.inputs],
                            [_all_gather_rows(g, counts) for g in local.grads], local.weight_scales, local.bias_scales)
    with no_tf32():
        block = kernel_from_factors(local, gathered, mode)
    kernel = _all_gather_rows(block, counts, dim=-2)
    return _finish(kernel, mode, normalization, x.shape[0], local.grads[-1].shape[1])


def distributed_ntk_matvec(model: nn.Module, x: Tensor, dtype: torch.dtype = torch.float64,
                           normalization: Normalization = "raw") -> Callable[[Tensor], Tensor]:
    """v ↦ Θ v for the ``full`` kernel on ``x`` (v: (N·O,) or (N·O, k), the same on every rank), computed across the
    default process group; a collective (see the module docstring). The result is whole on every rank."""
    local, counts = _local_factors(model, x, dtype, "distributed_ntk_matvec")
    outputs = local.grads[-1].shape[1]
    _, rows = _rank_rows(x.shape[0])

    def all_reduce(t: Tensor) -> Tensor:
        dist.all_reduce(t)
        return t

    local_matvec = matvec_from_factors(local, dtype, 1.0 / x.shape[0] if normalization == "by_n" else 1.0, all_reduce)

    def matvec(v: Tensor) -> Tensor:
        flat = v.ndim == 1
        v = v.reshape(x.shape[0] * outputs, -1)
        mine = local_matvec(v[rows.start * outputs:rows.stop * outputs])
        result = _all_gather_rows(mine, counts)
        return result[:, 0] if flat else result

    return matvec
