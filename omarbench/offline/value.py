"""The batched state-value network V(o), for algorithms that learn one (MA-IQL), built from the pieces
of :mod:`omarbench.offline.nn`."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from omarbench.offline.nn import FlatParams, _bn_train, default_linear_init_


class BatchedValue:
    """V(o) for M members: BatchNorm1d(obs) → Linear-ReLU-Linear-ReLU-Linear(1), for algorithms with a
    state-value network (IQL). Like the critics it always normalises with the pass's batch statistics.
    ``obs [M, B, obs_dim] → values [M, B]``."""

    def __init__(self, n_members: int, obs_dim: int, hidden: int = 64, device="cpu"):
        self.n_members, self.obs_dim, self.hidden = n_members, obs_dim, hidden
        M, h = n_members, hidden
        self.params = FlatParams(
            {
                "bn_w": (M, obs_dim), "bn_b": (M, obs_dim),
                "w1": (M, h, obs_dim), "b1": (M, 1, h),
                "w2": (M, h, h), "b2": (M, 1, h),
                "w3": (M, 1, h), "b3": (M, 1, 1),
            },
            M, device,
        )

    def init_(self, gens: Sequence[torch.Generator]) -> None:
        """BN weight 1, bias 0; every Linear at PyTorch's default."""
        p = self.params.p
        with torch.no_grad():
            p["bn_w"].fill_(1.0)
            p["bn_b"].zero_()
            default_linear_init_(p["w1"], p["b1"], self.obs_dim, gens)
            default_linear_init_(p["w2"], p["b2"], self.hidden, gens)
            default_linear_init_(p["w3"], p["b3"], self.hidden, gens)

    def forward(self, obs: torch.Tensor, detached: bool = False) -> torch.Tensor:
        p = self.params.c if detached else self.params.p
        x, _, _ = _bn_train(obs, p["bn_w"], p["bn_b"], dims=(1,))
        h = torch.relu(torch.baddbmm(p["b1"], x, p["w1"].mT))
        h = torch.relu(torch.baddbmm(p["b2"], h, p["w2"].mT))
        # padded to two output columns, as the critics' output layer (same rounding alone and batched)
        w3 = torch.nn.functional.pad(p["w3"], (0, 0, 0, 1)).mT
        b3 = torch.nn.functional.pad(p["b3"], (0, 1))
        return torch.baddbmm(b3, h, w3)[..., 0]

    __call__ = forward
