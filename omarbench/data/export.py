"""Exporting a dataset to plain NumPy files, including the layout the OMAR authors' code reads.

``omar-npy`` writes, for every agent index i in task order (fixed agents included, as in the authors'
replay buffer): ``obs_i.npy`` [N, obs_dim], ``acs_i.npy`` [N, act_dim], ``rews_i.npy`` [N],
``next_obs_i.npy`` [N, obs_dim] and ``dones_i.npy`` [N] (terminals as float32; time-limit truncations
are not terminals, as in the authors' data). Their code loads these from
``<dataset_dir>/<env>/<level>/seed_<k>_data/``.

``npz`` writes one uncompressed ``<id>.npz`` with every array under its store path
(``agents/<name>/observations`` ...) and the metadata as a JSON string under ``metadata.json``.

Files are written under temporary names and renamed when all are done: an error leaves nothing behind.
Arrays are streamed one at a time, so memory stays at the largest single array.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from omarbench.data import schema
from omarbench.data.store import StoreInfo, open_dataset, read_into, require_loadable
from omarbench.errors import OmarbenchError, bad_choice
from omarbench.guard import check_output_dir, clean_stale_temps, temp_name

FORMATS: tuple[str, ...] = ("omar-npy", "npz")
OMAR_FIELDS = {"observations": "obs", "actions": "acs", "rewards": "rews", "next_observations": "next_obs"}
MANIFEST = "omarbench_export.json"


def _arrays(group, info: StoreInfo) -> Iterator[tuple[str, np.ndarray]]:
    specs = schema.row_array_specs(info.task)
    for p in schema.canonical_arrays(info.task):
        if p == schema.EPISODE_STARTS:
            out = np.empty(info.n_episodes + 1, dtype=np.int64)
        else:
            row, dtype = specs[p]
            out = np.empty((info.n_transitions, *row), dtype=dtype)
        yield p, read_into(group[p], out, info)


def export_dataset(
    id_or_path: str | os.PathLike,
    fmt: str,
    out: str | os.PathLike,
    root: str | os.PathLike | None = None,
    force: bool = False,
) -> list[Path]:
    """Export a complete dataset to ``out`` (a directory, created if needed); returns the files written."""
    if fmt not in FORMATS:
        raise bad_choice("export format", fmt, (*FORMATS, "minari"))
    check_output_dir(out, "--out")
    group, info = open_dataset(id_or_path, root)
    require_loadable(group, info)
    out_dir = Path(out).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise OmarbenchError(f"--out {str(out_dir)!r} is a file, not a directory")
    names = _omar_names(info) if fmt == "omar-npy" else [schema.store_name(info.id)[: -len(".zarr")] + ".npz"]
    names.append(MANIFEST)
    clash = [n for n in names if (out_dir / n).exists()]
    if clash and not force:
        raise OmarbenchError(
            f"{str(out_dir / clash[0])!r} already exists; choose another --out or pass --force to replace"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(out_dir)
    written: list[tuple[Path, Path]] = []
    try:
        if fmt == "omar-npy":
            _write_omar(group, info, out_dir, written.append)
        else:
            _write_npz(group, info, out_dir / names[0], written.append)
        manifest = {
            "id": info.id, "digest": info.digest, "format": fmt, "source": str(info.path),
            "agents": [{"index": i, "name": a.name, "role": a.role} for i, a in enumerate(info.task.agents)],
            "notes": "dones_i = terminals as float32; truncations (time limits) are not dones"
            if fmt == "omar-npy" else "arrays keyed by their store paths; metadata.json holds the root attributes",
            "n_transitions": info.n_transitions, "n_episodes": info.n_episodes,
        }
        tmp = temp_name(out_dir / MANIFEST)
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")
        written.append((tmp, out_dir / MANIFEST))
        for tmp, final in written:
            os.replace(tmp, final)
    except BaseException:
        for tmp, _ in written:
            tmp.unlink(missing_ok=True)
        raise
    return [final for _, final in written]


def _omar_names(info: StoreInfo) -> list[str]:
    return [f"{short}_{i}.npy" for i in range(info.task.n_agents)
            for short in (*OMAR_FIELDS.values(), "dones")]


def _write_omar(group, info: StoreInfo, out_dir: Path, record: Callable[[tuple[Path, Path]], None]) -> None:
    index = {a.name: i for i, a in enumerate(info.task.agents)}
    terminals = None
    for p, arr in _arrays(group, info):
        parts = p.split("/")
        if p == "terminals":
            terminals = arr
        if parts[0] != "agents":
            continue
        name = f"{OMAR_FIELDS[parts[2]]}_{index[parts[1]]}.npy"
        tmp = temp_name(out_dir / name)
        record((tmp, out_dir / name))
        with open(tmp, "wb") as f:
            np.lib.format.write_array(f, arr, allow_pickle=False)
        del arr
    dones = terminals.astype(np.float32)
    for i in range(info.task.n_agents):
        name = f"dones_{i}.npy"
        tmp = temp_name(out_dir / name)
        record((tmp, out_dir / name))
        with open(tmp, "wb") as f:
            np.lib.format.write_array(f, dones, allow_pickle=False)


def _write_npz(group, info: StoreInfo, final: Path, record: Callable[[tuple[Path, Path]], None]) -> None:
    tmp = temp_name(final)
    record((tmp, final))
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for p, arr in _arrays(group, info):
            with zf.open(f"{p}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, arr, allow_pickle=False)
        meta = np.array(json.dumps(info.attrs))
        with zf.open("metadata.json.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array(f, meta, allow_pickle=False)
