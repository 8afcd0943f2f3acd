"""spiking: LIF (lif and LIF), LIFNet."""

from .mlp import edit

HEADER = "import numpy as np\nimport torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"

LIF = """
def lif(x):
    tau_m = 0.02
    tau_ref = 0.004
    V_thr = 1
    gamma = 0.15
    rho = F.softplus(x - V_thr, beta=1 / gamma) + 1e-20
    return 1 / (tau_ref + tau_m * (torch.log(rho + V_thr) - torch.log(rho)))


class LIF(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return lif(x)
"""
LIFNET = """
class LIFNet(nn.Module):
    def __init__(self):
        super(LIFNet, self).__init__()
        self.lif = LIF()
        self.conv_stack1 = nn.Sequential(
            nn.Conv2d(in_channels=1, out_channels=16, kernel_size=(7, 7), padding=3),
            self.lif,
            nn.MaxPool2d(kernel_size=(2, 2), stride=(2, 2)),
        )
        self.conv_stack2 = nn.Sequential(
            nn.Conv2d(in_channels=16, out_channels=32, kernel_size=(7, 7), padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=(2, 2), stride=(2, 2)),
        )
        self.linear_stack = nn.Sequential(
            nn.Flatten(),
            nn.Linear(800, 512),
            nn.ReLU(),
            nn.Linear(512, 10),
        )

    def forward(self, x):
        conv1 = self.conv_stack1(x)
        conv2 = self.conv_stack2(conv1)
        return self.linear_stack(conv2)
"""
BASE = {"LIF": LIF, "LIFNet": LIFNET}

MUTANTS = [
    ("LIF", "refractory_period_missing", edit(LIF, "1 / (tau_ref + tau_m *", "1 / (tau_m *")),
    ("LIF", "plain_softplus", edit(LIF, "beta=1 / gamma", "beta=1")),
    (
        "LIF",
        "gamma_factor_missing",
        edit(LIF, "F.softplus(x - V_thr, beta=1 / gamma)", "torch.log(1 + torch.exp((x - V_thr) / gamma))"),
    ),
    (
        "LIF",
        "log_of_the_ratio_without_one",
        edit(LIF, "(torch.log(rho + V_thr) - torch.log(rho))", "torch.log(V_thr / rho)"),
    ),
    ("LIF", "threshold_not_subtracted", edit(LIF, "F.softplus(x - V_thr,", "F.softplus(x,")),
    ("LIF", "hard_maximum", edit(LIF, "F.softplus(x - V_thr, beta=1 / gamma)", "torch.relu(x - V_thr)")),
    ("LIF", "tau_m_ten_times_too_big", edit(LIF, "tau_m = 0.02", "tau_m = 0.2")),
    (
        "LIF",
        "through_numpy",
        """
def lif(x):
    z = x.detach().cpu().numpy()
    rho = 0.15 * np.logaddexp(0, (z - 1) / 0.15) + 1e-20
    return torch.tensor(1 / (0.004 + 0.02 * np.log1p(1 / rho)), dtype=x.dtype)


class LIF(nn.Module):
    def forward(self, x):
        return lif(x)
""",
    ),
    ("LIF", "module_applies_relu", edit(LIF, "        return lif(x)", "        return torch.relu(x)")),
    ("LIFNet", "relu_after_first_conv", edit(LIFNET, "            self.lif,\n", "            nn.ReLU(),\n")),
    (
        "LIFNet",
        "lif_after_second_conv_too",
        edit(
            LIFNET,
            "nn.Conv2d(in_channels=16, out_channels=32, kernel_size=(7, 7), padding=1),\n            nn.ReLU(),",
            "nn.Conv2d(in_channels=16, out_channels=32, kernel_size=(7, 7), padding=1),\n            LIF(),",
        ),
    ),
    (
        "LIFNet",
        "no_padding_and_resized_linear",
        edit(
            edit(LIFNET, "kernel_size=(7, 7), padding=3)", "kernel_size=(7, 7), padding=0)"),
            "nn.Linear(800, 512)",
            "nn.Linear(288, 512)",
        ),
    ),
    (
        "LIFNet",
        "relu_between_linears_missing",
        edit(
            LIFNET, "            nn.Linear(800, 512),\n            nn.ReLU(),\n", "            nn.Linear(800, 512),\n"
        ),
    ),
    (
        "LIFNet",
        "lif_on_the_logits",
        edit(LIFNET, "        return self.linear_stack(conv2)", "        return lif(self.linear_stack(conv2))"),
    ),
    ("LIFNet", "average_pooling", LIFNET.replace("nn.MaxPool2d(", "nn.AvgPool2d(")),
    (
        "LIFNet",
        "batch_size_hard_coded",
        edit(
            edit(LIFNET, "            nn.Flatten(),\n", ""),
            "return self.linear_stack(conv2)",
            "return self.linear_stack(conv2.view(4, 800))",
        ),
    ),
]

# The tutorial's own solution (the direct formula, torch.pow(..., -1)) is graded verbatim from the seed by
# tests/test_course_solutions.py; these are other correct ways, each as robust as it or more.
VARIANTS = [
    (
        "LIF",
        "where_without_clamping",  # right values; NaN gradients from x = 14.3 up, as the tutorial's (advice only)
        edit(
            LIF,
            "rho = F.softplus(x - V_thr, beta=1 / gamma) + 1e-20",
            "z = x - V_thr\n    rho = torch.where(z > 20 * gamma, z, gamma * torch.log(1 + torch.exp(z / gamma))) + 1e-20",
        ),
    ),
    (
        "LIF",
        "softplus_log1p_pow",  # stable above threshold; the suggested 1e-20 still breaks gradients below (advice)
        """
def lif(x):
    tau_m, tau_ref, V_thr, gamma = 0.02, 0.004, 1, 0.15
    rho = F.softplus(x - V_thr, beta=1 / gamma) + 1e-20
    return torch.pow(tau_ref + tau_m * torch.log1p(torch.div(V_thr, rho)), -1)


class LIF(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return lif(x)
""",
    ),
    (
        "LIF",
        "module_with_softplus_layer",  # log((rho + V) / rho), a reciprocal; the module has its own nn.Softplus
        """
def lif(x, tau_m=0.02, tau_ref=0.004, V_thr=1.0, gamma=0.15):
    rho = gamma * torch.log1p(torch.exp((x - V_thr) / gamma)) + 1e-20
    return torch.reciprocal(tau_ref + tau_m * torch.log((rho + V_thr) / rho))


class LIF(nn.Module):
    def __init__(self, tau_m=0.02, tau_ref=0.004, V_thr=1.0, gamma=0.15):
        super().__init__()
        self.tau_m, self.tau_ref, self.V_thr = tau_m, tau_ref, V_thr
        self.rho = nn.Softplus(beta=1 / gamma)

    def forward(self, x):
        rho = self.rho(x - self.V_thr) + 1e-20
        return 1 / (self.tau_ref + self.tau_m * torch.log1p(self.V_thr / rho))
""",
    ),
    (
        "LIF",
        "softplus_of_log",
        """
def lif(x, tau_m=0.02, tau_ref=0.004, V_thr=1.0, gamma=0.15):
    rho = F.softplus(x - V_thr, beta=1.0 / gamma) + 1e-20
    return 1.0 / (tau_ref + tau_m * F.softplus(np.log(V_thr) - torch.log(rho)))


class LIF(nn.Module):
    def forward(self, x):
        return lif(x)
""",
    ),
    (
        "LIF",
        "float64_inside",
        """
def lif(x):
    z = x.double() - 1.0
    rho = 0.15 * torch.logaddexp(torch.zeros_like(z), z / 0.15) + 1e-20
    rate = 1.0 / (0.004 + 0.02 * torch.log1p(1.0 / rho))
    return rate.to(x.dtype)


class LIF(nn.Module):
    def __init__(self):
        super(LIF, self).__init__()

    def forward(self, x):
        return lif(x)
""",
    ),
    (
        "LIF",
        "torch_where_done_right",
        """
TAU_M, TAU_REF, V_THR, GAMMA = 0.02, 0.004, 1.0, 0.15

def lif(x):
    z = (x - V_THR) / GAMMA
    safe = torch.clamp(z, max=30.0)  # beyond the switch at 20, so the gradient is right at z = 20 too
    rho = GAMMA * torch.where(z > 20.0, z, torch.log1p(torch.exp(safe))) + 1e-20
    return 1 / (TAU_REF + TAU_M * (torch.log(rho + V_THR) - torch.log(rho)))


class LIF(nn.Module):
    def forward(self, x):
        return lif(x)
""",
    ),
    (
        "LIFNet",
        "functional_forward",
        """
class LIFNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 7, padding=3)
        self.conv2 = nn.Conv2d(16, 32, 7, padding=1)
        self.fc1 = nn.Linear(32 * 5 * 5, 512)
        self.fc2 = nn.Linear(512, 10)

    def forward(self, x):
        x = F.max_pool2d(lif(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))
""",
    ),
    (
        "LIFNet",
        "one_sequential",
        """
class LIFNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=7, padding=3), LIF(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, kernel_size=7, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(800, 512), nn.ReLU(), nn.Linear(512, 10),
        )

    def forward(self, x):
        return self.net(x)
""",
    ),
    (
        "LIFNet",
        "shared_relu_and_own_layer_names",
        """
class LIFNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.act = nn.ReLU()
        self.first = nn.Conv2d(1, 16, (7, 7), padding=(3, 3))
        self.second = nn.Conv2d(16, 32, (7, 7), padding=(1, 1))
        self.pool = nn.MaxPool2d((2, 2))
        self.hidden = nn.Linear(800, 512)
        self.out = nn.Linear(512, 10)
        self.spiking = LIF()

    def forward(self, x):
        x = self.pool(self.spiking(self.first(x)))
        x = self.pool(self.act(self.second(x)))
        return self.out(self.act(self.hidden(x.reshape(x.shape[0], -1))))
""",
    ),
]
