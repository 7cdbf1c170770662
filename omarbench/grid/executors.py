"""Running jobs: the worker side (one job in a process, never raising) and the two executors, local
spawned processes and Ray tasks. An executor calls ``on_start(i)`` and ``on_done(i, result)`` per job."""

from __future__ import annotations

import importlib
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from omarbench.errors import OmarbenchError


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
    payloads: list[dict[str, Any]], width: int, threads: int, on_start: OnStart, on_done: OnDone,
    worker: Callable[..., None] | None = None,
) -> None:
    """Run payloads in at most ``width`` fresh worker processes (spawned: safe with torch); ``worker``
    (default: one training job) is called as ``worker(payload, conn, parent_pid, threads)``."""
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
                proc = ctx.Process(target=worker or _local_worker, args=(payloads[i], send, os.getpid(), threads),
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
