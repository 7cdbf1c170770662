"""Reference policies of the learners, scored over many batched episodes with keyed random streams.

* **uniform random**: every learner's action drawn uniformly from [-1, 1]² at every step. This is the
  benchmark's ``random`` policy (the random dataset level and the random reference return). The paper
  calls its random policy "randomly initialised", but its numbers are those of uniform random actions:
  on spread (paper flavor) uniform actions score 160.0 per episode against the paper's random reference
  159.8 (and the authors' random dataset's mean 159.6), while an untrained tanh actor (actions near
  zero) scores about 176–182 (docs/protocol.md §2).
* **chase**: a scripted team for the predator-prey tasks: every predator pushes with a unit force
  straight at the prey's current position. It needs no training and separates easy prey from hard
  prey far more sharply than random predators do; the prey selection reports it.

Episodes run in rounds of ``envs`` copies; round ``r`` resets the environments to episode ``r`` of
their seed stream and draws its actions from ``numpy.random.default_rng([seed, key, r])``, so a score
depends only on (task, policy, fixed policy, seed, key, episodes, envs).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from omarbench.tasks.envs import make_vec_env
from omarbench.tasks.prey import FixedPolicy
from omarbench.tasks.spec import Task
from omarbench.tasks.vec import VecEnv

UNIFORM_RANDOM = "uniform random actions: every learner's action drawn from U(-1, 1)^2 at every step"
CHASE = "scripted chase: every predator pushes with a unit force straight at the prey"

# actions of the learners [E, n_learners, 2] from the environment, the observations and the round's stream
Actions = Callable[[VecEnv, list[np.ndarray], np.random.Generator], np.ndarray]


def uniform_actions(env: VecEnv, obs: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(-1.0, 1.0, (env.num_envs, len(env.task.learner_indices), 2))


def chase_actions(env: VecEnv, obs: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Unit forces from every learner (predator) towards the first fixed agent (the prey)."""
    if not env.task.fixed_indices:
        raise ValueError(f"task {env.task.id!r} has no prey to chase")
    pos, _ = env.get_state()
    prey = env.task.fixed_indices[0]
    d = pos[:, prey][:, None, :] - pos[:, list(env.task.learner_indices)]
    norm = np.linalg.norm(d, axis=-1, keepdims=True)
    return np.where(norm > 1e-9, d / np.maximum(norm, 1e-9), 0.0)


def _entity_sizes(env: VecEnv) -> np.ndarray:
    sizes = env.entity_sizes if hasattr(env, "entity_sizes") else env.envs[0].entity_sizes()  # numpy / mpe2
    return np.asarray(sizes, dtype=np.float64)


def policy_rollout(task: Task, episodes: int, actions: Actions, *, seed: int, key: int, backend: str = "numpy",
                   fixed_policy: FixedPolicy | None = None, envs: int = 1_000) -> tuple[np.ndarray, np.ndarray]:
    """Per-step rewards [episodes, T, n_agents] of ``actions`` and each episode's number of contacts.

    A contact is a (learner, fixed agent) pair whose bodies overlap after a step (a catch on tag and
    world: the quantity both flavors reward); counts are summed over the states after steps
    0..T-2 (the state after the last step is replaced by the auto-reset).
    """
    if episodes < 1:
        raise ValueError(f"episodes must be positive, got {episodes}")
    envs = min(envs, episodes)
    env = make_vec_env(task, envs, backend, seed=seed, fixed_policy=fixed_policy)
    T = task.episode_length
    rounds = -(-episodes // envs)
    learners, fixed = list(task.learner_indices), list(task.fixed_indices)
    rewards = np.empty((rounds, envs, T, task.n_agents))
    contacts = np.zeros((rounds, envs))
    reach = None
    for r in range(rounds):
        rng = np.random.default_rng([seed, key, r])
        obs = env.reset(episode=r)
        if reach is None and fixed:
            sizes = _entity_sizes(env)
            reach = sizes[learners][:, None] + sizes[fixed][None, :]
        for t in range(T):
            step = env.step(actions(env, obs, rng))
            rewards[r, :, t] = step.rewards
            if fixed and t < T - 1:  # the state after the last step is reset away: steps 0..T-2 count
                pos, _ = env.get_state()
                gap = np.linalg.norm(pos[:, learners][:, :, None] - pos[:, fixed][:, None], axis=-1)
                contacts[r] += (gap < reach).sum(axis=(1, 2))
            obs = step.obs
    return rewards.reshape(rounds * envs, T, task.n_agents)[:episodes], contacts.reshape(-1)[:episodes]


def policy_rewards(task: Task, episodes: int, actions: Actions, **kw) -> np.ndarray:
    """Per-step rewards [episodes, T, n_agents] of ``actions`` (see the module docstring for the streams)."""
    return policy_rollout(task, episodes, actions, **kw)[0]


def policy_returns(task: Task, episodes: int, actions: Actions, **kw) -> np.ndarray:
    """Reported return of each episode of :func:`policy_rewards`."""
    return task.reported_return(policy_rewards(task, episodes, actions, **kw))


def summary(returns: np.ndarray) -> dict[str, float]:
    """Mean, standard deviation, standard error and count of per-episode returns."""
    n = len(returns)
    std = float(returns.std())
    return {"mean": float(returns.mean()), "std": std, "se": std / max(n, 1) ** 0.5, "episodes": n}
