"""Roll a uniform-random policy through a task's reference environment (a quick sanity check)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from omarbench.errors import UsageError
from omarbench.tasks.mpe_ref import ReferenceEnv
from omarbench.tasks.prey import fixed_policy_for
from omarbench.tasks.spec import Task


@dataclass(frozen=True)
class RolloutSummary:
    task_id: str
    episodes: int
    returns: np.ndarray  # reported return per episode
    fixed_policy: str | None

    @property
    def mean(self) -> float:
        return float(self.returns.mean())

    @property
    def std(self) -> float:
        return float(self.returns.std())


def random_rollout(task: Task, episodes: int = 10, seed: int = 0) -> RolloutSummary:
    """Learners act uniformly in [-1, 1]²; fixed agents follow the task's fixed policy."""
    if episodes < 1:
        raise UsageError(f"episodes must be a positive integer, got {episodes}")
    rng = np.random.default_rng(seed)
    env = ReferenceEnv(task)
    fixed = fixed_policy_for(task)
    returns = np.empty(episodes)
    for ep in range(episodes):
        obs = env.reset(seed + ep)
        rewards = np.empty((task.episode_length, task.n_agents))
        for t in range(task.episode_length):
            actions = rng.uniform(-1, 1, (task.n_agents, 2))
            if fixed is not None:
                for i in task.fixed_indices:
                    actions[i] = fixed(obs[i][None])[0]
            obs, rewards[t] = env.step(actions)
        returns[ep] = task.reported_return(rewards)
    return RolloutSummary(task.id, episodes, returns, fixed.name if fixed else None)
