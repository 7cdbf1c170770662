"""Numbers derived from a dataset's rewards: per-episode reported returns, their summary, normalisation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from omarbench.tasks.spec import Task
from omarbench.vocab import normalised_score as normalised

QUANTILES: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)


def episode_returns(task: Task, rewards: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Reported return of each episode from float32 rewards ``[n_rows, n_agents]`` and episode offsets.

    Consecutive episodes of equal length are reshaped to ``[B, T, n_agents]`` and summed in float64 by
    ``task.reported_return``, so the result does not depend on how the episodes were batched.
    """
    rewards = np.asarray(rewards)
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.diff(starts)
    out = np.empty(len(lengths), dtype=np.float64)
    k = 0
    while k < len(lengths):
        t = lengths[k]
        j = k
        while j < len(lengths) and lengths[j] == t:
            j += 1
        block = rewards[starts[k] : starts[j]].astype(np.float64).reshape(j - k, int(t), task.n_agents)
        for b0 in range(0, j - k, 4096):  # bounded float64 copies
            out[k + b0 : k + min(j - k, b0 + 4096)] = task.reported_return(block[b0 : b0 + 4096])
        k = j
    return out


def return_statistics(returns: np.ndarray) -> dict[str, Any]:
    """Mean, std (population), min, max and quantiles of the per-episode reported returns."""
    r = np.asarray(returns, dtype=np.float64)
    if r.size == 0:
        return {"episodes": 0, "mean": None, "std": None, "min": None, "max": None, "quantiles": {}}
    qs = np.quantile(r, QUANTILES)
    return {
        "episodes": int(r.size),
        "mean": float(r.mean()),
        "std": float(r.std()),
        "min": float(r.min()),
        "max": float(r.max()),
        "quantiles": {f"{q:g}": float(v) for q, v in zip(QUANTILES, qs)},
    }


def normalised_score(score: float | None, references: Mapping[str, Any] | None) -> float | None:
    """``100 (S - S_random) / (S_expert - S_random)`` with references ``{"random": {"mean"}, "expert": ...}``.

    ``None`` when a reference is missing or the two references coincide.
    """
    if score is None or not references:
        return None
    try:
        lo = float(references["random"]["mean"])
        hi = float(references["expert"]["mean"])
    except (KeyError, TypeError, ValueError):
        return None
    if not np.isfinite(lo) or not np.isfinite(hi) or hi == lo:
        return None
    return normalised(float(score), lo, hi)
