"""The offline training loop: dataset → batched learners → periodic batched evaluation → run records.

    records = train("OMAR", "tag", "expert", seeds=[0, 1, 2, 3, 4])

All seeds train together (one set of batched networks, :mod:`omarbench.offline.algos.core`) for the preset's
number of update rounds. Every ``eval_every`` rounds (and at round 0) the deterministic policy of every
seed plays ``eval_episodes`` episodes, all seeds' episodes stepped together; at the end the final
policy plays ``final_episodes`` episodes per seed. One record per seed is written atomically
(the shared run-record contract, :mod:`omarbench.results`).

Evaluation episodes. The authors seeded their evaluation environment with ``seed + 100`` and replayed
the same episodes at every evaluation. Here episode ``e`` of an evaluation of training seed ``s`` is
reset with environment seed ``100 + s·E + e`` (``E`` episodes per evaluation): the same episodes at
every evaluation, disjoint sets for different seeds, and — because this depends on ``s`` alone — a
seed evaluates on the same episodes whether it trains alone or in a batch. Consecutive seeds share
one vector environment.

A seed whose losses become non-finite stops being evaluated and is recorded ``failed`` with the round
and the loss that broke; the other seeds go on (members never share gradients or statistics).

Every ``checkpoint_every`` rounds the whole state of the job is saved (:mod:`omarbench.offline.checkpoint`); a
job that was killed resumes from its last checkpoint and ends bit for bit as if it had never stopped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from omarbench import results as rs
from omarbench.errors import UsageError
from omarbench.offline.algos import canonical_name, get_algorithm
from omarbench.offline.algos.core import Learners
from omarbench.offline.presets import check_task_level, make_config
from omarbench.tasks.envs import make_vec_env
from omarbench.tasks.spec import Task, parse_task_id
from omarbench.vocab import check_backend, check_preset, format_seeds, normalised_score

EVAL_SEED_OFFSET = 100  # the authors evaluate on an environment seeded with seed + 100
CURVE_DECIMALS = 4  # learning-curve points are stored rounded (far below evaluation noise); final scores are not


# --------------------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------------------


def contiguous_runs(seeds: Sequence[int]) -> list[tuple[int, int]]:
    """``[0, 1, 2, 5, 6]`` → ``[(0, 3), (5, 2)]`` (start, length), keeping the given order."""
    runs: list[list[int]] = []
    for s in seeds:
        if runs and s == runs[-1][0] + runs[-1][1]:
            runs[-1][1] += 1
        else:
            runs.append([s, 1])
    return [(a, n) for a, n in runs]


class Evaluator:
    """Deterministic episodes of every seed, stepped together on the batched environments."""

    def __init__(self, task: Task, seeds: Sequence[int], episodes: int, backend: str, device):
        self.task, self.seeds, self.episodes, self.device = task, list(seeds), episodes, device
        self.envs = [
            (n, make_vec_env(task, n * episodes, backend=backend, seed=EVAL_SEED_OFFSET + start * episodes))
            for start, n in contiguous_runs(self.seeds)
        ]
        self.learners = list(task.learner_indices)

    def run(self, policy) -> np.ndarray:
        """Reported return of every episode: ``[S, episodes]``. ``policy(obs) -> [S, E, n_l, 2]`` tensor."""
        E, T, S = self.episodes, self.task.episode_length, len(self.seeds)
        obs_runs = [env.reset() for _, env in self.envs]
        rewards = [np.zeros((n * E, T, self.task.n_agents)) for n, _ in self.envs]
        for t in range(T):
            obs = [
                torch.as_tensor(
                    np.concatenate([o[i] for o in obs_runs]), dtype=torch.float32, device=self.device
                ).view(S, E, -1)
                for i in self.learners
            ]
            actions = torch.nan_to_num(policy(obs), nan=0.0, posinf=0.0, neginf=0.0).clamp_(-1.0, 1.0)
            actions = actions.cpu().numpy().astype(np.float64)
            k = 0
            for j, (n, env) in enumerate(self.envs):
                step = env.step(actions[k : k + n].reshape(n * E, len(self.learners), -1))
                rewards[j][:, t] = step.rewards
                obs_runs[j] = step.obs
                k += n
        returns = np.concatenate([self.task.reported_return(r) for r in rewards])
        return returns.reshape(S, E)


# --------------------------------------------------------------------------------------------------
# records
# --------------------------------------------------------------------------------------------------


def _reference(dataset) -> dict[str, Any] | None:
    refs = getattr(dataset, "reference_returns", None) or {}
    try:
        return {"random": float(refs["random"]["mean"]), "expert": float(refs["expert"]["mean"]),
                "source": "dataset"}
    except (KeyError, TypeError, ValueError):
        return None


def _normalise(score: float, ref: Mapping[str, Any] | None) -> float | None:
    if ref is None or ref["expert"] == ref["random"] or not math.isfinite(score):
        return None
    return normalised_score(score, ref["random"], ref["expert"])


def _check_seeds(seeds: Sequence[int]) -> list[int]:
    try:
        out = [int(s) for s in seeds]
    except (TypeError, ValueError):
        raise UsageError(f"bad seeds {seeds!r}; expected non-negative integers") from None
    from omarbench.guard import MAX_SEED, MAX_SEEDS

    if not out or min(out) < 0 or len(set(out)) != len(out) or max(out) > MAX_SEED or len(out) > MAX_SEEDS:
        raise UsageError(f"bad seeds {list(seeds)[:10]!r}; expected 1..{MAX_SEEDS:,} distinct integers in "
                         f"0..{MAX_SEED}")
    return out


def _check_device(device: str) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise UsageError(f"unknown device {device!r}; valid: cpu, cuda, cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {device!r} requested but no CUDA device is available; use --device cpu")
    if dev.type not in ("cpu", "cuda"):
        raise UsageError(f"unknown device {device!r}; valid: cpu, cuda, cuda:N")
    return dev


check_device = _check_device  # the learners' device, checked before any work (CLI)


# --------------------------------------------------------------------------------------------------
# the loop
# --------------------------------------------------------------------------------------------------


def train(
    algo: str,
    task: str | Task,
    level: str,
    seeds: Sequence[int],
    *,
    preset: str = "paper",
    root: str | None = None,
    results_dir: str | None = None,
    device: str = "cpu",
    backend: str = "numpy",
    overrides: Mapping[str, Any] | None = None,
    progress: bool = True,
    dataset=None,
    checkpoint_every: int | None = None,
) -> list[dict]:
    """Train ``algo`` on the (task, level) dataset with every seed batched; write and return one record
    per seed (in the order of ``seeds``). ``dataset`` may be an in-memory dataset (tests).

    ``checkpoint_every``: rounds between checkpoints (default ``$OMARBENCH_CHECKPOINT_EVERY`` or
    :data:`omarbench.offline.checkpoint.DEFAULT_EVERY`; 0 turns them off)."""
    from omarbench.guard import check_output_dir, clean_stale_temps
    from omarbench.offline import checkpoint as ck

    name = canonical_name(algo)
    task_obj = parse_task_id(task) if isinstance(task, str) else task
    level = check_task_level(task_obj, level)
    check_preset(preset)
    seeds = _check_seeds(seeds)
    check_backend(backend)
    if task_obj.engine == "mujoco":  # the extra and the backend, before any work
        from omarbench.tasks.mamujoco import require_mujoco, resolve_backend

        resolve_backend(task_obj, backend)
        require_mujoco()
    dev = _check_device(device)
    cfg = make_config(name, task_obj, level, preset, overrides)
    every = ck.resolve_every(checkpoint_every)
    if results_dir is None:
        from omarbench.paths import data_root

        results_dir = str(data_root(root) / "results")
    check_output_dir(results_dir, "results folder")

    if dataset is None:
        from omarbench.data import dataset_id, load_dataset

        dataset = load_dataset(dataset_id(task_obj, level), root=root, device="cpu")
    ds_task = getattr(dataset, "task", None)
    if ds_task is not None and getattr(ds_task, "id", task_obj.id) != task_obj.id:
        raise UsageError(f"dataset {dataset.id!r} is for task {ds_task.id!r}, not {task_obj.id!r}")
    if getattr(dataset, "level", level) != level:
        raise UsageError(f"dataset {dataset.id!r} is of level {dataset.level!r}, not {level!r}")
    clean_stale_temps(results_dir)  # what killed writers left in the results folder

    t0 = time.perf_counter()
    learners = Learners(get_algorithm(name)(cfg), seeds, dataset, dev)
    ref = _reference(dataset)
    ds_info = {"id": str(getattr(dataset, "id", "")), "digest": getattr(dataset, "digest", None),
               "n_transitions": int(getattr(dataset, "n_transitions", 0))}
    del dataset  # the learners hold their own copy of what they sample; free the loaded arrays
    curves: list[list[dict]] = [[] for _ in seeds]
    failed: dict[int, str] = {}
    S = len(seeds)
    version = rs.code_version(name, task_obj.id)
    config = cfg.to_dict()
    keys = [rs.run_key(name, task_obj.id, level, s, preset, config, ds_info["digest"], version) for s in seeds]
    ckpt = ck.Checkpointer(results_dir, ck.job_identity(
        algo=name, task=task_obj.id, level=level, seeds=seeds, preset=preset, config=config,
        dataset_digest=ds_info["digest"], code_version=version, device=str(dev), backend=backend), every)

    def policy(obs):
        return learners.act(obs)

    periodic = Evaluator(task_obj, seeds, cfg.eval_episodes, backend, dev)

    def evaluate(round_: int) -> float | None:
        returns = periodic.run(policy).mean(1)
        for k in range(S):
            if k not in failed:
                r = float(returns[k])
                norm = _normalise(r, ref)
                curves[k].append({"round": round_, "return": round(r, CURVE_DECIMALS),
                                  "normalised": None if norm is None else round(norm, CURVE_DECIMALS)})
        alive = [float(returns[k]) for k in range(S) if k not in failed]
        return float(np.mean(alive)) if alive else None

    with ckpt:
        if ckpt.lock.waited:  # another process trained this job meanwhile: its records may be there now
            done = _finished_records(results_dir, name, task_obj.id, level, seeds, keys)
            if done is not None:
                return done
        state = ckpt.load()
        start, spent = 1, 0.0
        if state is not None:
            ckpt.restore(state, learners)
            loop = state["loop"]
            curves, failed, last = loop["curves"], {int(k): v for k, v in loop["failed"]}, loop["last"]
            start, spent = int(state["round"]) + 1, float(loop["wall_time_s"])
        label = f"{name} {task_obj.id} {level} seeds {format_seeds(int(x) for x in seeds)}"
        bar = _Progress(label, cfg.rounds, progress, start - 1)
        try:
            if state is None:
                last = evaluate(0)
            bar.update(start - 1, last, _normalise(last, ref) if last is not None else None)
            for r in range(start, cfg.rounds + 1):
                losses = learners.update()  # [S, n_learners, 2]
                finite = torch.isfinite(losses)
                if not bool(finite.all()):
                    for k in range(S):
                        if k not in failed and not bool(finite[k].all()):
                            which = "critic" if not bool(finite[k, :, 0].all()) else "actor"
                            failed[k] = f"non-finite {which} loss at round {r}"
                    if len(failed) == S:
                        break
                if r % cfg.eval_every == 0 or r == cfg.rounds:
                    last = evaluate(r)
                if ckpt.due(r, cfg.rounds):
                    ckpt.save(round_=r, learners=learners, loop={
                        "curves": curves, "failed": sorted(failed.items()), "last": last,
                        "wall_time_s": spent + time.perf_counter() - t0})
                bar.update(r, last, _normalise(last, ref) if last is not None else None)
            final = None
            if len(failed) < S:
                final = Evaluator(task_obj, seeds, cfg.final_episodes, backend, dev).run(policy)
        finally:
            bar.close()
        wall = spent + time.perf_counter() - t0
        weights = ck.weights_digest(learners)
        records = _write_records(results_dir, name, task_obj, level, seeds, keys, preset, config, ds_info, ref,
                                 version, dev, backend, failed, final, curves, wall, weights,
                                 learners.matmul_kernel)
        ckpt.remove()
    return records


def _finished_records(results_dir, name, task_id, level, seeds, keys) -> list[dict] | None:
    """The ``ok`` records of every seed of a job if they are all on disk, else None."""
    import json

    out = []
    for seed, key in zip(seeds, keys):
        path = Path(results_dir) / rs.record_filename({"algo": name, "task": task_id, "level": level,
                                                       "seed": seed, "key": key})
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if rec.get("status") != "ok" or rec.get("key") != key:
            return None
        out.append(rec)
    return out


def best_evaluation(curve: Sequence[Mapping[str, Any]], episodes: int) -> dict[str, Any] | None:
    """The best periodic evaluation of a run: the curve point with the highest return after round 0 (the
    untrained policy), earliest on ties; ``None`` if there is none. Offline RL papers report the last or
    the best evaluation and the two can differ a lot (CORL reports both); this is the best, on
    ``episodes`` episodes, as a run measured it (a maximum over noisy evaluations: an upper bound)."""
    points = [p for p in curve if int(p["round"]) > 0 and p.get("return") is not None
              and math.isfinite(float(p["return"]))]
    if not points:
        return None
    top = max(points, key=lambda p: (float(p["return"]), -int(p["round"])))
    return {"round": int(top["round"]), "return": float(top["return"]), "normalised": top.get("normalised"),
            "episodes": int(episodes)}


def _write_records(results_dir, name, task_obj, level, seeds, keys, preset, config, ds_info, ref, version,
                   dev, backend, failed, final, curves, wall, weights, kernel) -> list[dict]:
    records = []
    for k, seed in enumerate(seeds):
        ok = k not in failed and final is not None
        if ok:
            rets = final[k]
            score = float(rets.mean())
            fin = {"return": score, "return_std": float(rets.std()), "episodes": int(rets.size),
                   "normalised": _normalise(score, ref)}
            best = best_evaluation(curves[k], int(config["eval_episodes"]))
        record = {
            "schema": rs.SCHEMA,
            "key": keys[k],
            "algo": name, "task": task_obj.id, "level": level, "seed": int(seed), "preset": preset,
            "config": config, "dataset": ds_info, "reference_returns": ref, "code_version": version,
            "git": rs.git_revision(),
            "device": str(dev), "matmul_kernel": kernel, "backend": backend,
            "status": "ok" if ok else "failed",
            "reason": None if ok else failed[k],
            "curve": curves[k], "final": fin if ok else None, "best": best if ok else None,
            "wall_time_s": wall, "created": rs.utc_now(),
            "weights_sha256": weights,
        }
        rs.write_record(results_dir, record)
        records.append(record)
    return records


class _Progress:
    """A rich progress bar (round, last evaluation, ETA) on a terminal; periodic plain lines in a log
    (:mod:`omarbench.progress`); or nothing. The ETA is the average rate since this process started."""

    def __init__(self, label: str, total: int, enabled: bool, start: int = 0):
        from omarbench.progress import LogLines, interactive

        self.p = self.lines = None
        if not enabled:
            return
        self.lines = LogLines(label, total, "rounds", start=start)
        if not interactive():
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("{task.fields[ret]}"), TextColumn("ETA {task.fields[eta]}"),
                          transient=False)
        self.p.start()
        self.task = self.p.add_task(label, total=total, ret="", eta="?")

    def update(self, r: int, ret: float | None, norm: float | None) -> None:
        if self.lines is None:
            return
        text = "" if ret is None else f"return {ret:.1f}" + ("" if norm is None else f" ({norm:.0f} norm.)")
        if self.p is None:
            self.lines.update(r, text)
            return
        from omarbench.progress import clock

        self.lines.done = r
        eta = self.lines.eta()
        self.p.update(self.task, completed=r, ret=text, eta="?" if eta is None else clock(eta))

    def close(self) -> None:
        if self.p is not None:
            self.p.stop()
        elif self.lines is not None:
            self.lines.close()

