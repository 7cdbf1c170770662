"""What a sweep has to run: the grid (:class:`SweepSpec` → :class:`Job`), the agent-count study, how many
jobs run at once, and which runs are already finished in the results directory."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omarbench import results as rs
from omarbench.errors import UsageError, bad_choice
from omarbench.vocab import (
    ALL_LEVELS,
    MAZE2D_LEVELS,
    PAPER_ALGOS,
    PAPER_TASKS,
    SCALING_ALGOS,
    SCALING_LEVEL,
    format_seeds,
    int_list,
    items,
)

SCALING_AGENTS: tuple[int, ...] = (1, 2, 3, 4, 5)


def all_algos() -> tuple[str, ...]:
    """Every algorithm of the registry (imported on first use: it loads torch, which the grid's own
    processes, e.g. a dry run or a worker of a test's fake trainer, do not otherwise need)."""
    from omarbench.offline.algos import ALGO_NAMES

    return ALGO_NAMES


def __getattr__(name: str):
    if name == "ALL_ALGOS":
        return all_algos()
    raise AttributeError(name)


def parse_algos(text: str) -> tuple[str, ...]:
    """``paper`` (the paper's four algorithms), ``all`` (every registered one) or names and aliases."""
    from omarbench.offline.algos import canonical_name

    ALL_ALGOS = all_algos()
    chosen = items(text)
    if not chosen:
        raise bad_choice("algorithm", text, ALL_ALGOS + ("paper", "all"))
    if len(chosen) == 1 and chosen[0].lower() in ("all", "paper"):
        return ALL_ALGOS if chosen[0].lower() == "all" else PAPER_ALGOS
    out: list[str] = []
    for item in chosen:
        try:
            algo = canonical_name(item)
        except UsageError:
            raise bad_choice("algorithm", item, ALL_ALGOS + ("paper", "all")) from None
        if algo not in out:
            out.append(algo)
    return tuple(out)


def parse_agents(text: str) -> tuple[int, ...]:
    """Agent counts for the scaling study: ``1-5``, ``1,2,4`` or ``8``."""
    from omarbench.tasks.spec import SPREAD_MAX_AGENTS, SPREAD_MIN_AGENTS

    example = f"a range (1-5) or a list (1,2,4) of agent counts in {SPREAD_MIN_AGENTS}..{SPREAD_MAX_AGENTS}"
    counts = int_list(text, "agent counts", example)
    if min(counts) < SPREAD_MIN_AGENTS or max(counts) > SPREAD_MAX_AGENTS:
        raise UsageError(f"bad agent counts {text!r}; expected {example}")
    return tuple(counts)


# ------------------------------------------------------------------------------------------ model


@dataclass(frozen=True)
class SweepSpec:
    """What to run: the grid and the settings passed to every run."""

    algos: tuple[str, ...] = PAPER_ALGOS
    tasks: tuple[str, ...] = PAPER_TASKS
    levels: tuple[str, ...] = ALL_LEVELS  # each task keeps the levels it has (maze2d: waypoint; MPE: the four)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    preset: str = "paper"
    root: str | None = None
    results_dir: str | None = None
    device: str = "cpu"
    backend: str = "numpy"
    overrides: Mapping[str, Any] | None = None
    behaviour: bool = False  # also record each dataset's behaviour score (the scaling study needs it)

    @property
    def cells(self) -> list[tuple[str, str]]:
        """The (task, level) datasets of the grid, level-major: the chosen levels each task has."""
        return [(task, level) for level in self.levels for task in self.tasks if level in task_levels(task)]

    @property
    def n_runs(self) -> int:
        return len(self.algos) * len(self.cells) * len(self.seeds)


def task_levels(task: str) -> tuple[str, ...]:
    """The dataset levels of a task id: ``waypoint`` for maze2d, the four MPE levels otherwise."""
    from omarbench.tasks.maze2d import is_maze2d
    from omarbench.vocab import LEVELS

    return MAZE2D_LEVELS if is_maze2d(task) else LEVELS


@dataclass(frozen=True)
class Job:
    """One (algo, task, level) with the seeds to run in one batched training call."""

    algo: str
    task: str
    level: str
    seeds: tuple[int, ...]

    @property
    def label(self) -> str:
        return f"{self.algo} {self.task} {self.level} seeds {format_seeds(self.seeds)}"


def plan_jobs(spec: SweepSpec) -> list[Job]:
    """Every job of the grid, in a fixed order (level, task, algo)."""
    return [Job(algo, task, level, tuple(spec.seeds)) for task, level in spec.cells for algo in spec.algos]


def scaling_spec(
    agents: Sequence[int] = SCALING_AGENTS,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    **settings: Any,
) -> SweepSpec:
    """The agent-count study (docs/protocol.md §6): spread with n agents, medium-replay data, MA-CQL and OMAR."""
    from omarbench.tasks.spec import parse_task_id

    tasks = tuple(parse_task_id(f"spread-n{n}").id for n in agents)
    return SweepSpec(
        algos=SCALING_ALGOS, tasks=tasks, levels=(SCALING_LEVEL,), seeds=tuple(seeds), behaviour=True,
        **settings,
    )


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def plan_parallelism(n_jobs: int, jobs: int | None, cores: int | None = None) -> tuple[int, int]:
    """(parallel jobs, torch threads per job) with jobs × threads <= cores when ``jobs`` is not forced."""
    cores = cores or available_cores()
    if jobs is not None and jobs < 1:
        raise UsageError(f"--jobs must be a positive integer, got {jobs}")
    width = jobs if jobs is not None else cores
    width = max(1, min(width, max(1, n_jobs)))
    return width, max(1, cores // width)


def _dataset_id(task: str, level: str) -> str:
    return f"{task}-{level}"


def _config_matches(recorded: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> bool:
    return all(recorded.get(k) == v for k, v in (overrides or {}).items())


class _Done:
    """Finished (``ok``) runs found in the results directory, to decide what still has to run."""

    def __init__(self, results_dir: Path) -> None:
        self.keys: set[str] = set()
        self.loose: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
        for _, rec in rs.iter_records(results_dir):
            if rec.get("status") != "ok":
                continue
            try:
                self.keys.add(rs.key_of(rec))
            except (KeyError, TypeError, ValueError):
                continue
            ident = (rec["algo"], rec["task"], rec["level"], int(rec["seed"]), rec.get("preset"),
                     (rec.get("dataset") or {}).get("digest"), rec.get("code_version"))
            self.loose[ident].append(rec.get("config") or {})

    def has(self, key: str, ident: tuple, overrides: Mapping[str, Any] | None, exact: bool) -> bool:
        if exact:
            return key in self.keys
        return any(_config_matches(c, overrides) for c in self.loose.get(ident, ()))
