"""Train the fixed prey of ``tag`` and ``world`` and ship it as a package asset.

The paper's prey is a pretrained policy that stays fixed while the predators learn. omarbench makes
its own: predators and prey are trained together with MATD3 (every agent learning) until the prey's
return stops improving (the mean of its evaluation return over the last ``WINDOW`` checkpoints is no
better than over the ``WINDOW`` before) or the step budget ends. Because the prey's return also falls
as the predators get better, the rule only applies after a minimum budget (``MIN_CHECKPOINTS``), so an
early dip while the predators first learn to chase does not freeze a novice prey.

The prey's actor from the last checkpoint is then frozen and written to
``omarbench/assets/prey/<task>.pt`` with a provenance file ``<task>.json`` (training configuration,
evaluation curve, SHA-256 of the weights, the command that regenerates them). From then on the
reference environments and the engine drive the prey with it, and every dataset records its digest.

Regenerate: ``omarbench prey train tag`` (and ``world``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from omarbench.collect.collector import check_writable
from omarbench.collect.matd3 import MATD3Config
from omarbench.collect.run import BehaviourRun, RunConfig, torch_bytes
from omarbench.data import default_root
from omarbench.data.provenance import command_line, now_utc, package_versions
from omarbench.errors import UsageError
from omarbench.io import atomic_write_bytes, atomic_write_json
from omarbench.tasks.prey import prey_asset_path
from omarbench.tasks.spec import Task, parse_task_id
from omarbench.vocab import check_positive

PREY_RUN = RunConfig(
    total_steps=1_000_000, num_envs=16, segment_episodes=50,
    matd3=MATD3Config(actor_lr=1e-2, critic_lr=1e-2, batch_size=256),
)
WINDOW = 10  # checkpoints per comparison window of the stopping rule (20k steps each)
MIN_CHECKPOINTS = 30  # 600k steps before the rule may stop the run


def prey_plateaued(prey_index: int, window: int = WINDOW, min_checkpoints: int = MIN_CHECKPOINTS):
    """Stopping rule: the prey's mean return over the last window is no better than the window before."""

    def stop(checkpoints: list[dict[str, Any]]) -> bool:
        returns = [c["eval_agent_returns"][prey_index] for c in checkpoints[1:]]
        if len(returns) < max(min_checkpoints, 2 * window):
            return False
        recent, before = returns[-window:], returns[-2 * window:-window]
        return sum(recent) / window <= sum(before) / window

    return stop


def _co_training_task(task: Task) -> Task:
    agents = tuple(replace(a, role="learner") for a in task.agents)
    return replace(task, agents=agents, fixed_policy=None)


def train_prey(task_id: str, *, seed: int = 0, root: str | os.PathLike | None = None, backend: str = "numpy",
               config: RunConfig = PREY_RUN, out: Path | None = None,
               log: Callable[[str], None] = print) -> Path:
    """Co-train predators and prey, freeze the prey, write the asset; returns the weights' path."""
    task = parse_task_id(task_id)
    if seed < 0:
        raise UsageError(f"--seed must be non-negative, got {seed}")
    from omarbench.errors import bad_choice
    from omarbench.guard import MAX_SEED, check_int, check_output_file
    from omarbench.vocab import BACKENDS

    check_int("--seed", seed, 0, MAX_SEED)
    if backend not in BACKENDS:
        raise bad_choice("backend", backend, BACKENDS)
    check_positive("--steps", config.total_steps)
    if not task.fixed_indices:
        raise UsageError(f"task {task.id!r} has no fixed agents; prey are trained for: tag, world")
    if out is not None:
        check_output_file(out, "--out")  # before any training: a bad path must not cost the run
    (prey,) = task.fixed_indices
    co_task = _co_training_task(task)
    base = Path(root).expanduser() if root is not None else default_root()
    check_writable(base)
    run_dir = base / "behaviour" / f"prey-{task.id.replace(':', '+')}-seed{seed}"
    run = BehaviourRun(co_task, run_dir, config, seed=seed, backend=backend)
    log(f"co-training predators and prey of {task.id} in {run_dir}")
    info = run.train(stop_when=prey_plateaued(prey),
                     progress=lambda s, t, r: log(f"  step {s:,}/{t:,}: predator return {r:.2f}"))
    last = info["checkpoints"][-1]
    actors = run.load_actors(last["segment"])
    path = out if out is not None else prey_asset_path(task)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {"actor": actors[prey].state_dict(), "obs_dim": task.agents[prey].obs_dim,
            "hidden": config.matd3.hidden}
    data = torch_bytes(blob)
    curve = [{"steps": c["steps"], "prey_return": c["eval_agent_returns"][prey],
              "predator_return": c["eval_return"]} for c in info["checkpoints"]]
    provenance = {
        "task": task.id,
        "how": "MATD3 co-training of predators and prey (every agent learning); prey frozen at the last "
               f"checkpoint once its mean evaluation return over {WINDOW} checkpoints stopped improving",
        "stopped_early": info.get("stopped_early", False),
        "steps": last["steps"],
        "seed": seed,
        "backend": backend,
        "config": config.to_dict(),
        "curve": curve,
        "sha256": hashlib.sha256(data).hexdigest(),
        "command": _portable(command_line()),
        "created": now_utc(),
        "versions": package_versions(),
    }
    # provenance first, then the weights (each replaced atomically): the weights only appear complete
    atomic_write_json(path.with_suffix(".json"), provenance)
    atomic_write_bytes(path, data)
    log(f"prey of {task.id}: {path} (sha256 {provenance['sha256'][:12]}, {last['steps']:,} steps, "
        f"prey return {curve[-1]['prey_return']:.2f})")
    return path


def _portable(command: str) -> str:
    """The command with the value of ``--root`` (a path on the machine that ran it) replaced by ``DIR``."""
    words = command.split(" ")
    for i, w in enumerate(words[:-1]):
        if w == "--root":
            words[i + 1] = "DIR"
    return " ".join(w if not w.startswith("--root=") else "--root=DIR" for w in words)
