"""Single-agent maze2d tasks (D4RL's maze2d U-maze / medium / large) on gymnasium-robotics' PointMaze physics.

The OMAR paper's last table runs single-agent offline RL on D4RL's ``maze2d-umaze-v1``, ``maze2d-medium-v1``
and ``maze2d-large-v1`` (Fu et al. 2020, arXiv:2004.07219). D4RL needs mujoco-py; these tasks rebuild the
same problem on the MuJoCo model of gymnasium-robotics' ``PointMaze_*-v3`` (the same point mass as D4RL's:
slide joints with damping 1, motors with gear 100 and controls clipped to [-1, 1], velocity clipped to
[-5, 5] before each step, timestep 0.01 with one physics step per action, Euler integrator).

What is taken from D4RL (``d4rl/pointmaze/maze_model.py`` and ``d4rl/pointmaze/__init__.py``):

* the three maps (:data:`MAPS`, D4RL's ``U_MAZE``, ``MEDIUM_MAZE``, ``LARGE_MAZE``; the same layouts as
  gymnasium-robotics' ``maps.U_MAZE`` / ``MEDIUM_MAZE`` / ``LARGE_MAZE``);
* the fixed evaluation goal: the map's ``G`` cell (row 1 col 1, row 6 col 6, row 7 col 9); D4RL's
  evaluation environments are registered with ``reset_target=False``, so the goal never moves;
* the sparse reward of the ``-v1`` environments: 1 when the ball is within 0.5 of the goal after the step,
  else 0; no terminal states;
* episode lengths 300 / 600 / 800 (``max_episode_steps`` of the ``-v1`` registrations);
* the start state: a cell drawn uniformly from every free cell (the goal's included), plus U(±0.1) on
  each coordinate, and a velocity drawn from N(0, 0.1²) per axis.

Differences from D4RL, all deliberate and recorded in every dataset's metadata:

* **Coordinates.** Observations and actions are in PointMaze's frame: x to the right (column), y up (row
  0 at the top), the maze centred on the origin, so cell ``(i, j)`` is centred at
  ``(j + 0.5 - W/2, H/2 - i - 0.5)`` for an ``H x W`` map. D4RL's frame has x along the rows and y along the
  columns with cell ``(i, j)`` at ``(i, j)``, and its walls sit 0.2 away from those nominal centres (its
  particle body starts at (1.2, 1.2) while wall ``(i, j)`` is placed at ``(i + 1, j + 1)``); here the
  goal and the start cells are the geometric centres of their cells.
* **Goal.** The exact centre of the ``G`` cell. PointMaze's own reset adds U(±0.25) to the goal and
  rewards within 0.45 (its ``success`` radius); neither is used: the reward here is D4RL's (radius 0.5)
  and is computed by this module, not by PointMaze.
* **Physics engine.** MuJoCo 3+ through the official bindings instead of mujoco-py on MuJoCo 2.0; the
  model file is PointMaze's, whose point mass D4RL's was ported from.

The environments import ``mujoco`` and ``gymnasium_robotics`` lazily: without them every id still parses
and only making an environment fails, with a one-line error naming the ``mujoco`` extra.
"""

from __future__ import annotations

import functools
from collections import deque
from dataclasses import dataclass

import numpy as np

from omarbench.errors import OmarbenchError

PREFIX = "maze2d"
MAZE_NAMES: tuple[str, ...] = ("umaze", "medium", "large")
TASK_IDS: tuple[str, ...] = tuple(f"{PREFIX}-{m}" for m in MAZE_NAMES)
OBS_DIM = 4  # x, y, vx, vy
ACT_DIM = 2
AGENT_NAME = "point"
GOAL_RADIUS = 0.5  # D4RL maze2d sparse reward: 1 within 0.5 of the goal
START_POS_NOISE = 0.1  # D4RL reset_model: U(-0.1, 0.1) on each coordinate
START_VEL_STD = 0.1  # D4RL reset_model: N(0, 0.1^2) on each velocity
VELOCITY_LIMIT = 5.0  # PointEnv._clip_velocity (D4RL's clip_velocity)
EXTRA_HINT = 'pip install -e ".[mujoco]"'

# D4RL's maps ('#' wall, 'O' free, 'G' the evaluation goal), rows top to bottom.
MAPS: dict[str, tuple[str, ...]] = {
    "umaze": ("#####", "#GOO#", "###O#", "#OOO#", "#####"),
    "medium": ("########", "#OO##OO#", "#OO#OOO#", "##OOO###", "#OO#OOO#", "#O#OO#O#", "#OOO#OG#", "########"),
    "large": ("############", "#OOOO#OOOOO#", "#O##O#O#O#O#", "#OOOOOO#OOO#", "#O####O###O#", "#OO#O#OOOOO#",
              "##O#O#O#O###", "#OO#OOO#OGO#", "############"),
}
# max_episode_steps of D4RL's maze2d-*-v1 registrations.
EPISODE_LENGTHS: dict[str, int] = {"umaze": 300, "medium": 600, "large": 800}
# Transitions in D4RL's maze2d-*-v1 datasets (the paper's data); the collector's default sizes.
D4RL_SIZES: dict[str, int] = {"umaze": 1_000_000, "medium": 2_000_000, "large": 4_000_000}

D4RL_CITATION = ("Fu, Kumar, Nachum, Tucker, Levine. D4RL: Datasets for Deep Data-Driven Reinforcement "
                 "Learning. arXiv:2004.07219 (2020); d4rl/pointmaze/__init__.py, maze2d-*-v1 registrations")
MINARI_CITATION = ("ref_min_score / ref_max_score of Minari's D4RL/pointmaze/{umaze,medium,large}-v2 datasets "
                   "(a random policy and the waypoint expert, 100 episodes each, on PointMaze_*-v3 with "
                   "continuing_task=True, reset_target=False and D4RL's G cell as the goal), values stored in "
                   "the datasets' metadata rather than printed on minari.farama.org; generation code: "
                   "github.com/rodrigodelazcano/d4rl-minari-dataset-generation")
# Published reference returns (sparse reward). D4RL's: ref_min_score / ref_max_score of maze2d-*-v1, used by
# the OMAR paper to normalise. Minari's: the same two fields of its regenerated PointMaze datasets; note
# that Minari's PointMaze rewards within 0.45 of a goal drawn with U(±0.25) noise, so neither set is on
# this module's scale.
PUBLISHED_REFERENCES: dict[str, dict[str, dict[str, float]]] = {
    "d4rl": {
        "umaze": {"random": 23.85, "expert": 161.86},
        "medium": {"random": 13.13, "expert": 277.39},
        "large": {"random": 6.7, "expert": 273.99},
    },
    "minari": {
        "umaze": {"random": 13.49, "expert": 218.70},
        "medium": {"random": 17.66, "expert": 361.05},
        "large": {"random": 3.55, "expert": 462.26},
    },
}
PUBLISHED_CITATIONS = {"d4rl": D4RL_CITATION, "minari": MINARI_CITATION}


def is_maze2d(task_or_id) -> bool:
    name = task_or_id if isinstance(task_or_id, str) else task_or_id.name
    return name.strip().lower().startswith(PREFIX)


def maze_name(task) -> str:
    return task.name[len(PREFIX) + 1:]


def published_references(task) -> dict[str, dict[str, float]] | None:
    """``{"d4rl": {"random", "expert"}, "minari": {...}}`` for a maze2d task, else ``None``."""
    if not is_maze2d(task):
        return None
    return {src: refs[maze_name(task)] for src, refs in PUBLISHED_REFERENCES.items()}


# ---- geometry -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Maze:
    """A map's cells in PointMaze's frame: free cells, the goal, cell centres, and shortest paths."""

    name: str
    rows: tuple[str, ...]

    @property
    def height(self) -> int:
        return len(self.rows)

    @property
    def width(self) -> int:
        return len(self.rows[0])

    def is_free(self, i: int, j: int) -> bool:
        return 0 <= i < self.height and 0 <= j < self.width and self.rows[i][j] != "#"

    @functools.cached_property
    def free_cells(self) -> tuple[tuple[int, int], ...]:
        """Free cells (the goal's included) in row-major order."""
        return tuple((i, j) for i in range(self.height) for j in range(self.width) if self.is_free(i, j))

    @property
    def goal_cell(self) -> tuple[int, int]:
        (cell,) = [(i, j) for i, r in enumerate(self.rows) for j, c in enumerate(r) if c == "G"]
        return cell

    def centre(self, cell: tuple[int, int]) -> np.ndarray:
        i, j = cell
        return np.array([j + 0.5 - self.width / 2, self.height / 2 - i - 0.5])

    @property
    def goal(self) -> np.ndarray:
        return self.centre(self.goal_cell)

    def cell_of(self, pos: np.ndarray) -> tuple[int, int]:
        """The free cell holding ``pos`` (the nearest free cell if ``pos`` is outside every free cell)."""
        i = int(np.floor(self.height / 2 - pos[1]))
        j = int(np.floor(pos[0] + self.width / 2))
        if self.is_free(i, j):
            return i, j
        d = [float(np.sum((self.centre(c) - pos) ** 2)) for c in self.free_cells]
        return self.free_cells[int(np.argmin(d))]

    def maze_map(self) -> list[list[int]]:
        """The map as gymnasium-robotics expects it (1 wall, 0 free)."""
        return [[1 if c == "#" else 0 for c in r] for r in self.rows]

    def shortest_path(self, start: tuple[int, int], goal: tuple[int, int]) -> list[tuple[int, int]]:
        """Cells from ``start`` to ``goal`` inclusive, by breadth-first search (neighbours N, S, W, E)."""
        return list(self._paths_to(goal)(start))

    @functools.cache  # noqa: B019 - a handful of frozen mazes live for the whole process
    def _paths_to(self, goal: tuple[int, int]):
        parent: dict[tuple[int, int], tuple[int, int] | None] = {goal: None}
        queue = deque([goal])
        while queue:
            i, j = queue.popleft()
            for n in ((i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)):
                if self.is_free(*n) and n not in parent:
                    parent[n] = (i, j)
                    queue.append(n)

        def walk(start):
            if start not in parent:
                raise ValueError(f"cell {start} cannot reach {goal} in maze {self.name}")
            cell = start
            while cell is not None:
                yield cell
                cell = parent[cell]

        return walk


def maze_for(task) -> Maze:
    return _maze(maze_name(task))


@functools.cache
def _maze(name: str) -> Maze:
    return Maze(name, MAPS[name])


# ---- physics ------------------------------------------------------------------------------------------

def require_mujoco():
    """Import ``mujoco`` and ``gymnasium_robotics`` or fail with one line naming the extra."""
    import contextlib
    import io
    import warnings

    try:
        import mujoco

        with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its import notes concern other environments (Adroit)
            import gymnasium_robotics  # noqa: F401
    except ImportError as exc:
        raise OmarbenchError(
            f"maze2d tasks need MuJoCo and gymnasium-robotics ({exc.name} is missing): {EXTRA_HINT}"
        ) from None
    return mujoco


@functools.cache
def point_maze_model(name: str):
    """The MuJoCo model of gymnasium-robotics' PointMaze with D4RL's map ``name`` (built once per process)."""
    require_mujoco()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from gymnasium_robotics.envs.maze.point_maze import PointMazeEnv

        env = PointMazeEnv(maze_map=_maze(name).maze_map(), continuing_task=True, reset_target=False)
    model = env.point_env.model
    import os

    os.unlink(env.tmp_xml_file_path) if os.path.exists(env.tmp_xml_file_path) else None
    return model


class PointMass:
    """One point mass in a maze: PointMaze's ``PointEnv.step`` (clip action, clip velocity, one MuJoCo step)."""

    def __init__(self, name: str):
        self.mujoco = require_mujoco()
        self.model = point_maze_model(name)
        self.data = self.mujoco.MjData(self.model)
        self._mj_step = self.mujoco.mj_step

    def set(self, pos: np.ndarray, vel: np.ndarray) -> None:
        mj = self.mujoco
        mj.mj_resetData(self.model, self.data)
        self.data.qpos[:] = pos
        self.data.qvel[:] = vel
        mj.mj_forward(self.model, self.data)

    def step(self, action) -> None:
        """Clip the velocity to ±5 and the action to ±1, then one MuJoCo step (PointEnv.step's order).

        PointEnv clips the velocity through ``set_state``, whose extra ``mj_forward`` changes nothing
        that ``mj_step`` does not recompute; the test suite checks equality with PointEnv step by step.
        """
        d = self.data
        qv, ctrl = d.qvel, d.ctrl
        lim = VELOCITY_LIMIT
        qv[0] = min(max(qv[0], -lim), lim)
        qv[1] = min(max(qv[1], -lim), lim)
        ctrl[0] = min(max(float(action[0]), -1.0), 1.0)
        ctrl[1] = min(max(float(action[1]), -1.0), 1.0)
        self._mj_step(self.model, d)

    @property
    def pos(self) -> np.ndarray:
        return self.data.qpos.copy()

    @property
    def vel(self) -> np.ndarray:
        return self.data.qvel.copy()

    def obs(self) -> np.ndarray:
        return np.concatenate([self.data.qpos, self.data.qvel])


def d4rl_start(maze: Maze, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """D4RL's start distribution: a uniform free cell, U(±0.1) on its centre, velocity N(0, 0.1²)."""
    cell = maze.free_cells[int(rng.integers(len(maze.free_cells)))]
    pos = maze.centre(cell) + rng.uniform(-START_POS_NOISE, START_POS_NOISE, 2)
    vel = rng.normal(0.0, START_VEL_STD, 2)
    return pos, vel


def sparse_reward(pos: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """D4RL maze2d's sparse reward: 1 within 0.5 of the goal (``pos`` shaped ``[..., 2]``)."""
    return (np.linalg.norm(np.asarray(pos) - goal, axis=-1) <= GOAL_RADIUS).astype(np.float64)
