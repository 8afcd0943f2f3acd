"""decoding: DeepNetReLU, train, regularized_loss."""

from .mlp import edit

HEADER = "import numpy as np\nimport torch\nimport torch.nn as nn\nimport torch.nn.functional as F\nimport torch.optim as optim\n"

DEEPNET = """
class DeepNetReLU(nn.Module):
    def __init__(self, n_inputs, n_hidden):
        super().__init__()
        self.in_layer = nn.Linear(n_inputs, n_hidden)
        self.out_layer = nn.Linear(n_hidden, 1)

    def forward(self, r):
        h = torch.relu(self.in_layer(r))
        y = self.out_layer(h)
        return y
"""
TRAIN = """
def train(net, loss_fn, train_data, train_labels, n_iter=50, learning_rate=1e-4,
          test_data=None, test_labels=None, L2_penalty=0, L1_penalty=0):
    optimizer = optim.SGD(net.parameters(), lr=learning_rate)
    train_loss = []
    test_loss = []
    for i in range(n_iter):
        out = net(train_data)
        if L2_penalty == 0 and L1_penalty == 0:
            loss = loss_fn(out, train_labels)
        else:
            loss = loss_fn(out, train_labels, net.in_layer.weight, L2_penalty, L1_penalty)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        train_loss.append(loss.item())
        if test_data is not None:
            out_test = net(test_data)
            if L2_penalty == 0 and L1_penalty == 0:
                loss_test = loss_fn(out_test, test_labels)
            else:
                loss_test = loss_fn(out_test, test_labels, net.in_layer.weight, L2_penalty, L1_penalty)
            test_loss.append(loss_test.item())
    if test_data is None:
        return train_loss
    else:
        return train_loss, test_loss
"""
REG = """
def regularized_loss(output, target, weights, L2_penalty=0, L1_penalty=0):
    loss_fn = nn.NLLLoss()
    loss = loss_fn(output, target)
    L2 = L2_penalty * torch.square(weights).sum()
    L1 = L1_penalty * torch.abs(weights).sum()
    loss += L1 + L2
    return loss
"""
BASE = {"DeepNetReLU": DEEPNET, "train": TRAIN, "regularized_loss": REG}

MUTANTS = [
    ("DeepNetReLU", "relu_missing", edit(DEEPNET, "h = torch.relu(self.in_layer(r))", "h = self.in_layer(r)")),
    ("DeepNetReLU", "relu_on_output_too", edit(DEEPNET, "y = self.out_layer(h)", "y = torch.relu(self.out_layer(h))")),
    (
        "DeepNetReLU",
        "relu_on_output_instead",
        edit(
            edit(DEEPNET, "h = torch.relu(self.in_layer(r))", "h = self.in_layer(r)"),
            "y = self.out_layer(h)",
            "y = torch.relu(self.out_layer(h))",
        ),
    ),
    ("DeepNetReLU", "sigmoid_instead_of_relu", edit(DEEPNET, "torch.relu(", "torch.sigmoid(")),
    (
        "DeepNetReLU",
        "hidden_size_hard_coded",
        edit(
            edit(DEEPNET, "nn.Linear(n_inputs, n_hidden)", "nn.Linear(n_inputs, 10)"),
            "nn.Linear(n_hidden, 1)",
            "nn.Linear(10, 1)",
        ),
    ),
    ("DeepNetReLU", "leaky_relu", edit(DEEPNET, "torch.relu(self.in_layer(r))", "F.leaky_relu(self.in_layer(r))")),
    ("DeepNetReLU", "two_outputs", edit(DEEPNET, "nn.Linear(n_hidden, 1)", "nn.Linear(n_hidden, 2)")),
    ("train", "zero_grad_forgotten", edit(TRAIN, "        optimizer.zero_grad()\n", "")),
    ("train", "step_forgotten", edit(TRAIN, "        optimizer.step()\n", "")),
    ("train", "appends_the_loss_tensor", edit(TRAIN, "train_loss.append(loss.item())", "train_loss.append(loss)")),
    ("train", "learning_rate_hard_coded", edit(TRAIN, "lr=learning_rate", "lr=1e-4")),
    (
        "train",
        "penalties_ignored",
        edit(
            TRAIN,
            "loss = loss_fn(out, train_labels, net.in_layer.weight, L2_penalty, L1_penalty)",
            "loss = loss_fn(out, train_labels)",
        ),
    ),
    (
        "train",
        "test_loss_before_the_step",
        edit(
            edit(
                TRAIN,
                "        if test_data is not None:\n            out_test",
                "        if False:\n            out_test",
            ),
            "        optimizer.zero_grad()\n",
            "        if test_data is not None:\n            test_loss.append(loss_fn(net(test_data), test_labels).item())\n"
            "        optimizer.zero_grad()\n",
        ),
    ),
    (
        "train",
        "step_before_backward",
        edit(
            TRAIN,
            "        loss.backward()\n        optimizer.step()\n",
            "        optimizer.step()\n        loss.backward()\n",
        ),
    ),
    (
        "train",
        "never_returns_test_loss",
        edit(
            TRAIN,
            "    if test_data is None:\n        return train_loss\n    else:\n        return train_loss, test_loss",
            "    return train_loss",
        ),
    ),
    ("regularized_loss", "l1_squared", edit(REG, "torch.abs(weights).sum()", "torch.square(torch.abs(weights)).sum()")),
    ("regularized_loss", "l2_not_squared", edit(REG, "torch.square(weights).sum()", "torch.abs(weights).sum()")),
    (
        "regularized_loss",
        "means_not_sums",
        edit(
            edit(REG, "torch.square(weights).sum()", "torch.square(weights).mean()"),
            "torch.abs(weights).sum()",
            "torch.abs(weights).mean()",
        ),
    ),
    (
        "regularized_loss",
        "penalties_swapped",
        edit(edit(REG, "L2 = L2_penalty *", "L2 = L1_penalty *"), "L1 = L1_penalty *", "L1 = L2_penalty *"),
    ),
    (
        "regularized_loss",
        # (nn.CrossEntropyLoss instead of NLLLoss is no mutant: on log-probabilities the two agree exactly.)
        "nll_summed",
        edit(REG, "loss_fn = nn.NLLLoss()", "loss_fn = nn.NLLLoss(reduction='sum')"),
    ),
    ("regularized_loss", "l2_is_the_norm", edit(REG, "torch.square(weights).sum()", "torch.norm(weights)")),
    ("regularized_loss", "penalties_never_added", edit(REG, "    loss += L1 + L2\n", "")),
]

VARIANTS = [
    (
        "DeepNetReLU",
        "relu_module",
        """
class DeepNetReLU(nn.Module):
    def __init__(self, n_inputs, n_hidden):
        super().__init__()
        self.in_layer = nn.Linear(n_inputs, n_hidden)
        self.relu = nn.ReLU()
        self.out_layer = nn.Linear(n_hidden, 1)

    def forward(self, r):
        return self.out_layer(self.relu(self.in_layer(r)))
""",
    ),
    ("DeepNetReLU", "functional_relu", edit(DEEPNET, "torch.relu(self.in_layer(r))", "F.relu(self.in_layer(r))")),
    ("DeepNetReLU", "clamp", edit(DEEPNET, "torch.relu(self.in_layer(r))", "self.in_layer(r).clamp(min=0)")),
    (  # each unit's weighted sum written out: equal to nn.Linear's up to float32 rounding, not bit for bit
        "DeepNetReLU",
        "weighted_sums_by_hand",
        edit(
            DEEPNET,
            "torch.relu(self.in_layer(r))",
            "torch.relu((r.unsqueeze(-2) * self.in_layer.weight).sum(-1) + self.in_layer.bias)",
        ),
    ),
    (
        "train",
        "net_zero_grad_and_no_grad_test",
        """
def train(net, loss_fn, train_data, train_labels, n_iter=50, learning_rate=1e-4,
          test_data=None, test_labels=None, L2_penalty=0, L1_penalty=0):
    opt = torch.optim.SGD(params=net.parameters(), lr=learning_rate)
    penalised = L2_penalty != 0 or L1_penalty != 0

    def compute(data, labels):
        out = net(data)
        if penalised:
            return loss_fn(out, labels, net.in_layer.weight, L2_penalty, L1_penalty)
        return loss_fn(out, labels)

    train_loss, test_loss = [], []
    for _ in range(n_iter):
        net.zero_grad()
        loss = compute(train_data, train_labels)
        loss.backward()
        opt.step()
        train_loss.append(float(loss))
        if test_data is not None:
            with torch.no_grad():
                test_loss.append(compute(test_data, test_labels).item())
    return train_loss if test_data is None else (train_loss, test_loss)
""",
    ),
    (
        "train",
        "tutorial_with_progress_prints",
        edit(
            TRAIN,
            "        train_loss.append(loss.item())\n",
            "        train_loss.append(loss.item())\n        if (i + 1) % max(1, n_iter // 5) == 0:\n"
            "            print(f'iteration {i + 1}/{n_iter} | loss: {loss.item():.3f}')\n",
        ),
    ),
    (
        "train",
        "set_to_none_and_tuple_return",
        edit(
            edit(TRAIN, "optimizer.zero_grad()", "optimizer.zero_grad(set_to_none=True)"),
            "        return train_loss, test_loss",
            "        return (train_loss, test_loss)",
        ),
    ),
    (
        "regularized_loss",
        "functional_nll_and_powers",
        """
def regularized_loss(output, target, weights, L2_penalty=0, L1_penalty=0):
    return F.nll_loss(output, target) + L2_penalty * (weights ** 2).sum() + L1_penalty * weights.abs().sum()
""",
    ),
    (
        "regularized_loss",
        "linalg_norm_squared",
        """
def regularized_loss(output, target, weights, L2_penalty=0, L1_penalty=0):
    nll = -output[torch.arange(len(target)), target].mean()
    return nll + L2_penalty * torch.linalg.norm(weights) ** 2 + L1_penalty * torch.linalg.norm(weights.flatten(), ord=1)
""",
    ),
    (
        "regularized_loss",
        "keyword_style",
        """
def regularized_loss(output, target, weights, L2_penalty=0, L1_penalty=0):
    loss = nn.NLLLoss(reduction="mean")(input=output, target=target)
    loss = loss + torch.sum(torch.pow(weights, 2)) * L2_penalty
    return loss + torch.sum(torch.abs(weights)) * L1_penalty
""",
    ),
]
