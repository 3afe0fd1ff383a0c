"""An activation coordnet does not ship, registered the way docs/extending.md shows: one class, one line."""

import torch

from coordnet.models import Activation, register_activation


class Throwaway(Activation):
    """φ(x) = tanh(x) + x/4, φ′(x) = 1 − tanh²(x) + 1/4: smooth, with no closed-form dual (quadrature serves)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x) + 0.25 * x

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return 1 - torch.tanh(x) ** 2 + 0.25


register_activation("throwaway", Throwaway)
