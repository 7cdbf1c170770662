"""MA-ICQ: implicit constraint Q-learning (Yang et al., "Believe What You See", NeurIPS 2021), per agent.

Adapted to decentralised critics and continuous actions as docs/protocol.md §5 describes:

* critic target uses only dataset actions: ``y_i = r_i + γ (1 − d_i) · N · w_i · min_j Q̄_j(o′_i, a′_i)``,
  with ``w = softmax_batch(min_j Q̄_j(o′, a′) / β_Q)`` over the N bootstrapping rows of the minibatch
  (the self-normalised importance weight of ICQ; ``N · w`` averages 1) and a′ the dataset's next action;
* actor: advantage-weighted regression to dataset actions, ``Σ_batch w_i mean (π(o_i) − a_i)²`` with
  ``w = softmax_batch((Q1(o, a) − Q1(o, π(o))) / β)``.

The paper gives no β. ICQ's own multi-agent code uses β = 0.1 for the actor and β_Q = 1000 for the critic
on SMAC, whose returns are normalised to about 20; MPE's per-step rewards are about ten times larger, so
omarbench scales both by ten: β = 1.0 and β_Q = 10,000. The critic's scale matters: the weighted target
exceeds the plain one by about Var(Q̄)/β_Q, which grows with Q̄ itself. With β_Q = 1000, on spread (rewards
of about 19 per step and agent, Q̄ of several hundred) that excess fed on itself and every seed's critic
diverged late in training (mean Q̄ 350 → 10⁶ within 400 rounds, the policy falling to random play); with
10,000 it levels off. Rows without a next action (the final step of a truncated episode) are not
sampled, as in ICQ's own data loader.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from omarbench.offline.algos.core import Algorithm, TD3Config


@dataclass
class ICQConfig(TD3Config):
    beta: float = 1.0  # actor softmax temperature (ICQ-MA code: 0.1 on SMAC's ~10x smaller returns)
    beta_q: float = 10000.0  # critic softmax temperature (ICQ-MA code: 1000 on SMAC's ~10x smaller returns)


def batch_softmax(values: torch.Tensor, beta: float, mask: torch.Tensor | None = None) -> torch.Tensor:
    """softmax over the minibatch axis (last) of ``values / beta``; masked rows get weight 0. ``[M, B]``."""
    logits = values / beta
    if mask is not None:
        logits = logits.masked_fill(~mask, float("-inf"))
        w = torch.softmax(logits, dim=-1)
        return torch.nan_to_num(w, nan=0.0)  # a member with no unmasked row
    return torch.softmax(logits, dim=-1)


class ICQ(Algorithm):
    name = "MA-ICQ"
    aliases = ("icq", "maicq")
    config_cls = ICQConfig
    needs_next_actions = True

    def critic_target(self, L, b):
        qn = L.target_q(b.next_obs, b.next_act).amin(1)  # [M, B]
        boot = b.done < 0.5
        w = batch_softmax(qn, self.cfg.beta_q, boot)
        n = boot.sum(1, keepdim=True)
        return b.rew + self.cfg.gamma * boot * (n * w * qn)

    def actor_loss(self, L, b, pi):
        with torch.no_grad():
            adv = L.q1(b.obs, b.act) - L.q1(b.obs, pi)
            w = batch_softmax(adv, self.cfg.beta)
        return (w * (pi - b.act).square().mean(2)).sum(1)
