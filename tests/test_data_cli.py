"""``omarbench datasets``: list, info, verify, card, export; bad input is one line and exit code 2."""

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from omarbench.cli import app
from omarbench.data import DatasetWriter, load_dataset
from omarbench.data.synthetic import synthetic_episodes
from omarbench.errors import OmarbenchError
from omarbench.tasks.spec import parse_task_id

TAG = parse_task_id("tag")
REFS = {"random": {"mean": -3.0, "std": 1.0, "episodes": 50}, "expert": {"mean": 7.0, "std": 1.0, "episodes": 50}}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A data root with a complete tag-expert, an incomplete spread-random and a non-dataset."""
    base = tmp_path_factory.mktemp("datasets")
    w = DatasetWriter.create(base / "tag-expert.zarr", TAG, "expert", {"reference_returns": REFS},
                             chunk_rows=256, durable=False)
    w.append_episodes(*synthetic_episodes(TAG, 0, 30))
    w.finalize({"provenance": {"policy": "synthetic test data"}})
    spread = parse_task_id("spread")
    with DatasetWriter.create(base / "spread-random.zarr", spread, "random", durable=False) as w:
        w.append_episodes(*synthetic_episodes(spread, 0, 4))
    (base / "junk.zarr").mkdir()
    return base


def cli(*args):
    result = CliRunner().invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_list_shows_every_store(root):
    out = cli("datasets", "list", "--root", str(root))
    assert out.exit_code == 0
    lines = out.stdout.splitlines()
    tag = next(line for line in lines if "tag-expert" in line)
    digest = json.loads((root / "tag-expert.zarr" / "zarr.json").read_text())["attributes"]["digest"]
    assert digest[:10] in tag and "750" in tag and "yes" in tag
    assert "NO" in next(line for line in lines if "spread-random" in line)
    assert "unreadable" in next(line for line in lines if "junk.zarr" in line)


def test_env_var_sets_the_default_root(root, monkeypatch):
    monkeypatch.setenv("OMARBENCH_DATA", str(root))
    out = cli("datasets", "info", "tag-expert")
    assert out.exit_code == 0 and "750 transitions, 30 episodes" in out.stdout
    assert "prey_0" in out.stdout and "synthetic test data" in out.stdout


def test_verify_ok_and_failure_exit_codes(root, tmp_path):
    assert cli("datasets", "verify", "tag-expert", "--root", str(root)).exit_code == 0
    out = cli("datasets", "verify", "--all", "--root", str(root))
    assert out.exit_code == 1  # the incomplete and the junk stores fail
    assert "OK    tag-expert" in out.stdout and "FAIL  spread-random" in out.stdout
    # a damaged copy fails alone
    import shutil

    bad = shutil.copytree(root / "tag-expert.zarr", tmp_path / "tag-expert.zarr")
    chunk = bad / "agents/prey_0/actions/c/1/0"
    chunk.write_bytes(chunk.read_bytes()[:-1] + b"\x00")
    out = cli("datasets", "verify", str(bad))
    assert out.exit_code == 1 and "agents/prey_0/actions: chunk c/1/0 is corrupt" in out.stdout


def test_card_writes_markdown_and_histogram(root, tmp_path):
    out = cli("datasets", "card", "tag-expert", "--root", str(root), "--out", str(tmp_path / "cards"))
    assert out.exit_code == 0, out.stdout
    md = (tmp_path / "cards" / "tag-expert.md").read_text()
    png = (tmp_path / "cards" / "tag-expert.returns.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    meta = load_dataset(root / "tag-expert.zarr").metadata
    assert meta["digest"] in md and "tag-expert.returns.png" in md
    assert f"{meta['returns']['mean']:,.2f}" in md
    assert "| random | -3.00 ± 1.00 (50) | -4.10 |" in md and "| expert | 7.00 ± 1.00 (50) | 185.60 |" in md
    assert "mean return 207.90, normalised 111.8 with the paper's references" in md  # the authors' data
    assert "| 3 | prey_0 | fixed | 14 | 2 |" in md
    assert "arXiv:2111.11188" in md and "synthetic test data" in md
    assert not list((tmp_path / "cards").glob(".*partial"))


def test_export_omar_npy_matches_the_authors_layout(root, tmp_path):
    out_dir = tmp_path / "seed_0_data"
    export = ("datasets", "export", "tag-expert", "--format", "omar-npy", "--out", str(out_dir),
              "--root", str(root))
    out = cli(*export)
    assert out.exit_code == 0, out.stdout
    ds = load_dataset(root / "tag-expert.zarr")
    n = ds.n_transitions
    # what the authors' replay buffer does: preallocate per agent, then assign the loaded arrays
    for i, agent in enumerate(TAG.agents):
        buffers = {"obs": np.zeros((n, agent.obs_dim)), "acs": np.zeros((n, 2)), "rews": np.zeros(n),
                   "next_obs": np.zeros((n, agent.obs_dim)), "dones": np.zeros(n)}
        for name, buf in buffers.items():
            loaded = np.load(out_dir / f"{name}_{i}.npy")
            assert loaded.shape == buf.shape, (name, i)
            buf[: loaded.shape[0]] = loaded
        np.testing.assert_array_equal(buffers["obs"], ds.agents[i].observations.numpy())
        np.testing.assert_array_equal(buffers["next_obs"], ds.agents[i].next_observations.numpy())
        np.testing.assert_array_equal(buffers["rews"], ds.agents[i].rewards.numpy())
        np.testing.assert_array_equal(buffers["dones"], ds.terminals.numpy().astype(float))
    manifest = json.loads((out_dir / "omarbench_export.json").read_text())
    assert manifest["digest"] == ds.digest and manifest["agents"][3]["name"] == "prey_0"
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(
        [f"{k}_{i}.npy" for i in range(4) for k in ("obs", "acs", "rews", "next_obs", "dones")]
        + ["omarbench_export.json"])
    with pytest.raises(OmarbenchError, match="already exists; choose another --out or pass --force"):
        cli(*export)
    assert cli(*export, "--force").exit_code == 0


def test_export_npz_holds_every_array(root, tmp_path):
    out = cli("datasets", "export", str(root / "tag-expert.zarr"), "--format", "npz", "--out", str(tmp_path))
    assert out.exit_code == 0, out.stdout
    ds = load_dataset(root / "tag-expert.zarr")
    with np.load(tmp_path / "tag-expert.npz") as z:
        np.testing.assert_array_equal(z["agents/prey_0/observations"], ds.agents[3].observations.numpy())
        np.testing.assert_array_equal(z["episode_starts"], ds.episode_starts.numpy())
        assert json.loads(str(z["metadata.json"]))["digest"] == ds.digest


def run(*args):
    return subprocess.run([sys.executable, "-m", "omarbench.cli", *args], capture_output=True, text=True)


@pytest.mark.parametrize("args,fragment", [
    (("datasets", "info", "bogus-expert"), "unknown task 'bogus'"),
    (("datasets", "verify", "tag-good"), "valid levels: random, medium-replay, medium, expert"),
    (("datasets", "card", "./nowhere/tag-expert.zarr"), "the path does not exist"),
    (("datasets", "info", "world-medium", "--root", "{root}"), "dataset 'world-medium' not found under"),
    (("datasets", "export", "tag-expert", "--format", "csv", "--out", "x", "--root", "{root}"),
     "unknown export format 'csv'; valid choices: omar-npy, npz"),
    (("datasets", "card", "spread-random", "--root", "{root}", "--out", "{root}/cards"), "is incomplete"),
])
def test_bad_input_is_one_line_exit_2(root, args, fragment):
    out = run(*(a.format(root=root) for a in args))
    assert out.returncode == 2, out.stderr
    assert fragment in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
