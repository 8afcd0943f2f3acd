"""lif(x) = 1 / (tau_ref + tau_m * log(1 + V_thr / rho(x - V_thr))), rho(z) = gamma*log(1 + exp(z/gamma)) + 1e-20,
with tau_m = 0.02, tau_ref = 0.004, V_thr = 1, gamma = 0.15; and LIF, its nn.Module wrapper.

Graded: what Task 1 asks, on the inputs a first convolution over FashionMNIST produces (a few units either side of
the threshold): the formula's values in float64 and float32, its gradient, the rate's properties, the module. The
tutorial's own solution, the direct formula with the 1e-20 it suggests, gets every point. Advisory (reported,
worth no points): robustness beyond the task, where that direct formula fails: exp(z / gamma) overflowing float32
above x = 14, and gradients that the suggested 1e-20 turns infinite below threshold (V_thr / rho**2 overflows
float32 once rho sits at 1e-20, from x = -1.4 down).
"""

import pytest
import torch

from autograder.checklib import describe_inputs, expect, expect_tensor

MAX_RATE = 1 / 0.004  # 1 / tau_ref: rates are in Hz, from about 1 to 250
# Rates are compared with absolute tolerances in Hz, which mean the same everywhere on the 250 Hz scale. In float64
# the direct formula's 1 + exp(z / gamma) rounds to 1 once exp(z / gamma) < 1.1e-16 (x below about -4.5), so its rho
# drops to the 1e-20 floor early and its rate to 1.08 Hz where the exact value is up to 1.29 Hz: 0.21 Hz apart.
# 0.5 Hz accepts that; every formula mistake we know of (plain softplus, a missing tau_ref or threshold, a hard
# maximum, tau_m off by ten) is off by 15 Hz or more between x = -2 and 6, and even gamma = 0.1 by 3 Hz.
RATE_ATOL = 0.5
# In float32 the same rounding starts at exp(z / gamma) < 6e-8 (x below about -1.5): up to 1.6 Hz apart.
RATE_ATOL_FLOAT32 = 2.0
FORMULA_HINT = (
    "rate = 1 / (tau_ref + tau_m * log(1 + V_thr / rho(x - V_thr))) with rho(z) = gamma * log(1 + exp(z / gamma)) "
    "+ 1e-20 and tau_m = 0.02, tau_ref = 0.004, V_thr = 1, gamma = 0.15."
)
OVERFLOW_HINT = (
    "exp(z / gamma) overflows for large z; torch.nn.functional.softplus(z, beta=1/gamma) computes "
    "gamma * log(1 + exp(z / gamma)) without overflowing."
)


def lif_hint(got, x):
    """Name the common near-miss the student's values match, if any (compared on the CPU, wherever they were)."""
    x = x.cpu()
    got = got.cpu() if isinstance(got, torch.Tensor) else got
    z = (x - 1).double()
    variants = {
        "the refractory term tau_ref is missing from the denominator.": 1
        / (0.02 * torch.log1p(1 / (0.15 * torch.nn.functional.softplus(z / 0.15) + 1e-20))),
        "rho is smoothed with gamma = 0.15: gamma * log(1 + exp(z / gamma)), not a plain softplus.": 1
        / (0.004 + 0.02 * torch.log1p(1 / (torch.nn.functional.softplus(z) + 1e-20))),
        "rho takes x - V_thr, not x.": 1
        / (0.004 + 0.02 * torch.log1p(1 / (0.15 * torch.nn.functional.softplus(x.double() / 0.15) + 1e-20))),
    }
    for hint, value in variants.items():
        if (
            isinstance(got, torch.Tensor)
            and got.shape == value.shape
            and torch.allclose(got.double(), value, rtol=1e-3)
        ):
            return hint
    return FORMULA_HINT


@pytest.mark.public
@pytest.mark.points(12)
def test_lif_matches_the_formula(student, reference):
    x = torch.linspace(-2, 6, 161, dtype=torch.float64)
    got = student.lif(x)
    expect_tensor(
        got,
        reference.lif(x),
        what="lif(x)",
        inputs=describe_inputs(x=x) + " from -2 to 6",
        rtol=0.0,
        atol=RATE_ATOL,
        check_dtype=False,
        hint=lif_hint(got, x),
    )


@pytest.mark.points(8)
def test_lif_float32_values(student, reference, gen, seed, device):
    x = torch.cat([torch.linspace(-3, 10, 131), torch.rand(50, generator=gen) * 13 - 3]).to(device)
    got = student.lif(x)
    expect_tensor(
        got,
        reference.lif(x.double()).float(),
        what="lif(x) for float32 x",
        inputs=describe_inputs(seed, x=x),
        rtol=0.0,
        atol=RATE_ATOL_FLOAT32,
        hint=lif_hint(got, x),
    )


@pytest.mark.advisory
def test_lif_large_inputs_stay_finite(student, reference):
    # Beyond the task: a first convolution over [0, 1] images gives inputs of a few units, and the direct formula
    # is right up to x = 14, where exp(z / gamma) overflows float32 and the rate jumps to 250 Hz.
    x = torch.tensor([14.0, 20.0, 50.0, 100.0, 1000.0])
    got = student.lif(x)
    expect(
        isinstance(got, torch.Tensor) and bool(torch.isfinite(got).all()),
        "lif(x) is not finite for large inputs.",
        inputs=f"x = {x.tolist()} (float32)",
        details=f"Got {got.tolist() if isinstance(got, torch.Tensor) else got}.",
        hint=OVERFLOW_HINT,
    )
    expect_tensor(
        got,
        reference.lif(x),
        what="lif(x) for large x",
        inputs=f"x = {x.tolist()}",
        rtol=0.0,
        atol=RATE_ATOL,
        hint=OVERFLOW_HINT,
    )


def nonfinite_gradients(student, x):
    grads = student.lif.grad(x)["input_grads"][0]
    expect(
        grads is not None,
        "No gradient flows through lif(x).",
        hint="build the rate with torch operations only (no numpy, math or .item()).",
    )
    bad = ~torch.isfinite(grads)
    if not bad.any():
        return ""
    return f"{int(bad.sum())} of {x.numel()} gradients are NaN or infinite, the first at x = {x[bad][0]:.4g}."


@pytest.mark.advisory
def test_lif_gradients_finite_above_threshold(student):
    # Beyond the task, like the large inputs above: the direct formula's gradient is NaN from x = 14.3 up.
    x = torch.linspace(-1, 60, 611)
    problem = nonfinite_gradients(student, x)
    expect(
        not problem,
        "The gradient of lif(x) is not finite for large x, which breaks backpropagation.",
        inputs="x from -1 to 60 (float32)",
        details=problem,
        hint=OVERFLOW_HINT,
    )


@pytest.mark.advisory
def test_lif_gradients_finite_far_below_threshold(student):
    # Advice, not graded: the task itself suggests the 1e-20 that makes V_thr / rho**2 overflow float32 here, and
    # its own solution has infinite gradients from x = -1.4 down.
    x = torch.linspace(-20, -1, 191)
    problem = nonfinite_gradients(student, x)
    expect(
        not problem,
        "The gradient of lif(x) is not finite below threshold, which breaks backpropagation.",
        inputs="x from -20 to -1 (float32)",
        details=problem,
        hint="there rho is about 1e-20, and the gradient of log(1 + V_thr / rho) contains V_thr / rho**2, which "
        "overflows float32; log(rho + V_thr) - log(rho) is the same value with a gradient that stays finite.",
    )


@pytest.mark.points(7)
def test_lif_gradient_values(student, reference):
    x = torch.linspace(-1, 5, 61, dtype=torch.float64)
    grads = student.lif.grad(x)["input_grads"][0]
    x_ref = x.clone().requires_grad_()
    reference.lif(x_ref).sum().backward()
    expect(grads is not None, "No gradient flows through lif(x).")
    # Hz per mV, up to about 35 at the threshold; in float64 the direct formula's gradient agrees to ~1e-7 here.
    expect_tensor(
        grads,
        x_ref.grad,
        what="The gradient of lif(x)",
        inputs=describe_inputs(x=x) + " from -1 to 5",
        rtol=1e-3,
        atol=0.01,
        check_dtype=False,
        hint=FORMULA_HINT,
    )


@pytest.mark.points(3)
def test_lif_near_zero_far_below_threshold(student):
    x = torch.tensor([-5.0, -10.0, -50.0], dtype=torch.float64)
    got = student.lif(x)
    expect(
        isinstance(got, torch.Tensor) and bool((got.abs() < 0.01 * MAX_RATE).all()),
        "lif(x) should be close to 0 far below threshold (under 1% of 1 / tau_ref).",
        inputs=f"x = {x.tolist()}",
        details=f"Got {got.tolist() if isinstance(got, torch.Tensor) else got}.",
        hint=FORMULA_HINT,
    )


@pytest.mark.points(3)
def test_lif_bounded_by_one_over_tau_ref(student):
    # Up to x = 100, where float64 exp(z / gamma) still fits (past x = 107 it overflows, and whether a correct
    # formula then gives 250 or NaN depends on how it is written): the exact rate there is 238 Hz.
    x = torch.tensor([2.0, 10.0, 50.0, 100.0], dtype=torch.float64)
    got = student.lif(x)
    ok = (
        isinstance(got, torch.Tensor) and bool((got <= MAX_RATE * (1 + 1e-6)).all()) and float(got[-1]) > 0.9 * MAX_RATE
    )
    expect(
        ok,
        "lif(x) should rise towards 1 / tau_ref = 250 and never exceed it.",
        inputs=f"x = {x.tolist()}",
        details=f"Got {got.tolist() if isinstance(got, torch.Tensor) else got}.",
        hint="the refractory period tau_ref = 0.004 s caps the rate at 250 Hz.",
    )


@pytest.mark.points(3)
def test_lif_monotone(student):
    x = torch.linspace(-5, 30, 701, dtype=torch.float64)
    got = student.lif(x)
    drops = int((got.diff() < -1e-9).sum()) if isinstance(got, torch.Tensor) else -1
    expect(
        drops == 0,
        "lif(x) should never decrease as x grows.",
        inputs="x from -5 to 30",
        details=f"It decreases at {drops} of 700 steps.",
        hint=FORMULA_HINT,
    )


@pytest.mark.points(4)
def test_lif_keeps_shape_and_dtype(student, gen, seed):
    x = torch.randn(2, 3, 4, generator=gen)
    got = student.lif(x)
    expect(
        isinstance(got, torch.Tensor) and tuple(got.shape) == (2, 3, 4),
        "lif(x) should return a tensor of the same shape as x.",
        inputs=describe_inputs(seed, x=x),
        hint="apply the formula element-wise, without reshaping or reducing.",
    )
    x64 = x.double()
    got64 = student.lif(x64)
    expect(
        isinstance(got64, torch.Tensor) and got64.dtype == torch.float64,
        "lif(x) should keep float64 inputs in float64.",
        inputs=describe_inputs(seed, x=x64),
        hint="use torch operations on x and Python numbers for the constants, not float32 tensors.",
    )


def applies_their_own_lif(student, x, got):
    """Whether LIF()(x) is exactly the student's own lif(x), so that a mistake in lif is not paid for twice."""
    try:
        own = student.lif(x)
    except Exception:  # their lif is judged by its own checks
        return False
    return (
        isinstance(got, torch.Tensor)
        and isinstance(own, torch.Tensor)
        and got.shape == own.shape
        and got.device == own.device
        and bool(torch.equal(got, own))
    )


@pytest.mark.public
@pytest.mark.points(7)
def test_LIF_module_applies_lif(student, reference, gen, seed, device):
    info = student.LIF.describe()
    expect(
        bool(info.get("subclass_of_module")),
        "LIF should be a subclass of nn.Module (class LIF(nn.Module)).",
        details=f"LIF is {info.get('repr')}.",
    )
    x = (torch.randn(3, 16, 5, 5, dtype=torch.float64, generator=gen) * 3).to(device)
    got = student.LIF()(x)
    if applies_their_own_lif(student, x, got):
        return  # the module does its job; the values of their lif are judged by the lif checks above
    expect_tensor(
        got,
        reference.lif(x),
        what="LIF()(x)",
        inputs=describe_inputs(seed, x=x),
        rtol=0.0,
        atol=RATE_ATOL,
        check_dtype=False,
        hint="LIF.forward(x) should return lif(x).",
    )


@pytest.mark.points(3)
def test_lif_does_not_change_its_input(student, gen):
    x = torch.randn(20, generator=gen)
    after = student.lif.call_keeping_args(x.clone())
    expect(
        torch.equal(after["args"][0], x),
        "lif(x) changed x in place.",
        hint="avoid in-place operations such as x -= V_thr or x.div_(gamma).",
    )
