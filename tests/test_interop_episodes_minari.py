"""The episode API on our datasets, and `datasets export --format minari` read back by the real minari."""

import numpy as np
import pytest
from peers import peer
from typer.testing import CliRunner

from omarbench.cli import app
from omarbench.data import DatasetWriter
from omarbench.data.episodes import load_episodes
from omarbench.data.synthetic import synthetic_episodes
from omarbench.errors import OmarbenchError, UsageError
from omarbench.tasks.envs import make_vec_env
from omarbench.tasks.spec import parse_task_id

N1 = parse_task_id("spread-n1")
REFS = {"random": {"mean": 30.0, "std": 5.0, "episodes": 50},
        "expert": {"mean": 200.0, "std": 9.0, "episodes": 50}}


def rollout_episodes(task, n_envs, seed):
    """n_envs whole episodes of uniform-random learners on the real environment, as the writer takes them."""
    env = make_vec_env(task, n_envs, seed=seed)
    rng = np.random.default_rng(seed)
    t_len = task.episode_length
    obs = [np.zeros((n_envs, t_len, a.obs_dim)) for a in task.agents]
    nxt = [np.zeros_like(o) for o in obs]
    acts = [np.zeros((n_envs, t_len, 2)) for _ in task.agents]
    rew = np.zeros((n_envs, t_len, task.n_agents))
    trunc = np.zeros((n_envs, t_len), bool)
    cur = env.reset()
    for t in range(t_len):
        step = env.step(rng.uniform(-1, 1, (n_envs, len(task.learner_indices), 2)))
        for i in range(task.n_agents):
            obs[i][:, t], nxt[i][:, t], acts[i][:, t] = cur[i], step.next_obs[i], step.actions[:, i]
        rew[:, t], trunc[:, t] = step.rewards, step.truncated
        cur = step.obs
    return obs, acts, rew, nxt, np.zeros_like(trunc), trunc


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    base = tmp_path_factory.mktemp("datasets")
    w = DatasetWriter.create(base / "spread-n1-random.zarr", N1, "random", {"reference_returns": REFS},
                             chunk_rows=128, durable=False)
    w.append_episodes(*rollout_episodes(N1, 12, seed=3))
    w.finalize({"provenance": {"policy": "uniform random (test)"}})
    tag = parse_task_id("tag")
    w = DatasetWriter.create(base / "tag-expert.zarr", tag, "expert", {"reference_returns": REFS},
                             chunk_rows=128, durable=False)
    w.append_episodes(*synthetic_episodes(tag, 0, 6))
    w.finalize()
    return base


def test_iterate_sample_index_and_returns(root):
    data = load_episodes("tag-expert", root)
    assert (data.total_episodes, data.total_steps) == (6, 150)
    eps = list(data.iterate_episodes())
    assert [e.id for e in eps] == list(range(6)) and all(len(e) == 25 for e in eps)
    ds = data.dataset
    for e in eps:  # rows episode_starts[k]:episode_starts[k+1] of every agent array
        lo = int(ds.episode_starts[e.id])
        for i, a in enumerate(ds.agents):
            np.testing.assert_array_equal(e.observations[i], a.observations[lo:lo + 25].numpy())
            np.testing.assert_array_equal(e.actions[i], a.actions[lo:lo + 25].numpy())
            np.testing.assert_array_equal(e.rewards[:, i], a.rewards[lo:lo + 25].numpy())
        assert e.truncations[-1] and not e.truncations[:-1].any()
    np.testing.assert_allclose([e.reported_return for e in eps], ds.episode_returns)
    by_rule = ds.task.reported_return(eps[2].rewards[None].astype(float))[0]
    np.testing.assert_allclose(eps[2].reported_return, by_rule)
    s1, s2 = data.sample_episodes(4, seed=7), data.sample_episodes(4, seed=7)
    assert [e.id for e in s1] == [e.id for e in s2] and len({e.id for e in s1}) == 4
    assert data[-1].id == 5
    with pytest.raises(UsageError, match="out of range"):
        data[6]
    with pytest.raises(UsageError, match="cannot sample 7"):
        data.sample_episodes(7)


def test_recover_environment_from_metadata(root):
    data = load_episodes("spread-n1-random", root)
    env = data.recover_environment(num_envs=2, seed=3)
    assert env.task == data.task
    obs = env.reset()
    first = data[0]
    # the dataset was rolled out from seed 3: episode 0 of copy 0 starts where the recovered env starts
    np.testing.assert_allclose(obs[0][0], first.observations[0][0], atol=1e-6)
    np.testing.assert_allclose(first.final_observations()[0][1:], first.next_observations[0])


def test_minari_export_loads_with_the_real_package(root, tmp_path, monkeypatch):
    minari = peer("minari", "minari")
    peer("h5py", "minari")
    res = CliRunner().invoke(app, ["datasets", "export", "spread-n1-random", "--format", "minari", "--out",
                                   str(tmp_path), "--root", str(root)])
    assert res.exit_code == 0, res.output
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    ds = minari.load_dataset("omarbench/spread-n1/random-v0")  # local: no download
    ours = load_episodes("spread-n1-random", root)
    assert ds.total_episodes == ours.total_episodes and ds.total_steps == ours.total_steps
    for theirs, mine in zip(ds.iterate_episodes(), ours.iterate_episodes()):
        np.testing.assert_array_equal(theirs.observations, mine.final_observations()[0])
        np.testing.assert_array_equal(theirs.actions, mine.actions[0])
        np.testing.assert_allclose(theirs.rewards, mine.rewards[:, 0])
        np.testing.assert_array_equal(theirs.truncations, mine.truncations)
        np.testing.assert_array_equal(theirs.terminations, mine.terminations)
    # reference scores: Minari's normalisation is ours / 100
    score = float(np.mean(ours.dataset.episode_returns))
    assert minari.get_normalized_score(ds, np.array([score]))[0] == pytest.approx(
        ours.dataset.normalised_score(score) / 100)
    # the environment comes back from the stored spec and replays a stored episode's first step
    env = ds.recover_environment()
    obs, _ = env.reset(seed=3)
    np.testing.assert_allclose(obs, ours[0].observations[0][0], atol=1e-6)
    nxt, r, term, trunc, _ = env.step(ours[0].actions[0][0])
    np.testing.assert_allclose(nxt, ours[0].next_observations[0][0], atol=1e-5)
    assert r == pytest.approx(float(ours[0].rewards[0, 0]), abs=1e-4)
    # a second export refuses to overwrite without --force
    res = CliRunner().invoke(app, ["datasets", "export", "spread-n1-random", "--format", "minari", "--out",
                                   str(tmp_path), "--root", str(root)])
    assert res.exit_code != 0 and "already exists" in str(res.exception)


def test_minari_export_refuses_multi_agent_datasets(root, tmp_path):
    from omarbench.interop.minari import export_minari

    with pytest.raises(OmarbenchError, match="single-agent datasets only; tag-expert has 4 agents"):
        export_minari("tag-expert", tmp_path, root)
    assert not any(tmp_path.iterdir())


def test_missing_extra_is_one_line_naming_it(root, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "minari", None)  # import fails as if not installed
    from omarbench.interop.minari import export_minari

    with pytest.raises(OmarbenchError) as err:
        export_minari("spread-n1-random", tmp_path, root)
    assert 'pip install -e ".[minari]"' in str(err.value) and "\n" not in str(err.value)
