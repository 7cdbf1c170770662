"""The batched maze2d environment: E point masses behind the common :class:`~omarbench.tasks.vec.VecEnv` driver.

Maps, goals, physics and reward live in :mod:`omarbench.tasks.maze2d`; this module only drives them.
"""

from __future__ import annotations

import numpy as np

from omarbench.tasks.maze2d import PointMass, d4rl_start, maze_for, require_mujoco, sparse_reward
from omarbench.tasks.spec import Task
from omarbench.tasks.vec import VecEnv


class Maze2dVecEnv(VecEnv):
    """Episode ``k`` of copy ``e`` starts from D4RL's start distribution drawn with
    ``numpy.random.default_rng(seed + e + k * num_envs)`` (the common seed stream)."""

    def __init__(self, task: Task, num_envs: int, seed: int = 0):
        require_mujoco()
        super().__init__(task, num_envs, seed, fixed_policy=None)
        self.maze = maze_for(task)
        self.goal = self.maze.goal
        self.points = [PointMass(self.maze.name) for _ in range(num_envs)]

    def _reset_envs(self, idx, seeds):
        for i, s in zip(idx, seeds):
            self.points[i].set(*d4rl_start(self.maze, np.random.default_rng(int(s))))

    def _step_all(self, actions):
        for p, a in zip(self.points, actions[:, 0]):
            p.step(a)
        pos = np.stack([p.data.qpos for p in self.points])
        return sparse_reward(pos, self.goal)[:, None]

    def _observe(self):
        return [np.stack([p.obs() for p in self.points])]

    def get_state(self):
        return (np.stack([p.pos for p in self.points])[:, None],
                np.stack([p.vel for p in self.points])[:, None])

    def set_state(self, pos, vel):
        for p, x, v in zip(self.points, pos, vel):
            p.set(np.asarray(x).reshape(2), np.asarray(v).reshape(2))
        self._obs = self._observe()
        return self._obs

