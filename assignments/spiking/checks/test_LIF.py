"""lif(x) = 1 / (tau_ref + tau_m * log(1 + V_thr / rho(x - V_thr))), rho(z) = gamma*log(1 + exp(z/gamma)) + 1e-20,
with tau_m = 0.02, tau_ref = 0.004, V_thr = 1, gamma = 0.15; and LIF, its nn.Module wrapper."""

import pytest
import torch

from autograder.checklib import describe_inputs, expect, expect_tensor

MAX_RATE = 1 / 0.004  # 1 / tau_ref
FORMULA_HINT = (
    "rate = 1 / (tau_ref + tau_m * log(1 + V_thr / rho(x - V_thr))) with rho(z) = gamma * log(1 + exp(z / gamma)) "
    "+ 1e-20 and tau_m = 0.02, tau_ref = 0.004, V_thr = 1, gamma = 0.15."
)
OVERFLOW_HINT = (
    "exp(z / gamma) overflows for large z; torch.nn.functional.softplus(z, beta=1/gamma) computes "
    "gamma * log(1 + exp(z / gamma)) without overflowing."
)


def lif_hint(got, x):
    """Name the common near-miss the student's values match, if any."""
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
@pytest.mark.points(10)
def test_lif_matches_the_formula(student, reference):
    x = torch.linspace(-2, 6, 161, dtype=torch.float64)
    got = student.lif(x)
    # In float64 the tutorial's direct formula agrees with a stable one to ~1e-7 here; rtol 1e-4 leaves room.
    expect_tensor(
        got,
        reference.lif(x),
        what="lif(x)",
        inputs=describe_inputs(x=x) + " from -2 to 6",
        rtol=1e-4,
        atol=1e-6,
        check_dtype=False,
        hint=lif_hint(got, x),
    )


@pytest.mark.points(5)
def test_lif_float32_values(student, reference, gen, seed, device):
    x = torch.cat([torch.linspace(-3, 10, 131), torch.rand(50, generator=gen) * 13 - 3]).to(device)
    got = student.lif(x)
    # The direct formula loses digits in float32 below threshold, where 1 + exp(z / gamma) rounds to 1: up to
    # about 1.6 Hz there, out of 250. atol = 2 Hz accepts it; any formula mistake is off by far more.
    expect_tensor(
        got,
        reference.lif(x.double()).float(),
        what="lif(x) for float32 x",
        check_device=True,
        inputs=describe_inputs(seed, x=x),
        rtol=1e-3,
        atol=2.0,
        hint=lif_hint(got, x),
    )


@pytest.mark.points(5)
def test_lif_large_inputs_stay_finite(student, reference):
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
        rtol=1e-3,
        atol=0.05,
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


@pytest.mark.points(5)
def test_lif_gradients_finite_above_threshold(student):
    x = torch.linspace(-1, 60, 611)
    problem = nonfinite_gradients(student, x)
    expect(
        not problem,
        "The gradient of lif(x) is not finite for large x, which breaks backpropagation.",
        inputs="x from -1 to 60 (float32)",
        details=problem,
        hint=OVERFLOW_HINT,
    )


@pytest.mark.points(3)
def test_lif_gradients_finite_far_below_threshold(student):
    x = torch.linspace(-20, -1, 191)
    problem = nonfinite_gradients(student, x)
    expect(
        not problem,
        "The gradient of lif(x) is not finite far below threshold, which breaks backpropagation.",
        inputs="x from -20 to -1 (float32)",
        details=problem,
        hint="there rho is about 1e-20, and the gradient of log(1 + V_thr / rho) contains V_thr / rho**2, which "
        "overflows float32; log(rho + V_thr) - log(rho) is the same value with a gradient that stays finite.",
    )


@pytest.mark.points(4)
def test_lif_gradient_values(student, reference):
    x = torch.linspace(-1, 5, 61, dtype=torch.float64)
    grads = student.lif.grad(x)["input_grads"][0]
    x_ref = x.clone().requires_grad_()
    reference.lif(x_ref).sum().backward()
    expect(grads is not None, "No gradient flows through lif(x).")
    expect_tensor(
        grads,
        x_ref.grad,
        what="The gradient of lif(x)",
        inputs=describe_inputs(x=x) + " from -1 to 5",
        rtol=1e-3,
        atol=1e-6,
        check_dtype=False,
        hint=FORMULA_HINT,
    )


@pytest.mark.points(2)
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


@pytest.mark.points(2)
def test_lif_bounded_by_one_over_tau_ref(student):
    x = torch.tensor([2.0, 10.0, 100.0, 1e4], dtype=torch.float64)
    got = student.lif(x)
    ok = (
        isinstance(got, torch.Tensor)
        and bool((got <= MAX_RATE * (1 + 1e-6)).all())
        and float(got[-1]) > 0.99 * MAX_RATE
    )
    expect(
        ok,
        "lif(x) should rise towards 1 / tau_ref = 250 and never exceed it.",
        inputs=f"x = {x.tolist()}",
        details=f"Got {got.tolist() if isinstance(got, torch.Tensor) else got}.",
        hint="the refractory period tau_ref = 0.004 s caps the rate at 250 Hz.",
    )


@pytest.mark.points(2)
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


@pytest.mark.public
@pytest.mark.points(6)
def test_LIF_module_applies_lif(student, reference, gen, seed, device):
    info = student.LIF.describe()
    expect(
        bool(info.get("subclass_of_module")),
        "LIF should be a subclass of nn.Module (class LIF(nn.Module)).",
        details=f"LIF is {info.get('repr')}.",
    )
    x = (torch.randn(3, 16, 5, 5, dtype=torch.float64, generator=gen) * 3).to(device)
    expect_tensor(
        student.LIF()(x),
        reference.lif(x),
        what="LIF()(x)",
        inputs=describe_inputs(seed, x=x),
        rtol=1e-4,
        atol=1e-6,
        check_dtype=False,
        hint="LIF.forward(x) should return lif(x).",
    )


@pytest.mark.points(2)
def test_lif_does_not_change_its_input(student, gen):
    x = torch.randn(20, generator=gen)
    after = student.lif.call_keeping_args(x.clone())
    expect(
        torch.equal(after["args"][0], x),
        "lif(x) changed x in place.",
        hint="avoid in-place operations such as x -= V_thr or x.div_(gamma).",
    )
