"""MA-IQL: independent implicit Q-learning per agent (Kostrikov, Nair & Levine, "Offline Reinforcement
Learning with Implicit Q-Learning", ICLR 2022) on the zoo's core.

IQL never queries the critic at actions outside the dataset. Per learner it keeps a state-value network
V(o) besides the twin critics, and one update round is:

* value: expectile regression of V(o) on the target critics' min_j Q̄_j(o, a) at dataset actions,
  loss ``mean |τ − 1(u < 0)| u²`` with ``u = min_j Q̄_j(o, a) − V(o)`` and expectile τ;
* critics: TD regression on ``y = r + γ (1 − d) V(o′)`` (the new V; no next action is needed);
* actor: advantage-weighted regression to dataset actions, ``mean_B w · mean (π(o) − a)²`` with
  ``w = min(exp(β (min_j Q̄_j(o, a) − V(o))), 100)``. The paper's AWR maximises a Gaussian policy's
  log-likelihood of the dataset action; with the zoo's deterministic tanh actor that is the weighted
  squared error above (the Gaussian log-likelihood with a fixed variance, up to a constant);
* then the shared soft target update of the critics and the actor.

Values from the paper's locomotion settings: expectile τ = 0.7 and inverse temperature β = 3.0
(its appendix; AntMaze used 0.9 and 10), and its code's clip of the exponentiated advantage at 100.
Everything else (networks, Adam at 0.01, batch, γ = 0.95, gradient clipping, soft updates) is the zoo's
shared TD3 core, so the comparison with the other algorithms changes only the objectives.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from omarbench.errors import UsageError
from omarbench.offline.algos.core import Algorithm, Batch, Learner, TD3Config


@dataclass
class IQLConfig(TD3Config):
    expectile: float = 0.7  # τ of the value's expectile regression (the paper's locomotion value)
    beta: float = 3.0  # inverse temperature of the advantage weights (the paper's locomotion value)
    max_weight: float = 100.0  # clip of exp(β·A), as in the authors' code

    def validate(self) -> None:
        super().validate()
        if not 0 < self.expectile < 1:
            raise UsageError(f"expectile must be in (0, 1), got {self.expectile}")
        if not self.beta >= 0 or not self.max_weight > 0:
            raise UsageError(f"need beta >= 0 and max_weight > 0, got {self.beta}, {self.max_weight}")


class IQL(Algorithm):
    name = "MA-IQL"
    aliases = ("iql", "ma-iql", "maiql")
    config_cls = IQLConfig
    uses_value = True
    cfg: IQLConfig

    def value_loss(self, L: Learner, b: Batch) -> torch.Tensor:
        with torch.no_grad():
            q = L.target_q(b.obs, b.act).amin(1)  # [M, B]
        u = q - L.value(b.obs)
        weight = torch.where(u < 0, 1.0 - self.cfg.expectile, self.cfg.expectile)
        return (weight * u.square()).mean(1)

    def critic_target(self, L: Learner, b: Batch) -> torch.Tensor:
        return b.rew + self.cfg.gamma * (1.0 - b.done) * L.value(b.next_obs)

    def actor_loss(self, L: Learner, b: Batch, pi: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            adv = L.target_q(b.obs, b.act).amin(1) - L.value(b.obs)
            w = torch.exp(self.cfg.beta * adv).clamp_(max=self.cfg.max_weight)
        return (w * (pi - b.act).square().mean(2)).mean(1)
