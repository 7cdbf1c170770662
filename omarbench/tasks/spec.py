"""Task specifications: what agents live in, which of them learn, and how a return is reported.

A :class:`Task` is a plain, hashable description that recreates its environment exactly
(``Task.from_dict(task.to_dict()) == task``). Ids a user can type::

    spread            cooperative navigation, 3 agents, paper flavor
    spread-n5         the same with 5 agents (1 <= n <= 20)
    tag, world        predator-prey tasks: 3 learning predators, 1 fixed prey
    tag:mpe2          any id with ``:FLAVOR`` picks the flavor (``paper`` is the default)
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from omarbench.errors import UsageError, bad_choice
from omarbench.vocab import FLAVORS, PAPER_TASKS, items

TASK_NAMES: tuple[str, ...] = PAPER_TASKS  # the task families
SPREAD_MIN_AGENTS = 1
SPREAD_MAX_AGENTS = 20
SPREAD_DEFAULT_AGENTS = 3
EPISODE_LENGTH = 25
ACT_DIM = 2

Role = Literal["learner", "fixed"]
ReturnRule = Literal["mean_over_agents", "agent0"]


@dataclass(frozen=True)
class AgentSpec:
    """One agent of a task: its name, whether it learns, and its observation/action sizes."""

    name: str
    role: Role
    obs_dim: int
    act_dim: int = ACT_DIM


@dataclass(frozen=True)
class Task:
    """A task of the benchmark in one flavor.

    ``return_rule`` says how the reported (paper) return is made from per-agent rewards:
    ``mean_over_agents`` sums over steps the mean over agents (spread), ``agent0`` sums over
    steps the reward of agent 0, the first predator (tag, world).
    """

    name: str
    flavor: str
    agents: tuple[AgentSpec, ...]
    return_rule: ReturnRule
    episode_length: int = EPISODE_LENGTH
    fixed_policy: str | None = None  # name of the slot that drives the fixed agents, if any

    @property
    def n_agents(self) -> int:
        return len(self.agents)

    @property
    def id(self) -> str:
        """Canonical id: ``spread``, ``spread-n5``, ``tag``, ``world`` plus ``:mpe2`` when not paper."""
        base = self.name
        if self.name == "spread" and self.n_agents != SPREAD_DEFAULT_AGENTS:
            base = f"spread-n{self.n_agents}"
        return base if self.flavor == "paper" else f"{base}:{self.flavor}"

    @property
    def learner_indices(self) -> tuple[int, ...]:
        return tuple(i for i, a in enumerate(self.agents) if a.role == "learner")

    @property
    def fixed_indices(self) -> tuple[int, ...]:
        return tuple(i for i, a in enumerate(self.agents) if a.role == "fixed")

    @property
    def obs_dims(self) -> tuple[int, ...]:
        return tuple(a.obs_dim for a in self.agents)

    @property
    def act_dims(self) -> tuple[int, ...]:
        return tuple(a.act_dim for a in self.agents)

    def reported_return(self, rewards: np.ndarray) -> np.ndarray:
        """Reported return from rewards shaped ``[..., T, n_agents]`` (sums over T)."""
        rewards = np.asarray(rewards)
        if rewards.shape[-1] != self.n_agents:
            raise ValueError(f"rewards last axis is {rewards.shape[-1]}, task has {self.n_agents} agents")
        per_step = rewards.mean(axis=-1) if self.return_rule == "mean_over_agents" else rewards[..., 0]
        return per_step.sum(axis=-1)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["id"] = self.id
        d["agents"] = [asdict(a) for a in self.agents]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Task:
        return cls(
            name=d["name"],
            flavor=d["flavor"],
            agents=tuple(AgentSpec(**a) for a in d["agents"]),
            return_rule=d["return_rule"],
            episode_length=int(d["episode_length"]),
            fixed_policy=d.get("fixed_policy"),
        )


def _spread_obs_dim(n: int) -> int:
    # own velocity, own position, n landmarks, (n-1) other agents, (n-1) comm states of 2
    return 4 + 2 * n + 2 * (n - 1) + 2 * (n - 1)


def _make_spread(n: int, flavor: str) -> Task:
    agents = tuple(AgentSpec(f"agent_{i}", "learner", _spread_obs_dim(n)) for i in range(n))
    return Task("spread", flavor, agents, "mean_over_agents")


# Observation sizes of the predator-prey tasks (predator, prey); see docs/protocol.md §1.3–1.4.
_PREDATOR_PREY_OBS = {
    ("tag", "paper"): (16, 14),
    ("tag", "mpe2"): (16, 14),
    ("world", "paper"): (24, 22),
    ("world", "mpe2"): (28, 22),  # stock world_comm adds the leader's 4-D "say" channel
}


def _make_predator_prey(name: str, flavor: str) -> Task:
    pred_dim, prey_dim = _PREDATOR_PREY_OBS[(name, flavor)]
    agents = tuple(AgentSpec(f"predator_{i}", "learner", pred_dim) for i in range(3)) + (
        AgentSpec("prey_0", "fixed", prey_dim),
    )
    return Task(name, flavor, agents, "agent0", fixed_policy="prey")


_ID_RE = re.compile(r"^(?P<name>[a-z]+)(?:-n(?P<n>-?\d+))?$")


def parse_task_id(task_id: str, flavor: str | None = None) -> Task:
    """Turn a user-typed id (``spread-n5``, ``tag:mpe2``) into a :class:`Task`.

    ``flavor`` (e.g. from ``--flavor``) is used when the id carries none; an id's own ``:flavor``
    must agree with it. Raises :class:`UsageError` naming the bad value and the valid choices.
    """
    text = task_id.strip().lower()
    id_flavor = None
    if ":" in text:
        text, id_flavor = text.split(":", 1)
    for f in (id_flavor, flavor):
        if f is not None and f not in FLAVORS:
            raise bad_choice("flavor", f, FLAVORS)
    if id_flavor and flavor and id_flavor != flavor:
        raise UsageError(f"task id {task_id!r} says flavor {id_flavor!r} but --flavor is {flavor!r}")
    chosen = id_flavor or flavor or "paper"

    m = _ID_RE.match(text)
    if not m or m.group("name") not in TASK_NAMES:
        raise bad_choice("task", task_id, ("spread", "spread-nN", "tag", "world"))
    name, n = m.group("name"), m.group("n")
    if name != "spread":
        if n is not None:
            raise UsageError(f"task {name!r} has a fixed team (3 predators, 1 prey); drop '-n{n}'")
        return _make_predator_prey(name, chosen)
    n_agents = SPREAD_DEFAULT_AGENTS if n is None else int(n)
    if not SPREAD_MIN_AGENTS <= n_agents <= SPREAD_MAX_AGENTS:
        raise UsageError(
            f"spread agent count {n_agents} is out of range; valid: {SPREAD_MIN_AGENTS}..{SPREAD_MAX_AGENTS}"
        )
    return _make_spread(n_agents, chosen)


def default_tasks(flavor: str = "paper") -> tuple[Task, ...]:
    """The paper's three MPE tasks."""
    return tuple(parse_task_id(t, flavor) for t in TASK_NAMES)


def parse_task_list(text: str) -> tuple[str, ...]:
    """Task ids (``spread,tag``, ``spread-n5``, ``tag:mpe2``) → canonical ids; ``all`` = the paper's three."""
    chosen = items(text)
    if len(chosen) == 1 and chosen[0].lower() == "all":
        return PAPER_TASKS
    if not chosen:
        raise bad_choice("task", text, ("spread", "spread-nN", "tag", "world", "all"))
    out: list[str] = []
    for item in chosen:
        tid = parse_task_id(item).id
        if tid not in out:
            out.append(tid)
    return tuple(out)
