"""Cost of the maze2d grid: one update round of every algorithm at the maze2d preset, and evaluation.

* Training: one update round of the batched learners (:class:`omarbench.offline.algos.core.Learners`, 5 seeds
  batched) with the maze2d ``paper`` settings (hidden 256, batch 256), on a small dataset of the real
  task's sizes (obs 4, act 2; the cost of a round does not depend on the dataset's length), the
  algorithms alternated round by round so that load from other processes hits them alike.
* Evaluation: CPU time of one periodic evaluation (5 seeds, ``eval_episodes`` each, the task's horizon)
  per maze, with a trained-size actor.

Everything is CPU seconds on one thread (``time.process_time``), medians; the projection multiplies them
out for each preset over the whole grid (every algorithm × 3 mazes × 5 seeds): rounds × round cost +
(evaluations + 1) × evaluation cost + the final evaluation.
"""

from __future__ import annotations

import statistics
import time

import torch

SEEDS = [0, 1, 2, 3, 4]


def _dataset(root: str):
    from omarbench.collect.waypoint import WaypointConfig, collect_maze2d
    from omarbench.data import load_dataset

    collect_maze2d("maze2d-umaze", root=root, transitions=3_000, config=WaypointConfig(reference_episodes=2),
                   progress=False, log=lambda s: None)
    return load_dataset("maze2d-umaze-waypoint", root=root, device="cpu")


def round_costs(dataset, rounds: int) -> dict[str, float]:
    """Median CPU seconds of one update round (5 seeds) per algorithm, alternating algorithms."""
    from omarbench.offline.algos import ALGO_NAMES, get_algorithm
    from omarbench.offline.algos.core import Learners
    from omarbench.offline.presets import make_config

    learners = {}
    for name in ALGO_NAMES:
        cfg = make_config(name, "maze2d-umaze", "waypoint", "paper")
        learners[name] = Learners(get_algorithm(name)(cfg), SEEDS, dataset, "cpu")
        for _ in range(3):
            learners[name].update()
    times: dict[str, list[float]] = {k: [] for k in learners}
    for _ in range(rounds):
        for name, L in learners.items():
            t = time.process_time()
            L.update()
            times[name].append(time.process_time() - t)
    return {k: statistics.median(v) for k, v in times.items()}, learners


def eval_costs(learner, episodes: int, reps: int) -> dict[str, float]:
    """Median CPU seconds of one evaluation of 5 seeds × ``episodes`` per maze."""
    from omarbench.offline.train import Evaluator
    from omarbench.tasks import maze2d
    from omarbench.tasks.spec import parse_task_id

    out = {}
    for tid in maze2d.TASK_IDS:
        ev = Evaluator(parse_task_id(tid), SEEDS, episodes, "numpy", torch.device("cpu"))
        ts = []
        for _ in range(reps):
            t = time.process_time()
            ev.run(learner.act)
            ts.append(time.process_time() - t)
        out[tid] = statistics.median(ts)
    return out


def run(quick: bool = False) -> None:
    import tempfile

    from omarbench.offline.maze2d_presets import BUDGETS, PAPER

    torch.set_num_threads(1)
    rounds, reps = (3, 1) if quick else (20, 3)
    with tempfile.TemporaryDirectory() as root:
        ds = _dataset(root)
        rc, learners = round_costs(ds, rounds)
    print(f"maze2d update round, 5 seeds batched, hidden {PAPER['hidden']}, batch {PAPER['batch_size']} "
          f"(median of {rounds}, CPU s):")
    for k, v in rc.items():
        print(f"  {k:10s} {v * 1e3:8.1f} ms")
    ev10 = eval_costs(learners["BC"], 10, reps)
    print("evaluation, 5 seeds x 10 episodes (CPU s): " + ", ".join(f"{k} {v:.2f}" for k, v in ev10.items()))
    per_round = sum(rc.values()) * len(ev10)
    per_eval10 = sum(ev10.values()) * len(rc)  # every algorithm on every maze
    for preset, budget in BUDGETS.items():
        cfg = {**PAPER, **budget}
        n_evals = cfg["rounds"] // cfg["eval_every"] + 1
        train_s = cfg["rounds"] * per_round
        eval_s = n_evals * per_eval10 * cfg["eval_episodes"] / 10 + per_eval10 * cfg["final_episodes"] / 10
        print(f"projected {preset:6s} grid ({len(rc)} algorithms x 3 mazes x 5 seeds): {cfg['rounds']:,} rounds "
              f"{train_s / 60:,.1f} + evaluations {eval_s / 60:,.1f} = {(train_s + eval_s) / 60:,.1f} CPU-minutes")
