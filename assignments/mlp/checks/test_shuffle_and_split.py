"""shuffle_and_split_data(X, y, seed) -> (X_test, y_test, X_train, y_train), 20% test, torch.randperm."""

import pytest
import torch

from autograder.checklib import describe_inputs, expect, expect_tensor, fail

CALL = "shuffle_and_split_data(X, y, seed)"
RANDPERM_HINT = "call torch.manual_seed(seed), then shuffle with torch.randperm(N) and index X and y with it."


def data(n, features=(2,)):
    X = torch.arange(n, dtype=torch.float32).repeat_interleave(int(torch.tensor(features).prod())).view(n, *features)
    y = torch.arange(n)  # y[i] names row i, so pairs can be followed through the shuffle
    return X, y


def unpack(result):
    if not isinstance(result, (tuple, list)) or len(result) != 4:
        fail(f"{CALL} should return four values (X_test, y_test, X_train, y_train).")
    return result


@pytest.mark.public
@pytest.mark.points(2)
def test_tutorial_sizes(student):
    X, y = data(4000)
    parts = unpack(student.shuffle_and_split_data(X, y, seed=2021))
    sizes = tuple(len(p) for p in parts)
    expect(
        sizes == (800, 800, 3200, 3200),
        "The split has the wrong sizes.",
        inputs=describe_inputs(X=X, y=y) + ", seed 2021",
        details=f"Lengths of (X_test, y_test, X_train, y_train)--got {sizes}, expected (800, 800, 3200, 3200).",
        hint="20% for test: test_size = int(0.2 * N); return X_test, y_test, X_train, y_train in this order.",
    )


@pytest.mark.points(3)
@pytest.mark.parametrize("n, seed_value", [(4000, 2021), (53, 7), (10, 0)])
def test_matches_reference(student, reference, device, n, seed_value):
    X, y = (t.to(device) for t in data(n))
    got = unpack(student.shuffle_and_split_data(X, y, seed=seed_value))
    expected = reference.shuffle_and_split_data(X, y, seed_value)
    inputs = describe_inputs(X=X, y=y) + f", seed {seed_value}"
    hint = RANDPERM_HINT
    if isinstance(got[1], torch.Tensor) and len(got[1]) == len(expected[1]):
        perm = torch.cat([expected[1], expected[3]])
        if torch.equal(got[1], perm[-len(expected[1]) :]):
            hint = "the test set is the first 20% of the shuffled rows, not the last."
        elif torch.equal(got[1], y[: len(expected[1])]):
            hint = "shuffle before splitting: " + RANDPERM_HINT
    for name, g, e in zip(("X_test", "y_test", "X_train", "y_train"), got, expected, strict=True):
        expect_tensor(g, e, what=name, inputs=inputs, hint=hint)


@pytest.mark.points(2)
def test_rows_and_labels_stay_paired(student):
    X, y = data(200, (3,))
    X_test, y_test, X_train, y_train = unpack(student.shuffle_and_split_data(X, y, seed=5))
    for Xs, ys, name in ((X_test, y_test, "test"), (X_train, y_train, "train")):
        expect(
            isinstance(Xs, torch.Tensor) and isinstance(ys, torch.Tensor) and torch.equal(Xs[:, 0].long(), ys),
            f"In the {name} set, rows of X no longer sit beside their labels in y.",
            inputs=describe_inputs(X=X, y=y) + ", seed 5 (y[i] == X[i, 0])",
            hint="shuffle X and y with the same indices.",
        )


@pytest.mark.points(1)
def test_every_row_used_once(student):
    X, y = data(101)
    _, y_test, _, y_train = unpack(student.shuffle_and_split_data(X, y, seed=3))
    together = torch.cat([torch.as_tensor(y_test), torch.as_tensor(y_train)]).sort().values
    expect(
        torch.equal(together, y),
        "Test and train together should hold every row exactly once.",
        inputs=describe_inputs(X=X, y=y) + ", seed 3",
        hint="split the shuffled data at test_size: [:test_size] for test, [test_size:] for train.",
    )


@pytest.mark.points(1)
def test_image_shaped_data(student, reference):
    X, y = data(30, (3, 4))
    got = unpack(student.shuffle_and_split_data(X, y, seed=11))
    expected = reference.shuffle_and_split_data(X, y, 11)
    for name, g, e in zip(("X_test", "y_test", "X_train", "y_train"), got, expected, strict=True):
        expect_tensor(g, e, what=name, inputs=describe_inputs(X=X, y=y) + ", seed 11", hint=RANDPERM_HINT)


@pytest.mark.points(1)
def test_does_not_change_its_inputs(student):
    X, y = data(40)
    after = student.shuffle_and_split_data.call_keeping_args(X.clone(), y.clone(), 4)
    expect(
        torch.equal(after["args"][0], X) and torch.equal(after["args"][1], y),
        f"{CALL} changed X or y in place.",
        hint="index with the shuffled indices (X[idx]) instead of writing into X.",
    )
