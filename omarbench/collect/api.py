"""Collect datasets of any task: the one entry point of the collection stage.

MPE tasks train (or reuse) a MATD3 behaviour run and write four levels (:mod:`omarbench.collect.collector`);
multi-agent MuJoCo tasks do the same with their own settings (:mod:`omarbench.collect.mujoco`); maze2d's one
dataset comes from the waypoint controller (:mod:`omarbench.collect.waypoint`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from omarbench.collect.collector import CollectConfig, collect_mpe, resolve_levels
from omarbench.errors import UsageError
from omarbench.guard import MAX_SEED, MAX_TRANSITIONS, check_int, check_output_dir
from omarbench.paths import preset_root
from omarbench.tasks.maze2d import is_maze2d
from omarbench.tasks.spec import parse_task_id
from omarbench.vocab import check_backend, check_preset, data_preset


def collect(task_id: str, level: str = "all", *, transitions: int | None = None, seed: int | None = None,
            root: str | os.PathLike | None = None, backend: str = "numpy", preset: str = "paper",
            flavor: str | None = None, progress: bool = True, log: Callable[[str], None] = print,
            config: CollectConfig | None = None, retrain: bool = False) -> list[Path]:
    """Collect ``level`` (or ``all``) of a task; returns the dataset paths. Reuses finished work.

    A behaviour run the package ships (:mod:`omarbench.collect.shipped`) is installed instead of trained
    unless ``retrain``. ``seed=None`` is the preset's behaviour seed for the task
    (:func:`omarbench.collect.presets.preset_seed`; 0 for maze2d).

    maze2d tasks have no behaviour run: their one dataset comes from the waypoint controller. Every argument
    is checked before anything is created.
    """
    if transitions is not None:
        check_int("--transitions", transitions, 1, MAX_TRANSITIONS)
    if seed is not None:
        check_int("--seed", seed, 0, MAX_SEED)
    check_output_dir(preset_root(root, check_preset(preset), task_id), "--root")  # creates nothing
    preset = data_preset(preset, task_id)  # a training-only preset collects its data preset's datasets
    if is_maze2d(task_id):
        from omarbench.collect.waypoint import collect_maze2d

        if backend != "numpy" or flavor not in (None, "paper"):
            raise UsageError(f"{task_id} has one engine and one flavor: drop --backend / --flavor")
        return collect_maze2d(task_id, level, transitions=transitions, seed=seed or 0, root=root, preset=preset,
                              progress=progress, log=log)
    task = parse_task_id(task_id, flavor)
    levels = resolve_levels(level)
    if task.engine == "mpe":
        check_backend(backend)
    if task.engine == "mujoco":  # halfcheetah-2x3: its own settings and random level
        from omarbench.collect.mujoco import collect_mujoco
        from omarbench.collect.presets import preset_seed

        seed = preset_seed(task, preset) if seed is None else seed
        return collect_mujoco(task, levels, transitions=transitions, seed=seed, root=root, backend=backend,
                              preset=preset, progress=progress, log=log, config=config, retrain=retrain)
    return collect_mpe(task, levels, transitions=transitions, seed=seed, root=root, backend=backend, preset=preset,
                       progress=progress, log=log, config=config, retrain=retrain)


def ensure_dataset(task_id: str, level: str, *, preset: str = "paper", root: str | os.PathLike | None = None,
                   backend: str = "numpy", seed: int | None = None, progress: bool = True) -> Path:
    """The path of a complete dataset, collecting it first if it is missing or unfinished."""
    return collect(task_id, level, seed=seed, root=root, backend=backend, preset=preset, progress=progress,
                   log=_print_now)[0]


def _print_now(message: str) -> None:
    """The collector's lines, flushed: a sweep's log shows them as they come (stdout to a file is buffered)."""
    print(message, flush=True)
