"""What a dataset writer accepts: batches of whole episodes, user metadata, and stores it may resume."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from omarbench.data import schema
from omarbench.data.provenance import jsonable
from omarbench.errors import OmarbenchError, UsageError
from omarbench.tasks.spec import Task

# Root attributes the writer owns; user metadata may not set them.
RESERVED_KEYS = frozenset({
    "format", "schema_version", "omarbench_version", "id", "task", "level", "agents", "layout",
    "complete", "committed", "n_transitions", "n_episodes", "returns", "digest", "digest_algorithm",
    "array_digests", "created", "finalized", "resumed", "versions",
})
USER_DEFAULTS: dict[str, Any] = {"reference_returns": {}, "provenance": {}, "seeds": None}


def clean_user_metadata(metadata: Mapping[str, Any] | None, where: str) -> dict[str, Any]:
    meta = dict(metadata or {})
    bad = sorted(set(meta) & RESERVED_KEYS)
    if bad:
        raise UsageError(f"{where}: keys {bad} are written by omarbench itself and cannot be supplied")
    refs = meta.get("reference_returns")
    if refs is not None:
        if not isinstance(refs, Mapping):
            raise UsageError(f"{where}: reference_returns must map a level to {{'mean', 'std', 'episodes'}}")
        for name, ref in refs.items():
            if not isinstance(ref, Mapping) or "mean" not in ref:
                raise UsageError(f"{where}: reference_returns[{name!r}] needs at least a 'mean'")
    try:
        return jsonable(meta, where)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def episode_rows(task: Task, observations, actions, rewards, next_observations, terminals, truncations):
    """Check a batch of whole episodes ``[B, T, ...]`` against the task and flatten it into rows per array
    (little-endian float32, bool); returns ``(rows, rewards [B·T, n_agents], B, T)``."""
    n = task.n_agents
    for name, seq in (("observations", observations), ("actions", actions),
                      ("next_observations", next_observations)):
        if len(seq) != n:
            raise ValueError(f"{name} must be a list of {n} arrays (one per agent), got {len(seq)}")
    terminals = np.asarray(terminals)
    truncations = np.asarray(truncations)
    if terminals.ndim != 2:
        raise ValueError(f"terminals must be shaped [B, T], got {terminals.shape}")
    b, t = terminals.shape
    if b and t == 0:
        raise ValueError("episodes must have at least one step")
    rewards = np.asarray(rewards)
    expected = {"truncations": (truncations, (b, t)), "rewards": (rewards, (b, t, n))}
    for i, a in enumerate(task.agents):
        expected[f"observations[{i}] ({a.name})"] = (np.asarray(observations[i]), (b, t, a.obs_dim))
        expected[f"next_observations[{i}] ({a.name})"] = (np.asarray(next_observations[i]), (b, t, a.obs_dim))
        expected[f"actions[{i}] ({a.name})"] = (np.asarray(actions[i]), (b, t, a.act_dim))
    for name, (arr, shape) in expected.items():
        if arr.shape != shape:
            raise ValueError(f"{name} must be shaped {shape} (B={b}, T={t}), got {arr.shape}")
    for name, arr in (("terminals", terminals), ("truncations", truncations)):
        if arr.dtype != np.bool_:
            raise ValueError(f"{name} must be a bool array, got {arr.dtype}")
    if b == 0:
        return {}, None, 0, t
    ends = terminals | truncations
    if not ends[:, -1].all():
        bad = int(np.flatnonzero(~ends[:, -1])[0])
        raise ValueError(f"episode {bad} of this batch does not end: its last step is not terminal/truncated")
    if ends[:, :-1].any():
        bad = int(np.argwhere(ends[:, :-1])[0][0])
        raise ValueError(f"episode {bad} of this batch ends before its last step; append whole episodes")
    m = b * t
    rows: dict[str, np.ndarray] = {}
    rewards32 = np.ascontiguousarray(rewards, dtype="<f4").reshape(m, n)
    for i, a in enumerate(task.agents):
        rows[schema.agent_array_path(a.name, "observations")] = np.ascontiguousarray(
            observations[i], dtype="<f4").reshape(m, a.obs_dim)
        rows[schema.agent_array_path(a.name, "actions")] = np.ascontiguousarray(
            actions[i], dtype="<f4").reshape(m, a.act_dim)
        rows[schema.agent_array_path(a.name, "rewards")] = np.ascontiguousarray(rewards32[:, i])
        rows[schema.agent_array_path(a.name, "next_observations")] = np.ascontiguousarray(
            next_observations[i], dtype="<f4").reshape(m, a.obs_dim)
    for p, arr in rows.items():
        if not np.isfinite(arr).all():
            raise ValueError(f"{p}: non-finite values (NaN or inf, or too large for float32)")
    rows["terminals"] = np.ascontiguousarray(terminals).reshape(m)
    rows["truncations"] = np.ascontiguousarray(truncations).reshape(m)
    return rows, rewards32, b, t


def check_resumable(path: Path, attrs: Mapping[str, Any]) -> None:
    where = f"{str(path)!r}"
    if attrs.get("format") != schema.FORMAT_NAME:
        raise OmarbenchError(f"{where} is not an omarbench dataset (no 'format: {schema.FORMAT_NAME}')")
    version = attrs.get("schema_version")
    if version != schema.SCHEMA_VERSION:
        raise OmarbenchError(
            f"{where} has schema version {version}; this omarbench writes version {schema.SCHEMA_VERSION} "
            "and cannot append to it: collect it again with this version"
        )
    if attrs.get("complete"):
        raise OmarbenchError(f"{where} is already complete: nothing to resume")
