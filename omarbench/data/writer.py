"""Writing a dataset: append whole episodes, survive being killed at any moment, resume, finalize.

Crash safety rests on three rules:

1. Every file is replaced atomically (Zarr's local store writes a temporary file and renames it).
2. Rows are buffered in memory and written in whole chunks; after the chunks (and the arrays' shape
   metadata) are on disk and fsync-ed, the root attribute ``committed`` is advanced to the last whole
   episode they contain. Nothing beyond ``committed`` is trusted.
3. ``finalize`` writes everything, then flips ``complete`` to true in the same atomic write that stores
   the digest and statistics: a store is never seen complete with partial content.

``DatasetWriter.resume`` truncates every array to ``committed`` (dropping whatever a killed writer left
beyond it), re-reads the committed prefix to rebuild the running digest, and continues from there, so a
resumed dataset has the same digest as one written without interruption.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from omarbench import __version__
from omarbench.data import schema
from omarbench.data.checks import USER_DEFAULTS, check_resumable, clean_user_metadata, episode_rows
from omarbench.data.provenance import command_line, now_utc, package_versions
from omarbench.data.stats import episode_returns, return_statistics
from omarbench.errors import OmarbenchError, UsageError
from omarbench.guard import clean_stale_temps, creating_name
from omarbench.io import fsync_path, fsync_tree
from omarbench.tasks.spec import Task


class _Lock:
    """An advisory lock held while a writer owns the store (released by the kernel if the process dies)."""

    def __init__(self, store: Path):
        self.path = store / schema.LOCK_NAME
        self.fd: int | None = None
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no advisory lock
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise OmarbenchError(
                f"dataset {str(store)!r} is being written by another process; wait for it or stop it"
            ) from None
        self.fd = fd

    def release(self, delete: bool = False) -> None:
        if delete:
            self.path.unlink(missing_ok=True)
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class DatasetWriter:
    """Append whole episodes to one dataset store; use :meth:`create` or :meth:`resume`, never the constructor."""

    def __init__(self, path: Path, *, durable: bool, _token: object = None):
        if _token is not _PRIVATE:
            raise TypeError("use DatasetWriter.create(...) or DatasetWriter.resume(...)")
        import zarr
        from zarr.storage import LocalStore

        self.path = path
        self.durable = durable
        self._lock = _Lock(path)
        try:
            self._group = zarr.open_group(LocalStore(path), mode="r+")
            attrs = self._group.attrs.asdict()
            check_resumable(path, attrs)
            self.task = Task.from_dict(attrs["task"])
            self.level: str = attrs["level"]
            self.id = schema.dataset_id(self.task, self.level)
            self._specs = schema.row_array_specs(self.task)
            self._arrays = {
                p: self._group[p].with_config({"write_empty_chunks": True}) for p in self._specs
            }
            self._starts_array = self._group[schema.EPISODE_STARTS].with_config({"write_empty_chunks": True})
            chunk_rows = {a.chunks[0] for a in self._arrays.values()}
            if len(chunk_rows) != 1:
                raise OmarbenchError(f"dataset {str(path)!r} is damaged: its arrays disagree on chunk length")
            self.chunk_rows: int = chunk_rows.pop()
            self._recover(attrs)
        except BaseException:
            self._lock.release()
            raise
        self._finalized = False
        self._broken = False

    # -- construction -------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        task: Task,
        level: str,
        metadata: Mapping[str, Any] | None = None,
        *,
        chunk_rows: int | None = None,
        overwrite: bool = False,
        durable: bool = True,
    ) -> DatasetWriter:
        """Create an empty, incomplete store at ``path`` for ``task`` at ``level``.

        ``metadata`` may hold ``reference_returns`` (``{"random": {"mean", "std", "episodes"}, "expert":
        ...}``), ``provenance`` (free dict: checkpoints and digests, training steps, noise, ...), ``seeds``,
        ``command`` (defaults to this process's command line) and any other JSON-able keys.
        """
        import zarr
        from zarr.storage import LocalStore

        schema.dataset_id(task, level)  # one-line error unless the task has this level
        user = clean_user_metadata(metadata, "dataset metadata")
        path = Path(path).expanduser()
        if path.exists():
            if not overwrite:
                raise OmarbenchError(
                    f"{str(path)!r} already exists: resume it (DatasetWriter.resume) or delete it first"
                )
            if not (path / "zarr.json").exists() and any(path.iterdir()):
                raise OmarbenchError(f"refusing to overwrite {str(path)!r}: it is not a Zarr store")
            shutil.rmtree(path)
        rows = int(chunk_rows) if chunk_rows is not None else schema.default_chunk_rows(task)
        if rows < 1:
            raise UsageError(f"chunk_rows must be positive, got {rows}")
        path.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_temps(path.parent)  # half-made stores of killed writers (their pid is gone)
        tmp = creating_name(path)
        try:
            group = zarr.open_group(LocalStore(tmp), mode="w-")
            agents = group.create_group("agents")
            agents.attrs.update({"order": [a.name for a in task.agents]})
            for i, a in enumerate(task.agents):
                agents.create_group(a.name).attrs.update(
                    {"index": i, "role": a.role, "obs_dim": a.obs_dim, "act_dim": a.act_dim}
                )
            for p, (row_shape, dtype) in schema.row_array_specs(task).items():
                group.create_array(
                    p, shape=(0, *row_shape), chunks=(rows, *row_shape), dtype=dtype,
                    fill_value=False if dtype == np.bool_ else 0.0, **schema.codecs(),
                )
            starts = group.create_array(
                schema.EPISODE_STARTS, shape=(1,), chunks=(schema.EPISODE_STARTS_CHUNK,), dtype="<i8",
                fill_value=0, **schema.codecs(),
            ).with_config({"write_empty_chunks": True})
            starts[:] = np.zeros(1, dtype=np.int64)
            attrs = {
                "format": schema.FORMAT_NAME,
                "schema_version": schema.SCHEMA_VERSION,
                "omarbench_version": __version__,
                "id": schema.dataset_id(task, level),
                "task": task.to_dict(),
                "level": level,
                "agents": [
                    {"name": a.name, "role": a.role, "obs_dim": a.obs_dim, "act_dim": a.act_dim}
                    for a in task.agents
                ],
                "layout": {
                    "per_agent_fields": list(schema.AGENT_FIELDS),
                    "shared_fields": list(schema.SHARED_FIELDS),
                    "episode_starts": schema.EPISODE_STARTS,
                    "chunk_rows": rows,
                    "row_order": "episode-major: the T steps of an episode are consecutive rows",
                },
                "complete": False,
                "committed": {"transitions": 0, "episodes": 0},
                "digest_algorithm": schema.DIGEST_ALGORITHM,
                "created": now_utc(),
                "command": command_line(),
                "versions": package_versions(task.engine),
                **USER_DEFAULTS,
                **user,
            }
            group.attrs.update(attrs)
            if durable:
                fsync_tree(tmp)
            os.rename(tmp, path)
            if durable:
                fsync_path(path.parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return cls(path, durable=durable, _token=_PRIVATE)

    @classmethod
    def resume(cls, path: str | os.PathLike, *, durable: bool = True) -> DatasetWriter:
        """Reopen an incomplete store: drop anything beyond the last committed episode and continue.

        ``n_episodes`` / ``n_transitions`` then say how much is already stored, so the caller regenerates
        from episode ``n_episodes`` on.
        """
        path = Path(path).expanduser()
        if not (path / "zarr.json").is_file():
            raise OmarbenchError(f"cannot resume {str(path)!r}: no dataset store there")
        writer = cls(path, durable=durable, _token=_PRIVATE)
        writer._group.attrs.update({
            "resumed": [*writer._group.attrs.get("resumed", []), {
                "at": now_utc(), "from_transitions": writer._n_rows, "from_episodes": writer._n_episodes,
                "command": command_line(), "versions": package_versions(writer.task.engine),
            }]
        })
        if durable:
            fsync_path(path / "zarr.json")
        return writer

    def _recover(self, attrs: Mapping[str, Any]) -> None:
        """Set the in-memory state from the committed prefix on disk (empty for a fresh store)."""
        committed = attrs["committed"]
        n_rows, n_eps = int(committed["transitions"]), int(committed["episodes"])
        where = f"dataset {str(self.path)!r}"
        for leftover in self.path.rglob("*.partial"):  # temporary files of a killed write
            leftover.unlink(missing_ok=True)
        if self._starts_array.shape[0] < n_eps + 1:
            raise OmarbenchError(f"{where} is damaged: episode_starts is shorter than the committed episodes")
        for p, arr in self._arrays.items():
            if arr.shape[0] < n_rows:
                raise OmarbenchError(f"{where} is damaged: {p} holds {arr.shape[0]} rows, {n_rows} committed")
        try:
            starts = np.asarray(self._starts_array[: n_eps + 1], dtype=np.int64)
            if starts[0] != 0 or starts[-1] != n_rows or np.any(np.diff(starts) <= 0):
                raise OmarbenchError(f"{where} is damaged: episode_starts does not match the committed rows")
            for arr in self._arrays.values():
                if arr.shape[0] != n_rows:
                    arr.resize((n_rows, *arr.shape[1:]))
            if self._starts_array.shape[0] != n_eps + 1:
                self._starts_array.resize((n_eps + 1,))
            for p, arr in self._arrays.items():
                if arr.nchunks_initialized != arr.nchunks:
                    raise OmarbenchError(f"{where} is damaged: {p} is missing chunks of committed rows")
            hashers = {p: hashlib.sha256() for p in self._specs}
            rewards = np.empty((n_rows, self.task.n_agents), dtype=np.float32)
            c = self.chunk_rows
            for p, arr in self._arrays.items():
                for lo in range(0, n_rows, c):
                    block = arr[lo : min(n_rows, lo + c)]
                    hashers[p].update(schema.array_bytes(block))
            for i, a in enumerate(self.task.agents):
                rewards[:, i] = self._arrays[schema.agent_array_path(a.name, "rewards")][:n_rows]
            base = (n_rows // c) * c
            pending = {p: [np.asarray(arr[base:n_rows])] for p, arr in self._arrays.items()}
        except ValueError as exc:  # checksum mismatch or undecodable chunk
            raise OmarbenchError(
                f"{where} is damaged ({exc}); it cannot be resumed: delete it and collect again"
            ) from None
        self._hashers = hashers
        self._pending = pending
        self._base = base
        self._n_rows = n_rows
        self._n_episodes = n_eps
        self._starts = [starts]
        self._returns = [episode_returns(self.task, rewards, starts)]
        self._committed = (n_rows, n_eps)

    # -- state ------------------------------------------------------------------------------------

    @property
    def n_transitions(self) -> int:
        """Transitions appended so far (written or still buffered)."""
        return self._n_rows

    @property
    def n_episodes(self) -> int:
        """Episodes appended so far (written or still buffered)."""
        return self._n_episodes

    @property
    def committed_transitions(self) -> int:
        """Transitions durably on disk: what a resume after a crash would start from."""
        return self._committed[0]

    @property
    def committed_episodes(self) -> int:
        return self._committed[1]

    def _check_open(self) -> None:
        if self._finalized:
            raise OmarbenchError(f"dataset {str(self.path)!r} is already finalized")
        if self._broken:
            raise OmarbenchError(
                f"writing {str(self.path)!r} failed earlier; reopen it with DatasetWriter.resume"
            )

    # -- appending --------------------------------------------------------------------------------

    def append_episodes(
        self,
        observations: Sequence[np.ndarray],
        actions: Sequence[np.ndarray],
        rewards: np.ndarray,
        next_observations: Sequence[np.ndarray],
        terminals: np.ndarray,
        truncations: np.ndarray,
    ) -> None:
        """Append B whole episodes of T steps each (T may change between calls).

        ``observations`` / ``next_observations``: one ``[B, T, obs_dim_i]`` array per agent (all agents,
        fixed ones included, in task order); ``actions``: one ``[B, T, act_dim_i]`` per agent;
        ``rewards``: ``[B, T, n_agents]``; ``terminals`` / ``truncations``: ``[B, T]`` bool. Each episode's
        last step must be terminal or truncated and no earlier step may be.
        """
        self._check_open()
        rows, rewards32, b, t = episode_rows(self.task, observations, actions, rewards, next_observations,
                                               terminals, truncations)
        if b == 0:
            return
        local_starts = np.arange(b + 1, dtype=np.int64) * t
        returns = episode_returns(self.task, rewards32, local_starts)
        for p, block in rows.items():
            self._hashers[p].update(schema.array_bytes(block))
            self._pending[p].append(block)
        self._starts.append(self._n_rows + local_starts[1:])
        self._returns.append(returns)
        self._n_rows += b * t
        self._n_episodes += b
        if self._n_rows - self._base >= self.chunk_rows:
            self._write(partial=False)

    # -- writing ----------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write every buffered episode (including a partial last chunk) and commit them."""
        self._check_open()
        self._write(partial=True)

    def _write(self, partial: bool) -> None:
        """Write buffered rows and advance the commit record.

        ``partial=False`` writes only whole chunks ``[base, new_base)`` and drops them from the buffer;
        ``partial=True`` also writes the incomplete last chunk but keeps it buffered, so the next write
        replaces that chunk whole.
        """
        c = self.chunk_rows
        if partial:
            end = self._n_rows
            if end == self._committed[0]:
                return
        else:
            end = self._base + ((self._n_rows - self._base) // c) * c
            if end == self._base:
                return
        try:
            data = {p: np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
                    for p, blocks in self._pending.items()}
            span = end - self._base
            touched: list[Path] = []
            for p, arr in self._arrays.items():
                if arr.shape[0] != end:
                    arr.resize((end, *arr.shape[1:]))
                if span:
                    arr[self._base : end] = data[p][:span]
                touched += self._chunk_files(arr, self._base, end)
                touched.append(self.path / p / "zarr.json")
            all_starts = np.concatenate(self._starts)
            n_eps = int(np.searchsorted(all_starts, end, side="right") - 1)
            n_rows = int(all_starts[n_eps])
            old_eps = self._committed[1]
            if n_eps != old_eps:
                self._starts_array.resize((n_eps + 1,))
                self._starts_array[old_eps + 1 : n_eps + 1] = all_starts[old_eps + 1 : n_eps + 1]
                touched += self._chunk_files(self._starts_array, old_eps + 1, n_eps + 1)
                touched.append(self.path / schema.EPISODE_STARTS / "zarr.json")
            if self.durable:
                for f in touched:
                    fsync_path(f)
                for d in {f.parent for f in touched}:
                    fsync_path(d)
            if not partial:
                self._pending = {p: [data[p][span:].copy()] for p in data}
                self._base = end
            else:
                self._pending = {p: [data[p]] for p in data}
            self._commit(n_rows, n_eps)
        except BaseException:
            self._broken = True
            raise

    def _chunk_files(self, arr, lo: int, hi: int) -> list[Path]:
        if hi <= lo:
            return []
        c = arr.chunks[0]
        tail = (0,) * (arr.ndim - 1)
        return [self.path / arr.path / arr.metadata.encode_chunk_key((i, *tail))
                for i in range(lo // c, (hi - 1) // c + 1)]

    def _commit(self, n_rows: int, n_eps: int) -> None:
        self._group.attrs.update({"committed": {"transitions": n_rows, "episodes": n_eps}})
        if self.durable:
            fsync_path(self.path / "zarr.json")
            fsync_path(self.path)
        self._committed = (n_rows, n_eps)

    # -- finishing --------------------------------------------------------------------------------

    def finalize(self, metadata_update: Mapping[str, Any] | None = None) -> str:
        """Write everything, store statistics, digest and ``metadata_update``, and mark the store complete.

        Returns the content digest (64 hex digits). The flip to ``complete: true`` is one atomic write.
        """
        self._check_open()
        update = clean_user_metadata(metadata_update, "finalize metadata")
        if self._n_episodes == 0:
            raise OmarbenchError(f"dataset {str(self.path)!r} has no episodes; append some before finalizing")
        self._write(partial=True)
        all_starts = np.concatenate(self._starts)
        hashes = {p: h.hexdigest() for p, h in self._hashers.items()}
        hashes[schema.EPISODE_STARTS] = hashlib.sha256(schema.array_bytes(all_starts)).hexdigest()
        shapes = {p: arr.shape for p, arr in self._arrays.items()}
        shapes[schema.EPISODE_STARTS] = all_starts.shape
        dtypes = {p: np.dtype(dt) for p, (_, dt) in self._specs.items()}
        dtypes[schema.EPISODE_STARTS] = np.dtype("<i8")
        digest = schema.digest_from_array_hashes(self.task, shapes, dtypes, hashes)
        returns = np.concatenate(self._returns)
        stats = {"rule": self.task.return_rule, **return_statistics(returns)}
        self._group.attrs.update({
            **update,
            "n_transitions": self._n_rows,
            "n_episodes": self._n_episodes,
            "returns": stats,
            "array_digests": {p: hashes[p] for p in schema.canonical_arrays(self.task)},
            "digest": digest,
            "finalized": now_utc(),
            "complete": True,
        })
        if self.durable:
            fsync_path(self.path / "zarr.json")
        self._finalized = True
        self._lock.release(delete=True)
        return digest

    def close(self) -> None:
        """Commit what is buffered and release the store (it stays incomplete until finalized)."""
        if not self._finalized and not self._broken:
            self._write(partial=True)
        self._lock.release()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc) -> None:
        if self._finalized or self._broken:
            self._lock.release()
        else:
            self.close()


_PRIVATE = object()
