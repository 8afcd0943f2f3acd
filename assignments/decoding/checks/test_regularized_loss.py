"""regularized_loss(output, target, weights, L2_penalty=0, L1_penalty=0): NLL + L2 * sum(w^2) + L1 * sum(|w|)."""

import pytest
import torch

from autograder.checklib import describe_inputs, expect, expect_scalar, expect_tensor


def batch(gen, n=10, c=4, w_shape=(6, 3)):
    output = torch.log_softmax(torch.randn(n, c, generator=gen), dim=1)
    target = torch.randint(0, c, (n,), generator=gen)
    weights = torch.randn(*w_shape, generator=gen)
    return output, target, weights


def hint_for(got, output, target, weights, L2, L1):
    """Name the common mistake whose value the student's matches, if any."""
    nll = torch.nn.functional.nll_loss(output, target)
    ce = torch.nn.functional.cross_entropy(output, target)
    sq, ab = weights.square(), weights.abs()
    variants = {
        "the L2 term is the sum of squared weights, not their mean.": nll + L2 * sq.mean() + L1 * ab.sum(),
        "the L1 term is the sum of absolute weights, not their mean.": nll + L2 * sq.sum() + L1 * ab.mean(),
        "the L1 term uses absolute values (torch.abs), not squares.": nll + L2 * sq.sum() + L1 * sq.sum(),
        "the L2 term squares the weights before summing.": nll + L2 * ab.sum() + L1 * ab.sum(),
        "the L2 term is the sum of squares, not the norm.": nll + L2 * weights.norm() + L1 * ab.sum(),
        "L2_penalty scales the squared weights and L1_penalty the absolute ones.": nll + L1 * sq.sum() + L2 * ab.sum(),
        "the data term is nn.NLLLoss of the log-probabilities, not cross entropy.": ce + L2 * sq.sum() + L1 * ab.sum(),
    }
    for hint, value in variants.items():
        if abs(got - value.item()) < 1e-5:
            return hint
    return "loss = NLLLoss()(output, target) + L2_penalty * sum(w**2) + L1_penalty * sum(|w|)."


def check_value(student, reference, output, target, weights, L2, L1, what, inputs):
    expected = reference.regularized_loss(output, target, weights, L2, L1).item()
    got = student.regularized_loss(output, target, weights, L2_penalty=L2, L1_penalty=L1)
    value = got.item() if isinstance(got, torch.Tensor) and got.numel() == 1 else None
    hint = hint_for(value, output, target, weights, L2, L1) if value is not None else ""
    expect_scalar(got, expected, what=what, inputs=inputs, hint=hint, rtol=1e-5, atol=1e-5)


@pytest.mark.public
@pytest.mark.points(2)
def test_without_penalties_is_nll(student, reference, gen, seed):
    output, target, weights = batch(gen)
    expected = reference.regularized_loss(output, target, weights).item()
    got = student.regularized_loss(output, target, weights)
    expect_scalar(
        got,
        expected,
        what="regularized_loss(output, target, weights) with no penalties",
        inputs=describe_inputs(seed, output=output, target=target, weights=weights),
        hint="with both penalties 0 the loss is nn.NLLLoss()(output, target).",
    )


@pytest.mark.points(2)
def test_l2_term(student, reference, gen, seed):
    output, target, weights = batch(gen)
    check_value(
        student,
        reference,
        output,
        target,
        weights,
        0.1,
        0.0,
        "regularized_loss with L2_penalty=0.1",
        describe_inputs(seed, output=output, target=target, weights=weights),
    )


@pytest.mark.points(2)
def test_l1_term(student, reference, gen, seed):
    output, target, weights = batch(gen)
    check_value(
        student,
        reference,
        output,
        target,
        weights,
        0.0,
        0.05,
        "regularized_loss with L1_penalty=0.05",
        describe_inputs(seed, output=output, target=target, weights=weights),
    )


@pytest.mark.points(3)
@pytest.mark.parametrize("n, c, w_shape", [(3, 2, (20, 5)), (25, 20, (20, 7)), (1, 5, (1, 1))])
def test_both_terms(student, reference, gen, seed, device, n, c, w_shape):
    output, target, weights = (t.to(device) for t in batch(gen, n, c, w_shape))
    check_value(
        student,
        reference,
        output,
        target,
        weights,
        1e-2,
        5e-4,
        "regularized_loss with both penalties",
        describe_inputs(seed, output=output, target=target, weights=weights),
    )


@pytest.mark.points(1)
def test_gradient_with_respect_to_weights(student, reference, gen, seed):
    output, target, weights = batch(gen)
    got = student.regularized_loss.grad(output, target, weights, 0.1, 0.05)
    w = weights.clone().requires_grad_()
    reference.regularized_loss(output, target, w, 0.1, 0.05).backward()
    expect(
        got["input_grads"][2] is not None,
        "No gradient flows from regularized_loss back to the weights.",
        hint="compute the penalties with torch operations on weights (no .item() or numpy).",
    )
    expect_tensor(
        got["input_grads"][2],
        w.grad,
        what="The gradient with respect to the weights",
        inputs=describe_inputs(seed, weights=weights),
        rtol=1e-4,
        atol=1e-6,
    )
