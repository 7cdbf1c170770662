"""Dataset ids, the on-disk layout, and the write -> load round trip (heterogeneous per-agent dims)."""

import hashlib
import json

import numpy as np
import pytest

from omarbench.data import (
    LEVELS,
    DatasetWriter,
    compute_digest,
    dataset_id,
    dataset_path,
    load_dataset,
    parse_dataset_id,
)
from omarbench.data.synthetic import synthetic_episodes
from omarbench.errors import OmarbenchError, UsageError
from omarbench.tasks.spec import parse_task_id

TAG = parse_task_id("tag")
REFS = {"random": {"mean": -4.0, "std": 2.0, "episodes": 100},
        "expert": {"mean": 180.0, "std": 9.0, "episodes": 100}}


@pytest.mark.parametrize("text,task_id,level", [
    ("spread-medium", "spread", "medium"),
    ("spread-n5-medium-replay", "spread-n5", "medium-replay"),
    ("tag:mpe2-expert", "tag:mpe2", "expert"),
    ("tag+mpe2-expert", "tag:mpe2", "expert"),
    ("world-random", "world", "random"),
    ("spread-n3-medium", "spread", "medium"),
])
def test_dataset_ids_parse_and_round_trip(text, task_id, level):
    task, lvl = parse_dataset_id(text)
    assert (task.id, lvl) == (task_id, level)
    assert parse_dataset_id(dataset_id(task, lvl)) == (task, lvl)


@pytest.mark.parametrize("text,fragment", [
    ("tag", "valid levels: random, medium-replay, medium, expert"),
    ("tag-good", "valid levels"),
    ("bogus-expert", "unknown task 'bogus'"),
    ("spread-n99-expert", "out of range"),
    ("tag:gym-expert", "unknown flavor 'gym'"),
])
def test_bad_dataset_ids_are_one_line_usage_errors(text, fragment):
    with pytest.raises(UsageError) as info:
        parse_dataset_id(text)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_store_path_uses_plus_for_colon_and_honours_env(tmp_path, monkeypatch):
    monkeypatch.setenv("OMARBENCH_DATA", str(tmp_path / "env-root"))
    assert dataset_path("tag:mpe2-expert") == tmp_path / "env-root" / "tag+mpe2-expert.zarr"
    assert dataset_path("spread-medium", root=tmp_path) == tmp_path / "spread-medium.zarr"
    monkeypatch.delenv("OMARBENCH_DATA")
    assert str(dataset_path("tag-random")).endswith(".local/share/omarbench/datasets/tag-random.zarr")


def write_tag(path, episodes=(7, 5, 9), t_values=(25, 25, 10), chunk_rows=64, seed=0, **meta):
    """Write the given batches (sizes and episode lengths) and return the writer's digest and inputs."""
    w = DatasetWriter.create(path, TAG, "expert", {"reference_returns": REFS, "seeds": [seed], **meta},
                             chunk_rows=chunk_rows, durable=False)
    batches, start = [], 0
    for b, t in zip(episodes, t_values):
        batch = synthetic_episodes(TAG, start, b, seed=seed, episode_length=t)
        w.append_episodes(*batch)
        batches.append(batch)
        start += b
    return w.finalize({"provenance": {"behaviour": "synthetic"}}), batches


def expected_arrays(batches):
    """What the store must hold, built independently from the appended batches."""
    out = {}
    for i, a in enumerate(TAG.agents):
        for field, k in (("observations", 0), ("actions", 1), ("next_observations", 3)):
            out[f"agents/{a.name}/{field}"] = np.concatenate(
                [b[k][i].reshape(-1, b[k][i].shape[-1]) for b in batches]).astype(np.float32)
        out[f"agents/{a.name}/rewards"] = np.concatenate([b[2][..., i].reshape(-1) for b in batches]).astype(
            np.float32)
    out["terminals"] = np.concatenate([b[4].reshape(-1) for b in batches])
    out["truncations"] = np.concatenate([b[5].reshape(-1) for b in batches])
    lengths = np.concatenate([np.full(b[4].shape[0], b[4].shape[1]) for b in batches])
    out["episode_starts"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return out


def test_round_trip_heterogeneous_dims(tmp_path):
    path = tmp_path / "tag-expert.zarr"
    digest, batches = write_tag(path)
    want = expected_arrays(batches)
    ds = load_dataset(path)
    assert ds.id == "tag-expert" and ds.level == "expert" and ds.task == TAG
    assert ds.n_episodes == 21 and ds.n_transitions == 7 * 25 + 5 * 25 + 9 * 10
    assert [a.obs_dim for a in ds.agents] == [16, 16, 16, 14]
    assert [a.name for a in ds.agents] == ["predator_0", "predator_1", "predator_2", "prey_0"]
    assert ds.learner_indices == (0, 1, 2) and ds.agents[3].role == "fixed"
    for a in ds.agents:
        for field in ("observations", "actions", "rewards", "next_observations"):
            t = a[field]
            assert str(t.dtype) == "torch.float32"
            np.testing.assert_array_equal(t.numpy(), want[f"agents/{a.name}/{field}"])
    np.testing.assert_array_equal(ds.terminals.numpy(), want["terminals"])
    np.testing.assert_array_equal(ds.truncations.numpy(), want["truncations"])
    np.testing.assert_array_equal(ds.episode_starts.numpy(), want["episode_starts"])
    # the digest is the documented function of the arrays, and the metadata is complete
    assert digest == ds.digest == compute_digest(TAG, want)
    assert ds.reference_returns == REFS
    m = ds.metadata
    assert m["complete"] is True and m["schema_version"] == 1 and m["task"] == TAG.to_dict()
    assert m["provenance"] == {"behaviour": "synthetic"} and m["seeds"] == [0]
    assert {"numpy", "torch", "zarr", "mpe2", "pettingzoo", "python"} <= set(m["versions"])
    rewards = np.stack([want[f"agents/{a.name}/rewards"] for a in TAG.agents], axis=1).astype(np.float64)
    returns = [rewards[s:e, 0].sum() for s, e in zip(want["episode_starts"][:-1], want["episode_starts"][1:])]
    assert m["returns"]["mean"] == pytest.approx(np.mean(returns), rel=1e-12)
    assert m["returns"]["episodes"] == 21
    assert ds.normalised_score(180.0) == pytest.approx(100.0) and ds.normalised_score(-4.0) == pytest.approx(0.0)


def test_plain_zarr_reads_the_store_without_omarbench(tmp_path):
    import zarr

    path = tmp_path / "tag-expert.zarr"
    digest, batches = write_tag(path)
    want = expected_arrays(batches)
    g = zarr.open_group(str(path), mode="r")
    attrs = dict(g.attrs)
    assert attrs["id"] == "tag-expert" and attrs["digest"] == digest
    assert [a["obs_dim"] for a in attrs["agents"]] == [16, 16, 16, 14]
    assert g["agents/prey_0"].attrs["role"] == "fixed"
    np.testing.assert_array_equal(g["agents/prey_0/observations"][:], want["agents/prey_0/observations"])
    np.testing.assert_array_equal(g["episode_starts"][:], want["episode_starts"])
    codecs = json.loads((path / "agents/prey_0/observations/zarr.json").read_text())["codecs"]
    assert [c["name"] for c in codecs] == ["bytes", "zstd", "crc32c"]
    # the digest can be recomputed from the documented manifest with hashlib alone
    lines = [attrs["digest_algorithm"]]
    for p in [f"agents/{a['name']}/{f}" for a in attrs["agents"] for f in attrs["layout"]["per_agent_fields"]] + [
            "terminals", "truncations", "episode_starts"]:
        arr = g[p][:]
        raw = arr.view(np.uint8) if arr.dtype == bool else arr.astype(arr.dtype.newbyteorder("<"))
        shape = "x".join(map(str, arr.shape))
        lines.append(f"{p} {arr.dtype.newbyteorder('<').str if arr.dtype != bool else '|b1'} {shape} "
                     f"{hashlib.sha256(raw.tobytes()).hexdigest()}")
    assert hashlib.sha256(("\n".join(lines) + "\n").encode()).hexdigest() == digest


def test_digest_does_not_depend_on_batching_or_chunking(tmp_path):
    d1, _ = write_tag(tmp_path / "a.zarr", episodes=(21,), t_values=(25,), chunk_rows=64)
    d2, _ = write_tag(tmp_path / "b.zarr", episodes=(1, 13, 7), t_values=(25, 25, 25), chunk_rows=4096)
    d3, _ = write_tag(tmp_path / "c.zarr", episodes=(21,), t_values=(25,), seed=1)
    assert d1 == d2 != d3


def test_flush_then_more_appends_rewrites_partial_chunk_correctly(tmp_path):
    path = tmp_path / "tag-medium.zarr"
    w = DatasetWriter.create(path, TAG, "medium", chunk_rows=100, durable=False)
    batches = []
    for start, count in ((0, 3), (3, 2), (5, 6)):
        batch = synthetic_episodes(TAG, start, count)
        w.append_episodes(*batch)
        batches.append(batch)
        w.flush()
        assert w.committed_episodes == w.n_episodes == start + count
    w.finalize()
    ds = load_dataset(path)
    np.testing.assert_array_equal(ds.agents[1].observations.numpy(),
                                  expected_arrays(batches)["agents/predator_1/observations"])


@pytest.mark.parametrize("mutate,fragment", [
    (lambda a: a[0].__setitem__(0, a[0][0][:, :, :15]), "observations[0] (predator_0) must be shaped"),
    (lambda a: a.__setitem__(1, a[1][:3]), "actions must be a list of 4"),
    (lambda a: a.__setitem__(2, a[2][..., :3]), "rewards must be shaped"),
    (lambda a: a[5].__setitem__((0, -1), False), "does not end"),
    (lambda a: a[5].__setitem__((1, 3), True), "ends before its last step"),
    (lambda a: a.__setitem__(4, a[4].astype(int)), "terminals must be a bool array"),
    (lambda a: a[2].__setitem__((0, 0, 0), np.nan), "non-finite"),
])
def test_append_rejects_malformed_batches_without_writing(tmp_path, mutate, fragment):
    w = DatasetWriter.create(tmp_path / "x.zarr", TAG, "random", durable=False)
    args = list(synthetic_episodes(TAG, 0, 4))
    args[0], args[1], args[3] = list(args[0]), list(args[1]), list(args[3])
    mutate(args)
    with pytest.raises(ValueError) as info:
        w.append_episodes(*args)
    assert fragment in str(info.value)
    assert w.n_episodes == 0
    w.append_episodes(*synthetic_episodes(TAG, 0, 2))
    assert w.n_episodes == 2


def test_create_refuses_existing_store_and_bad_metadata(tmp_path):
    path = tmp_path / "tag-random.zarr"
    DatasetWriter.create(path, TAG, "random", durable=False).close()
    with pytest.raises(OmarbenchError, match="already exists"):
        DatasetWriter.create(path, TAG, "random", durable=False)
    with pytest.raises(UsageError, match="unknown level 'easy'"):
        DatasetWriter.create(tmp_path / "y.zarr", TAG, "easy")
    with pytest.raises(UsageError, match="written by omarbench itself"):
        DatasetWriter.create(tmp_path / "z.zarr", TAG, "random", {"digest": "x"})
    with pytest.raises(UsageError, match="cannot store a object"):
        DatasetWriter.create(tmp_path / "z.zarr", TAG, "random", {"provenance": {"x": object()}})
    assert not (tmp_path / "y.zarr").exists() and not (tmp_path / "z.zarr").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tag-random.zarr"]  # no temporary leftovers


def test_second_writer_on_same_store_is_refused(tmp_path):
    path = tmp_path / "tag-random.zarr"
    w = DatasetWriter.create(path, TAG, "random", durable=False)
    with pytest.raises(OmarbenchError, match="being written by another process"):
        DatasetWriter.resume(path)
    w.close()
    DatasetWriter.resume(path).close()


def test_levels_constant():
    assert LEVELS == ("random", "medium-replay", "medium", "expert")


def test_device_errors_are_one_line(tmp_path):
    import torch

    path = tmp_path / "tag-expert.zarr"
    write_tag(path)
    with pytest.raises(UsageError, match="unknown device 'gpu7'"):
        load_dataset(path, device="gpu7")
    if not torch.cuda.is_available():
        with pytest.raises(OmarbenchError, match="device 'cuda' is not available here"):
            load_dataset(path, device="cuda")
