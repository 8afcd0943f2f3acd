"""train(net, loss_fn, train_data, train_labels, n_iter=50, learning_rate=1e-4, test_data=None, test_labels=None,
L2_penalty=0, L1_penalty=0): full-batch gradient descent; returns train_loss or (train_loss, test_loss)."""

import copy

import pytest
import torch
from torch import nn, optim

from autograder.checklib import describe_inputs, expect, expect_tensor, fail

# Both sides run the same float32 operations, but the student may order them differently (e.g. the
# loss on a fresh forward pass); 1e-5 absorbs that, while one skipped step or a wrong rate is far off.
TOL = {"rtol": 1e-4, "atol": 1e-5}
# Every check trains for n_iter >= 5: the tutorial's own solution prints its progress every n_iter // 5 iterations,
# which divides by zero below 5 (tests/test_course_solutions.py grades it).


def problem(gen, n=40, n_in=5):
    X = torch.randn(n, n_in, generator=gen)
    y = X @ torch.randn(n_in, 1, generator=gen) + 0.1 * torch.randn(n, 1, generator=gen)
    return X, y


def fresh_net(helpers, seed, n_in=5, n_hidden=8):
    torch.manual_seed(seed)
    return helpers.TanhNet(n_in, n_hidden)


def as_curve(value, name, n_iter):
    if not isinstance(value, (list, tuple)):
        fail(
            f"{name} should be a list of {n_iter} loss values but is {type(value).__name__}.",
            hint="append loss.item() to train_loss at every iteration and return the list.",
        )
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value):
        kinds = sorted({type(v).__name__ for v in value})
        fail(
            f"{name} should hold plain numbers, but holds {', '.join(kinds)}.",
            hint="store loss.item(), not the loss tensor (which keeps the whole graph alive).",
        )
    if len(value) != n_iter:
        fail(
            f"{name} should have one value per iteration: got {len(value)}, expected {n_iter}.",
            hint="run exactly n_iter iterations and record the loss of each.",
        )
    return torch.tensor(value, dtype=torch.float64)


def train_without_zero_grad(net, X, y, n_iter, lr):
    optimizer = optim.SGD(net.parameters(), lr=lr)
    for _ in range(n_iter):
        loss = nn.functional.mse_loss(net(X), y)
        loss.backward()
        optimizer.step()
    return net


def weights_hint(student_weights, net, X, y, n_iter, lr):
    stale = train_without_zero_grad(net, X, y, n_iter, lr).state_dict()
    if all(torch.allclose(student_weights[k], stale[k], atol=1e-5) for k in stale):
        return "clear the gradients with optimizer.zero_grad() in every iteration, before loss.backward()."
    return "each iteration: out = net(train_data), loss, optimizer.zero_grad(), loss.backward(), optimizer.step()."


def run_both(student, reference, helpers, seed, X, y, **kwargs):
    net = fresh_net(helpers, seed, X.shape[1]).to(X.device)
    remote = student.put(copy.deepcopy(net), label="the network passed to train")
    loss_fn = kwargs.pop("loss_fn", nn.MSELoss())
    got = student.train(remote, loss_fn, X, y, **kwargs)
    expected = reference.train(net, loss_fn, X, y, **kwargs)
    return got, expected, remote, net


@pytest.mark.public
@pytest.mark.points(3)
def test_returns_the_loss_curve(student, reference, gen, seed, helpers):
    X, y = problem(gen)
    got, expected, _, _ = run_both(student, reference, helpers, seed, X, y, n_iter=10, learning_rate=0.05)
    curve = as_curve(got, "train(...)'s return value", 10)
    expect_tensor(
        curve,
        torch.tensor(expected, dtype=torch.float64),
        what="The training loss curve",
        inputs=describe_inputs(seed, train_data=X, train_labels=y) + ", n_iter=10, learning_rate=0.05",
        hint="record the loss computed before each update step.",
        **TOL,
    )


@pytest.mark.points(5)
def test_updates_weights_by_gradient_descent(student, reference, gen, seed, device, helpers):
    X, y = (t.to(device) for t in problem(gen))
    _, _, remote, trained = run_both(student, reference, helpers, seed, X, y, n_iter=25, learning_rate=0.05)
    got = remote.state_dict()
    inputs = describe_inputs(seed, train_data=X, train_labels=y) + ", n_iter=25, learning_rate=0.05"
    hint = weights_hint(got, fresh_net(helpers, seed).to(device), X, y, 25, 0.05)
    for name, value in trained.state_dict().items():
        expect_tensor(
            got.get(name), value, what=f"After training, the network's {name}", inputs=inputs, hint=hint, **TOL
        )


@pytest.mark.points(3)
@pytest.mark.parametrize("n_iter, lr", [(7, 0.2), (5, 1e-3)])
def test_uses_n_iter_and_learning_rate(student, reference, gen, seed, n_iter, lr, helpers):
    X, y = problem(gen, n=17, n_in=3)
    got, expected, _, _ = run_both(student, reference, helpers, seed, X, y, n_iter=n_iter, learning_rate=lr)
    curve = as_curve(got, "train(...)'s return value", n_iter)
    expect_tensor(
        curve,
        torch.tensor(expected, dtype=torch.float64),
        what="The training loss curve",
        inputs=describe_inputs(seed, train_data=X, train_labels=y) + f", n_iter={n_iter}, learning_rate={lr}",
        hint="use the n_iter and learning_rate arguments, not fixed numbers.",
        **TOL,
    )


@pytest.mark.points(2)
def test_loss_goes_down(student, gen, seed, helpers):
    X, y = problem(gen)
    remote = student.put(fresh_net(helpers, seed), label="the network passed to train")
    curve = as_curve(student.train(remote, nn.MSELoss(), X, y, n_iter=30, learning_rate=0.05), "train(...)", 30)
    expect(
        bool(torch.isfinite(curve).all()) and curve[-1] < 0.8 * curve[0],
        "The loss should go down when training on an easy regression problem.",
        inputs=describe_inputs(seed, train_data=X, train_labels=y) + ", n_iter=30, learning_rate=0.05",
        details=f"First loss {curve[0]:.4g}, last loss {curve[-1]:.4g}.",
        hint="step the optimizer after loss.backward(), in every iteration.",
    )


@pytest.mark.points(3)
def test_returns_test_loss_with_test_data(student, reference, gen, seed, helpers):
    X, y = problem(gen, n=50)
    kwargs = dict(n_iter=8, learning_rate=0.05, test_data=X[40:], test_labels=y[40:])
    got, expected, _, _ = run_both(student, reference, helpers, seed, X[:40], y[:40], **kwargs)
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        fail("With test_data given, train should return (train_loss, test_loss).")
    inputs = describe_inputs(seed, train_data=X[:40], test_data=X[40:]) + ", n_iter=8"
    for name, g, e in zip(("train_loss", "test_loss"), got, expected, strict=True):
        expect_tensor(
            as_curve(g, name, 8),
            torch.tensor(e, dtype=torch.float64),
            what=name,
            inputs=inputs,
            hint="compute the test loss with net(test_data) after each update step.",
            **TOL,
        )


@pytest.mark.points(3)
def test_passes_penalties_to_the_loss(student, reference, gen, seed, helpers):
    X, y = problem(gen)
    kwargs = dict(n_iter=6, learning_rate=0.05, L2_penalty=0.1, L1_penalty=0.01, loss_fn=helpers.penalized_mse)
    got, expected, _, _ = run_both(student, reference, helpers, seed, X, y, **kwargs)
    curve = as_curve(got, "train(...)'s return value", 6)
    expect_tensor(
        curve,
        torch.tensor(expected, dtype=torch.float64),
        what="The training loss curve with penalties",
        inputs=describe_inputs(seed, train_data=X, train_labels=y) + ", L2_penalty=0.1, L1_penalty=0.01",
        hint="with a penalty, call loss_fn(out, train_labels, net.in_layer.weight, L2_penalty, L1_penalty).",
        **TOL,
    )


@pytest.mark.points(1)
def test_does_not_change_the_data(student, gen, seed, helpers):
    X, y = problem(gen, n=12)
    remote = student.put(fresh_net(helpers, seed), label="the network passed to train")
    after = student.train.call_keeping_args(remote, nn.MSELoss(), X.clone(), y.clone(), n_iter=5, learning_rate=0.05)
    expect(
        torch.equal(after["args"][2], X) and torch.equal(after["args"][3], y),
        "train changed train_data or train_labels in place.",
        hint="only the network's parameters should change during training.",
    )
