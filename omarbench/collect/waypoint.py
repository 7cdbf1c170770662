"""maze2d datasets from a waypoint controller: our implementation of the method of D4RL's maze2d data.

D4RL generated maze2d by steering the point mass along planned waypoints (``scripts/generation/
generate_maze2d_datasets.py`` and ``d4rl/pointmaze/waypoint_controller.py``, Fu et al. 2020). This module
follows the same recipe with its own code:

* **Plan.** A shortest path over the maze's free cells from the ball's cell to the goal's (breadth-first
  search; D4RL ran Q-iteration on the grid, which yields shortest paths too). The waypoints are the centres
  of the path's cells after the first, each moved by U(±``jitter``) per axis, then the goal itself.
* **Steer.** ``a = clip(10 (w − p) − 1 · v, −1, 1)`` toward the current waypoint ``w`` (``p`` position,
  ``v`` velocity; D4RL's gains), moving on to the next waypoint within ``waypoint_radius`` of it.
* **Explore.** Gaussian noise N(0, ``noise_std``²) on each action, then clipped to [−1, 1] (D4RL's
  ``--noisy`` option used 0.5).
* **New goals.** The goal is a free cell drawn uniformly (the evaluation goal's included), its centre
  moved by U(±0.1) per axis (D4RL's ``set_target``); within ``arrive_radius`` of it a new goal is drawn
  and a new plan made from where the ball is. The ball is never reset: the data is one continuing stream,
  cut into episodes of the task's length (300 / 600 / 800), each ending in a truncation.

Rewards are those of the evaluation task: D4RL's sparse reward for the fixed goal (the map's ``G`` cell)
after each step, whatever goal the controller is heading for (D4RL relabelled its data for the evaluation
goal too, though from the observation before the step). The stream is deterministic per seed: its three
random streams (start, goals and jitter, action noise) are ``numpy.random.default_rng([seed, k])``. A killed
collection resumes from its last committed episode by replaying the stream up to there without writing,
so it reaches the same digest.

Reference returns (random = uniform actions in [−1, 1]², expert = this controller without noise, both on
the evaluation task from D4RL's start distribution) are measured here and stored in the dataset.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from omarbench.errors import OmarbenchError, UsageError, bad_choice
from omarbench.tasks import maze2d
from omarbench.tasks.spec import Task, parse_task_id
from omarbench.vocab import check_preset

LEVEL = "waypoint"
APPEND_EPISODES = 25  # episodes buffered per append
STREAMS = {"start": 0, "goals": 1, "noise": 2, "random_policy": 3, "expert_jitter": 4}


@dataclass(frozen=True)
class WaypointConfig:
    """Everything that shapes a maze2d dataset besides the seed and the maze."""

    p_gain: float = 10.0
    d_gain: float = 1.0
    noise_std: float = 0.5
    jitter: float = 0.1  # U(±jitter) on each waypoint coordinate
    goal_noise: float = 0.1  # U(±goal_noise) on each data goal coordinate (D4RL's set_target)
    waypoint_radius: float = 0.1  # move to the next waypoint within this distance (D4RL's solve_thresh)
    arrive_radius: float = 0.1  # a new goal within this distance of the current one
    reference_episodes: int = 500

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class WaypointController:
    """The PD waypoint follower of one ball. Pure Python floats: it runs once per simulated step."""

    def __init__(self, maze: maze2d.Maze, cfg: WaypointConfig):
        self.maze, self.cfg = maze, cfg
        self.waypoints: list[tuple[float, float]] = []
        self.index = 0
        self.goal = (0.0, 0.0)

    def plan(self, pos, goal, rng: np.random.Generator) -> None:
        """Waypoints to ``goal``: the jittered centres of the path's cells after the first, then the goal."""
        path = self.maze.shortest_path(self.maze.cell_of(np.asarray(pos)),
                                       self.maze.cell_of(np.asarray(goal)))[1:-1]
        noise = rng.uniform(-self.cfg.jitter, self.cfg.jitter, (len(path), 2))
        self.waypoints = [tuple(float(v) for v in self.maze.centre(c) + n) for c, n in zip(path, noise)]
        self.goal = (float(goal[0]), float(goal[1]))
        self.waypoints.append(self.goal)
        self.index = 0

    def act(self, x: float, y: float, vx: float, vy: float) -> tuple[float, float]:
        wx, wy = self.waypoints[self.index]
        r = self.cfg.waypoint_radius
        if self.index < len(self.waypoints) - 1 and (wx - x) ** 2 + (wy - y) ** 2 < r * r:
            self.index += 1
            wx, wy = self.waypoints[self.index]
        kp, kd = self.cfg.p_gain, self.cfg.d_gain
        ax = min(max(kp * (wx - x) - kd * vx, -1.0), 1.0)
        ay = min(max(kp * (wy - y) - kd * vy, -1.0), 1.0)
        return ax, ay

    def arrived(self, x: float, y: float) -> bool:
        gx, gy = self.goal
        return (gx - x) ** 2 + (gy - y) ** 2 < self.cfg.arrive_radius ** 2


class WaypointStream:
    """The continuing data stream of one maze: yields whole episodes of the task's length."""

    def __init__(self, task: Task, cfg: WaypointConfig, seed: int):
        self.task, self.cfg, self.seed = task, cfg, seed
        self.maze = maze2d.maze_for(task)
        self.eval_goal = self.maze.goal
        self.point = maze2d.PointMass(self.maze.name)
        self.controller = WaypointController(self.maze, cfg)
        rngs = {k: np.random.default_rng([seed, v]) for k, v in STREAMS.items()}
        self.goal_rng, self.noise_rng = rngs["goals"], rngs["noise"]
        self.point.set(*maze2d.d4rl_start(self.maze, rngs["start"]))
        self.goals_reached = 0
        self.episodes = 0
        self._new_goal()

    def _new_goal(self) -> None:
        cells = self.maze.free_cells
        cell = cells[int(self.goal_rng.integers(len(cells)))]
        goal = self.maze.centre(cell) + self.goal_rng.uniform(-self.cfg.goal_noise, self.cfg.goal_noise, 2)
        self.controller.plan(self.point.data.qpos, goal, self.goal_rng)

    def episode(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(observations [T, 4], actions [T, 2], rewards [T], next observations [T, 4]) of the next episode."""
        T = self.task.episode_length
        noise = self.noise_rng.normal(0.0, self.cfg.noise_std, (T, 2))
        states = np.empty((T + 1, 4))
        actions = np.empty((T, 2))
        d, ctrl, point = self.point.data, self.controller, self.point
        qpos, qvel = d.qpos, d.qvel
        states[0, :2], states[0, 2:] = qpos, qvel
        for t in range(T):
            x, y, vx, vy = states[t]
            ax, ay = ctrl.act(x, y, vx, vy)
            a = (min(max(ax + noise[t, 0], -1.0), 1.0), min(max(ay + noise[t, 1], -1.0), 1.0))
            actions[t] = a
            point.step(a)
            states[t + 1, :2], states[t + 1, 2:] = qpos, qvel
            if ctrl.arrived(qpos[0], qpos[1]):
                self.goals_reached += 1
                self._new_goal()
        self.episodes += 1
        rewards = maze2d.sparse_reward(states[1:, :2], self.eval_goal)
        return states[:-1], actions, rewards, states[1:]


# ---- reference returns ----------------------------------------------------------------------------------

def reference_returns(task: Task, cfg: WaypointConfig, seed: int, episodes: int | None = None,
                      envs: int = 100, policies: tuple[str, ...] = ("random", "expert"),
                      ) -> dict[str, dict[str, Any]]:
    """Random and expert (noise-free controller) returns on the evaluation task, ``episodes`` each.

    Both policies start from the same states: episode ``k`` of the evaluation seed stream ``seed``.
    """
    from omarbench.tasks.envs import make_vec_env

    n = cfg.reference_episodes if episodes is None else episodes
    maze = maze2d.maze_for(task)
    T = task.episode_length
    E = min(envs, n)
    rounds = -(-n // E)
    out: dict[str, dict[str, Any]] = {}
    for name in policies:
        env = make_vec_env(task, E, seed=seed)
        rng = np.random.default_rng([seed, STREAMS["random_policy" if name == "random" else "expert_jitter"]])
        returns = []
        for r in range(rounds):
            obs = env.reset(episode=r)[0]
            ctrls = [WaypointController(maze, cfg) for _ in range(E)]
            if name == "expert":
                for c, o in zip(ctrls, obs):
                    c.plan(o[:2], maze.goal, rng)
            total = np.zeros(E)
            for _ in range(T):
                if name == "random":
                    acts = rng.uniform(-1.0, 1.0, (E, 1, 2))
                else:
                    acts = np.array([c.act(*o) for c, o in zip(ctrls, obs.tolist())])[:, None]
                step = env.step(acts)
                total += step.rewards[:, 0]
                obs = step.obs[0]
            returns.append(total)
        ret = np.concatenate(returns)[:n]
        out[name] = {"mean": float(ret.mean()), "std": float(ret.std()), "episodes": n,
                     "success_rate": float(np.mean(ret > 0)),
                     "policy": ("uniform actions in [-1, 1]^2" if name == "random"
                                else "the waypoint controller without action noise, planned at each start")}
    return out


# ---- collection -----------------------------------------------------------------------------------------

def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for pkg in ("mujoco", "gymnasium-robotics", "gymnasium"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def _provenance(task: Task, cfg: WaypointConfig, transitions: int, episodes: int) -> dict[str, Any]:
    maze = maze2d.maze_for(task)
    return {
        "algorithm": "waypoint controller (D4RL's maze2d method, reimplemented): BFS over cells, "
                     "jittered cell centres as waypoints, PD law clip(10 (w - p) - 1 v, -1, 1) + Gaussian noise",
        "controller": cfg.to_dict(),
        "stream": "one continuing stream (never reset), a new uniform goal cell on arrival, cut into "
                  f"episodes of {task.episode_length} steps (truncations only)",
        "requested_transitions": transitions,
        "episodes": episodes,
        "maze": {"name": maze.name, "rows": list(maze.rows), "goal_cell": list(maze.goal_cell),
                 "goal_xy": maze.goal.tolist(), "frame": "PointMaze: x = j + 0.5 - W/2, y = H/2 - i - 0.5"},
        "reward": f"1 if |p' - goal| <= {maze2d.GOAL_RADIUS} else 0 (D4RL maze2d sparse), p' after the step, "
                  "goal = the fixed evaluation goal",
        "start": "uniform free cell, U(+-0.1) position, N(0, 0.1^2) velocity (D4RL reset_model)",
        "physics": "gymnasium-robotics PointMaze v3 MuJoCo model: gear 100, damping 1, dt 0.01, "
                   "velocity clipped to +-5",
        "physics_versions": _versions(),
        "published_references": {src: {**refs, "source": maze2d.PUBLISHED_CITATIONS[src]}
                                 for src, refs in (maze2d.published_references(task) or {}).items()},
    }


def default_transitions(task: Task, preset: str) -> int:
    check_preset(preset)
    return maze2d.D4RL_SIZES[maze2d.maze_name(task)] if preset == "paper" else 50_000


def collect_maze2d(task_id: str, level: str = "all", *, transitions: int | None = None, seed: int = 0,
                   root: str | os.PathLike | None = None, preset: str = "paper", progress: bool = True,
                   log: Callable[[str], None] = print, config: WaypointConfig | None = None,
                   stop_after_episodes: int | None = None) -> list[Path]:
    """Write (or resume, or reuse) the ``waypoint`` dataset of a maze2d task; returns its path.

    ``stop_after_episodes`` stops (without finalising) once that many episodes are stored: it simulates an
    interruption in tests.
    """
    from omarbench.data import DatasetWriter, dataset_id, dataset_path, preset_root
    from omarbench.data.store import open_store
    from omarbench.paths import check_writable

    task = parse_task_id(task_id)
    if str(level).strip().lower() not in ("all", LEVEL):  # any case, as every command reads levels
        raise bad_choice("level", level, (LEVEL, "all"))
    if transitions is not None and transitions <= 0:
        raise UsageError(f"--transitions must be a positive integer, got {transitions}")
    if seed < 0:
        raise UsageError(f"--seed must be non-negative, got {seed}")
    n_transitions = transitions if transitions is not None else default_transitions(task, preset)
    cfg = config if config is not None else WaypointConfig(
        reference_episodes=500 if preset == "paper" else 100)
    maze2d.require_mujoco()
    base = preset_root(root, preset)
    check_writable(base)
    T = task.episode_length
    episodes = -(-n_transitions // T)
    ds_id = dataset_id(task, LEVEL)
    path = dataset_path(ds_id, base)
    settings = {"seed": seed, "transitions": n_transitions, "controller": cfg.to_dict()}
    if path.exists():
        _, store = open_store(path)
        if store.attrs.get("collection") != settings:
            raise OmarbenchError(
                f"{str(path)!r} was collected with other settings ({store.attrs.get('collection')}); "
                "delete it or use the same --seed and --transitions")
        if store.complete:
            log(f"{ds_id} is complete: {path}")
            return [path]
        log(f"resuming {ds_id} at {store.n_transitions:,} transitions")
        writer = DatasetWriter.resume(path)
    else:
        t0 = time.perf_counter()
        refs = reference_returns(task, cfg, seed)
        log(f"{task.id} references ({cfg.reference_episodes} episodes, {time.perf_counter() - t0:.0f} s): "
            f"random {refs['random']['mean']:.2f}, expert {refs['expert']['mean']:.2f} "
            f"(expert reaches the goal in {100 * refs['expert']['success_rate']:.1f}% of episodes)")
        meta = {"reference_returns": refs, "provenance": _provenance(task, cfg, n_transitions, episodes),
                "seeds": {"stream": seed, "references": seed}, "collection": settings}
        writer = DatasetWriter.create(path, task, LEVEL, meta)
    stream = WaypointStream(task, cfg, seed)
    with writer, _bar(progress, ds_id, episodes * T, writer.n_transitions) as tick:
        for _ in range(writer.n_episodes):  # replay what is already stored
            stream.episode()
        while writer.n_episodes < episodes:
            if stop_after_episodes is not None and writer.n_episodes >= stop_after_episodes:
                return [path]
            b = min(APPEND_EPISODES, episodes - writer.n_episodes)
            if stop_after_episodes is not None:
                b = min(b, stop_after_episodes - writer.n_episodes)
            eps = [stream.episode() for _ in range(b)]
            obs, act, rew, nxt = (np.stack([e[k] for e in eps]) for k in range(4))
            trunc = np.zeros((b, T), bool)
            trunc[:, -1] = True
            writer.append_episodes([obs], [act], rew[:, :, None], [nxt], np.zeros_like(trunc), trunc)
            tick(b * T)
        writer.finalize({"stream_summary": {"goals_reached": stream.goals_reached,
                                            "goals_per_1000_steps": 1000 * stream.goals_reached / (episodes * T)}})
    return [path]


def _bar(progress: bool, label: str, total: int, completed: int):
    from contextlib import contextmanager

    @contextmanager
    def bar():
        if not progress:
            yield lambda k: None
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        with Progress(TextColumn(f"[bold]{label}[/]"), BarColumn(),
                      TextColumn("{task.completed:,.0f}/{task.total:,.0f} transitions"),
                      TimeElapsedColumn(), TimeRemainingColumn()) as p:
            job = p.add_task("", total=total, completed=completed)
            yield lambda k: p.advance(job, k)

    return bar()
