"""Loading a dataset into memory as per-agent torch tensors, for offline training.

Each array is decoded chunk by chunk straight into one preallocated float32 (or bool / int64) numpy
array, which ``torch.from_numpy`` then wraps without copying: peak memory is the data plus a few chunks.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from omarbench.data import schema
from omarbench.data.stats import episode_returns, normalised_score
from omarbench.data.store import StoreInfo, open_dataset, read_into, require_loadable
from omarbench.errors import OmarbenchError, UsageError
from omarbench.tasks.spec import Task

READ_THREADS = 3  # arrays decoded (and hashed) at once; Zarr also decodes an array's chunks concurrently


@dataclass
class AgentData:
    """One agent's transitions (row k of every tensor is the same transition)."""

    name: str
    role: str
    index: int
    observations: Any  # torch.Tensor float32 [N, obs_dim]
    actions: Any  # [N, act_dim]
    rewards: Any  # [N]
    next_observations: Any  # [N, obs_dim]

    @property
    def obs_dim(self) -> int:
        return int(self.observations.shape[1])

    @property
    def act_dim(self) -> int:
        return int(self.actions.shape[1])

    def __getitem__(self, key: str) -> Any:  # dict-style access: agent["observations"]
        if key not in schema.AGENT_FIELDS:
            raise KeyError(key)
        return getattr(self, key)


@dataclass
class OfflineDataset:
    """A complete dataset in memory. ``agents`` follow the task's agent order (fixed agents included)."""

    path: Path
    task: Task
    level: str
    metadata: dict[str, Any]
    agents: list[AgentData]
    terminals: Any  # torch.bool [N]
    truncations: Any  # torch.bool [N]
    episode_starts: Any  # torch.int64 [n_episodes + 1]
    _returns: np.ndarray | None = field(default=None, repr=False)

    @property
    def id(self) -> str:
        return schema.dataset_id(self.task, self.level)

    @property
    def digest(self) -> str:
        return self.metadata["digest"]

    @property
    def n_transitions(self) -> int:
        return int(self.metadata["n_transitions"])

    @property
    def n_episodes(self) -> int:
        return int(self.metadata["n_episodes"])

    @property
    def reference_returns(self) -> dict[str, Any]:
        return dict(self.metadata.get("reference_returns") or {})

    @property
    def learner_indices(self) -> tuple[int, ...]:
        return self.task.learner_indices

    @property
    def episode_returns(self) -> np.ndarray:
        """Reported return of every episode (float64), computed from the stored rewards."""
        if self._returns is None:
            rewards = np.stack([a.rewards.cpu().numpy() for a in self.agents], axis=1)
            self._returns = episode_returns(self.task, rewards, self.episode_starts.cpu().numpy())
        return self._returns

    def normalised_score(self, score: float) -> float | None:
        """``100 (score - random) / (expert - random)`` with this dataset's stored reference returns."""
        return normalised_score(score, self.reference_returns)


def _torch_device(device: str):
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise UsageError(f"unknown device {device!r}; valid: cpu, cuda, cuda:N, mps") from None
    try:
        torch.empty(0, device=dev)
    except (RuntimeError, AssertionError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise OmarbenchError(f"device {device!r} is not available here ({msg}); use device='cpu'") from None
    return dev


def load_dataset(
    id_or_path: str | os.PathLike,
    root: str | os.PathLike | None = None,
    device: str = "cpu",
    check_digest: bool = True,
) -> OfflineDataset:
    """Load a complete dataset by id (under ``root``, ``$OMARBENCH_DATA`` or the default root) or path.

    Refuses, with a one-line :class:`OmarbenchError`, stores that are incomplete, damaged (missing
    arrays or chunks, wrong shapes), corrupt (a chunk fails its crc32c checksum) or of a newer schema.
    With ``check_digest`` (default) every array is also hashed and compared with the recorded digest.
    """
    dev = _torch_device(device)
    group, info = open_dataset(id_or_path, root)
    require_loadable(group, info)
    n = info.n_transitions
    specs = schema.row_array_specs(info.task)

    def read(p: str) -> tuple[np.ndarray, str | None]:
        """Decode one array into a fresh buffer, then hash it (hashlib releases the GIL)."""
        if p == schema.EPISODE_STARTS:
            out = np.empty(info.n_episodes + 1, dtype=np.int64)
        else:
            row, dtype = specs[p]
            out = np.empty((n, *row), dtype=dtype)
        read_into(group[p], out, info)
        return out, hashlib.sha256(schema.array_bytes(out)).hexdigest() if check_digest else None

    paths = schema.canonical_arrays(info.task)
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:  # overlap decoding and hashing
        results = dict(zip(paths, pool.map(read, paths)))
    arrays = {p: a for p, (a, _) in results.items()}
    if check_digest:
        _check_digest(info, arrays, {p: h for p, (_, h) in results.items()})

    import torch

    def tensor(a: np.ndarray):
        t = torch.from_numpy(a)
        return t if dev.type == "cpu" else t.to(dev)

    agents = [
        AgentData(
            name=a.name, role=a.role, index=i,
            **{f: tensor(arrays.pop(schema.agent_array_path(a.name, f))) for f in schema.AGENT_FIELDS},
        )
        for i, a in enumerate(info.task.agents)
    ]
    return OfflineDataset(
        path=info.path, task=info.task, level=info.level, metadata=info.attrs, agents=agents,
        terminals=tensor(arrays["terminals"]), truncations=tensor(arrays["truncations"]),
        episode_starts=tensor(arrays[schema.EPISODE_STARTS]),
    )


def _check_digest(info: StoreInfo, arrays: dict[str, np.ndarray], hashes: dict[str, str]) -> None:
    recorded = info.attrs.get("array_digests") or {}
    for p in schema.canonical_arrays(info.task):
        if recorded.get(p) != hashes[p]:
            raise OmarbenchError(
                f"dataset {info.label!r} is corrupt: {p} does not match its recorded digest; {info.verify_hint()}"
            )
    digest = schema.digest_from_array_hashes(
        info.task, {p: a.shape for p, a in arrays.items()}, {p: a.dtype for p, a in arrays.items()}, hashes
    )
    if digest != info.digest:
        raise OmarbenchError(
            f"dataset {info.label!r} is corrupt: content digest {digest[:12]} differs from the recorded "
            f"{str(info.digest)[:12]}; {info.verify_hint()}"
        )
