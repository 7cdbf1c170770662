"""Env-steps per second of the batched NumPy engine against the reference, measured in one run.

The engine steps 1,024 copies at once through ``VecEnv.step`` (fixed prey inside, auto-reset
included); the reference steps one mpe2-based environment at a time (``omarbench.perf.reference``).
Both draw uniform-random actions every step. Engine and reference windows alternate (three of each,
so that a change in machine load hits both) and each figure is the median of its windows.
"""

from __future__ import annotations

import time

import numpy as np

from omarbench.perf.reference import TASKS, reference_steps_per_second
from omarbench.tasks.envs import VecEnv, make_vec_env
from omarbench.tasks.spec import parse_task_id

NUM_ENVS = 1024
WINDOWS = 3


def _engine_window(env: VecEnv, rng: np.random.Generator, seconds: float) -> float:
    shape = (env.num_envs, len(env.task.learner_indices), 2)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.step(rng.uniform(-1, 1, shape))
        steps += 1
    return steps * env.num_envs / (time.perf_counter() - start)


def run(quick: bool = False) -> None:
    seconds = 0.5 if quick else 3.0  # per backend and task, split into windows
    print(f"{'task':12s} {f'engine ({NUM_ENVS:,} envs)':>20s} {'reference (1 env)':>18s} {'ratio':>8s}")
    for tid in TASKS:
        env = make_vec_env(parse_task_id(tid), NUM_ENVS, backend="numpy", seed=0)
        env.reset()
        rng = np.random.default_rng(0)
        env.step(rng.uniform(-1, 1, (NUM_ENVS, len(env.task.learner_indices), 2)))  # warm-up
        fast, ref = [], []
        for _ in range(WINDOWS):
            fast.append(_engine_window(env, rng, seconds / WINDOWS))
            ref.append(reference_steps_per_second(tid, seconds=seconds / WINDOWS))
        f, r = float(np.median(fast)), float(np.median(ref))
        print(f"{tid:12s} {f:20,.0f} {r:18,.0f} {f / r:7,.0f}x  env-steps/s", flush=True)
