"""The shared TD3 skeleton of the offline zoo (docs/protocol.md §5), batched over (seed, agent) members.

Every algorithm is independent TD3 per learner — actor π_i(o_i), twin critics Q_i(o_i, a_i), targets —
as in the authors' code (OMAR's ``MATD3.update``): one update round is, for every learner, a critic
step on its own minibatch, then an actor step on the same minibatch, then soft target updates of all
learners. Only the twin-critic minimum is kept from TD3 (no target policy smoothing, no delayed actor
update). An algorithm file says only what differs (:class:`Algorithm`): the critic target, a critic
penalty, the actor objective.

Batching: all members of one *group* (learners with the same observation/action sizes, times all
seeds) live in one :class:`~omarbench.offline.nn.BatchedActor` / :class:`~omarbench.offline.nn.BatchedTwinCritic`.
Member ``(seed, agent)`` draws its initial weights, its minibatch indices and its sampled actions from
its own generators (:func:`omarbench.offline.nn.member_generators`), and every reduction is per member, so
member k of a batched run equals a lone run of seed k up to float rounding. Losses of different
members are summed only to call ``backward`` once; gradients never mix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Protocol

import torch

from omarbench.errors import OmarbenchError, UsageError
from omarbench.kernels import matmul_kernel, resolve_kernel
from omarbench.offline.nn import (
    INIT,
    MINIBATCH,
    NOISE,
    BatchedActor,
    BatchedTwinCritic,
    FlatAdam,
    keep_freed_memory,
    member_generators,
)
from omarbench.offline.sampled import Q1Search, sampled_logsumexp
from omarbench.offline.tables import build_table, learner_groups
from omarbench.offline.value import BatchedValue


@dataclass
class TD3Config:
    """Hyperparameters shared by every algorithm (the authors' MPE defaults, docs/protocol.md §5)."""

    rounds: int = 2000  # update rounds (one gradient step per learner, then target updates)
    batch_size: int = 1024  # per learner: every (seed, agent) member samples its own minibatch
    hidden: int = 64
    lr: float = 0.01  # Adam, actor and critic
    gamma: float = 0.95  # what the authors' code ran (the paper's text says 0.99)
    soft_update: float = 0.01  # target ← (1 − soft_update) target + soft_update online
    grad_clip: float = 0.5  # max gradient norm, per member, actor and critic
    action_l2: float = 1e-3  # actor loss += action_l2 · mean(π(o)²)
    eval_every: int = 10  # rounds between deterministic evaluations
    eval_episodes: int = 10  # episodes per seed at each periodic evaluation
    final_episodes: int = 100  # episodes per seed for the final policy

    def to_dict(self) -> dict:
        return asdict(self)

    def replace(self, **changes) -> TD3Config:
        """A copy with ``changes`` applied; unknown names and bad values raise :class:`UsageError`."""
        names = {f.name: f for f in fields(self)}
        values = self.to_dict()
        for key, raw in changes.items():
            if key not in names:
                raise UsageError(
                    f"unknown hyperparameter {key!r} for {type(self).__name__}; valid: {', '.join(names)}"
                )
            values[key] = _coerce(key, raw, type(values[key]))
        out = type(self)(**values)
        out.validate()
        return out

    def validate(self) -> None:
        """Every numeric field within :data:`BOUNDS` (one-line :class:`UsageError` naming the field)."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            lo, hi, lo_open = BOUNDS.get(f.name, (-math.inf, math.inf, False))
            if isinstance(value, int) and f.type in (int, "int"):
                if not lo <= value <= hi or (lo_open and value == lo):
                    kind = "a positive integer" if lo in (0, 1) else "an integer"
                    raise UsageError(f"{f.name} must be {kind} in {lo + lo_open:,}..{hi:,}, got {value}")
                continue
            if not math.isfinite(value) or not lo <= value <= hi or (lo_open and value == lo):
                left = "(" if lo_open else "["
                raise UsageError(f"{f.name} must be a finite number in {left}{lo:g}, {hi:g}], got {value}")


# Valid ranges of every numeric hyperparameter of the zoo: (low, high, low excluded). The upper bounds
# keep a run within a laptop's memory and time (batch 65,536 per member, 10,000 evaluation episodes),
# far above any budget in use; a config field not listed here only has to be finite.
BOUNDS: dict[str, tuple[float, float, bool]] = {
    "rounds": (1, 10_000_000, False), "batch_size": (1, 65_536, False), "hidden": (1, 4_096, False),
    "eval_every": (1, 10_000_000, False), "eval_episodes": (1, 10_000, False),
    "final_episodes": (1, 100_000, False),
    "lr": (0.0, 10.0, True), "gamma": (0.0, 1.0, False), "soft_update": (0.0, 1.0, True),
    "grad_clip": (0.0, 1e6, True), "action_l2": (0.0, 1e6, False),
    "alpha": (0.0, 1e6, False), "cql_actions": (1, 1_000, False), "cql_policy_noise": (0.0, 1e3, True),  # MA-CQL
    "omar_elites": (1, 1_000, False),  # OMAR's CEM
    "tau": (0.0, 1.0, False), "omar_iters": (1, 100, False), "omar_samples": (1, 1_000, False),  # OMAR
    "omar_mu0": (-1.0, 1.0, False), "omar_sigma0": (0.0, 1e3, True), "omar_sigma_min": (0.0, 1e3, True),
    "beta": (0.0, 1e9, True), "beta_q": (0.0, 1e9, True),  # MA-ICQ
    "lam": (0.0, 1e6, False),  # MA-TD3+BC
    "expectile": (0.0, 1.0, True), "max_weight": (0.0, 1e9, True),  # MA-IQL (its beta: above)
}


def _coerce(key: str, raw, kind: type):
    if isinstance(raw, str):
        try:
            if kind is bool:
                if raw.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(raw)
                return raw.lower() in ("true", "1")
            return kind(float(raw)) if kind is int and float(raw).is_integer() else kind(raw)
        except ValueError:
            raise UsageError(f"hyperparameter {key}={raw!r} is not a valid {kind.__name__}") from None
    if kind is float and isinstance(raw, int):
        return float(raw)
    if kind is int and isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if not isinstance(raw, kind):
        raise UsageError(f"hyperparameter {key}={raw!r} is not a valid {kind.__name__}")
    return raw


@dataclass
class Batch:
    """One minibatch per member: ``obs [M, B, do]``, ``act [M, B, da]``, ``rew/done [M, B]`` ..."""

    obs: torch.Tensor
    act: torch.Tensor
    rew: torch.Tensor
    next_obs: torch.Tensor
    done: torch.Tensor
    next_act: torch.Tensor | None = None


class Learner(Protocol):
    """What an algorithm's hooks may ask of the learners (one group of M members, seeds × agents).

    Shapes: ``obs [M, B, do]``, ``act [M, B, da]``, sampled actions ``[M, B, K, da]``. Online networks
    give gradients to their own weights unless said otherwise; target networks never do.
    """

    def target_actions(self, obs: torch.Tensor) -> torch.Tensor:
        """π̄(o) ``[M, B, da]`` of the target actors (train mode: the pass's batch statistics)."""

    def target_q(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Both heads of the target critics, ``[M, 2, B]``."""

    def q1(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Q1(o, a) ``[M, B]`` with the critics' weights held fixed (gradients flow to ``act`` only)."""

    def q1_samples(self, obs: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
        """Q1(o, ã_k) ``[M, B, K]`` of K actions per observation, the critics' weights held fixed."""

    def q1_search(self, obs: torch.Tensor, precision: str = "fp32"):
        """A callable ``samples [M, B, K, da] → Q1 [M, B, K]`` for many calls on the same ``obs`` (OMAR's
        search iterations), the critics' weights held fixed; ``precision`` ``"fp32"`` or ``"bf16"``."""

    def sampled_logsumexp(self, obs: torch.Tensor, samples: torch.Tensor, log_density: float | torch.Tensor,
                          precision: str = "fp32", groups: int = 1) -> torch.Tensor:
        """``Σ_heads mean_B logsumexp_k (Q(o, ã_k) − log_density)`` ``[M]`` of the online critics, with
        gradients to their weights (CQL's penalty); ``precision`` of its products, ``"fp32"``/``"bf16"``;
        ``log_density`` one number or ``[M, B, K]``; ``groups`` consecutive slices of the K actions that
        are separate critic passes (each normalised with its own batch statistics)."""

    def policy_actions(self, obs: torch.Tensor) -> torch.Tensor:
        """π(o) ``[M, B, da]`` of the online actors in train mode (batch statistics, running statistics
        updated), without gradients (MA-CQL's policy samples on HalfCheetah)."""

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(o) ``[M, B]`` of the state-value networks (algorithms with ``uses_value``)."""

    def uniform(self, *shape: int) -> torch.Tensor:
        """``[M, *shape]`` in U(−1, 1) from each member's own noise stream (a reused buffer)."""

    def normal(self, *shape: int) -> torch.Tensor:
        """``[M, *shape]`` standard normal from each member's own noise stream (a reused buffer)."""


class Algorithm:
    """What one algorithm changes in the TD3 skeleton: a module of :mod:`omarbench.offline.algos` that
    subclasses this with a ``name`` is registered (see the package). Subclasses override the hooks.

    One update round: the value step (``uses_value``: minimise :meth:`value_loss`), the critic step
    (regress both heads on :meth:`critic_target`, plus :meth:`critic_penalty`), the actor step
    (:meth:`actor_loss` + the shared ``action_l2`` term), then soft target updates.
    """

    name: str = "TD3"
    aliases: tuple[str, ...] = ()  # other names users may type (matched case-insensitively)
    config_cls: type[TD3Config] = TD3Config
    uses_critic: bool = True
    uses_value: bool = False  # a state-value network V(o) per member, trained by value_loss
    needs_next_actions: bool = False  # the critic target uses the dataset's next actions (ICQ)

    def __init__(self, config: TD3Config):
        self.cfg = config

    def value_loss(self, L: Learner, b: Batch) -> torch.Tensor:
        """State-value loss per member ``[M]`` (only with ``uses_value``)."""
        raise NotImplementedError(f"{self.name} sets uses_value but defines no value_loss")

    def critic_target(self, L: Learner, b: Batch) -> torch.Tensor:
        """TD target ``[M, B]``: r + γ (1 − d) min_j Q̄_j(o′, π̄(o′)) (target nets in train mode)."""
        qn = L.target_q(b.next_obs, L.target_actions(b.next_obs))
        return b.rew + self.cfg.gamma * (1.0 - b.done) * qn.amin(1)

    def critic_penalty(self, L: Learner, b: Batch, q: torch.Tensor) -> torch.Tensor | None:
        """Extra critic loss per member ``[M]`` given the dataset-action values ``q [M, 2, B]``."""
        return None

    def actor_loss(self, L: Learner, b: Batch, pi: torch.Tensor) -> torch.Tensor:
        """Actor loss per member ``[M]`` (before the shared ``action_l2`` term); default: −Q1(o, π(o))."""
        return -L.q1(b.obs, pi).mean(1)


class GroupLearner:
    """All members (seeds × agents) of one group of learners with equal observation/action sizes."""

    def __init__(
        self,
        algo: Algorithm,
        seeds: Sequence[int],
        agents: Sequence[int],
        table: dict[str, torch.Tensor],
        n_rows: int,
        obs_dim: int,
        act_dim: int,
        pool: torch.Tensor | None = None,
        device: str | torch.device = "cpu",
    ):
        cfg = algo.cfg
        self.algo, self.cfg, self.device = algo, cfg, torch.device(device)
        self.seeds, self.agents = list(seeds), list(agents)
        self.members = [(s, a) for s in self.seeds for a in self.agents]  # seed-major
        M = self.M = len(self.members)
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.table, self.n_rows, self.pool = table, n_rows, pool
        self.row_offset = (
            torch.tensor([j * n_rows for _ in self.seeds for j in range(len(self.agents))], device=self.device)
            .view(M, 1)
        )
        init = member_generators(self.members, INIT, device)
        self.g_batch = member_generators(self.members, MINIBATCH, device)
        self.g_noise = member_generators(self.members, NOISE, device)

        h = cfg.hidden
        self.actor = BatchedActor(M, obs_dim, act_dim, h, device)
        self.actor.init_(init)
        self.actor_t = BatchedActor(M, obs_dim, act_dim, h, device, track_running_stats=False)
        self.actor_t.params.copy_(self.actor.params)
        self.actor_opt = FlatAdam(self.actor.params, cfg.lr)
        if algo.uses_critic:
            self.critic = BatchedTwinCritic(M, obs_dim, act_dim, h, device)
            self.critic.init_(init)
            self.critic_t = BatchedTwinCritic(M, obs_dim, act_dim, h, device, track_running_stats=False)
            self.critic_t.params.copy_(self.critic.params)
            self.critic_opt = FlatAdam(self.critic.params, cfg.lr)
        if algo.uses_value:
            self.value_net = BatchedValue(M, obs_dim, h, device)
            self.value_net.init_(init)
            self.value_opt = FlatAdam(self.value_net.params, cfg.lr)
        self._idx = torch.empty(M, cfg.batch_size, dtype=torch.long, device=self.device)
        self._noise: dict[tuple, torch.Tensor] = {}

    # -- per-member randomness -----------------------------------------------------------------
    def sample(self) -> Batch:
        """Each member draws ``batch_size`` row indices (with replacement) from its own stream."""
        idx = self._idx
        high = self.n_rows if self.pool is None else len(self.pool)
        for m, g in enumerate(self.g_batch):
            idx[m].random_(0, high, generator=g)
        rows = idx if self.pool is None else self.pool[idx]
        flat = (rows + self.row_offset).view(-1)
        M, B = self.M, self.cfg.batch_size

        def field(name):
            t = self.table[name]
            return t.index_select(0, flat).view(M, B, *t.shape[1:])

        return Batch(field("obs"), field("act"), field("rew"), field("next_obs"), field("done"),
                     field("next_act") if self.algo.needs_next_actions else None)

    def _noise_buffer(self, kind: str, shape: tuple[int, ...]) -> torch.Tensor:
        key = (kind, shape)
        buf = self._noise.get(key)
        if buf is None:
            buf = self._noise[key] = torch.empty((self.M, *shape), device=self.device)
        return buf

    def uniform(self, *shape: int) -> torch.Tensor:
        """``[M, *shape]`` in U(−1, 1); row m from member m's noise stream (reused buffer: consume first)."""
        buf = self._noise_buffer("u", shape)
        for m, g in enumerate(self.g_noise):
            buf[m].uniform_(-1.0, 1.0, generator=g)
        return buf

    def normal(self, *shape: int) -> torch.Tensor:
        """``[M, *shape]`` standard normal; row m from member m's noise stream (reused buffer)."""
        buf = self._noise_buffer("n", shape)
        for m, g in enumerate(self.g_noise):
            buf[m].normal_(generator=g)
        return buf

    # -- the Learner interface of the algorithm hooks ---------------------------------------------
    def target_actions(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor_t(obs)

    def target_q(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return self.critic_t(obs, act.unsqueeze(2), heads=2)[..., 0]

    def q1(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return self.critic(obs, act.unsqueeze(2), heads=1, detached=True)[:, 0, :, 0]

    def q1_samples(self, obs: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
        return self.critic(obs, samples, heads=1, detached=True)[:, 0]

    def q1_search(self, obs: torch.Tensor, precision: str = "fp32"):
        return Q1Search(self.critic, obs, precision)

    def sampled_logsumexp(self, obs: torch.Tensor, samples: torch.Tensor, log_density: float | torch.Tensor,
                          precision: str = "fp32", groups: int = 1) -> torch.Tensor:
        return sampled_logsumexp(self.critic, obs, samples, log_density, precision=precision, groups=groups)

    @torch.no_grad()
    def policy_actions(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(obs, train=True)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.value_net(obs)

    # -- one update round ------------------------------------------------------------------------
    def update(self) -> torch.Tensor:
        """Value step (if any), critic step, actor step, soft target updates. Returns per-member losses
        ``[M, 2]`` (critic, actor)."""
        cfg, algo = self.cfg, self.algo
        b = self.sample()
        if algo.uses_value:
            self.value_net.params.zero_grad()
            algo.value_loss(self, b).sum().backward()
            self.value_net.params.clip_grad_norm_(cfg.grad_clip)
            self.value_opt.step()
        if algo.uses_critic:
            with torch.no_grad():
                y = algo.critic_target(self, b)
            self.critic.params.zero_grad()
            q = self.critic(b.obs, b.act.unsqueeze(2), heads=2)[..., 0]  # [M, 2, B]
            closs = (q - y.unsqueeze(1)).square_().mean(2).sum(1)  # MSE of each head, summed
            penalty = algo.critic_penalty(self, b, q)
            if penalty is not None:
                closs = closs + penalty
            closs.sum().backward()
            self.critic.params.clip_grad_norm_(cfg.grad_clip)
            self.critic_opt.step()
        else:
            closs = torch.zeros(self.M, device=self.device)
        self.actor.params.zero_grad()
        pi = self.actor(b.obs, train=True)
        aloss = algo.actor_loss(self, b, pi) + cfg.action_l2 * pi.square().mean((1, 2))
        aloss.sum().backward()
        self.actor.params.clip_grad_norm_(cfg.grad_clip)
        self.actor_opt.step()
        if algo.uses_critic:
            self.critic_t.params.soft_update_(self.critic.params, cfg.soft_update)
        self.actor_t.params.soft_update_(self.actor.params, cfg.soft_update)
        return torch.stack([closs.detach(), aloss.detach()], 1)

    @torch.no_grad()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """Deterministic actions (actor in eval mode, running statistics): ``[M, E, do] → [M, E, da]``."""
        return self.actor(obs, train=False)


class Learners:
    """Every group of a run: the object ``train`` drives (update rounds, deterministic actions).

    ``seeds_per_chunk`` splits the seeds into chunks that get their own batched networks (a performance
    knob only: members are independent, so results are the same for any chunking). ``None``: all seeds
    in one chunk.

    Every update and every action runs on the float32 matmul kernel chosen once per process
    (``self.matmul_kernel``, :mod:`omarbench.kernels`), set around the call and restored after it.
    """

    def __init__(self, algo: Algorithm, seeds: Sequence[int], dataset, device="cpu",
                 seeds_per_chunk: int | None = None):
        self.algo, self.seeds, self.device = algo, list(seeds), torch.device(device)
        self.learner_indices = [int(i) for i in dataset.learner_indices]
        self.matmul_kernel = "mkl"
        if self.device.type == "cpu":
            keep_freed_memory()
            self.matmul_kernel = resolve_kernel()
        step = len(self.seeds) if not seeds_per_chunk else max(1, int(seeds_per_chunk))
        chunks = [list(range(i, min(i + step, len(self.seeds)))) for i in range(0, len(self.seeds), step)]
        self.groups: list[tuple[GroupLearner, list[int]]] = []  # (learner, positions of its seeds)
        for do, da, agents in learner_groups(dataset):
            table, n, pool = build_table(dataset, agents, algo.needs_next_actions, self.device)
            if n < 1:
                raise OmarbenchError(f"dataset {getattr(dataset, 'id', '?')} is empty")
            for pos in chunks:
                learner = GroupLearner(algo, [self.seeds[k] for k in pos], agents, table, n, do, da, pool,
                                       self.device)
                self.groups.append((learner, pos))

    def update(self) -> torch.Tensor:
        """One update round of every member. Returns losses ``[S, n_learners, 2]`` (critic, actor)."""
        out = torch.empty(len(self.seeds), len(self.learner_indices), 2, device=self.device)
        col = {a: k for k, a in enumerate(self.learner_indices)}
        for g, pos in self.groups:
            with matmul_kernel(self.matmul_kernel):
                losses = g.update().view(len(pos), len(g.agents), 2)
            idx = torch.tensor(pos, device=self.device)
            for j, a in enumerate(g.agents):
                out[idx, col[a]] = losses[:, j]
        return out

    @torch.no_grad()
    def act(self, obs: Sequence[torch.Tensor]) -> torch.Tensor:
        """``obs[i]``: learner i's observations ``[S, E, do]`` → actions ``[S, E, n_learners, da]``."""
        S, E = obs[0].shape[0], obs[0].shape[1]
        col = {a: k for k, a in enumerate(self.learner_indices)}
        out = None
        for g, pos in self.groups:
            idx = torch.tensor(pos, device=self.device)
            x = torch.stack([obs[col[a]][idx] for a in g.agents], 1).view(g.M, E, g.obs_dim)  # seed-major
            with matmul_kernel(self.matmul_kernel):
                a = g.act(x).view(len(pos), len(g.agents), E, g.act_dim)
            if out is None:
                out = torch.zeros(S, E, len(self.learner_indices), g.act_dim, device=self.device)
            for j, agent in enumerate(g.agents):
                out[idx, :, col[agent]] = a[:, j]
        return out
