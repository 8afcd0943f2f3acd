"""Reference solutions for the `mlp` assignment (NMA W1D3 Tutorial 1)."""

import torch
from torch import nn


def approximate_function(x_train, y_train):
    """Approximate y(x) by a weighted sum of slope-1 ReLUs; returns (y_hat, relu_acts, x)."""
    x_train = x_train.reshape(-1)  # (N,)
    y_train = y_train.reshape(-1)  # (N,)
    n_relus = x_train.shape[0] - 1

    # x axis points (more than x_train), on the inputs' dtype and device
    x = torch.linspace(torch.min(x_train), torch.max(x_train), 1000, dtype=x_train.dtype, device=x_train.device)

    # One ReLU per training point but the last, hinged at that point
    b = -x_train[:n_relus]  # (n_relus,)
    relu_acts = torch.relu(x[None, :] + b[:, None])  # (n_relus, 1000)

    # Each ReLU adds the change of slope at its hinge
    slopes = torch.diff(y_train) / torch.diff(x_train)  # (n_relus,)
    combination_weights = torch.diff(slopes, prepend=slopes.new_zeros(1))  # (n_relus,)

    y_hat = combination_weights @ relu_acts  # (1000,)
    return y_hat, relu_acts, x


class Net(nn.Module):
    """MLP with the same activation (built from a string such as 'LeakyReLU(0.1)') after every hidden layer."""

    def __init__(self, actv, input_feature_num, hidden_unit_nums, output_feature_num):
        super().__init__()
        self.input_feature_num = input_feature_num  # saved to flatten inputs in forward
        self.mlp = nn.Sequential()

        in_num = input_feature_num
        for i, out_num in enumerate(hidden_unit_nums):
            self.mlp.add_module(f"Linear_{i}", nn.Linear(in_num, out_num))
            # The tutorial builds the activation with eval; only `nn` is visible to the expression.
            self.mlp.add_module(f"Activation_{i}", eval(f"nn.{actv}", {"nn": nn}))
            in_num = out_num
        self.mlp.add_module("Output_Linear", nn.Linear(in_num, output_feature_num))

    def forward(self, x):
        x = x.reshape(-1, self.input_feature_num)  # (B, input_feature_num), whatever the input's shape
        return self.mlp(x)


def cross_entropy_loss(x, labels):
    """Mean over the batch of -x[label] + log(sum(exp(x))), without PyTorch's cross entropy."""
    x_of_labels = x.gather(1, labels.long().unsqueeze(1)).squeeze(1)  # (N,)
    losses = -x_of_labels + torch.logsumexp(x, dim=1)  # (N,)
    return losses.mean()


def shuffle_and_split_data(X, y, seed):
    """Shuffle rows with torch.randperm after torch.manual_seed(seed); returns (X_test, y_test, X_train, y_train)."""
    torch.manual_seed(seed)
    N = X.shape[0]

    shuffled_indices = torch.randperm(N)  # drawn on the CPU generator, whatever X's device
    X = X[shuffled_indices]
    y = y[shuffled_indices]

    test_size = int(0.2 * N)  # 20% for test, rounded down
    return X[:test_size], y[:test_size], X[test_size:], y[test_size:]
