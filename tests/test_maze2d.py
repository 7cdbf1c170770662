"""maze2d: D4RL's maps and goals on PointMaze physics, the waypoint controller, and its datasets."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("mujoco")
pytest.importorskip("gymnasium_robotics")

from omarbench.collect.waypoint import WaypointConfig, collect_maze2d, reference_returns  # noqa: E402
from omarbench.errors import OmarbenchError, UsageError  # noqa: E402
from omarbench.tasks import maze2d  # noqa: E402
from omarbench.tasks.envs import make_vec_env  # noqa: E402
from omarbench.tasks.spec import parse_task_id  # noqa: E402

QUIET = dict(progress=False, log=lambda s: None)
TINY = WaypointConfig(reference_episodes=4)


def _point_maze_env(name):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from gymnasium_robotics.envs.maze.point_maze import PointMazeEnv

        env = PointMazeEnv(maze_map=maze2d.maze_for(parse_task_id(f"maze2d-{name}")).maze_map(),
                           continuing_task=True, reset_target=False)
    os.unlink(env.tmp_xml_file_path)
    return env


def test_maps_are_gymnasium_robotics_layouts_and_goals_are_d4rls():
    from gymnasium_robotics.envs.maze import maps

    ours = {m: maze2d.maze_for(parse_task_id(f"maze2d-{m}")) for m in maze2d.MAZE_NAMES}
    assert ours["umaze"].maze_map() == maps.U_MAZE
    assert ours["medium"].maze_map() == maps.MEDIUM_MAZE
    assert ours["large"].maze_map() == maps.LARGE_MAZE
    assert {m: z.goal_cell for m, z in ours.items()} == {"umaze": (1, 1), "medium": (6, 6), "large": (7, 9)}
    for m, z in ours.items():  # PointMaze's own conversion of a cell to coordinates
        env = _point_maze_env(m)
        assert np.array_equal(env.maze.cell_rowcol_to_xy(np.array(z.goal_cell)), z.goal)


def test_task_ids_lengths_and_bad_ids():
    for m, T in (("umaze", 300), ("medium", 600), ("large", 800)):
        task = parse_task_id(f"maze2d-{m}")
        assert task.id == f"maze2d-{m}" and task.episode_length == T and task.n_agents == 1
        assert task.obs_dims == (4,) and task.act_dims == (2,) and task.learner_indices == (0,)
        assert type(task).from_dict(task.to_dict()) == task
    with pytest.raises(UsageError, match="unknown maze2d task 'maze2d-huge'; valid choices: maze2d-umaze"):
        parse_task_id("maze2d-huge")
    with pytest.raises(UsageError, match="single flavor"):
        parse_task_id("maze2d-umaze:mpe2")
    with pytest.raises(UsageError, match="runs on MuJoCo"):
        make_vec_env(parse_task_id("maze2d-umaze"), 1, backend="mpe2")


def test_dataset_ids_have_the_waypoint_level_only():
    from omarbench.data import dataset_id, parse_dataset_id

    task, level = parse_dataset_id("maze2d-large-waypoint")
    assert (task.id, level) == ("maze2d-large", "waypoint")
    with pytest.raises(UsageError, match="valid levels: waypoint"):
        parse_dataset_id("maze2d-large-expert")
    with pytest.raises(UsageError, match="valid levels: random, medium-replay, medium, expert"):
        dataset_id(parse_task_id("spread"), "waypoint")


@pytest.mark.parametrize("name", ["umaze", "large"])
def test_physics_equal_pointmaze_step_by_step(name):
    """Our stepping of PointMaze's model equals PointEnv.step exactly, wall contacts included."""
    env = _point_maze_env(name)
    env.reset(seed=3)
    ref = env.point_env
    ours = maze2d.PointMass(name)
    ours.set(ref.data.qpos.copy(), ref.data.qvel.copy())
    rng = np.random.default_rng(0)
    contacts = 0
    for _ in range(2000):
        a = rng.uniform(-1.5, 1.5, 2)  # beyond the limits: both clip
        ref.step(a)
        ours.step(a)
        contacts += ref.data.ncon > 0
        assert np.array_equal(ref.data.qpos, ours.data.qpos) and np.array_equal(ref.data.qvel, ours.data.qvel)
    assert contacts > 0


def test_vec_env_reward_truncation_and_seed_stream():
    task = parse_task_id("maze2d-umaze")
    env = make_vec_env(task, 3, seed=5)
    obs = env.reset()[0]
    again = make_vec_env(task, 3, seed=5).reset()[0]
    assert np.array_equal(obs, again) and obs.shape == (3, 4)
    zeros = np.zeros((3, 1, 2))
    for t in range(task.episode_length):
        step = env.step(zeros)
        pos = step.next_obs[0][:, :2]
        expected = (np.linalg.norm(pos - np.array([-1.0, 1.0]), axis=1) <= 0.5).astype(float)
        assert np.array_equal(step.rewards[:, 0], expected)
        assert step.truncated.all() == (t == task.episode_length - 1) and not step.terminated.any()
    # episode 1 of copy e starts from seed 5 + e + 3
    second = make_vec_env(task, 3, seed=5).reset(episode=1)[0]
    assert np.array_equal(step.obs[0], second)
    for o in obs:  # D4RL's start: within 0.1 of a free cell's centre
        maze = maze2d.maze_for(task)
        assert np.abs(o[:2] - maze.centre(maze.cell_of(o[:2]))).max() <= 0.1


def test_shortest_paths_are_shortest():
    maze = maze2d.maze_for(parse_task_id("maze2d-umaze"))
    assert maze.shortest_path((3, 1), (1, 1)) == [(3, 1), (3, 2), (3, 3), (2, 3), (1, 3), (1, 2), (1, 1)]
    large = maze2d.maze_for(parse_task_id("maze2d-large"))
    for start in large.free_cells:
        path = large.shortest_path(start, large.goal_cell)
        assert all(abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1 for a, b in zip(path, path[1:]))
        assert all(large.is_free(*c) for c in path)


@pytest.mark.parametrize("name", ["umaze", pytest.param("medium", marks=pytest.mark.slow),
                                  pytest.param("large", marks=pytest.mark.slow)])
def test_noise_free_controller_reaches_the_goal(name):
    """The waypoint expert reaches the evaluation goal in at least 95% of 100 episodes on every maze."""
    refs = reference_returns(parse_task_id(f"maze2d-{name}"), WaypointConfig(), seed=0, episodes=100,
                             policies=("expert",))
    assert refs["expert"]["success_rate"] >= 0.95, refs


def _digest(path):
    import zarr

    return zarr.open_group(str(path), mode="r").attrs["digest"]


def test_collection_is_deterministic_and_resumes_to_the_same_digest(tmp_path):
    kw = dict(transitions=5 * 300, config=TINY, **QUIET)
    (a,) = collect_maze2d("maze2d-umaze", root=tmp_path / "a", **kw)
    (b,) = collect_maze2d("maze2d-umaze", root=tmp_path / "b", **kw)
    (c,) = collect_maze2d("maze2d-umaze", root=tmp_path / "c", seed=1, **kw)
    assert _digest(a) == _digest(b) != _digest(c)
    (d,) = collect_maze2d("maze2d-umaze", root=tmp_path / "d", stop_after_episodes=2, **kw)
    from omarbench.data.store import open_store

    assert not open_store(d)[1].complete
    (d,) = collect_maze2d("maze2d-umaze", root=tmp_path / "d", **kw)
    assert _digest(d) == _digest(a)
    # a finished dataset is reused, never rewritten; other settings on the same store are refused
    assert collect_maze2d("maze2d-umaze", root=tmp_path / "a", **kw) == [a]
    with pytest.raises(OmarbenchError, match="other settings"):
        collect_maze2d("maze2d-umaze", root=tmp_path / "a", seed=3, **{**kw})


def test_dataset_content(tmp_path):
    from omarbench.data import load_dataset, verify_dataset

    (path,) = collect_maze2d("maze2d-medium", root=tmp_path, transitions=1_000, config=TINY, **QUIET)
    assert verify_dataset(str(path)).ok
    ds = load_dataset(str(path))
    obs, nxt = ds.agents[0].observations.numpy(), ds.agents[0].next_observations.numpy()
    assert obs.shape == (1_200, 4)  # whole 600-step episodes: at least the requested transitions
    assert np.array_equal(obs[1:], nxt[:-1])  # one continuing stream: no resets between episodes
    assert ds.truncations.numpy().sum() == 2 and not ds.terminals.numpy().any()
    goal = maze2d.maze_for(ds.task).goal
    expected = (np.linalg.norm(nxt[:, :2] - goal, axis=1) <= 0.5).astype(np.float32)
    assert np.array_equal(ds.agents[0].rewards.numpy(), expected)
    assert np.abs(ds.agents[0].actions.numpy()).max() <= 1.0
    assert set(ds.metadata["reference_returns"]) == {"random", "expert"}


CHILD = """
import sys
from omarbench.collect.waypoint import WaypointConfig, collect_maze2d
collect_maze2d("maze2d-umaze", root=sys.argv[1], transitions=300 * 400,
               config=WaypointConfig(reference_episodes=4), progress=False, log=lambda s: None)
"""


@pytest.mark.slow
def test_a_killed_collection_resumes_to_the_same_digest(tmp_path):
    kw = dict(transitions=300 * 400, config=TINY, **QUIET)
    (whole,) = collect_maze2d("maze2d-umaze", root=tmp_path / "whole", **kw)
    root = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(root)], env=env)
    store = root / "maze2d-umaze-waypoint.zarr"
    deadline = time.time() + 120
    from omarbench.data.store import open_store

    while time.time() < deadline and child.poll() is None:
        if store.exists():
            try:
                if open_store(store)[1].n_transitions > 0:
                    break
            except OmarbenchError:
                pass
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert not open_store(store)[1].complete, "the kill came too late to test resume"
    (resumed,) = collect_maze2d("maze2d-umaze", root=root, **kw)
    assert _digest(resumed) == _digest(whole)


@pytest.mark.parametrize("args,fragment", [
    (["collect", "maze2d-huge"], "unknown maze2d task 'maze2d-huge'; valid choices: maze2d-umaze, maze2d-medium"),
    (["collect", "maze2d-umaze", "--level", "expert"], "unknown level 'expert'; valid choices: waypoint, all"),
    (["collect", "maze2d-umaze", "--backend", "mpe2"], "one engine and one flavor"),
    (["collect", "maze2d-umaze", "--transitions", "0"], "--transitions must be an integer in 1.."),
])
def test_bad_input_one_line(args, fragment):
    out = subprocess.run([sys.executable, "-m", "omarbench.cli", *args], capture_output=True, text=True)
    assert out.returncode == 2 and fragment in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_missing_mujoco_names_the_extra(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_mujoco(name, *a, **k):
        if name == "mujoco":
            raise ImportError("No module named 'mujoco'", name="mujoco")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_mujoco)
    with pytest.raises(OmarbenchError, match=r'mujoco is missing\): pip install -e "\.\[mujoco\]"'):
        make_vec_env(parse_task_id("maze2d-umaze"), 1)
    assert parse_task_id("maze2d-umaze").id == "maze2d-umaze"  # ids parse without MuJoCo


def test_card_shows_ours_minari_and_d4rl(tmp_path):
    from omarbench.data.card import write_card

    (path,) = collect_maze2d("maze2d-umaze", root=tmp_path, transitions=600, config=TINY, **QUIET)
    md, png = write_card(str(path), out_dir=tmp_path / "cards")
    text = md.read_text()
    assert "| ours |" in text and "| Minari |" in text and "| D4RL |" in text and png.exists()
    assert "218.70" in text and "161.86" in text
