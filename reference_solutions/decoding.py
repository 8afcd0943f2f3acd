"""Reference solutions for the `decoding` assignment (NMA W2D1 Tutorial 1)."""

import torch
import torch.nn.functional as F
from torch import nn, optim


class DeepNetReLU(nn.Module):
    """Network with a single hidden layer of ReLUs and one linear output."""

    def __init__(self, n_inputs, n_hidden):
        super().__init__()
        self.in_layer = nn.Linear(n_inputs, n_hidden)  # neural activity --> hidden units
        self.out_layer = nn.Linear(n_hidden, 1)  # hidden units --> output

    def forward(self, r):
        h = torch.relu(self.in_layer(r))  # (N, n_hidden)
        y = self.out_layer(h)  # (N, 1)
        return y


def train(
    net,
    loss_fn,
    train_data,
    train_labels,
    n_iter=50,
    learning_rate=1e-4,
    test_data=None,
    test_labels=None,
    L2_penalty=0,
    L1_penalty=0,
):
    """Full-batch gradient descent with SGD; returns train_loss, or (train_loss, test_loss) given test data."""
    optimizer = optim.SGD(net.parameters(), lr=learning_rate)
    regularized = not (L2_penalty == 0 and L1_penalty == 0)

    def evaluate(data, labels):
        out = net(data)
        if regularized:
            return loss_fn(out, labels, net.in_layer.weight, L2_penalty, L1_penalty)
        return loss_fn(out, labels)

    train_loss = []
    test_loss = []
    for _ in range(n_iter):
        loss = evaluate(train_data, train_labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        train_loss.append(loss.item())

        if test_data is not None:
            with torch.no_grad():
                test_loss.append(evaluate(test_data, test_labels).item())
        # The tutorial prints progress every n_iter // 5 iterations; a reference used for grading stays quiet.

    if test_data is None:
        return train_loss
    return train_loss, test_loss


def regularized_loss(output, target, weights, L2_penalty=0, L1_penalty=0):
    """NLL loss of log-probabilities plus L2 (sum of squares) and L1 (sum of absolute values) weight penalties."""
    loss = F.nll_loss(output, target)
    L2 = L2_penalty * torch.square(weights).sum()
    L1 = L1_penalty * torch.abs(weights).sum()
    return loss + L1 + L2
