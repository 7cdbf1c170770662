"""Synthetic episodes with a task's shapes, for tests and benchmarks of the dataset format.

Episode ``k`` of a seed is always the same, whatever batches it is generated in (episodes are drawn in
fixed blocks of ``BLOCK`` from ``default_rng([seed, block])``), so a writer that is killed and resumed
can regenerate exactly the episodes it still needs. Values: observations standard normal with
``next_observations[t] == observations[t + 1]`` inside an episode, actions uniform in [-1, 1], rewards
standard normal, truncation on the last step. Not environment data: use it for format tests only.
"""

from __future__ import annotations

import numpy as np

from omarbench.tasks.spec import Task

BLOCK = 64


def _block(task: Task, seed: int, block: int, t: int) -> tuple:
    rng = np.random.default_rng([seed, block])
    obs_seq = [rng.standard_normal((BLOCK, t + 1, a.obs_dim)) for a in task.agents]
    actions = [rng.uniform(-1.0, 1.0, (BLOCK, t, a.act_dim)) for a in task.agents]
    rewards = rng.standard_normal((BLOCK, t, task.n_agents))
    return obs_seq, actions, rewards


def synthetic_episodes(task: Task, start: int, count: int, seed: int = 0, episode_length: int | None = None):
    """Arguments for ``DatasetWriter.append_episodes``: episodes ``start .. start+count-1`` of ``seed``.

    Returns ``(observations, actions, rewards, next_observations, terminals, truncations)`` shaped
    ``[count, T, ...]`` as the writer expects (float64 like the environments produce).
    """
    t = task.episode_length if episode_length is None else episode_length
    parts: list[tuple] = []
    for blk in range(start // BLOCK, (start + count - 1) // BLOCK + 1 if count else start // BLOCK):
        lo = max(start, blk * BLOCK) - blk * BLOCK
        hi = min(start + count, (blk + 1) * BLOCK) - blk * BLOCK
        obs_seq, actions, rewards = _block(task, seed, blk, t)
        parts.append(([o[lo:hi] for o in obs_seq], [a[lo:hi] for a in actions], rewards[lo:hi]))
    if parts:
        obs_seq = [np.concatenate([p[0][i] for p in parts]) for i in range(task.n_agents)]
        actions = [np.concatenate([p[1][i] for p in parts]) for i in range(task.n_agents)]
        rewards = np.concatenate([p[2] for p in parts])
    else:
        obs_seq = [np.zeros((0, t + 1, a.obs_dim)) for a in task.agents]
        actions = [np.zeros((0, t, a.act_dim)) for a in task.agents]
        rewards = np.zeros((0, t, task.n_agents))
    terminals = np.zeros((count, t), dtype=bool)
    truncations = np.zeros((count, t), dtype=bool)
    truncations[:, -1] = True
    observations = [o[:, :-1] for o in obs_seq]
    next_observations = [o[:, 1:] for o in obs_seq]
    return observations, actions, rewards, next_observations, terminals, truncations
