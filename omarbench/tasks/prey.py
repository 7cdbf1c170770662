"""Policies of the fixed agents (the prey of ``tag`` and ``world``).

A fixed policy is a callable ``obs[E, obs_dim] (float) -> actions[E, 2]`` in [-1, 1], batched over
environments. The paper's prey is a pretrained policy. omarbench ships its own trained prey as package
assets (``omarbench/assets/prey/<task>.pt`` with a ``.json`` provenance file: how it was trained, its
digest, the command that regenerates it; see :mod:`omarbench.collect.prey_training`). A task without
such an asset falls back to :class:`StillPrey`, a placeholder that never moves; it is named as such
everywhere it appears, so no result made with it can pass for one made with a trained prey.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
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


PREY_ASSETS = Path(__file__).resolve().parent.parent / "assets" / "prey"


def prey_asset_path(task: Task) -> Path:
    """Where a task's trained prey lives (weights ``.pt``; provenance alongside as ``.json``)."""
    return PREY_ASSETS / f"{task.id.replace(':', '+')}.pt"


def prey_version_part(task: Task, assets: Path | None = None) -> str | None:
    """What a task's fixed agents add to its runs' code versions: ``None`` when every agent learns, else
    ``prey:<sha256 of the task's prey asset>``, or ``prey:<placeholder name>`` when none is shipped
    (``assets``: another copy of the prey folder, for tests)."""
    if task.fixed_policy is None:
        return None
    path = (assets if assets is not None else PREY_ASSETS) / prey_asset_path(task).name
    if not path.is_file():
        return f"prey:{StillPrey.name}"
    return "prey:" + hashlib.sha256(path.read_bytes()).hexdigest()


class TrainedPrey:
    """A frozen prey actor shipped with omarbench (deterministic: no noise)."""

    is_placeholder = False

    def __init__(self, path: Path):
        import torch

        from omarbench.tasks.actor import Actor

        blob = torch.load(path, weights_only=True)
        self.actor = Actor(int(blob["obs_dim"]), 2, int(blob["hidden"]))
        self.actor.load_state_dict(blob["actor"])
        self.actor.eval()
        self.digest = hashlib.sha256(path.read_bytes()).hexdigest()
        self.name = f"trained-prey-{self.digest[:12]}"
        meta = path.with_suffix(".json")
        self.provenance = json.loads(meta.read_text()) if meta.exists() else None

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.actor(torch.as_tensor(np.asarray(obs), dtype=torch.float32)).numpy().astype(np.float64)


@functools.cache
def _load_trained(path: str) -> TrainedPrey:
    return TrainedPrey(Path(path))


def fixed_policy_for(task: Task) -> FixedPolicy | None:
    """The policy that drives a task's fixed agents, or ``None`` when every agent learns.

    The trained prey shipped for the task if there is one, else the :class:`StillPrey` placeholder.
    """
    if task.fixed_policy is None:
        return None
    path = prey_asset_path(task)
    if path.exists():
        return _load_trained(str(path))
    return StillPrey()
