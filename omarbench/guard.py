"""Guards shared by every writer: output paths checked before any work, locks between processes, and the
clean-up of what killed writers leave behind.

- :func:`check_output_dir` / :func:`check_output_file`: one-line :class:`UsageError` when an output path
  lies under a regular file or in a place that cannot be written, before anything is created.
- :class:`FileLock`: an advisory ``flock`` on a hidden lock file. The kernel releases it when its process
  dies (even by SIGKILL), so a lock is never stale; the file holds the owner's pid for the message. A
  second writer either waits (with one line saying for whom) or stops with a clear message.
- :func:`temp_name` / :func:`clean_stale_temps`: temporary names that carry the writer's pid, and the
  removal of those whose writer is gone.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from omarbench.errors import OmarbenchError, UsageError

# ``.<name>.<pid>.<12 hex>.tmp`` (files) and ``.<name>.creating-<pid>-<8 hex>`` (dataset stores being made)
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{12}\.tmp$")
_CREATING_RE = re.compile(r"^\.(?P<name>.+)\.creating-(?:(?P<pid>\d+)-)?[0-9a-f]{8}$")


# ------------------------------------------------------------------------------------------- bounds

MAX_SEED = 2**31 - 1  # any seed of a run, a collection or a rollout
MAX_SEEDS = 1_000  # seeds of one command (one batched job holds them all in memory)
MAX_EPISODES = 100_000  # episodes of one rollout
MAX_TRANSITIONS = 20_000_000  # rows of one collected level (20x the paper's; ~10 GB for spread)
MAX_STEPS = 1_000_000_000  # environment steps of one online run


def check_int(what: str, value: object, lo: int, hi: int) -> int:
    """``value`` as an int in ``lo..hi``, else a one-line :class:`UsageError` naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{what} must be an integer in {lo:,}..{hi:,}, got {value!r}")
    if not lo <= value <= hi:
        raise UsageError(f"{what} must be an integer in {lo:,}..{hi:,}, got {value:,}")
    return value


# ------------------------------------------------------------------------------------------- paths


def _first_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_output_dir(path: str | os.PathLike, option: str = "--out") -> Path:
    """``path`` as a directory this process can create or write into, or a one-line :class:`UsageError`.

    Nothing is created: the first existing ancestor must be a writable directory (and ``path`` itself,
    if it exists, a directory).
    """
    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        raise UsageError(f"{option} {str(path)!r} is a file, not a directory")
    base = _first_existing(p.absolute())
    if not base.is_dir():
        raise UsageError(f"{option} {str(path)!r}: {str(base)!r} is a file, not a directory")
    if not os.access(base, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {str(path)!r}: {str(base)!r} is not writable (read-only or no permission)")
    return p


def check_output_file(path: str | os.PathLike, option: str = "--out") -> Path:
    """``path`` as a file this process can write (replacing a file there), or a one-line UsageError."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise UsageError(f"{option} {str(path)!r} is a directory, not a file")
    check_output_dir(p.absolute().parent, option=f"{option} {str(path)!r}: folder")
    return p


# ------------------------------------------------------------------------------------------- pids


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (on this machine)."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


# ------------------------------------------------------------------------------------------- temp names


def temp_name(path: str | os.PathLike) -> Path:
    """A unique hidden temporary name next to ``path``: ``.<name>.<pid>.<12 hex>.tmp``."""
    path = Path(path)
    return path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp"


def creating_name(path: str | os.PathLike) -> Path:
    """A unique hidden name for a directory being built next to ``path``: ``.<name>.creating-<pid>-<hex>``."""
    path = Path(path)
    return path.parent / f".{path.name}.creating-{os.getpid()}-{secrets.token_hex(4)}"


def clean_stale_temps(folder: str | os.PathLike, *, recursive: bool = False) -> list[Path]:
    """Remove the temporary files and half-made stores of writers that are no longer running.

    Matches :func:`temp_name` and :func:`creating_name` names (and the pid-less ``creating`` names of
    older versions); a name whose pid is alive is kept. Returns what was removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    entries = folder.rglob(".*") if recursive else folder.glob(".*")
    for p in list(entries):
        m = _TEMP_RE.match(p.name) or _CREATING_RE.match(p.name)
        if m is None:
            continue
        pid = m.group("pid")
        if pid is not None and pid_alive(int(pid)):
            continue
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(p)
        except FileNotFoundError:
            continue
        except OSError:
            continue
    return removed


# ------------------------------------------------------------------------------------------- locks


class FileLock:
    """An exclusive advisory lock on ``path`` (created if needed), released by the kernel on death.

    ``wait=False``: a held lock raises :class:`OmarbenchError` naming ``what`` and the owner's pid.
    ``wait=True``: calls ``log`` once with who holds it, then polls until it is free (``waited`` says so).
    The file is removed on release. Use as a context manager. Without ``fcntl`` (Windows) the lock is a no-op.
    """

    def __init__(self, path: str | os.PathLike, what: str, *, wait: bool = False,
                 log: Callable[[str], None] | None = None, poll_s: float = 0.5):
        self.path, self.what, self.wait, self.log, self.poll_s = Path(path), what, wait, log, poll_s
        self.fd: int | None = None
        self.waited = False  # True once acquire had to wait for another holder

    def _owner(self) -> str:
        try:
            text = self.path.read_text().strip()
        except OSError:
            return "another process"
        return f"process {text}" if text.isdigit() else "another process"

    def acquire(self) -> FileLock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - no advisory locks on this platform
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        told = False
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if not self.wait:
                    raise OmarbenchError(
                        f"{self.what} is in use by {self._owner()} (lock {str(self.path)!r}); "
                        "wait for it to finish or stop it"
                    ) from None
                if not told and self.log is not None:
                    self.log(f"waiting for {self._owner()}, which is writing {self.what} ...")
                told = self.waited = True
                time.sleep(self.poll_s)
                continue
            except BaseException:
                os.close(fd)
                raise
            try:  # the holder before us may have removed the file: then our lock is on an orphan, retry
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            try:  # remove the file while still holding the lock (waiters notice and reopen)
                self.path.unlink(missing_ok=True)
            except OSError:
                pass
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def tmp_leftovers(folder: str | os.PathLike) -> list[Path]:
    """Hidden temporary names in ``folder`` (any pid): what a test checks is gone after a clean run."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(".*") if _TEMP_RE.match(p.name) or _CREATING_RE.match(p.name))


__all__ = [
    "MAX_EPISODES", "MAX_SEED", "MAX_SEEDS", "MAX_STEPS", "MAX_TRANSITIONS", "check_int",
    "FileLock", "check_output_dir", "check_output_file", "clean_stale_temps", "creating_name", "pid_alive",
    "temp_name", "tmp_leftovers",
]
