"""A single-agent task (``spread-n1``) as a Gymnasium environment, so Minari can recover it.

``SingleAgentEnv(task=<Task.to_dict() or task id>, backend="numpy")`` wraps one copy of the task's
environment (:func:`omarbench.tasks.envs.make_vec_env`). Observations are float32 ``[obs_dim]``, actions
``[-1, 1]²``; episodes end by truncation after the task's episode length (MPE has no terminal states).
``reset(seed=s)`` starts the environment's episode stream at seed ``s`` (episode k then resets with
seed ``s + k``, the stream every omarbench environment uses); ``reset()`` without a seed goes on to the
next episode of the stream.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from omarbench.errors import UsageError
from omarbench.tasks.spec import Task, parse_task_id

ENTRY_POINT = "omarbench.interop.gym_env:SingleAgentEnv"


def _task(task: Task | dict | str) -> Task:
    if isinstance(task, Task):
        return task
    return Task.from_dict(task) if isinstance(task, dict) else parse_task_id(task)


class SingleAgentEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, task: Task | dict | str = "spread-n1", backend: str = "numpy"):
        self.task = _task(task)
        if self.task.n_agents != 1:
            raise UsageError(f"a Gymnasium environment needs a single-agent task; {self.task.id} has "
                             f"{self.task.n_agents} agents")
        self.backend = backend
        agent = self.task.agents[0]
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (agent.obs_dim,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (agent.act_dim,), np.float32)
        self._vec = None
        self._seed = 0
        self._episode = -1

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        from omarbench.tasks.envs import make_vec_env

        if seed is not None or self._vec is None:
            self._seed = 0 if seed is None else int(seed)
            self._vec = make_vec_env(self.task, 1, backend=self.backend, seed=self._seed)
            self._episode = -1
        self._episode += 1
        obs = self._vec.reset(episode=self._episode)
        return obs[0][0].astype(np.float32), {}

    def step(self, action):
        if self._vec is None:
            raise RuntimeError("call reset() before step()")
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(1, 1, -1), -1.0, 1.0)
        step = self._vec.step(a)
        obs = step.next_obs[0][0].astype(np.float32)
        return obs, float(step.rewards[0, 0]), bool(step.terminated[0]), bool(step.truncated[0]), {}


def env_spec(task: Task, backend: str = "numpy") -> gym.envs.registration.EnvSpec:
    """The EnvSpec that rebuilds ``SingleAgentEnv`` for ``task`` (JSON-serialisable, for Minari)."""
    return gym.envs.registration.EnvSpec(
        id=f"omarbench/{task.id.replace(':', '-')}-v0", entry_point=ENTRY_POINT,
        kwargs={"task": task.to_dict(), "backend": backend}, max_episode_steps=task.episode_length,
        disable_env_checker=True,
    )
