"""MA-CQL: independent TD3 learners with the conservative critic penalty of CQL (Kumar et al., 2020).

Critic loss += α · ( logsumexp_j (Q(o, ã_j) − log 0.5^d) − Q(o, a) ), averaged over the minibatch, for
each twin head, with 10 actions ã_j ~ U(−1, 1)^d per state (the authors' MPE code: the importance term
``log 0.5^d`` is the log-density of the uniform proposal on [−1, 1]^d). The sampled-action pass runs
the critic in train mode, so its BatchNorm uses that pass's own batch statistics; it is computed by
:func:`omarbench.offline.sampled.sampled_logsumexp`, a chunked pass that does its own backward (same values
and gradients as autograd over the full-size activations, several times faster; figures in the README).
α per dataset comes from the preset (docs/protocol.md §5 table). Actor: maximise Q1 (the TD3 skeleton's default).

HalfCheetah variant (``cql_sampler="uniform+policy"``, the authors' MaMuJoCo branch, chosen by the task's
preset row): the log-sum-exp runs over 3 × ``cql_actions`` actions per state, all evaluated at o: the
uniform ones (importance term ``log 0.5^d``), and π(o) and π(o′) plus Gaussian noise of standard deviation
``cql_policy_noise`` each, clipped to [−1, 1]. As the authors' code ran, the term subtracted from a
policy sample's Q is the Gaussian *density* of its noise (``cql_policy_shift="density"``, their
``calc_gaussian_pdf``), not its log-density (``"log_density"``, CQL's importance-sampled estimator,
available as an override). The three sets are three critic passes in their code, so each set's action
columns are normalised with its own batch statistics, in the order uniform, π(o), π(o′); the actor runs in
train mode for its samples, updating its running statistics as theirs does.
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
    cql_sampler: str = "uniform"  # "uniform" (the authors' MPE code) or "uniform+policy" (their HalfCheetah code)
    cql_policy_noise: float = 0.2  # "uniform+policy": std of the Gaussian noise on the policy samples
    cql_policy_shift: str = "density"  # "uniform+policy": what Q of a policy sample is lowered by

    def validate(self) -> None:
        super().validate()
        if self.cql_actions < 1:
            raise UsageError(f"cql_actions must be a positive integer, got {self.cql_actions}")
        if self.sample_precision not in PRECISIONS:
            raise bad_choice("sample_precision", self.sample_precision, PRECISIONS)
        if self.cql_sampler not in CQL_SAMPLERS:
            raise bad_choice("cql_sampler", self.cql_sampler, CQL_SAMPLERS)
        if self.cql_policy_shift not in POLICY_SHIFTS:
            raise bad_choice("cql_policy_shift", self.cql_policy_shift, POLICY_SHIFTS)


CQL_SAMPLERS: tuple[str, ...] = ("uniform", "uniform+policy")
POLICY_SHIFTS: tuple[str, ...] = ("density", "log_density")


def cql_penalty(L, b, q: torch.Tensor, alpha: float, n_actions: int, precision: str = "fp32") -> torch.Tensor:
    """Per-member ``α Σ_heads mean_B(logsumexp_j(Q(o, ã_j) − log 0.5^d) − Q(o, a))``: ``[M]``."""
    M, B, da = b.act.shape
    sampled = L.uniform(B, n_actions, da)
    log_density = da * math.log(0.5)
    lse = L.sampled_logsumexp(b.obs, sampled, log_density, precision)  # Σ_heads mean_B lse, [M]
    return alpha * (lse - q.mean(2).sum(1))


def gaussian_shift(noise: torch.Tensor, std: float, kind: str) -> torch.Tensor:
    """Per sample ``[..., K]``: the density (``"density"``, the authors' code) or log-density of its noise
    ``[..., K, d]`` under N(0, std² I)."""
    log_pdf = (-0.5 * (noise / std).square() - math.log(std * math.sqrt(2.0 * math.pi))).sum(-1)
    return log_pdf.exp() if kind == "density" else log_pdf


def policy_samples(L, obs: torch.Tensor, K: int, std: float, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """K noisy copies of π(o) ``[M, B, K, da]`` (clipped to [−1, 1]) and their shifts ``[M, B, K]``."""
    pi = L.policy_actions(obs)
    M, B, da = pi.shape
    noise = L.normal(B, K, da) * std  # a fresh tensor (the stream's buffer is reused)
    return (pi.unsqueeze(2) + noise).clamp_(-1.0, 1.0), gaussian_shift(noise, std, kind)


def cql_policy_penalty(L, b, q: torch.Tensor, cfg: CQLConfig) -> torch.Tensor:
    """The HalfCheetah penalty: ``α Σ_heads mean_B(logsumexp over uniform, π(o) and π(o′) samples − Q(o, a))``."""
    M, B, da = b.act.shape
    K = cfg.cql_actions
    uniform = L.uniform(B, K, da).clone()
    cur, cur_shift = policy_samples(L, b.obs, K, cfg.cql_policy_noise, cfg.cql_policy_shift)
    nxt, nxt_shift = policy_samples(L, b.next_obs, K, cfg.cql_policy_noise, cfg.cql_policy_shift)
    samples = torch.cat([uniform, cur, nxt], dim=2)
    shift = torch.cat([torch.full_like(cur_shift, da * math.log(0.5)), cur_shift, nxt_shift], dim=2)
    lse = L.sampled_logsumexp(b.obs, samples, shift, cfg.sample_precision, groups=3)
    return cfg.alpha * (lse - q.mean(2).sum(1))


def critic_penalty(L, b, q: torch.Tensor, cfg: CQLConfig) -> torch.Tensor:
    """MA-CQL's penalty with the config's sampler (MA-CQL and OMAR share it)."""
    if cfg.cql_sampler == "uniform":
        return cql_penalty(L, b, q, cfg.alpha, cfg.cql_actions, cfg.sample_precision)
    return cql_policy_penalty(L, b, q, cfg)


class CQL(Algorithm):
    name = "MA-CQL"
    aliases = ("cql", "macql")
    config_cls = CQLConfig

    def critic_penalty(self, L, b, q):
        return critic_penalty(L, b, q, self.cfg)
