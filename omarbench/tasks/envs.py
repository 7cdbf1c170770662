"""Batched environments: E copies of a task stepped together, whatever the backend.

Every consumer (collection, offline evaluation, the CLI) makes environments here::

    env = make_vec_env(task, num_envs=64, backend="numpy", seed=0)
    obs = env.reset()                      # list over ALL agents of [E, obs_dim_i] float64
    step = env.step(learner_actions)       # [E, n_learners, 2]; fixed agents act inside

Fixed agents (the prey of tag/world) are driven inside the environment by a batched policy
``obs[E, obs_dim] -> actions[E, 2]``, so callers only supply the learners' actions.

**Auto-reset rule.** After the step that reaches the episode length (25), the environment records
the final observation in ``Step.next_obs`` and then resets that copy; ``Step.obs`` holds the first
observation of the next episode. ``next_obs`` of the last step is therefore never lost.
Episode ``k`` of copy ``e`` is reset with seed ``seed + e + k * num_envs`` (a fixed, documented
stream), so the same ``seed`` always gives the same trajectories.
"""

from __future__ import annotations

import numpy as np

from omarbench.tasks.mpe_ref import ReferenceEnv
from omarbench.tasks.numpy_engine import NumpyVecEnv  # the batched engine
from omarbench.tasks.prey import FixedPolicy
from omarbench.tasks.spec import Task
from omarbench.tasks.vec import Step, VecEnv  # noqa: F401  (the environments' API)
from omarbench.vocab import check_backend

Backend = str  # one of omarbench.vocab.BACKENDS


class ReferenceVecEnv(VecEnv):
    """E reference environments stepped one after the other (backend ``mpe2``)."""

    def __init__(self, task: Task, num_envs: int, seed: int = 0, fixed_policy: FixedPolicy | None = None):
        super().__init__(task, num_envs, seed, fixed_policy)
        self.envs = [ReferenceEnv(task) for _ in range(num_envs)]

    def _reset_envs(self, idx: np.ndarray, seeds: np.ndarray) -> None:
        for i, s in zip(idx, seeds):
            self.envs[i].reset(int(s))

    def _step_all(self, actions: np.ndarray) -> np.ndarray:
        return np.stack([env.step(a)[1] for env, a in zip(self.envs, actions)])

    def _observe(self) -> list[np.ndarray]:
        per_env = [env.observations() for env in self.envs]
        return [np.stack([o[i] for o in per_env]) for i in range(self.task.n_agents)]

    def get_state(self) -> tuple[np.ndarray, np.ndarray]:
        states = [env.get_state() for env in self.envs]
        return np.stack([s[0] for s in states]), np.stack([s[1] for s in states])

    def set_state(self, pos: np.ndarray, vel: np.ndarray) -> list[np.ndarray]:
        for env, p, v in zip(self.envs, pos, vel):
            env.set_state(p, v)
        self._obs = self._observe()
        return self._obs


def make_vec_env(
    task: Task,
    num_envs: int,
    backend: str = "numpy",
    seed: int = 0,
    fixed_policy: FixedPolicy | None = None,
) -> VecEnv:
    """E environments of ``task`` on the chosen backend (``numpy`` batched engine or ``mpe2`` reference)."""
    check_backend(backend)
    if backend == "mpe2":
        return ReferenceVecEnv(task, num_envs, seed, fixed_policy)
    return NumpyVecEnv(task, num_envs, seed, fixed_policy)
