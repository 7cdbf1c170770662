"""The evaluation grid: algorithms × tasks × levels × seeds, run by local processes or by Ray.

One *job* is one (algo, task, level) with all its seeds: the trainer batches seeds, so a job is the
unit of work an executor runs. A run (one seed of a job) is identified by its key (config, dataset
digest, code version; see :func:`omarbench.results.run_key`). Runs whose record already says ``ok``
are skipped, so a killed sweep resumes where it stopped. Missing datasets are collected first (or,
with ``collect=False``, reported as an error). A run that fails is recorded with its reason and the
sweep goes on; :attr:`SweepOutcome.exit_code` is 1 when anything failed.

Everything the sweep calls outside itself (the trainer, the collector, the dataset lookup, the
preset resolver) comes in through :class:`Hooks`, so the grid logic can be tested without them.

Public API::

    SweepSpec, Job, Hooks, SweepOutcome
    parse_algos / parse_tasks / parse_levels / parse_seeds / parse_agents   (user text → values)
    plan_jobs(spec) -> list[Job]
    scaling_spec(agents, seeds, ...) -> SweepSpec     the agent-count study (PROTOCOL §6)
    run_sweep(spec, hooks=None, executor="local", jobs=None, collect=True, ...) -> SweepOutcome
"""

from __future__ import annotations

import importlib
import json
import math
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from omarbench import results as rs
from omarbench.errors import OmarbenchError, UsageError, bad_choice

PAPER_ALGOS: tuple[str, ...] = ("MA-ICQ", "MA-TD3+BC", "MA-CQL", "OMAR")
ALL_ALGOS: tuple[str, ...] = PAPER_ALGOS + ("BC",)
LEVELS: tuple[str, ...] = ("random", "medium-replay", "medium", "expert")
PAPER_TASKS: tuple[str, ...] = ("spread", "tag", "world")
PRESETS: tuple[str, ...] = ("quick", "paper")
DEFAULT_SEEDS: dict[str, int] = {"paper": 5, "quick": 2}  # seeds per run when --seeds is not given
BACKENDS: tuple[str, ...] = ("numpy", "mpe2")
EXECUTORS: tuple[str, ...] = ("local", "ray")
SCALING_ALGOS: tuple[str, ...] = ("MA-CQL", "OMAR")
SCALING_LEVEL = "medium-replay"
SCALING_AGENTS: tuple[int, ...] = (1, 2, 3, 4, 5)
BEHAVIOUR_SOURCE = "dataset mean episode return"


# ---------------------------------------------------------------------------------------- parsing


def _items(text: str) -> list[str]:
    return [t.strip() for t in str(text).split(",") if t.strip()]


def parse_algos(text: str) -> tuple[str, ...]:
    """``paper`` (the four paper algorithms), ``all`` (those plus BC) or names, case-insensitive."""
    items = _items(text)
    if not items:
        raise bad_choice("algorithm", text, ALL_ALGOS + ("paper", "all"))
    if len(items) == 1 and items[0].lower() in ("all", "paper"):
        return ALL_ALGOS if items[0].lower() == "all" else PAPER_ALGOS
    from omarbench.algos import canonical_name

    out: list[str] = []
    for item in items:
        try:  # the aliases every command takes (td3bc, cql, icq, ...)
            algo = canonical_name(item)
        except UsageError:
            algo = None
        if algo not in ALL_ALGOS:
            raise bad_choice("algorithm", item, ALL_ALGOS + ("paper", "all"))
        if algo not in out:
            out.append(algo)
    return tuple(out)


def parse_tasks(text: str) -> tuple[str, ...]:
    """Task ids (``spread,tag``, ``spread-n5``, ``tag:mpe2``) → canonical ids; ``all`` = the paper's three."""
    from omarbench.tasks.spec import parse_task_id

    items = _items(text)
    if len(items) == 1 and items[0].lower() == "all":
        return PAPER_TASKS
    if not items:
        raise bad_choice("task", text, ("spread", "spread-nN", "tag", "world", "all"))
    out: list[str] = []
    for item in items:
        tid = parse_task_id(item).id
        if tid not in out:
            out.append(tid)
    return tuple(out)


def parse_levels(text: str) -> tuple[str, ...]:
    """``all`` or a comma list of dataset levels, kept in the canonical order."""
    items = _items(text)
    if len(items) == 1 and items[0].lower() == "all":
        return LEVELS
    if not items:
        raise bad_choice("level", text, LEVELS + ("all",))
    for item in items:
        if item.lower() not in LEVELS:
            raise bad_choice("level", item, LEVELS + ("all",))
    chosen = {i.lower() for i in items}
    return tuple(lv for lv in LEVELS if lv in chosen)


def _int_list(text: str, what: str, example: str, limit: int = 1_000_000) -> list[int]:
    out: list[int] = []
    for item in _items(text):
        lo, sep, hi = item.partition("-")
        try:
            if sep:
                a, b = int(lo), int(hi)
                if a > b:
                    raise ValueError
                if b - a + 1 + len(out) > limit:
                    raise UsageError(f"bad {what} {text!r}: more than {limit:,}")
                out.extend(range(a, b + 1))
            else:
                out.append(int(item))
        except ValueError:
            raise UsageError(f"bad {what} {text!r}; expected {example}") from None
    if not out or min(out) < 0:
        raise UsageError(f"bad {what} {text!r}; expected {example}")
    if len(set(out)) > limit:
        raise UsageError(f"bad {what} {text!r}: more than {limit:,}")
    return sorted(set(out))


def parse_seeds(text: str) -> tuple[int, ...]:
    """``5`` (a count: seeds 0..4), ``0,1,2`` (a list) or ``0-4`` (an inclusive range, may be mixed in a list)."""
    from omarbench.guard import MAX_SEED, MAX_SEEDS

    example = f"a count (5), a list (0,1,2) or a range (0-4) of seeds in 0..{MAX_SEED}, at most {MAX_SEEDS:,}"
    text = str(text).strip()
    if text.isdigit():
        n = int(text)
        if not 1 <= n <= MAX_SEEDS:
            raise UsageError(f"bad seeds {text!r}; expected {example}")
        return tuple(range(n))
    seeds = _int_list(text, "seeds", example, limit=MAX_SEEDS)
    if seeds[-1] > MAX_SEED:
        raise UsageError(f"bad seeds {text!r}; expected {example}")
    return tuple(seeds)


def parse_agents(text: str) -> tuple[int, ...]:
    """Agent counts for the scaling study: ``1-5``, ``1,2,4`` or ``8``."""
    from omarbench.tasks.spec import SPREAD_MAX_AGENTS, SPREAD_MIN_AGENTS

    example = f"a range (1-5) or a list (1,2,4) of agent counts in {SPREAD_MIN_AGENTS}..{SPREAD_MAX_AGENTS}"
    counts = _int_list(text, "agent counts", example)
    if min(counts) < SPREAD_MIN_AGENTS or max(counts) > SPREAD_MAX_AGENTS:
        raise UsageError(f"bad agent counts {text!r}; expected {example}")
    return tuple(counts)


def parse_overrides(items: Sequence[str]) -> dict[str, str]:
    """``["rounds=500", "alpha=1"]`` → ``{"rounds": "500", "alpha": "1"}`` (the config types the values)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UsageError(f"bad --set {item!r}; expected KEY=VALUE, e.g. rounds=500")
        out[key.strip()] = value.strip()
    return out


def check_choice(kind: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise bad_choice(kind, value, choices)
    return value


# ------------------------------------------------------------------------------------------ model


@dataclass(frozen=True)
class SweepSpec:
    """What to run: the grid and the settings passed to every run."""

    algos: tuple[str, ...] = PAPER_ALGOS
    tasks: tuple[str, ...] = PAPER_TASKS
    levels: tuple[str, ...] = LEVELS
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    preset: str = "paper"
    root: str | None = None
    results_dir: str | None = None
    device: str = "cpu"
    backend: str = "numpy"
    overrides: Mapping[str, Any] | None = None
    behaviour: bool = False  # also record each dataset's behaviour score (the scaling study needs it)

    @property
    def n_runs(self) -> int:
        return len(self.algos) * len(self.tasks) * len(self.levels) * len(self.seeds)


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


def format_seeds(seeds: Iterable[int]) -> str:
    """``(0, 1, 2, 4)`` → ``0-2,4``."""
    seeds = sorted(seeds)
    parts, i = [], 0
    while i < len(seeds):
        j = i
        while j + 1 < len(seeds) and seeds[j + 1] == seeds[j] + 1:
            j += 1
        parts.append(str(seeds[i]) if i == j else f"{seeds[i]}-{seeds[j]}")
        i = j + 1
    return ",".join(parts)


def plan_jobs(spec: SweepSpec) -> list[Job]:
    """Every job of the grid, in a fixed order (level, task, algo)."""
    return [
        Job(algo, task, level, tuple(spec.seeds))
        for level in spec.levels
        for task in spec.tasks
        for algo in spec.algos
    ]


def scaling_spec(
    agents: Sequence[int] = SCALING_AGENTS,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    **settings: Any,
) -> SweepSpec:
    """The agent-count study (PROTOCOL §6): spread with n agents, medium-replay data, MA-CQL and OMAR."""
    from omarbench.tasks.spec import parse_task_id

    tasks = tuple(parse_task_id(f"spread-n{n}").id for n in agents)
    return SweepSpec(
        algos=SCALING_ALGOS, tasks=tasks, levels=(SCALING_LEVEL,), seeds=tuple(seeds), behaviour=True,
        **settings,
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
    code_version: Callable[[str], str] = rs.code_version  # algorithm (canonical name) -> version


def default_hooks() -> Hooks:
    """The real trainer, collector and dataset lookup of this package."""
    return Hooks(
        train="omarbench.train:train",
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


# ------------------------------------------------------------------------------------- resources


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


# ------------------------------------------------------------------------------------- the worker


def _callable_name(fn: Callable[..., Any] | str) -> str:
    if isinstance(fn, str):
        return fn
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or "<" in qualname or module == "__main__":
        raise ValueError(f"the trainer must be a module-level function, got {fn!r}")
    return f"{module}:{qualname}"


def _resolve_callable(name: str) -> Callable[..., Any]:
    module, _, qualname = name.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def execute_job(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Run one job in the current process; never raises: returns ``{"ok", "records" | "reason"}``."""
    t0 = time.perf_counter()
    try:
        train = _resolve_callable(payload["train"])
        records = train(
            payload["algo"], payload["task"], payload["level"], list(payload["seeds"]), **payload["kwargs"]
        )
        records = [dict(r) for r in (records or [])]
        return {"ok": True, "records": records, "wall_time_s": time.perf_counter() - t0}
    except BaseException as exc:  # the worker reports everything, KeyboardInterrupt included
        return {
            "ok": False, "reason": _one_line(exc), "traceback": traceback.format_exc(),
            "wall_time_s": time.perf_counter() - t0,
        }


def _watch_parent(parent_pid: int) -> None:
    """Exit when the sweep that started this worker is gone (e.g. killed with SIGKILL)."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            os._exit(1)


def _set_threads(threads: int) -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def _local_worker(payload: dict[str, Any], conn: Any, parent_pid: int, threads: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the sweep's to handle: it stops its workers
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    _set_threads(threads)
    outcome = execute_job(payload)
    try:
        conn.send(outcome)
    finally:
        conn.close()


def _ray_worker(payload: dict[str, Any]) -> dict[str, Any]:
    """Runs on a Ray worker: train into a private directory, hand the records back to the driver."""
    with tempfile.TemporaryDirectory(prefix="omarbench-ray-") as tmp:
        payload = {**payload, "kwargs": {**payload["kwargs"], "results_dir": tmp}}
        return execute_job(payload)


# ------------------------------------------------------------------------------------- executors

OnStart = Callable[[int], None]
OnDone = Callable[[int, dict[str, Any]], None]


def _run_local(
    payloads: list[dict[str, Any]], width: int, threads: int, on_start: OnStart, on_done: OnDone
) -> None:
    """Run payloads in at most ``width`` fresh worker processes (spawned: safe with torch)."""
    import multiprocessing as mp
    from multiprocessing.connection import wait

    ctx = mp.get_context("spawn")
    pending = deque(range(len(payloads)))
    running: dict[int, tuple[Any, Any]] = {}  # index -> (process, receiving end)
    results: dict[int, dict[str, Any]] = {}
    try:
        while pending or running:
            while pending and len(running) < width:
                i = pending.popleft()
                recv, send = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_local_worker, args=(payloads[i], send, os.getpid(), threads),
                                   name=f"omarbench-job-{i}")
                proc.start()
                send.close()
                running[i] = (proc, recv)
                on_start(i)
            waitables = {}
            for i, (proc, recv) in running.items():
                waitables[proc.sentinel] = i
                if i not in results:
                    waitables[recv] = i
            for ready in wait(list(waitables), timeout=1.0):
                i = waitables[ready]
                if i not in running:  # its pipe and its exit were both ready: already handled
                    continue
                proc, recv = running[i]
                if ready is recv:
                    try:
                        results[i] = recv.recv()
                    except (EOFError, OSError):
                        pass
                    continue
                proc.join()
                if i not in results and recv.poll():
                    try:
                        results[i] = recv.recv()
                    except (EOFError, OSError):
                        pass
                recv.close()
                del running[i]
                outcome = results.pop(i, None) or {
                    "ok": False, "reason": f"worker process died with exit code {proc.exitcode}",
                }
                on_done(i, outcome)
    finally:
        for proc, _ in running.values():
            if proc.is_alive():
                proc.terminate()
        for proc, recv in running.values():
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
            recv.close()


def _run_ray(
    payloads: list[dict[str, Any]], width: int, threads: int, on_start: OnStart, on_done: OnDone
) -> None:
    """Run payloads as Ray tasks (one CPU bundle of ``threads`` each); connects to RAY_ADDRESS if set."""
    try:
        import ray
    except ImportError:
        raise OmarbenchError(
            "the ray executor needs Ray: pip install 'omarbench[ray]' (or use --executor local)"
        ) from None
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
    remote = ray.remote(num_cpus=threads, max_retries=0)(_ray_worker)
    pending = deque(range(len(payloads)))
    inflight: dict[Any, int] = {}
    try:
        while pending or inflight:
            while pending and len(inflight) < width:
                i = pending.popleft()
                inflight[remote.remote(payloads[i])] = i
                on_start(i)
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=1.0)
            for ref in ready:
                i = inflight.pop(ref)
                try:
                    outcome = ray.get(ref)
                except Exception as exc:  # the task's process died or Ray failed it
                    outcome = {"ok": False, "reason": f"ray task failed: {_one_line(exc)}"}
                on_done(i, outcome)
    finally:
        for ref in inflight:
            ray.cancel(ref, force=True)


EXECUTOR_FUNCS = {"local": _run_local, "ray": _run_ray}


# ------------------------------------------------------------------------------------ the progress


class _Progress:
    """Runs done / running / failed and an ETA: a live rich display on a terminal, plain lines otherwise."""

    def __init__(self, total: int, skipped: int, enabled: bool, console: Any) -> None:
        self.total, self.skipped, self.enabled, self.console = total, skipped, enabled, console
        self.ok = self.failed = self.running = 0
        self.t0 = time.perf_counter()
        self._progress = None
        if enabled and total and console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]runs"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                TimeElapsedColumn(), TextColumn("ETA {task.fields[eta]}"), console=console, transient=False,
            )
            self._task = self._progress.add_task(self._text(), total=total, eta="?")
            self._progress.start()

    def _text(self) -> str:
        return f"ok {self.ok} · failed {self.failed} · running {self.running} · skipped {self.skipped}"

    def _eta(self) -> str:
        done = self.ok + self.failed
        if not done:
            return "?"
        left = (time.perf_counter() - self.t0) / done * (self.total - done)
        return time.strftime("%H:%M:%S", time.gmtime(left))

    def _refresh(self) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=self.ok + self.failed, description=self._text(),
                                  eta=self._eta())

    def started(self, n_runs: int) -> None:
        self.running += n_runs
        self._refresh()

    def finished(self, label: str, ok: int, failed: list[tuple[str, str]], wall: float) -> None:
        self.running -= ok + len(failed)
        self.ok += ok
        self.failed += len(failed)
        self._refresh()
        if self.enabled:
            status = "ok" if not failed else f"{len(failed)} failed"
            self.console.print(f"  {label}: {status} ({wall:.1f} s) [{self.ok + self.failed}/{self.total}, "
                               f"ETA {self._eta()}]", markup=False, highlight=False)
        for run, reason in failed:  # why a run failed is shown with or without the progress display
            self.console.print(f"    failed {run}: {reason}", markup=False, highlight=False)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


# ---------------------------------------------------------------------------------------- the sweep


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
    hooks = hooks or default_hooks()
    t0 = time.perf_counter()
    outcome = SweepOutcome(planned=spec.n_runs)
    from omarbench.data.schema import preset_root

    # datasets of a small-budget preset live in their own sub-root (see omarbench.data.preset_root)
    user_root = spec.root  # the collector applies the preset's sub-root itself
    root = str(preset_root(spec.root, spec.preset).absolute())
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
    needed = [(task, level) for level in spec.levels for task in spec.tasks]
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
    elif missing:
        for task, level in missing:
            did = _dataset_id(task, level)
            infos[(task, level)] = hooks.dataset_info(task, level, spec.root)  # one collection may make several
            if infos[(task, level)] is not None:
                continue
            console.print(f"collecting missing dataset {did} (preset {spec.preset}) ...", markup=False,
                          highlight=False)
            try:
                hooks.ensure_dataset(task, level, preset=spec.preset, root=user_root, backend=spec.backend,
                                     progress=progress)
                infos[(task, level)] = hooks.dataset_info(task, level, spec.root)
                if infos[(task, level)] is None:
                    raise OmarbenchError("the collector returned but the dataset is still missing")
                outcome.collected.append(did)
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                broken[(task, level)] = f"collecting dataset {did} failed: {_one_line(exc)}"
                console.print(f"  {broken[(task, level)]}", markup=False, highlight=False)

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
        version = hooks.code_version(job.algo)
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

    def record_failures(job: Job, seeds: Iterable[int], reason: str) -> list[tuple[str, str]]:
        info = infos.get((job.task, job.level)) or {}
        out = []
        for seed in seeds:
            rec = rs.failed_record(
                algo=job.algo, task=job.task, level=job.level, seed=seed, preset=spec.preset, reason=reason,
                config=configs.get((job.algo, job.task, job.level)), dataset=_dataset_block(job, info),
                reference_returns=info.get("reference_returns"), code_version_=hooks.code_version(job.algo),
                device=spec.device,
            )
            if not _finished(results_dir / rs.record_filename(rec)):  # another process's finished run stays
                rs.write_record(results_dir, rec)
            out.append((f"{job.algo} {job.task} {job.level} seed {seed}", rec["reason"]))
        return out

    for job, reason in failed_now:
        outcome.failed.extend(record_failures(job, job.seeds, reason))

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
    display = _Progress(n_todo, outcome.skipped, progress, console)

    def on_start(i: int) -> None:
        display.started(len(todo[i].seeds))

    def on_done(i: int, result: dict[str, Any]) -> None:
        job = todo[i]
        ok, failures = 0, []
        if result.get("ok"):
            by_seed = {}
            for rec in result.get("records", []):
                if rec.get("seed") in job.seeds and all(f in rec for f in rs.RECORD_FIELDS):
                    by_seed[int(rec["seed"])] = rec
            for seed in job.seeds:
                rec = by_seed.get(seed)
                if rec is None:
                    failures += record_failures(job, [seed], "the trainer returned no record for this seed")
                    continue
                path = results_dir / rs.record_filename(rec)
                if not path.exists():  # Ray workers (and trainers that only return) leave writing to us
                    rs.write_record(results_dir, rec)
                if rec["status"] == "ok":
                    ok += 1
                else:
                    failures.append((f"{job.algo} {job.task} {job.level} seed {seed}",
                                     rec.get("reason") or "failed"))
        else:
            failures += record_failures(job, job.seeds, result.get("reason") or "unknown error")
        outcome.ok += ok
        outcome.failed.extend(failures)
        display.finished(job.label, ok, failures, float(result.get("wall_time_s") or 0.0))

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


def _finished(path: Path) -> bool:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("status") == "ok"
    except (OSError, ValueError, AttributeError):
        return False


def _dataset_block(job: Job, info: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": info.get("id") or _dataset_id(job.task, job.level),
        "digest": info.get("digest"),
        "n_transitions": info.get("n_transitions"),
    }


def _write_behaviour(results_dir: Path, task: str, level: str, info: Mapping[str, Any]) -> None:
    refs = info.get("reference_returns") or {}
    mean = float(info["return_mean"])
    lo, hi = rs.reference_value(refs, "random"), rs.reference_value(refs, "expert")
    norm = 100.0 * (mean - lo) / (hi - lo) if math.isfinite(lo) and math.isfinite(hi) and hi != lo else math.nan
    rs.write_behaviour_record(results_dir, {
        "task": task, "level": level, "source": BEHAVIOUR_SOURCE, "return_mean": mean,
        "normalised": norm if math.isfinite(norm) else None,
        "dataset": {"id": info.get("id") or _dataset_id(task, level), "digest": info.get("digest"),
                    "n_transitions": info.get("n_transitions")},
        "reference_returns": dict(refs) if refs else None,
    })


# ------------------------------------------------------------------- the package's own components


def default_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root`` if given, else the datasets' default (``$OMARBENCH_DATA`` or its fallback)."""
    if root:
        return Path(root).expanduser()
    from omarbench.data import default_root as data_root

    return data_root()


def _default_results_dir(root: str | None) -> Path:
    return default_root(root) / "results"


def _real_ensure_dataset(task: str, level: str, **kwargs: Any) -> Any:
    try:
        from omarbench.behaviour.collector import ensure_dataset
    except ImportError as exc:
        raise OmarbenchError(f"the dataset collector is not available in this build ({exc})") from None
    return ensure_dataset(task, level, **kwargs)


def _real_resolve_config(algo: str, task: str, level: str, preset: str, overrides: Any) -> dict[str, Any]:
    try:
        from omarbench.presets import resolve_config
    except ImportError as exc:
        raise OmarbenchError(f"the training presets are not available in this build ({exc})") from None

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
