"""The dataset format: ids, where stores live on disk, the array layout, codecs and the content digest.

One Zarr v3 store per (task, level)::

    <root>/<id with ':' as '+'>.zarr/
        zarr.json                       root attributes: all metadata (see README "Dataset format")
        agents/<name>/observations      float32 [N, obs_dim]   one group per agent, in task order
        agents/<name>/actions           float32 [N, act_dim]
        agents/<name>/rewards           float32 [N]
        agents/<name>/next_observations float32 [N, obs_dim]
        terminals                       bool    [N]
        truncations                     bool    [N]
        episode_starts                  int64   [n_episodes + 1]  episode k is rows [s[k], s[k+1])

Arrays are chunked along N and encoded ``bytes(little) -> zstd -> crc32c``: a damaged chunk fails its
checksum when read. The content digest is defined by :func:`digest_manifest` so that anyone can recompute
it with numpy and hashlib alone.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from omarbench.errors import OmarbenchError, UsageError
from omarbench.paths import DATA_ENV_VAR, default_root, preset_root  # noqa: F401  (part of the data API)
from omarbench.tasks.spec import Task, parse_task_id
from omarbench.vocab import ALL_LEVELS, LEVELS, MAZE2D_LEVELS

SCHEMA_VERSION = 1
FORMAT_NAME = "omarbench-dataset"
DIGEST_ALGORITHM = "omarbench-manifest-sha256-v1"

AGENT_FIELDS: tuple[str, ...] = ("observations", "actions", "rewards", "next_observations")
SHARED_FIELDS: tuple[str, ...] = ("terminals", "truncations")
EPISODE_STARTS = "episode_starts"

STORE_SUFFIX = ".zarr"
LOCK_NAME = ".omarbench-writer.lock"  # held by a writer while it writes a store

# Chunking: rows per chunk is a power of two chosen so the widest per-row array's chunk is ~4 MiB.
TARGET_CHUNK_BYTES = 4 << 20
MIN_CHUNK_ROWS = 4096
MAX_CHUNK_ROWS = 65536
EPISODE_STARTS_CHUNK = 65536
ZSTD_LEVEL = 1


# ---- ids and paths ----------------------------------------------------------------------------------

def task_levels(task: Task) -> tuple[str, ...]:
    """The dataset levels a task has: the four MPE levels, or ``waypoint`` for maze2d."""
    from omarbench.tasks.maze2d import is_maze2d

    return MAZE2D_LEVELS if is_maze2d(task) else LEVELS


def dataset_id(task: Task, level: str) -> str:
    """``spread-medium``, ``spread-n5-medium-replay``, ``tag:mpe2-expert``, ``maze2d-umaze-waypoint``."""
    valid = task_levels(task)
    if level not in valid:
        raise UsageError(f"unknown level {level!r} for task {task.id}; valid levels: {', '.join(valid)}")
    return f"{task.id}-{level}"


def parse_dataset_id(text: str) -> tuple[Task, str]:
    """Split a dataset id into its task and level (``'+'`` is accepted for ``':'``, as on disk)."""
    raw = text.strip()
    norm = raw.lower().replace("+", ":")
    if norm.endswith(STORE_SUFFIX):
        norm = norm[: -len(STORE_SUFFIX)]
    if norm.endswith("_replay"):  # levels read as every command reads them: medium_replay too
        norm = norm[: -len("_replay")] + "-replay"
    for level in sorted(ALL_LEVELS, key=len, reverse=True):
        suffix = f"-{level}"
        if norm.endswith(suffix) and len(norm) > len(suffix):
            task_part = norm[: -len(suffix)]
            try:
                task = parse_task_id(task_part)
                dataset_id(task, level)
            except UsageError as exc:
                raise UsageError(f"bad dataset id {raw!r}: {exc}") from None
            return task, level
    raise UsageError(
        f"bad dataset id {raw!r}: it must be TASK-LEVEL (e.g. tag-expert, spread-n5-medium-replay, "
        f"tag:mpe2-random, maze2d-umaze-waypoint); valid levels: {', '.join(ALL_LEVELS)}"
    )


def store_name(ds_id: str) -> str:
    """File-system name of a dataset's store: ``tag:mpe2-expert`` -> ``tag+mpe2-expert.zarr``."""
    return ds_id.replace(":", "+") + STORE_SUFFIX


def dataset_path(ds_id: str, root: str | os.PathLike | None = None) -> Path:
    task, level = parse_dataset_id(ds_id)
    base = Path(root).expanduser() if root is not None else default_root()
    return base / store_name(dataset_id(task, level))


def looks_like_path(text: str) -> bool:
    return os.sep in text or "/" in text or text.endswith(STORE_SUFFIX) or text.startswith(".")


def resolve_dataset(id_or_path: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """The store directory for a dataset id (looked up under ``root``) or an explicit path.

    Raises a one-line :class:`OmarbenchError` when nothing is there, saying what to do.
    """
    if isinstance(id_or_path, os.PathLike) or looks_like_path(str(id_or_path)):
        path = Path(id_or_path).expanduser()
        if not path.exists():
            raise OmarbenchError(f"no dataset at {str(path)!r}: the path does not exist")
        if not path.is_dir():
            raise OmarbenchError(f"{str(path)!r} is not a dataset: a dataset is a '.zarr' directory")
        return path
    text = str(id_or_path)
    path = dataset_path(text, root)  # raises UsageError on a malformed id
    if not path.is_dir():
        raise OmarbenchError(_not_found(text, path))
    return path


SUBROOT_PRESETS: tuple[str, ...] = ("quick",)  # presets whose datasets live under <root>/<preset>


def _not_found(text: str, path: Path) -> str:
    """Where the dataset is not, where it is if under another preset's root, and the command that makes it,
    with the user's own root and preset."""
    import shlex

    where = path.parent
    preset = where.name if where.name in SUBROOT_PRESETS else "paper"
    base = where.parent if preset != "paper" else where
    for other in ("paper", *SUBROOT_PRESETS):
        there = base if other == "paper" else base / other
        if other != preset and (there / path.name).is_dir():
            return (f"dataset {text!r} not found under {str(where)!r}, but it is under {str(there)!r} "
                    f"(preset {other}): add --preset {other}")
    task, level = parse_dataset_id(text)
    cmd = f"omarbench collect {task.id} --level {level}"
    if preset != "paper":
        cmd += f" --preset {preset}"
    if base.absolute() != default_root().absolute():
        cmd += f" --root {shlex.quote(str(base))}"
    return (f"dataset {text!r} not found under {str(where)!r}: collect it first ({cmd}), or point --root / "
            f"${DATA_ENV_VAR} at the directory that holds it (see 'omarbench datasets list')")


# ---- layout ----------------------------------------------------------------------------------------

def agent_array_path(agent_name: str, field: str) -> str:
    return f"agents/{agent_name}/{field}"


def canonical_arrays(task: Task) -> list[str]:
    """Array paths in digest order: agents in task order, fields in AGENT_FIELDS order, then shared."""
    paths = [agent_array_path(a.name, f) for a in task.agents for f in AGENT_FIELDS]
    return paths + list(SHARED_FIELDS) + [EPISODE_STARTS]


def row_array_specs(task: Task) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Every per-transition array: path -> (shape of one row, dtype)."""
    f32, b = np.dtype("<f4"), np.dtype("bool")
    specs: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    for a in task.agents:
        specs[agent_array_path(a.name, "observations")] = ((a.obs_dim,), f32)
        specs[agent_array_path(a.name, "actions")] = ((a.act_dim,), f32)
        specs[agent_array_path(a.name, "rewards")] = ((), f32)
        specs[agent_array_path(a.name, "next_observations")] = ((a.obs_dim,), f32)
    specs["terminals"] = ((), b)
    specs["truncations"] = ((), b)
    return specs


def default_chunk_rows(task: Task) -> int:
    widest = max(max(a.obs_dim, a.act_dim) for a in task.agents) * 4
    rows = 1 << int(np.floor(np.log2(max(1, TARGET_CHUNK_BYTES // widest))))
    return int(min(MAX_CHUNK_ROWS, max(MIN_CHUNK_ROWS, rows)))


def codecs() -> dict:
    """Keyword arguments for ``zarr.create_array``: little-endian bytes, zstd, then a crc32c checksum."""
    from zarr.codecs import BytesCodec, Crc32cCodec, ZstdCodec

    return {
        "serializer": BytesCodec(endian="little"),
        "compressors": (ZstdCodec(level=ZSTD_LEVEL), Crc32cCodec()),
        "filters": (),
    }


# ---- digest ------------------------------------------------------------------------------------------

def dtype_str(dtype: np.dtype) -> str:
    return np.dtype(dtype).newbyteorder("<").str if np.dtype(dtype).itemsize > 1 else np.dtype(dtype).str


def shape_str(shape: Iterable[int]) -> str:
    return "x".join(str(int(s)) for s in shape) or "scalar"


def array_bytes(arr: np.ndarray) -> memoryview:
    """Raw little-endian bytes of an array (row-major), as hashed by the digest."""
    a = np.ascontiguousarray(arr)
    if a.dtype.itemsize > 1 and a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    if a.dtype == np.bool_:
        a = a.view(np.uint8)
    return memoryview(a).cast("B")


def digest_manifest(entries: Iterable[tuple[str, str, str, str]]) -> str:
    """The text that is hashed: a header line, then ``path dtype shape sha256`` per array in canonical order.

    ``sha256`` is the SHA-256 of the array's raw little-endian row-major bytes (bools as one byte 0/1).
    """
    lines = [DIGEST_ALGORITHM] + [" ".join(e) for e in entries]
    return "\n".join(lines) + "\n"


def digest_from_array_hashes(
    task: Task, shapes: Mapping[str, tuple[int, ...]], dtypes: Mapping[str, np.dtype], hashes: Mapping[str, str]
) -> str:
    entries = [(p, dtype_str(dtypes[p]), shape_str(shapes[p]), hashes[p]) for p in canonical_arrays(task)]
    return hashlib.sha256(digest_manifest(entries).encode()).hexdigest()


def compute_digest(task: Task, arrays: Mapping[str, np.ndarray]) -> str:
    """Digest of in-memory arrays keyed by path (a reference implementation, used by tests and verify)."""
    hashes = {p: hashlib.sha256(array_bytes(arrays[p])).hexdigest() for p in canonical_arrays(task)}
    return digest_from_array_hashes(
        task, {p: arrays[p].shape for p in hashes}, {p: arrays[p].dtype for p in hashes}, hashes
    )
