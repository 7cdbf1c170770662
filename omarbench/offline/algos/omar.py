"""OMAR: offline multi-agent RL with actor rectification (Pan, Huang, Ma & Xu, ICML 2022).

Critic: MA-CQL's (same α table). Actor: minimise ``τ mean (π(o) − â)² − (1 − τ) mean Q1(o, π(o))``
where â is the better, by Q1, of π(o) and the best action found by a zeroth-order search on Q1
(the authors' MPE code, docs/protocol.md §5): start from μ = 0, σ = 2; three times sample 10 actions from
N(μ, σ) clipped to [−1, 1], then set μ to their softmax(Q1)-weighted mean and σ to the root mean square
distance of the samples from the new μ. The best sample of the last iteration competes with π(o);
ties keep π(o). σ is kept above ``sigma_min``: the authors' code can reach σ = 0 when every sample is
clipped to the same bound (it ran only because old PyTorch did not validate distributions).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from omarbench.offline.algos.core import Algorithm
from omarbench.offline.algos.cql import CQLConfig, cql_penalty


@dataclass
class OMARConfig(CQLConfig):
    tau: float = 1.0  # weight of the imitation term (the authors' default; presets set it per dataset)
    omar_iters: int = 3
    omar_samples: int = 10
    omar_mu0: float = 0.0
    omar_sigma0: float = 2.0
    omar_sigma_min: float = 1e-3  # guard: σ never collapses to 0


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
    for _ in range(cfg.omar_iters):
        samples = torch.addcmul(mu, sigma, L.normal(B, S, da)).clamp_(-1.0, 1.0)  # [M, B, S, da]
        q = L.q1_samples(obs, samples)  # [M, B, S]
        w = torch.softmax(q, dim=2).unsqueeze(3)
        mu = (w * samples).sum(2, keepdim=True)
        sigma = (samples - mu).square_().mean(2, keepdim=True).sqrt_().clamp_(min=cfg.omar_sigma_min)
    q_best, i_best = q.max(2)  # [M, B]
    a_best = samples.gather(2, i_best.view(M, B, 1, 1).expand(M, B, 1, da)).squeeze(2)
    better = q_best > q_pi
    a_hat = torch.where(better.unsqueeze(2), a_best, pi)
    return a_hat, torch.where(better, q_best, q_pi), sigma.squeeze(2)


class OMAR(Algorithm):
    name = "OMAR"
    config_cls = OMARConfig

    def critic_penalty(self, L, b, q):
        return cql_penalty(L, b, q, self.cfg.alpha, self.cfg.cql_actions)

    def actor_loss(self, L, b, pi):
        tau = self.cfg.tau
        q_pi = L.q1(b.obs, pi)  # [M, B], gradients to π only
        a_hat, _, _ = rectified_actions(L, b.obs, pi.detach(), q_pi.detach(), self.cfg)
        return tau * (pi - a_hat).square().mean((1, 2)) - (1.0 - tau) * q_pi.mean(1)
