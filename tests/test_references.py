"""The reference solutions reproduce what the tutorials print and the properties they state."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from reference_solutions import decoding, mlp, spiking

DTYPES = [torch.float32, torch.float64]


def test_cross_entropy_matches_tutorial_example():
    labels = torch.tensor([0, 1])
    x = torch.tensor([[10.0, 1.0, -1.0, -20.0], [10.0, 10.0, 2.0, -10.0]])
    ours = mlp.cross_entropy_loss(x, labels).item()
    assert ours == pytest.approx(0.3467274, abs=1e-6)
    assert ours == pytest.approx(nn.CrossEntropyLoss()(x, labels).item(), abs=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_matches_torch_on_random_batches(dtype):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(37, 6, generator=gen, dtype=dtype) * 5
    labels = torch.randint(0, 6, (37,), generator=gen)
    torch.testing.assert_close(mlp.cross_entropy_loss(x, labels), nn.functional.cross_entropy(x, labels))


def test_net_maps_tutorial_input_to_one_output():
    net = mlp.Net(actv="LeakyReLU(0.1)", input_feature_num=2, hidden_unit_nums=[100, 10, 5], output_feature_num=1)
    assert net(torch.zeros((100, 2))).shape == (100, 1)
    activations = [m for m in net.mlp if isinstance(m, nn.LeakyReLU)]
    assert len(activations) == 3 and all(a.negative_slope == 0.1 for a in activations)


def test_net_without_hidden_layers_is_one_linear_layer_and_flattens_images():
    net = mlp.Net("ReLU()", 3 * 4 * 4, [], 7)
    assert [type(m) for m in net.mlp] == [nn.Linear]
    assert net(torch.randn(5, 3, 4, 4)).shape == (5, 7)


def test_shuffle_and_split_sizes_and_seed():
    X = torch.randn(4000, 2)
    y = torch.arange(4000)
    X_test, y_test, X_train, y_train = mlp.shuffle_and_split_data(X, y, seed=2021)
    assert (len(X_test), len(y_test), len(X_train), len(y_train)) == (800, 800, 3200, 3200)
    torch.manual_seed(2021)
    perm = torch.randperm(4000)
    assert torch.equal(y_test, perm[:800]) and torch.equal(y_train, perm[800:])
    torch.testing.assert_close(X_test, X[perm[:800]])


def test_approximate_function_interpolates_the_training_points():
    x_train = torch.linspace(0, 2 * np.pi, 10).view(-1, 1)
    y_train = torch.sin(x_train)
    y_hat, relu_acts, x = mlp.approximate_function(x_train, y_train)
    assert y_hat.shape == (1000,) and relu_acts.shape == (9, 1000) and x.shape == (1000,)
    # Piecewise linear through every training point: interpolating y_hat at x_train gives y_train back.
    at_train = np.interp(x_train.view(-1).numpy(), x.numpy(), y_hat.numpy())
    np.testing.assert_allclose(at_train, y_train.view(-1).numpy(), atol=1e-4)
    # Every basis function is a slope-1 ReLU hinged at a training point.
    assert torch.allclose(relu_acts[:, -1] - relu_acts[:, -2], (x[-1] - x[-2]).expand(9), atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_lif_rate_limits_and_monotonicity(dtype):
    x = torch.linspace(-50, 50, 10001, dtype=dtype)
    rate = spiking.lif(x)
    assert rate.dtype == dtype and torch.isfinite(rate).all()
    assert rate[x < -5].max() < 0.01 * (1 / spiking.TAU_REF)  # ~0 far below threshold
    assert (rate.diff() >= 0).all()  # monotone
    assert rate.max() <= 1 / spiking.TAU_REF
    assert spiking.lif(torch.tensor([1e6], dtype=dtype)).item() == pytest.approx(1 / spiking.TAU_REF, rel=1e-3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_lif_gradients_finite_everywhere(dtype):
    x = torch.linspace(-1000, 1000, 200001, dtype=dtype, requires_grad=True)
    spiking.lif(x).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert (x.grad >= 0).all()


def test_lif_matches_analytic_rate_well_above_threshold():
    current = torch.linspace(3, 50, 100, dtype=torch.float64)
    analytic = 1 / (spiking.TAU_REF - spiking.TAU_M * torch.log(1 - spiking.V_THR / current))
    torch.testing.assert_close(spiking.lif(current), analytic, rtol=1e-4, atol=0)


def test_lif_matches_the_tutorial_formula_where_it_does_not_overflow():
    x = torch.linspace(-3, 10, 500, dtype=torch.float64)
    gamma = 0.15
    rho = gamma * torch.log(1 + torch.exp((x - 1) / gamma)) + 1e-20
    naive = torch.pow(0.004 + 0.02 * torch.log(1 + torch.div(1, rho)), -1)
    # The naive log(1 + exp(z)) loses digits for negative z (1 + tiny rounds), so only rtol=1e-4 holds.
    torch.testing.assert_close(spiking.lif(x), naive, rtol=1e-4, atol=0)
    assert torch.equal(spiking.LIF()(x), spiking.lif(x))


def test_lifnet_output_shape_and_lif_after_first_conv_only():
    net = spiking.LIFNet()
    assert net(torch.randn(4, 1, 28, 28)).shape == (4, 10)
    assert isinstance(net.conv_stack1[1], spiking.LIF)
    placed = [n for n, m in net.named_modules(remove_duplicate=False) if isinstance(m, spiking.LIF) and n != "lif"]
    assert placed == ["conv_stack1.1"]


def test_deepnetrelu_applies_relu_on_hidden_layer_only():
    net = decoding.DeepNetReLU(5, 3)
    r = torch.randn(8, 5)
    expected = net.out_layer(torch.relu(net.in_layer(r)))
    torch.testing.assert_close(net(r), expected)
    assert net(r).shape == (8, 1)


def _toy_regression(seed=0):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(64, 5, generator=gen)
    y = X @ torch.randn(5, 1, generator=gen)
    return X, y


def test_train_decreases_the_loss_and_returns_curves():
    torch.manual_seed(0)
    X, y = _toy_regression()
    net = decoding.DeepNetReLU(5, 16)
    before = [p.detach().clone() for p in net.parameters()]
    train_loss = decoding.train(net, nn.MSELoss(), X, y, n_iter=30, learning_rate=1e-2)
    assert isinstance(train_loss, list) and len(train_loss) == 30
    assert train_loss[-1] < train_loss[0]
    assert any(not torch.equal(b, p) for b, p in zip(before, net.parameters(), strict=True))
    train_loss, test_loss = decoding.train(net, nn.MSELoss(), X, y, n_iter=5, test_data=X[:8], test_labels=y[:8])
    assert len(train_loss) == len(test_loss) == 5


def test_train_with_regularized_loss_passes_in_layer_weight_and_penalties():
    seen = []

    def loss_fn(out, target, weights, L2, L1):
        seen.append((weights is net.in_layer.weight, L2, L1))
        return nn.functional.mse_loss(out, target) + L2 * weights.square().sum()

    X, y = _toy_regression(1)
    net = decoding.DeepNetReLU(5, 4)
    decoding.train(net, loss_fn, X, y, n_iter=3, L2_penalty=0.5, L1_penalty=0.1)
    assert seen == [(True, 0.5, 0.1)] * 3


def test_regularized_loss_adds_l2_and_l1_penalties():
    gen = torch.Generator().manual_seed(3)
    output = torch.log_softmax(torch.randn(10, 4, generator=gen), dim=1)
    target = torch.randint(0, 4, (10,), generator=gen)
    weights = torch.randn(6, 3, generator=gen)
    base = nn.NLLLoss()(output, target)
    got = decoding.regularized_loss(output, target, weights, L2_penalty=1e-2, L1_penalty=5e-4)
    expected = base + 1e-2 * (weights**2).sum() + 5e-4 * weights.abs().sum()
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(decoding.regularized_loss(output, target, weights), base)
    assert math.isfinite(got.item())
