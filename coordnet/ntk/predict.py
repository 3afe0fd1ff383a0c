"""What the kernel predicts: the linearised network's outputs under gradient descent on the squared error.

Around parameters θ₀ the network is f(x) ≈ f₀(x) + J₀(x)(θ − θ₀). Gradient descent with step η on
L = ½‖f(X) − Y‖² (summed over the N training points and O outputs: the ``raw`` kernel Θ = J₀ J₀ᵀ; for
L = 1/(2N)‖·‖² pass Θ/N, the ``by_n`` kernel) moves the training residual r = Y − f(X) as r_k = (I − ηΘ)^k r₀,
and any other point with it (neural-tangents' ``predict.gradient_descent_mse``, in discrete steps):

    f_k(X)  = f₀(X)  + (I − (I − ηΘ)^k) r₀
    f_k(X*) = f₀(X*) + Θ(X*, X) Θ⁻¹ (I − (I − ηΘ)^k) r₀

and under gradient flow for a time t (t = η × steps) with e^{−tΘ} in place of (I − ηΘ)^k. Both are computed on Θ's
eigenbasis Θ = V Λ Vᵀ in float64: (I − (1 − ηλ_i)^k)/λ_i per eigenvalue, so nothing is inverted. Eigenvalues at or
below the floor n·eps·λ_max that ``spectrum`` uses cannot be told from zero and are treated as zero: the training
residual keeps its part along them and the test points get none of it, which is the minimum-norm prediction
(at k → ∞, f(X*) = f₀(X*) + Θ(X*, X) Θ⁺ r₀ with the floor as the pseudo-inverse's cut-off). So a singular
kernel (a bias-free ReLU network on a pixel grid) gives finite predictions.

Adam has no closed form of this kind (its steps depend on the gradients' history elementwise), so there is none
here. Dense: the eigendecomposition of the N·O × N·O kernel.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from coordnet.ntk.empirical import empirical_ntk
from coordnet.ntk.spectrum import numerical_floor


class LinearisedGD:
    """The linearised model's predictions on the training points and on test points, for any number of steps.

    Args:
        kernel_train: Θ(X, X), (N·O, N·O) (``empirical_ntk`` mode ``full``), or (N, N) shared by every output
            (mode ``trace`` / ``mean`` of a network whose outputs share one kernel).
        targets, outputs_train: Y and f₀(X), (N, O).
        kernel_test_train: Θ(X*, X), (M·O, N·O) or (M, N) to match ``kernel_train``; None: no test points.
        outputs_test: f₀(X*), (M, O) (needed with ``kernel_test_train``).

    Raises:
        ValueError: shapes that do not match, or a kernel that is zero or has NaN or infinite entries.
    """

    def __init__(self, kernel_train: Tensor, targets: Tensor, outputs_train: Tensor,
                 kernel_test_train: Tensor | None = None, outputs_test: Tensor | None = None) -> None:
        if targets.shape != outputs_train.shape or targets.ndim != 2:
            raise ValueError(f"targets {tuple(targets.shape)} and outputs_train {tuple(outputs_train.shape)}: "
                             "expected the same (N, O) shape")
        n, outputs = targets.shape
        size = kernel_train.shape[0]
        if kernel_train.shape != (size, size) or size not in (n, n * outputs):
            raise ValueError(f"kernel_train {tuple(kernel_train.shape)}: expected ({n * outputs}, {n * outputs}) "
                             f"or ({n}, {n}) for {n} points with {outputs} outputs")
        if not torch.isfinite(kernel_train).all():
            raise ValueError("kernel_train has NaN or infinite entries")
        if not kernel_train.abs().max() > 0:
            raise ValueError("kernel_train is zero: the linearised model does not move")
        self.shared = size == n
        kernel = kernel_train.double()
        self.eigenvalues, self.vectors = torch.linalg.eigh((kernel + kernel.T) / 2)
        self.floor = numerical_floor(size, self.eigenvalues[-1].item())
        self.kept = self.eigenvalues > self.floor
        self.outputs_train = outputs_train.double()
        self.coefficients = self.vectors.T @ self._columns(targets.double() - self.outputs_train)
        self.test_map = self.outputs_test = None
        if kernel_test_train is not None:
            if outputs_test is None or outputs_test.ndim != 2 or outputs_test.shape[1] != outputs:
                raise ValueError(f"outputs_test: expected (M, {outputs}) with kernel_test_train")
            rows = outputs_test.shape[0] * (1 if self.shared else outputs)
            if kernel_test_train.shape != (rows, size):
                raise ValueError(f"kernel_test_train {tuple(kernel_test_train.shape)}: expected ({rows}, {size})")
            self.test_map = kernel_test_train.double() @ self.vectors
            self.outputs_test = outputs_test.double()

    @classmethod
    def from_model(cls, model: nn.Module, x_train: Tensor, y_train: Tensor,
                   x_test: Tensor | None = None) -> "LinearisedGD":
        """The predictor of ``model`` linearised at its current parameters: its raw ``full`` kernels and outputs."""
        with torch.no_grad():
            outputs_train = model(x_train).reshape(y_train.shape)
            outputs_test = model(x_test).reshape(x_test.shape[0], -1) if x_test is not None else None
        return cls(empirical_ntk(model, x_train), y_train, outputs_train,
                   empirical_ntk(model, x_test, x_train) if x_test is not None else None, outputs_test)

    def _columns(self, values: Tensor) -> Tensor:
        """(N, O) → the kernel's layout: (N, O) columns for a shared kernel, else one (N·O, 1) column."""
        return values if self.shared else values.reshape(-1, 1)

    def _predict(self, remaining: Tensor) -> tuple[Tensor, Tensor | None]:
        """Predictions where each eigen-direction keeps the fraction ``remaining`` of its residual."""
        removed = torch.where(self.kept, 1 - remaining, torch.zeros_like(remaining))
        train = self.outputs_train + (self.vectors @ (removed[:, None] * self.coefficients)).reshape(
            self.outputs_train.shape)
        if self.test_map is None:
            return train, None
        gain = torch.where(self.kept, removed / torch.where(self.kept, self.eigenvalues, 1.0), 0.0)
        test = self.outputs_test + (self.test_map @ (gain[:, None] * self.coefficients)).reshape(
            self.outputs_test.shape)
        return train, test

    def after_steps(self, steps: int, learning_rate: float) -> tuple[Tensor, Tensor | None]:
        """(f_k(X), f_k(X*)) after ``steps`` steps of gradient descent with step ``learning_rate``; f_k(X*) is
        None without test points.

        Raises:
            ValueError: a negative step count, or η ≥ 2/λ_max, where the linearised model diverges.
        """
        if steps < 0:
            raise ValueError(f"steps {steps}: expected a count ≥ 0")
        lambda_max = self.eigenvalues[-1].item()
        if not 0 < learning_rate < 2 / lambda_max:
            raise ValueError(f"learning rate {learning_rate:g}: expected 0 < η < 2/λ_max = {2 / lambda_max:.6g}; "
                             "beyond it gradient descent on the linearised model diverges")
        return self._predict((1 - learning_rate * self.eigenvalues.clamp_min(0)) ** steps)

    def after_time(self, time: float) -> tuple[Tensor, Tensor | None]:
        """(f(X), f(X*)) after gradient flow for ``time`` t (η × steps); ``float("inf")`` gives the limit."""
        if not time >= 0:
            raise ValueError(f"time {time}: expected t ≥ 0")
        return self._predict(torch.exp(-time * self.eigenvalues.clamp_min(0)))
