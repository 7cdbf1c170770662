"""The mpe2 flavor is stock mpe2: same resets, observations and rewards as mpe2.simple_*_v3."""

import numpy as np
import pytest
from mpe2 import simple_spread_v3, simple_tag_v3, simple_world_comm_v3

from omarbench.tasks.mpe_ref import ReferenceEnv, to_mpe2_action
from omarbench.tasks.spec import parse_task_id

STOCK = {
    "spread:mpe2": lambda: simple_spread_v3.parallel_env(N=3, local_ratio=0.5, continuous_actions=True),
    "spread-n5:mpe2": lambda: simple_spread_v3.parallel_env(N=5, local_ratio=0.5, continuous_actions=True),
    "tag:mpe2": lambda: simple_tag_v3.parallel_env(num_good=1, num_adversaries=3, num_obstacles=2,
                                                  continuous_actions=True),
    "world:mpe2": lambda: simple_world_comm_v3.parallel_env(num_good=1, num_adversaries=3, num_obstacles=1,
                                                           num_food=2, num_forests=2, continuous_actions=True),
}


def stock_action(space, a2):
    a5 = to_mpe2_action(a2)
    extra = space.shape[0] - 5  # the world_comm leader also "says" something: silence
    return np.concatenate([a5, np.zeros(extra, np.float32)]) if extra else a5


@pytest.mark.parametrize("task_id", sorted(STOCK))
def test_mpe2_flavor_matches_stock(task_id):
    task = parse_task_id(task_id)
    stock = STOCK[task_id]()
    ours = ReferenceEnv(task)
    rng = np.random.default_rng(0)
    for seed in range(6):
        stock_obs, _ = stock.reset(seed=seed)
        names = list(stock.agents)
        our_obs = ours.reset(seed=seed)
        assert [o.shape[0] for o in our_obs] == list(task.obs_dims)
        if seed % 2:  # force contacts: start every agent overlapping near the origin, in both worlds
            pos, vel = ours.get_state()
            pos[: task.n_agents] = rng.uniform(-0.05, 0.05, (task.n_agents, 2))
            our_obs = ours.set_state(pos, vel)
            for e, p in zip(stock.unwrapped.world.entities, pos):
                e.state.p_pos = p.copy()
            stock_obs = {n: stock.unwrapped.observe(n) for n in names}
        for t in range(task.episode_length):
            for n, o in zip(names, our_obs):
                np.testing.assert_array_equal(o.astype(np.float32), stock_obs[n], err_msg=f"{n} t={t}")
            actions = rng.uniform(-1.2, 1.2, (task.n_agents, 2))
            stock_obs, stock_rew, *_ = stock.step(
                {n: stock_action(stock.action_space(n), a) for n, a in zip(names, actions)})
            our_obs, our_rew = ours.step(actions)
            np.testing.assert_allclose(our_rew, [stock_rew[n] for n in names], rtol=0, atol=1e-12)
