"""MA-CQL: independent TD3 learners with the conservative critic penalty of CQL (Kumar et al., 2020).

Critic loss += α · ( logsumexp_j (Q(o, ã_j) − log 0.5^d) − Q(o, a) ), averaged over the minibatch, for
each twin head, with 10 actions ã_j ~ U(−1, 1)^d per state (the authors' MPE code: the importance term
``log 0.5^d`` is the log-density of the uniform proposal on [−1, 1]^d). The sampled-action pass runs
the critic in train mode, so its BatchNorm uses that pass's own batch statistics; it is computed by
:func:`omarbench.offline.nn.sampled_logsumexp`, a chunked pass that does its own backward (same values
and gradients as autograd over the full-size activations, several times faster; figures in the README).
α per dataset comes from the preset (docs/protocol.md §5 table). Actor: maximise Q1 (the TD3 skeleton's default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from omarbench.offline.algos.core import Algorithm, TD3Config


@dataclass
class CQLConfig(TD3Config):
    alpha: float = 1.0  # penalty weight (the authors' default; presets set it per dataset)
    cql_actions: int = 10  # uniform actions per state


def cql_penalty(L, b, q: torch.Tensor, alpha: float, n_actions: int) -> torch.Tensor:
    """Per-member ``α Σ_heads mean_B(logsumexp_j(Q(o, ã_j) − log 0.5^d) − Q(o, a))``: ``[M]``."""
    M, B, da = b.act.shape
    sampled = L.uniform(B, n_actions, da)
    log_density = da * math.log(0.5)
    lse = L.sampled_logsumexp(b.obs, sampled, log_density)  # Σ_heads mean_B lse, [M]
    return alpha * (lse - q.mean(2).sum(1))


class CQL(Algorithm):
    name = "MA-CQL"
    aliases = ("cql", "macql")
    config_cls = CQLConfig

    def critic_penalty(self, L, b, q):
        return cql_penalty(L, b, q, self.cfg.alpha, self.cfg.cql_actions)
