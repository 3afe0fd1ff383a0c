"""What coordnet measures of a fitted model: PSNR, and predictions over many points (no Lightning here)."""

from __future__ import annotations

import torch
from torch import Tensor

from coordnet.models.mlp import check_coordinates
from coordnet.ntk.empirical import find_mlp


def psnr(mse: Tensor, data_range: float = 1.0) -> Tensor:
    """Peak signal-to-noise ratio in dB, `10·log10(R²/MSE)`."""
    return 10 * torch.log10(data_range**2 / mse)


@torch.no_grad()
def predict(model: torch.nn.Module, coords: Tensor, chunk_size: int = 65536) -> Tensor:
    """`model(coords)` in chunks of rows, in eval mode, without gradients; the mode is restored.

    ``coords``: (N, d), N ≥ 1, d the model's coordinate dimension (checked when the model is a coordinate MLP).
    """
    mlp = find_mlp(model)
    if mlp is not None:
        check_coordinates("predict: coords", coords, mlp.in_features)
    was_training = model.training
    model.eval()
    out = torch.cat([model(chunk) for chunk in coords.split(chunk_size)])
    model.train(was_training)
    return out


def prediction_psnr(model: torch.nn.Module, x: Tensor, y: Tensor, data_range: float = 1.0) -> float:
    """PSNR in dB of ``predict(model, x)`` against ``y`` (N, O): the whole set at once, in eval mode."""
    return psnr(((predict(model, x) - y) ** 2).mean(), data_range).item()
