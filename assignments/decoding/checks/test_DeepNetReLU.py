"""DeepNetReLU(n_inputs, n_hidden): one hidden layer of ReLUs, one linear output."""

import pytest
import torch

from autograder.checklib import describe_inputs, expect, expect_tensor, parameter_shapes, transplant

HINT = "h = torch.relu(self.in_layer(r)); y = self.out_layer(h): the ReLU goes on the hidden layer only."


def likely_mistake(net, r, got):
    """Name the mistake whose output the student's matches, if any."""
    h = net.in_layer(r)
    variants = {
        "the ReLU is missing: apply torch.relu to the hidden layer.": net.out_layer(h),
        "the ReLU is applied to the output too; apply it to the hidden layer only.": torch.relu(
            net.out_layer(torch.relu(h))
        ),
        "the ReLU is applied to the output instead of the hidden layer.": torch.relu(net.out_layer(h)),
    }
    for hint, value in variants.items():
        if isinstance(got, torch.Tensor) and got.shape == value.shape and torch.allclose(got, value, atol=1e-5):
            return hint
    return HINT


@pytest.mark.public
@pytest.mark.points(2)
def test_layers_and_output_shape(student):
    net = student.DeepNetReLU(50, 10)
    shapes = list(parameter_shapes(net).values())
    expect(
        shapes == [(10, 50), (10,), (1, 10), (1,)],
        "DeepNetReLU(50, 10) should have in_layer = nn.Linear(50, 10) and out_layer = nn.Linear(10, 1).",
        details=f"Parameter shapes, in order--got {shapes}.",
    )
    r = torch.randn(5, 50)
    y = net(r)
    expect(
        isinstance(y, torch.Tensor) and tuple(y.shape) == (5, 1),
        f"DeepNetReLU(50, 10) on r {tuple(r.shape)} should return shape (5, 1).",
        details=f"Got {tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}.",
    )


@pytest.mark.points(3)
@pytest.mark.parametrize("n_in, n_hidden, n", [(7, 20, 16), (30, 3, 5), (1, 1, 9)])
def test_forward_matches_reference(student, reference, gen, seed, device, n_in, n_hidden, n):
    torch.manual_seed(seed)
    ours = reference.DeepNetReLU(n_in, n_hidden).to(device)
    theirs = student.DeepNetReLU(n_in, n_hidden).to(device)
    transplant(ours, theirs, what=f"DeepNetReLU({n_in}, {n_hidden})")
    r = (torch.randn(n, n_in, generator=gen) * 2).to(device)
    got = theirs(r)
    expect_tensor(
        got,
        ours(r).detach(),
        check_device=True,
        what=f"The output of DeepNetReLU({n_in}, {n_hidden})",
        inputs=describe_inputs(seed, r=r) + " (same weights as the reference)",
        hint=likely_mistake(ours, r, got),
    )


@pytest.mark.points(3)
def test_output_can_be_negative(student, reference, gen, seed):
    # A decoder of orientations must be able to output any real number: no ReLU after the output layer.
    ours = reference.DeepNetReLU(4, 6)
    with torch.no_grad():
        ours.out_layer.bias.fill_(-3.0)
    theirs = student.DeepNetReLU(4, 6)
    transplant(ours, theirs, what="DeepNetReLU(4, 6)")
    r = torch.randn(12, 4, generator=gen)
    got = theirs(r)
    expect_tensor(
        got,
        ours(r).detach(),
        what="The output of DeepNetReLU(4, 6) with a negative output bias",
        inputs=describe_inputs(seed, r=r),
        hint=likely_mistake(ours, r, got),
    )


@pytest.mark.points(1)
def test_gradients_reach_both_layers(student, gen, seed):
    net = student.DeepNetReLU(6, 5)
    r = torch.randn(10, 6, generator=gen)
    grads = net.grad(r)["param_grads"]
    missing = [name for name, g in grads.items() if g is None or not torch.isfinite(g).all()]
    expect(
        bool(grads) and not missing,
        "Gradients do not reach both layers of DeepNetReLU.",
        inputs=describe_inputs(seed, r=r),
        details=f"No finite gradient for: {missing}",
        hint=HINT,
    )


@pytest.mark.points(1)
def test_single_stimulus_vector(student, reference, gen, seed):
    torch.manual_seed(seed)
    ours = reference.DeepNetReLU(8, 4)
    theirs = student.DeepNetReLU(8, 4)
    transplant(ours, theirs, what="DeepNetReLU(8, 4)")
    r = torch.randn(8, generator=gen)
    expect_tensor(
        theirs(r),
        ours(r).detach(),
        what="The output for a single response vector r of shape (8,)",
        inputs=describe_inputs(seed, r=r),
        hint="use nn.Linear layers and torch.relu, which work for a vector as for a batch.",
    )
