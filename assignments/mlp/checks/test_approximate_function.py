"""approximate_function(x_train, y_train) -> (y_hat, relu_acts, x): a weighted sum of slope-1 ReLUs."""

import math

import numpy as np
import pytest
import torch

from autograder.checklib import describe_inputs, expect, expect_tensor, fail

# The template builds x and relu_acts in float32 whatever the input, so values are compared at float32
# precision; slopes divide by small gaps, hence an absolute tolerance of 1e-4.
TOL = {"rtol": 1e-4, "atol": 1e-4}
NOT_SORTED_HINT = "use one ReLU per training point except the last, hinged at that point (b = -x_train[:-1])."


def tutorial_data():
    x_train = torch.linspace(0, 2 * np.pi, 10).view(-1, 1)
    return x_train, torch.sin(x_train)


def unpack(result, call):
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        fail(f"{call} should return three values (y_hat, relu_acts, x); it returned {type(result).__name__}.")
    return result


@pytest.mark.public
@pytest.mark.points(2)
def test_returns_y_hat_relu_acts_x(student):
    x_train, y_train = tutorial_data()
    y_hat, relu_acts, x = unpack(student.approximate_function(x_train, y_train), "approximate_function")
    inputs = describe_inputs(x_train=x_train, y_train=y_train)
    order_hint = "return y_hat, relu_acts, x in this order."
    for value, name, shape in ((y_hat, "y_hat", (1000,)), (relu_acts, "relu_acts", (9, 1000)), (x, "x", (1000,))):
        expect(isinstance(value, torch.Tensor), f"{name} should be a tensor.", inputs=inputs, hint=order_hint)
        expect(
            tuple(value.shape) == shape,
            f"{name} has the wrong shape--got {tuple(value.shape)}, expected {shape}.",
            inputs=inputs,
            hint=order_hint,
        )


@pytest.mark.public
@pytest.mark.points(2)
def test_tutorial_example_values(student, reference):
    x_train, y_train = tutorial_data()
    got = unpack(student.approximate_function(x_train, y_train), "approximate_function")
    expected = reference.approximate_function(x_train, y_train)
    inputs = describe_inputs(x_train=x_train, y_train=y_train)
    expect_tensor(
        got[2],
        expected[2],
        what="x",
        inputs=inputs,
        check_dtype=False,
        **TOL,
        hint="x should be 1000 points from min(x_train) to max(x_train) (torch.linspace).",
    )
    expect_tensor(got[1], expected[1], what="relu_acts", inputs=inputs, check_dtype=False, **TOL, hint=NOT_SORTED_HINT)
    expect_tensor(
        got[0],
        expected[0],
        what="y_hat",
        inputs=inputs,
        check_dtype=False,
        **TOL,
        hint="each ReLU's weight is the change of slope at its hinge: slope - prev_slope.",
    )


CASES = [
    (5, lambda x: x * torch.sin(3 * x), (0.0, 3.0)),
    (17, lambda x: torch.cos(x) - 1, (0.0, 4.0)),
    (2, lambda x: 2 * x, (-1.0, 1.0)),
]


@pytest.mark.points(3)
def test_other_sizes_and_functions(student, reference):
    for n, fn, (lo, hi) in CASES:
        x_train = torch.linspace(lo, hi, n).view(-1, 1)
        y_train = fn(x_train)
        got = unpack(student.approximate_function(x_train, y_train), "approximate_function")
        expected = reference.approximate_function(x_train, y_train)
        inputs = describe_inputs(x_train=x_train, y_train=y_train) + f" ({n} training points)"
        hint = "the number of ReLUs is x_train.shape[0] - 1; do not assume the tutorial's 10 points or sin."
        for name, g, e in zip(("y_hat", "relu_acts", "x"), got, expected, strict=True):
            expect_tensor(g, e, what=name, inputs=inputs, check_dtype=False, hint=hint, **TOL)


@pytest.mark.points(2)
def test_passes_through_training_points(student):
    x_train = torch.linspace(0, 3, 8).view(-1, 1)
    y_train = x_train * torch.sin(3 * x_train)  # y(0) = 0, so the ReLU sum can pass through every point
    y_hat, _, x = unpack(student.approximate_function(x_train, y_train), "approximate_function")
    ok = isinstance(y_hat, torch.Tensor) and isinstance(x, torch.Tensor) and y_hat.numel() == x.numel() == 1000
    expect(ok, "y_hat and x should be tensors of 1000 values each.", hint="return y_hat, relu_acts, x in this order.")
    # The ReLU sum is the piecewise-linear curve through the training points: compare on the whole grid.
    grid = x.reshape(-1).double().numpy()
    through_points = np.interp(grid, x_train.view(-1).double().numpy(), y_train.view(-1).double().numpy())
    worst = float(np.abs(y_hat.reshape(-1).double().numpy() - through_points).max())
    expect(
        worst < 1e-3,
        "y_hat does not pass through the training points.",
        inputs=describe_inputs(x_train=x_train, y_train=y_train),
        details=f"Greatest distance from the line through the training points: {worst:.4g} (up to 1e-3 allowed).",
        hint="the weights must make the slope between x_train[i] and x_train[i+1] equal the data's slope.",
    )


@pytest.mark.points(1)
def test_float64_input(student, reference):
    x_train = torch.linspace(0, math.pi, 6, dtype=torch.float64).view(-1, 1)
    y_train = torch.sin(x_train)
    got = unpack(student.approximate_function(x_train, y_train), "approximate_function")
    expected = reference.approximate_function(x_train, y_train)
    expect_tensor(
        got[0],
        expected[0],
        what="y_hat",
        inputs=describe_inputs(x_train=x_train, y_train=y_train),
        check_dtype=False,
        **TOL,
    )
