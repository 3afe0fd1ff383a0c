"""Random memorisation sets: N inputs with seeded random targets y ~ N(0, 1).

Inputs (``inputs``):
- ``gaussian``: x ~ N(0, I_d), so ‖x‖² ≈ d (paper 1's protocol with d = 400);
- ``sphere``: uniform on the unit sphere S^{d−1} (paper 2's protocol);
- ``grid``: a √N × √N pixel grid in [−1, 1]² (d = 2; N must be a perfect square).

Training and evaluation use every point (protocol ``memorize``).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from coordnet.data.base import CoordDataModule
from coordnet.data.images import pixel_grid


class MemorizationDataModule(CoordDataModule):
    """N points with random targets.

    Args:
        num_points: N.
        in_features: input dimension d (2 for ``grid``).
        inputs: ``gaussian``, ``sphere`` or ``grid``.
        out_features: target channels O.
        batch_size: points per step, or None for full-batch training.
        seed: seed of the inputs, the targets and the random batches.
    """

    def __init__(self, num_points: int = 256, in_features: int = 2, inputs: Literal["gaussian", "sphere", "grid"] =
                 "gaussian", out_features: int = 1, batch_size: int | None = None, seed: int = 0) -> None:
        super().__init__("memorize", batch_size, seed)
        for name, value in (("num_points", num_points), ("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if inputs not in ("gaussian", "sphere", "grid"):
            raise ValueError(f"inputs must be 'gaussian', 'sphere' or 'grid', got {inputs!r}")
        if inputs == "grid" and (in_features != 2 or math.isqrt(num_points) ** 2 != num_points):
            raise ValueError(f"inputs='grid' needs in_features=2 and a square num_points, got "
                             f"in_features={in_features}, num_points={num_points}")
        self.num_points, self.inputs = num_points, inputs
        self.in_features, self.out_features = in_features, out_features
        self.data_range = 1.0

    def _build(self) -> tuple[Tensor, Tensor, Tensor, None]:
        generator = torch.Generator().manual_seed(self.seed)
        n, d = self.num_points, self.in_features
        if self.inputs == "grid":
            x = pixel_grid(math.isqrt(n), math.isqrt(n))
        else:
            x = torch.randn(n, d, generator=generator)
            if self.inputs == "sphere":
                x = x / x.norm(dim=1, keepdim=True)
        y = torch.randn(n, self.out_features, generator=generator)
        return x, y, torch.arange(n), None

    @property
    def train_grid_shape(self) -> tuple[int, int] | None:
        side = math.isqrt(self.num_points)
        return (side, side) if self.inputs == "grid" else None

    def log_reconstruction(self, writer, prediction: Tensor, step: int) -> None:
        """Logs `reconstruction` as a scatter of prediction against target."""
        from matplotlib.figure import Figure

        target, pred = self.values.cpu().flatten().numpy(), prediction.detach().cpu().flatten().numpy()
        fig = Figure(figsize=(4, 4))
        ax = fig.subplots()
        ax.scatter(target, pred, s=4, alpha=0.6)
        lim = [min(target.min(), pred.min()), max(target.max(), pred.max())]
        ax.plot(lim, lim, color="k", lw=0.8)
        ax.set(xlabel="target", ylabel="prediction", title=f"step {step}")
        fig.tight_layout()
        writer.add_figure("reconstruction", fig, step)
