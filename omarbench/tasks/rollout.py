"""Roll a uniform-random policy through a task's batched environments (a quick sanity check).

Episodes run side by side (up to ``MAX_BATCH`` copies at once) on the chosen backend. Episode ``k`` is
reset with seed ``seed + k`` whatever the batch size (see the seed stream in ``omarbench.tasks.envs``);
the learners' actions come from one generator seeded with ``seed``, drawn ``[copies, learners, act_dim]``
per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from omarbench.tasks.envs import make_vec_env
from omarbench.tasks.prey import fixed_policy_for
from omarbench.tasks.spec import Task

MAX_BATCH = 1024


@dataclass(frozen=True)
class RolloutSummary:
    task_id: str
    episodes: int
    returns: np.ndarray  # reported return per episode
    fixed_policy: str | None
    backend: str = "numpy"

    @property
    def mean(self) -> float:
        return float(self.returns.mean())

    @property
    def std(self) -> float:
        return float(self.returns.std())


def random_rollout(task: Task, episodes: int = 10, seed: int = 0, backend: str = "numpy") -> RolloutSummary:
    """Learners act uniformly in [-1, 1]^act_dim; fixed agents follow the task's fixed policy."""
    from omarbench.guard import MAX_EPISODES, MAX_SEED, check_int

    check_int("--episodes", episodes, 1, MAX_EPISODES)
    check_int("--seed", seed, 0, MAX_SEED)
    copies = min(episodes, MAX_BATCH)
    env = make_vec_env(task, copies, backend=backend, seed=seed, fixed_policy=fixed_policy_for(task))
    rng = np.random.default_rng(seed)
    n_learners = len(task.learner_indices)
    rounds = -(-episodes // copies)
    rewards = np.empty((rounds, copies, task.episode_length, task.n_agents))
    env.reset()
    for r in range(rounds):  # round r holds episodes r * copies + e (the env's own seed stream)
        for t in range(task.episode_length):
            rewards[r, :, t] = env.step(rng.uniform(-1, 1, (copies, n_learners, task.act_dim))).rewards
    returns = task.reported_return(rewards.reshape(rounds * copies, task.episode_length, task.n_agents))
    fixed = env.fixed_policy
    return RolloutSummary(task.id, episodes, returns[:episodes], fixed.name if fixed else None, backend)
