"""Episodes of a dataset: iterate, sample, index, and recreate the environment they came from.

The names follow Minari's episode API (``iterate_episodes``, ``sample_episodes``, ``recover_environment``,
``total_episodes``, ``total_steps``), with one multi-agent difference: an episode holds one array per
agent, in the task's agent order (fixed agents included)::

    from omarbench.data.episodes import load_episodes
    data = load_episodes("tag-expert")                  # digest-checked, like load_dataset
    for ep in data.iterate_episodes():                   # or data.sample_episodes(8, seed=0), data[k]
        ep.observations[0]                                # agent 0: float32 [T, obs_dim]
        ep.actions[0], ep.rewards[:, 0], ep.truncations   # [T, 2], [T], [T]
        ep.reported_return                                # the task's reported return of this episode
    env = data.recover_environment(num_envs=4)            # the task's batched environment, from metadata

An episode's rows are ``episode_starts[k]:episode_starts[k + 1]`` of the store; arrays are views into
the loaded dataset, not copies.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from omarbench.data.reader import OfflineDataset, load_dataset
from omarbench.errors import UsageError


@dataclass(frozen=True)
class Episode:
    """One episode of every agent: row t of every array is step t."""

    id: int
    agents: tuple[str, ...]
    observations: list[np.ndarray]  # per agent float32 [T, obs_dim]
    actions: list[np.ndarray]  # per agent float32 [T, act_dim]
    next_observations: list[np.ndarray]  # per agent float32 [T, obs_dim]
    rewards: np.ndarray  # float32 [T, n_agents]
    terminations: np.ndarray  # bool [T]
    truncations: np.ndarray  # bool [T]
    reported_return: float

    def __len__(self) -> int:
        return int(self.rewards.shape[0])

    def final_observations(self) -> list[np.ndarray]:
        """Per agent ``[T + 1, obs_dim]``: the observations followed by the last successor (Minari's layout)."""
        return [np.concatenate([o, n[-1:]]) for o, n in zip(self.observations, self.next_observations)]


class EpisodeDataset:
    """A loaded dataset seen as episodes (see the module docstring)."""

    def __init__(self, dataset: OfflineDataset):
        self.dataset = dataset
        self.task = dataset.task
        self.level = dataset.level
        self.metadata = dataset.metadata
        self._obs = [a.observations.numpy() for a in dataset.agents]
        self._act = [a.actions.numpy() for a in dataset.agents]
        self._next = [a.next_observations.numpy() for a in dataset.agents]
        self._rew = np.stack([a.rewards.numpy() for a in dataset.agents], axis=1)
        self._term = dataset.terminals.numpy()
        self._trunc = dataset.truncations.numpy()
        self._starts = dataset.episode_starts.numpy()
        self._returns = dataset.episode_returns

    @property
    def id(self) -> str:
        return self.dataset.id

    @property
    def total_episodes(self) -> int:
        return len(self._starts) - 1

    @property
    def total_steps(self) -> int:
        return int(self._starts[-1])

    @property
    def episode_indices(self) -> np.ndarray:
        return np.arange(self.total_episodes)

    @property
    def reference_returns(self) -> dict:
        return self.dataset.reference_returns

    def __len__(self) -> int:
        return self.total_episodes

    def __getitem__(self, k: int) -> Episode:
        n = self.total_episodes
        if not isinstance(k, (int, np.integer)) or not -n <= int(k) < n:
            raise UsageError(f"episode index {k!r} is out of range; {self.id} has {n} episodes (0..{n - 1})")
        k = int(k) % n
        lo, hi = int(self._starts[k]), int(self._starts[k + 1])
        return Episode(
            id=k,
            agents=tuple(a.name for a in self.task.agents),
            observations=[o[lo:hi] for o in self._obs],
            actions=[a[lo:hi] for a in self._act],
            next_observations=[o[lo:hi] for o in self._next],
            rewards=self._rew[lo:hi],
            terminations=self._term[lo:hi],
            truncations=self._trunc[lo:hi],
            reported_return=float(self._returns[k]),
        )

    def iterate_episodes(self, episode_indices: Iterable[int] | None = None) -> Iterator[Episode]:
        """The episodes in order, or those of ``episode_indices`` in the order given."""
        for k in range(self.total_episodes) if episode_indices is None else episode_indices:
            yield self[k]

    def sample_episodes(self, n_episodes: int, seed: int | None = None) -> list[Episode]:
        """``n_episodes`` distinct episodes drawn uniformly (``numpy.random.default_rng(seed)``)."""
        if not 0 <= int(n_episodes) <= self.total_episodes:
            raise UsageError(f"cannot sample {n_episodes} episodes without replacement from "
                             f"{self.total_episodes}; ask for 0..{self.total_episodes}")
        picks = np.random.default_rng(seed).choice(self.total_episodes, size=int(n_episodes), replace=False)
        return [self[int(k)] for k in picks]

    def recover_environment(self, num_envs: int = 1, backend: str = "numpy", seed: int = 0):
        """The task's batched environment (:func:`omarbench.tasks.envs.make_vec_env`), rebuilt from the
        task spec stored in the dataset, with its fixed agents (the prey of tag and world) driven inside."""
        from omarbench.tasks.envs import make_vec_env

        return make_vec_env(self.task, num_envs, backend=backend, seed=seed)


def load_episodes(
    id_or_path: str | os.PathLike, root: str | os.PathLike | None = None, check_digest: bool = True
) -> EpisodeDataset:
    """Load a complete dataset (by id or path, as :func:`omarbench.data.load_dataset`) as episodes."""
    return EpisodeDataset(load_dataset(id_or_path, root, device="cpu", check_digest=check_digest))
