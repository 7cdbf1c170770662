"""Reference environments on ``mpe2``'s own engine and scenario classes (one environment at a time).

Two flavors (docs/protocol.md §1):

* ``mpe2``  stock ``mpe2`` worlds, scenarios, rewards and observations, stepped exactly as
  ``mpe2.simple_*_v3`` step them (the 2-D action goes through the 5-D float32 adapter).
* ``paper`` the authors' scenarios, built by subclassing ``mpe2``'s classes and overriding only
  what differs: the integration order (velocity first, then position), the doubled acceleration
  (force gain ``accel**2``), the rewards, the spread reset range and the silent, all-leader world.

This module is the truth the batched engine is tested against; it is slow by design.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.utils import seeding
from mpe2._mpe_utils.core import World
from mpe2.simple_spread.simple_spread import Scenario as _StockSpread
from mpe2.simple_tag.simple_tag import Scenario as _StockTag
from mpe2.simple_world_comm.simple_world_comm import Scenario as _StockWorld

from omarbench.tasks.spec import Task

DEFAULT_SENSITIVITY = 5.0  # force gain of agents without ``accel`` (both flavors)
SPREAD_LOCAL_RATIO = 0.5  # stock simple_spread_v3 default


def to_mpe2_action(actions: np.ndarray) -> np.ndarray:
    """2-D force commands in [-1, 1] → mpe2's continuous 5-D action ``Box(0, 1)`` (float32).

    ``[0, max(-x, 0), max(x, 0), max(-y, 0), max(y, 0)]``; works on any leading shape.
    """
    a = np.clip(np.asarray(actions, dtype=np.float64), -1.0, 1.0)
    x, y = a[..., 0], a[..., 1]
    zero = np.zeros_like(x)
    out = np.stack([zero, np.maximum(-x, 0), np.maximum(x, 0), np.maximum(-y, 0), np.maximum(y, 0)], -1)
    return out.astype(np.float32)


def _dist(a: Any, b: Any) -> float:
    return float(np.sqrt(np.sum(np.square(a.state.p_pos - b.state.p_pos))))


def _bound(x: float) -> float:
    """Out-of-arena penalty of the predator-prey tasks (per axis, on |position|)."""
    if x < 0.9:
        return 0.0
    if x < 1.0:
        return (x - 0.9) * 10
    return min(np.exp(2 * x - 2), 10)


def _paper_integrate_state(world: World, p_force: list) -> None:
    """The original MPE integrator: damp and add force to velocity, clip speed, then move."""
    for i, entity in enumerate(world.entities):
        if not entity.movable:
            continue
        entity.state.p_vel = entity.state.p_vel * (1 - world.damping)
        if p_force[i] is not None:
            entity.state.p_vel += (p_force[i] / entity.mass) * world.dt
        if entity.max_speed is not None:
            speed = np.sqrt(np.square(entity.state.p_vel[0]) + np.square(entity.state.p_vel[1]))
            if speed > entity.max_speed:
                entity.state.p_vel = (
                    entity.state.p_vel
                    / np.sqrt(np.square(entity.state.p_vel[0]) + np.square(entity.state.p_vel[1]))
                    * entity.max_speed
                )
        entity.state.p_pos += entity.state.p_vel * world.dt


def _use_paper_physics(world: World) -> World:
    """Give a stock world instance the paper integrator (a subclass of its own class)."""
    base = type(world)
    world.__class__ = type(f"Paper{base.__name__}", (base,), {"integrate_state": _paper_integrate_state})
    return world


class PaperSpreadScenario(_StockSpread):
    """Cooperative navigation as in the authors' code: bounded inverse-distance reward, -5 per collision."""

    def make_world(self, N: int = 3) -> World:
        return _use_paper_physics(super().make_world(N))

    def reset_world(self, world: World, np_random: np.random.Generator) -> None:
        super().reset_world(world, np_random)
        # the authors spread 4..10 agents over [-2, 2]^2 (no rule above 10: we keep [-2, 2]^2)
        if len(world.agents) > 3:
            for entity in world.agents + world.landmarks:
                entity.state.p_pos = np_random.uniform(-2, +2, world.dim_p)

    def reward(self, agent: Any, world: World) -> float:
        rew = 0.0
        with np.errstate(divide="ignore"):
            for lm in world.landmarks:
                nearest = np.float64(min(_dist(a, lm) for a in world.agents))  # 1/0 -> inf, capped at 10
                rew += min(1.0 / nearest, 10.0)
        if agent.collide:
            for a in world.agents:
                if a is not agent and self.is_collision(a, agent):
                    rew -= 5.0
        return rew

    def global_reward(self, world: World) -> float:
        return 0.0


class _PaperPredatorPreyRewards:
    """Shaped predator-prey rewards shared by the paper's tag and world."""

    catch_bonus: float = 10.0
    bound_weight: float = 1.0

    def adversary_reward(self, agent: Any, world: World) -> float:
        prey = self.good_agents(world)
        predators = self.adversaries(world)
        rew = 0.0
        for adv in predators:
            rew -= 0.1 * min(_dist(a, adv) for a in prey)
        for ag in prey:
            for adv in predators:
                if self.is_collision(ag, adv):
                    rew += self.catch_bonus
        return rew

    def _prey_base_reward(self, agent: Any, world: World) -> float:
        rew = 0.0
        predators = self.adversaries(world)
        for adv in predators:
            rew += 0.1 * _dist(agent, adv)
        for adv in predators:
            if self.is_collision(adv, agent):
                rew -= self.catch_bonus
        for p in range(world.dim_p):
            rew -= self.bound_weight * _bound(abs(agent.state.p_pos[p]))
        return rew


class PaperTagScenario(_PaperPredatorPreyRewards, _StockTag):
    """Predator-prey with the shaped rewards of the authors' code."""

    def make_world(self, num_good: int = 1, num_adversaries: int = 3, num_obstacles: int = 2) -> World:
        return _use_paper_physics(super().make_world(num_good, num_adversaries, num_obstacles))

    def agent_reward(self, agent: Any, world: World) -> float:
        return self._prey_base_reward(agent, world)


class PaperWorldScenario(_PaperPredatorPreyRewards, _StockWorld):
    """The authors' simple_world: 3 predators, 1 prey, all silent leaders, food and forests."""

    catch_bonus = 5.0
    bound_weight = 2.0

    def make_world(
        self,
        num_good_agents: int = 1,
        num_adversaries: int = 3,
        num_landmarks: int = 1,
        num_food: int = 2,
        num_forests: int = 2,
    ) -> World:
        world = super().make_world(num_good_agents, num_adversaries, num_landmarks, num_food, num_forests)
        for agent in world.agents:
            agent.silent = True
            agent.leader = True  # every agent sees every other: forests hide nobody
        return _use_paper_physics(world)

    def agent_reward(self, agent: Any, world: World) -> float:
        rew = self._prey_base_reward(agent, world)
        for food in world.food:
            if self.is_collision(agent, food):
                rew += 2.0
        rew += 0.05 * min(_dist(food, agent) for food in world.food)  # sign as in the authors' code
        return rew

    def observation(self, agent: Any, world: World) -> np.ndarray:
        entity_pos = [e.state.p_pos - agent.state.p_pos for e in world.landmarks]
        in_forest = [np.array([1.0 if self.is_collision(agent, f) else -1.0]) for f in world.forests]
        others = [o for o in world.agents if o is not agent]
        other_pos = [o.state.p_pos - agent.state.p_pos for o in others]
        other_vel = [o.state.p_vel for o in others if not o.adversary]
        head = [agent.state.p_vel, agent.state.p_pos, *entity_pos, *other_pos]
        if agent.adversary:
            return np.concatenate(head + other_vel + in_forest)
        return np.concatenate(head + in_forest + other_vel)


def _build(task: Task) -> tuple[Any, World, float | None]:
    """Scenario, world and local_ratio (stock spread blends rewards) for a task."""
    paper = task.flavor == "paper"
    if task.name == "spread":
        scenario = PaperSpreadScenario() if paper else _StockSpread()
        return scenario, scenario.make_world(task.n_agents), None if paper else SPREAD_LOCAL_RATIO
    if task.name == "tag":
        scenario = PaperTagScenario() if paper else _StockTag()
        return scenario, scenario.make_world(1, 3, 2), None
    if task.name == "world":
        scenario = PaperWorldScenario() if paper else _StockWorld()
        return scenario, scenario.make_world(1, 3, 1, 2, 2), None
    raise ValueError(f"no reference environment for task {task.name!r}")


class ReferenceEnv:
    """One MPE world of a task, stepped with every agent's 2-D action (float64 state).

    ``reset(seed)`` draws the initial state as ``mpe2`` does (same seed, same state);
    ``set_state``/``get_state`` read and write every entity's position and velocity.
    Observations are float64 arrays (one per agent, sizes as in the task spec).
    """

    def __init__(self, task: Task, seed: int | None = None) -> None:
        self.task = task
        self.scenario, self.world, self.local_ratio = _build(task)
        self.paper = task.flavor == "paper"
        self.steps = 0
        self.reset(seed)

    @property
    def entity_names(self) -> list[str]:
        return [e.name for e in self.world.entities]

    @property
    def entity_sizes(self) -> np.ndarray:
        return np.array([e.size for e in self.world.entities], dtype=np.float64)

    def reset(self, seed: int | None = None) -> list[np.ndarray]:
        rng, _ = seeding.np_random(seed)
        self.scenario.reset_world(self.world, rng)
        self.steps = 0
        return self.observations()

    def get_state(self) -> tuple[np.ndarray, np.ndarray]:
        ents = self.world.entities
        pos = np.array([e.state.p_pos for e in ents], dtype=np.float64)
        vel = np.array([e.state.p_vel if e.state._p_vel is not None else np.zeros(2) for e in ents])
        return pos, vel.astype(np.float64)

    def set_state(self, pos: np.ndarray, vel: np.ndarray) -> list[np.ndarray]:
        ents = self.world.entities
        if np.shape(pos) != (len(ents), 2) or np.shape(vel) != (len(ents), 2):
            raise ValueError(f"state must be shaped ({len(ents)}, 2) for {self.task.id}")
        for e, p, v in zip(ents, np.asarray(pos, np.float64), np.asarray(vel, np.float64), strict=True):
            e.state.p_pos = p.copy()
            e.state.p_vel = v.copy()
        self.steps = 0
        return self.observations()

    def observations(self) -> list[np.ndarray]:
        return [np.asarray(self.scenario.observation(a, self.world), np.float64) for a in self.world.agents]

    def _set_action(self, agent: Any, action: np.ndarray) -> None:
        if self.paper:
            # the authors multiply by accel when setting the action and again when applying it
            u = np.asarray(action, np.float64) * (agent.accel or DEFAULT_SENSITIVITY)
            agent.action.u = u * agent.accel if agent.accel is not None else u
        else:
            a5 = to_mpe2_action(action)
            u = np.zeros(self.world.dim_p)
            u[0] += a5[2] - a5[1]
            u[1] += a5[4] - a5[3]
            u *= agent.accel if agent.accel is not None else DEFAULT_SENSITIVITY
            agent.action.u = u
        agent.action.c = np.zeros(self.world.dim_c)  # silence for agents that could speak

    def step(self, actions: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """Apply ``actions`` shaped ``[n_agents, 2]``; return observations and per-agent rewards."""
        actions = np.asarray(actions)
        if actions.shape != (self.task.n_agents, 2):
            raise ValueError(f"actions must be shaped ({self.task.n_agents}, 2), got {actions.shape}")
        for agent, a in zip(self.world.agents, actions, strict=True):
            self._set_action(agent, a)
        self.world.step()
        self.steps += 1
        rewards = np.array([float(self.scenario.reward(a, self.world)) for a in self.world.agents])
        if self.local_ratio is not None:
            glob = float(self.scenario.global_reward(self.world))
            rewards = glob * (1 - self.local_ratio) + rewards * self.local_ratio
        return self.observations(), rewards
