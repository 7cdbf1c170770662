"""Import an OG-MARL vault of the OMAR authors' MPE data into our Zarr format.

OG-MARL (InstaDeep, github.com/instadeepai/og-marl) rehosts the OMAR authors' datasets as flashbax
*vaults*: ``<dir>/omar/mpe/simple_<task>.vlt/<Uid>/`` with ``Uid`` one of Random, Medium-Replay, Medium,
Expert. A vault directory holds ``metadata.json`` (flashbax's ``structure_shape`` / ``structure_dtype``
trees) and a TensorStore OCDBT key-value store (``manifest.ocdbt``, ``d/``) in which every leaf of the
experience tree is a Zarr array named by its path with a trailing dot (``observations.``,
``infos.state.``) shaped ``[batch, time, ...]``, plus ``vault_index``: how many time steps are written.
Plain zarr cannot open OCDBT; TensorStore alone can, so reading needs the ``og-marl`` extra
(``tensorstore``) and neither flashbax nor JAX.

The authors' MPE vaults, as OG-MARL's dataset-card metadata lists them: batch 5 (one row per training
seed of the authors, their ``seed_k_data``), ``observations [5, T, n_agents, d_max]`` with every agent's
observation padded to the largest (tag: predators 16, prey 14 → 16; world 24 / 22 → 24), ``actions
[5, T, n_agents, 2]``, ``rewards``, ``terminals``, ``truncations [5, T, n_agents]`` and
``infos.state [5, T, n_agents · d_max]`` (not imported: it is the padded joint observation).

How a vault becomes a dataset:

- one batch row (``--batch K``, default 0): one of the authors' seeds, as their code trained on;
- agents in task order (spread: agent_0..2; tag, world: the three predators, then the prey), each
  observation cut to the agent's own size; the cut columns must be constant (the padding), else the
  import stops: the vault does not hold this task;
- episodes end where every agent's ``terminals`` or every agent's ``truncations`` flag is set (as
  OG-MARL counts trajectories); rows after the last end (an unfinished episode) are dropped;
- ``terminals`` and ``truncations`` keep the vault's flags;
- ``next_observations``: a vault stores sequences, not transitions, so step t's successor is step t + 1
  of the same episode; the last step of an episode has none in the vault, and gets a copy of its own
  observation. Provenance says so; a learner that bootstraps on a time-limit truncation would read it;
- reference returns: the paper's (PROTOCOL §3), the authors' own normalisation;
- provenance: the vault path, uid, batch row, vault metadata and index, rows dropped, padding found.

The dataset's task is ours (``paper`` flavor), whose fixed prey is omarbench's: evaluating a policy
trained on the authors' tag or world data plays against our prey, not theirs (never published).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from omarbench.errors import OmarbenchError, UsageError, bad_choice
from omarbench.interop import require

EXTRA = "og-marl"
SCENARIOS = {"simple_spread": "spread", "simple_tag": "tag", "simple_world": "world"}
UIDS = {"random": "random", "medium-replay": "medium-replay", "medium": "medium", "expert": "expert",
        "medium_replay": "medium-replay", "mediumreplay": "medium-replay"}
LEAVES = ("observations", "actions", "rewards", "terminals", "truncations")
DEFAULT_SUBDIR = "og-marl"


@dataclass
class VaultInfo:
    path: Path
    scenario: str | None
    uid: str
    metadata: dict[str, Any]
    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, str]
    index: int


def _leaf_names(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """flashbax names a leaf by its dict path, each key followed by a dot: ``infos.state.``."""
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_leaf_names(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}."] = v
    return out


def _spec(path: Path, name: str) -> dict[str, Any]:
    return {"driver": "zarr", "kvstore": {"driver": "ocdbt", "base": f"file://{path.resolve()}", "path": name}}


def find_vault(path: str | os.PathLike, uid: str | None = None) -> Path:
    """The vault directory (holding ``metadata.json``) for ``path``: a uid directory, or a ``.vlt``
    directory with ``uid`` naming one of its datasets (or holding exactly one)."""
    p = Path(path).expanduser()
    if not p.is_dir():
        raise OmarbenchError(f"vault {str(p)!r} does not exist or is not a directory")
    if (p / "metadata.json").is_file():
        if uid is not None and uid != p.name:
            raise UsageError(f"{str(p)!r} is the vault {p.name!r}, not {uid!r}; drop --uid or give the .vlt "
                             "folder")
        return p
    uids = sorted(d.name for d in p.iterdir() if (d / "metadata.json").is_file())
    if not uids:
        raise OmarbenchError(f"{str(p)!r} holds no flashbax vault (no metadata.json in it or its subfolders)")
    if uid is None:
        if len(uids) > 1:
            raise UsageError(f"{str(p)!r} holds several vaults; choose one with --uid: {', '.join(uids)}")
        uid = uids[0]
    if uid not in uids:
        raise bad_choice("vault uid", uid, uids)
    return p / uid


def open_vault(path: str | os.PathLike, uid: str | None = None) -> VaultInfo:
    """Read a vault's metadata and written length (no data yet)."""
    ts = require("tensorstore", EXTRA, "reading an OG-MARL vault")
    vdir = find_vault(path, uid)
    try:
        meta = json.loads((vdir / "metadata.json").read_text())
        shapes = {k: tuple(int(x) for x in v.strip("()").split(",") if x.strip())
                  for k, v in _leaf_names(meta["structure_shape"]).items()}
        dtypes = _leaf_names(meta["structure_dtype"])
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        raise OmarbenchError(f"{str(vdir / 'metadata.json')!r} is not flashbax vault metadata ({exc})") from None
    missing = [leaf for leaf in LEAVES if f"{leaf}." not in shapes]
    if missing:
        raise OmarbenchError(f"vault {str(vdir)!r} has no {', '.join(missing)}: not an OG-MARL dataset "
                             f"(its leaves: {', '.join(k.rstrip('.') for k in shapes)})")
    try:
        index = int(ts.open(_spec(vdir, "vault_index")).result().read().result()[0])
    except Exception as exc:  # tensorstore raises ValueError / RuntimeError subclasses of its own
        raise OmarbenchError(f"cannot read the vault index of {str(vdir)!r}: {str(exc).splitlines()[0]}") from None
    scenario = vdir.parent.name[: -len(".vlt")] if vdir.parent.name.endswith(".vlt") else None
    return VaultInfo(vdir, scenario, vdir.name, meta, shapes, dtypes, index)


def read_leaf(info: VaultInfo, leaf: str, batch: int) -> np.ndarray:
    """``leaf[batch, :vault_index]`` as a numpy array."""
    ts = require("tensorstore", EXTRA, "reading an OG-MARL vault")
    store = ts.open(_spec(info.path, f"{leaf}.")).result()
    return np.asarray(store[batch, : info.index].read().result())


def _task_and_level(info: VaultInfo, task: str | None, level: str | None):
    from omarbench.data.schema import LEVELS
    from omarbench.tasks.spec import parse_task_id

    if task is None:
        if info.scenario not in SCENARIOS:
            raise UsageError(f"cannot tell the task from the vault name {info.scenario!r} (known: "
                             f"{', '.join(SCENARIOS)}); give it with --task")
        task = SCENARIOS[info.scenario]
    if level is None:
        level = UIDS.get(info.uid.lower())
        if level is None:
            raise UsageError(f"cannot tell the level from the vault uid {info.uid!r}; give it with --level "
                             f"({', '.join(LEVELS)})")
    if level not in LEVELS:
        raise bad_choice("level", level, LEVELS)
    return parse_task_id(task), level


def _episode_ends(terminals: np.ndarray, truncations: np.ndarray) -> np.ndarray:
    return (terminals > 0.5).all(axis=-1) | (truncations > 0.5).all(axis=-1)


def import_vault(
    path: str | os.PathLike,
    root: str | os.PathLike | None = None,
    *,
    uid: str | None = None,
    batch: int = 0,
    task: str | None = None,
    level: str | None = None,
    force: bool = False,
) -> tuple[Path, str]:
    """Import one batch row of a vault as the dataset ``<task>-<level>`` under ``root`` (default
    ``<data root>/og-marl``); returns the store's path and its content digest."""
    from omarbench.data import DatasetWriter, paper_refs, schema
    from omarbench.tasks.spec import parse_task_id
    from omarbench.vocab import check_level

    if task is not None:  # what can be checked without the vault, before it is opened
        parse_task_id(task)
    if level is not None:
        check_level(level)
    if batch < 0:
        raise UsageError(f"--batch must be a non-negative integer, got {batch}")
    info = open_vault(path, uid)
    the_task, the_level = _task_and_level(info, task, level)
    b_size, _, n_agents, d_max = info.shapes["observations."]
    if not 0 <= batch < b_size:
        raise UsageError(f"batch {batch} is out of range: the vault holds {b_size} (0..{b_size - 1})")
    if n_agents != the_task.n_agents:
        raise OmarbenchError(f"the vault holds {n_agents} agents, task {the_task.id} has {the_task.n_agents}: "
                             "not this task's data (give --task)")
    if any(a.obs_dim > d_max for a in the_task.agents):
        raise OmarbenchError(f"the vault's observations have {d_max} columns, fewer than {the_task.id}'s "
                             f"{max(a.obs_dim for a in the_task.agents)}: not this task's data")
    if info.index == 0:
        raise OmarbenchError(f"vault {str(info.path)!r} is empty (nothing written)")

    arrays = {leaf: read_leaf(info, leaf, batch) for leaf in LEAVES}
    obs, acts, rew = arrays["observations"], arrays["actions"], arrays["rewards"]
    padding: dict[str, Any] = {}
    for i, a in enumerate(the_task.agents):
        pad = obs[:, i, a.obs_dim:]
        if pad.size:
            first = pad.reshape(-1)[0]
            same = np.array_equal(pad, np.full_like(pad, first), equal_nan=True)
            if not same:
                raise OmarbenchError(f"agent {i} ({a.name}) has data beyond its {a.obs_dim} observation columns "
                                     f"in the vault: not {the_task.id}'s layout")
            padding[a.name] = {"columns": int(pad.shape[1]), "value": str(float(first))}  # JSON has no inf
        if acts.shape[-1] != a.act_dim:
            raise OmarbenchError(f"the vault's actions have {acts.shape[-1]} columns, {a.name} acts in "
                                 f"{a.act_dim}")
    ends = np.flatnonzero(_episode_ends(arrays["terminals"], arrays["truncations"]))
    if len(ends) == 0:
        raise OmarbenchError(f"vault {str(info.path)!r} holds no whole episode (no row where every agent is "
                             "terminal or truncated)")
    n = int(ends[-1]) + 1
    starts = np.concatenate([[0], ends + 1])
    terminals = (arrays["terminals"][:n] > 0.5).all(axis=-1)
    truncations = (arrays["truncations"][:n] > 0.5).all(axis=-1)
    last = np.zeros(n, bool)
    last[ends] = True
    terminals &= last  # an earlier row flagged for some agents only does not end the episode
    truncations &= last

    out_root = Path(root).expanduser() if root is not None else schema.default_root() / DEFAULT_SUBDIR
    store = out_root / schema.store_name(schema.dataset_id(the_task, the_level))
    refs = paper_refs.paper_references(the_task) or {}
    provenance = {
        "source": "OG-MARL vault (flashbax) of the OMAR authors' data",
        "vault": str(info.path.resolve()), "uid": info.uid, "scenario": info.scenario,
        "batch": int(batch), "batches": int(b_size), "vault_index": int(info.index),
        "vault_metadata": info.metadata, "rows_dropped_unfinished_episode": int(info.index - n),
        "observation_padding": padding,
        "episode_ends": "rows where every agent's terminal flag, or every agent's truncation flag, is set",
        "next_observations": "step t+1's observation of the same episode; an episode's last step, whose successor "
                             "a vault does not store, holds a copy of its own observation",
        "reader": f"tensorstore {_version('tensorstore')}",
        "fixed_policy_note": "the task's fixed agents follow omarbench's prey in evaluation, not the authors'",
    }
    if store.exists() and not force:
        raise OmarbenchError(f"{str(store)!r} already exists; choose another --root or pass --force to replace it")
    metadata = {"reference_returns": {k: {**v, "source": "paper"} for k, v in refs.items()},
                "provenance": provenance}
    writer = DatasetWriter.create(store, the_task, the_level, metadata, overwrite=force)
    try:
        lengths = np.diff(starts)
        k = 0
        while k < len(lengths):  # runs of equal-length episodes, in order
            j = k
            while j < len(lengths) and lengths[j] == lengths[k]:
                j += 1
            lo, hi, t = int(starts[k]), int(starts[j]), int(lengths[k])
            shape = (j - k, t)
            o = [obs[lo:hi, i, : a.obs_dim].reshape(*shape, a.obs_dim) for i, a in enumerate(the_task.agents)]
            nxt = []
            for oi in o:
                ni = np.empty_like(oi)
                ni[:, :-1], ni[:, -1] = oi[:, 1:], oi[:, -1]
                nxt.append(ni)
            ac = [acts[lo:hi, i].reshape(*shape, -1) for i in range(the_task.n_agents)]
            writer.append_episodes(o, ac, rew[lo:hi].reshape(*shape, -1), nxt, terminals[lo:hi].reshape(shape),
                                   truncations[lo:hi].reshape(shape))
            k = j
        digest = writer.finalize()
    except BaseException:  # nothing half-written: the store was made by this import
        writer.close()
        shutil.rmtree(store, ignore_errors=True)
        raise
    return store, digest


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"
