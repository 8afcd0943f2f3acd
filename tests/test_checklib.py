"""checklib's comparisons: a correct result computed another way passes; a wrong one fails with a message that
says where and by how much."""

import pytest
import torch

from autograder.checklib import default_tolerance, expect_tensor, value_difference


def weighted_sums(x: torch.Tensor, layer: torch.nn.Linear) -> torch.Tensor:
    """nn.Linear written out by hand: the same numbers, rounded in another order."""
    return (x.unsqueeze(-2) * layer.weight).sum(-1) + layer.bias


def test_float32_rounding_of_a_correct_computation_is_not_a_difference():
    torch.manual_seed(0)
    layer = torch.nn.Linear(30, 3)
    x = torch.randn(5, 30) * 2
    ours, theirs = layer(x).detach(), weighted_sums(x, layer).detach()
    assert not torch.equal(ours, theirs)  # the case this test is about: not bit for bit equal
    assert value_difference(theirs, ours, rtol=None, atol=None) == ""
    expect_tensor(theirs, ours, what="The output")


def test_a_wrong_value_is_reported_with_where_and_how_much():
    expected = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    actual = expected.clone()
    actual[1, 2] += 0.01
    message = value_difference(actual, expected, rtol=None, atol=None)
    assert message.startswith("1 of 12 values differ; first at index (1, 2): expected 6, got 6.01.")
    assert "Greatest absolute difference 0.01 " in message
    with pytest.raises(AssertionError, match="The output has the wrong values"):
        expect_tensor(actual, expected, what="The output")


@pytest.mark.parametrize(
    "dtype, relative_error, caught",
    [
        (torch.float32, 1e-7, False),  # an ulp or so
        (torch.float32, 1e-4, True),
        (torch.float64, 1e-10, False),
        (torch.float64, 1e-6, True),  # a float64 result is held to float64's precision
        (torch.float16, 5e-4, False),
    ],
)
def test_the_tolerance_follows_the_dtype(dtype, relative_error, caught):
    expected = torch.linspace(1, 2, 50, dtype=torch.float64).to(dtype)
    actual = (expected.double() * (1 + relative_error)).to(dtype)
    assert bool(value_difference(actual, expected, rtol=None, atol=None)) is caught


def test_integers_are_compared_exactly():
    expected = torch.tensor([3, 1, 4, 1, 5])
    assert value_difference(expected.clone(), expected, rtol=None, atol=None) == ""
    assert value_difference(torch.tensor([3, 1, 4, 1, 6]), expected, rtol=None, atol=None).startswith(
        "1 of 5 values differ; first at index (4,): expected 5, got 6."
    )
    assert default_tolerance(torch.int64, torch.bool) == (0.0, 0.0)


def test_the_looser_dtype_of_the_two_sets_the_tolerance():
    assert default_tolerance(torch.float64, torch.float32) == default_tolerance(torch.float32)


def test_given_tolerances_are_used_and_nan_is_never_close():
    expected = torch.ones(4)
    assert value_difference(expected + 0.05, expected, rtol=0.0, atol=0.1) == ""
    assert value_difference(expected + 0.05, expected, rtol=0.0, atol=0.01).startswith("4 of 4 values differ")
    assert value_difference(expected, expected, rtol=0.0, atol=0.0) == ""
    with_nan = expected.clone()
    with_nan[2] = float("nan")
    message = value_difference(with_nan, expected, rtol=None, atol=None)
    assert message.startswith("1 of 4 values differ; first at index (2,)")
