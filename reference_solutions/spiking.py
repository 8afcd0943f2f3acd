"""Reference solutions for the `spiking` assignment (Goal-driven deep learning: a spiking CNN)."""

import math

import torch
import torch.nn.functional as F
from torch import nn

TAU_M = 0.02  # membrane time constant, s
TAU_REF = 0.004  # refractory period, s
V_THR = 1.0  # threshold, mV
GAMMA = 0.15  # smoothing of the soft maximum rho


def lif(x):
    """Smoothed LIF steady-state rate 1 / (tau_ref + tau_m * log(1 + V_thr / rho(x - V_thr)))."""
    # rho(z) = gamma * log(1 + exp(z / gamma)) + 1e-20; softplus with beta = 1 / gamma is that soft maximum
    # without the overflow of exp for large z, so forward values and gradients stay finite.
    rho = F.softplus(x - V_THR, beta=1.0 / GAMMA) + 1e-20
    # log(1 + V_thr / rho) written as softplus(log V_thr - log rho): the same value, but its gradient never
    # forms V_thr / rho**2, which overflows float32 (and then gives NaN) once rho sinks towards 1e-20.
    log_term = F.softplus(math.log(V_THR) - torch.log(rho))
    return 1.0 / (TAU_REF + TAU_M * log_term)


class LIF(nn.Module):
    """Module wrapper of `lif`: input (N, *), output of the same shape."""

    def forward(self, x):
        return lif(x)


class LIFNet(nn.Module):
    """The tutorial's CNN with the LIF activation after the first convolution only; (N, 1, 28, 28) -> (N, 10)."""

    def __init__(self):
        super().__init__()
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
        conv1 = self.conv_stack1(x)  # (N, 16, 14, 14)
        conv2 = self.conv_stack2(conv1)  # (N, 32, 5, 5)
        return self.linear_stack(conv2)  # (N, 10)
