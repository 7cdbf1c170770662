"""The actor network of the behaviour runs, which is also the shipped prey's (``assets/prey``):
BatchNorm on the input, two hidden layers, tanh output. It lives with the tasks because a task's fixed
prey is one; the collector's MATD3 builds its actors from it."""

from __future__ import annotations

import torch
from torch import nn


def _mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, out_dim)
    )


class Actor(nn.Module):
    """π(o): BatchNorm on the input, MLP, tanh; last layer initialised in U(±3e-3)."""

    def __init__(self, obs_dim: int, act_dim: int = 2, hidden: int = 64):
        super().__init__()
        self.norm = nn.BatchNorm1d(obs_dim)
        self.net = _mlp(obs_dim, hidden, act_dim)
        nn.init.uniform_(self.net[-1].weight, -3e-3, 3e-3)
        nn.init.uniform_(self.net[-1].bias, -3e-3, 3e-3)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(self.norm(obs)))
