"""OMAR: offline multi-agent RL with actor rectification (Pan, Huang, Ma & Xu, ICML 2022).

Critic: MA-CQL's (same α table). Actor: minimise ``τ mean (π(o) − â)² − (1 − τ) mean Q1(o, π(o))``
where â is the better, by Q1, of π(o) and the best action found by a zeroth-order search on Q1
(the authors' MPE code, docs/protocol.md §5): start from μ = 0, σ = 2; three times sample 10 actions from
N(μ, σ) clipped to [−1, 1], then set μ to their softmax(Q1)-weighted mean and σ to the root mean square
distance of the samples from the new μ. The best sample of the last iteration competes with π(o);
ties keep π(o). σ is kept above ``sigma_min``: the authors' code can reach σ = 0 when every sample is
clipped to the same bound (it ran only because old PyTorch did not validate distributions).
The search's Q1 passes go through :class:`omarbench.offline.sampled.Q1Search`: the observation part of the critic's
first layer is computed once per minibatch for all iterations, only the action columns per sample.

HalfCheetah variant (``omar_search="cem"``, the authors' MaMuJoCo branch, chosen by the task's preset row):
the cross-entropy method. Start from μ₀, σ₀; each of ``omar_iters`` (2) iterations samples
``omar_samples`` (20) actions from N(μ, σ) clipped to [−1, 1] and scores them by Q1; from the second
iteration on the previous iteration's ``omar_elites`` (5) elites, with the Q1 they were given, join the
candidates; the top ``omar_elites`` candidates become the elites, μ their mean and σ their standard
deviation (n − 1 in the denominator, as ``torch.std``; kept above ``sigma_min``). The best candidate of the
last iteration (elites included) competes with π(o) as above.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from omarbench.errors import UsageError, bad_choice
from omarbench.offline.algos.core import Algorithm
from omarbench.offline.algos.cql import CQLConfig, critic_penalty


@dataclass
class OMARConfig(CQLConfig):
    tau: float = 1.0  # weight of the imitation term (the authors' default; presets set it per dataset)
    omar_iters: int = 3
    omar_samples: int = 10
    omar_mu0: float = 0.0
    omar_sigma0: float = 2.0
    omar_sigma_min: float = 1e-3  # guard: σ never collapses to 0
    omar_search: str = "softmax"  # "softmax" (the authors' MPE search) or "cem" (their HalfCheetah search)
    omar_elites: int = 5  # "cem": elites kept per iteration

    def validate(self) -> None:
        super().validate()
        if self.omar_search not in OMAR_SEARCHES:
            raise bad_choice("omar_search", self.omar_search, OMAR_SEARCHES)
        if self.omar_search == "cem" and self.omar_elites > self.omar_samples:
            raise UsageError(f"omar_elites ({self.omar_elites}) must not exceed omar_samples "
                             f"({self.omar_samples})")


OMAR_SEARCHES: tuple[str, ...] = ("softmax", "cem")


@torch.no_grad()
def rectified_actions(L, obs: torch.Tensor, pi: torch.Tensor, q_pi: torch.Tensor, cfg: OMARConfig):
    """â ``[M, B, da]``: the search's best last-iteration sample where its Q1 beats Q1(o, π(o)), else π(o).

    Returns ``(a_hat, q_hat, sigma)`` with ``q_hat = max(Q1(o, best sample), Q1(o, π(o)))`` and the final
    search width ``sigma`` (for tests and diagnostics).
    """
    M, B, da = pi.shape
    S = cfg.omar_samples
    mu = torch.full((M, B, 1, da), cfg.omar_mu0, device=pi.device)
    sigma = torch.full((M, B, 1, da), cfg.omar_sigma0, device=pi.device)
    search = L.q1_search(obs, cfg.sample_precision)  # the observation part once for all iterations
    for _ in range(cfg.omar_iters):
        samples = torch.addcmul(mu, sigma, L.normal(B, S, da)).clamp_(-1.0, 1.0)  # [M, B, S, da]
        q = search(samples)  # [M, B, S]
        w = torch.softmax(q, dim=2).unsqueeze(3)
        mu = (w * samples).sum(2, keepdim=True)
        sigma = (samples - mu).square_().mean(2, keepdim=True).sqrt_().clamp_(min=cfg.omar_sigma_min)
    q_best, i_best = q.max(2)  # [M, B]
    a_best = samples.gather(2, i_best.view(M, B, 1, 1).expand(M, B, 1, da)).squeeze(2)
    better = q_best > q_pi
    a_hat = torch.where(better.unsqueeze(2), a_best, pi)
    return a_hat, torch.where(better, q_best, q_pi), sigma.squeeze(2)


@torch.no_grad()
def cem_actions(L, obs: torch.Tensor, pi: torch.Tensor, q_pi: torch.Tensor, cfg: OMARConfig):
    """â by the cross-entropy method (the HalfCheetah search); same returns as :func:`rectified_actions`."""
    M, B, da = pi.shape
    S, E = cfg.omar_samples, cfg.omar_elites
    mu = torch.full((M, B, 1, da), cfg.omar_mu0, device=pi.device)
    sigma = torch.full((M, B, 1, da), cfg.omar_sigma0, device=pi.device)
    search = L.q1_search(obs, cfg.sample_precision)
    elite_q = elite_a = None
    for it in range(cfg.omar_iters):
        cand = torch.addcmul(mu, sigma, L.normal(B, S, da)).clamp_(-1.0, 1.0)  # [M, B, S, da]
        q = search(cand)  # [M, B, S]
        if it > 0:  # the previous elites compete again with the values they were given
            q, cand = torch.cat([q, elite_q], 2), torch.cat([cand, elite_a], 2)
        elite_q, idx = q.topk(E, dim=2)
        elite_a = cand.gather(2, idx.unsqueeze(3).expand(M, B, E, da))
        mu = elite_a.mean(2, keepdim=True)
        sigma = elite_a.std(2, keepdim=True).clamp_(min=cfg.omar_sigma_min) if E > 1 else sigma
    q_best, i_best = q.max(2)  # [M, B] over the last iteration's candidates
    a_best = cand.gather(2, i_best.view(M, B, 1, 1).expand(M, B, 1, da)).squeeze(2)
    better = q_best > q_pi
    a_hat = torch.where(better.unsqueeze(2), a_best, pi)
    return a_hat, torch.where(better, q_best, q_pi), sigma.squeeze(2)


class OMAR(Algorithm):
    name = "OMAR"
    config_cls = OMARConfig

    def critic_penalty(self, L, b, q):
        return critic_penalty(L, b, q, self.cfg)

    def actor_loss(self, L, b, pi):
        tau = self.cfg.tau
        q_pi = L.q1(b.obs, pi)  # [M, B], gradients to π only
        search = cem_actions if self.cfg.omar_search == "cem" else rectified_actions
        a_hat, _, _ = search(L, b.obs, pi.detach(), q_pi.detach(), self.cfg)
        return tau * (pi - a_hat).square().mean((1, 2)) - (1.0 - tau) * q_pi.mean(1)
