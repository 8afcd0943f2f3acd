"""mlp: approximate_function, Net, cross_entropy_loss, shuffle_and_split."""

HEADER = "import math\nimport numpy as np\nimport torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"

APPROX = """
def approximate_function(x_train, y_train):
    n_relus = x_train.shape[0] - 1
    x = torch.linspace(torch.min(x_train), torch.max(x_train), 1000)
    b = -x_train[:-1]
    relu_acts = torch.zeros((n_relus, x.shape[0]))
    for i_relu in range(n_relus):
        relu_acts[i_relu, :] = torch.relu(x + b[i_relu])
    combination_weights = torch.zeros((n_relus,))
    prev_slope = 0
    for i in range(n_relus):
        delta_x = x_train[i + 1] - x_train[i]
        slope = (y_train[i + 1] - y_train[i]) / delta_x
        combination_weights[i] = slope - prev_slope
        prev_slope = slope
    y_hat = combination_weights @ relu_acts
    return y_hat, relu_acts, x
"""
NET = """
class Net(nn.Module):
    def __init__(self, actv, input_feature_num, hidden_unit_nums, output_feature_num):
        super().__init__()
        self.input_feature_num = input_feature_num
        self.mlp = nn.Sequential()
        in_num = input_feature_num
        for i in range(len(hidden_unit_nums)):
            out_num = hidden_unit_nums[i]
            layer = nn.Linear(in_num, out_num)
            in_num = out_num
            self.mlp.add_module('Linear_%d' % i, layer)
            actv_layer = eval('nn.%s' % actv)
            self.mlp.add_module('Activation_%d' % i, actv_layer)
        out_layer = nn.Linear(in_num, output_feature_num)
        self.mlp.add_module('Output_Linear', out_layer)

    def forward(self, x):
        x = x.view(-1, self.input_feature_num)
        return self.mlp(x)
"""
CE = """
def cross_entropy_loss(x, labels):
    x_of_labels = torch.zeros(len(labels))
    for i, label in enumerate(labels):
        x_of_labels[i] = x[i, label]
    losses = -x_of_labels + torch.log(torch.sum(torch.exp(x), axis=1))
    avg_loss = torch.mean(losses)
    return avg_loss
"""
SPLIT = """
def shuffle_and_split_data(X, y, seed):
    torch.manual_seed(seed)
    N = X.shape[0]
    shuffled_indices = torch.randperm(N)
    X = X[shuffled_indices]
    y = y[shuffled_indices]
    test_size = int(0.2 * N)
    X_test = X[:test_size]
    y_test = y[:test_size]
    X_train = X[test_size:]
    y_train = y[test_size:]
    return X_test, y_test, X_train, y_train
"""
BASE = {"approximate_function": APPROX, "Net": NET, "cross_entropy_loss": CE, "shuffle_and_split": SPLIT}


def edit(code: str, old: str, new: str) -> str:
    assert old in code, old
    return code.replace(old, new, 1)


MUTANTS = [
    ("approximate_function", "nine_relus_hard_coded", edit(APPROX, "n_relus = x_train.shape[0] - 1", "n_relus = 9")),
    ("approximate_function", "bias_sign_flipped", edit(APPROX, "b = -x_train[:-1]", "b = x_train[:-1]")),
    ("approximate_function", "weights_are_slopes", edit(APPROX, "= slope - prev_slope", "= slope")),
    ("approximate_function", "prev_slope_never_updated", edit(APPROX, "        prev_slope = slope\n", "")),
    (
        "approximate_function",
        "x_range_of_the_tutorial",
        edit(
            APPROX, "torch.linspace(torch.min(x_train), torch.max(x_train), 1000)", "torch.linspace(0, 2 * np.pi, 1000)"
        ),
    ),
    (
        "approximate_function",
        "return_order_swapped",
        edit(APPROX, "return y_hat, relu_acts, x", "return relu_acts, y_hat, x"),
    ),
    (
        "approximate_function",
        "a_relu_per_point",
        edit(APPROX, "n_relus = x_train.shape[0] - 1", "n_relus = x_train.shape[0]"),
    ),
    ("Net", "no_activation", edit(NET, "            self.mlp.add_module('Activation_%d' % i, actv_layer)\n", "")),
    (
        "Net",
        "activation_after_output",
        edit(
            NET,
            "        self.mlp.add_module('Output_Linear', out_layer)\n",
            "        self.mlp.add_module('Output_Linear', out_layer)\n        self.mlp.add_module('Out_act', eval('nn.%s' % actv))\n",
        ),
    ),
    ("Net", "relu_hard_coded", edit(NET, "actv_layer = eval('nn.%s' % actv)", "actv_layer = nn.ReLU()")),
    ("Net", "no_reshape", edit(NET, "        x = x.view(-1, self.input_feature_num)\n", "")),
    ("Net", "in_features_never_updated", edit(NET, "            in_num = out_num\n", "")),
    ("Net", "last_hidden_layer_dropped", edit(NET, "range(len(hidden_unit_nums))", "range(len(hidden_unit_nums) - 1)")),
    (
        "Net",
        "output_layer_from_input_size",
        edit(NET, "nn.Linear(in_num, output_feature_num)", "nn.Linear(input_feature_num, output_feature_num)"),
    ),
    ("cross_entropy_loss", "summed_not_averaged", edit(CE, "torch.mean(losses)", "torch.sum(losses)")),
    (
        "cross_entropy_loss",
        "log_forgotten",
        edit(CE, "torch.log(torch.sum(torch.exp(x), axis=1))", "torch.sum(torch.exp(x), axis=1)"),
    ),
    (
        "cross_entropy_loss",
        "sign_flipped",
        edit(CE, "losses = -x_of_labels + torch.log", "losses = x_of_labels - torch.log"),
    ),
    (
        "cross_entropy_loss",
        "summed_over_the_batch_axis",
        edit(CE, "torch.log(torch.sum(torch.exp(x), axis=1))", "torch.log(torch.sum(torch.exp(x)))"),
    ),
    (
        "cross_entropy_loss",
        "pytorch_builtin",
        "\ndef cross_entropy_loss(x, labels):\n    return F.cross_entropy(x, labels)\n",
    ),
    ("cross_entropy_loss", "returns_a_float", edit(CE, "return avg_loss", "return avg_loss.item()")),
    (
        "cross_entropy_loss",
        "builtin_through_a_helper",
        "\ndef _helper(x, labels):\n    return nn.CrossEntropyLoss()(x, labels)\n\ndef cross_entropy_loss(x, labels):\n"
        "    return _helper(x, labels)\n",
    ),
    (
        "shuffle_and_split",
        "no_shuffle",
        edit(SPLIT, "shuffled_indices = torch.randperm(N)", "shuffled_indices = torch.arange(N)"),
    ),
    (
        "shuffle_and_split",
        "test_rows_from_the_end",
        edit(
            SPLIT,
            "X_test = X[:test_size]\n    y_test = y[:test_size]\n    X_train = X[test_size:]\n    y_train = y[test_size:]",
            "X_test = X[-test_size:]\n    y_test = y[-test_size:]\n    X_train = X[:-test_size]\n    y_train = y[:-test_size]",
        ),
    ),
    (
        "shuffle_and_split",
        "x_and_y_shuffled_differently",
        edit(SPLIT, "y = y[shuffled_indices]", "y = y[torch.randperm(N)]"),
    ),
    ("shuffle_and_split", "seed_forgotten", edit(SPLIT, "    torch.manual_seed(seed)\n", "")),
    ("shuffle_and_split", "test_size_rounded_up", edit(SPLIT, "int(0.2 * N)", "math.ceil(0.2 * N)")),
    ("shuffle_and_split", "eighty_percent_test", edit(SPLIT, "int(0.2 * N)", "int(0.8 * N)")),
    (
        "shuffle_and_split",
        "numpy_permutation",
        edit(
            SPLIT,
            "shuffled_indices = torch.randperm(N)",
            "np.random.seed(seed)\n    shuffled_indices = torch.from_numpy(np.random.permutation(N))",
        ),
    ),
    (
        "shuffle_and_split",
        "return_order_swapped",
        edit(SPLIT, "return X_test, y_test, X_train, y_train", "return X_train, y_train, X_test, y_test"),
    ),
]

VARIANTS = [
    (
        "approximate_function",
        "vectorised",
        """
def approximate_function(x_train, y_train):
    xs, ys = x_train.flatten(), y_train.flatten()
    x = torch.linspace(xs.min(), xs.max(), 1000)
    relu_acts = torch.relu(x.unsqueeze(0) - xs[:-1].unsqueeze(1))
    slopes = (ys[1:] - ys[:-1]) / (xs[1:] - xs[:-1])
    weights = slopes - torch.cat([torch.zeros(1), slopes[:-1]])
    return weights @ relu_acts, relu_acts, x
""",
    ),
    (
        "approximate_function",
        "float64_throughout",
        """
def approximate_function(x_train, y_train):
    xt = x_train.reshape(-1).double()
    yt = y_train.reshape(-1).double()
    x = torch.linspace(float(xt.min()), float(xt.max()), steps=1000, dtype=torch.float64)
    acts = torch.stack([torch.clamp(x - xt[i], min=0) for i in range(len(xt) - 1)])
    y_hat = torch.zeros_like(x)
    prev = 0.0
    for i in range(len(xt) - 1):
        slope = (yt[i + 1] - yt[i]) / (xt[i + 1] - xt[i])
        y_hat = y_hat + (slope - prev) * acts[i]
        prev = slope
    return y_hat.float(), acts.float(), x.float()
""",
    ),
    (
        "approximate_function",
        "functional_relu_keywords",
        """
def approximate_function(x_train, y_train):
    n_relus = x_train.shape[0] - 1
    x = torch.linspace(start=x_train.min().item(), end=x_train.max().item(), steps=1000)
    b = -x_train[:n_relus, 0]
    relu_acts = F.relu(x[None, :] + b[:, None])
    slope = torch.diff(y_train[:, 0]) / torch.diff(x_train[:, 0])
    w = torch.diff(slope, prepend=torch.tensor([0.0]))
    return torch.matmul(w, relu_acts), relu_acts, x
""",
    ),
    (
        "approximate_function",
        "transposes_and_matmul",  # as a course notebook writes it: 2-space indents, .T on a 1-D tensor (a no-op)
        """
def approximate_function(x_train, y_train):
  n_relus = x_train.shape[0] - 1
  x = torch.linspace(torch.min(x_train), torch.max(x_train), 1000)
  b = -x_train[:-1]
  relu_acts = torch.zeros((n_relus, x.shape[0]))
  for i_relu in range(n_relus):
    relu_acts[i_relu, :] = torch.relu(x + b[i_relu])
  combination_weights = torch.zeros((n_relus, ))
  prev_slope = 0
  for i in range(n_relus):
    delta_x = x_train[i+1] - x_train[i]
    slope = (y_train[i+1] - y_train[i]) / delta_x
    combination_weights[i] = slope - prev_slope
    prev_slope = slope
  y_hat = torch.matmul(relu_acts.T, combination_weights.T)
  return y_hat, relu_acts, x
""",
    ),
    (
        "Net",
        "layer_list_in_sequential",
        """
class Net(nn.Module):
    def __init__(self, actv, input_feature_num, hidden_unit_nums, output_feature_num):
        super().__init__()
        self.input_feature_num = input_feature_num
        sizes = [input_feature_num, *hidden_unit_nums]
        layers = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(n_in, n_out), eval(f"nn.{actv}")]
        layers.append(nn.Linear(sizes[-1], output_feature_num))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x):
        return self.mlp(x.reshape(-1, self.input_feature_num))
""",
    ),
    (
        "Net",
        "module_list_one_shared_activation",
        """
class Net(nn.Module):
    def __init__(self, actv, input_feature_num, hidden_unit_nums, output_feature_num):
        super().__init__()
        self.n_in = input_feature_num
        sizes = [input_feature_num] + list(hidden_unit_nums) + [output_feature_num]
        self.layers = nn.ModuleList([nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])])
        self.act = eval("nn." + actv)

    def forward(self, x):
        h = torch.flatten(x, start_dim=1) if x.dim() > 2 else x
        h = h.reshape(-1, self.n_in)
        for layer in self.layers[:-1]:
            h = self.act(layer(h))
        return self.layers[-1](h)
""",
    ),
    (
        "Net",
        "keyword_arguments",
        """
class Net(nn.Module):
    def __init__(self, actv, input_feature_num, hidden_unit_nums, output_feature_num):
        super(Net, self).__init__()
        self.input_feature_num = input_feature_num
        self.mlp = nn.Sequential()
        in_num = input_feature_num
        for i, out_num in enumerate(hidden_unit_nums):
            self.mlp.add_module(name=f"Linear_{i}", module=nn.Linear(in_features=in_num, out_features=out_num))
            self.mlp.add_module(name=f"Activation_{i}", module=eval("nn.%s" % actv))
            in_num = out_num
        self.mlp.add_module(name="Output_Linear", module=nn.Linear(in_features=in_num, out_features=output_feature_num))

    def forward(self, x):
        return self.mlp(x.view(-1, self.input_feature_num))
""",
    ),
    (
        "cross_entropy_loss",
        "gather_logsumexp",
        """
def cross_entropy_loss(x, labels):
    picked = x.gather(dim=1, index=labels.view(-1, 1)).squeeze(1)
    return (torch.logsumexp(x, dim=1) - picked).mean()
""",
    ),
    (
        "cross_entropy_loss",
        "fancy_indexing_stable",
        """
def cross_entropy_loss(x, labels):
    m = x.max(dim=1, keepdim=True).values
    log_sum = m.squeeze(1) + torch.log(torch.exp(x - m).sum(dim=1))
    return torch.mean(log_sum - x[range(len(labels)), labels])
""",
    ),
    (
        "cross_entropy_loss",
        "one_hot",
        """
def cross_entropy_loss(x, labels):
    one_hot = F.one_hot(labels, num_classes=x.shape[1]).to(x.dtype)
    losses = -(one_hot * x).sum(1) + torch.log(torch.exp(x).sum(1))
    return losses.sum() / x.shape[0]
""",
    ),
    (
        "shuffle_and_split",
        "floor_division_and_split",
        """
def shuffle_and_split_data(X, y, seed):
    torch.manual_seed(seed)
    perm = torch.randperm(len(X))
    n_test = len(X) // 5
    X_test, X_train = X[perm].split([n_test, len(X) - n_test])
    y_test, y_train = y[perm].split([n_test, len(X) - n_test])
    return X_test, y_test, X_train, y_train
""",
    ),
    (
        "shuffle_and_split",
        "index_slices",
        """
def shuffle_and_split_data(X, y, seed):
    torch.manual_seed(seed)
    idx = torch.randperm(X.shape[0])
    cut = int(X.shape[0] * 0.2)
    return X[idx[:cut]], y[idx[:cut]], X[idx[cut:]], y[idx[cut:]]
""",
    ),
    (
        "shuffle_and_split",
        "keyword_randperm",
        """
def shuffle_and_split_data(X, y, seed):
    torch.manual_seed(seed)
    order = torch.randperm(n=X.size(0))
    X, y = X[order], y[order]
    test_size = int(0.2 * X.size(0))
    return X[:test_size], y[:test_size], X[test_size:], y[test_size:]
""",
    ),
]
