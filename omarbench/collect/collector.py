"""Turn one online behaviour run into the four dataset levels of a task (docs/protocol.md §2–3).

``collect(task, level)`` trains (or reuses, or resumes) the task's MATD3 behaviour run, measures the
reference returns, picks the checkpoints of each level and writes the datasets:

* ``random``         the uniform-random policy: every learner's action drawn from U(-1, 1)² at every step
                     (docs/protocol.md §2: the paper's random references are those of uniform random actions);
* ``medium``         the checkpoint whose evaluation return is closest to
                     ``random + f × (expert − random)`` up to the run's first reaching it, f chosen per task to
                     match the authors' medium datasets (0.32 spread, 0.64 tag, 0.79 world; see
                     docs/protocol.md §2), rolled out with noise;
* ``medium-replay``  every transition the online run saw up to and including the medium checkpoint's segment;
* ``expert``         the best checkpoint by evaluation return, rolled out with noise.

Reference returns are the uniform-random policy and the expert checkpoint (deterministic) evaluated over
``reference_episodes`` episodes; every dataset of the task stores them. Rollouts are deterministic per
seed and resumable (each round of episodes draws its actions or noise from a stream keyed by (seed, level,
round); the random reference's actions from one keyed by (seed, ``RANDOM_REFERENCE_KEY``, round)).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from omarbench.collect.presets import (  # noqa: F401  (re-exported: the collector's public names)
    MEDIUM_FRACTION,
    PAPER_BEHAVIOUR_SEEDS,
    CollectConfig,
    preset_config,
    preset_seed,
    tiny_config,
)
from omarbench.collect.run import ActorPolicy, BehaviourRun
from omarbench.collect.shipped import check_replay, install, matches, read_record, replay_run, shipped_path
from omarbench.data import LEVELS, DatasetWriter, dataset_id, dataset_path, default_root, preset_root
from omarbench.data.store import open_store
from omarbench.errors import OmarbenchError
from omarbench.guard import clean_stale_temps
from omarbench.io import atomic_write_json
from omarbench.paths import check_writable
from omarbench.tasks.envs import make_vec_env
from omarbench.tasks.prey import fixed_policy_for
from omarbench.tasks.reference_policies import UNIFORM_RANDOM, policy_returns, uniform_actions
from omarbench.tasks.spec import Task
from omarbench.vocab import parse_levels

LEVEL_CODES = {level: i for i, level in enumerate(LEVELS)}
RANDOM_REFERENCE_KEY = 7  # stream key of the random reference's actions (the level codes are 0..3)
REFERENCE_SEED_OFFSET = 2_000_000  # reference episodes' environment seeds: seed + this (disjoint from eval)


def behaviour_dir(root: Path, task: Task, seed: int, preset: str) -> Path:
    return root / "behaviour" / f"{task.id.replace(':', '+')}-{preset}-seed{seed}"


LEVEL_RULE = 2  # 1: medium = the checkpoint closest to the target anywhere in the run; 2: see medium_checkpoint


def medium_checkpoint(checkpoints: list[dict[str, Any]], target: float) -> int:
    """The medium level's checkpoint: the one closest to ``target`` up to the run's first reaching it.

    The paper's medium-replay is the replay buffer "until the policy reached the medium level"
    (docs/protocol.md §2), so the choice stops at the first checkpoint whose evaluation return reaches
    the target; between that one and the last one below it, the closer wins. (A run that plateaus
    above the target would otherwise put a late checkpoint, and a near-expert replay buffer, here.)
    Runs that never reach the target use the closest checkpoint overall.
    """
    trained = [c for c in checkpoints if c["segment"] > 0]
    first = next((i for i, c in enumerate(trained) if c["eval_return"] >= target), len(trained) - 1)
    return min(trained[: first + 1], key=lambda c: abs(c["eval_return"] - target))["segment"]


@dataclass
class LevelPlan:
    """Which checkpoint each level uses and the task's reference returns (cached in run.json)."""

    references: dict[str, dict[str, float]]
    checkpoints: dict[str, int]  # level -> checkpoint segment (medium-replay: last segment included)


class Collector:
    """The datasets of one task from one behaviour run."""

    def __init__(self, task: Task, cfg: CollectConfig, *, seed: int = 0, root: Path | None = None,
                 backend: str = "numpy", preset: str = "paper",
                 log: Callable[[str], None] = print, progress: bool = True, retrain: bool = False):
        self.task, self.cfg, self.seed, self.backend, self.preset = task, cfg, seed, backend, preset
        self.retrain = retrain  # True: train the behaviour run here even if the package ships it
        self.root = Path(root).expanduser() if root is not None else default_root()
        self.log = log
        self.progress = progress
        self.fixed = fixed_policy_for(task)
        fixed_meta = ({"name": self.fixed.name, "digest": self.fixed.digest} if self.fixed is not None else None)
        self.run = BehaviourRun(task, behaviour_dir(self.root, task, seed, preset), cfg.run, seed=seed,
                                backend=backend, fixed_policy=self.fixed,
                                meta={"preset": preset, "fixed_policy": fixed_meta})

    # -- behaviour run and level plan -------------------------------------------------------------
    def train(self) -> dict[str, Any]:
        info = self.run.info()
        if info.get("shipped") and self.retrain:
            raise OmarbenchError(f"the behaviour run in {str(self.run.dir)!r} was installed from the shipped run "
                                 f"{info['shipped']}; delete that directory to train it here with --retrain")
        if not info and not self.retrain:
            src = shipped_path(self.run.dir.name)
            record = read_record(src) if src is not None else None
            if record is not None and matches(self.run, record):
                return install(self.run, src, record, log=self.log)
        self.run.check_identity(info)
        if info.get("status") == "finished":
            self.log(f"reusing the finished behaviour run in {self.run.dir}")
            return info
        if info:
            self.log(f"resuming the behaviour run in {self.run.dir} at step {info.get('steps', 0):,}")
        else:
            self.log(f"training the behaviour policy (MATD3, {self.cfg.run.total_steps:,} steps) "
                     f"in {self.run.dir}")
        return self._train_run(self.run, info.get("steps", 0))

    def _train_run(self, run: BehaviourRun, start: int,
                   stop_when: Callable[[list[dict[str, Any]]], bool] | None = None,
                   label: str = "behaviour", total: int | None = None) -> dict[str, Any]:
        """``run.train`` with a progress bar (a plain line every so often when the output is a log) counting
        to ``total`` steps (default: the run's budget)."""
        total = self.cfg.run.total_steps if total is None else total
        if not self.progress:
            return run.train(stop_when=stop_when)
        from omarbench.progress import LogLines, interactive

        if not interactive():  # a log: a plain line every so often instead of a live bar
            lines = LogLines(f"{label} run {self.task.id}", total, "steps", log=self.log, start=start)
            try:
                return run.train(progress=lambda steps, total, ret: lines.update(
                    steps, f"eval return {ret:.2f}"), stop_when=stop_when)
            finally:
                lines.close()
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        with Progress(TextColumn(f"[bold]{label}[/] {{task.description}}"), BarColumn(),
                      TextColumn("{task.completed:,.0f}/{task.total:,.0f} steps"), TimeElapsedColumn(),
                      TimeRemainingColumn()) as bar:
            job = bar.add_task("", total=total, completed=start)

            def report(steps: int, _total: int, ret: float) -> None:
                bar.update(job, completed=steps, description=f"eval return {ret:8.2f}")

            return run.train(progress=report, stop_when=stop_when)

    def replay_files(self, upto_segment: int) -> list[Path]:
        """Experience files up to ``upto_segment``: the run's own, or, for an installed shipped run, those of
        its prefix retrained from the seed and checked digest by digest against the shipped record."""
        info = self.run.info()
        if not info.get("shipped"):
            return self.run.experience_files(upto_segment=upto_segment)
        replay = replay_run(self.run)
        steps = next(c["steps"] for c in info["checkpoints"] if c["segment"] == upto_segment)
        self.log(f"retraining {info['shipped']} to its medium checkpoint ({steps:,} steps) for medium-replay "
                 f"in {replay.dir}")
        self._train_run(replay, replay.info().get("steps", 0), label="replay", total=steps,
                        stop_when=lambda cps: cps[-1]["segment"] >= upto_segment)
        check_replay(replay, info, upto_segment)
        return replay.experience_files(upto_segment=upto_segment)

    def plan(self) -> LevelPlan:
        """Reference returns and level checkpoints (measured once, then read from run.json).

        References cached under an older level rule are reused; the levels are chosen again.
        """
        info = self.run.info()
        if "levels" in info and info.get("level_rule") == LEVEL_RULE:
            return LevelPlan(info["references"], {k: int(v) for k, v in info["levels"].items()})
        ckpts = info["checkpoints"]
        best = max(ckpts, key=lambda c: c["eval_return"])["segment"]
        if "references" in info and info["references"]["expert"].get("checkpoint") == best:
            refs = info["references"]
        else:
            refs = self._references(best)
        lo, hi = refs["random"]["mean"], refs["expert"]["mean"]
        target = lo + self.cfg.medium_fraction * (hi - lo)
        medium = medium_checkpoint(ckpts, target)
        levels = {"random": 0, "medium-replay": medium, "medium": medium, "expert": best}
        info.update({"references": refs, "levels": levels, "medium_target_return": target,
                     "level_rule": LEVEL_RULE})
        atomic_write_json(self.run.info_path, info)
        self.log(f"references: random {refs['random']['mean']:.1f}, expert {refs['expert']['mean']:.1f} "
                 f"(checkpoint {best}); medium: checkpoint {medium} (target {target:.1f})")
        return LevelPlan(refs, levels)

    def _references(self, best: int) -> dict[str, dict[str, Any]]:
        n = self.cfg.reference_episodes
        random_returns = policy_returns(self.task, n, uniform_actions, seed=self.seed + REFERENCE_SEED_OFFSET,
                                        key=RANDOM_REFERENCE_KEY, backend=self.backend, fixed_policy=self.fixed,
                                        envs=self.cfg.rollout_envs)
        expert_returns = self.run.evaluate(self.run.load_actors(best), n, seed_offset=REFERENCE_SEED_OFFSET)
        refs = {"random": {"mean": float(random_returns.mean()), "std": float(random_returns.std()),
                           "episodes": n, "policy": UNIFORM_RANDOM},
                "expert": {"mean": float(expert_returns.mean()), "std": float(expert_returns.std()),
                           "episodes": n, "checkpoint": best}}
        return refs

    # -- datasets ---------------------------------------------------------------------------------
    def _metadata(self, level: str, plan: LevelPlan, rollout_seed: int | None) -> dict[str, Any]:
        seg = plan.checkpoints[level]
        ckpt = next(c for c in self.run.info()["checkpoints"] if c["segment"] == seg)
        policy = ({"policy": UNIFORM_RANDOM} if level == "random" else
                  {"checkpoint": {k: ckpt[k] for k in ("segment", "steps", "updates", "eval_return", "digest")}})
        prov = {
            "algorithm": "MATD3 (Ackermann et al. 2019)",
            "behaviour_run": {"seed": self.seed, "preset": self.preset, "backend": self.backend,
                              "config": self.cfg.run.to_dict(), "total_steps": self.run.info()["steps"]},
            **policy,
            "selection": {
                "random": "the uniform-random policy (the paper's random references are those of uniform random "
                          "actions, docs/protocol.md §2); the behaviour run is not used",
                "medium": f"checkpoint whose evaluation return is closest to random + {self.cfg.medium_fraction} "
                          "x (expert - random), up to the first checkpoint that reaches it",
                "medium-replay": "every transition of the behaviour run up to the medium checkpoint",
                "expert": "the checkpoint with the best evaluation return",
            }[level],
            "fixed_policy": self.run.meta.get("fixed_policy"),
        }
        if level == "random":
            prov["rollout"] = {"actions": "U(-1, 1)^2, stream keyed by (seed, level code, round)",
                               "envs": self.cfg.rollout_envs, "seed": rollout_seed}
        elif level != "medium-replay":
            prov["rollout"] = {"noise_std": self.cfg.noise, "noise": "Gaussian, clipped to [-1, 1]",
                               "envs": self.cfg.rollout_envs, "seed": rollout_seed}
        refs = {k: {kk: v[kk] for kk in ("mean", "std", "episodes")} for k, v in plan.references.items()}
        return {"reference_returns": refs, "provenance": prov,
                "seeds": {"behaviour": self.seed, "rollout": rollout_seed}}

    def _open_writer(self, level: str, metadata: dict[str, Any]) -> DatasetWriter | None:
        """A writer positioned after what is already written, or ``None`` if the dataset is complete."""
        path = dataset_path(dataset_id(self.task, level), self.root)
        if path.exists():
            _, store = open_store(path)  # one-line error if it is not a dataset
            made = (store.attrs.get("seeds") or {}).get("behaviour")
            if made is not None and made != self.seed:  # another seed's data: never reused nor extended
                raise OmarbenchError(
                    f"dataset {dataset_id(self.task, level)} at {str(path)!r} was made from behaviour seed "
                    f"{made}, not {self.seed}: pass --seed {made} to use it, or delete it "
                    f"(rm -r {shlex.quote(str(path))}) to collect seed {self.seed}'s"
                )
            if store.complete:
                check_intact(path, dataset_id(self.task, level))
                self.log(f"{dataset_id(self.task, level)} is complete: {path}")
                return None
            self.log(f"resuming {dataset_id(self.task, level)} at {store.n_transitions:,} transitions")
            return DatasetWriter.resume(path)
        return DatasetWriter.create(path, self.task, level, metadata)

    def _rollout_seed(self, level: str) -> int:
        return 10_000_000 * (LEVEL_CODES[level] + 1) + self.seed

    def write_rollout(self, level: str, plan: LevelPlan, transitions: int) -> Path:
        seed = self._rollout_seed(level)
        writer = self._open_writer(level, self._metadata(level, plan, seed))
        path = dataset_path(dataset_id(self.task, level), self.root)
        if writer is None:
            return path
        T, E = self.task.episode_length, self.cfg.rollout_envs
        episodes = -(-transitions // T)
        uniform = level == "random"
        actors = [] if uniform else self.run.load_actors(plan.checkpoints[level])
        policies = [ActorPolicy(a, "", "") for a in actors]
        learners = list(self.task.learner_indices)
        env = make_vec_env(self.task, E, self.backend, seed=seed, fixed_policy=self.fixed)
        with writer, self._bar(f"{dataset_id(self.task, level)}", episodes * T, writer.n_transitions) as tick:
            rnd = writer.n_episodes // E
            while writer.n_episodes < episodes:
                rng = np.random.default_rng([self.seed, LEVEL_CODES[level], rnd])
                obs = env.reset(episode=rnd)
                frames = _Frames()
                for _ in range(T):
                    if uniform:
                        acts = rng.uniform(-1.0, 1.0, (E, len(learners), 2))
                    else:
                        acts = np.stack([p(obs[i]) for p, i in zip(policies, learners)], 1)
                        acts = np.clip(acts + rng.normal(0.0, self.cfg.noise, acts.shape), -1.0, 1.0)
                    step = env.step(acts)
                    frames.add(obs, step)
                    obs = step.obs
                # a resumed writer may stop mid-round: skip the round's episodes it already holds
                lo = writer.n_episodes - rnd * E
                hi = min(E, episodes - rnd * E)
                frames.write(writer, lo, hi)
                tick((hi - lo) * T)
                rnd += 1
            writer.finalize()
        return path

    def write_replay(self, plan: LevelPlan) -> Path:
        path = dataset_path(dataset_id(self.task, "medium-replay"), self.root)
        files: list[Path] = []
        if not (path.exists() and open_store(path)[1].complete):  # the experience first: a failed replay
            files = self.replay_files(plan.checkpoints["medium-replay"])  # leaves no dataset behind
        writer = self._open_writer("medium-replay", self._metadata("medium-replay", plan, None))
        if writer is None:
            return path
        n = self.task.n_agents
        with writer:
            done = 0
            for f in files:
                with np.load(f) as z:
                    b = z["actions"].shape[0]
                    if done + b <= writer.n_episodes:  # already written before an interruption
                        done += b
                        continue
                    skip = writer.n_episodes - done
                    sl = slice(skip, b)
                    writer.append_episodes(
                        [z[f"obs_{i}"][sl] for i in range(n)], [z["actions"][sl, :, i] for i in range(n)],
                        z["rewards"][sl],
                        [z[f"next_obs_{i}"][sl] for i in range(n)],
                        np.zeros(z["truncations"][sl].shape, bool), z["truncations"][sl])
                    done += b
            writer.finalize()
        return path

    def _bar(self, label: str, total: int, completed: int):
        from contextlib import contextmanager

        @contextmanager
        def bar():
            if not self.progress:
                yield lambda k: None
                return
            from omarbench.progress import LogLines, interactive

            if not interactive():
                lines = LogLines(label, total, "transitions", log=self.log, start=completed)

                def tick(k: int) -> None:
                    lines.update(lines.done + k)

                try:
                    yield tick
                finally:
                    lines.close()
                return
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            with Progress(TextColumn(f"[bold]{label}[/]"), BarColumn(),
                          TextColumn("{task.completed:,.0f}/{task.total:,.0f} transitions"),
                          TimeElapsedColumn(), TimeRemainingColumn()) as p:
                job = p.add_task("", total=total, completed=completed)
                yield lambda k: p.advance(job, k)

        return bar()

    def collect(self, levels: Sequence[str], transitions: int | None = None) -> list[Path]:
        # one writer per behaviour run and its datasets at a time: a second collect waits, then reuses
        with self.run.lock(log=self.log):
            clean_stale_temps(self.root)  # half-made stores (.<id>.zarr.creating-*) of killed collects
            self.train()
            plan = self.plan()
            out = []
            for level in levels:
                if level == "medium-replay":
                    out.append(self.write_replay(plan))
                else:
                    out.append(self.write_rollout(level, plan, transitions or self.cfg.transitions))
            return out


class _Frames:
    """Per-step arrays of one round of E synchronous episodes, written episode-major."""

    def __init__(self):
        self.obs: list[list[np.ndarray]] = []
        self.next_obs: list[list[np.ndarray]] = []
        self.actions: list[np.ndarray] = []
        self.rewards: list[np.ndarray] = []
        self.trunc: list[np.ndarray] = []

    def add(self, obs: list[np.ndarray], step: Any) -> None:
        self.obs.append(obs)
        self.next_obs.append(step.next_obs)
        self.actions.append(step.actions)
        self.rewards.append(step.rewards)
        self.trunc.append(step.truncated)

    def write(self, writer: DatasetWriter, lo: int, hi: int) -> None:
        """Append episodes ``lo:hi`` of the round."""
        n = len(self.obs[0])

        def episodes(frames: list[np.ndarray]) -> np.ndarray:
            return np.stack(frames, 1)[lo:hi]

        trunc = episodes(self.trunc)
        writer.append_episodes(
            [episodes([f[i] for f in self.obs]) for i in range(n)],
            [episodes([a[:, i] for a in self.actions]) for i in range(n)],
            episodes(self.rewards),
            [episodes([f[i] for f in self.next_obs]) for i in range(n)],
            np.zeros_like(trunc), trunc)


def check_intact(path: Path, did: str) -> None:
    """A complete dataset must also be intact (checksums, digest, episodes): else a one-line error saying
    what is wrong and what to do (collect never rewrites a finished dataset)."""
    from omarbench.data.verify import verify_dataset

    result = verify_dataset(path)
    if not result.ok:
        more = f" (and {len(result.problems) - 1} more problem(s))" if len(result.problems) > 1 else ""
        raise OmarbenchError(
            f"dataset {did} at {str(path)!r} is complete but damaged: {result.problems[0]}{more}; "
            f"delete it (rm -r {shlex.quote(str(path))}) and run the same command again to collect it anew "
            "(the behaviour run is reused)"
        )


def resolve_levels(level: str) -> list[str]:
    """``all`` (the four levels of a behaviour run) or a comma list of them, spelled as every command accepts
    them (:func:`vocab.parse_levels`); maze2d's ``waypoint`` is refused here."""
    return list(parse_levels(level, LEVELS))


def collect_mpe(task: Task, levels: list[str], *, transitions: int | None = None, seed: int | None = None,
                root: str | os.PathLike | None = None, backend: str = "numpy", preset: str = "paper",
                progress: bool = True, log: Callable[[str], None] = print,
                config: CollectConfig | None = None, retrain: bool = False) -> list[Path]:
    """The MPE collector behind :func:`omarbench.collect.api.collect` (which checks the arguments)."""
    cfg = config if config is not None else preset_config(task, preset)
    seed = preset_seed(task, preset) if seed is None else seed
    base = preset_root(root, preset, task.id)
    check_writable(base)
    return Collector(task, cfg, seed=seed, root=base, backend=backend, preset=preset, log=log,
                     progress=progress, retrain=retrain).collect(levels, transitions)


__all__ = ["CollectConfig", "Collector", "collect_mpe", "preset_config", "tiny_config"]
