"""The empirical Neural Tangent Kernel Θ(x, x′) = J(x) J(x′)ᵀ of a model at its current parameters.

Shapes and conventions (N = len(x1), M = len(x2), O = outputs, P = parameters):

- ``mode="full"``: the (N·O, M·O) matrix with rows ordered (point, output), output fastest;
  ``as_blocks`` views it as (N, M, O, O).
- ``mode="trace"``: Σ_o Θ_oo, shape (N, M).  ``mode="mean"``: the trace divided by O
  (neural-tangents' ``trace_axes`` convention).  ``mode="per_output"``: Θ_oo for each o, (O, N, M).
- ``normalization="raw"``: J Jᵀ (paper 1, arXiv 2402.04783).  ``"by_n"``: J Jᵀ / N (paper 2,
  arXiv 2501.13225, with N the number of points in x1).
- Every output of the model is traced; all parameters that require gradients count.
- Gram assembly runs in ``dtype`` (float64 by default) on the model's device; TF32 is switched off
  while a kernel is built, so it never touches a float32 Gram either.

Fast path (``CoordMLP``, or a module whose ``ntk_model()`` returns one): with H_{l−1} the input of linear
layer l (c_w, c_b its weight and bias scales) and G_l = ∂f/∂s_l (N, O, n_l) the gradient of every
output with respect to that layer's output, obtained for all O outputs in one backward recursion
G_l = φ′(S_l) ⊙ (c_w G_{l+1} W_{l+1}) that reads ``activation.derivative``,

    Θ = Σ_l (G_l G_lᵀ) ⊙ (c_w² H_{l−1} H_{l−1}ᵀ + c_b²)

(Saratchandran et al. §4; Nguyen et al. 2021). It never forms the Jacobian: memory is
(N·O)² for the kernel plus N·O·Σ widths for the factors. A fixed encoding is part of the input.

Generic path (any ``nn.Module``): per-sample Jacobians by ``torch.func.vmap(jacrev)`` in chunks of
points, contracted parameter by parameter (PyTorch's NTK tutorial, "Jacobian contraction").
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator, Literal

import torch
from torch import Tensor, nn

from coordnet.models.ensemble import CoordMLPEnsemble
from coordnet.models.mlp import CoordMLP, check_coordinates

Mode = Literal["full", "trace", "mean", "per_output"]
Normalization = Literal["raw", "by_n"]
MODES = ("full", "trace", "mean", "per_output")


@contextlib.contextmanager
def no_tf32() -> Iterator[None]:
    """Switch TF32 matmuls off (restored afterwards), so float32 Grams are true float32."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def find_mlp(model: nn.Module) -> CoordMLP | None:
    """The ``CoordMLP`` the fast path can use: the model itself, or the one its ``ntk_model()`` method returns.

    ``ntk_model()`` is how a wrapper (``CoordNetModule``) says its output is that MLP's plus constants, so that
    its NTK is the MLP's.
    """
    if isinstance(model, CoordMLP):
        return model
    hook = getattr(model, "ntk_model", None)
    inner = hook() if callable(hook) else None
    return inner if isinstance(inner, CoordMLP) else None


def find_ensemble(model: nn.Module) -> CoordMLPEnsemble | None:
    """The ``CoordMLPEnsemble`` that ``model`` is, or that its ``ntk_model()`` returns (``EnsembleModule``), or None."""
    if isinstance(model, CoordMLPEnsemble):
        return model
    hook = getattr(model, "ntk_model", None)
    inner = hook() if callable(hook) else None
    return inner if isinstance(inner, CoordMLPEnsemble) else None


def require_mlp(model: nn.Module, what: str) -> CoordMLP:
    """``find_mlp``, raising a ValueError that names ``what`` needed it when there is none."""
    mlp = find_mlp(model)
    if mlp is None:
        raise ValueError(f"{what} needs a CoordMLP, got {type(model).__name__}")
    return mlp


@dataclass
class LayerFactors:
    """Per-layer factors of the fast path for N points, in the kernel's dtype.

    ``inputs[l]`` = H_{l−1} (N, fan_in_l); ``grads[l]`` = G_l (N, O, n_l) with n_L = O for the output
    layer (G_L is the identity); ``weight_scales[l]``, ``bias_scales[l]`` = c_w², c_b² (0 without bias).
    """

    inputs: list[Tensor]
    grads: list[Tensor]
    weight_scales: list[float]
    bias_scales: list[float]


def layer_factors(mlp: CoordMLP, x: Tensor, dtype: torch.dtype = torch.float64) -> LayerFactors:
    """``mlp.trace`` at ``x`` in ``dtype``, then one batched backward (all outputs at once) through its layers."""
    check_coordinates("x", x, mlp.in_features)
    x = x.to(device=mlp.linears[0].weight.device, dtype=dtype)
    with torch.no_grad():
        trace = mlp.trace(x)
        inputs, preacts = trace.inputs, trace.preacts
        del trace
        n, out = x.shape[0], mlp.out_features
        g = torch.eye(out, dtype=dtype, device=x.device).expand(n, out, out)  # ∂f/∂s_L
        grads = [g]
        while preacts:  # popping frees each pre-activation once used
            weight = mlp.linears[len(preacts)].scaled_weight(dtype)
            g = (g @ weight).mul_(mlp.activation.derivative(preacts.pop())[:, None, :])  # (N, O, n_l)
            grads.append(g)
    grads.reverse()
    return LayerFactors(
        inputs, grads,
        [lin.weight_scale**2 for lin in mlp.linears],
        [lin.bias_scale**2 if lin.bias is not None else 0.0 for lin in mlp.linears],
    )


def ensemble_layer_factors(ensemble: CoordMLPEnsemble, x: Tensor,
                           dtype: torch.dtype = torch.float64) -> list[LayerFactors]:
    """Every member's ``LayerFactors`` at ``x`` ((N, d) shared, or (M, N, d)), from one batched forward and one
    batched backward: G_l = φ′(S_l) ⊙ (c_w G_{l+1} W_{l+1}) with (M, N, O, n_l) tensors; member m's factors are
    views of row m (the first layer's input is shared when x and the encoding are)."""
    ensemble.check_inputs(x, "x")
    x = x.to(device=ensemble.weights[0].device, dtype=dtype)
    with torch.no_grad():
        trace = ensemble.trace(x)
        inputs, preacts = trace.inputs, trace.preacts
        del trace
        members, n, out = ensemble.num_members, x.shape[-2], ensemble.out_features
        activation, _, _ = ensemble._constants(dtype, x.device)
        g = torch.eye(out, dtype=dtype, device=x.device).expand(members, n, out, out)
        grads = [g]
        while preacts:
            weight = ensemble.scaled_weight(len(preacts), dtype)  # (M, n_{l+1}, n_l)
            # one bmm over the (M, N·O) rows: a matmul broadcasting over (M, N) would copy W N times
            g = torch.bmm(g.reshape(members, n * out, -1), weight).view(members, n, out, -1)
            g = g.mul_(activation.derivative(preacts.pop())[:, :, None, :])  # (M, N, O, n_l)
            grads.append(g)
    grads.reverse()
    bias = len(ensemble.biases) > 0
    return [LayerFactors([h if h.ndim == 2 else h[m] for h in inputs], [g[m] for g in grads],
                         [scales[m] ** 2 for scales in ensemble.weight_scales],
                         [scales[m] ** 2 if bias else 0.0 for scales in ensemble.bias_scales])
            for m in range(members)]


def _check(mode: str, normalization: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown NTK mode {mode!r}; expected one of {', '.join(MODES)}")
    if normalization not in ("raw", "by_n"):
        raise ValueError(f"unknown NTK normalization {normalization!r}; expected 'raw' or 'by_n'")


def _finish(kernel: Tensor, mode: str, normalization: str, n: int, outputs: int) -> Tensor:
    if mode == "mean":
        kernel = kernel / outputs
    return kernel / n if normalization == "by_n" else kernel


def _gram(a: Tensor, b: Tensor, symmetric: bool) -> Tensor:
    """a bᵀ; when ``symmetric`` (b is a), from the row blocks on and below the diagonal (~56% of the flops)."""
    if not symmetric:
        return a @ b.T
    n = a.shape[0]
    out = a.new_empty(n, n)
    step = max(256, -(-n // 8))
    for i in range(0, n, step):
        out[i:i + step, :i + step] = a[i:i + step] @ a[:i + step].T
        out[:i, i:i + step] = out[i:i + step, :i].T
    return out


def kernel_from_factors(f1: LayerFactors, f2: LayerFactors, mode: str, symmetric: bool = False) -> Tensor:
    """Σ_l (G_l G_lᵀ) ⊙ (c_w² H_{l−1} H_{l−1}ᵀ + c_b²) between the points of ``f1`` (rows) and ``f2`` (columns),
    unnormalised, in ``mode`` (the trace for ``mean``). ``symmetric``: f2 is f1 (about half the work)."""
    n, m, out = f1.inputs[0].shape[0], f2.inputs[0].shape[0], f1.grads[-1].shape[1]
    kernel = None
    for h1, h2, g1, g2, cw, cb in zip(f1.inputs, f2.inputs, f1.grads, f2.grads, f1.weight_scales, f1.bias_scales):
        feature = _gram(h1, h2, symmetric).mul_(cw).add_(cb)  # (N, M); in place: at N = 8192 each N×N is 0.5 GB
        if mode == "full":
            term = _gram(g1.reshape(n * out, -1), g2.reshape(m * out, -1), symmetric).view(n, out, m, out)
            term = term.mul_(feature[:, None, :, None]).view(n * out, m * out)
        elif mode == "per_output":
            term = torch.einsum("iok,jok->oij", g1, g2).mul_(feature)
        else:  # trace, mean
            term = _gram(g1.reshape(n, -1), g2.reshape(m, -1), symmetric).mul_(feature)
        del feature
        kernel = term if kernel is None else kernel.add_(term)
        del term  # else the next layer's term is built while this one is still alive
    return kernel


def _mlp_kernel(mlp: CoordMLP, x1: Tensor, x2: Tensor | None, mode: str, dtype: torch.dtype) -> Tensor:
    f1 = layer_factors(mlp, x1, dtype)
    return kernel_from_factors(f1, f1 if x2 is None else layer_factors(mlp, x2, dtype), mode, symmetric=x2 is None)


def _generic_kernel(model: nn.Module, x1: Tensor, x2: Tensor | None, mode: str, dtype: torch.dtype,
                    chunk_size: int) -> Tensor:
    from torch.func import functional_call, jacrev, vmap

    device = next(model.parameters()).device
    params = {k: p.detach().to(dtype) for k, p in model.named_parameters() if p.requires_grad}
    buffers = {k: b.to(dtype) if b.is_floating_point() else b for k, b in model.named_buffers()}

    def f(p: dict, x: Tensor) -> Tensor:
        return functional_call(model, (p, buffers), (x[None],)).reshape(-1)  # (O,)

    jac = vmap(jacrev(f), (None, 0))

    def jacobians(x: Tensor) -> Iterator[list[Tensor]]:
        for chunk in x.to(device=device, dtype=dtype).split(chunk_size):
            yield [j.flatten(2) for j in jac(params, chunk).values()]  # each (n, O, P_k)

    x2 = x1 if x2 is None else x2
    rows = []
    for j1 in jacobians(x1):
        cols = []
        for j2 in jacobians(x2):
            if mode == "full":
                block = sum(torch.einsum("iap,jbp->iajb", a, b) for a, b in zip(j1, j2))
                block = block.reshape(j1[0].shape[0] * j1[0].shape[1], -1)
            elif mode == "per_output":
                block = sum(torch.einsum("iap,jap->aij", a, b) for a, b in zip(j1, j2))
            else:
                block = sum(torch.einsum("iap,jap->ij", a, b) for a, b in zip(j1, j2))
            cols.append(block)
        rows.append(torch.cat(cols, dim=-1))
    return torch.cat(rows, dim=-2)


def empirical_ntk(model: nn.Module, x1: Tensor, x2: Tensor | None = None, mode: Mode = "full",
                  normalization: Normalization = "raw", dtype: torch.dtype = torch.float64,
                  method: Literal["auto", "layerwise", "jacobian"] = "auto", chunk_size: int = 256) -> Tensor:
    """The empirical NTK of ``model`` between ``x1`` (N, d) and ``x2`` (M, d; default x1).

    Args:
        model: a ``CoordMLP`` or a module whose ``ntk_model()`` returns one (fast path), any module mapping
            (N, d) to (N, O) (generic path), or a ``CoordMLPEnsemble`` (or a module whose ``ntk_model()`` returns
            one): every member's kernel in one batched call, stacked along a leading member axis (M, …), equal
            to M calls on the members; x1 and x2 may then be (M, N, d), each member its own points.
        mode: ``full`` (N·O, M·O), ``trace`` (N, M), ``mean`` (N, M) or ``per_output`` (O, N, M).
        normalization: ``raw`` (J Jᵀ) or ``by_n`` (J Jᵀ / N).
        dtype: dtype of the Jacobian factors and of the Gram (float64 by default).
        method: ``auto`` (layer-wise when the model is a ``CoordMLP``), ``layerwise`` or ``jacobian``.
        chunk_size: points per vmap(jacrev) chunk on the generic path.

    Returns:
        The kernel on the model's device, in ``dtype``.
    """
    _check(mode, normalization)
    ensemble = find_ensemble(model)
    if ensemble is not None:
        return _ensemble_kernel(ensemble, x1, x2, mode, normalization, dtype)
    if x1.ndim != 2 or (x2 is not None and (x2.ndim != 2 or x2.shape[1] != x1.shape[1])):
        raise ValueError(f"x1 and x2 must be (N, d) with the same d, got {tuple(x1.shape)} and "
                         f"{None if x2 is None else tuple(x2.shape)}")
    mlp = require_mlp(model, "method='layerwise'") if method == "layerwise" else find_mlp(model)
    for name, x in (("x1", x1), ("x2", x2)):
        if x is not None:
            check_coordinates(name, x, mlp.in_features if mlp is not None else x.shape[1])
    with no_tf32():
        if mlp is not None and method != "jacobian":
            kernel, outputs = _mlp_kernel(mlp, x1, x2, mode, dtype), mlp.out_features
        else:
            kernel = _generic_kernel(model, x1, x2, mode, dtype, chunk_size)
            param = next(model.parameters())
            with torch.no_grad():
                outputs = model(x1[:1].to(device=param.device, dtype=param.dtype)).shape[-1]
    return _finish(kernel, mode, normalization, x1.shape[0], outputs)


def _ensemble_kernel(ensemble: CoordMLPEnsemble, x1: Tensor, x2: Tensor | None, mode: str, normalization: str,
                     dtype: torch.dtype) -> Tensor:
    """Every member's kernel, stacked (M, …): one batched factor pass, then each member's Gram."""
    with no_tf32():
        f1 = ensemble_layer_factors(ensemble, x1, dtype)
        f2 = None if x2 is None else ensemble_layer_factors(ensemble, x2, dtype)
    return ensemble_kernel_from_factors(f1, f2, mode, normalization)


def ensemble_kernel_from_factors(f1: list[LayerFactors], f2: list[LayerFactors] | None, mode: str,
                                 normalization: str) -> Tensor:
    """Every member's kernel (M, …) from its ``ensemble_layer_factors`` between the points of ``f1`` and ``f2``
    (None: f1's own, the symmetric kernel), in ``mode`` and ``normalization`` (N: f1's points)."""
    with no_tf32():
        kernel = torch.stack([kernel_from_factors(a, b, mode, symmetric=f2 is None)
                              for a, b in zip(f1, f1 if f2 is None else f2)])
    n, outputs = f1[0].inputs[0].shape[0], f1[0].grads[-1].shape[1]
    return _finish(kernel, mode, normalization, n, outputs)


def ntk_layer_diagonals(model: nn.Module, x: Tensor, dtype: torch.dtype = torch.float64,
                        normalization: Normalization = "raw") -> Tensor:
    """Each layer's contribution to the diagonal of the ``full`` kernel, shape (L, N·O).

    Layer l gives ‖G_l[i, o]‖² (c_w² ‖H_{l−1}[i]‖² + c_b²), the squared norm of the gradient of f_o(x_i)
    with respect to that layer's weights and bias, in O(N·O·Σ widths). Summing over layers gives
    ``ntk_diagonal``; summing over points gives each layer's share of the trace.
    """
    mlp = require_mlp(model, "ntk_layer_diagonals")
    with no_tf32():
        per_layer = diagonals_from_factors(layer_factors(mlp, x, dtype))
    return per_layer / x.shape[0] if normalization == "by_n" else per_layer


def ntk_layer_kernels(model: nn.Module, x: Tensor, mode: Mode = "full", normalization: Normalization = "raw",
                      dtype: torch.dtype = torch.float64) -> Tensor:
    """Each layer's term of the kernel at ``x`` (N, d): Θ_l = (G_l G_lᵀ) ⊙ (c_w² H_{l−1} H_{l−1}ᵀ + c_b²), the Gram
    of the gradients with respect to layer l's weights and bias, stacked (L, …) in ``mode``'s shape; their sum is
    ``empirical_ntk(model, x, mode=mode)``. An MLP only (the layer-wise engine)."""
    _check(mode, normalization)
    mlp = require_mlp(model, "ntk_layer_kernels")
    with no_tf32():
        f = layer_factors(mlp, x, dtype)
        terms = [kernel_from_factors(one, one, mode, symmetric=True)
                 for one in (LayerFactors([h], [g], [cw], [cb])
                             for h, g, cw, cb in zip(f.inputs, f.grads, f.weight_scales, f.bias_scales))]
    return torch.stack([_finish(t, mode, normalization, x.shape[0], mlp.out_features) for t in terms])


def diagonals_from_factors(f: LayerFactors) -> Tensor:
    """(L, N·O): layer l's ‖G_l[i, o]‖² (c_w² ‖H_{l−1}[i]‖² + c_b²) for each point i and output o (raw)."""
    return torch.stack([((g**2).sum(-1) * (cw * (h**2).sum(-1, keepdim=True) + cb)).reshape(-1)
                        for h, g, cw, cb in zip(f.inputs, f.grads, f.weight_scales, f.bias_scales)])


def ntk_diagonal(model: nn.Module, x: Tensor, dtype: torch.dtype = torch.float64,
                 normalization: Normalization = "raw") -> Tensor:
    """The diagonal of the ``full`` kernel, Θ[(i, o), (i, o)] = ‖∂f_o(x_i)/∂θ‖², shape (N·O,), point-major.

    Its sum is the exact trace that stochastic estimates are checked against.
    """
    return ntk_layer_diagonals(model, x, dtype, normalization).sum(0)


def as_blocks(kernel: Tensor, outputs: int) -> Tensor:
    """View a ``full`` kernel (N·O, M·O) as (N, M, O, O)."""
    n, m = kernel.shape[0] // outputs, kernel.shape[1] // outputs
    return kernel.view(n, outputs, m, outputs).permute(0, 2, 1, 3)


def matvec_from_factors(factors: LayerFactors, dtype: torch.dtype = torch.float64, scale: float = 1.0,
                        all_reduce: Callable[[Tensor], Tensor] | None = None, chunk_size: int = 8192):
    """v ↦ Θ v (times ``scale``) for the ``full`` kernel of the points whose ``factors`` are given.

    v: (N·O,) or (N·O, k), rows of these points only. Per layer, U_i = Σ_o v_{i,o} G_l[i, o] (k, n_l),
    M = Σ_i U_i ⊗ H_{l−1}[i] (k·n_l, fan_in) and (Θ v)[i, o] = G_l[i, o]·(c_w² M H_{l−1}[i] + c_b² Σ_j U_j): plain
    matrix products over chunks of ``chunk_size`` points (memory chunk·k·n_l). The sums over points go through
    ``all_reduce`` when given (the points are then spread over processes, each holding its rows).
    """
    n, out = factors.grads[-1].shape[:2]
    reduce = all_reduce or (lambda t: t)
    chunks = [slice(i, min(i + chunk_size, n)) for i in range(0, n, chunk_size)]

    def matvec(v: Tensor) -> Tensor:
        flat = v.ndim == 1
        if v.ndim not in (1, 2) or v.shape[0] != n * out:
            raise ValueError(f"ntk_matvec: expected v of shape (N·O,) or (N·O, k) with N·O = {n} · {out} = {n * out}, "
                             f"got {tuple(v.shape)}")
        v = v.to(device=factors.inputs[0].device, dtype=dtype).reshape(n, out, -1)  # (N, O, k)
        k = v.shape[-1]
        result = torch.zeros_like(v)
        with no_tf32():
            for h, g, cw, cb in zip(factors.inputs, factors.grads, factors.weight_scales, factors.bias_scales):
                width = g.shape[-1]
                m = h.new_zeros(k * width, h.shape[1])
                u_sum = h.new_zeros(k, width)
                for c in chunks:
                    u = v[c].transpose(1, 2) @ g[c]  # (C, k, n_l)
                    m += u.reshape(u.shape[0], -1).T @ h[c]
                    u_sum += u.sum(0)
                m, u_sum = reduce(m * cw), reduce(u_sum * cb)
                for c in chunks:
                    back = (h[c] @ m.T).view(-1, k, width) + u_sum  # (C, k, n_l)
                    result[c] += g[c] @ back.transpose(1, 2)  # (C, O, k)
        result = (result * scale).reshape(n * out, -1)
        return result[:, 0] if flat else result

    return matvec


def ntk_matvec(model: nn.Module, x: Tensor, dtype: torch.dtype = torch.float64,
               normalization: Normalization = "raw"):
    """A function v ↦ Θ v for the ``full`` kernel on ``x``, without forming Θ.

    v has shape (N·O,) or (N·O, k); the result is on the model's device. Each product is Jᵀ v then J(·),
    assembled from the layer-wise factors (``matvec_from_factors``). Memory N·O·Σ widths; time
    O(N·O·Σ n_l n_{l−1}) per column.
    """
    mlp = require_mlp(model, "ntk_matvec")
    with no_tf32():
        factors = layer_factors(mlp, x, dtype)
    return matvec_from_factors(factors, dtype, 1.0 / x.shape[0] if normalization == "by_n" else 1.0)
