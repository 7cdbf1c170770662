"""The dataset format (Zarr v3): ids, writer with resume, loader, verification, cards and export.

    from omarbench.data import DatasetWriter, load_dataset
    w = DatasetWriter.create(path, task, "expert", {"reference_returns": ..., "provenance": ...})
    w.append_episodes(obs, actions, rewards, next_obs, terminals, truncations)  # whole episodes
    digest = w.finalize()
    ds = load_dataset("tag-expert")   # per-agent torch tensors
    eps = load_episodes("tag-expert")  # the same data as episodes (iterate, sample, recover the env)
"""

from omarbench.data.catalog import DatasetEntry, list_datasets
from omarbench.data.episodes import Episode, EpisodeDataset, load_episodes
from omarbench.data.reader import AgentData, OfflineDataset, load_dataset
from omarbench.data.schema import (
    LEVELS,
    SCHEMA_VERSION,
    compute_digest,
    dataset_id,
    dataset_path,
    default_root,
    parse_dataset_id,
    preset_root,
    resolve_dataset,
)
from omarbench.data.stats import normalised_score
from omarbench.data.verify import VerifyResult, verify_dataset
from omarbench.data.writer import DatasetWriter

__all__ = [
    "LEVELS", "SCHEMA_VERSION", "AgentData", "DatasetEntry", "DatasetWriter", "Episode", "EpisodeDataset",
    "OfflineDataset", "VerifyResult", "compute_digest", "dataset_id", "dataset_path", "default_root",
    "list_datasets", "load_dataset", "load_episodes",
    "normalised_score", "parse_dataset_id", "preset_root", "resolve_dataset", "verify_dataset",
]
