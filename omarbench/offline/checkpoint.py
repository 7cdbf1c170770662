"""Mid-run checkpoints of offline training: a killed job resumes from its last checkpoint and ends equal,
bit for bit, to a run that was never interrupted.

One checkpoint file per job (algorithm, task, level, the job's seeds, and everything that decides its
numbers), hidden in the results folder next to the records it will become::

    .<algo>__<task>__<level>__seeds<0-4>__<key[:12]>.ckpt

It holds the complete state of the job after round ``r``: every group's online and target weights,
BatchNorm running statistics, Adam moments and step counts, the per-member minibatch and noise
generators, torch's and numpy's global generators, the evaluation curves so far, the failed seeds and
the wall time spent. Evaluation episodes are reset to the same seeds at every evaluation (they carry
no state between evaluations). It is written atomically (temporary file, fsync, rename) and removed
once the job's records are written. A lock next to it keeps a second process off a job that is being
trained.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from omarbench import results as rs
from omarbench.guard import FileLock
from omarbench.io import atomic_write_bytes
from omarbench.vocab import format_seeds

FORMAT = "omarbench-offline-checkpoint-v1"
DEFAULT_EVERY = 250  # rounds: the paper budgets run 1,000-6,000 rounds (MPE), a few minutes apart
ENV_EVERY = "OMARBENCH_CHECKPOINT_EVERY"
MAX_EVERY = 10_000_000


class CheckpointWarning(UserWarning):
    """A checkpoint could not be used (unreadable or of another job) and training starts over."""


def resolve_every(every: int | None) -> int:
    """Rounds between checkpoints: ``every``, else ``$OMARBENCH_CHECKPOINT_EVERY``, else the default; 0 = off."""
    from omarbench.errors import UsageError

    source = "checkpoint_every"
    if every is None:
        raw = os.environ.get(ENV_EVERY)
        if raw is None or not raw.strip():
            return DEFAULT_EVERY
        source = f"${ENV_EVERY}"
        try:
            every = int(raw)
        except ValueError:
            raise UsageError(f"{source}={raw!r} is not an integer (0 turns checkpoints off)") from None
    if isinstance(every, bool) or not isinstance(every, int) or not 0 <= every <= MAX_EVERY:
        raise UsageError(f"{source} must be an integer in 0..{MAX_EVERY} (0 = off), got {every!r}")
    return every


def job_identity(*, algo: str, task: str, level: str, seeds: Sequence[int], preset: str,
                 config: Mapping[str, Any], dataset_digest: str | None, code_version: str, device: str,
                 backend: str) -> dict[str, Any]:
    return {"algo": algo, "task": task, "level": level, "seeds": [int(s) for s in seeds], "preset": preset,
            "config": dict(config), "dataset_digest": dataset_digest, "code_version": code_version,
            "device": device, "backend": backend}


def checkpoint_path(results_dir: str | os.PathLike, identity: Mapping[str, Any]) -> Path:
    key = hashlib.sha256(rs.canonical_json(dict(identity)).encode()).hexdigest()
    name = (f".{rs._safe(identity['algo'])}__{rs._safe(identity['task'])}__{rs._safe(identity['level'])}"
            f"__seeds{format_seeds(int(x) for x in identity['seeds'])}__{key[:12]}.ckpt")
    return Path(results_dir) / name


# ------------------------------------------------------------------------------------------- state


def _net_state(net) -> dict[str, torch.Tensor]:
    out = {"params": net.params.data.clone()}
    if getattr(net, "stats", None) is not None:
        out["mean"], out["var"] = net.stats.mean.clone(), net.stats.var.clone()
    return out


def _load_net(net, state: Mapping[str, torch.Tensor]) -> None:
    with torch.no_grad():
        net.params.data.copy_(state["params"])  # in place: the parameters are views of this buffer
        if getattr(net, "stats", None) is not None:
            net.stats.mean.copy_(state["mean"])
            net.stats.var.copy_(state["var"])


def _opt_state(opt) -> dict[str, Any]:
    return {"m": opt.m.clone(), "v": opt.v.clone(), "t": int(opt.t)}


def _load_opt(opt, state: Mapping[str, Any]) -> None:
    opt.m.copy_(state["m"])
    opt.v.copy_(state["v"])
    opt.t = int(state["t"])


NETS = ("actor", "actor_t", "critic", "critic_t", "value_net", "value_t")  # whichever a group has
OPTIMISERS = ("actor_opt", "critic_opt", "value_opt")


def learners_state(learners) -> list[dict[str, Any]]:
    """Everything that evolves while a :class:`Learners` trains: per group, every network it has (weights,
    running statistics), every optimiser (moments, step), and every member's generators."""
    groups = []
    for g, _ in learners.groups:
        st: dict[str, Any] = {
            "members": [list(m) for m in g.members],
            "g_batch": [gen.get_state() for gen in g.g_batch],
            "g_noise": [gen.get_state() for gen in g.g_noise],
        }
        for name in NETS:
            if getattr(g, name, None) is not None:
                st[name] = _net_state(getattr(g, name))
        for name in OPTIMISERS:
            if getattr(g, name, None) is not None:
                st[name] = _opt_state(getattr(g, name))
        groups.append(st)
    return groups


def load_learners_state(learners, groups: Sequence[Mapping[str, Any]]) -> None:
    if len(groups) != len(learners.groups):
        raise ValueError("checkpoint has a different number of learner groups")
    for (g, _), st in zip(learners.groups, groups):
        if [tuple(m) for m in st["members"]] != [tuple(m) for m in g.members]:
            raise ValueError("checkpoint members differ from this job's")
        have = {n for n in (*NETS, *OPTIMISERS) if getattr(g, n, None) is not None}
        if have != {n for n in (*NETS, *OPTIMISERS) if n in st}:
            raise ValueError("checkpoint networks differ from this job's")
        for name in NETS:
            if name in st:
                _load_net(getattr(g, name), st[name])
        for name in OPTIMISERS:
            if name in st:
                _load_opt(getattr(g, name), st[name])
        for gen, s in zip(g.g_batch, st["g_batch"]):
            gen.set_state(s)
        for gen, s in zip(g.g_noise, st["g_noise"]):
            gen.set_state(s)


def weights_digest(learners) -> str:
    """sha256 over every group's networks (weights and running statistics): a record field, so two runs
    with equal digests ended with the same networks, bit for bit."""
    h = hashlib.sha256()
    for st in learners_state(learners):
        for net in NETS:
            for k, t in sorted((st.get(net) or {}).items()):
                data = t.detach().cpu().contiguous().numpy().tobytes()
                h.update(f"{net}.{k}:{len(data)}:".encode() + data)
    return h.hexdigest()


def _global_rng() -> dict[str, Any]:
    state = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "numpy": [state[0], torch.from_numpy(state[1].astype(np.int64)), *map(float, state[2:])]}


def _set_global_rng(st: Mapping[str, Any]) -> None:
    torch.set_rng_state(st["torch"])
    kind, keys, pos, has_gauss, cached = st["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))


# ------------------------------------------------------------------------------------------- file


def _stderr(message: str) -> None:
    import sys

    print(message, file=sys.stderr, flush=True)


class Checkpointer:
    """Save, find and remove one job's checkpoint; holds the job's lock while it lives."""

    def __init__(self, results_dir: str | os.PathLike, identity: Mapping[str, Any], every: int):
        self.identity = dict(identity)
        self.every = int(every)
        self.path = checkpoint_path(results_dir, identity)
        self.lock = FileLock(self.path.with_name(self.path.name + ".lock"),
                             f"training job {identity['algo']} {identity['task']} {identity['level']} "
                             f"seeds {format_seeds(int(x) for x in identity['seeds'])}", wait=True, log=_stderr)

    def __enter__(self) -> Checkpointer:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.lock.release()

    def due(self, round_: int, total: int) -> bool:
        return self.every > 0 and round_ < total and round_ % self.every == 0

    def save(self, *, round_: int, learners, loop: Mapping[str, Any]) -> None:
        state = {"format": FORMAT, "identity": self.identity, "round": int(round_),
                 "learners": learners_state(learners), "rng": _global_rng(), "loop": dict(loop)}
        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write_bytes(self.path, buf.getvalue())

    def load(self) -> dict[str, Any] | None:
        """The saved state of this job, or None (no file; an unusable file is set aside with a warning)."""
        if not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
            if state.get("format") != FORMAT or state.get("identity") != self.identity:
                raise ValueError("it belongs to another job or format")
        except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint means: start over
            warnings.warn(f"ignoring checkpoint {self.path}: {exc}", CheckpointWarning, stacklevel=2)
            self.remove()
            return None
        return state

    def restore(self, state: Mapping[str, Any], learners) -> None:
        load_learners_state(learners, state["learners"])
        _set_global_rng(state["rng"])

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
