"""Damaged stores are caught: flipped bytes, shrunk shapes, missing chunks, tampering, incomplete, newer schema."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from omarbench.data import DatasetWriter, load_dataset, verify_dataset
from omarbench.data.synthetic import synthetic_episodes
from omarbench.errors import OmarbenchError
from omarbench.tasks.spec import parse_task_id

TAG = parse_task_id("tag")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    path = tmp_path_factory.mktemp("pristine") / "tag-medium.zarr"
    w = DatasetWriter.create(path, TAG, "medium", chunk_rows=64, durable=False)
    w.append_episodes(*synthetic_episodes(TAG, 0, 12))
    w.finalize()
    return path


@pytest.fixture
def store(pristine, tmp_path):
    """A fresh copy of a complete 300-row tag store (5 chunks per array) for each test to damage."""
    return Path(shutil.copytree(pristine, tmp_path / pristine.name))


def chunk_files(path):
    return sorted(p for p in path.rglob("*") if p.is_file() and "/c/" in p.as_posix())


def flip(file, where):
    data = bytearray(file.read_bytes())
    pos = {"first": 0, "middle": len(data) // 2, "last": len(data) - 1}[where]  # last = inside the crc
    data[pos] ^= 0xFF
    file.write_bytes(bytes(data))


def assert_one_line_refusal(path, fragment):
    with pytest.raises(OmarbenchError) as info:
        load_dataset(path)
    msg = str(info.value)
    assert fragment in msg and "\n" not in msg, msg
    return msg


def test_intact_store_verifies(store):
    result = verify_dataset(store)
    assert result.ok, result.problems
    assert result.digest_computed == result.digest_recorded
    assert result.chunks_checked == len(chunk_files(store))


@pytest.mark.parametrize("array,where", [
    ("agents/prey_0/observations", "first"), ("agents/predator_2/rewards", "middle"), ("terminals", "last"),
    ("episode_starts", "middle"),
])
def test_flipped_byte_is_caught_by_verify_and_loader(store, array, where):
    file = sorted((store / array / "c").rglob("*"))[-1] if array == "episode_starts" else \
        [f for f in chunk_files(store) if f.as_posix().startswith(f"{(store / array).as_posix()}/c/")][1]
    flip(file, where)
    result = verify_dataset(store)
    assert not result.ok
    assert any(p.startswith(f"{array}: chunk ") and "corrupt" in p for p in result.problems), result.problems
    msg = assert_one_line_refusal(store, "is corrupt")
    assert array in msg and "omarbench datasets verify" in msg


def test_a_flipped_byte_in_every_chunk_file_is_reported_per_chunk(store):
    files = chunk_files(store)
    for f in files:
        flip(f, "middle")
    result = verify_dataset(store)
    corrupt = [p for p in result.problems if "is corrupt" in p]
    assert len(corrupt) == len(files) == result.chunks_checked


def test_shrunk_shape_metadata_is_caught(store):
    meta_file = store / "agents/predator_1/actions/zarr.json"
    meta = json.loads(meta_file.read_text())
    meta["shape"][0] -= 10
    meta_file.write_text(json.dumps(meta))
    result = verify_dataset(store)
    assert any("agents/predator_1/actions: shape" in p for p in result.problems), result.problems
    assert any("digest" in p for p in result.problems)
    assert_one_line_refusal(store, "is damaged: agents/predator_1/actions: shape")


def test_deleted_chunk_is_caught(store):
    victim = store / "agents/prey_0/next_observations/c/2/0"
    victim.unlink()
    result = verify_dataset(store)
    assert any("agents/prey_0/next_observations: 1 chunk(s) missing (c/2/0)" in p for p in result.problems)
    assert_one_line_refusal(store, "chunk(s) missing")


def test_rewritten_chunk_with_valid_checksum_is_caught_by_the_digest(store):
    import zarr

    arr = zarr.open_array(str(store / "agents/predator_0/observations"), mode="r+")
    arr[5, 3] = arr[5, 3] + 1.0  # a re-encoded chunk: its crc32c is valid, its content is not the original
    result = verify_dataset(store)
    assert "agents/predator_0/observations: content differs from its recorded digest" in result.problems
    assert_one_line_refusal(store, "does not match its recorded digest")
    assert load_dataset(store, check_digest=False).agents[0].observations[5, 3] == pytest.approx(arr[5, 3])


def test_incomplete_store_is_refused_with_advice(tmp_path):
    path = tmp_path / "tag-random.zarr"
    with DatasetWriter.create(path, TAG, "random", chunk_rows=64, durable=False) as w:
        w.append_episodes(*synthetic_episodes(TAG, 0, 5))
    msg = assert_one_line_refusal(path, "is incomplete (125 transitions committed, not finalized)")
    assert "rerun the command that created it" in msg
    result = verify_dataset(path)
    assert not result.ok and result.problems[0].startswith("incomplete")
    # the committed prefix itself is intact
    assert not [p for p in result.problems[1:]], result.problems


def test_newer_schema_and_foreign_stores_are_refused(store, tmp_path):
    import zarr

    root = store / "zarr.json"
    meta = json.loads(root.read_text())
    meta["attributes"]["schema_version"] = 99
    root.write_text(json.dumps(meta))
    assert_one_line_refusal(store, "uses schema version 99, newer than this omarbench reads (1): upgrade")
    foreign = tmp_path / "other.zarr"
    zarr.open_group(str(foreign), mode="w").create_array("x", shape=(3,), dtype="f4")
    assert_one_line_refusal(foreign, "is not an omarbench dataset")
    (tmp_path / "empty.zarr").mkdir()
    assert_one_line_refusal(tmp_path / "empty.zarr", "cannot be opened as a Zarr store")
    assert_one_line_refusal(tmp_path / "missing.zarr", "the path does not exist")


def test_stray_temporary_file_is_a_warning_not_a_failure(store):
    (store / "terminals" / "c" / "0.0123.partial").write_bytes(b"xx")
    result = verify_dataset(store)
    assert result.ok and result.warnings and "temporary" in result.warnings[0]
    assert np.asarray(load_dataset(store).terminals).shape == (300,)
