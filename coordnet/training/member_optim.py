"""Optimisers for stacked ensemble parameters: member by member the update of ``torch.optim``'s Adam or SGD.

Every parameter has a leading member axis M (``CoordMLPEnsemble``). Each member has its own learning rate (an (M,)
tensor, exact: the step of member m is computed with lr_m as ``torch.optim`` computes it with lr, not rescaled
afterwards); the moments are elementwise, so each member's slice of the optimiser state is the state its single
run would hold. The other settings (betas, eps, momentum, weight decay) are shared.

Members can be stopped: ``step(active)`` updates only the members with ``active[m]``, and only if every one of
their new parameters is finite; the gradients of the others are treated as zero, so their state stays finite and
their parameters stay exactly as they were. ``rejected`` then names (an (M,) bool tensor, on the device) the
members whose update was refused for being NaN or infinite; the caller stops them. ``step()`` without ``active``
updates every member whose update is finite, and waits for the device once to see whether all are (a caller that
no longer computes a finished member, and reads its losses each step, loses nothing by it).
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor


def _column(values: Tensor, like: Tensor) -> Tensor:
    """(M,) → (M, 1, …) broadcasting against ``like`` (M, …)."""
    return values.view(-1, *([1] * (like.ndim - 1)))


class MemberOptimizer(torch.optim.Optimizer):
    """The shared machinery: per-member learning rates, ``step(active)`` and the finiteness check. Subclasses
    implement ``_updates(params, grads, group)``: the new value of every parameter, computed over the whole list at
    once (``torch._foreach_*``: one kernel launch per operation for all parameters, not one per parameter)."""

    def __init__(self, params: Iterable[Tensor], lr: Tensor | list[float], defaults: dict) -> None:
        lr = torch.as_tensor(lr, dtype=torch.float64)
        if lr.ndim != 1 or not torch.isfinite(lr).all() or (lr <= 0).any():
            raise ValueError(f"{type(self).__name__}: lr must be one finite number > 0 per member, got {lr.tolist()}")
        super().__init__(params, defaults)
        self.lr = lr  # float64: lr_m / bias correction is formed in double precision, as torch.optim does
        self.rejected: Tensor | None = None

    def _updates(self, params: list[Tensor], grads: list[Tensor], group: dict) -> list[Tensor]:  # pragma: no cover
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure=None, active: Tensor | None = None):  # noqa: D102 — see the module docstring
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad if active is None else torch.where(_column(active, p), p.grad, 0.0) for p in params]
            updates = self._updates(params, grads, group)
            finite = torch.stack([torch.isfinite(new).flatten(1).all(1) for new in updates]).all(0)
            keep = finite if active is None else active & finite
            self.rejected = ~finite if active is None else active & ~finite
            if active is None and bool(finite.all()):  # the common case of a caller that reads its losses anyway
                torch._foreach_copy_(params, updates)
                continue
            for param, new in zip(params, updates):
                param.copy_(torch.where(_column(keep, param), new, param))
        return loss

    def state_dict(self) -> dict:
        return super().state_dict() | {"member_lr": self.lr.clone()}

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        self.lr = state_dict.pop("member_lr", self.lr).to(torch.float64)
        super().load_state_dict(state_dict)

    def _lr(self, like: Tensor, scale: float = 1.0) -> Tensor:
        """−lr_m · scale for each member, rounded to ``like``'s dtype, shaped to broadcast against it."""
        return _column((self.lr.to(like.device) * -scale).to(like.dtype), like)


class MemberAdam(MemberOptimizer):
    """``torch.optim.Adam`` (no AMSGrad; L2 weight decay added to the gradient) with a learning rate per member.

    Per element, as torch's: m ← lerp(m, g, 1 − β1), v ← β2·v + (1 − β2)·g², then
    θ ← θ − (lr_m / (1 − β1^t)) · m / (√v / √(1 − β2^t) + eps).
    """

    def __init__(self, params: Iterable[Tensor], lr: Tensor | list[float], betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr, {"betas": tuple(betas), "eps": eps, "weight_decay": weight_decay})

    def _updates(self, params: list[Tensor], grads: list[Tensor], group: dict) -> list[Tensor]:
        beta1, beta2 = group["betas"]
        if group["weight_decay"]:
            grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
        for p in params:
            if not self.state[p]:
                self.state[p] = {"step": torch.tensor(0.0), "exp_avg": torch.zeros_like(p),
                                 "exp_avg_sq": torch.zeros_like(p)}
        states = [self.state[p] for p in params]
        for state in states:
            state["step"] += 1
        step = states[0]["step"].item()  # kept on the CPU, as torch.optim keeps it; all parameters step together
        exp_avgs, exp_avg_sqs = [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states]
        torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
        denoms = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_div_(denoms, (1 - beta2**step) ** 0.5)
        torch._foreach_add_(denoms, group["eps"])
        steps = torch._foreach_mul(exp_avgs, [self._lr(p, 1 / (1 - beta1**step)) for p in params])
        torch._foreach_div_(steps, denoms)
        return torch._foreach_add(params, steps)


class MemberSGD(MemberOptimizer):
    """``torch.optim.SGD`` (heavy-ball momentum without dampening or Nesterov; L2 weight decay) with a learning rate
    per member: b ← μ·b + g (b = g at the first step), θ ← θ − lr_m · b (b = g without momentum)."""

    def __init__(self, params: Iterable[Tensor], lr: Tensor | list[float], momentum: float = 0.0,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr, {"momentum": momentum, "weight_decay": weight_decay})

    def _updates(self, params: list[Tensor], grads: list[Tensor], group: dict) -> list[Tensor]:
        if group["weight_decay"]:
            grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
        if group["momentum"]:
            buffers = []
            for p, g in zip(params, grads):
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = g.clone()
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(g)
                buffers.append(state["momentum_buffer"])
            grads = buffers
        return [torch.addcmul(p, g, self._lr(p)) for p, g in zip(params, grads)]


#: ``torch.optim`` class → (its ensemble counterpart, the settings it takes besides lr).
MEMBER_OPTIMIZERS = {"Adam": (MemberAdam, ("betas", "eps", "weight_decay")),
                     "SGD": (MemberSGD, ("momentum", "weight_decay"))}


def clip_member_gradients(params: Iterable[Tensor], max_norms: Tensor) -> None:
    """Scale each member's gradient to global L2 norm at most ``max_norms[m]`` (inf: unclipped), as
    ``torch.nn.utils.clip_grad_norm_`` does for one network: coefficient min(1, max / (norm + 1e-6))."""
    grads = [p.grad for p in params if p.grad is not None]
    norms = torch.stack([g.flatten(1).norm(dim=1) for g in grads]).norm(dim=0)  # (M,)
    coefficient = (max_norms.to(norms) / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(_column(coefficient.to(g.dtype), g))
