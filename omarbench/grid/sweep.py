"""The evaluation grid: algorithms × tasks × levels × seeds, run by local processes or by Ray.

One *job* is one (algo, task, level) with all its seeds: the trainer batches seeds, so a job is the
unit of work an executor runs. A run (one seed of a job) is identified by its key (config, dataset
digest, code version; see :func:`omarbench.results.run_key`). Runs whose record already says ``ok``
are skipped, so a killed sweep resumes where it stopped. Missing datasets are collected first (or,
with ``collect=False``, reported as an error). A run that fails is recorded with its reason and the
sweep goes on; :attr:`SweepOutcome.exit_code` is 1 when anything failed.

Everything the sweep calls outside itself (the trainer, the collector, the dataset lookup, the
preset resolver) comes in through :class:`Hooks`, so the grid logic can be tested without them.

The grid's parts: :mod:`~omarbench.grid.plan` (what to run, what is done), :mod:`~omarbench.grid.executors`
(local processes, Ray), :mod:`~omarbench.grid.progress` (the display), :mod:`~omarbench.grid.record`
(failed and behaviour records); this module puts them together.

Public API::

    SweepSpec, Job, Hooks, SweepOutcome
    parse_algos / parse_tasks / parse_levels / parse_seeds / parse_agents   (user text → values)
    plan_jobs(spec) -> list[Job]
    scaling_spec(agents, seeds, ...) -> SweepSpec     the agent-count study (docs/protocol.md §6)
    run_sweep(spec, hooks=None, executor="local", jobs=None, collect=True, ...) -> SweepOutcome
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from omarbench import results as rs
from omarbench.errors import OmarbenchError, UsageError
from omarbench.grid.executors import EXECUTOR_FUNCS, _callable_name, _one_line, execute_job  # noqa: F401
from omarbench.grid.plan import (  # noqa: F401  (the grid's API, re-exported)
    SCALING_AGENTS,
    Job,
    SweepSpec,
    _dataset_id,
    _Done,
    all_algos,
    available_cores,
    parse_agents,
    parse_algos,
    plan_jobs,
    plan_parallelism,
    scaling_spec,
)
from omarbench.grid.progress import Progress
from omarbench.grid.record import BEHAVIOUR_SOURCE, Recorder, _dataset_block, _write_behaviour  # noqa: F401
from omarbench.paths import data_root as default_root
from omarbench.tasks.spec import parse_task_list as parse_tasks  # noqa: F401  (re-exported)
from omarbench.vocab import (  # noqa: F401  (the grid's words, re-exported for its callers)
    BACKENDS,
    DEFAULT_SEEDS,
    EXECUTORS,
    LEVELS,
    PAPER_ALGOS,
    PAPER_TASKS,
    PRESETS,
    SCALING_ALGOS,
    SCALING_LEVEL,
    check_backend,
    check_choice,
    check_positive,
    check_preset,
    format_seeds,
    parse_levels,
    parse_overrides,
    parse_seeds,
)


@dataclass
class Hooks:
    """What the sweep calls outside itself.

    ``train``: ``train(algo, task, level, seeds, *, preset, root, results_dir, device, backend, overrides,
    progress) -> list[record]``; run in worker processes, so give a module-level function (it is passed
    by name) or its ``"module:function"`` name. ``ensure_dataset(task, level, *, preset, root, backend,
    progress) -> path`` collects a missing dataset. ``dataset_info(task, level, root) -> dict | None``
    describes an existing dataset (``id``, ``digest``, ``n_transitions``, ``reference_returns`` and, if
    known, ``return_mean``, the mean reported episode return) or returns None when it is missing.
    ``resolve_config(algo, task, level, preset, overrides) -> dict`` gives the config a run will record;
    without it, a finished run matches when its recorded config contains the overrides.
    """

    train: Callable[..., list[dict]] | str
    ensure_dataset: Callable[..., Any]
    dataset_info: Callable[..., dict[str, Any] | None]
    resolve_config: Callable[..., dict[str, Any]] | None = None
    code_version: Callable[[str, str], str] = rs.code_version  # (algorithm, task id) -> version


def default_hooks() -> Hooks:
    """The real trainer, collector and dataset lookup of this package."""
    return Hooks(
        train="omarbench.offline.train:train",
        ensure_dataset=_real_ensure_dataset,
        dataset_info=_real_dataset_info,
        resolve_config=_real_resolve_config,
    )


@dataclass
class SweepOutcome:
    """What a sweep did."""

    planned: int = 0  # runs in the grid
    skipped: int = 0  # already finished before this sweep
    ok: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (run label, reason)
    collected: list[str] = field(default_factory=list)  # dataset ids collected by this sweep
    jobs: list[Job] = field(default_factory=list)  # jobs run (seeds still to do)
    wall_time_s: float = 0.0

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


# ---------------------------------------------------------------------------------------- the sweep


def _install_sigterm() -> Callable[[], None]:
    """Turn SIGTERM into KeyboardInterrupt while the sweep runs, so its workers are stopped too."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)


def run_sweep(
    spec: SweepSpec,
    *,
    hooks: Hooks | None = None,
    executor: str = "local",
    jobs: int | None = None,
    collect: bool = True,
    progress: bool = True,
    dry_run: bool = False,
    console: Any = None,
) -> SweepOutcome:
    """Run the grid of ``spec``; finished runs are skipped, failures are recorded and counted.

    Raises :class:`OmarbenchError` (before anything runs) for a bad executor or, with
    ``collect=False``, missing datasets. Local workers are spawned processes: a script that calls this
    must do so under ``if __name__ == "__main__":`` (as for any use of multiprocessing's spawn).
    """
    from omarbench.progress import make_console

    console = console or make_console(stderr=True)
    check_choice("executor", executor, EXECUTORS)
    check_preset(spec.preset)
    check_backend(spec.backend)
    check_positive("--jobs", jobs)
    hooks = hooks or default_hooks()
    t0 = time.perf_counter()
    outcome = SweepOutcome(planned=spec.n_runs)
    from omarbench.data.schema import preset_root

    # datasets of a small-budget preset live in their own sub-root (see omarbench.data.preset_root)
    user_root = spec.root  # the collector applies the preset's sub-root itself
    roots = {str(preset_root(spec.root, spec.preset, t).absolute()) for t in spec.tasks}
    if len(roots) > 1:  # laptop: halfcheetah-2x3 has datasets of its own, maze2d trains on the paper ones
        raise UsageError(f"preset {spec.preset!r} keeps the datasets of {', '.join(spec.tasks)} under different "
                         "roots; run those tasks as separate grids")
    root = roots.pop() if roots else str(preset_root(spec.root, spec.preset).absolute())
    results_dir = Path(spec.results_dir) if spec.results_dir else _default_results_dir(root)
    results_dir = results_dir.expanduser().absolute()  # workers (Ray's too) may start in another directory
    spec = replace(spec, results_dir=str(results_dir), root=root)
    train_name = _callable_name(hooks.train)
    from omarbench.guard import check_output_dir

    check_output_dir(results_dir, "--results")  # before any collection or training

    # 0. every run's config first: a bad override fails here, before any collection or training
    exact = hooks.resolve_config is not None
    configs: dict[tuple[str, str, str], dict[str, Any]] = {
        (j.algo, j.task, j.level): (hooks.resolve_config(j.algo, j.task, j.level, spec.preset, spec.overrides)
                                    if exact else dict(spec.overrides or {}))
        for j in plan_jobs(spec)
    }

    # 1. datasets: find them, collect the missing ones (or refuse)
    needed = spec.cells
    if not needed:
        raise UsageError(f"no dataset of level {', '.join(spec.levels)} for task {', '.join(spec.tasks)} "
                             "(maze2d tasks have the level waypoint; the others random, medium-replay, medium, "
                             "expert)")
    infos = {tl: hooks.dataset_info(tl[0], tl[1], spec.root) for tl in needed}
    missing = [tl for tl in needed if infos[tl] is None]
    if missing and collect:
        check_output_dir(spec.root, "--root")  # where the missing datasets would be collected
    if missing and not collect:
        names = ", ".join(_dataset_id(*tl) for tl in missing)
        raise OmarbenchError(f"missing dataset(s): {names} (run without --no-collect to collect them)")
    broken: dict[tuple[str, str], str] = {}
    if missing and dry_run:
        console.print(f"would collect {len(missing)} missing dataset(s): "
                      f"{', '.join(_dataset_id(*tl) for tl in missing)}", markup=False, highlight=False)
    elif missing:  # independent tasks side by side (omarbench.grid.collecting)
        from omarbench.grid.collecting import collect_missing

        found, collected, broken = collect_missing(
            missing, ensure=hooks.ensure_dataset, info=hooks.dataset_info, root=spec.root, user_root=user_root,
            preset=spec.preset, backend=spec.backend, jobs=jobs, progress=progress, console=console)
        infos.update(found)
        outcome.collected.extend(collected)

    if spec.behaviour and not dry_run:
        for (task, level), info in infos.items():
            if info is not None and info.get("return_mean") is not None:
                _write_behaviour(results_dir, task, level, info)

    # 2. what still has to run
    done = _Done(results_dir)
    todo: list[Job] = []
    failed_now: list[tuple[Job, str]] = []
    for job in plan_jobs(spec):
        info = infos.get((job.task, job.level)) or {}
        if (job.task, job.level) in broken:
            failed_now.append((job, broken[(job.task, job.level)]))
            continue
        config = configs[(job.algo, job.task, job.level)]
        version = hooks.code_version(job.algo, job.task)
        left = []
        for seed in job.seeds:
            key = rs.run_key(job.algo, job.task, job.level, seed, spec.preset, config, info.get("digest"), version)
            ident = (job.algo, job.task, job.level, seed, spec.preset, info.get("digest"), version)
            if not done.has(key, ident, spec.overrides, exact):
                left.append(seed)
        outcome.skipped += len(job.seeds) - len(left)
        if left:
            todo.append(replace(job, seeds=tuple(left)))
    outcome.jobs = todo
    n_todo = sum(len(j.seeds) for j in todo)
    if executor == "ray" and jobs is None:  # Ray places the tasks on its cluster: submit them all
        width, threads = max(1, len(todo)), 1
    else:
        width, threads = plan_parallelism(len(todo), jobs)
    plan = (f"{len(todo)} jobs, up to {width} at a time, {threads} thread(s) each, executor {executor}"
            if todo else "nothing to do")
    console.print(
        f"sweep: {spec.n_runs} runs in the grid, {outcome.skipped} already done, {n_todo} to run ({plan}); "
        f"results in {results_dir}", markup=False, highlight=False,
    )
    if dry_run:
        for job in todo:
            console.print(f"  would run {job.label}", markup=False, highlight=False)
        outcome.wall_time_s = time.perf_counter() - t0
        return outcome
    results_dir.mkdir(parents=True, exist_ok=True)

    recorder = Recorder(results_dir, spec, infos, configs, hooks.code_version, outcome)
    for job, reason in failed_now:
        outcome.failed.extend(recorder.failures(job, job.seeds, reason))

    # 3. run
    payloads = [
        {
            "train": train_name, "algo": j.algo, "task": j.task, "level": j.level, "seeds": list(j.seeds),
            "kwargs": {
                "preset": spec.preset, "root": spec.root, "results_dir": str(results_dir), "device": spec.device,
                "backend": spec.backend, "overrides": dict(spec.overrides) if spec.overrides else None,
                # in a log (not a terminal) each job prints a line every so often; on a terminal, the sweep's
                # own display is the only one
                "progress": bool(progress and not console.is_terminal),
            },
        }
        for j in todo
    ]
    display = recorder.display = Progress(n_todo, outcome.skipped, progress, console)

    def on_start(i: int) -> None:
        display.started(len(todo[i].seeds))

    def on_done(i: int, result: dict[str, Any]) -> None:
        recorder.job_done(todo[i], result)

    restore = _install_sigterm()
    try:
        if payloads:
            EXECUTOR_FUNCS[executor](payloads, width, threads, on_start, on_done)
    finally:
        restore()
        display.close()
    outcome.wall_time_s = time.perf_counter() - t0
    console.print(
        f"sweep finished in {outcome.wall_time_s:.1f} s: {outcome.ok} ok, {len(outcome.failed)} failed, "
        f"{outcome.skipped} skipped (already done)", markup=False, highlight=False,
    )
    return outcome


# ------------------------------------------------------------------- the package's own components


def _default_results_dir(root: str | None) -> Path:
    return default_root(root) / "results"  # root is already the preset's data root


def _real_ensure_dataset(task: str, level: str, **kwargs: Any) -> Any:
    from omarbench.collect.api import ensure_dataset

    return ensure_dataset(task, level, **kwargs)


def _real_resolve_config(algo: str, task: str, level: str, preset: str, overrides: Any) -> dict[str, Any]:
    from omarbench.offline.presets import resolve_config

    return resolve_config(algo, task, level, preset, overrides)


def _real_dataset_info(task: str, level: str, root: str | None) -> dict[str, Any] | None:
    """What the sweep needs to know of a complete dataset on disk, or None if it is missing or incomplete."""
    from omarbench.data import dataset_id, dataset_path
    from omarbench.data.store import open_store
    from omarbench.tasks.spec import parse_task_id

    did = dataset_id(parse_task_id(task), level)
    path = dataset_path(did, root)
    if not path.is_dir():
        return None
    _, info = open_store(path, did)
    if not info.complete:
        return None
    return {
        "id": info.id, "digest": info.digest, "n_transitions": info.n_transitions,
        "reference_returns": info.reference_returns, "return_mean": info.returns.get("mean"), "path": str(path),
    }


def __getattr__(name: str):
    if name == "ALL_ALGOS":  # the registry's algorithms, loaded on first use (see plan.all_algos)
        return all_algos()
    raise AttributeError(name)
