"""Opening a dataset store for reading: metadata, structural checks, chunk-safe array reads.

Shared by the loader, ``verify``, the catalogue, cards and export, so they all refuse the same things
with the same one-line messages.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from omarbench.data import schema
from omarbench.errors import OmarbenchError
from omarbench.tasks.spec import Task


@dataclass
class StoreInfo:
    """A store's root attributes and what they say; no array data."""

    path: Path
    attrs: dict[str, Any]
    task: Task
    level: str
    label: str  # how to name it in messages: the id the user typed, or the path

    @property
    def id(self) -> str:
        return schema.dataset_id(self.task, self.level)

    @property
    def complete(self) -> bool:
        return bool(self.attrs.get("complete"))

    @property
    def n_transitions(self) -> int:
        """Final size when complete, else what is committed so far."""
        if self.complete:
            return int(self.attrs["n_transitions"])
        return int(self.attrs.get("committed", {}).get("transitions", 0))

    @property
    def n_episodes(self) -> int:
        if self.complete:
            return int(self.attrs["n_episodes"])
        return int(self.attrs.get("committed", {}).get("episodes", 0))

    @property
    def digest(self) -> str | None:
        return self.attrs.get("digest")

    @property
    def reference_returns(self) -> dict[str, Any]:
        return dict(self.attrs.get("reference_returns") or {})

    @property
    def returns(self) -> dict[str, Any]:
        return dict(self.attrs.get("returns") or {})

    def verify_hint(self) -> str:
        return (f"run 'omarbench datasets verify {self.label}' for details, then delete {str(self.path)!r} and "
                "collect it again (collect never rewrites a finished dataset)")


def open_dataset(id_or_path: str | os.PathLike, root: str | os.PathLike | None = None):
    """Resolve an id (under ``root``) or a path and open it: ``(zarr group, StoreInfo)``."""
    path = schema.resolve_dataset(id_or_path, root)
    by_path = isinstance(id_or_path, os.PathLike) or schema.looks_like_path(str(id_or_path))
    return open_store(path, str(path) if by_path else str(id_or_path).strip())


def open_store(path: Path, label: str | None = None):
    """Open ``path`` read-only; return ``(zarr group, StoreInfo)``.

    Raises :class:`OmarbenchError` (one line) if it is not a readable omarbench dataset or was written
    with a newer schema than this omarbench reads.
    """
    import zarr
    from zarr.storage import LocalStore

    label = label or str(path)
    try:
        group = zarr.open_group(LocalStore(path, read_only=True), mode="r")
        attrs = group.attrs.asdict()
    except Exception as exc:  # missing or unparsable zarr.json, not a group, ...
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise OmarbenchError(f"dataset {label!r} cannot be opened as a Zarr store ({msg})") from None
    if attrs.get("format") != schema.FORMAT_NAME:
        raise OmarbenchError(
            f"{label!r} is not an omarbench dataset (its root attributes lack format={schema.FORMAT_NAME!r})"
        )
    version = attrs.get("schema_version")
    if not isinstance(version, int) or version > schema.SCHEMA_VERSION:
        raise OmarbenchError(
            f"dataset {label!r} uses schema version {version}, newer than this omarbench reads "
            f"({schema.SCHEMA_VERSION}): upgrade omarbench"
        )
    try:
        task = Task.from_dict(attrs["task"])
        level = str(attrs["level"])
        schema.dataset_id(task, level)
    except Exception as exc:
        raise OmarbenchError(f"dataset {label!r} is damaged: unreadable task/level metadata ({exc})") from None
    return group, StoreInfo(path, attrs, task, level, label)


def incomplete_message(info: StoreInfo) -> str:
    cmd = info.attrs.get("command")
    how = f"rerun the command that created it to resume it ({cmd})" if cmd else "resume its collection"
    return (
        f"dataset {info.label!r} is incomplete ({info.n_transitions} transitions committed, not finalized): "
        f"{how}, or delete it"
    )


def structure_problems(group, info: StoreInfo) -> list[str]:
    """Arrays missing, of the wrong dtype or shape, or with chunks missing.

    A complete store's arrays must have exactly the recorded sizes. An incomplete store's may be longer
    than its commit record (a killed writer's uncommitted tail, dropped on resume); only the committed
    prefix must be there.
    """
    n = info.n_transitions
    problems: list[str] = []
    committed = info.attrs.get("committed", {})
    if info.complete and (
        committed.get("transitions") != info.attrs.get("n_transitions")
        or committed.get("episodes") != info.attrs.get("n_episodes")
    ):
        problems.append("commit record disagrees with the recorded sizes")
    expected = {p: ((n, *row), dt) for p, (row, dt) in schema.row_array_specs(info.task).items()}
    expected[schema.EPISODE_STARTS] = ((info.n_episodes + 1,), np.dtype("<i8"))
    for p in schema.canonical_arrays(info.task):
        shape, dtype = expected[p]
        try:
            arr = group[p]
        except Exception:
            problems.append(f"{p}: array missing")
            continue
        if np.dtype(arr.dtype) != np.dtype(dtype):
            problems.append(f"{p}: dtype {arr.dtype}, expected {np.dtype(dtype)}")
        got = tuple(arr.shape)
        if got[1:] != shape[1:] or (got[0] != shape[0] if info.complete else got[0] < shape[0]):
            problems.append(f"{p}: shape {got}, metadata says {shape}")
            continue
        missing = missing_chunks(info.path, arr, shape[0])
        if missing:
            problems.append(f"{p}: {len(missing)} chunk(s) missing ({', '.join(missing[:3])})")
    return problems


def missing_chunks(store_path: Path, arr, n_rows: int | None = None) -> list[str]:
    """Chunk keys holding rows ``[0, n_rows)`` that are not on disk (Zarr would silently read fill values)."""
    n_rows = arr.shape[0] if n_rows is None else n_rows
    if n_rows == arr.shape[0] and arr.nchunks_initialized == arr.nchunks:
        return []
    c = arr.chunks[0]
    tail = (0,) * (arr.ndim - 1)
    keys = [arr.metadata.encode_chunk_key((i, *tail)) for i in range(-(-n_rows // c))]
    return [k for k in keys if not (store_path / arr.path / k).exists()]


def require_loadable(group, info: StoreInfo) -> None:
    """Raise the one-line error a loader gives for an incomplete or structurally damaged store."""
    if not info.complete:
        raise OmarbenchError(incomplete_message(info))
    problems = structure_problems(group, info)
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise OmarbenchError(f"dataset {info.label!r} is damaged: {problems[0]}{more}; {info.verify_hint()}")


def read_into(arr, out: np.ndarray, info: StoreInfo, lo: int = 0, hi: int | None = None) -> np.ndarray:
    """Decode rows ``[lo, hi)`` of a Zarr array straight into ``out`` (no second copy in memory)."""
    from zarr.core.buffer import default_buffer_prototype

    hi = arr.shape[0] if hi is None else hi
    try:
        arr.get_basic_selection(
            slice(lo, hi), out=default_buffer_prototype().nd_buffer.from_numpy_array(out)
        )
    except Exception as exc:  # checksum mismatch (ValueError) or an undecodable chunk
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise OmarbenchError(
            f"dataset {info.label!r} is corrupt: {arr.path} rows {lo}..{hi} fail to decode ({msg}); "
            f"{info.verify_hint()}"
        ) from None
    return out


def stored_size(path: Path) -> int:
    """Bytes on disk under a store directory."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
