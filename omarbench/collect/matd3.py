"""Online MATD3 (Ackermann et al. 2019, "Reducing Overestimation Bias in Multi-Agent Domains Using
Double Centralized Critics"): the behaviour learner whose snapshots become the datasets.

Each learning agent i has a decentralised actor π_i(o_i) and centralised twin critics
Q_i(o_1..o_n, a_1..a_n). TD3's three devices are kept: the minimum of the twin target critics,
target policy smoothing (clipped Gaussian noise on the target actions) and delayed actor updates.
Exploration adds Gaussian noise to the actions. The actor has the offline learners' shape
(docs/protocol.md §5: input BatchNorm, two hidden layers of 64, tanh output whose last layer starts in
U(±3e-3)), so the untrained actor is the paper's "randomly initialised policy" (actions near zero).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from omarbench.tasks.actor import Actor  # the behaviour actors are the prey's network


@dataclass(frozen=True)
class MATD3Config:
    """Named defaults of the behaviour learner (tuned on this project's MPE tasks)."""

    hidden: int = 64
    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    gamma: float = 0.95
    tau: float = 0.01  # soft target update
    batch_size: int = 1024
    expl_noise: float = 0.1  # std of the Gaussian exploration noise
    target_noise: float = 0.2  # target policy smoothing
    target_noise_clip: float = 0.5
    policy_delay: int = 2
    grad_clip: float = 0.5
    action_l2: float = 1e-3  # actor loss += action_l2 * mean(π(o)²), as the authors' actors
    lr_final_fraction: float = 1.0  # learning rates decay linearly to this fraction by the end of the run

    def to_dict(self) -> dict:
        return asdict(self)


class AgentsTwinCritic(nn.Module):
    """Centralised twin critics of all n agents in one set of batched weights.

    Every agent's critic reads the same joint input x = (o_1..o_n, a_1..a_n); agent i owns an input
    BatchNorm (shared by its two heads, as in the authors' critics) and heads Q1_i, Q2_i. Weights are
    stacked over members m = (agent, head), so one batched matmul evaluates all 2n heads.
    """

    def __init__(self, n_agents: int, in_dim: int, hidden: int = 64):
        super().__init__()
        self.n = n_agents
        self.eps = 1e-5
        self.norm_weight = nn.Parameter(torch.ones(n_agents, 1, in_dim))
        self.norm_bias = nn.Parameter(torch.zeros(n_agents, 1, in_dim))
        m = 2 * n_agents
        sizes = [(in_dim, hidden), (hidden, hidden), (hidden, 1)]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in sizes:  # torch.nn.Linear's default initialisation, per member
            bound = 1.0 / fan_in**0.5
            self.weights.append(nn.Parameter(torch.empty(m, fan_in, fan_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(m, 1, fan_out).uniform_(-bound, bound)))

    def _normed(self, x: torch.Tensor) -> torch.Tensor:
        """Each agent's input BatchNorm (batch statistics: the critics never run in eval mode) -> [n, B, in]."""
        mean = x.mean(dim=-2, keepdim=True)
        var = x.var(dim=-2, unbiased=False, keepdim=True)
        h = (x - mean) / torch.sqrt(var + self.eps)
        return h * self.norm_weight + self.norm_bias

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, in] (one input for all agents) or [n, B, in] (one per agent) -> Q1, Q2, each [n, B]."""
        h = self._normed(x)
        n, b, d = h.shape
        # members: (agent 0, Q1), (agent 0, Q2), (agent 1, Q1), ...: each agent's input twice (a copy, as
        # repeat_interleave, whose gradient is the same sum of the two copies' gradients)
        h = h.unsqueeze(1).expand(n, 2, b, d).reshape(2 * n, b, d)
        for k, (w, bias) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(bias, h, w)
            if k < len(self.weights) - 1:
                h = torch.relu(h)
        q = h.squeeze(-1).reshape(self.n, 2, -1)
        return q[:, 0], q[:, 1]

    def q1(self, x: torch.Tensor) -> torch.Tensor:
        """Only the first heads: x [n, B, in] -> Q1 [n, B], each member's products exactly as in ``forward``
        (a batched product computes every member on its own)."""
        h = self._normed(x)
        for k, (w, bias) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(bias[0::2], h, w[0::2])
            if k < len(self.weights) - 1:
                h = torch.relu(h)
        return h.squeeze(-1)

    def agent_grad_norms(self) -> torch.Tensor:
        """Gradient norm of each agent's critic (its BN affine and both heads) -> [n]."""
        sq = torch.zeros(self.n)
        for p in (self.norm_weight, self.norm_bias):
            if p.grad is not None:
                sq += p.grad.pow(2).flatten(1).sum(1)
        for p in list(self.weights) + list(self.biases):
            if p.grad is not None:
                sq += p.grad.pow(2).flatten(1).sum(1).reshape(self.n, 2).sum(1)
        return sq.sqrt()

    def clip_grad_norms_(self, max_norm: float) -> None:
        """Per-agent gradient-norm clipping (each agent's critic as its own clip_grad_norm_)."""
        scale = (max_norm / (self.agent_grad_norms() + 1e-6)).clamp(max=1.0)
        for p in (self.norm_weight, self.norm_bias):
            p.grad.mul_(scale.view(-1, 1, 1))
        for p in list(self.weights) + list(self.biases):
            p.grad.mul_(scale.repeat_interleave(2).view(-1, 1, 1))


class ReplayBuffer:
    """Ring buffer of the learners' transitions (float32 tensors).

    Each row holds all learners' observations side by side (``[capacity, sum(obs_dims)]``), so that one
    gather per field draws a batch; ``sample`` returns per-agent copies (contiguous, the same values).
    """

    def __init__(self, obs_dims: tuple[int, ...], capacity: int, act_dim: int = 2):
        n = len(obs_dims)
        self.capacity = capacity
        self.obs_dims = tuple(obs_dims)
        self.offsets = tuple(int(x) for x in np.cumsum((0,) + self.obs_dims))
        self.obs_cat = torch.zeros(capacity, self.offsets[-1])
        self.next_obs_cat = torch.zeros(capacity, self.offsets[-1])
        self.actions = torch.zeros(capacity, n, act_dim)
        self.rewards = torch.zeros(capacity, n)
        self.size = 0
        self.pos = 0

    def _split(self, cat: torch.Tensor) -> list[torch.Tensor]:
        o = self.offsets
        return [cat[:, o[i]:o[i + 1]].contiguous() for i in range(len(self.obs_dims))]

    @property
    def obs(self) -> list[torch.Tensor]:
        return self._split(self.obs_cat)

    @property
    def next_obs(self) -> list[torch.Tensor]:
        return self._split(self.next_obs_cat)

    def add(self, obs: list[np.ndarray], actions: np.ndarray, rewards: np.ndarray, next_obs: list[np.ndarray]):
        b = actions.shape[0]
        rows = [(self.pos, min(b, self.capacity - self.pos))]  # the ring as at most two slices
        if rows[0][1] < b:
            rows.append((0, b - rows[0][1]))
        if b > self.capacity:  # more rows than the ring holds: the last ``capacity`` of them win, as before
            idx = torch.from_numpy((self.pos + np.arange(b)) % self.capacity)
        t = torch.from_numpy
        fields = ((self.obs_cat, t(np.concatenate([np.asarray(x, np.float32) for x in obs], 1))),
                  (self.next_obs_cat, t(np.concatenate([np.asarray(x, np.float32) for x in next_obs], 1))),
                  (self.actions, t(np.asarray(actions, np.float32))),
                  (self.rewards, t(np.asarray(rewards, np.float32))))
        for dst, src in fields:
            if b > self.capacity:
                dst[idx] = src
                continue
            start = 0
            for pos, count in rows:
                dst[pos:pos + count] = src[start:start + count]
                start += count
        self.pos = int((self.pos + b) % self.capacity)
        self.size = min(self.size + b, self.capacity)

    def sample_cat(self, batch: int, gen: torch.Generator):
        """(obs [B, sum(d)], actions, rewards, next obs [B, sum(d)]) of ``batch`` uniform draws."""
        idx = torch.randint(0, self.size, (batch,), generator=gen)
        return self.obs_cat[idx], self.actions[idx], self.rewards[idx], self.next_obs_cat[idx]

    def sample(self, batch: int, gen: torch.Generator):
        obs, actions, rewards, next_obs = self.sample_cat(batch, gen)
        return self._split(obs), actions, rewards, self._split(next_obs)


def _actor_forward(actor: Actor, x: torch.Tensor, training: bool) -> torch.Tensor:
    """``actor(x)`` in train (``training``) or eval mode, whatever mode the module is in: the same
    functional calls as its modules' forwards (BatchNorm's running statistics and batch counter updated
    in train mode), without switching modes or the modules' call overhead."""
    bn = actor.norm
    if training:
        bn.num_batches_tracked.add_(1)
    h = F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, training, bn.momentum, bn.eps)
    net = actor.net
    h = F.relu(F.linear(h, net[0].weight, net[0].bias))
    h = F.relu(F.linear(h, net[2].weight, net[2].bias))
    return torch.tanh(F.linear(h, net[4].weight, net[4].bias))


def _adam_step(opt: torch.optim.Adam) -> None:
    """``opt.step()`` through Adam's multi-tensor (foreach) implementation: the same elementwise
    arithmetic as the default per-tensor loop on CPU, to the bit (tests/test_behaviour_exact.py), in
    fewer Python steps. The flag is set for the call only, so saved optimiser states stay as they were."""
    saved = [g.get("foreach") for g in opt.param_groups]
    for g in opt.param_groups:
        g["foreach"] = True
    try:
        opt.step()
    finally:
        for g, f in zip(opt.param_groups, saved):
            g["foreach"] = f


class MATD3:
    """The learners of one behaviour run (all agents that learn in it)."""

    def __init__(self, obs_dims: tuple[int, ...], cfg: MATD3Config, seed: int, act_dim: int = 2):
        self.cfg = cfg
        self.obs_dims = tuple(obs_dims)
        self.n = len(obs_dims)
        self.act_dim = act_dim
        joint = sum(obs_dims) + self.n * act_dim
        with torch.random.fork_rng(devices=[]):  # seed the initialisation without touching the caller's stream
            torch.manual_seed(seed)
            self.actors = nn.ModuleList(Actor(d, act_dim, cfg.hidden) for d in obs_dims)
            self.critic = AgentsTwinCritic(self.n, joint, cfg.hidden)
        self.actors_t = copy.deepcopy(self.actors)
        self.critic_t = copy.deepcopy(self.critic)
        # one Adam over all agents' parameters: elementwise, so the same as one optimiser per agent
        self.actor_opt = torch.optim.Adam(self.actors.parameters(), lr=cfg.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr)
        self.gen = torch.Generator().manual_seed(seed + 1)
        self.updates = 0
        for m in (self.actors_t, self.critic_t):
            m.train()
            for p in m.parameters():
                p.requires_grad_(False)
        # the module structure never changes after this point: parameter lists are built once
        self._actor_params = list(self.actors.parameters())
        self._per_actor_params = [list(a.parameters()) for a in self.actors]
        self._soft_pairs = [(list(net.parameters()), list(tgt.parameters()),
                             list(zip(net.buffers(), tgt.buffers())))
                            for net, tgt in ((self.actors, self.actors_t), (self.critic, self.critic_t))]

    def set_progress(self, fraction: float) -> None:
        """Learning rates for a run ``fraction`` (0..1) of the way through (linear decay)."""
        scale = 1.0 - (1.0 - self.cfg.lr_final_fraction) * min(max(fraction, 0.0), 1.0)
        for opt, lr in ((self.actor_opt, self.cfg.actor_lr), (self.critic_opt, self.cfg.critic_lr)):
            for group in opt.param_groups:
                group["lr"] = lr * scale

    @torch.no_grad()
    def act(self, obs: list[np.ndarray], noise: float, rng: np.random.Generator | None = None) -> np.ndarray:
        """Actions [E, n, 2] from per-agent observations; Gaussian noise of std ``noise``, clipped to [-1, 1]."""
        acts = np.stack([_actor_forward(a, torch.as_tensor(o, dtype=torch.float32), False).numpy()
                         for a, o in zip(self.actors, obs)], 1)
        if noise > 0:
            acts = acts + rng.normal(0.0, noise, acts.shape)
        return np.clip(acts, -1.0, 1.0).astype(np.float64)

    def _target_actions(self, next_obs: list[torch.Tensor]) -> torch.Tensor:
        c = self.cfg
        acts = torch.stack([_actor_forward(a, o, True) for a, o in zip(self.actors_t, next_obs)], 1)
        noise = torch.randn(acts.shape, generator=self.gen) * c.target_noise
        return (acts + noise.clamp(-c.target_noise_clip, c.target_noise_clip)).clamp(-1.0, 1.0)

    def update(self, buffer: ReplayBuffer) -> None:
        """One gradient round: every agent's twin critics, then (every ``policy_delay``) its actor."""
        c = self.cfg
        obs_cat, actions, rewards, next_obs_cat = buffer.sample_cat(c.batch_size, self.gen)
        b = actions.shape[0]
        with torch.no_grad():
            next_act = self._target_actions(buffer._split(next_obs_cat)).reshape(b, -1)
            q1_t, q2_t = self.critic_t(torch.cat([next_obs_cat, next_act], 1))
            y = rewards.T + c.gamma * torch.min(q1_t, q2_t)  # [n, B]
        q1, q2 = self.critic(torch.cat([obs_cat, actions.reshape(b, -1)], 1))
        # sum over agents of each agent's mean squared TD errors (agents' parameters are disjoint)
        loss = (((q1 - y) ** 2).mean(1) + ((q2 - y) ** 2).mean(1)).sum()
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.critic.clip_grad_norms_(c.grad_clip)
        _adam_step(self.critic_opt)
        self.updates += 1
        if self.updates % c.policy_delay:
            return
        pis = [_actor_forward(a, o, True) for a, o in zip(self.actors, buffer._split(obs_cat))]
        joint = actions.unsqueeze(0).repeat(self.n, 1, 1, 1)  # [n, B, n, 2]: agent i's view
        for i, pi in enumerate(pis):
            joint[i, :, i] = pi
        x = torch.cat([obs_cat.unsqueeze(0).expand(self.n, -1, -1), joint.reshape(self.n, b, -1)], 2)
        q1_pi = self.critic.q1(x)  # the actors follow Q1 only
        loss = sum(-q1_pi[i].mean() + c.action_l2 * (pi**2).mean() for i, pi in enumerate(pis))
        self.actor_opt.zero_grad(set_to_none=True)
        loss.backward(inputs=self._actor_params)
        self._clip_actor_grads(c.grad_clip)
        _adam_step(self.actor_opt)
        self._soft_update()

    @torch.no_grad()
    def _clip_actor_grads(self, max_norm: float) -> None:
        """``nn.utils.clip_grad_norm_(actor.parameters(), max_norm)`` for every actor, in its own steps:
        per-tensor norms, their norm, the clamped scale, one multiply (of all actors' gradients at once)."""
        scales = []
        for params in self._per_actor_params:
            grads = [p.grad for p in params if p.grad is not None]
            total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads, 2.0)), 2.0)
            scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
            scales += [(g, scale) for g in grads]
        torch._foreach_mul_([g for g, _ in scales], [s for _, s in scales])

    @torch.no_grad()
    def _soft_update(self) -> None:
        tau = self.cfg.tau
        for params, targets, buffers in self._soft_pairs:
            torch._foreach_mul_(targets, 1 - tau)
            torch._foreach_add_(targets, params, alpha=tau)
            for b, bt in buffers:
                bt.copy_(b)

    def state_dict(self) -> dict:
        return {
            "actors": self.actors.state_dict(),
            "critic": self.critic.state_dict(),
            "actors_t": self.actors_t.state_dict(),
            "critic_t": self.critic_t.state_dict(),
            "actor_opt": self.actor_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
            "gen": self.gen.get_state(),
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict) -> None:
        self.actors.load_state_dict(state["actors"])
        self.critic.load_state_dict(state["critic"])
        self.actors_t.load_state_dict(state["actors_t"])
        self.critic_t.load_state_dict(state["critic_t"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.gen.set_state(state["gen"])
        self.updates = int(state["updates"])
