"""Net(actv, input_feature_num, hidden_unit_nums, output_feature_num): a general MLP."""

import pytest
import torch

from autograder.checklib import describe_inputs, expect, expect_tensor, parameter_shapes, transplant

CONFIGS = [
    ("ReLU()", 3, [8, 4], 2, (16, 3)),
    ("Sigmoid()", 5, [], 3, (4, 5)),
    ("LeakyReLU(0.2)", 12, [6], 4, (7, 3, 2, 2)),  # an image-like input is flattened to (-1, 12)
    ("Tanh()", 2, [5, 5, 5], 1, (9, 2)),
]


def label(actv, n_in, hidden, n_out):
    return f"Net({actv!r}, {n_in}, {hidden}, {n_out})"


def expected_shapes(n_in, hidden, n_out):
    shapes, previous = [], n_in
    for width in [*hidden, n_out]:
        shapes += [(width, previous), (width,)]
        previous = width
    return shapes


def activations(student_net):
    """'Kind: repr' of every activation module (from torch.nn's activation family) in the student's model."""
    return [
        m["type"].rsplit(".", 1)[-1] + ": " + m["repr"]
        for m in student_net.describe("modules")["modules"][1:]
        if m["type"].startswith("torch.nn.modules.activation.")
    ]


@pytest.mark.public
@pytest.mark.points(1)
def test_tutorial_output_shape(student):
    net = student.Net(actv="LeakyReLU(0.1)", input_feature_num=2, hidden_unit_nums=[100, 10, 5], output_feature_num=1)
    x = torch.zeros((100, 2))
    y = net(x)
    expect(isinstance(y, torch.Tensor), "net(input) should return a tensor.")
    expect(
        tuple(y.shape) == (100, 1),
        f"The output has the wrong shape--got {tuple(y.shape)}, expected (100, 1).",
        inputs=f"{label('LeakyReLU(0.1)', 2, [100, 10, 5], 1)} on input {describe_inputs(x=x)}",
        hint="end with nn.Linear(in_num, output_feature_num) and return the output of self.mlp.",
    )


@pytest.mark.points(2)
def test_layer_sizes(student):
    # One check over several hidden lists: an unfilled loop body must not earn the empty list's case.
    for hidden in ([100, 10, 5], [7], []):
        net = student.Net("ReLU()", 2, hidden, 3)
        got = list(parameter_shapes(net).values())
        want = expected_shapes(2, hidden, 3)
        expect(
            got == want,
            f"{label('ReLU()', 2, hidden, 3)} has the wrong layers.",
            details=f"Parameter shapes, in order--got {got}, expected {want}.",
            hint="one nn.Linear(in_num, out_num) per entry of hidden_unit_nums, then "
            "nn.Linear(in_num, output_feature_num)"
            + ("; with an empty list, a single linear layer." if not hidden else "."),
        )


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "actv, kind, detail", [("LeakyReLU(0.1)", "LeakyReLU", "negative_slope=0.1"), ("Tanh()", "Tanh", "Tanh()")]
)
def test_activation_built_from_string(student, actv, kind, detail):
    # The kind and its arguments come from the string; how many instances is the forward check's business
    # (one instance reused in every hidden layer is as right as one per layer).
    hidden = [4, 3, 2]
    net = student.Net(actv, 2, hidden, 1)
    found = activations(net)
    expect(
        bool(found) and all(a.startswith(kind + ":") and detail in a for a in found),
        f"{label(actv, 2, hidden, 1)} should use the activation {actv!r} given as a string, and no other.",
        details=f"Activation modules found: {found or 'none'}.",
        hint="build the activation from actv, e.g. eval('nn.%s' % actv), rather than a fixed nn.ReLU().",
    )


@pytest.mark.points(4)
@pytest.mark.parametrize("actv, n_in, hidden, n_out, shape", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_forward_matches_reference(student, reference, gen, seed, device, actv, n_in, hidden, n_out, shape):
    torch.manual_seed(seed)
    ours = reference.Net(actv, n_in, hidden, n_out).to(device)
    theirs = student.Net(actv, n_in, hidden, n_out).to(device)
    transplant(ours, theirs, what=label(actv, n_in, hidden, n_out))
    x = torch.randn(*shape, generator=gen).to(device)
    expect_tensor(
        theirs(x),
        ours(x).detach(),
        check_device=True,
        what=f"The output of {label(actv, n_in, hidden, n_out)}",
        inputs=describe_inputs(seed, x=x) + " (same weights as the reference)",
        hint="apply the activation after every hidden layer but not after the output layer, and reshape the input "
        "to (-1, input_feature_num).",
    )


@pytest.mark.points(1)
def test_gradients_reach_every_layer(student, gen, seed):
    net = student.Net("ReLU()", 4, [6, 5], 2)
    x = torch.randn(8, 4, generator=gen)
    grads = net.grad(x)["param_grads"]
    missing = [name for name, g in grads.items() if g is None or not torch.isfinite(g).all()]
    expect(
        grads and not missing,
        "Gradients do not reach every layer of the network.",
        inputs=describe_inputs(seed, x=x),
        details=f"No finite gradient for: {missing}" if grads else "The network has no parameters.",
        hint="register layers with add_module (or as attributes) and use them in forward.",
    )
