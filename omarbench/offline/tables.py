"""Datasets → per-group sample tables: one contiguous table per field for every group of learners with
equal observation/action sizes, and (for MA-ICQ) which rows have a dataset next action."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from omarbench.errors import OmarbenchError


def next_action_rows(dataset, learner_indices: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """For ICQ: which rows have a dataset next action, and where it is.

    Row i's next action is row i+1's action when row i neither terminates nor truncates and row i+1
    starts where row i ended (``next_observations[i] == observations[i + 1]`` for every learner).
    Returns ``(has_next [N] bool, bootstrap_free [N] bool)`` where the second marks terminal rows (no
    next action needed). Raises if the data is not stored in episode order.
    """
    term = _np(dataset.terminals).astype(bool)
    trunc = _np(dataset.truncations).astype(bool)
    n = len(term)
    has_next = ~(term | trunc)
    has_next[-1] = False
    for i in learner_indices:
        ag = dataset.agents[i]
        nxt, obs = _np(ag.next_observations), _np(ag.observations)
        same = np.zeros(n, dtype=bool)
        same[:-1] = np.all(nxt[:-1] == obs[1:], axis=1)
        has_next &= same
    open_rows = (~(term | trunc)).sum()
    if open_rows and has_next.sum() < 0.5 * open_rows:
        raise OmarbenchError(
            f"dataset {getattr(dataset, 'id', '?')}: transitions are not stored in episode order "
            "(next observation of row i is not the observation of row i+1), so MA-ICQ cannot find next actions"
        )
    return has_next, term


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _t(x, device) -> torch.Tensor:
    return torch.as_tensor(_np(x), dtype=torch.float32, device=device)


def build_table(dataset, agents: Sequence[int], needs_next_actions: bool, device) -> tuple[dict, int,
                                                                                          torch.Tensor | None]:
    """Stack the group's agents' data into one table per field, ``[A·N, d]`` (row ``j·N + i`` is agent j's
    transition i), so a minibatch of every member is one ``index_select`` per field into contiguous memory.

    Fields: obs, act, rew, next_obs, done (terminal only: truncated episodes bootstrap) and, for ICQ,
    next_act. Returns ``(tables, N, pool)``; ``pool`` lists the rows ICQ may sample (rows with a next
    action, or terminal rows), else ``None``.
    """
    done = _t(dataset.terminals, device)
    n = done.shape[0]
    pool = None
    if needs_next_actions:
        has_next, term = next_action_rows(dataset, dataset.learner_indices)
        pool = torch.as_tensor(np.flatnonzero(has_next | term), device=device)
        if len(pool) == 0:
            raise OmarbenchError(f"dataset {getattr(dataset, 'id', '?')} has no transition with a next action")
    ags = [dataset.agents[i] for i in agents]
    tables = {
        "obs": torch.cat([_t(a.observations, device) for a in ags]),
        "act": torch.cat([_t(a.actions, device) for a in ags]),
        "rew": torch.cat([_t(a.rewards, device).view(-1) for a in ags]),
        "next_obs": torch.cat([_t(a.next_observations, device) for a in ags]),
        "done": done.repeat(len(ags)),
    }
    if needs_next_actions:
        act = tables["act"].view(len(ags), n, -1)
        nxt = torch.zeros_like(act)
        nxt[:, :-1] = act[:, 1:]
        tables["next_act"] = nxt.view(len(ags) * n, -1)
    return tables, n, pool


def learner_groups(dataset) -> list[tuple[int, int, list[int]]]:
    """Learners grouped by (obs_dim, act_dim), in task order: ``[(obs_dim, act_dim, [agent indices])]``."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i in dataset.learner_indices:
        ag = dataset.agents[i]
        key = (int(ag.observations.shape[1]), int(ag.actions.shape[1]))
        groups.setdefault(key, []).append(int(i))
    return [(do, da, idx) for (do, da), idx in groups.items()]
