"""``CoordMLP``: a coordinate MLP whose layers the NTK engine can read directly.

    f(x) = W_L φ(… φ(W_1 γ(x) + b_1) …) + b_L,   γ an optional fixed encoding.

Each layer is a ``ScaledLinear`` computing `s = c_w · W h + c_b · b`. Under the standard
parametrisation `c_w = c_b = 1` and W is drawn with the init's variance; under the NTK
parametrisation W, b ~ N(0, 1) and `c_w = σ_w/√fan_in`, `c_b = σ_b` carry the scale
(Jacot et al. 2018). The function at init has the same distribution either way; the gradients,
and so the NTK, differ by the factors c_w² and c_b².

Initialisations (β² is the weight variance times fan_in):

- ``auto`` (the default): the activation's own ``default_init``, the one its source pairs it with
  (sine → ``siren``, cos and ReLU → ``he``, the (a, b) family → ``eoc``; see each activation's docstring).

- ``he``: W ~ N(0, 2/fan_in) (He et al. 2015; paper 1 uses it for cos and ReLU, without biases).
- ``standard``: W ~ N(0, β²/fan_in) with β² = ``weight_var``.
- ``eoc``: β² = 1/(a² + b²) for φ(x) = a·x + b·|x| (Edge of Chaos, arXiv 2501.13225 Def. 3).
- ``siren``: first layer U(±1/fan_in), later layers U(±√(6/fan_in)/ω0), biases U(±1/√fan_in)
  (Sitzmann et al. 2020, as in their code).

``first_layer_fan_in=False`` drops the 1/fan_in of the first layer's variance, as paper 2's
first layer N_1 = A_1 x with A_1 ~ N(0, σ²) does.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from coordnet.models.activations import Activation, Cos, get_activation
from coordnet.models.encodings import Encoding

Init = Literal["auto", "he", "standard", "eoc", "siren"]
INITS = ("auto", "he", "standard", "eoc", "siren")
Parametrization = Literal["standard", "ntk"]


class ScaledLinear(nn.Module):
    """`s = c_w · h Wᵀ + c_b · b` for h of shape (N, in_features); returns (N, out_features).

    ``init_weight_std``/``init_bias_std``: the std the entries of W and b were drawn with (set by
    ``CoordMLP``), so that c_w·init_weight_std is the effective weight std the analytic NTK reads.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool, weight_scale: float = 1.0,
                 bias_scale: float = 1.0) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.weight_scale, self.bias_scale = float(weight_scale), float(bias_scale)
        self.init_weight_std = self.init_bias_std = 1.0

    def scaled_weight(self, dtype: torch.dtype | None = None) -> Tensor:
        """c_w · W (out_features, in_features), in ``dtype`` (the parameter's own when None)."""
        weight = self.weight if dtype is None else self.weight.to(dtype)
        return weight if self.weight_scale == 1.0 else weight * self.weight_scale

    def forward(self, h: Tensor) -> Tensor:
        """Computed in h's dtype, so a float64 h gives the float64 layer of float32 parameters."""
        bias = None if self.bias is None else self.bias.to(h.dtype)
        bias = bias if bias is None or self.bias_scale == 1.0 else bias * self.bias_scale
        return F.linear(h, self.scaled_weight(h.dtype), bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, weight_scale={self.weight_scale:g}, bias_scale={self.bias_scale:g}")


@dataclass
class MLPTrace:
    """Intermediate values of one forward pass of ``CoordMLP`` on N points.

    ``inputs[l]`` is H_l, the input of linear layer l (``inputs[0]`` is the encoded coordinates),
    shape (N, fan_in_l); ``preacts[l]`` is S_{l+1} = layer_l(H_l) for the hidden layers, shape
    (N, width_l), so H_{l+1} = φ(S_{l+1}); ``output`` is (N, out_features).
    """

    inputs: list[Tensor]
    preacts: list[Tensor]
    output: Tensor


def physical_memory() -> int:
    """Bytes of memory this machine has (its RAM, not what is free)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_coordinates(name: str, x: Tensor, in_features: int) -> None:
    """Raise a ValueError naming ``name`` unless ``x`` has shape (N, in_features) with N ≥ 1."""
    if not isinstance(x, Tensor) or x.ndim != 2 or x.shape[1] != in_features or x.shape[0] == 0:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name}: expected coordinates of shape (N, {in_features}) with N ≥ 1, got {shape}")


def _check_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"CoordMLP: {name} must be a positive integer, got {value!r}")
    return value


class CoordMLP(nn.Module):
    """Coordinate MLP `in_features → hidden… → out_features` with one activation in every hidden layer.

    Args:
        in_features: coordinate dimension d (2 for images, 1 for signals).
        out_features: channels O of the signal (1 grey, 3 RGB).
        hidden: width of every hidden layer (with ``depth``), or the list of widths.
        depth: number of hidden layers when ``hidden`` is an int.
        activation: an ``Activation`` or its name (``"sine"``, ``"cos"``, ``"relu"``, ``"abs"``, …).
        init: ``"auto"`` (the activation's ``default_init``), ``"he"``, ``"standard"``, ``"eoc"`` or
            ``"siren"`` (see the module docstring). ``self.init`` holds the one used.
        parametrization: ``"standard"`` or ``"ntk"``.
        bias: whether layers have biases.
        encoding: a fixed input encoding whose ``in_features`` equals ``in_features``.
        weight_var: β² for ``init="standard"``.
        bias_std: std of the biases at init for he/standard/eoc (0 gives zero biases); under the
            NTK parametrisation it is the bias multiplier c_b and must be > 0.
        first_layer_fan_in: divide the first layer's variance by its fan-in (False: paper 2).
    """

    def __init__(
        self,
        in_features: int = 2,
        out_features: int = 1,
        hidden: int | Sequence[int] = 256,
        depth: int = 3,
        activation: Activation | str = "sine",
        init: Init = "auto",
        parametrization: Parametrization = "standard",
        bias: bool = True,
        encoding: Encoding | None = None,
        weight_var: float = 1.0,
        bias_std: float = 0.0,
        first_layer_fan_in: bool = True,
    ) -> None:
        super().__init__()
        widths = _check_shape(in_features, out_features, hidden, depth)
        self.activation = get_activation(activation)
        self.init = _resolve_init(init, self.activation)
        if parametrization not in ("standard", "ntk"):
            raise ValueError(f"CoordMLP: unknown parametrization {parametrization!r}; expected standard or ntk")
        if not math.isfinite(weight_var) or weight_var <= 0:
            raise ValueError(f"CoordMLP: weight_var must be > 0, got {weight_var!r}")
        if not math.isfinite(bias_std) or bias_std < 0:
            raise ValueError(f"CoordMLP: bias_std must be >= 0, got {bias_std!r}")
        if bias and parametrization == "ntk" and bias_std == 0 and self.init != "siren":
            raise ValueError("CoordMLP: the NTK parametrisation with bias needs bias_std > 0 (the bias multiplier)")
        if encoding is not None and encoding.in_features != in_features:
            raise ValueError(
                f"CoordMLP: encoding expects {encoding.in_features}-d coordinates but in_features={in_features}"
            )
        fans = [encoding.out_features if encoding is not None else in_features] + widths
        outs = widths + [out_features]
        _check_memory(widths, sum((fan_in + bias) * fan_out for fan_in, fan_out in zip(fans, outs)))
        self.encoding = encoding
        self.parametrization = parametrization
        self.widths = widths
        self.linears = nn.ModuleList()
        for layer, (fan_in, fan_out) in enumerate(zip(fans, outs)):
            w_std, b_std, uniform = self._init_stds(layer, fan_in, weight_var, bias_std, first_layer_fan_in)
            self.linears.append(_initialised_linear(fan_in, fan_out, bias, parametrization, w_std, b_std, uniform))

    def _init_stds(self, layer: int, fan_in: int, weight_var: float, bias_std: float,
                   first_layer_fan_in: bool) -> tuple[float, float, bool]:
        """(weight std, bias std, uniform?) of layer ``layer`` under this model's init."""
        if self.init == "siren":
            # U(±c) has std c/√3; the uniform flag makes the standard parametrisation draw U(±√3·std).
            bound = 1.0 / fan_in if layer == 0 else math.sqrt(6.0 / fan_in) / self.activation.s
            return bound / math.sqrt(3), 1.0 / math.sqrt(3 * fan_in), True
        beta2 = {"he": 2.0, "standard": weight_var, "eoc": None}[self.init]
        if beta2 is None:
            beta2 = self.activation.eoc_variance()
        fan = fan_in if (layer > 0 or first_layer_fan_in) else 1
        return math.sqrt(beta2 / fan), bias_std, False

    @property
    def in_features(self) -> int:
        return self.encoding.in_features if self.encoding is not None else self.linears[0].in_features

    @property
    def out_features(self) -> int:
        return self.linears[-1].out_features

    def encode(self, x: Tensor) -> Tensor:
        """γ(x), the first linear layer's input (x itself without an encoding), in x's dtype."""
        return self.encoding(x) if self.encoding is not None else x

    def _walk(self, x: Tensor, keep: bool) -> MLPTrace:
        """The one forward pass every reader uses, in x's dtype; ``keep``: keep each layer's input and
        pre-activation (``trace``), else only the output (``forward``)."""
        check_coordinates("CoordMLP input", x, self.in_features)
        h = self.encode(x)
        inputs, preacts = [h], []
        for linear in self.linears[:-1]:
            s = linear(h)
            h = self.activation(s)
            if keep:
                preacts.append(s)
                inputs.append(h)
        return MLPTrace(inputs, preacts, self.linears[-1](h))

    def forward(self, x: Tensor) -> Tensor:
        """(N, in_features) coordinates → (N, out_features) signal values."""
        return self._walk(x, keep=False).output

    def trace(self, x: Tensor) -> MLPTrace:
        """The forward pass with every layer's input and pre-activation kept (see ``MLPTrace``), computed in
        x's dtype: a float64 ``x`` gives float64 values from float32 weights (the NTK engine's factors)."""
        return self._walk(x, keep=True)


def _check_shape(in_features: int, out_features: int, hidden: int | Sequence[int], depth: int) -> list[int]:
    """The hidden widths, after checking that every size is a positive integer."""
    _check_int("in_features", in_features)
    _check_int("out_features", out_features)
    if isinstance(hidden, int):
        return [_check_int("hidden width", hidden)] * _check_int("depth", depth)
    widths = [_check_int("hidden width", w) for w in hidden]
    if not widths:
        raise ValueError("CoordMLP: hidden must name at least one hidden width, got []")
    return widths


def _resolve_init(init: str, activation: Activation) -> str:
    """``init``, or the activation's ``default_init`` for ``"auto"``, checked against the activation."""
    if init not in INITS:
        raise ValueError(f"CoordMLP: unknown init {init!r}; expected one of {', '.join(INITS)}")
    resolved = activation.default_init if init == "auto" else init
    if resolved == "siren" and not isinstance(activation, Cos):
        raise ValueError(f"CoordMLP: init='siren' needs a sine or cos activation, got {activation!r}")
    return resolved


def _check_memory(widths: list[int], parameters: int) -> None:
    size = parameters * torch.empty(0).element_size()
    if size > physical_memory():
        raise ValueError(f"CoordMLP: hidden widths {widths} make {parameters:.3g} parameters, {size / 2**30:.1f} GiB, "
                         f"more than this machine's {physical_memory() / 2**30:.1f} GiB of memory")


def _initialised_linear(fan_in: int, fan_out: int, bias: bool, parametrization: str, w_std: float, b_std: float,
                        uniform: bool) -> ScaledLinear:
    """A ``ScaledLinear`` drawn for the init: N(0, 1) entries scaled by (w_std, b_std) under the NTK
    parametrisation, else entries drawn with those stds (uniform U(±√3·std) when ``uniform``)."""
    if parametrization == "ntk":
        linear = ScaledLinear(fan_in, fan_out, bias, weight_scale=w_std, bias_scale=b_std)
        nn.init.normal_(linear.weight)
        if bias:
            nn.init.normal_(linear.bias)
        return linear
    linear = ScaledLinear(fan_in, fan_out, bias)
    linear.init_weight_std, linear.init_bias_std = w_std, b_std
    for tensor, std in ((linear.weight, w_std), (linear.bias, b_std)):
        if tensor is not None:
            if uniform:
                nn.init.uniform_(tensor, -std * math.sqrt(3), std * math.sqrt(3))
            else:
                nn.init.normal_(tensor, 0.0, std)
    return linear
