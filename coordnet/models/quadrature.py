"""Gaussian dual integrals with an error estimate: nested adaptive composite Gauss–Legendre.

For (u, v) ~ N(0, [[var1, cov], [cov, var2]]) write u = σ1·z1, v = t·z1 + r·z2 with z1, z2 ~ N(0, 1)
independent, σ1 = √var1, t = cov/σ1 (0 where σ1 = 0) and r = √(var2 − t²). Then

    E[φ(u)φ(v)] = ∫ φ(σ1·z1)·g(z1) N(z1) dz1,   g(z1) = E[φ(v) | z1] = ∫ φ(t·z1 + r·z2) N(z2) dz2,

and likewise for φ′. Each 1-D integral runs over |z| ≤ 9 (dropped mass P(|z| > 9) ≈ 2e−19), cut to
the activation's declared ``support``, on P equal Gauss–Legendre panels that are also split where the
pre-activation crosses a declared kink κ (z1 = κ/σ1 and κ/t, z2 = (κ − t·z1)/r). P doubles until two
successive levels agree, entry by entry (a converged entry drops out, so easy entries stay cheap).
"""

from __future__ import annotations

import math
import warnings
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

Fn = Callable[[Tensor], Tensor]
_K = 9.0


class QuadratureWarning(RuntimeWarning):
    """A Gaussian dual missed its tolerance; the values come back anyway, with their error estimates."""


def _rule(lo: Tensor, hi: Tensor, brk: Tensor, panels: int, x: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
    """Nodes z, weights ∝ w·N(z) of ``panels`` equal Gauss–Legendre panels on each [lo, hi], also split at brk;
    the weights are scaled to sum to ∫_lo^hi N(z) dz (exact for constants: r = 0 costs no inner work)."""
    edges = lo[:, None] + (hi - lo)[:, None] * torch.linspace(0, 1, panels + 1, dtype=lo.dtype, device=lo.device)
    brk = torch.minimum(torch.maximum(torch.where(brk.isfinite(), brk, lo[:, None]), lo[:, None]), hi[:, None])
    edges = torch.cat([edges, brk], 1).sort(1).values
    half, mid = (edges[:, 1:] - edges[:, :-1]) / 2, (edges[:, 1:] + edges[:, :-1]) / 2
    z = (mid[..., None] + half[..., None] * x).flatten(1)
    wz = (half[..., None] * w).flatten(1) * torch.exp(-0.5 * z**2)
    mass = 0.5 * (torch.erf(hi / math.sqrt(2)) - torch.erf(lo / math.sqrt(2)))  # rescaled: exact for constants
    total = wz.sum(1)
    return z, wz * torch.where(total > 0, mass / torch.where(total > 0, total, 1.0), 0.0)[:, None]


def _limits(mean: Tensor, sd: Tensor, support: tuple[float, float] | None, kinks: Sequence[float],
            period: float | None, p0: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """For x = mean + sd·z: the z-interval [−9, 9] ∩ {x ∈ support}, the kinks in z (NaN: none), and the
    fewest panels ⌈sd·(hi − lo)/(2·period)⌉ no wider in x than two periods (16 nodes resolve ~3)."""
    pos = sd > 0
    safe = torch.where(pos, sd, 1.0)
    lo, hi = torch.full_like(mean, -_K), torch.full_like(mean, _K)
    if support is not None:
        lo = torch.where(pos, torch.clamp((support[0] - mean) / safe, min=-_K), lo)
        hi = torch.where(pos, torch.clamp((support[1] - mean) / safe, max=_K), hi)
        hi = torch.maximum(hi, lo)
    brk = [torch.where(pos, (k - mean) / safe, math.nan) for k in kinks]
    brk = torch.stack(brk, 1) if brk else mean.new_zeros(len(mean), 0)
    pmin = torch.full_like(mean, p0) if period is None else (sd * (hi - lo) / (2 * period)).ceil().clamp(min=p0)
    return lo, hi, brk, pmin


def _adaptive(f: Callable[[Tensor, Tensor, Tensor], list[Tensor]], channels: int, lo: Tensor, hi: Tensor,
              brk: Tensor, pmin: Tensor, atol: Tensor, rtol: float, opts: dict) -> tuple[Tensor, Tensor, Tensor]:
    """A batch of I_e = ∫_{lo_e}^{hi_e} f_e(z) N(z) dz with channels [F, D, |F|, |D|(, eF, eD)].

    ``f(index, z, weights)`` gives the C integrands at nodes z (n, Q), each (n, Q). Panels P = p0, 2·p0, …
    ≤ pmax; an entry joins at P ≥ pmin_e (at the last two levels in any case) and is done at P ≥ 2·pmin_e
    when err = |I_P − I_{P/2}| + I_P[eF, eD] ≤ atol_e + rtol·I_P[|F|, |D|] for F and D both.
    Returns I (m, C), err (m, 2) and done (m,).
    """
    x, w = (torch.from_numpy(a).to(lo.device) for a in np.polynomial.legendre.leggauss(opts["nodes"]))
    val, err = lo.new_full((lo.shape[0], channels), math.inf), lo.new_full((lo.shape[0], 2), math.inf)
    done = torch.zeros_like(lo, dtype=torch.bool)
    levels = [opts["p0"] << j for j in range(64) if opts["p0"] << j <= opts["pmax"]]
    for j, panels in enumerate(levels):
        idx = (~done & ((pmin <= panels) | (j >= len(levels) - 2))).nonzero().squeeze(1)
        step = max(1, opts["budget"] // ((panels + brk.shape[1]) * opts["nodes"]))
        for part in idx.split(step):
            z, wz = _rule(lo[part], hi[part], brk[part], panels, x, w)
            cur = torch.stack([torch.einsum("nq,nq->n", y, wz) for y in f(part, z, wz)], 1)
            e = (cur[:, :2] - val[part, :2]).abs() + (cur[:, 4:] if cur.shape[1] > 4 else 0.0)
            val[part], err[part] = cur, e
            done[part] = (e <= atol[part] + rtol * cur[:, 2:4]).all(1) & (panels >= 2 * pmin[part])
    return val, err, done


def _name(fn: Fn) -> str:
    owner = getattr(fn, "__self__", None)
    return f"{owner!r}.{fn.__name__}" if owner is not None else getattr(fn, "__qualname__", repr(fn))


def _chunk(phi: Fn, dphi: Fn, var1: Tensor, var2: Tensor, cov: Tensor, atol: float, rtol: float, geom: dict,
           opts: dict) -> tuple[Tensor, Tensor, Tensor]:
    """Outer adaptive rule over z1 whose integrand calls the inner adaptive rule over z2 at every node.

    Inner tolerances are half the outer ones, the absolute part divided by max|φ(u)| over the outer nodes,
    so that the propagated inner error Σ w·|φ(u)|·ε_in stays ≤ ½(atol + rtol·E|φφ|). Outer nodes whose
    w·|φ(u)| and w·|φ′(u)| are both under 1e−17 of their sums get no inner integral (g taken as 0). The outer
    rule is also split at z1 = κ/t ± (1, 3, 9)·r/|t| (offsets under 2), where E[φ(v) | z1] turns the kink
    into a bend of width r/|t|.
    """
    su = var1.clamp(min=0).sqrt()
    t = torch.where(su > 0, cov / torch.where(su > 0, su, 1.0), 0.0)
    r = (var2 - t**2).clamp(min=0).sqrt()

    def outer(part: Tensor, z1: Tensor, w1: Tensor) -> list[Tensor]:
        fu, du = phi(su[part, None] * z1), dphi(su[part, None] * z1)
        wf, wd = w1 * fu.abs(), w1 * du.abs()
        live = ((wf > 1e-17 * wf.sum(1, keepdim=True)) | (wd > 1e-17 * wd.sum(1, keepdim=True))).reshape(-1)
        live = live.nonzero().squeeze(1)
        mean, sd = (t[part, None] * z1).reshape(-1)[live], r[part, None].expand_as(z1).reshape(-1)[live]
        amax = torch.stack([fu.abs().amax(1), du.abs().amax(1)], 1).repeat_interleave(z1.shape[1], 0)[live]

        def inner(p2: Tensor, z2: Tensor, w2: Tensor) -> list[Tensor]:
            v = mean[p2, None] + sd[p2, None] * z2
            fv, dv = phi(v), dphi(v)
            return [fv, dv, fv.abs(), dv.abs()]

        lo, hi, brk, pmin = _limits(mean, sd, geom["support"], geom["kinks"], geom["period"], opts["p0"])
        atol_in = torch.where(amax > 0, 0.5 * atol / amax.clamp(min=1e-300), math.inf)
        g_live, e_live, _ = _adaptive(inner, 4, lo, hi, brk, pmin, atol_in, 0.5 * rtol, opts)
        g, e = fu.new_zeros(fu.numel(), 4), fu.new_zeros(fu.numel(), 2)
        g[live], e[live] = g_live, e_live
        g, e = g.reshape(*z1.shape, 4), e.reshape(*z1.shape, 2)
        prop = [torch.where(x == 0, 0.0, x.abs() * e[..., i]) for i, x in enumerate((fu, du))]
        return [fu * g[..., 0], du * g[..., 1], fu.abs() * g[..., 2], du.abs() * g[..., 3], *prop]

    zero = torch.zeros_like(su)
    lo, hi, brk, pmin = _limits(zero, su, geom["support"], geom["kinks"], geom["period"], opts["p0"])
    bend = _limits(zero, t.abs(), None, geom["kinks"], None, 1)[2] * t.sign()[:, None]  # κ/t
    grade = torch.tensor([-9, -3, -1, 1, 3, 9.0], dtype=su.dtype, device=su.device)
    width = (r / torch.where(t != 0, t.abs(), math.nan))[:, None, None] * grade
    width = torch.where(width.abs() < 2, width, math.nan)  # a bend wider than 2 needs no grading
    brk = torch.cat([brk, bend, (bend[..., None] + width).flatten(1)], 1)
    return _adaptive(outer, 6, lo, hi, brk, pmin, torch.full((len(su), 2), atol, dtype=su.dtype, device=su.device),
                     rtol, {**opts, "budget": opts["budget"] >> 5})


def gaussian_duals(phi: Fn, dphi: Fn, var1: Tensor | float, var2: Tensor | float, cov: Tensor | float, *,
                   rtol: float = 1e-6, atol: float = 1e-9, kinks: Sequence[float] = (),
                   support: tuple[float, float] | None = None, period: float | None = None, strict: bool = False,
                   return_error: bool = False, nodes: int = 16, first_panels: int = 2, max_panels: int = 128,
                   chunk: int = 2048) -> tuple[Tensor, ...]:
    """(E[φ(u)φ(v)], E[φ′(u)φ′(v)]) for (u, v) ~ N(0, [[var1, cov], [cov, var2]]), elementwise, float64.

    Contract: each returned F̂ comes with an estimate ε_F of |F̂ − F| (the change from the previous panel
    level plus the propagated inner estimates), and is accepted when ε_F ≤ atol + rtol·E[|φ(u)φ(v)|]; the
    scale E|φφ| is integrated alongside, so a tiny F from cancellation is held to the size of the terms
    that cancel, not to F itself. Likewise for D = E[φ′φ′] with E|φ′φ′|. Entries that still miss it at
    ``max_panels`` panels per dimension warn ``QuadratureWarning`` (``strict``: raise ValueError).
    Not in ε: the |z| > 9 Gaussian tails and whatever φ, φ′ hold outside ``support``.

    Args:
        phi, dphi: elementwise φ and φ′ on float64 tensors.
        kinks: pre-activations where φ or φ′ is not smooth (0.0 for ReLU, |x|, FINER).
        support: (a, b) outside which φ and φ′ are negligible (e.g. a Gabor envelope); None: all of ℝ.
        period: shortest period (or width) of φ; an entry is accepted only once the coarser of the two
            levels compared has panels at most two periods wide, so that two coarse levels cannot agree
            by both missing φ's features (e.g. a narrow bump between nodes).
        return_error: also return (ε_F, ε_D).
        nodes, first_panels, max_panels: Gauss–Legendre nodes per panel, first and last panel counts.
        chunk: entries integrated together.
    """
    device = next((a.device for a in (var1, var2, cov) if isinstance(a, Tensor)), None)
    var1, var2, cov = torch.broadcast_tensors(*(torch.as_tensor(a, dtype=torch.float64, device=device)
                                                for a in (var1, var2, cov)))
    opts = {"nodes": nodes, "p0": first_panels, "pmax": max_panels, "budget": 1 << 19}
    geom = {"kinks": tuple(kinks), "support": support, "period": period}
    parts = [_chunk(phi, dphi, a, b, c, atol, rtol, geom, opts)
             for a, b, c in zip(*(x.reshape(-1).split(chunk) for x in (var1, var2, cov)))]
    val, err, done = (torch.cat(x) for x in zip(*parts))
    tol = atol + rtol * val[:, 2:4]
    if not bool(done.all()):
        i = int(torch.where(done, 0.0, (err / tol).amax(1)).argmax())  # the worst entry
        msg = (f"gaussian_duals(phi={_name(phi)}, dphi={_name(dphi)}): {int((~done).sum())} of {done.numel()} "
               f"entries miss |err| <= atol + rtol*E|.| (rtol={rtol:g}, atol={atol:g}) within {max_panels} panels; "
               f"worst, flat index {i} (var1={var1.reshape(-1)[i]:g}, var2={var2.reshape(-1)[i]:g}, "
               f"cov={cov.reshape(-1)[i]:g}): estimated error {err[i, 0]:.2e} (E[phi phi]) / {err[i, 1]:.2e} "
               f"(E[phi' phi']) vs tolerance {tol[i, 0]:.2e} / {tol[i, 1]:.2e}")
        if strict:
            raise ValueError(msg)
        warnings.warn(msg, QuadratureWarning, stacklevel=2)
    f, d, ef, ed = (x.reshape(var1.shape) for x in (val[:, 0], val[:, 1], err[:, 0], err[:, 1]))
    return (f, d, ef, ed) if return_error else (f, d)
