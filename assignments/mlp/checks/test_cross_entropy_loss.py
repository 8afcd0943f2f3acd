"""cross_entropy_loss(x, labels): mean of -x[label] + log(sum(exp(x))), written without PyTorch's versions."""

import pytest
import torch

from autograder.checklib import describe_inputs, expect, expect_scalar, expect_tensor, forbidden_found

CALL = "cross_entropy_loss(x, labels)"
# float32 sums of exp over up to 10 classes: relative error ~1e-6; allow a little more.
RTOL, ATOL = 1e-5, 1e-5


def batch(gen, n, c, scale=3.0, dtype=torch.float32):
    x = (torch.randn(n, c, generator=gen) * scale).to(dtype)
    labels = torch.randint(0, c, (n,), generator=gen)
    return x, labels


def hint_for(got, x, labels, expected):
    if abs(got - expected * len(labels)) < 1e-3 * max(1.0, abs(expected * len(labels))):
        return "the loss should be averaged over the batch, not summed."
    wrong_sign = torch.logsumexp(x, 1) + x[torch.arange(len(labels)), labels]
    if abs(got - wrong_sign.mean().item()) < 1e-4:
        return "the loss is -x[label] + log(sum(exp(x))): check the sign of the first term."
    return "compute -x_i[label_i] + log(sum_j exp(x_i[j])) for every row, then take the mean."


def value(result):
    return result.item() if isinstance(result, torch.Tensor) and result.numel() == 1 else result


@pytest.mark.public
@pytest.mark.points(2)
def test_tutorial_example(student, reference):
    labels = torch.tensor([0, 1])
    x = torch.tensor([[10.0, 1.0, -1.0, -20.0], [10.0, 10.0, 2.0, -10.0]])
    expected = reference.cross_entropy_loss(x, labels).item()
    got = student.cross_entropy_loss(x, labels)
    expect_scalar(
        got,
        expected,
        what=f"{CALL} for the tutorial's example",
        inputs=describe_inputs(x=x, labels=labels),
        hint=hint_for(value(got), x, labels, expected) if isinstance(value(got), float) else "",
    )


@pytest.mark.points(3)
@pytest.mark.parametrize("n, c", [(8, 5), (1, 3), (64, 10)])
def test_random_batches(student, reference, gen, seed, n, c):
    # On the CPU even with --device cuda: the tutorial's own solution starts from x_of_labels = torch.zeros(len(labels))
    # (a CPU tensor), which is right for the task, whose tensors all live on the CPU.
    x, labels = batch(gen, n, c)
    expected = reference.cross_entropy_loss(x, labels).item()
    got = student.cross_entropy_loss(x, labels)
    expect_scalar(
        got,
        expected,
        what=CALL,
        inputs=describe_inputs(seed, x=x, labels=labels),
        rtol=RTOL,
        atol=ATOL,
        hint=hint_for(value(got), x, labels, expected) if isinstance(value(got), float) else "",
    )


@pytest.mark.points(1)
def test_returns_a_one_number_tensor(student, gen, seed):
    x, labels = batch(gen, 6, 4)
    got = student.cross_entropy_loss(x, labels)
    expect(
        isinstance(got, torch.Tensor) and got.numel() == 1,
        f"{CALL} should return a tensor holding one number (so that .item() and .backward() work).",
        inputs=describe_inputs(seed, x=x, labels=labels),
        details=f"It returned {type(got).__name__}"
        + (f" of shape {tuple(got.shape)}." if isinstance(got, torch.Tensor) else "."),
        hint="return losses.mean(), not the vector of losses or a Python float.",
    )


@pytest.mark.points(1)
def test_float64_input(student, reference, gen, seed):
    x, labels = batch(gen, 12, 7, dtype=torch.float64)
    expected = reference.cross_entropy_loss(x, labels).item()
    expect_scalar(
        student.cross_entropy_loss(x, labels),
        expected,
        what=CALL,
        inputs=describe_inputs(seed, x=x, labels=labels),
        rtol=RTOL,
        atol=ATOL,
    )


@pytest.mark.points(1)
def test_gradient(student, reference, gen, seed):
    x, labels = batch(gen, 10, 4)
    got = student.cross_entropy_loss.grad(x, labels)
    x_ref = x.clone().requires_grad_()
    reference.cross_entropy_loss(x_ref, labels).backward()
    expect(
        got["input_grads"][0] is not None,
        f"No gradient flows from {CALL} back to x.",
        inputs=describe_inputs(seed, x=x, labels=labels),
        hint="build the loss from x with torch operations; .item(), numpy or torch.tensor(...) cut the graph.",
    )
    expect_tensor(
        got["input_grads"][0],
        x_ref.grad,
        what="The gradient of the loss with respect to x",
        inputs=describe_inputs(seed, x=x, labels=labels),
        rtol=1e-4,
        atol=1e-6,
    )


@pytest.mark.points(1)
def test_does_not_change_its_inputs(student, gen, seed):
    x, labels = batch(gen, 5, 3)
    after = student.cross_entropy_loss.call_keeping_args(x.clone(), labels.clone())
    expect(
        torch.equal(after["args"][0], x) and torch.equal(after["args"][1], labels),
        f"{CALL} changed its inputs in place.",
        inputs=describe_inputs(seed, x=x, labels=labels),
        hint="avoid in-place operations such as x -= ... or x.exp_() on the arguments.",
    )


@pytest.mark.points(1)
def test_no_builtin_cross_entropy(student, exercise, gen):
    x, labels = batch(gen, 4, 3)
    graph = set(student.cross_entropy_loss.grad(x, labels)["graph"])
    uses = forbidden_found(student, "cross_entropy_loss", exercise.forbidden)
    builtin = graph & {"NllLossBackward0", "LogSoftmaxBackward0"}
    expect(
        not uses and not builtin,
        "cross_entropy_loss must compute the loss itself, without PyTorch's cross entropy, NLL or log-softmax.",
        details="Found: " + ", ".join(uses + sorted(builtin)),
        hint="use indexing, torch.exp, torch.log (or torch.logsumexp) and .mean().",
    )
