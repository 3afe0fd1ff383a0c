"""``CoordMLPEnsemble``: M coordinate MLPs of one shape, trained and measured as one batched model.

Member m computes exactly its own ``CoordMLP``,

    f_m(x) = W_L^m φ_m(… φ_m(W_1^m γ_m(x) + b_1^m) …) + b_L^m,

with layer l's weights of all members stacked in one (M, out, in) parameter and its biases in one (M, out):
the forward is one batched matrix product per layer (``torch.baddbmm``). Stacked parameters, not
``torch.func.stack_module_state`` + ``vmap``: the members' weights stay ordinary tensors that an optimiser
updates in one call per layer, with a per-member learning rate as an (M, 1, 1) factor, and the NTK engine reads
the same per-layer factors as for one MLP, batched over members.

What may differ between members: the initial weights (each is the ``CoordMLP`` it was built as, so a member
built under ``torch.manual_seed(s)`` starts from seed s's weights), the activation's parameters (ω0, s, σ, a, b:
any float attribute of the activation object, held per member as an (M, 1, 1) factor), the NTK
parametrisation's scales, and the encoding (one shared when all members' are equal). What must agree: the
layer widths, biases on or off, the activation's class and the encoding's class and size.

Inputs x are (N, d), the same points for every member, or (M, N, d), each member its own; outputs (M, N, O).
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import Tensor, nn

from coordnet.models.activations import Activation
from coordnet.models.mlp import CoordMLP, MLPTrace, check_coordinates

Members = slice | Sequence[int]  # which members a pass computes


def _float_attributes(activation: Activation) -> dict[str, float]:
    """The activation's own float settings (``s``, ``phase``, ``a``, ``b``, ``sigma``, …), by attribute name."""
    return {k: v for k, v in vars(activation).items() if isinstance(v, float) and not k.startswith("_")}


def _check_same_shape(members: Sequence[CoordMLP]) -> None:
    """Raise a ValueError naming the first member whose shape differs from member 0's."""
    first = members[0]

    def shape(net: CoordMLP) -> tuple:
        encoding = net.encoding
        return (net.in_features, net.out_features, list(net.widths), net.linears[0].bias is not None,
                net.parametrization, type(net.activation).__name__,
                None if encoding is None else (type(encoding).__name__, encoding.out_features))

    names = ("in_features", "out_features", "hidden widths", "bias", "parametrization", "activation class",
             "encoding")
    for m, net in enumerate(members[1:], 1):
        for name, a, b in zip(names, shape(first), shape(net)):
            if a != b:
                raise ValueError(f"CoordMLPEnsemble: member {m} has {name} {b!r}, member 0 {a!r}; an ensemble's "
                                 "members share one shape (group the others into an ensemble of their own)")
        others = {k: v for k, v in vars(net.activation).items() if not k.startswith("_") and k != "training"
                  and not isinstance(v, float)}
        mine = {k: v for k, v in vars(first.activation).items() if not k.startswith("_") and k != "training"
                and not isinstance(v, float)}
        if others != mine:
            raise ValueError(f"CoordMLPEnsemble: member {m}'s activation {net.activation!r} differs from member 0's "
                             f"{first.activation!r} in a setting that is not a float ({others} against {mine})")


def _stacked(members: Sequence[CoordMLP], layer: int, name: str) -> nn.Parameter:
    """Layer ``layer``'s ``weight`` or ``bias`` of every member, stacked along a new first axis."""
    return nn.Parameter(torch.stack([getattr(m.linears[layer], name).detach() for m in members]))


def _scaled(tensor: Tensor, scale: float | Tensor) -> Tensor:
    return tensor if isinstance(scale, float) and scale == 1.0 else tensor * scale


def _same_encoding(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return (repr(a) == repr(b) and sa.keys() == sb.keys()
            and all(sa[k].shape == sb[k].shape and torch.equal(sa[k], sb[k]) for k in sa))


class CoordMLPEnsemble(nn.Module):
    """M ``CoordMLP`` members of one shape with stacked parameters (see the module docstring).

    Args:
        members: the networks, in member order; each keeps nothing of its own afterwards (their weights are
            copied into the stacked parameters).

    Raises:
        ValueError: no members, or members of different shapes (the message names the first difference).
    """

    def __init__(self, members: Sequence[CoordMLP]) -> None:
        super().__init__()
        members = list(members)
        if not members or not all(isinstance(m, CoordMLP) for m in members):
            raise ValueError("CoordMLPEnsemble: expected a non-empty list of CoordMLP members")
        _check_same_shape(members)
        self.num_members = len(members)
        first = members[0]
        self.widths, self.parametrization, self.inits = list(first.widths), first.parametrization, \
            [m.init for m in members]
        layers = range(len(first.linears))
        self.weights = nn.ParameterList([_stacked(members, l, "weight") for l in layers])
        self.biases = nn.ParameterList([_stacked(members, l, "bias") for l in layers] if first.linears[0].bias is not None
                                       else [])
        # c_w, c_b per layer and member (1 under the standard parametrisation)
        self.weight_scales = [[m.linears[l].weight_scale for m in members] for l in range(len(first.linears))]
        self.bias_scales = [[m.linears[l].bias_scale for m in members] for l in range(len(first.linears))]
        self.init_stds = [[(lin.init_weight_std, lin.init_bias_std) for lin in m.linears] for m in members]
        encodings = [m.encoding for m in members]
        shared = encodings[0] is None or all(_same_encoding(encodings[0], e) for e in encodings[1:])
        self.encodings = nn.ModuleList([] if encodings[0] is None else encodings[:1] if shared else encodings)
        self.member_activations = [copy.deepcopy(m.activation) for m in members]
        values = [_float_attributes(a) for a in self.member_activations]
        # attribute → member values, for the settings that differ between members (the others stay floats)
        self.activation_settings = {k: [v[k] for v in values] for k in values[0] if len({v[k] for v in values}) > 1}
        self._stacked: dict[tuple, tuple[Activation, list, list]] = {}  # (dtype, device) → batched constants
        # a template for ``member``, not a submodule: its parameters are not the ensemble's
        object.__setattr__(self, "_skeleton", copy.deepcopy(first).requires_grad_(False))
        self._check_activation_broadcasts()

    @property
    def in_features(self) -> int:
        return self._skeleton.in_features

    @property
    def out_features(self) -> int:
        return self._skeleton.out_features

    @property
    def activation(self) -> Activation:
        """Member 0's activation (the class every member shares)."""
        return self.member_activations[0]

    def _constants(self, dtype: torch.dtype, device: torch.device,
                   members: Members = slice(None)) -> tuple[Activation, list, list]:
        """(the batched activation, per-layer weight scales, bias scales) of ``members`` in ``dtype`` on ``device``:
        the members' differing settings and scales as (M, 1, 1) tensors made from their exact values, the others as
        floats."""
        chosen = range(self.num_members)[members] if isinstance(members, slice) else members
        key = (dtype, device, tuple(chosen))
        if key not in self._stacked:
            activation = copy.deepcopy(self.member_activations[0])
            column = lambda values: torch.tensor([values[m] for m in chosen], dtype=dtype,  # noqa: E731
                                                 device=device).view(-1, 1, 1)
            for name, values in self.activation_settings.items():
                setattr(activation, name, column(values))
            per_member = lambda scales: [s[0] if len(set(s)) == 1 else column(s) for s in scales]  # noqa: E731
            self._stacked[key] = (activation, per_member(self.weight_scales),
                                  [b if isinstance(b, float) else b[:, :, 0] for b in per_member(self.bias_scales)])
        return self._stacked[key]

    def _check_activation_broadcasts(self) -> None:
        """The batched activation and its derivative must give each member its own values: an activation that
        reads a setting with ``math`` functions, not tensor arithmetic, cannot be batched."""
        if not self.activation_settings:
            return
        activation, _, _ = self._constants(torch.float64, torch.device("cpu"))
        x = torch.linspace(-2, 2, 9, dtype=torch.float64).expand(self.num_members, 1, 9)
        try:
            ok = all(torch.allclose(getattr(activation, f)(x)[m, 0], getattr(a, f)(x[m, 0]), rtol=1e-12, atol=1e-12)
                     for f in ("forward", "derivative") for m, a in enumerate(self.member_activations))
        except (TypeError, RuntimeError):
            ok = False
        if not ok:
            raise ValueError(f"CoordMLPEnsemble: the activation {type(self.activation).__name__} does not compute "
                             f"per-member values when its settings {sorted(self.activation_settings)} are tensors; "
                             "give every member the same settings, or train them one by one")

    def encode(self, x: Tensor, members: Members = slice(None)) -> Tensor:
        """γ(x) of ``members``: (N, F) when x is shared and so is the encoding, else (M, N, F); x itself without an
        encoding. ``x`` is (N, d), or (M, N, d) for those members."""
        if not len(self.encodings):
            return x
        if len(self.encodings) == 1:
            return self.encodings[0](x)
        encodings = self.encodings[members] if isinstance(members, slice) else [self.encodings[m] for m in members]
        if x.ndim == 2:
            return torch.stack([encoding(x) for encoding in encodings])
        return torch.stack([encoding(xm) for encoding, xm in zip(encodings, x)])

    def check_inputs(self, x: Tensor, name: str = "CoordMLPEnsemble input") -> None:
        """Raise a ValueError naming ``name`` unless x is (N, d) or (M, N, d) with this ensemble's M and d."""
        if isinstance(x, Tensor) and x.ndim == 3:
            if x.shape[0] != self.num_members:
                raise ValueError(f"{name}: expected (N, {self.in_features}) or ({self.num_members}, N, "
                                 f"{self.in_features}) coordinates, got {tuple(x.shape)}")
            check_coordinates(name, x[0], self.in_features)
        else:
            check_coordinates(name, x, self.in_features)

    def pass_parameters(self, members: slice) -> list[Tensor]:
        """Leaf tensors sharing the storage of ``members``' rows of every parameter (the weights, then the biases), for
        a pass (``forward(x, members, parameters)``) whose gradients land in those rows alone (``add_gradients``):
        slicing the parameters inside autograd would write a full-size gradient of every parameter each pass."""
        return [p[members].detach().requires_grad_() for p in self.parameters()]

    def add_gradients(self, members: slice, parameters: list[Tensor]) -> None:
        """Add the gradients of a pass's ``pass_parameters`` into ``members``' rows of the parameters' ``.grad``."""
        for full, part in zip(self.parameters(), parameters):
            if full.grad is None:
                full.grad = torch.zeros_like(full)
            if part.grad is not None:
                full.grad[members] += part.grad

    def _walk(self, x: Tensor, keep: bool, members: Members = slice(None),
              parameters: list[Tensor] | None = None) -> MLPTrace:
        """The batched forward of ``members`` (a slice of the member axis, or a list of member indices) in x's dtype:
        every trace tensor gets a leading member axis (M, N, ·), except ``inputs[0]`` when the points and the encoding
        are shared ((N, F)). ``parameters``: those members' weights and biases (``pass_parameters``) to compute with."""
        self.check_inputs(x)
        if not isinstance(members, slice):
            members = torch.as_tensor(list(members), dtype=torch.long, device=x.device)
        x = x[members] if x.ndim == 3 else x
        count = len(range(self.num_members)[members]) if isinstance(members, slice) else len(members)
        chosen = members if isinstance(members, slice) else tuple(members.tolist())
        activation, weight_scales, bias_scales = self._constants(x.dtype, x.device, chosen)
        h = self.encode(x, chosen)
        inputs, preacts = [h], []
        last = len(self.weights) - 1
        if parameters is None:
            parameters = [p[members] for p in self.parameters()]
        weights, biases = parameters[:last + 1], parameters[last + 1:]
        for layer in range(last + 1):
            weight = _scaled(weights[layer].to(x.dtype), weight_scales[layer])
            if biases:
                bias = _scaled(biases[layer].to(x.dtype), bias_scales[layer])[:, None, :]
                s = torch.baddbmm(bias, h.expand(count, *h.shape[-2:]), weight.transpose(1, 2))
            else:
                s = torch.matmul(h, weight.transpose(1, 2))
            if layer == last:
                return MLPTrace(inputs, preacts, s)
            h = activation(s)
            if keep:
                preacts.append(s)
                inputs.append(h)

    def forward(self, x: Tensor, members: Members = slice(None), parameters: list[Tensor] | None = None) -> Tensor:
        """(N, d) or (M, N, d) coordinates → (M, N, O), member m's output in row m; with ``members`` (a slice of the
        member axis, or a list of indices), only theirs: a pass over fewer members where a device's caches are
        small, or only the members still training. ``parameters``: see ``pass_parameters``."""
        return self._walk(x, keep=False, members=members, parameters=parameters).output

    def trace(self, x: Tensor) -> MLPTrace:
        """The batched forward with every layer's input and pre-activation kept (see ``_walk``)."""
        return self._walk(x, keep=True)

    def scaled_weight(self, layer: int, dtype: torch.dtype) -> Tensor:
        """c_w · W of ``layer`` for every member, (M, out, in), in ``dtype``."""
        _, weight_scales, _ = self._constants(dtype, self.weights[layer].device)
        return _scaled(self.weights[layer].to(dtype), weight_scales[layer])

    def member(self, m: int) -> CoordMLP:
        """Member ``m`` as a ``CoordMLP`` of its own (a copy of its current parameters, on their device)."""
        if not 0 <= m < self.num_members:
            raise ValueError(f"member {m}: this ensemble has members 0 … {self.num_members - 1}")
        net = copy.deepcopy(self._skeleton).to(self.weights[0].device)
        net.activation = copy.deepcopy(self.member_activations[m])
        net.init = self.inits[m]
        if len(self.encodings):
            net.encoding = copy.deepcopy(self.encodings[m if len(self.encodings) > 1 else 0])
        for l, linear in enumerate(net.linears):
            linear.weight = nn.Parameter(self.weights[l][m].detach().clone())
            if self.biases:
                linear.bias = nn.Parameter(self.biases[l][m].detach().clone())
            linear.weight_scale, linear.bias_scale = self.weight_scales[l][m], self.bias_scales[l][m]
            linear.init_weight_std, linear.init_bias_std = self.init_stds[m][l]
        return net

    def extra_repr(self) -> str:
        varying = ", ".join(f"{k}={[float(f'{v:.4g}') for v in vs]}" for k, vs in self.activation_settings.items())
        return (f"members={self.num_members}, widths={self.widths}, activation={type(self.activation).__name__}"
                + (f"({varying})" if varying else ""))
