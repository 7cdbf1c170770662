"""Env-steps per second of the reference (mpe2-based) environments, one env at a time."""

from __future__ import annotations

import time

import numpy as np

from omarbench.tasks.mpe_ref import ReferenceEnv
from omarbench.tasks.spec import parse_task_id

TASKS = ("spread", "spread-n10", "spread-n20", "tag", "world")


def reference_steps_per_second(task_id: str, seconds: float = 1.0) -> float:
    """Median over three windows of env-steps/s with uniform-random actions."""
    task = parse_task_id(task_id)
    env = ReferenceEnv(task, seed=0)
    rng = np.random.default_rng(0)
    rates = []
    for _ in range(3):
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 3:
            if env.steps == task.episode_length:
                env.reset()
            env.step(rng.uniform(-1, 1, (task.n_agents, 2)))
            steps += 1
        rates.append(steps / (time.perf_counter() - start))
    return float(np.median(rates))


def run(quick: bool = False) -> None:
    for tid in TASKS:
        rate = reference_steps_per_second(tid, seconds=0.5 if quick else 3.0)
        print(f"{tid:12s} reference (mpe2 engine): {rate:10,.0f} env-steps/s")
