"""What datasets are on disk under a root: one summary row per store, read from metadata only."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from omarbench.data import schema
from omarbench.data.stats import normalised_score
from omarbench.data.store import StoreInfo, open_store
from omarbench.errors import OmarbenchError


@dataclass
class DatasetEntry:
    """One store under the root; ``error`` is set (and the rest mostly empty) if it cannot be read."""

    path: Path
    id: str | None = None
    level: str | None = None
    complete: bool = False
    n_transitions: int = 0
    n_episodes: int = 0
    mean_return: float | None = None
    normalised: float | None = None
    digest: str | None = None
    error: str | None = None

    @classmethod
    def from_info(cls, info: StoreInfo) -> DatasetEntry:
        mean = info.returns.get("mean") if info.complete else None
        return cls(
            path=info.path, id=info.id, level=info.level, complete=info.complete,
            n_transitions=info.n_transitions, n_episodes=info.n_episodes, mean_return=mean,
            normalised=normalised_score(mean, info.reference_returns), digest=info.digest,
        )


def list_datasets(root: str | os.PathLike | None = None) -> list[DatasetEntry]:
    """Every ``*.zarr`` directory directly under ``root`` (default: ``$OMARBENCH_DATA`` or the default)."""
    base = Path(root).expanduser() if root is not None else schema.default_root()
    if not base.is_dir():
        return []
    entries = []
    for path in sorted(base.glob(f"*{schema.STORE_SUFFIX}")):
        if not path.is_dir():
            continue
        try:
            _, info = open_store(path)
            entries.append(DatasetEntry.from_info(info))
        except OmarbenchError as exc:
            entries.append(DatasetEntry(path=path, error=str(exc)))
    return entries
