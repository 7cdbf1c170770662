"""The batched NumPy engine (backend ``numpy``) is the reference, only faster.

Parity: the same initial states (many with forced contacts, agents inside forests, fast velocities)
and the same random actions (some outside [-1, 1]) give the same positions, velocities, observations
and rewards as the mpe2 reference, within 1e-9, at every step. The paper flavor also replays the golden
trajectories of the authors' code. Then the driver's promises: determinism per seed, auto-reset that
keeps the final observation, fixed agents stepped from their batched policy, the reset distributions.
"""

import subprocess
import sys

import numpy as np
import pytest

from omarbench.errors import UsageError
from omarbench.tasks.envs import make_vec_env
from omarbench.tasks.mpe_ref import ReferenceEnv
from omarbench.tasks.numpy_engine import NumpyVecEnv, seeded_uniform
from omarbench.tasks.rollout import random_rollout
from omarbench.tasks.spec import parse_task_id

TOL = 1e-9

# (task id, episodes in the default suite); the slow suite runs 200 episodes per case (40 for the paper
# flavor with N = 20, whose reference reward is cubic in N and steps ~40 times a second)
PARITY = [
    ("spread-n1", 60), ("spread-n2", 60), ("spread", 60), ("spread-n5", 24), ("spread-n8", 8),
    ("spread-n10", 4), ("spread-n20", 1), ("tag", 60), ("world", 60),
]
PARITY_SLOW = {"spread-n20:paper": 40}
GOLDEN = {
    "spread_n1": "spread-n1", "spread_n2": "spread-n2", "spread_n3": "spread", "spread_n4": "spread-n4",
    "spread_n5": "spread-n5", "spread_n8": "spread-n8", "tag": "tag", "world": "world",
}


def initial_states(env, rng):
    """Start from the engine's own reset and make it hard: contacts, forests, fast and odd velocities."""
    env.reset()
    pos, vel = env.get_state()
    E, n_a = env.num_envs, env.task.n_agents
    kind = np.arange(E) % 3
    # kind 1: every agent overlapping its neighbours around one point
    centre = rng.uniform(-1, 1, (E, 1, 2))
    cluster = centre + rng.uniform(-0.12, 0.12, (E, n_a, 2))
    pos[kind == 1, :n_a] = cluster[kind == 1]
    # kind 2: each agent on top of a random landmark (obstacles, food, forests) or of another agent
    target = rng.integers(0, env.n_entities, (E, n_a))
    near = pos[np.arange(E)[:, None], target] + rng.uniform(-0.15, 0.15, (E, n_a, 2))
    pos[kind == 2, :n_a] = near[kind == 2]
    vel[:, :n_a] = rng.uniform(-1.6, 1.6, (E, n_a, 2))
    return pos, vel


def max_errors(task_id, episodes, seed=0):
    """Largest absolute differences engine vs reference over ``episodes`` episodes of 25 steps."""
    task = parse_task_id(task_id)
    rng = np.random.default_rng(seed)
    eng = make_vec_env(task, episodes, backend="numpy", seed=seed)
    ref = make_vec_env(task, episodes, backend="mpe2", seed=seed)
    ref.reset()
    pos, vel = initial_states(eng, rng)
    err = dict.fromkeys(("pos", "vel", "obs", "rew"), 0.0)

    def obs_err(a, b):
        assert [o.shape for o in a] == [o.shape for o in b]
        return max(float(np.abs(x - y).max()) for x, y in zip(a, b))

    err["obs"] = max(err["obs"], obs_err(eng.set_state(pos, vel), ref.set_state(pos, vel)))
    for _ in range(task.episode_length):
        actions = rng.uniform(-1.4, 1.4, (episodes, task.n_agents, 2))
        r_eng, r_ref = eng._step_all(actions), ref._step_all(actions)
        err["rew"] = max(err["rew"], float(np.abs(r_eng - r_ref).max()))
        err["obs"] = max(err["obs"], obs_err(eng._observe(), ref._observe()))
        (p_eng, v_eng), (p_ref, v_ref) = eng.get_state(), ref.get_state()
        err["pos"] = max(err["pos"], float(np.abs(p_eng - p_ref).max()))
        err["vel"] = max(err["vel"], float(np.abs(v_eng - v_ref).max()))
    return err


def assert_parity(task_id, episodes):
    err = max_errors(task_id, episodes)
    assert all(np.isfinite(v) and v <= TOL for v in err.values()), f"{task_id}: {err}"


@pytest.mark.parametrize("flavor", ["paper", "mpe2"])
@pytest.mark.parametrize("task_id,episodes", PARITY)
def test_engine_matches_reference(task_id, episodes, flavor):
    assert_parity(f"{task_id}:{flavor}", episodes)


@pytest.mark.slow
@pytest.mark.parametrize("flavor", ["paper", "mpe2"])
@pytest.mark.parametrize("task_id", [t for t, _ in PARITY])
def test_engine_matches_reference_200_episodes(task_id, flavor):
    case = f"{task_id}:{flavor}"
    assert_parity(case, PARITY_SLOW.get(case, 200))


def test_forced_starts_do_make_contacts_and_hide_agents():
    """The parity cases exercise contact forces, collisions, catches and the world's forests."""
    env = NumpyVecEnv(parse_task_id("world:mpe2"), 60)
    pos, _ = initial_states(env, np.random.default_rng(0))
    sizes = env.entity_sizes
    dist = np.linalg.norm(pos[:, :4, None] - pos[:, None, :], axis=-1)  # [E, agent, entity]
    touching = dist[:, :, :5] < sizes[:4, None] + sizes[None, :5]
    touching[:, np.arange(4), np.arange(4)] = False
    assert touching.any(axis=(1, 2)).sum() >= 15  # many envs start with bodies overlapping
    in_forest = (dist[:, :, 7:] < sizes[:4, None] + 0.3).any(axis=2)
    assert in_forest.any(axis=1).sum() >= 10 and (~in_forest).all(axis=1).sum() >= 10


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_engine_replays_golden(golden, case):
    task = parse_task_id(GOLDEN[case])
    eps = sorted({k.split("/")[1] for k in golden if k.startswith(case + "/")})
    g = {f: np.stack([golden[f"{case}/{ep}/{f}"] for ep in eps])
         for f in ("init_pos", "init_vel", "obs0", "actions", "obs", "rewards", "pos", "vel", "entity_sizes")}
    env = NumpyVecEnv(task, len(eps))
    np.testing.assert_array_equal(np.broadcast_to(env.entity_sizes, g["entity_sizes"].shape), g["entity_sizes"])
    env.reset()
    obs = env.set_state(g["init_pos"], g["init_vel"])
    np.testing.assert_allclose(np.concatenate(obs, axis=1), g["obs0"], rtol=0, atol=TOL)
    for t in range(task.episode_length):
        rew = env._step_all(g["actions"][:, t])
        pos, vel = env.get_state()
        np.testing.assert_allclose(pos, g["pos"][:, t], rtol=0, atol=TOL, err_msg=f"{case} t={t} pos")
        np.testing.assert_allclose(vel, g["vel"][:, t], rtol=0, atol=TOL, err_msg=f"{case} t={t} vel")
        np.testing.assert_allclose(np.concatenate(env._observe(), axis=1), g["obs"][:, t], rtol=0, atol=TOL,
                                   err_msg=f"{case} t={t} obs")
        np.testing.assert_allclose(rew, g["rewards"][:, t], rtol=0, atol=TOL, err_msg=f"{case} t={t} rew")


def rollout(env, steps, seed):
    rng = np.random.default_rng(seed)
    obs = [np.concatenate(env.reset(), axis=1)]
    rews = []
    for _ in range(steps):
        step = env.step(rng.uniform(-1, 1, (env.num_envs, len(env.task.learner_indices), 2)))
        obs.append(np.concatenate(step.next_obs, axis=1))
        obs.append(np.concatenate(step.obs, axis=1))
        rews.append(step.rewards)
    return np.stack(obs), np.stack(rews)


@pytest.mark.parametrize("task_id", ["spread-n4", "world:mpe2"])
def test_same_seed_same_trajectories(task_id):
    task = parse_task_id(task_id)
    a = rollout(make_vec_env(task, 16, seed=3), 60, seed=1)  # crosses two auto-resets
    b = rollout(make_vec_env(task, 16, seed=3), 60, seed=1)
    c = rollout(make_vec_env(task, 16, seed=4), 60, seed=1)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0][0], c[0][0])


def test_reset_state_is_a_function_of_the_episode_seed():
    task = parse_task_id("tag")
    small, large = NumpyVecEnv(task, 3, seed=10), NumpyVecEnv(task, 8, seed=7)
    small.reset()
    large.reset()  # copy e of `large` has seed 7 + e: copies 3..5 share seeds 10..12 with `small`
    np.testing.assert_array_equal(small.get_state()[0], large.get_state()[0][3:6])
    u = seeded_uniform(np.array([5, 5, 6]), 4)
    np.testing.assert_array_equal(u[0], u[1])
    assert not np.array_equal(u[0], u[2])


@pytest.mark.parametrize("task_id", ["spread-n8", "world:mpe2"])
def test_a_copy_in_a_batch_steps_as_it_would_alone(task_id):
    """Copy e of a batch seeded s is bit-identical to a lone environment seeded s + e.

    The prey is held still here: a trained prey is a network, whose float32 products may round
    differently for a batch of 6 rows than for 1, so with it the property is the engine's alone."""
    from omarbench.tasks.prey import StillPrey

    task = parse_task_id(task_id)
    E, n_l = 6, len(task.learner_indices)
    prey = StillPrey() if task.fixed_indices else None
    batch = make_vec_env(task, E, seed=0, fixed_policy=prey)
    alone = [make_vec_env(task, 1, seed=e, fixed_policy=prey) for e in range(E)]
    first = [batch.reset()] + [env.reset() for env in alone]
    for e in range(E):
        for o_batch, o_alone in zip(first[0], first[e + 1]):
            np.testing.assert_array_equal(o_batch[e], o_alone[0])
    rng = np.random.default_rng(0)
    for _ in range(task.episode_length):
        actions = rng.uniform(-1.3, 1.3, (E, n_l, 2))
        s = batch.step(actions)
        for e, env in enumerate(alone):
            s1 = env.step(actions[e : e + 1])
            np.testing.assert_array_equal(s.rewards[e], s1.rewards[0])
            for o_batch, o_alone in zip(s.next_obs, s1.next_obs):
                np.testing.assert_array_equal(o_batch[e], o_alone[0])


@pytest.mark.parametrize("task_id,agent_half,landmark_half", [
    ("spread", 1.0, 1.0), ("spread-n5", 2.0, 2.0), ("spread-n20", 2.0, 2.0), ("spread-n5:mpe2", 1.0, 1.0),
    ("tag", 1.0, 0.9), ("world:mpe2", 1.0, 0.9),
])
def test_reset_follows_the_reference_distributions(task_id, agent_half, landmark_half):
    task = parse_task_id(task_id)
    env = NumpyVecEnv(task, 4000, seed=0)
    env.reset()
    pos, vel = env.get_state()
    assert not vel.any()
    for part, half in ((pos[:, : task.n_agents], agent_half), (pos[:, task.n_agents:], landmark_half)):
        assert np.abs(part).max() <= half and np.abs(part).max() > 0.99 * half
        assert abs(part.mean()) < 0.02 * half
        assert part.var() == pytest.approx(half**2 / 3, rel=0.03)  # uniform on [-half, half]
    ref_pos = np.stack([ReferenceEnv(task, seed=s).get_state()[0] for s in range(200)])
    assert np.abs(ref_pos[:, : task.n_agents]).max() <= agent_half  # the reference draws the same ranges
    assert np.abs(ref_pos[:, task.n_agents:]).max() <= landmark_half


def test_auto_reset_keeps_the_final_observation():
    task = parse_task_id("world")
    env, twin = NumpyVecEnv(task, 6, seed=2), NumpyVecEnv(task, 6, seed=2)
    env.reset()
    rng = np.random.default_rng(0)
    for t in range(task.episode_length):
        before = env.get_state()
        learners = rng.uniform(-1, 1, (6, 3, 2))
        step = env.step(learners)
        assert step.truncated.all() == (t == task.episode_length - 1) and not step.terminated.any()
    # the final step's successor: the same state stepped with the same actions, no reset
    twin.reset()
    twin.set_state(*before)
    twin._step_all(step.actions)
    for got, want in zip(step.next_obs, twin._observe()):
        np.testing.assert_array_equal(got, want)
    # ...while obs is the first observation of each copy's next episode
    fresh = NumpyVecEnv(task, 6, seed=2)
    for got, want in zip(step.obs, fresh.reset(episode=1)):
        np.testing.assert_array_equal(got, want)
    assert (env.t == 0).all()
    assert not np.array_equal(step.obs[0], step.next_obs[0])


class SteeringPrey:
    """A non-trivial fixed policy: flee along the prey's own position, turned by its velocity."""

    name = "test-steering"
    digest = None

    def __init__(self):
        self.calls = []

    def __call__(self, obs):
        obs = np.asarray(obs)
        self.calls.append(obs.copy())
        return np.tanh(3 * obs[:, 2:4] + obs[:, 0:2][:, ::-1]) * 1.2  # some beyond [-1, 1]


@pytest.mark.parametrize("task_id", ["tag", "world:mpe2"])
def test_fixed_prey_acts_from_its_batched_policy(task_id):
    task = parse_task_id(task_id)
    eng_prey, ref_prey = SteeringPrey(), SteeringPrey()
    eng = make_vec_env(task, 12, backend="numpy", seed=5, fixed_policy=eng_prey)
    ref = make_vec_env(task, 12, backend="mpe2", seed=5, fixed_policy=ref_prey)
    eng.reset()
    ref.reset()
    pos, vel = initial_states(eng, np.random.default_rng(1))
    eng.set_state(pos, vel)
    ref.set_state(pos, vel)
    rng = np.random.default_rng(2)
    moved = False
    for _ in range(task.episode_length - 1):
        prey_obs = eng.obs[3].copy()
        learners = rng.uniform(-1, 1, (12, 3, 2))
        s_eng, s_ref = eng.step(learners), ref.step(learners)
        np.testing.assert_array_equal(eng_prey.calls[-1], prey_obs)  # the prey saw its own observation
        np.testing.assert_array_equal(s_eng.actions[:, 3], SteeringPrey()(prey_obs))
        np.testing.assert_array_equal(s_eng.actions[:, :3], learners)
        np.testing.assert_allclose(s_eng.actions, s_ref.actions, rtol=0, atol=TOL)
        np.testing.assert_allclose(s_eng.rewards, s_ref.rewards, rtol=0, atol=TOL)
        for a, b in zip(s_eng.next_obs, s_ref.next_obs):
            np.testing.assert_allclose(a, b, rtol=0, atol=TOL)
        moved |= bool(np.abs(s_eng.actions[:, 3]).max() > 0.5)
    assert moved and len(eng_prey.calls) == task.episode_length - 1


@pytest.mark.parametrize("backend", ["numpy", "mpe2"])
def test_agent_exactly_on_a_landmark_earns_the_capped_reward(backend):
    env = make_vec_env(parse_task_id("spread"), 1, backend=backend)
    env.reset()
    agents = [[-0.8, -0.8], [0.8, -0.8], [0.0, 0.8]]
    landmarks = [[-0.8, -0.8], [0.8, -0.3], [0.0, 0.0]]  # landmark 0 right under agent 0
    env.set_state(np.array([agents + landmarks]), np.zeros((1, 6, 2)))
    rew = env._step_all(np.zeros((1, 3, 2)))  # nobody moves, nobody touches
    np.testing.assert_allclose(rew, [[10 + 1 / 0.5 + 1 / 0.8] * 3], rtol=0, atol=TOL)


def test_state_shape_is_checked():
    env = NumpyVecEnv(parse_task_id("tag"), 2)
    with pytest.raises(ValueError, match="shaped"):
        env.set_state(np.zeros((2, 5, 2)), np.zeros((2, 5, 2)))


def test_rollout_backends_and_bad_backend():
    task = parse_task_id("tag")
    a = random_rollout(task, episodes=5, seed=1, backend="numpy")
    b = random_rollout(task, episodes=5, seed=1, backend="numpy")
    m = random_rollout(task, episodes=5, seed=1, backend="mpe2")
    assert a.returns.shape == m.returns.shape == (5,)
    np.testing.assert_array_equal(a.returns, b.returns)
    assert np.isfinite(m.returns).all()
    with pytest.raises(UsageError, match="unknown backend 'jax'; valid choices: numpy, mpe2"):
        random_rollout(task, episodes=2, backend="jax")


def test_cli_rollout_backend_option():
    def run(*args):
        return subprocess.run([sys.executable, "-m", "omarbench.cli", "tasks", "rollout", *args],
                              capture_output=True, text=True)

    ok = run("spread", "--episodes", "3", "--backend", "mpe2")
    assert ok.returncode == 0 and "reported return" in ok.stdout
    bad = run("spread", "--backend", "torch")
    assert bad.returncode == 2 and "unknown backend 'torch'" in bad.stderr
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
