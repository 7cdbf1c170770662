"""Behaviour runs and dataset levels of the MuJoCo task ``halfcheetah-2x3`` (PROTOCOL §2, §7).

The same flow as MPE (one MATD3 run per task yields the four levels; resumable, progress bars) with the
HalfCheetah settings of the authors' code: two hidden layers of 256, Adam 3e-4, batch 256, soft update
0.005, γ 0.99 (``HALFCHEETAH_MATD3``). TD3's usual one gradient round per environment transition is
kept: ``updates_per_step`` equals the number of environment copies. TD3 does not clip gradients; the
learner's norm clip is set loose (100) so that it only guards against blow-ups.

Levels:

* ``random``        uniform random actions U(-1, 1)³ per agent (the paper's random level, PROTOCOL §2);
* ``medium``        the checkpoint whose evaluation return is closest to ``random + 0.48 (expert - random)``
                    up to the run's first reaching it (``collector.medium_checkpoint``), 0.48 being the
                    authors' medium dataset normalised with their references
                    ((1568.9 + 284.0) / (3568.8 + 284.0)), rolled out with the exploration noise;
* ``medium-replay`` every transition of the run up to the medium checkpoint;
* ``expert``        the best checkpoint by evaluation return, rolled out with the exploration noise.

Reference returns: random = the uniform random policy, expert = the expert checkpoint acting
deterministically, each over ``reference_episodes`` episodes, stored in every dataset of the task.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from omarbench.collect.collector import (
    LEVEL_CODES,
    CollectConfig,
    Collector,
    LevelPlan,
    _Frames,
    check_writable,
    resolve_levels,
)
from omarbench.collect.matd3 import MATD3Config
from omarbench.collect.run import ActorPolicy, RunConfig
from omarbench.data import dataset_id, dataset_path, preset_root
from omarbench.errors import UsageError
from omarbench.tasks.envs import make_vec_env
from omarbench.tasks.mamujoco import require_mujoco, resolve_backend
from omarbench.tasks.spec import Task
from omarbench.vocab import check_preset

MEDIUM_FRACTION = 0.48
LAPTOP_STEPS = 300_000  # behaviour transitions of the ``laptop`` preset
RANDOM_SEED_OFFSET = 3_000_000  # seeds of the random reference's episodes (disjoint from eval and rollouts)

HALFCHEETAH_MATD3 = MATD3Config(hidden=256, actor_lr=3e-4, critic_lr=3e-4, gamma=0.99, tau=0.005, batch_size=256,
                                expl_noise=0.1, target_noise=0.2, target_noise_clip=0.5, policy_delay=2,
                                grad_clip=100.0, action_l2=1e-3)


def mujoco_preset_config(task: Task, preset: str = "paper") -> CollectConfig:
    """``paper``: 1M-transition levels from a 1M-step run; ``quick``: a few minutes, small levels."""
    check_preset(preset)
    if preset in ("paper", "laptop"):
        run = RunConfig(total_steps=1_000_000, num_envs=5, segment_episodes=1, updates_per_step=5.0,
                        warmup_steps=5_000, eval_episodes=10, matd3=HALFCHEETAH_MATD3)
        if preset == "laptop":
            # the paper run's first LAPTOP_STEPS transitions (same settings, schedule and seed stream): the
            # behaviour budget this project's 2-core machine finishes next to the laptop grid (README,
            # "Two-agent HalfCheetah"); the levels and references keep the paper's sizes
            run = replace(run, total_steps=LAPTOP_STEPS)
        return CollectConfig(run=run, transitions=1_000_000, rollout_envs=100, reference_episodes=1_000,
                             medium_fraction=MEDIUM_FRACTION)
    # quick: one gradient round per batched step of 4 copies (a quarter of the paper's update ratio)
    run = RunConfig(total_steps=24_000, num_envs=4, segment_episodes=1, updates_per_step=1.0, warmup_steps=4_000,
                    eval_episodes=4, matd3=HALFCHEETAH_MATD3)
    return CollectConfig(run=run, transitions=20_000, rollout_envs=20, reference_episodes=20,
                         medium_fraction=MEDIUM_FRACTION)


def mujoco_tiny_config() -> CollectConfig:
    """Seconds-long settings for tests: 2 segments of one episode, levels of one episode."""
    run = RunConfig(total_steps=2_000, num_envs=1, segment_episodes=1, updates_per_step=0.5, warmup_steps=500,
                    eval_episodes=1, matd3=replace(HALFCHEETAH_MATD3, hidden=32, batch_size=64))
    return CollectConfig(run=run, transitions=1_000, rollout_envs=1, reference_episodes=2,
                         medium_fraction=MEDIUM_FRACTION)


def uniform_random_returns(task: Task, episodes: int, seed: int, backend: str = "mujoco") -> np.ndarray:
    """Reported returns of ``episodes`` episodes of uniform random actions (resets: the env's seed stream)."""
    env = make_vec_env(task, episodes, backend, seed=seed)
    rng = np.random.default_rng([seed, LEVEL_CODES["random"]])
    env.reset()
    rewards = np.zeros((episodes, task.episode_length, task.n_agents))
    shape = (episodes, len(task.learner_indices), task.act_dim)
    for t in range(task.episode_length):
        rewards[:, t] = env.step(rng.uniform(-1.0, 1.0, shape)).rewards
    return task.reported_return(rewards)


class MujocoCollector(Collector):
    """:class:`Collector` with the MuJoCo random level (uniform actions) and package versions recorded."""

    def _references(self, best: int) -> dict[str, dict[str, Any]]:
        n = self.cfg.reference_episodes
        rand = uniform_random_returns(self.task, n, self.seed + RANDOM_SEED_OFFSET, self.backend)
        expert = self.run.evaluate(self.run.load_actors(best), n, seed_offset=2_000_000)
        return {"random": {"mean": float(rand.mean()), "std": float(rand.std()), "episodes": n,
                           "policy": "uniform U(-1, 1)"},
                "expert": {"mean": float(expert.mean()), "std": float(expert.std()), "episodes": n,
                           "checkpoint": best}}

    def _metadata(self, level: str, plan: LevelPlan, rollout_seed: int | None) -> dict[str, Any]:
        meta = super()._metadata(level, plan, rollout_seed)
        prov = meta["provenance"]
        if level == "random":
            prov.pop("checkpoint", None)  # the MPE random level has none either
            prov["selection"] = "uniform random actions U(-1, 1) for every agent"
            prov["rollout"] = {"noise": "none (uniform actions)", "envs": self.cfg.rollout_envs,
                               "seed": rollout_seed}
        return meta

    def write_rollout(self, level: str, plan: LevelPlan, transitions: int) -> Path:
        seed = self._rollout_seed(level)
        writer = self._open_writer(level, self._metadata(level, plan, seed))
        path = dataset_path(dataset_id(self.task, level), self.root)
        if writer is None:
            return path
        T, E, task = self.task.episode_length, self.cfg.rollout_envs, self.task
        episodes = -(-transitions // T)
        learners = list(task.learner_indices)
        policies = (None if level == "random" else
                    [ActorPolicy(a, "", "") for a in self.run.load_actors(plan.checkpoints[level])])
        env = make_vec_env(task, E, self.backend, seed=seed)
        with writer, self._bar(dataset_id(task, level), episodes * T, writer.n_transitions) as tick:
            rnd = writer.n_episodes // E
            while writer.n_episodes < episodes:
                rng = np.random.default_rng([self.seed, LEVEL_CODES[level], rnd])
                obs = env.reset(episode=rnd)
                frames = _Frames()
                for _ in range(T):
                    if policies is None:
                        acts = rng.uniform(-1.0, 1.0, (E, len(learners), task.act_dim))
                    else:
                        acts = np.stack([p(obs[i]) for p, i in zip(policies, learners)], 1)
                        acts = np.clip(acts + rng.normal(0.0, self.cfg.noise, acts.shape), -1.0, 1.0)
                    step = env.step(acts)
                    frames.add(obs, step)
                    obs = step.obs
                lo, hi = writer.n_episodes - rnd * E, min(E, episodes - rnd * E)
                frames.write(writer, lo, hi)
                tick((hi - lo) * T)
                rnd += 1
            writer.finalize()
        return path


def collect_mujoco(task: Task, levels: Sequence[str] | str = "all", *, transitions: int | None = None,
                   seed: int = 0, root: str | os.PathLike | None = None, backend: str = "mujoco",
                   preset: str = "paper", progress: bool = True, log: Callable[[str], None] = print,
                   config: CollectConfig | None = None, retrain: bool = False) -> list[Path]:
    """Collect levels of a MuJoCo task; returns the dataset paths. Reuses and resumes finished work."""
    levels = resolve_levels(levels) if isinstance(levels, str) else list(levels)
    if transitions is not None and transitions <= 0:
        raise UsageError(f"--transitions must be a positive integer, got {transitions}")
    if seed < 0:
        raise UsageError(f"--seed must be non-negative, got {seed}")
    backend = resolve_backend(task, backend)
    require_mujoco()
    cfg = config if config is not None else mujoco_preset_config(task, preset)
    base = preset_root(root, preset, task.id)
    check_writable(base)
    return MujocoCollector(task, cfg, seed=seed, root=base, backend=backend, preset=preset, log=log,
                           progress=progress, retrain=retrain).collect(levels, transitions)
