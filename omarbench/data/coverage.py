"""Joint state-action coverage (SACo) of a dataset, as OG-MARL's dataset cards report it.

Schweighofer et al., "A Dataset Perspective on Offline Reinforcement Learning" (CoLLAs 2022,
arXiv:2111.04714) measure a dataset's exploration by its number of unique state-action pairs (SACo,
there normalised by a reference dataset's count). OG-MARL (InstaDeep's offline MARL datasets,
github.com/instadeepai/og-marl) puts a joint version in its dataset cards, computed by its vault
utilities: the number of distinct (global state, joint action) rows after rounding every value to 4
decimals, divided by the number of transitions.

We compute that definition with one substitution: our stores have no separate global state, so the
state is the joint observation (every agent's observation, fixed agents included, concatenated), and
the joint action is every agent's action. Values are rounded to ``decimals`` places (4, OG-MARL's, by
default). A value of 1 means no transition repeats; with continuous observations nearly every row is
distinct at 4 decimals, which is why OG-MARL's MPE cards show 1.00 for every level; a coarser rounding
(the cards also give 1 decimal) is what separates narrow datasets from broad ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CITATION = (
    "Schweighofer et al., A Dataset Perspective on Offline Reinforcement Learning, CoLLAs 2022; the joint "
    "version of OG-MARL's dataset cards (github.com/instadeepai/og-marl)"
)
DEFAULT_DECIMALS = 4
CARD_DECIMALS = (4, 1)


def joint_rows(observations: Sequence[np.ndarray], actions: Sequence[np.ndarray], decimals: int) -> np.ndarray:
    """Every transition's (joint observation, joint action) as one row of integers: value × 10^decimals,
    rounded half to even (numpy's ``round``), so equal rounded rows compare equal exactly (−0 == 0)."""
    cols = [np.asarray(a, dtype=np.float64).reshape(len(a), -1) for a in (*observations, *actions)]
    scale = 10.0 ** int(decimals)
    return np.concatenate([np.rint(c * scale).astype(np.int64) for c in cols], axis=1)


def count_unique_rows(rows: np.ndarray) -> int:
    if len(rows) == 0:
        return 0
    rows = np.ascontiguousarray(rows)
    return int(len(np.unique(rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel())))


def joint_saco(observations: Sequence[np.ndarray], actions: Sequence[np.ndarray],
               decimals: int = DEFAULT_DECIMALS) -> float:
    """Distinct rounded (joint observation, joint action) rows over transitions (NaN for no transitions)."""
    rows = joint_rows(observations, actions, decimals)
    return count_unique_rows(rows) / len(rows) if len(rows) else float("nan")


def dataset_saco(group, info, decimals: Sequence[int] = CARD_DECIMALS) -> dict[str, float]:
    """``{"4": saco, "1": saco}`` of a store (reads every agent's observations and actions)."""
    from omarbench.data import schema
    from omarbench.data.store import read_into

    n = info.n_transitions
    obs, acts = [], []
    for a in info.task.agents:
        obs.append(read_into(group[schema.agent_array_path(a.name, "observations")],
                             np.empty((n, a.obs_dim), np.float32), info))
        acts.append(read_into(group[schema.agent_array_path(a.name, "actions")],
                              np.empty((n, a.act_dim), np.float32), info))
    return {str(d): joint_saco(obs, acts, d) for d in decimals}
