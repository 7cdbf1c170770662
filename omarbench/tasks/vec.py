"""The batched-environment driver every backend shares: seeding, fixed agents and auto-reset.

A backend (:mod:`omarbench.tasks.numpy_engine`, :class:`omarbench.tasks.envs.ReferenceVecEnv`) subclasses
:class:`VecEnv` and implements its hooks; :func:`omarbench.tasks.envs.make_vec_env` picks one. The
auto-reset rule and the reset seed stream are documented in :mod:`omarbench.tasks.envs`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from omarbench.tasks.prey import FixedPolicy, fixed_policy_for
from omarbench.tasks.spec import Task


@dataclass
class Step:
    """What one batched step returns (all agents, learners and fixed alike)."""

    obs: list[np.ndarray]  # per agent [E, obs_dim]: observation to act on next (post auto-reset)
    next_obs: list[np.ndarray]  # per agent [E, obs_dim]: the true successor of this step's state
    actions: np.ndarray  # [E, n_agents, 2]: the actions applied (fixed agents' filled in)
    rewards: np.ndarray  # [E, n_agents]
    truncated: np.ndarray  # [E] bool: this step ended the episode by the time limit
    terminated: np.ndarray  # [E] bool: always False on MPE (no terminal states)


class VecEnv:
    """Common driver: seeding, fixed agents, auto-reset. Backends implement the three hooks."""

    def __init__(self, task: Task, num_envs: int, seed: int = 0, fixed_policy: FixedPolicy | None = None):
        if num_envs < 1:
            raise ValueError(f"num_envs must be positive, got {num_envs}")
        self.task = task
        self.num_envs = num_envs
        self.seed = seed
        self.fixed_policy = fixed_policy if fixed_policy is not None else fixed_policy_for(task)
        self._learners = np.array(task.learner_indices)
        self._fixed = np.array(task.fixed_indices, dtype=int)
        self._episodes = np.zeros(num_envs, dtype=np.int64)
        self.t = np.zeros(num_envs, dtype=np.int64)
        self._obs: list[np.ndarray] | None = None

    # -- backend hooks -------------------------------------------------------------------------
    def _reset_envs(self, idx: np.ndarray, seeds: np.ndarray) -> None:
        raise NotImplementedError

    def _step_all(self, actions: np.ndarray) -> np.ndarray:
        """Apply all agents' actions [E, n_agents, 2] to every copy; return rewards [E, n_agents]."""
        raise NotImplementedError

    def _observe(self) -> list[np.ndarray]:
        """Per agent [E, obs_dim] observations of the current state."""
        raise NotImplementedError

    def get_state(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions and velocities [E, n_entities, 2] (float64)."""
        raise NotImplementedError

    def set_state(self, pos: np.ndarray, vel: np.ndarray) -> list[np.ndarray]:
        """Overwrite every copy's state; returns the observations of that state."""
        raise NotImplementedError

    # -- common driver ---------------------------------------------------------------------------
    def _episode_seeds(self, idx: np.ndarray) -> np.ndarray:
        return self.seed + idx + self._episodes[idx] * self.num_envs

    def reset(self, episode: int = 0) -> list[np.ndarray]:
        """Reset every copy to episode ``episode`` of its stream (default: the first, seed ``seed + e``).

        Resetting to episode ``k`` continues a run that stopped after ``k`` whole episodes per copy.
        """
        idx = np.arange(self.num_envs)
        self._episodes[:] = episode
        self.t[:] = 0
        self._reset_envs(idx, self._episode_seeds(idx))
        self._obs = self._observe()
        return self._obs

    @property
    def obs(self) -> list[np.ndarray]:
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        return self._obs

    def fixed_actions(self, obs: list[np.ndarray]) -> np.ndarray:
        """Actions [E, n_fixed, 2] of the fixed agents for the given observations."""
        if len(self._fixed) == 0:
            return np.zeros((self.num_envs, 0, 2))
        return np.stack([np.asarray(self.fixed_policy(obs[i]), np.float64) for i in self._fixed], axis=1)

    def step(self, learner_actions: np.ndarray) -> Step:
        learner_actions = np.asarray(learner_actions, dtype=np.float64)
        want = (self.num_envs, len(self._learners), 2)
        if learner_actions.shape != want:
            raise ValueError(f"learner actions must be shaped {want}, got {learner_actions.shape}")
        actions = np.zeros((self.num_envs, self.task.n_agents, 2))
        actions[:, self._learners] = learner_actions
        if len(self._fixed):
            actions[:, self._fixed] = self.fixed_actions(self.obs)
        rewards = self._step_all(actions)
        self.t += 1
        next_obs = self._observe()
        truncated = self.t >= self.task.episode_length
        obs = next_obs
        if truncated.any():
            idx = np.flatnonzero(truncated)
            self._episodes[idx] += 1
            self.t[idx] = 0
            self._reset_envs(idx, self._episode_seeds(idx))
            fresh = self._observe()
            obs = [np.where(truncated[:, None], f, n) for f, n in zip(fresh, next_obs)]
        self._obs = obs
        return Step(obs, next_obs, actions, rewards, truncated, np.zeros(self.num_envs, dtype=bool))
