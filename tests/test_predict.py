"""The linearised network's predictions under gradient descent (coordnet.ntk.predict)."""

import pytest
import torch

from coordnet.data.images import pixel_grid
from coordnet.models import CoordMLP
from coordnet.ntk import empirical_ntk
from coordnet.ntk.predict import LinearisedGD


def problem(seed=0, n=20, m=7, outputs=2):
    """A well-conditioned PSD kernel over n train and m test points (with outputs folded in), targets, outputs."""
    g = torch.Generator().manual_seed(seed)
    features = torch.randn((n + m) * outputs, 3 * (n + m) * outputs, generator=g, dtype=torch.float64)
    kernel = features @ features.T / features.shape[1]
    y, f0 = (torch.randn(n, outputs, generator=g, dtype=torch.float64) for _ in range(2))
    f0_test = torch.randn(m, outputs, generator=g, dtype=torch.float64)
    k = n * outputs
    return kernel[:k, :k], kernel[k:, :k], y, f0, f0_test


def test_steps_and_flow_equal_the_formula_with_matrix_powers_and_expm():
    k_train, k_test, y, f0, f0_test = problem()
    predictor = LinearisedGD(k_train, y, f0, k_test, f0_test)
    eta, steps = 0.9 / torch.linalg.eigvalsh(k_train)[-1].item(), 37
    residual = (y - f0).reshape(-1)
    eye = torch.eye(k_train.shape[0], dtype=torch.float64)
    for remaining, got in ((torch.linalg.matrix_power(eye - eta * k_train, steps), predictor.after_steps(steps, eta)),
                           (torch.linalg.matrix_exp(-2.5 * k_train), predictor.after_time(2.5))):
        moved = (eye - remaining) @ residual
        train = f0.reshape(-1) + moved
        test = f0_test.reshape(-1) + k_test @ torch.linalg.solve(k_train, moved)
        torch.testing.assert_close(got[0].reshape(-1), train, rtol=0, atol=1e-10)
        torch.testing.assert_close(got[1].reshape(-1), test, rtol=0, atol=1e-10)
    # no steps, no change; infinitely long, the training points are fitted exactly
    torch.testing.assert_close(predictor.after_steps(0, eta)[0], f0)
    torch.testing.assert_close(predictor.after_time(float("inf"))[0], y, rtol=0, atol=1e-10)


def test_a_kernel_shared_by_the_outputs_equals_its_block_diagonal_full_kernel():
    k_train, k_test, y, f0, f0_test = problem(outputs=1, n=12, m=5)
    y3, f03, f0_test3 = (torch.cat([t, 2 * t, -t], dim=1) for t in (y, f0, f0_test))
    shared = LinearisedGD(k_train, y3, f03, k_test, f0_test3).after_steps(9, 0.5 / k_train.diagonal().sum().item())
    eye = torch.eye(3, dtype=torch.float64)
    full = LinearisedGD(torch.kron(k_train, eye), y3, f03, torch.kron(k_test, eye), f0_test3)
    for a, b in zip(shared, full.after_steps(9, 0.5 / k_train.diagonal().sum().item())):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_the_singular_relu_kernel_of_a_pixel_grid_gives_finite_minimum_norm_predictions():
    torch.manual_seed(0)
    net = CoordMLP(2, 1, [32, 32], activation="relu", init="he", bias=False)
    grid = pixel_grid(16, 16).reshape(-1, 2)
    x_train, x_test = grid[::2], grid[1::2]
    y = torch.sin(4 * x_train[:, :1]) * torch.cos(3 * x_train[:, 1:])
    predictor = LinearisedGD.from_model(net, x_train, y, x_test)
    assert (~predictor.kept).sum() > 0  # singular to float64: some eigenvalues sit at the floor
    k_train = empirical_ntk(net, x_train)
    k_test = empirical_ntk(net, x_test, x_train)
    with torch.no_grad():
        f0, f0_test = net(x_train).double(), net(x_test).double()
    eta = 1 / predictor.eigenvalues[-1].item()
    for train, test in (predictor.after_steps(100_000, eta), predictor.after_time(1e300), predictor.after_time(float("inf"))):
        assert torch.isfinite(train).all() and torch.isfinite(test).all()
    train, test = predictor.after_time(float("inf"))
    pinv = torch.linalg.pinv(k_train, rtol=k_train.shape[0] * torch.finfo(torch.float64).eps, hermitian=True)
    residual = y.double() - f0
    # the minimum-norm least-squares solution: f₀ + Θ Θ⁺ r₀ on the train points, f₀ + Θ(X*, X) Θ⁺ r₀ on the test
    torch.testing.assert_close(train, f0 + k_train @ pinv @ residual, rtol=0, atol=1e-8 * residual.abs().max())
    torch.testing.assert_close(test, f0_test + k_test @ pinv @ residual, rtol=0, atol=1e-8 * residual.abs().max())


def test_bad_inputs_say_what_was_expected():
    k_train, k_test, y, f0, f0_test = problem()
    with pytest.raises(ValueError, match="kernel_train .*: expected"):
        LinearisedGD(k_train[:5, :5], y, f0)
    with pytest.raises(ValueError, match="NaN or infinite"):
        LinearisedGD(k_train * float("nan"), y, f0)
    with pytest.raises(ValueError, match="kernel_test_train .*: expected"):
        LinearisedGD(k_train, y, f0, k_test[:, :3], f0_test)
    predictor = LinearisedGD(k_train, y, f0, k_test, f0_test)
    with pytest.raises(ValueError, match="diverges"):
        predictor.after_steps(10, 2.5 / torch.linalg.eigvalsh(k_train)[-1].item())
    with pytest.raises(ValueError, match="expected t ≥ 0"):
        predictor.after_time(-1.0)


def test_kernel_eigenfunctions_equal_the_dense_eigenvectors_and_their_energy():
    from coordnet.ntk.eigenfunctions import kernel_eigenfunctions

    torch.manual_seed(1)
    net = CoordMLP(2, 2, [24, 24], activation="sine", init="siren")
    x = pixel_grid(12, 12)
    y = torch.stack([x[:, 0] ** 2, torch.sin(3 * x[:, 1])], dim=1)
    found = kernel_eigenfunctions(net, x, k=6, targets=y, tol=1e-12)
    values, vectors = torch.linalg.eigh(empirical_ntk(net, x))
    torch.testing.assert_close(found.eigenvalues, values.flip(0)[:6], rtol=1e-9, atol=0)
    overlaps = (found.vectors.T @ vectors.flip(1)[:, :6]).abs().diagonal()
    torch.testing.assert_close(overlaps, torch.ones(6, dtype=torch.float64), rtol=0, atol=1e-8)
    assert (found.vectors.gather(0, found.vectors.abs().argmax(0, keepdim=True)) > 0).all()  # signs fixed
    centred = (y.double() - y.double().mean(0)).reshape(-1)
    dense = ((vectors.flip(1)[:, :6].T @ centred) ** 2).sum() / (centred @ centred)
    assert found.energy_fraction == pytest.approx(dense.item(), rel=1e-8)
