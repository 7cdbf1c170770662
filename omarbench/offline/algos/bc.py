"""BC: behaviour cloning, the floor of the zoo: the actor regresses on dataset actions, no critic.

Same actor network, optimiser, gradient clipping and ``action_l2`` term as the other learners, so the
only difference from them is the missing value function.
"""

from __future__ import annotations

from dataclasses import dataclass

from omarbench.offline.algos.core import Algorithm, TD3Config


@dataclass
class BCConfig(TD3Config):
    pass


class BC(Algorithm):
    name = "BC"
    config_cls = BCConfig
    uses_critic = False

    def actor_loss(self, L, b, pi):
        return (pi - b.act).square().mean((1, 2))
