"""The offline training loop and ``omarbench train``: records, batching invariance, failures, errors."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from toy_offline import rollout_dataset

from omarbench import results as rs
from omarbench.errors import UsageError
from omarbench.offline.algos.core import GroupLearner
from omarbench.offline.presets import make_config, resolve_config
from omarbench.offline.train import contiguous_runs, train
from omarbench.tasks.spec import parse_task_id

TASK = parse_task_id("spread-n1")
TINY = {"rounds": 6, "eval_every": 3, "eval_episodes": 2, "final_episodes": 4, "batch_size": 32}


@pytest.fixture(scope="module")
def spread_data():
    return rollout_dataset(TASK, episodes=8)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # bit-level comparisons need one thread


def test_records_follow_the_contract(tmp_path, spread_data):
    recs = train("omar", TASK, "random", [0, 1], preset="quick", results_dir=tmp_path, overrides=TINY,
                 dataset=spread_data, progress=False, backend="numpy")
    files = sorted(p.name for p in tmp_path.glob("*.json"))
    assert len(recs) == 2 and len(files) == 2
    for rec in recs:
        on_disk = json.loads((tmp_path / rs.record_filename(rec)).read_text())
        assert on_disk == json.loads(json.dumps(rec))
        assert rec["algo"] == "OMAR" and rec["task"] == "spread-n1" and rec["level"] == "random"
        assert rec["status"] == "ok" and rec["reason"] is None and rec["preset"] == "quick"
        assert rec["key"] == rs.key_of(rec)
        assert [c["round"] for c in rec["curve"]] == [0, 3, 6]
        assert rec["final"]["episodes"] == 4 and np.isfinite(rec["final"]["return"])
        ref = rec["reference_returns"]
        assert ref["source"] == "dataset"
        norm = 100 * (rec["final"]["return"] - ref["random"]) / (ref["expert"] - ref["random"])
        assert rec["final"]["normalised"] == pytest.approx(norm)
        cfg = rec["config"]
        assert cfg["rounds"] == 6 and cfg["tau"] == 1.0 and cfg["alpha"] == 0.5 and cfg["gamma"] == 0.95
        assert rec["dataset"] == {"id": spread_data.id, "digest": spread_data.digest,
                                  "n_transitions": spread_data.n_transitions}
    assert recs[0]["final"]["return"] != recs[1]["final"]["return"]


@pytest.fixture
def mkl_kernel(monkeypatch):
    """The offline learners on MKL in this test (a process's kernel choice is cached: cleared around it)."""
    from omarbench import kernels

    monkeypatch.setenv(kernels.ENV_VAR, "mkl")
    kernels.resolve_kernel.cache_clear()
    yield
    kernels.resolve_kernel.cache_clear()


def test_a_seed_trained_in_a_batch_records_what_it_records_alone(tmp_path, spread_data, mkl_kernel):
    """On MKL a batched member computes what it computes alone, to the bit; on oneDNN (the default on AMD
    CPUs with AVX-512) a one-member product may round differently, and tests/test_fast_paths.py bounds
    the difference instead."""
    kw = dict(preset="quick", overrides=TINY, dataset=spread_data, progress=False, backend="numpy")
    batch = train("td3bc", TASK, "random", [0, 1, 2], results_dir=tmp_path / "b", **kw)
    lone = train("td3bc", TASK, "random", [1], results_dir=tmp_path / "l", **kw)
    assert batch[1]["key"] == lone[0]["key"]
    for a, b in zip(batch[1]["curve"], lone[0]["curve"]):
        assert a["round"] == b["round"] and a["return"] == pytest.approx(b["return"], rel=1e-6)
    assert batch[1]["final"]["return"] == pytest.approx(lone[0]["final"]["return"], rel=1e-6)


def test_a_seed_that_goes_nan_is_failed_and_the_others_finish(tmp_path, spread_data, monkeypatch):
    real = GroupLearner.update
    calls = {"n": 0}

    def poisoned(self):
        calls["n"] += 1
        if calls["n"] == 3:  # seed 1 (member 1 of 3: spread-n1 has one learner) goes bad in round 3
            with torch.no_grad():
                self.critic.params.p["w2"][1].fill_(float("nan"))
        return real(self)

    monkeypatch.setattr(GroupLearner, "update", poisoned)
    recs = train("cql", TASK, "random", [0, 1, 2], preset="quick", results_dir=tmp_path, overrides=TINY,
                 dataset=spread_data, progress=False, backend="numpy")
    assert [r["status"] for r in recs] == ["ok", "failed", "ok"]
    assert recs[1]["reason"] == "non-finite critic loss at round 3" and recs[1]["final"] is None
    assert [c["round"] for c in recs[1]["curve"]] == [0]
    monkeypatch.setattr(GroupLearner, "update", real)
    clean = train("cql", TASK, "random", [0, 2], preset="quick", results_dir=tmp_path / "c", overrides=TINY,
                  dataset=spread_data, progress=False, backend="numpy")
    for a, b in zip((recs[0], recs[2]), clean):
        assert a["final"]["return"] == pytest.approx(b["final"]["return"], rel=1e-6)


def test_evaluation_episodes_depend_on_the_seed_alone():
    assert contiguous_runs([0, 1, 2, 5, 6, 3]) == [(0, 3), (5, 2), (3, 1)]


def test_paper_preset_follows_the_authors_table():
    c = make_config("OMAR", "tag", "medium")
    assert (c.rounds, c.tau, c.alpha, c.batch_size, c.lr, c.gamma, c.soft_update) == (
        2000, 0.7, 5.0, 1024, 0.01, 0.95, 0.01)
    assert make_config("cql", "spread", "random").rounds == 6000
    assert make_config("cql", "tag", "medium-replay").rounds == 1000
    assert make_config("omar", "world:mpe2", "medium").tau == 0.1
    assert make_config("omar", "spread-n5", "medium-replay").alpha == 1.0
    q = make_config("bc", "world", "expert", "quick", {"rounds": "20"})
    assert q.rounds == 20 and q.batch_size == 256 and not hasattr(q, "alpha")
    assert resolve_config("td3bc", "spread", "expert")["lam"] == 2.5


@pytest.mark.parametrize("kwargs,match", [
    (dict(algo="sac"), "unknown algorithm 'sac'"),
    (dict(level="hard"), "unknown level 'hard'"),
    (dict(seeds=[]), "bad seeds"),
    (dict(seeds=[1, 1]), "bad seeds"),
    (dict(preset="long"), "unknown preset 'long'"),
    (dict(backend="gym"), "unknown backend 'gym'"),
    (dict(device="tpu"), "unknown device 'tpu'"),
    (dict(overrides={"gama": 0.9}), "unknown hyperparameter 'gama'"),
])
def test_bad_arguments_are_one_line_usage_errors(tmp_path, spread_data, kwargs, match):
    args = dict(algo="omar", level="random", seeds=[0], preset="quick", backend="numpy", device="cpu",
                overrides=None)
    args.update(kwargs)
    with pytest.raises(UsageError, match=match):
        train(args.pop("algo"), TASK, args.pop("level"), args.pop("seeds"), results_dir=tmp_path,
              dataset=spread_data, progress=False, **args)
    assert not any(tmp_path.iterdir())


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "omarbench.cli", "train", *args], capture_output=True,
                          text=True, timeout=300)


SLOW = pytest.mark.slow  # each case starts a Python process (a few seconds): the first two run always


@pytest.mark.parametrize("args,fragment", [
    (("sac", "spread", "medium"), "unknown algorithm 'sac'"),
    (("omar", "spread", "medium", "--set", "taus=1"), "unknown hyperparameter 'taus'"),
    pytest.param(("omar", "spread", "medium", "--seeds", "4-1"), "bad seeds '4-1'", marks=SLOW),
    pytest.param(("omar", "spreadz", "medium"), "unknown task 'spreadz'", marks=SLOW),
    pytest.param(("omar", "spread", "hard"), "unknown level 'hard'", marks=SLOW),
    pytest.param(("omar", "spread", "medium", "--set", "rounds"), "bad --set 'rounds'", marks=SLOW),
    pytest.param(("omar", "spread", "medium", "--backend", "gym"), "unknown backend 'gym'", marks=SLOW),
    pytest.param(("omar", "spread", "medium", "--root", "/nonexistent-omarbench"), "not found", marks=SLOW),
])
def test_cli_bad_input_is_one_line_exit_2(args, fragment):
    out = _cli(*args)
    assert out.returncode == 2, out.stderr
    assert fragment in out.stderr and len(out.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_cli_trains_from_a_dataset_on_disk(tmp_path):
    from omarbench.data import DatasetWriter, dataset_id

    ds = rollout_dataset(TASK, episodes=8)
    n_ep, T = 8, TASK.episode_length

    def ep(x):
        return x.numpy().reshape(n_ep, T, *x.shape[1:])

    path = tmp_path / "data" / "quick" / "spread-n1-random.zarr"  # --preset quick reads <root>/quick
    refs = {k: {"mean": v["mean"], "std": 1.0, "episodes": 10} for k, v in ds.reference_returns.items()}
    w = DatasetWriter.create(path, TASK, "random", {"reference_returns": refs}, durable=False)
    ag = ds.agents[0]
    w.append_episodes([ep(ag.observations)], [ep(ag.actions)], ep(ag.rewards)[..., None],
                      [ep(ag.next_observations)], ep(ds.terminals), ep(ds.truncations))
    w.finalize()
    out = _cli("icq", "spread-n1", "random", "--seeds", "2", "--preset", "quick", "--root", str(tmp_path / "data"),
               "--set", "rounds=4", "--set", "eval_every=2", "--set", "batch_size=16", "--no-progress")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("over 100 episodes") == 2
    recs = sorted((tmp_path / "data" / "quick" / "results").glob("MA-ICQ__spread-n1__random__seed*.json"))
    assert len(recs) == 2
    rec = json.loads(recs[0].read_text())
    assert rec["dataset"]["id"] == dataset_id(TASK, "random") and rec["status"] == "ok"
