"""One resumable online behaviour-training run: MATD3 on the batched engine, checkpointed as it goes.

A run lives in a directory::

    run.json              config, status, and one entry per checkpoint (step, eval return, digest)
    state.pt              everything needed to continue (networks, optimisers, RNG states, counters)
    checkpoints/NNNN.pt   the actors' weights at each checkpoint (what the dataset levels roll out)
    experience/NNNN.npz   every transition the run saw in that segment, whole episodes, all agents

Training advances in *segments* of whole synchronous episodes; after each segment the actors are
evaluated deterministically, the segment's experience and a checkpoint are written, and only then is
``state.pt`` replaced (atomically). A run killed at any moment restarts from its last segment and,
because every random stream is saved with it, ends exactly where an uninterrupted run ends.

The gradient rounds' float32 products go to the matmul kernel of :func:`behaviour_kernel` (oneDNN for
wide networks on a non-Intel CPU with AVX-512 and no AMX, where MKL runs its AVX2 code; MKL otherwise;
``OMARBENCH_MATMUL`` overrides it). Acting and evaluation stay on the default kernel: their products
have a few rows (16 copies), where oneDNN's per-call overhead costs more than it saves (measured 0.37
against 0.13 ms per action of spread's three actors). The two kernels round differently, so ``run.json``
records the choice (``matmul_kernel``; a run without it was made on MKL) and a run only resumes on the
kernel it started on: a run is reproducible to the bit for a given seed, kernel and CPU instruction set
(MKL's code path too depends on the CPU: on an AMD CPU it runs AVX2 code and rounds differently from its
AVX-512 code on an Intel CPU, so the same seed gives other datasets there).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from omarbench.collect.matd3 import MATD3, Actor, MATD3Config, ReplayBuffer
from omarbench.errors import OmarbenchError
from omarbench.guard import FileLock, clean_stale_temps
from omarbench.io import atomic_write_bytes, atomic_write_json
from omarbench.kernels import ENV_VAR, matmul_kernel, resolve_kernel
from omarbench.tasks.envs import make_vec_env
from omarbench.tasks.prey import FixedPolicy
from omarbench.tasks.spec import Task

RUN_FORMAT = 1


@dataclass(frozen=True)
class RunConfig:
    """Budget and cadence of a behaviour run (the learner's own settings are in ``matd3``)."""

    total_steps: int = 1_000_000  # environment transitions (env copies x steps)
    num_envs: int = 32
    segment_episodes: int = 4  # rounds of ``num_envs`` episodes between checkpoints
    updates_per_step: float = 1.0  # gradient rounds per batched env step
    warmup_steps: int = 5_000  # transitions collected before learning starts
    buffer_size: int = 1_000_000
    eval_episodes: int = 100
    torch_threads: int = 1  # networks this small run fastest on one thread (and leave a core to the engine)
    matd3: MATD3Config = field(default_factory=MATD3Config)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        d = dict(d)
        d["matd3"] = MATD3Config(**d["matd3"])
        return cls(**d)


ONEDNN_MIN_HIDDEN = 256  # oneDNN pays off from this width (README, *Behaviour training*)


def behaviour_kernel(matd3: MATD3Config) -> str:
    """The matmul kernel of a run's gradient rounds: ``$OMARBENCH_MATMUL`` if set to a kernel, else the
    process's choice (:func:`omarbench.kernels.resolve_kernel`) for networks of at least
    ``ONEDNN_MIN_HIDDEN`` units and MKL for narrower ones. Measured on an AMD EPYC with AVX-512 (whole
    behaviour loops, the two kernels interleaved in one process, CPU time, medians of 9): with the gradient
    rounds on oneDNN, spread's loop (hidden 64) ran at 0.93x MKL's speed, world's at 0.99x and
    halfcheetah-2x3's (hidden 256) at 1.33x."""
    explicit = os.environ.get(ENV_VAR, "auto").strip().lower() not in ("", "auto")
    if explicit or matd3.hidden >= ONEDNN_MIN_HIDDEN:
        return resolve_kernel()
    return "mkl"


def torch_bytes(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def state_digest(state_dict: dict[str, torch.Tensor]) -> str:
    """SHA-256 over a state dict's tensors (names, dtypes, shapes, values) in name order."""
    h = hashlib.sha256()
    for k in sorted(state_dict):
        t = state_dict[k].detach().cpu().contiguous()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def actors_digest(states: list[dict[str, torch.Tensor]]) -> str:
    """The digest a run records for a checkpoint: SHA-256 over its actors' state digests, in agent order."""
    return hashlib.sha256(b"".join(state_digest(s).encode() for s in states)).hexdigest()


class ActorPolicy:
    """A frozen actor as a batched numpy policy ``obs[E, d] -> actions[E, act_dim]`` (deterministic)."""

    def __init__(self, actor: Actor, name: str, digest: str):
        self.actor = actor.eval()
        self.name = name
        self.digest = digest

    @torch.no_grad()
    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self.actor(torch.as_tensor(obs, dtype=torch.float32)).numpy().astype(np.float64)


_HELD: set[Path] = set()


def _stderr(message: str) -> None:
    import sys

    print(message, file=sys.stderr, flush=True)


class _NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


class _HeldLock:
    def __init__(self, run_dir: Path, lock: FileLock):
        self.run_dir, self.inner = run_dir, lock

    def __enter__(self):
        self.inner.acquire()
        _HELD.add(self.run_dir)
        return self.inner

    def __exit__(self, *exc) -> None:
        _HELD.discard(self.run_dir)
        self.inner.release()


def _episode_major(frames: list[np.ndarray]) -> np.ndarray:
    """Stack per-step arrays [E, ...] of one round into episode-major [E, T, ...]."""
    return np.stack(frames, axis=1)


class BehaviourRun:
    """Train (or continue training) MATD3 for the learners of ``task`` in ``run_dir``."""

    def __init__(
        self,
        task: Task,
        run_dir: Path,
        cfg: RunConfig,
        seed: int = 0,
        backend: str = "numpy",
        fixed_policy: FixedPolicy | None = None,
        meta: dict[str, Any] | None = None,
    ):
        self.task, self.dir, self.cfg, self.seed, self.backend = task, Path(run_dir), cfg, seed, backend
        self.fixed_policy = fixed_policy
        self.meta = meta or {}
        self.learners = list(task.learner_indices)
        self.obs_dims = tuple(task.obs_dims[i] for i in self.learners)

    # -- files ---------------------------------------------------------------------------------
    @property
    def info_path(self) -> Path:
        return self.dir / "run.json"

    def check_identity(self, info: dict[str, Any] | None = None) -> None:
        """One-line error unless the run on disk was made with this config, backend and fixed policy."""
        info = self.info() if info is None else info
        if not info:
            return
        fixed = self.meta.get("fixed_policy")
        same = (RunConfig.from_dict(info["config"]) == self.cfg and info.get("backend") == self.backend
                and (info.get("fixed_policy") or {}).get("digest") == (fixed or {}).get("digest"))
        if not same:
            raise OmarbenchError(
                f"the behaviour run in {str(self.dir)!r} was made with a different configuration, backend or "
                "fixed policy; use another --root or seed, or delete that directory to start over"
            )

    def info(self) -> dict[str, Any]:
        return json.loads(self.info_path.read_text()) if self.info_path.exists() else {}

    @property
    def finished(self) -> bool:
        return self.info().get("status") == "finished"

    def checkpoints(self) -> list[dict[str, Any]]:
        return self.info().get("checkpoints", [])

    def load_actors(self, index: int) -> list[Actor]:
        state = torch.load(self.dir / "checkpoints" / f"{index:04d}.pt", weights_only=True)
        actors = [Actor(d, self.task.act_dim, self.cfg.matd3.hidden) for d in self.obs_dims]
        for a, s in zip(actors, state["actors"]):
            a.load_state_dict(s)
            a.eval()
        return actors

    def experience_files(self, upto_segment: int | None = None) -> list[Path]:
        files = sorted((self.dir / "experience").glob("*.npz"), key=lambda f: int(f.stem))
        if upto_segment is not None:
            files = [f for f in files if int(f.stem) <= upto_segment]
        return files

    # -- evaluation ----------------------------------------------------------------------------
    def evaluate_rewards(self, actors: list[Actor], episodes: int, seed_offset: int = 1_000_000) -> np.ndarray:
        """Per-step rewards [episodes, T, n_agents] of deterministic episodes (eval seeds are disjoint)."""
        env = make_vec_env(self.task, episodes, self.backend, seed=self.seed + seed_offset,
                           fixed_policy=self.fixed_policy)
        obs = env.reset()
        rewards = np.zeros((episodes, self.task.episode_length, self.task.n_agents))
        policies = [ActorPolicy(a, "", "") for a in actors]
        for t in range(self.task.episode_length):
            acts = np.stack([p(obs[i]) for p, i in zip(policies, self.learners)], 1)
            step = env.step(acts)
            rewards[:, t] = step.rewards
            obs = step.obs
        return rewards

    def evaluate(self, actors: list[Actor], episodes: int, seed_offset: int = 1_000_000) -> np.ndarray:
        """Reported return of each of ``episodes`` deterministic episodes."""
        return self.task.reported_return(self.evaluate_rewards(actors, episodes, seed_offset))

    # -- training ------------------------------------------------------------------------------
    def _save_segment(self, seg: int, learner: MATD3, buffers: dict[str, list[np.ndarray]],
                      evaluation: dict[str, Any], steps: int, np_rng: np.random.Generator, acc: float,
                      started: float, info: dict[str, Any]) -> None:
        """Write segment ``seg``: its experience, the actors' checkpoint, then the resumable state."""
        (self.dir / "checkpoints").mkdir(exist_ok=True)
        (self.dir / "experience").mkdir(exist_ok=True)
        if buffers:
            exp = {k: np.concatenate(v).astype(bool if k == "truncations" else np.float32)
                   for k, v in buffers.items()}
            buf = io.BytesIO()
            np.savez(buf, **exp)
            atomic_write_bytes(self.dir / "experience" / f"{seg:04d}.npz", buf.getvalue())
        actors = [a.state_dict() for a in learner.actors]
        atomic_write_bytes(self.dir / "checkpoints" / f"{seg:04d}.pt", torch_bytes({"actors": actors}))
        digest = actors_digest(actors)
        info["checkpoints"].append({"segment": seg, "steps": steps, "updates": learner.updates,
                                    **evaluation, "digest": digest})
        info["steps"] = steps
        info["wall_time_s"] = round(info.get("wall_time_s", 0.0) + (time.time() - started), 3)
        # run.json first: a kill before state.pt is replaced resumes from the previous segment, whose
        # resume drops this segment's entry and recomputes it identically
        atomic_write_json(self.info_path, info)
        state = {"learner": learner.state_dict(), "np_rng": np_rng.bit_generator.state, "steps": steps,
                 "segment": seg, "acc": acc}
        atomic_write_bytes(self.dir / "state.pt", torch_bytes(state))

    def _rebuild_buffer(self, buffer: ReplayBuffer) -> None:
        """Refill the replay buffer from the saved experience, in the order it was first added."""
        e = self.cfg.num_envs
        for f in self.experience_files():
            with np.load(f) as z:
                obs = [z[f"obs_{i}"] for i in self.learners]
                nxt = [z[f"next_obs_{i}"] for i in self.learners]
                act, rew = z["actions"], z["rewards"]
            rounds = act.shape[0] // e
            for r in range(rounds):
                sl = slice(r * e, (r + 1) * e)
                for t in range(act.shape[1]):
                    buffer.add([o[sl, t] for o in obs], act[sl, t][:, self.learners], rew[sl, t][:, self.learners],
                               [o[sl, t] for o in nxt])

    def _evaluation(self, learner: MATD3) -> dict[str, Any]:
        rewards = self.evaluate_rewards(list(learner.actors), self.cfg.eval_episodes)
        return {"eval_return": float(self.task.reported_return(rewards).mean()),
                "eval_agent_returns": [float(x) for x in rewards.sum(1).mean(0)]}

    def train(self, progress: Callable[[int, int, float], None] | None = None,
              stop_when: Callable[[list[dict[str, Any]]], bool] | None = None) -> dict[str, Any]:
        """Run (or resume) until ``total_steps`` or until ``stop_when(checkpoints)`` says so.

        ``progress(steps, total_steps, eval_return)`` is called after every segment. Returns run.json.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        with self.lock():
            info = self.info()
            self.check_identity(info)
            if info.get("status") == "finished":
                return info
            kernel = behaviour_kernel(self.cfg.matd3)
            started_on = info.get("matmul_kernel", "mkl") if info else kernel
            if started_on != kernel:
                raise OmarbenchError(
                    f"the behaviour run in {str(self.dir)!r} started on the {started_on} matmul kernel and this "
                    f"process would continue it on {kernel}; set {ENV_VAR}={started_on} to resume it")
            threads = torch.get_num_threads()
            torch.set_num_threads(self.cfg.torch_threads)
            try:
                return self._train(info, progress, stop_when, kernel)
            finally:
                torch.set_num_threads(threads)

    def lock(self, log: Callable[[str], None] | None = None) -> _HeldLock | _NoLock:
        """The lock of this run folder (a second writer waits for the first; see :class:`FileLock`).

        Re-entrant within one process: a lock this process already holds is not taken again."""
        if self.dir in _HELD:
            return _NoLock()
        return _HeldLock(self.dir, FileLock(self.dir.parent / f".{self.dir.name}.lock",
                                            f"the behaviour run {str(self.dir)!r}", wait=True,
                                            log=log or _stderr))

    def _train(self, info: dict[str, Any], progress: Callable[[int, int, float], None] | None,
               stop_when: Callable[[list[dict[str, Any]]], bool] | None, kernel: str) -> dict[str, Any]:
        cfg, task = self.cfg, self.task
        learner = MATD3(self.obs_dims, cfg.matd3, seed=self.seed, act_dim=task.act_dim)
        buffer = ReplayBuffer(self.obs_dims, cfg.buffer_size, act_dim=task.act_dim)
        np_rng = np.random.default_rng(self.seed + 2)
        env = make_vec_env(task, cfg.num_envs, self.backend, seed=self.seed, fixed_policy=self.fixed_policy)
        started = time.time()
        if (self.dir / "state.pt").exists() and info:
            state = torch.load(self.dir / "state.pt", weights_only=False)
            learner.load_state_dict(state["learner"])
            np_rng.bit_generator.state = state["np_rng"]
            steps, seg, acc = int(state["steps"]), int(state["segment"]) + 1, float(state["acc"])
            # drop anything written after the last consistent state
            for f in (self.dir / "experience").glob("*.tmp"):  # older fixed names, then killed writers' own
                f.unlink()
            clean_stale_temps(self.dir / "experience")
            clean_stale_temps(self.dir)
            for f in self.experience_files():
                if int(f.stem) >= seg:
                    f.unlink()
            info["checkpoints"] = [c for c in info["checkpoints"] if c["segment"] < seg]
            self._rebuild_buffer(buffer)
        else:
            info = {"format": RUN_FORMAT, "task": task.to_dict(), "seed": self.seed, "backend": self.backend,
                    "config": cfg.to_dict(), "status": "running", "checkpoints": [], "steps": 0,
                    "matmul_kernel": kernel, **self.meta}
            # segment 0 is the untrained policy (the random level's behaviour): no experience yet
            self._save_segment(0, learner, {}, self._evaluation(learner), 0, np_rng, 0.0, started, info)
            steps, seg, acc = 0, 1, 0.0
        rounds_done = steps // (cfg.num_envs * task.episode_length)
        obs = env.reset(episode=rounds_done)
        def should_stop() -> bool:
            return stop_when is not None and len(info["checkpoints"]) > 1 and stop_when(info["checkpoints"])

        while steps < cfg.total_steps and not should_stop():
            seg_started = time.time()
            learner.set_progress(steps / cfg.total_steps)
            bufs: dict[str, list[np.ndarray]] = {}
            for _ in range(cfg.segment_episodes):
                frames: dict[str, list[np.ndarray]] = {}
                for _t in range(task.episode_length):
                    acts = learner.act([obs[i] for i in self.learners], cfg.matd3.expl_noise, np_rng)
                    step = env.step(acts)
                    buffer.add([obs[i] for i in self.learners], acts, step.rewards[:, self.learners],
                               [step.next_obs[i] for i in self.learners])
                    for i in range(task.n_agents):
                        frames.setdefault(f"obs_{i}", []).append(obs[i])
                        frames.setdefault(f"next_obs_{i}", []).append(step.next_obs[i])
                    frames.setdefault("actions", []).append(step.actions)
                    frames.setdefault("rewards", []).append(step.rewards)
                    frames.setdefault("truncations", []).append(step.truncated)
                    obs = step.obs
                    steps += cfg.num_envs
                    if buffer.size >= cfg.warmup_steps:
                        acc += cfg.updates_per_step
                        if acc >= 1:
                            with matmul_kernel(kernel):
                                while acc >= 1:
                                    learner.update(buffer)
                                    acc -= 1
                for k, v in frames.items():
                    bufs.setdefault(k, []).append(_episode_major(v))
            evaluation = self._evaluation(learner)
            self._save_segment(seg, learner, bufs, evaluation, steps, np_rng, acc, seg_started, info)
            if progress is not None:
                progress(steps, cfg.total_steps, evaluation["eval_return"])
            seg += 1
        info["stopped_early"] = steps < cfg.total_steps
        info["status"] = "finished"
        atomic_write_json(self.info_path, info)
        return info

