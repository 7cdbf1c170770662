"""Verifying a dataset: decode every chunk (checksums), recompute the digest, check episode structure.

Unlike the loader, which stops at the first problem, :func:`verify_dataset` reads everything it can and
lists every problem it finds.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from omarbench.data import schema
from omarbench.data.stats import episode_returns, return_statistics
from omarbench.data.store import StoreInfo, open_dataset, structure_problems
from omarbench.errors import OmarbenchError


@dataclass
class VerifyResult:
    """Outcome of a verification: ``ok`` is true only when ``problems`` is empty."""

    path: Path
    id: str | None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    digest_recorded: str | None = None
    digest_computed: str | None = None
    chunks_checked: int = 0
    complete: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_dataset(id_or_path: str | os.PathLike, root: str | os.PathLike | None = None) -> VerifyResult:
    """Check one store thoroughly. A bad id or a missing path raises; problems in the store are listed."""
    path = schema.resolve_dataset(id_or_path, root)
    try:
        group, info = open_dataset(id_or_path, root)
    except OmarbenchError as exc:
        return VerifyResult(path, None, problems=[str(exc)])
    result = VerifyResult(path, info.id, digest_recorded=info.digest, complete=info.complete)
    if not info.complete:
        result.problems.append(
            f"incomplete: {info.n_transitions} transitions committed, never finalized (checked that prefix)"
        )
    result.problems += structure_problems(group, info)
    hashes, shapes, arrays = _check_chunks(group, info, result)
    _check_episodes(info, arrays, result)
    if info.complete:
        _check_digest(info, hashes, shapes, result)
    stray = [str(p.relative_to(path)) for p in path.rglob("*.partial")]
    if stray:
        result.warnings.append(f"{len(stray)} leftover temporary file(s) from an interrupted write: {stray[0]}")
    if info.complete and (path / schema.LOCK_NAME).exists():
        result.warnings.append(f"leftover writer lock file {schema.LOCK_NAME} (harmless)")
    return result


def _check_chunks(group, info: StoreInfo, result: VerifyResult):
    """Decode every chunk of every array; hash arrays whose chunks all decode.

    Returns ``(hashes, shapes, small)``: per-array SHA-256 (absent when unreadable), the arrays' shapes
    as stored, and the arrays needed for the episode checks (terminals, truncations, episode_starts,
    rewards), when readable.
    """
    needed = {"terminals", "truncations", schema.EPISODE_STARTS}
    needed |= {schema.agent_array_path(a.name, "rewards") for a in info.task.agents}
    hashes: dict[str, str] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    small: dict[str, np.ndarray] = {}
    for p in schema.canonical_arrays(info.task):
        try:
            arr = group[p]
        except Exception:
            continue  # reported by structure_problems
        rows = arr.shape[0]
        if not info.complete:  # only the committed prefix counts
            rows = min(rows, info.n_episodes + 1 if p == schema.EPISODE_STARTS else info.n_transitions)
        shapes[p] = (rows, *arr.shape[1:])
        c = arr.chunks[0]
        h = hashlib.sha256()
        good = True
        parts = []
        for lo in range(0, rows, c):
            hi = min(rows, lo + c)
            key = arr.metadata.encode_chunk_key((lo // c, *(0,) * (arr.ndim - 1)))
            result.chunks_checked += 1
            if not (info.path / p / key).exists():
                good = False  # reported as missing by structure_problems
                continue
            try:
                block = np.asarray(arr[lo:hi])
            except Exception as exc:
                msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                result.problems.append(f"{p}: chunk {key} is corrupt ({msg})")
                good = False
                continue
            if good:
                h.update(schema.array_bytes(block))
            if p in needed:
                parts.append(block)
        if good:
            hashes[p] = h.hexdigest()
            if p in needed:
                small[p] = np.concatenate(parts) if parts else np.zeros((0, *arr.shape[1:]), arr.dtype)
    return hashes, shapes, small


def _check_episodes(info: StoreInfo, arrays: dict[str, np.ndarray], result: VerifyResult) -> None:
    starts = arrays.get(schema.EPISODE_STARTS)
    term, trunc = arrays.get("terminals"), arrays.get("truncations")
    if starts is None or term is None or trunc is None:
        return
    n = len(term)
    if len(starts) == 0 or starts[0] != 0 or starts[-1] != n or np.any(np.diff(starts) <= 0):
        result.problems.append("episode_starts: not strictly increasing offsets from 0 to the number of rows")
        return
    ends = np.zeros(n, dtype=bool)
    ends[starts[1:] - 1] = True
    flags = term | trunc
    if np.any(flags & ~ends) or np.any(~flags & ends):
        result.problems.append("terminals/truncations do not match the episode boundaries")
    rewards = [arrays.get(schema.agent_array_path(a.name, "rewards")) for a in info.task.agents]
    if info.complete and all(r is not None for r in rewards):
        stats = return_statistics(episode_returns(info.task, np.stack(rewards, axis=1), starts))
        recorded = info.returns
        for key in ("episodes", "mean", "std", "min", "max"):
            want, got = recorded.get(key), stats[key]
            if want is None or not math.isclose(float(want), float(got), rel_tol=1e-9, abs_tol=1e-9):
                result.problems.append(f"return statistics: recorded {key}={want}, recomputed {got}")
                break


def _check_digest(
    info: StoreInfo, hashes: dict[str, str], shapes: dict[str, tuple[int, ...]], result: VerifyResult
) -> None:
    recorded = info.attrs.get("array_digests") or {}
    for p in schema.canonical_arrays(info.task):
        if p in hashes and recorded.get(p) != hashes[p]:
            result.problems.append(f"{p}: content differs from its recorded digest")
    if len(hashes) == len(schema.canonical_arrays(info.task)):
        specs = schema.row_array_specs(info.task)
        dtypes = {p: dt for p, (_, dt) in specs.items()}
        dtypes[schema.EPISODE_STARTS] = np.dtype("<i8")
        result.digest_computed = schema.digest_from_array_hashes(info.task, shapes, dtypes, hashes)
        if result.digest_computed != info.digest:
            result.problems.append(
                f"content digest {result.digest_computed[:12]} differs from the recorded {str(info.digest)[:12]}"
            )
    else:
        result.problems.append("content digest not recomputed: some arrays are unreadable")
