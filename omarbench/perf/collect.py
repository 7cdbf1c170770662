"""Collection speed: behaviour training throughput and 1M-transition rollouts, per task.

Trains each task's behaviour learner (the ``paper`` preset's settings) for a short window, reports
environment steps per second and the time the preset's full budget would take at that rate, then
writes one rollout dataset of 1M transitions (``--quick``: 100k) from the untrained actor with the
rollout noise and reports its wall time. Targets: <= 15 min of training per task, <= 60 s per 1M
transitions. Everything runs in a temporary directory.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path

from omarbench.collect.collector import Collector, LevelPlan, preset_config
from omarbench.tasks.spec import parse_task_id
from omarbench.vocab import PAPER_TASKS

TASKS = PAPER_TASKS


def run(quick: bool = False) -> None:
    window = 30_000 if quick else 100_000
    rollout = 100_000 if quick else 1_000_000
    for tid in TASKS:
        task = parse_task_id(tid)
        full = preset_config(task, "paper")
        cfg = replace(full, run=replace(full.run, total_steps=window))
        with tempfile.TemporaryDirectory() as tmp:
            col = Collector(task, cfg, root=Path(tmp), progress=False, log=lambda s: None)
            start = time.perf_counter()
            col.train()
            train_s = time.perf_counter() - start
            rate = window / train_s
            plan = LevelPlan({"random": {"mean": 0.0, "std": 0.0, "episodes": 0},
                              "expert": {"mean": 1.0, "std": 0.0, "episodes": 0}},
                             {"random": 0, "medium": 0, "expert": 0, "medium-replay": 0})
            start = time.perf_counter()
            col.write_rollout("random", plan, rollout)
            roll_s = time.perf_counter() - start
        print(f"{tid:7s} behaviour training {rate:8,.0f} env-steps/s -> {full.run.total_steps:,} steps in "
              f"{full.run.total_steps / rate / 60:5.1f} min (target <= 15); "
              f"rollout of {rollout:,} transitions {roll_s:5.1f} s (target <= 60 s per 1M)")
