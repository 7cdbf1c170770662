"""Collecting the datasets a sweep is missing, independent tasks side by side.

The missing datasets are grouped by task: one task's levels come from one behaviour run, so they are
collected one after another by one process, in the order the grid lists them. Different tasks share
nothing (their own behaviour run folders, datasets and locks), so their groups run in parallel worker
processes, at most one per core or ``jobs`` (the sweep's ``--jobs``). Each worker calls the same collector
as a serial sweep does, with the same seeds: the datasets and their digests do not depend on how many ran
at a time. A worker prints plain progress lines (never live bars: several processes share the terminal).

The serial path (one task missing, one core, ``jobs=1``, or a collector that cannot be imported by name,
such as a closure in a test) collects in the sweep's own process, as before.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from omarbench.errors import OmarbenchError
from omarbench.grid.executors import (
    _callable_name,
    _one_line,
    _resolve_callable,
    _run_local,
    _set_threads,
    _watch_parent,
)
from omarbench.grid.plan import _dataset_id, plan_parallelism

Key = tuple[str, str]  # (task, level)


def _importable_name(fn: Callable[..., Any] | str) -> str | None:
    """``"module:function"`` of a collector a spawned process can import, else None."""
    try:
        return _callable_name(fn)
    except ValueError:
        return None


def group_by_task(missing: list[Key]) -> dict[str, list[str]]:
    """Missing levels per task, tasks and levels in the order of ``missing``."""
    groups: dict[str, list[str]] = {}
    for task, level in missing:
        groups.setdefault(task, []).append(level)
    return groups


def collect_task(payload: dict[str, Any]) -> dict[str, Any]:
    """Collect the levels of one task in this process; never raises: ``{"done": [...], "failed": {...}}``."""
    t0 = time.perf_counter()
    task, levels = payload["task"], payload["levels"]
    done: list[str] = []
    failed: dict[str, str] = {}
    try:
        ensure = _resolve_callable(payload["ensure"])
    except Exception as exc:
        return {"done": [], "failed": {lv: _one_line(exc) for lv in levels}, "wall_time_s": 0.0}
    for level in levels:
        try:
            ensure(task, level, **payload["kwargs"])
            done.append(level)
        except Exception as exc:  # the next level may still be collected (as in a serial sweep)
            failed[level] = _one_line(exc)
    return {"done": done, "failed": failed, "wall_time_s": time.perf_counter() - t0}


def _collect_worker(payload: dict[str, Any], conn: Any, parent_pid: int, threads: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the sweep's: it stops its workers
    # a killed sweep's collectors stop too (their half-made stores are cleaned on the next start)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    _set_threads(threads)
    from omarbench.progress import plain_lines

    plain_lines()
    if hasattr(sys.stdout, "reconfigure"):  # the collector's lines reach a log as they are printed
        sys.stdout.reconfigure(line_buffering=True)
    try:
        outcome = collect_task(payload)
    except BaseException as exc:  # noqa: BLE001 (reported to the sweep, which records it)
        outcome = {"done": [], "failed": {lv: _one_line(exc) for lv in payload["levels"]}}
    try:
        conn.send(outcome)
    finally:
        conn.close()


def collect_missing(
    missing: list[Key], *, ensure: Callable[..., Any] | str, info: Callable[..., dict[str, Any] | None],
    root: str, user_root: str | None, preset: str, backend: str, jobs: int | None, progress: bool,
    console: Any,
) -> tuple[dict[Key, dict[str, Any] | None], list[str], dict[Key, str]]:
    """Collect ``missing`` datasets; returns (their infos, ids collected, {(task, level): reason} of failures).

    ``info(task, level, root)`` describes a complete dataset (None if missing); ``ensure(task, level, *,
    preset, root, backend, progress)`` collects one (``root`` is the user's root: the collector adds the
    preset's sub-root itself).
    """
    def say(text: str) -> None:
        console.print(text, markup=False, highlight=False)

    groups = group_by_task(missing)
    name = _importable_name(ensure)
    width, threads = plan_parallelism(len(groups), jobs)
    if name is None or width < 2:
        return _collect_serial(missing, ensure=_resolve(ensure), info=info, root=root, user_root=user_root,
                               preset=preset, backend=backend, progress=progress, say=say)

    infos: dict[Key, dict[str, Any] | None] = {}
    collected: list[str] = []
    broken: dict[Key, str] = {}
    tasks = list(groups)
    say(f"collecting {len(missing)} missing dataset(s) of {len(tasks)} tasks (preset {preset}), "
        f"{width} tasks at a time in worker processes: {', '.join(tasks)}")
    kwargs = {"preset": preset, "root": user_root, "backend": backend, "progress": progress}
    payloads = [{"ensure": name, "task": t, "levels": groups[t], "kwargs": kwargs} for t in tasks]

    def on_start(i: int) -> None:
        say(f"collecting {tasks[i]}: {', '.join(groups[tasks[i]])} ...")

    def on_done(i: int, result: dict[str, Any]) -> None:
        task = tasks[i]
        failed = dict(result.get("failed") or {})
        if "done" not in result:  # the worker died before reporting
            failed = {lv: result.get("reason", "the worker process died") for lv in groups[task]}
        for level in result.get("done", []):
            infos[(task, level)] = info(task, level, root)
            if infos[(task, level)] is None:
                failed[level] = "the collector returned but the dataset is still missing"
            else:
                collected.append(_dataset_id(task, level))
        for level in groups[task]:
            if level in failed:
                infos[(task, level)] = None
                broken[(task, level)] = f"collecting dataset {_dataset_id(task, level)} failed: {failed[level]}"
                say(f"  {broken[(task, level)]}")
        wall = result.get("wall_time_s")
        took = f" in {wall:.0f} s" if wall is not None else ""
        ok = sum(lv not in failed for lv in groups[task])
        say(f"collected {task}{took}: {ok} of {len(groups[task])} dataset(s)")

    _run_local(payloads, width, threads, on_start, on_done, worker=_collect_worker)
    return infos, collected, broken


def _resolve(fn: Callable[..., Any] | str) -> Callable[..., Any]:
    return _resolve_callable(fn) if isinstance(fn, str) else fn


def _collect_serial(missing: list[Key], *, ensure: Callable[..., Any], info: Callable[..., Any], root: str,
                    user_root: str | None, preset: str, backend: str, progress: bool,
                    say: Callable[[str], None]) -> tuple[dict[Key, Any], list[str], dict[Key, str]]:
    infos: dict[Key, dict[str, Any] | None] = {}
    collected: list[str] = []
    broken: dict[Key, str] = {}
    for task, level in missing:
        did = _dataset_id(task, level)
        infos[(task, level)] = info(task, level, root)  # one collection may make several
        if infos[(task, level)] is not None:
            continue
        say(f"collecting missing dataset {did} (preset {preset}) ...")
        try:
            ensure(task, level, preset=preset, root=user_root, backend=backend, progress=progress)
            infos[(task, level)] = info(task, level, root)
            if infos[(task, level)] is None:
                raise OmarbenchError("the collector returned but the dataset is still missing")
            collected.append(did)
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            broken[(task, level)] = f"collecting dataset {did} failed: {_one_line(exc)}"
            say(f"  {broken[(task, level)]}")
    return infos, collected, broken
