"""LIFNet(): the tutorial's CNN with the LIF activation after the first convolution only; (N,1,28,28) -> (N,10)."""

import pytest
import torch
from torch import nn

from autograder.checklib import describe_inputs, expect, expect_tensor, on_any_device, parameter_shapes, transplant

SHAPES = [(16, 1, 7, 7), (16,), (32, 16, 7, 7), (32,), (512, 800), (512,), (10, 512), (10,)]
ARCH_HINT = (
    "conv_stack1 = Conv2d(1, 16, 7, padding=3), LIF, MaxPool2d(2); conv_stack2 = Conv2d(16, 32, 7, padding=1), "
    "ReLU, MaxPool2d(2); then Flatten, Linear(800, 512), ReLU, Linear(512, 10)."
)


def expected_output(net, x, activation):
    """The reference architecture with the given activation after the first convolution."""
    pooled = nn.functional.max_pool2d(activation(net.conv_stack1[0](x)), 2)
    return net.linear_stack(net.conv_stack2(pooled))


def first_activations(student, reference):
    """Candidates for the activation after the first convolution: the student's own LIF module and lif function
    (so that a mistake in Task 1 costs no points here), then the reference's."""

    def own(call):
        def activation(z):
            try:
                out = call(z.detach())
            except Exception:  # their LIF is judged by its own checks
                return None
            ok = isinstance(out, torch.Tensor) and out.shape == z.shape and bool(torch.isfinite(out).all())
            return out.to(z.dtype) if ok else None

        return activation

    return [own(lambda z: student.LIF()(z)), own(lambda z: student.lif(z)), reference.lif]


def own_lif_differentiable(student):
    """Whether the student's LIF passes finite, positive gradients (as the smooth rate does everywhere) at the
    values a first convolution produces."""
    try:
        grads = student.LIF().grad(torch.linspace(-3, 3, 61, dtype=torch.float64))["input_grads"][0]
    except Exception:
        return False
    return grads is not None and bool(torch.isfinite(grads).all()) and bool((grads > 0).all())


def likely_mistake(net, x, got):
    variants = {
        "the activation after the first convolution should be LIF, not ReLU.": expected_output(net, x, torch.relu),
        "the first convolution's output goes through LIF before pooling; it seems to be missing.": expected_output(
            net, x, lambda z: z
        ),
    }
    for hint, value in variants.items():
        if isinstance(got, torch.Tensor) and got.shape == value.shape and torch.allclose(got, value, atol=1e-4):
            return hint
    return "use LIF after the first convolution only; ReLU after the second and after Linear(800, 512)."


def compare(student, reference, seed, gen, device, n, scale, what):
    torch.manual_seed(seed)
    ours = reference.LIFNet().to(device)
    theirs = student.LIFNet().to(device)
    transplant(ours, theirs, what="LIFNet()", hint=ARCH_HINT)
    x = (torch.rand(n, 1, 28, 28, generator=gen) * scale).to(device)
    got = theirs(x)
    with torch.no_grad():
        candidates = []
        for activation in first_activations(student, reference):
            if activation(torch.zeros(1, device=device)) is not None:
                candidates.append(expected_output(ours, x, activation))
        hint = likely_mistake(ours, x, got)
    expected = candidates[0]
    for candidate in candidates:  # their net may call their LIF module or their lif function: either is right
        if (
            isinstance(got, torch.Tensor)
            and got.shape == candidate.shape
            and torch.allclose(got, candidate, 1e-4, 1e-3)
        ):
            expected = candidate
    # Activations of up to 250 pass through two layers of 512 and 800 inputs: float32 sums differ by ~1e-4.
    expect_tensor(
        got,
        expected,
        what=what,
        inputs=describe_inputs(seed, x=x) + " (same weights as the reference)",
        rtol=1e-4,
        atol=1e-3,
        hint=hint,
    )


@pytest.mark.public
@pytest.mark.points(8)
def test_output_shape(student, gen, seed):
    x = torch.rand(4, 1, 28, 28, generator=gen)
    y = student.LIFNet()(x)
    expect(
        isinstance(y, torch.Tensor) and tuple(y.shape) == (4, 10),
        "LIFNet()(x) should map a batch of (4, 1, 28, 28) images to (4, 10) logits.",
        inputs=describe_inputs(seed, x=x),
        details=f"Got {tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}.",
        hint=ARCH_HINT,
    )


@pytest.mark.points(4)
@pytest.mark.parametrize("n", [1, 7])
def test_other_batch_sizes(student, gen, seed, n):
    x = torch.rand(n, 1, 28, 28, generator=gen)
    y = student.LIFNet()(x)
    expect(
        isinstance(y, torch.Tensor) and tuple(y.shape) == (n, 10),
        f"LIFNet()(x) should return ({n}, 10) for a batch of {n}.",
        inputs=describe_inputs(seed, x=x),
        details=f"Got {tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}.",
        hint="do not fix the batch size; nn.Flatten() keeps the first dimension.",
    )


@pytest.mark.points(8)
def test_layer_shapes(student):
    got = list(parameter_shapes(student.LIFNet()).values())
    expect(
        got == SHAPES,
        "LIFNet() does not have the tutorial's layers.",
        details=f"Parameter shapes, in order--got {got}, expected {SHAPES}.",
        hint=ARCH_HINT,
    )


@pytest.mark.points(14)
def test_forward_matches_reference(student, reference, gen, seed, device):
    what = "The output of LIFNet()"
    on_any_device(device, lambda where: compare(student, reference, seed, gen, where, 5, 1.0, what))


@pytest.mark.points(6)
def test_forward_matches_reference_on_brighter_images(student, reference, gen, seed, device):
    what = "The output of LIFNet() for inputs scaled by 4"
    on_any_device(device, lambda where: compare(student, reference, seed, gen, where, 3, 4.0, what))


@pytest.mark.points(6)
def test_trains_without_nan(student, gen, seed, helpers):
    net = student.LIFNet()
    x = torch.rand(16, 1, 28, 28, generator=gen)
    labels = torch.randint(0, 10, (16,), generator=gen)
    out = net(x)
    expect(isinstance(out, torch.Tensor) and tuple(out.shape) == (16, 10), "LIFNet()(x) should return (16, 10).")
    if not own_lif_differentiable(student):
        return  # their LIF has no usable gradient: Task 1 lost those points, Task 2 is not charged again
    train_steps = student.put(helpers.sgd_steps, label="training LIFNet()")
    losses = train_steps(net, x, labels, 3e-5, 6)
    finite = all(torch.isfinite(torch.tensor(v)) for v in losses)
    expect(
        finite and losses[-1] < losses[0],
        "Six SGD steps (lr 3e-5, cross entropy) on a fixed batch should lower the loss without NaNs.",
        inputs=describe_inputs(seed, x=x, labels=labels),
        details=f"Losses: {[round(v, 4) for v in losses]}.",
        hint="check that lif has finite gradients and that LIF is used only after the first convolution.",
    )


@pytest.mark.points(4)
def test_gradients_reach_the_first_convolution(student, gen, seed):
    net = student.LIFNet()
    x = torch.rand(2, 1, 28, 28, generator=gen)
    grads = list(net.grad(x)["param_grads"].values())
    if not own_lif_differentiable(student):
        return  # their LIF has no usable gradient: judged in Task 1, not charged again here
    first = grads[0] if grads else None
    expect(
        first is not None and bool(torch.isfinite(first).all()) and bool(first.abs().sum() > 0),
        "No finite gradient reaches the first convolution's weights.",
        inputs=describe_inputs(seed, x=x),
        hint="the LIF activation must be differentiable: build it from torch operations.",
    )
