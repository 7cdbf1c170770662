"""Multi-agent MuJoCo HalfCheetah (``halfcheetah-2x3``) behind the common :class:`VecEnv` interface.

The task is MaMuJoCo's (Gymnasium-Robotics ``mamujoco_v1``) ``parallel_env("HalfCheetah", "2x3",
agent_obsk=0, global_categories=())``, the OMAR authors' setting (PROTOCOL §7):

* two learners, ``agent_0`` driving the **back** leg (bthigh, bshin, bfoot: actuators 0-2) and ``agent_1``
  the **front** leg (fthigh, fshin, ffoot: actuators 3-5), in MaMuJoCo's order, which is also the order
  of the ``2x3`` partition of the original multiagent_mujoco package the authors ran;
* 6-D observations: the agent's own three joints' position and velocity (MaMuJoCo orders them by joint
  name: foot, shin, thigh, each ``qpos, qvel``); 3-D actions in [-1, 1];
* a 17-D global state (Gymnasium's HalfCheetah-v5 observation: ``qpos[1:]``, ``qvel``), ``state()``;
* one shared reward, ``forward velocity - 0.1 |a|²``; 1,000-step episodes ended by truncation only.

Two backends. ``mujoco`` (the default) builds the model through Gymnasium-Robotics once, then steps E
``mujoco.MjData`` with ``mujoco.mj_step`` in a plain loop: bit-for-bit the trajectories of the reference
environment (the test suite checks it), and the cheapest exact way here. ``mujoco.rollout`` steps
batches about 1.3x faster per CPU-second but restarts the constraint solver without its warm start on
every call, so its trajectories leave Gymnasium's after about a hundred steps (measured, see the
README); environment stepping is under a tenth of a behaviour run's cost anyway. ``mamujoco`` steps E
MaMuJoCo environments one after the other (the reference).

Reset of episode k of copy e uses seed ``seed + e + k * E`` (the :class:`VecEnv` stream); a seed s draws
the initial state exactly as ``env.reset(seed=s)`` does: ``init_qpos + U(-0.1, 0.1)``,
``init_qvel + 0.1 N(0, 1)`` from ``numpy.random.default_rng(s)``.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Any

import numpy as np

from omarbench.errors import UsageError, bad_choice
from omarbench.tasks.spec import Task
from omarbench.tasks.vec import VecEnv

MUJOCO_BACKENDS: tuple[str, ...] = ("mujoco", "mamujoco")
EXTRA_HINT = 'pip install -e ".[mujoco]"'
SCENARIOS = {"halfcheetah": "HalfCheetah"}
JOINTS = {("halfcheetah", "2x3"): (("bthigh", "bshin", "bfoot"), ("fthigh", "fshin", "ffoot"))}


def require_mujoco() -> tuple[Any, Any]:
    """The ``mujoco`` and ``gymnasium_robotics.mamujoco_v1`` modules, or a one-line error naming the extra."""
    try:
        import mujoco
        # Gymnasium-Robotics prints a notice about unrelated environments on import
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            from gymnasium_robotics import mamujoco_v1
    except ImportError as exc:
        raise UsageError(f"MuJoCo tasks need the optional packages mujoco and gymnasium-robotics "
                         f"({exc.name or exc} is missing); install them with: {EXTRA_HINT}") from None
    return mujoco, mamujoco_v1


def resolve_backend(task: Task, backend: str) -> str:
    """The canonical backend of a MuJoCo task: ``numpy`` (every command's default) means ``mujoco``."""
    if backend == "numpy":
        return "mujoco"
    if backend not in MUJOCO_BACKENDS:
        raise bad_choice(f"backend for {task.id}", backend, MUJOCO_BACKENDS)
    return backend


def reference_env(task: Task) -> Any:
    """One MaMuJoCo parallel environment of the task, in the authors' observation setting."""
    mujoco, mamujoco_v1 = require_mujoco()
    # MuJoCo 4 prints a deprecation notice about a compiler attribute of the cheetah's XML: keep it quiet
    previous = mujoco.get_mju_user_warning()
    mujoco.set_mju_user_warning(lambda message: None)
    try:
        return mamujoco_v1.parallel_env(SCENARIOS[task.name], task.layout, agent_obsk=0, global_categories=())
    finally:
        mujoco.set_mju_user_warning(previous)


class MujocoVecEnv(VecEnv):
    """E copies of a MaMuJoCo task stepped with ``mujoco.mj_step`` on the model Gymnasium-Robotics builds."""

    backend = "mujoco"

    def __init__(self, task: Task, num_envs: int, seed: int = 0):
        super().__init__(task, num_envs, seed, fixed_policy=None)
        self._mujoco, _ = require_mujoco()
        ref = reference_env(task)
        base = ref.single_agent_env.unwrapped
        self.model = base.model
        self.frame_skip = int(base.frame_skip)
        self.dt = float(base.dt)
        self.init_qpos = np.array(base.init_qpos, dtype=np.float64)
        self.init_qvel = np.array(base.init_qvel, dtype=np.float64)
        self.noise_scale = float(base._reset_noise_scale)
        self.forward_weight = float(base._forward_reward_weight)
        self.ctrl_weight = float(base._ctrl_cost_weight)
        self.skip_qpos = int(base.observation_structure["skipped_qpos"])
        # MaMuJoCo's own maps: state index of each observation entry, actuator of each action entry
        self.obs_index = [np.asarray(ref.observation_factorization[a]) for a in ref.possible_agents]
        self.act_index = np.array([[node.act_ids for node in part] for part in ref.agent_action_partitions])
        ref.close()
        self.datas = [self._mujoco.MjData(self.model) for _ in range(num_envs)]
        self.qpos = np.zeros((num_envs, self.model.nq))
        self.qvel = np.zeros((num_envs, self.model.nv))

    def _reset_envs(self, idx: np.ndarray, seeds: np.ndarray) -> None:
        mj = self._mujoco
        for i, s in zip(idx, seeds):
            rng = np.random.default_rng(int(s))  # the generator gymnasium's reset(seed=s) makes
            qpos = self.init_qpos + rng.uniform(-self.noise_scale, self.noise_scale, self.model.nq)
            qvel = self.init_qvel + self.noise_scale * rng.standard_normal(self.model.nv)
            d = self.datas[i]
            mj.mj_resetData(self.model, d)
            d.qpos[:] = qpos
            d.qvel[:] = qvel
            mj.mj_forward(self.model, d)
            self.qpos[i], self.qvel[i] = d.qpos, d.qvel

    def _step_all(self, actions: np.ndarray) -> np.ndarray:
        ctrl = np.zeros((self.num_envs, self.model.nu))
        ctrl[:, self.act_index.ravel()] = actions.reshape(self.num_envs, -1)
        x_before = self.qpos[:, 0].copy()
        step = self._mujoco.mj_step
        for i, d in enumerate(self.datas):
            d.ctrl[:] = ctrl[i]
            step(self.model, d, nstep=self.frame_skip)
            self.qpos[i], self.qvel[i] = d.qpos, d.qvel
        reward = (self.forward_weight * (self.qpos[:, 0] - x_before) / self.dt
                  - self.ctrl_weight * np.square(ctrl).sum(1))
        return np.repeat(reward[:, None], self.task.n_agents, axis=1)

    def state(self) -> np.ndarray:
        """The global state [E, 17]: ``qpos[1:]`` and ``qvel`` (MaMuJoCo's ``env.state()``)."""
        return np.concatenate([self.qpos[:, self.skip_qpos:], self.qvel], axis=1)

    def _observe(self) -> list[np.ndarray]:
        s = self.state()
        return [s[:, ix] for ix in self.obs_index]

    def get_state(self) -> tuple[np.ndarray, np.ndarray]:
        """Joint positions and velocities ``qpos`` [E, 9], ``qvel`` [E, 9] (root x included)."""
        return self.qpos.copy(), self.qvel.copy()

    def set_state(self, qpos: np.ndarray, qvel: np.ndarray) -> list[np.ndarray]:
        qpos, qvel = np.asarray(qpos, np.float64), np.asarray(qvel, np.float64)
        if qpos.shape != self.qpos.shape or qvel.shape != self.qvel.shape:
            raise ValueError(f"state must be shaped {self.qpos.shape} and {self.qvel.shape} for {self.task.id}")
        for d, p, v in zip(self.datas, qpos, qvel):
            d.qpos[:], d.qvel[:] = p, v
            self._mujoco.mj_forward(self.model, d)
        self.qpos[:], self.qvel[:] = qpos, qvel
        self._obs = self._observe()
        return self._obs


class MamujocoVecEnv(VecEnv):
    """E MaMuJoCo environments stepped one after the other (backend ``mamujoco``, the reference)."""

    backend = "mamujoco"

    def __init__(self, task: Task, num_envs: int, seed: int = 0):
        super().__init__(task, num_envs, seed, fixed_policy=None)
        self.envs = [reference_env(task) for _ in range(num_envs)]
        self.names = list(self.envs[0].possible_agents)
        self._last: list[dict[str, np.ndarray]] = [{} for _ in range(num_envs)]

    def _reset_envs(self, idx: np.ndarray, seeds: np.ndarray) -> None:
        for i, s in zip(idx, seeds):
            self._last[i], _ = self.envs[i].reset(seed=int(s))

    def _step_all(self, actions: np.ndarray) -> np.ndarray:
        rewards = np.zeros((self.num_envs, self.task.n_agents))
        for i, env in enumerate(self.envs):
            obs, rew, *_ = env.step({n: actions[i, k] for k, n in enumerate(self.names)})
            self._last[i] = obs
            rewards[i] = [rew[n] for n in self.names]
        return rewards

    def _observe(self) -> list[np.ndarray]:
        return [np.stack([o[n] for o in self._last]) for n in self.names]

    def state(self) -> np.ndarray:
        return np.stack([env.state() for env in self.envs])


def make_mujoco_vec_env(task: Task, num_envs: int, backend: str = "mujoco", seed: int = 0) -> VecEnv:
    """E environments of a MuJoCo task (``mujoco`` batched, or ``mamujoco`` reference)."""
    backend = resolve_backend(task, backend)
    require_mujoco()
    cls = MujocoVecEnv if backend == "mujoco" else MamujocoVecEnv
    return cls(task, num_envs, seed)

