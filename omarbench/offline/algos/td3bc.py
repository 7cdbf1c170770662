"""MA-TD3+BC: independent TD3+BC learners (Fujimoto & Gu, "A Minimalist Approach to Offline RL", 2021).

Only the actor objective differs from the TD3 skeleton: maximise ``λ Q1(o, π(o)) / mean|Q1|`` while
staying close to the dataset action, ``− mean (π(o) − a)²``. The OMAR paper ran the authors' TD3+BC
code "with fine-tuned hyperparameters" and does not give them; omarbench keeps TD3+BC's published
λ = 2.5 (docs/protocol.md §5).
"""

from __future__ import annotations

from dataclasses import dataclass

from omarbench.offline.algos.core import Algorithm, TD3Config


@dataclass
class TD3BCConfig(TD3Config):
    lam: float = 2.5  # Fujimoto & Gu (2021), §5: α = 2.5 in their notation


class TD3BC(Algorithm):
    name = "MA-TD3+BC"
    aliases = ("td3+bc", "td3bc", "ma-td3bc", "matd3bc")
    config_cls = TD3BCConfig

    def actor_loss(self, L, b, pi):
        q = L.q1(b.obs, pi)  # [M, B]
        lam = self.cfg.lam / q.abs().mean(1).detach()
        return -lam * q.mean(1) + (pi - b.act).square().mean((1, 2))
