"""MA-CQL: independent TD3 learners with the conservative critic penalty of CQL (Kumar et al., 2020).

Critic loss += α · ( logsumexp_j (Q(o, ã_j) − log 0.5^d) − Q(o, a) ), averaged over the minibatch, for
each twin head, with 10 actions ã_j ~ U(−1, 1)^d per state (the authors' MPE code: the importance term
``log 0.5^d`` is the log-density of the uniform proposal on [−1, 1]^d). The sampled-action pass runs
the critic in train mode, so its BatchNorm uses that pass's own batch statistics; it is computed by
:func:`omarbench.offline.sampled.sampled_logsumexp`, a chunked pass that does its own backward (same values
and gradients as autograd over the full-size activations, several times faster; figures in the README).
α per dataset comes from the preset (docs/protocol.md §5 table). Actor: maximise Q1 (the TD3 skeleton's default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from omarbench.errors import UsageError, bad_choice
from omarbench.offline.algos.core import Algorithm, TD3Config
from omarbench.offline.nn import PRECISIONS


@dataclass
class CQLConfig(TD3Config):
    alpha: float = 1.0  # penalty weight (the authors' default; presets set it per dataset)
    cql_actions: int = 10  # uniform actions per state
    # multiply the sampled-action pass (and OMAR's search) in "fp32" or "bf16"; both feed only a
    # logsumexp / an argmax, and every gradient still accumulates in float32. bf16 pays only on CPUs
    # with bfloat16 instructions (avx512_bf16, AMX); without them it is slower (README, Performance)
    sample_precision: str = "fp32"

    def validate(self) -> None:
        super().validate()
        if self.cql_actions < 1:
            raise UsageError(f"cql_actions must be a positive integer, got {self.cql_actions}")
        if self.sample_precision not in PRECISIONS:
            raise bad_choice("sample_precision", self.sample_precision, PRECISIONS)


def cql_penalty(L, b, q: torch.Tensor, alpha: float, n_actions: int, precision: str = "fp32") -> torch.Tensor:
    """Per-member ``α Σ_heads mean_B(logsumexp_j(Q(o, ã_j) − log 0.5^d) − Q(o, a))``: ``[M]``."""
    M, B, da = b.act.shape
    sampled = L.uniform(B, n_actions, da)
    log_density = da * math.log(0.5)
    lse = L.sampled_logsumexp(b.obs, sampled, log_density, precision)  # Σ_heads mean_B lse, [M]
    return alpha * (lse - q.mean(2).sum(1))


class CQL(Algorithm):
    name = "MA-CQL"
    aliases = ("cql", "macql")
    config_cls = CQLConfig

    def critic_penalty(self, L, b, q):
        return cql_penalty(L, b, q, self.cfg.alpha, self.cfg.cql_actions, self.cfg.sample_precision)
