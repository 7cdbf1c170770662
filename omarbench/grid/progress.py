"""The sweep's progress display: runs done, running, failed and an ETA."""

from __future__ import annotations

import time
from typing import Any


class Progress:
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
