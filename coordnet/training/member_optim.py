"""Optimisers for stacked ensemble parameters: member by member the update of ``torch.optim``'s Adam or SGD.

Every parameter has a leading member axis M (``CoordMLPEnsemble``). Each member has its own learning rate (an (M,)
tensor, exact: the step of member m is computed with lr_m as ``torch.optim`` computes it with lr, not rescaled
afterwards); the moments are elementwise, so each member's slice of the optimiser state is the state its single
run would hold. The other settings (betas, eps, momentum, weight decay) are shared.

Members can be stopped: ``step(active)`` updates only the members with ``active[m]``, and only if every one of
their new parameters is finite; the gradients of the others are treated as zero, so their state stays finite and
their parameters stay exactly as they were. ``rejected`` then names (an (M,) bool tensor, on the device) the
members whose update was refused for being NaN or infinite; the caller stops them.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor


def _column(values: Tensor, like: Tensor) -> Tensor:
    """(M,) → (M, 1, …) broadcasting against ``like`` (M, …)."""
    return values.view(-1, *([1] * (like.ndim - 1)))


class MemberOptimizer(torch.optim.Optimizer):
    """The shared machinery: per-member learning rates, ``step(active)`` and the finiteness check."""

    def __init__(self, params: Iterable[Tensor], lr: Tensor | list[float], defaults: dict) -> None:
        lr = torch.as_tensor(lr, dtype=torch.float64)
        if lr.ndim != 1 or not torch.isfinite(lr).all() or (lr <= 0).any():
            raise ValueError(f"{type(self).__name__}: lr must be one finite number > 0 per member, got {lr.tolist()}")
        super().__init__(params, defaults)
        self.lr = lr  # float64: lr_m / bias correction is formed in double precision, as torch.optim does
        self.rejected: Tensor | None = None

    def _update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure=None, active: Tensor | None = None):  # noqa: D102 — see the module docstring
        loss = closure() if closure is not None else None
        updates = []
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                members = param.shape[0]
                mask = torch.ones(members, dtype=torch.bool, device=param.device) if active is None else active
                grad = torch.where(_column(mask, param), param.grad, 0.0)
                updates.append((param, mask, self._update(param, grad, self.state[param], group)))
        if not updates:
            return loss
        finite = torch.stack([torch.isfinite(new).flatten(1).all(1) for _, _, new in updates]).all(0)
        mask = updates[0][1]
        self.rejected = mask & ~finite
        for param, _, new in updates:
            param.copy_(torch.where(_column(mask & finite, param), new, param))
        return loss

    def state_dict(self) -> dict:
        return super().state_dict() | {"member_lr": self.lr.clone()}

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        self.lr = state_dict.pop("member_lr", self.lr).to(torch.float64)
        super().load_state_dict(state_dict)

    def _lr(self, like: Tensor, scale: float = 1.0) -> Tensor:
        """lr_m · scale for each member, rounded to ``like``'s dtype, shaped to broadcast against it."""
        return _column((self.lr.to(like.device) * scale).to(like.dtype), like)


class MemberAdam(MemberOptimizer):
    """``torch.optim.Adam`` (no AMSGrad; L2 weight decay added to the gradient) with a learning rate per member.

    Per element, as torch's: m ← lerp(m, g, 1 − β1), v ← β2·v + (1 − β2)·g², then
    θ ← θ − (lr_m / (1 − β1^t)) · m / (√v / √(1 − β2^t) + eps).
    """

    def __init__(self, params: Iterable[Tensor], lr: Tensor | list[float], betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr, {"betas": tuple(betas), "eps": eps, "weight_decay": weight_decay})

    def _update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> Tensor:
        beta1, beta2 = group["betas"]
        if group["weight_decay"]:
            grad = grad.add(param, alpha=group["weight_decay"])
        if not state:
            state["step"] = torch.tensor(0.0)
            state["exp_avg"] = torch.zeros_like(param)
            state["exp_avg_sq"] = torch.zeros_like(param)
        state["step"] += 1
        step = state["step"].item()  # kept on the CPU, as torch.optim keeps it
        state["exp_avg"].lerp_(grad, 1 - beta1)
        state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (state["exp_avg_sq"].sqrt() / (1 - beta2**step) ** 0.5).add_(group["eps"])
        return param + (-self._lr(param, 1 / (1 - beta1**step))) * state["exp_avg"] / denom


class MemberSGD(MemberOptimizer):
    """``torch.optim.SGD`` (heavy-ball momentum without dampening or Nesterov; L2 weight decay) with a learning rate
    per member: b ← μ·b + g (b = g at the first step), θ ← θ − lr_m · b (b = g without momentum)."""

    def __init__(self, params: Iterable[Tensor], lr: Tensor | list[float], momentum: float = 0.0,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr, {"momentum": momentum, "weight_decay": weight_decay})

    def _update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> Tensor:
        if group["weight_decay"]:
            grad = grad.add(param, alpha=group["weight_decay"])
        if group["momentum"]:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = grad.clone()
            else:
                state["momentum_buffer"].mul_(group["momentum"]).add_(grad)
            grad = state["momentum_buffer"]
        return torch.addcmul(param, grad, -self._lr(param))


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
