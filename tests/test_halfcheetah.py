"""Two-agent HalfCheetah (``halfcheetah-2x3``): the task spec, the batched MuJoCo environment against
Gymnasium-Robotics' MaMuJoCo stepped directly, and the one-line errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from omarbench.errors import UsageError
from omarbench.tasks.envs import make_vec_env
from omarbench.tasks.spec import Task, parse_task_id

pytest.importorskip("mujoco")
mamujoco_v1 = pytest.importorskip("gymnasium_robotics").mamujoco_v1


def test_spec():
    task = parse_task_id("halfcheetah-2x3")
    assert task.id == "halfcheetah-2x3" and task.engine == "mujoco" and task.layout == "2x3"
    assert [a.name for a in task.agents] == ["agent_0", "agent_1"]
    assert task.obs_dims == (6, 6) and task.act_dims == (3, 3) and task.learner_indices == (0, 1)
    assert task.episode_length == 1000 and task.fixed_policy is None
    assert Task.from_dict(task.to_dict()) == task
    assert parse_task_id("HalfCheetah-2x3:paper") == task
    r = np.arange(3.0)[:, None].repeat(2, 1)  # the shared reward in both columns, 3 steps
    assert task.reported_return(r) == 3.0


def test_mpe_ids_unchanged():
    assert parse_task_id("spread").engine == "mpe" and parse_task_id("spread").layout is None
    assert parse_task_id("tag:mpe2").id == "tag:mpe2" and parse_task_id("spread-n5").act_dim == 2


@pytest.mark.parametrize("text, message", [
    ("halfcheetah-3x2", "unknown halfcheetah layout '3x2'; valid choices: 2x3"),
    ("halfcheetah-6x1", "unknown halfcheetah layout '6x1'; valid choices: 2x3"),
    ("halfcheetah", "needs a layout, e.g. halfcheetah-2x3"),
    ("halfcheetah-2x3:mpe2", "has one flavor; unknown flavor 'mpe2'; valid choices: paper"),
])
def test_bad_ids(text, message):
    with pytest.raises(UsageError, match=message):
        parse_task_id(text)


def test_bad_backend():
    with pytest.raises(UsageError, match="backend for halfcheetah-2x3 .mpe2.; valid choices: mujoco, mamujoco"):
        make_vec_env(parse_task_id("halfcheetah-2x3"), 2, backend="mpe2")


def test_missing_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mujoco", None)  # what an environment without the package imports
    with pytest.raises(UsageError, match=r'mujoco is missing\); install them with: pip install -e "\.\[mujoco\]"'):
        make_vec_env(parse_task_id("halfcheetah-2x3"), 2)


def _cli(setup: str, *args: str) -> subprocess.CompletedProcess:
    code = f"import sys; {setup}; from omarbench.cli import main; sys.argv = ['omarbench', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)


@pytest.mark.parametrize("setup, args, fragment", [
    ("pass", ("tasks", "show", "halfcheetah-3x2"), "unknown halfcheetah layout '3x2'; valid choices: 2x3"),
    pytest.param("pass", ("collect", "halfcheetah-3x2"), "unknown halfcheetah layout '3x2'",
                 marks=pytest.mark.slow),
    pytest.param("pass", ("collect", "halfcheetah-2x3", "--backend", "mpe2"), "valid choices: mujoco, mamujoco",
                 marks=pytest.mark.slow),
    ("sys.modules['mujoco'] = None", ("tasks", "rollout", "halfcheetah-2x3"), 'pip install -e ".[mujoco]"'),
    pytest.param("sys.modules['gymnasium_robotics'] = None", ("collect", "halfcheetah-2x3"),
                 'pip install -e ".[mujoco]"', marks=pytest.mark.slow),
    ("sys.modules['mujoco'] = None", ("train", "MA-CQL", "halfcheetah-2x3", "medium"),
     'pip install -e ".[mujoco]"'),
    pytest.param("pass", ("train", "OMAR", "halfcheetah-2x3", "expert", "--backend", "mpe2"),
                 "backend for halfcheetah-2x3 'mpe2'; valid choices: mujoco, mamujoco", marks=pytest.mark.slow),
])
def test_cli_errors_are_one_line(setup, args, fragment, tmp_path):
    out = _cli(setup, *args, *(("--root", str(tmp_path)) if args[0] in ("collect", "train") else ()))
    assert out.returncode == 2 and fragment in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())  # nothing half-written


def _reference_run(n_envs: int, seed: int, episodes: int, actions: np.ndarray):
    """MaMuJoCo stepped directly with the VecEnv's seed stream: obs, state, rewards per (episode, step)."""
    import mujoco

    previous = mujoco.get_mju_user_warning()  # MuJoCo 4 warns about the XML (and logs it in the cwd)
    mujoco.set_mju_user_warning(lambda message: None)
    try:
        envs = [mamujoco_v1.parallel_env("HalfCheetah", "2x3", agent_obsk=0, global_categories=())
                for _ in range(n_envs)]
    finally:
        mujoco.set_mju_user_warning(previous)
    names = envs[0].possible_agents
    T = 1000
    obs = np.zeros((episodes, T + 1, n_envs, 2, 6))
    state = np.zeros((episodes, T + 1, n_envs, 17))
    rew = np.zeros((episodes, T, n_envs, 2))
    trunc = np.zeros((episodes, T, n_envs), bool)
    for k in range(episodes):
        for e, env in enumerate(envs):
            o, _ = env.reset(seed=seed + e + k * n_envs)
            obs[k, 0, e] = [o[n] for n in names]
            state[k, 0, e] = env.state()
            for t in range(T):
                o, r, term, tr, _ = env.step({n: actions[k * T + t, e, i] for i, n in enumerate(names)})
                obs[k, t + 1, e] = [o[n] for n in names]
                state[k, t + 1, e] = env.state()
                rew[k, t, e] = [r[n] for n in names]
                trunc[k, t, e] = tr[names[0]]
                assert not any(term.values())
    return obs, state, rew, trunc


@pytest.mark.parametrize("backend", ["mujoco", pytest.param("mamujoco", marks=pytest.mark.slow)])
def test_equals_mamujoco(backend):
    """Observations, state and rewards equal MaMuJoCo's, bit for bit, over two whole episodes per copy."""
    E, seed, episodes, T = 2, 7, 2, 1000
    actions = np.random.default_rng(0).uniform(-1, 1, (episodes * T, E, 2, 3))
    ref_obs, ref_state, ref_rew, ref_trunc = _reference_run(E, seed, episodes, actions)
    env = make_vec_env(parse_task_id("halfcheetah-2x3"), E, backend=backend, seed=seed)
    obs = env.reset()
    for k in range(episodes):
        assert np.array_equal(np.stack(obs, 1), ref_obs[k, 0])
        assert np.array_equal(env.state(), ref_state[k, 0])
        for t in range(T):
            step = env.step(actions[k * T + t])
            assert np.array_equal(np.stack(step.next_obs, 1), ref_obs[k, t + 1])
            assert np.array_equal(step.rewards, ref_rew[k, t])
            assert np.array_equal(step.truncated, ref_trunc[k, t]) and not step.terminated.any()
            assert np.array_equal(step.actions, actions[k * T + t])
            if t < T - 1:
                assert np.array_equal(env.state(), ref_state[k, t + 1])
            obs = step.obs
        assert step.truncated.all()


def test_seed_stream_and_resume():
    """The same seed gives the same trajectories; reset(episode=k) starts episode k of the stream."""
    task = parse_task_id("halfcheetah-2x3")
    a, b = make_vec_env(task, 3, seed=4), make_vec_env(task, 3, seed=4)
    assert np.array_equal(np.stack(a.reset(), 1), np.stack(b.reset(), 1))
    c = make_vec_env(task, 3, seed=4 + 3)  # episode 1 of copy e has seed 4 + e + 3
    assert np.array_equal(np.stack(a.reset(episode=1), 1), np.stack(c.reset(), 1))
    with pytest.raises(ValueError, match=r"shaped \(3, 2, 3\)"):
        a.step(np.zeros((3, 2, 2)))


@pytest.mark.slow
def test_collect_end_to_end(tmp_path):
    """All four levels from a tiny behaviour run; a rerun reuses everything; resuming a stopped run
    ends with the same checkpoints as the uninterrupted run."""
    from omarbench.collect.api import collect
    from omarbench.collect.mujoco import MujocoCollector, mujoco_tiny_config
    from omarbench.data.store import open_dataset

    cfg = mujoco_tiny_config()
    # the command line with the quick preset's budget cut to the tiny one
    tiny = "import omarbench.collect.mujoco as m; m.mujoco_preset_config = lambda t, p: m.mujoco_tiny_config()"
    out = _cli(tiny, "collect", "halfcheetah-2x3", "--preset", "quick", "--root", str(tmp_path), "--no-progress")
    assert out.returncode == 0, out.stderr
    paths = [tmp_path / "quick" / f"halfcheetah-2x3-{lv}.zarr" for lv in ("random", "medium-replay", "medium",
                                                                         "expert")]
    assert all(f"dataset ready: {p}" in out.stdout.replace("\n", "") for p in paths)
    assert [p.name for p in paths] == [f"halfcheetah-2x3-{lv}.zarr" for lv in
                                       ("random", "medium-replay", "medium", "expert")]
    for p in paths:
        _, info = open_dataset(p)
        assert info.complete and info.task.id == "halfcheetah-2x3"
        attrs = info.attrs
        assert attrs["versions"]["mujoco"] != "absent" and attrs["versions"]["gymnasium-robotics"] != "absent"
        assert attrs["reference_returns"]["random"]["episodes"] == 2
    _, rand = open_dataset(paths[0])
    assert rand.n_transitions == 1_000 and rand.attrs["provenance"]["selection"].startswith("uniform")
    again = collect("halfcheetah-2x3", "expert", root=tmp_path, preset="quick", config=cfg, progress=False,
                    log=lambda s: None)
    assert again == [paths[3]]

    # stop after the first trained segment, resume: the checkpoints equal the uninterrupted run's
    other = MujocoCollector(parse_task_id("halfcheetah-2x3"), cfg, root=tmp_path / "b", backend="mujoco",
                            preset="quick", progress=False, log=lambda s: None)
    other.run.train(stop_when=lambda ckpts: len(ckpts) >= 2)
    info = other.run.info()
    info["status"] = "running"  # as if killed there
    (other.run.info_path).write_text(__import__("json").dumps(info))
    resumed = other.run.train()
    first = MujocoCollector(parse_task_id("halfcheetah-2x3"), cfg, root=tmp_path / "quick", backend="mujoco",
                            preset="quick").run.info()
    assert [c["digest"] for c in resumed["checkpoints"]] == [c["digest"] for c in first["checkpoints"]]

    # the offline side on these datasets: each paper algorithm through ``omarbench train`` with the task's
    # preset row (two rounds, one evaluation episode: the path only)
    import json

    from typer.testing import CliRunner

    from omarbench.cli import app
    from omarbench.vocab import PAPER_ALGOS

    tiny = ("--preset", "quick", "--root", str(tmp_path), "--no-progress", "--set", "rounds=2", "--set",
            "eval_every=2", "--set", "eval_episodes=1", "--set", "final_episodes=1")
    runner = CliRunner()
    for algo in PAPER_ALGOS:
        res = runner.invoke(app, ["train", algo, "halfcheetah-2x3", "expert", "--seeds", "1", *tiny])
        assert res.exit_code == 0 and "halfcheetah-2x3 expert seed 0: return" in res.output, res.output
    records = [json.loads(p.read_text()) for p in (tmp_path / "quick" / "results").glob("*.json")]
    assert sorted((r["algo"], r["level"]) for r in records if r.get("status")) == sorted(
        (a, "expert") for a in PAPER_ALGOS)
    for r in records:
        if r.get("status"):
            assert r["status"] == "ok" and r["final"]["episodes"] == 1
            assert [c["round"] for c in r["curve"]] == [0, 2]
            assert r["config"]["hidden"] == 256 and r["reference_returns"]["source"] == "dataset"
    omar = next(r for r in records if r.get("algo") == "OMAR" and r.get("level") == "expert")["config"]
    assert (omar["omar_search"], omar["cql_sampler"], omar["tau"], omar["alpha"]) == ("cem", "uniform+policy", 0.5,
                                                                                     5.0)


@pytest.mark.slow
def test_laptop_collection_and_training_use_their_own_root(tmp_path):
    """``--preset laptop``: the datasets of the shorter behaviour run go to <root>/laptop (never the paper
    root), and ``train --preset laptop`` reads them there and records the laptop budget."""
    import json

    from typer.testing import CliRunner

    from omarbench.cli import app
    from omarbench.collect.presets import preset_seed

    tiny = "import omarbench.collect.mujoco as m; m.mujoco_preset_config = lambda t, p: m.mujoco_tiny_config()"
    out = _cli(tiny, "collect", "halfcheetah-2x3", "--level", "expert", "--preset", "laptop", "--root",
               str(tmp_path), "--no-progress")
    assert out.returncode == 0, out.stderr
    seed = preset_seed(parse_task_id("halfcheetah-2x3"), "laptop")
    assert (tmp_path / "laptop" / "halfcheetah-2x3-expert.zarr").is_dir()
    assert (tmp_path / "laptop" / "behaviour" / f"halfcheetah-2x3-laptop-seed{seed}").is_dir()
    assert not list(tmp_path.glob("*.zarr"))
    res = CliRunner().invoke(app, ["train", "OMAR", "halfcheetah-2x3", "expert", "--seeds", "1", "--preset",
                                   "laptop", "--root", str(tmp_path), "--no-progress", "--set", "rounds=2",
                                   "--set", "eval_every=2", "--set", "eval_episodes=1", "--set",
                                   "final_episodes=1"])
    assert res.exit_code == 0, res.output
    [rec] = [json.loads(p.read_text()) for p in (tmp_path / "laptop" / "results").glob("OMAR*.json")]
    assert rec["preset"] == "laptop" and rec["config"]["omar_search"] == "cem" and rec["config"]["rounds"] == 2
