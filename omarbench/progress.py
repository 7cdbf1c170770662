"""Progress for logs: when output is not a terminal, long loops print a plain line every so often.

A live bar drawn for a terminal shows nothing in a log file until it ends; :class:`LogLines` prints
``label: 400/2,000 rounds (20%), return 123.4, 2:31 elapsed, ETA 10:02`` at most every
``$OMARBENCH_PROGRESS_EVERY`` seconds (default 30) and once at the end. The ETA is the average rate
since this process started on the loop (steadier than a recent-window estimate when some steps, such
as evaluations, cost more than others).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

DEFAULT_EVERY_S = 30.0
ENV_EVERY = "OMARBENCH_PROGRESS_EVERY"


_PLAIN = False  # set by plain_lines(): this process prints plain lines even on a terminal


def plain_lines() -> None:
    """Print plain progress lines from now on, even on a terminal (a worker process that shares the
    terminal with others: live bars of several processes would overwrite each other)."""
    global _PLAIN
    _PLAIN = True


def interactive() -> bool:
    """Whether stderr is a terminal (live bars) rather than a log or a pipe (plain lines)."""
    if _PLAIN:
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def every_s() -> float:
    raw = os.environ.get(ENV_EVERY, "")
    try:
        value = float(raw)
    except ValueError:
        return DEFAULT_EVERY_S
    return value if value >= 0 else DEFAULT_EVERY_S


def clock(seconds: float) -> str:
    seconds = int(max(0.0, seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class LogLines:
    """Throttled progress lines: ``update(done, note)``; ``close()`` prints the last state once."""

    def __init__(self, label: str, total: int, unit: str, *, log: Callable[[str], None] | None = None,
                 start: int = 0, interval_s: float | None = None):
        self.label, self.total, self.unit = label, int(total), unit
        self.log = log or _stderr
        self.interval = every_s() if interval_s is None else interval_s
        self.t0 = time.perf_counter()
        self.start = self.done = int(start)
        self.note = ""
        self.last = self.t0
        self.printed_at: int | None = None

    def eta(self) -> float | None:
        ran = self.done - self.start
        if ran <= 0 or self.total <= self.done:
            return None if ran <= 0 else 0.0
        return (time.perf_counter() - self.t0) / ran * (self.total - self.done)

    def line(self) -> str:
        pct = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        note = f", {self.note}" if self.note else ""
        eta = self.eta()
        tail = "" if eta is None else f", ETA {clock(eta)}"
        return (f"{self.label}: {self.done:,}/{self.total:,} {self.unit}{pct}{note}, "
                f"{clock(time.perf_counter() - self.t0)} elapsed{tail}")

    def update(self, done: int, note: str = "") -> None:
        self.done, self.note = int(done), note
        now = time.perf_counter()
        if now - self.last >= self.interval:
            self.last = now
            self.printed_at = self.done
            self.log(self.line())

    def close(self) -> None:
        if self.printed_at != self.done:
            self.printed_at = self.done
            self.log(self.line())


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


PIPE_WIDTH = 200  # tables written to a log or a pipe are laid out this wide; text is never folded


def make_console(stderr: bool = False):
    """A rich Console for command output: on a terminal, its width; elsewhere no folding of text at 80
    columns (paths stay whole) and tables laid out :data:`PIPE_WIDTH` wide."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    return Console(stderr=stderr, soft_wrap=True, width=None if tty else PIPE_WIDTH)
