"""Env-steps per second of the batched NumPy engine against the reference, measured in one run.

The engine steps 1,024 copies at once through ``VecEnv.step`` (fixed prey inside, auto-reset
included); the reference steps one mpe2-based environment at a time (``omarbench.bench.reference``).
Both draw uniform-random actions every step. Each figure is the median of three timing windows.
"""

from __future__ import annotations

import time

import numpy as np

from omarbench.bench.reference import TASKS, reference_steps_per_second
from omarbench.tasks.envs import make_vec_env
from omarbench.tasks.spec import parse_task_id

NUM_ENVS = 1024


def engine_steps_per_second(task_id: str, num_envs: int = NUM_ENVS, seconds: float = 1.0) -> float:
    """Median over three windows of env-steps/s (copies × batched steps per second)."""
    task = parse_task_id(task_id)
    env = make_vec_env(task, num_envs, backend="numpy", seed=0)
    env.reset()
    rng = np.random.default_rng(0)
    shape = (num_envs, len(task.learner_indices), 2)
    env.step(rng.uniform(-1, 1, shape))  # warm-up
    rates = []
    for _ in range(3):
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 3:
            env.step(rng.uniform(-1, 1, shape))
            steps += 1
        rates.append(steps * num_envs / (time.perf_counter() - start))
    return float(np.median(rates))


def run(quick: bool = False) -> None:
    seconds = 0.5 if quick else 3.0
    print(f"{'task':12s} {'engine (' + str(NUM_ENVS) + ' envs)':>20s} {'reference (1 env)':>18s} {'ratio':>8s}")
    for tid in TASKS:
        fast = engine_steps_per_second(tid, seconds=seconds)
        ref = reference_steps_per_second(tid, seconds=seconds)
        print(f"{tid:12s} {fast:20,.0f} {ref:18,.0f} {fast / ref:7,.0f}x  env-steps/s", flush=True)
