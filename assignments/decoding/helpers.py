"""Helpers the `decoding` checks send into workers (named `helpers` in assignment.toml): a network for `train` to
optimise and a loss with the penalty arguments. None of them is the answer to an exercise; the engine rebuilds
this module in each worker from its source, under the name pickle knows it by.
"""

from __future__ import annotations

import torch
from torch import nn


class TanhNet(nn.Module):
    """One tanh hidden layer, with the attribute names `train` relies on (`in_layer`, `out_layer`)."""

    def __init__(self, n_inputs: int, n_hidden: int) -> None:
        super().__init__()
        self.in_layer = nn.Linear(n_inputs, n_hidden)
        self.out_layer = nn.Linear(n_hidden, 1)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        return self.out_layer(torch.tanh(self.in_layer(r)))


def penalized_mse(
    output: torch.Tensor, target: torch.Tensor, weights: torch.Tensor, L2_penalty: float = 0, L1_penalty: float = 0
) -> torch.Tensor:
    """A loss with the five-argument signature `train` passes when penalties are given."""
    return nn.functional.mse_loss(output, target) + (L2_penalty + 2 * L1_penalty) * weights.norm()
