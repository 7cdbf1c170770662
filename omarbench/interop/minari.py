"""Single-agent datasets as Minari datasets (Farama Foundation's offline-RL dataset standard).

``omarbench datasets export spread-n1-expert --format minari --out DIR`` writes a Minari dataset under
``DIR`` (Minari's datasets root: load it with ``MINARI_DATASETS_PATH=DIR`` and
``minari.load_dataset("omarbench/spread-n1/expert-v0")``). Minari has no multi-agent layout, so only
tasks with one agent export (``spread-n1`` now); others are refused with a one-line error.

What goes where:

- episodes: Minari's layout, observations ``[T + 1, obs_dim]`` (the last one the final successor),
  actions, rewards, terminations and truncations ``[T]``, from the store's rows and ``episode_starts``;
- ``env_spec``: :class:`omarbench.interop.gym_env.SingleAgentEnv` with the task spec stored in the
  dataset, so ``recover_environment()`` rebuilds the task (omarbench must be installed);
- ``ref_min_score`` / ``ref_max_score``: the dataset's random and expert reference returns, so Minari's
  ``get_normalized_score`` gives our normalised score divided by 100;
- description: the omarbench id, content digest, level and behaviour provenance summary.

Needs the ``minari`` extra (``minari[hdf5]``: Minari with its HDF5 storage backend).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import warnings
from pathlib import Path

import numpy as np

from omarbench.errors import OmarbenchError, UsageError
from omarbench.interop import require

EXTRA = "minari"
DATA_FORMAT = "hdf5"


def minari_id(dataset_id: str) -> str:
    """``spread-n1-expert`` → ``omarbench/spread-n1/expert-v0`` (namespace/env/dataset-version)."""
    from omarbench.data.schema import parse_dataset_id

    task, level = parse_dataset_id(dataset_id)
    return f"omarbench/{task.id.replace(':', '-')}/{level}-v0"


@contextlib.contextmanager
def _datasets_root(path: Path):
    """Minari finds its datasets root in ``MINARI_DATASETS_PATH``; set it for the duration of a call."""
    before = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(path)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = before


def export_minari(
    id_or_path: str | os.PathLike,
    out: str | os.PathLike,
    root: str | os.PathLike | None = None,
    force: bool = False,
) -> Path:
    """Write the dataset as a Minari dataset under the datasets root ``out``; returns its directory."""
    from omarbench.data.store import open_dataset

    _, info = open_dataset(id_or_path, root)  # fail on a bad id before importing minari
    if info.task.n_agents != 1:
        raise UsageError(
            f"Minari holds single-agent datasets only; {info.id} has {info.task.n_agents} agents "
            "(export a spread-n1 dataset, or use --format omar-npy / npz)"
        )
    minari = require("minari", EXTRA, "exporting to Minari")
    require("h5py", EXTRA, "Minari's HDF5 storage")
    from minari.data_collector import EpisodeBuffer

    from omarbench.data.episodes import load_episodes
    from omarbench.interop.gym_env import SingleAgentEnv, env_spec

    data = load_episodes(id_or_path, root)
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise OmarbenchError(f"--out {str(out)!r} is a file, not a directory")
    mid = minari_id(data.id)
    target = out / mid
    if target.exists():
        if not force:
            raise OmarbenchError(f"{str(target)!r} already exists; choose another --out or pass --force")
        shutil.rmtree(target)
    buffers = [
        EpisodeBuffer(
            id=ep.id,
            observations=ep.final_observations()[0],
            actions=ep.actions[0],
            rewards=ep.rewards[:, 0].astype(np.float64),
            terminations=ep.terminations.astype(bool),
            truncations=ep.truncations.astype(bool),
            infos={},
        )
        for ep in data.iterate_episodes()
    ]
    refs = data.reference_returns
    lo, hi = (refs.get(k, {}).get("mean") for k in ("random", "expert"))
    scores = {"ref_min_score": float(lo), "ref_max_score": float(hi)} if lo is not None and hi is not None else {}
    prov = data.metadata.get("provenance") or {}
    env = SingleAgentEnv(data.task)
    description = (
        f"omarbench dataset {data.id} (task {data.task.id}, level {data.level}), {data.total_steps} "
        f"transitions in {data.total_episodes} episodes; content digest {data.metadata.get('digest')}. "
        f"Behaviour: {prov.get('algorithm', 'see the omarbench dataset card')}. Reference scores: the "
        "random and expert returns measured by omarbench when it collected."
    )
    with _datasets_root(out), warnings.catch_warnings():
        # Minari asks for a code permalink and an author e-mail; a dataset made by a user has neither
        warnings.filterwarnings("ignore", message="`(code_permalink|author_email)` is set to None",
                                category=UserWarning)
        spec = env_spec(data.task)
        try:
            minari.create_dataset_from_buffers(
                dataset_id=mid, buffer=buffers, env=spec, eval_env=spec,
                algorithm_name=str(prov.get("algorithm") or "omarbench collect"),
                author="omarbench", action_space=env.action_space, observation_space=env.observation_space,
                description=description, data_format=DATA_FORMAT, requirements=["omarbench"], **scores,
            )
        except BaseException:  # nothing half-written
            shutil.rmtree(target, ignore_errors=True)
            raise
    return target
