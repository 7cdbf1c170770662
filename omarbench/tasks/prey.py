"""Policies of the fixed agents (the prey of ``tag`` and ``world``).

A fixed policy is a callable ``obs[E, obs_dim] (float) -> actions[E, 2]`` in [-1, 1], batched over
environments. The paper's prey is a pretrained policy; until omarbench ships its own trained prey
(with provenance), the slot holds :class:`StillPrey`, a placeholder that never moves. It is named as
such everywhere it appears, so no result made with it can pass for one made with the real prey.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from omarbench.tasks.spec import Task


class FixedPolicy(Protocol):
    name: str
    digest: str | None

    def __call__(self, obs: np.ndarray) -> np.ndarray: ...


class StillPrey:
    """Placeholder prey: always the zero force (it only drifts when pushed)."""

    name = "placeholder-still"
    digest = None
    is_placeholder = True

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs)
        return np.zeros(obs.shape[:-1] + (2,), dtype=obs.dtype if obs.dtype.kind == "f" else np.float64)


def fixed_policy_for(task: Task) -> FixedPolicy | None:
    """The policy that drives a task's fixed agents, or ``None`` when every agent learns."""
    if task.fixed_policy is None:
        return None
    return StillPrey()
