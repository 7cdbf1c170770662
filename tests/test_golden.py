"""The paper flavor replays the trajectories recorded from the authors' own MPE code."""

import numpy as np
import pytest

from omarbench.tasks.mpe_ref import ReferenceEnv
from omarbench.tasks.spec import parse_task_id

CASES = {
    "spread_n1": "spread-n1",
    "spread_n2": "spread-n2",
    "spread_n3": "spread",
    "spread_n4": "spread-n4",
    "spread_n5": "spread-n5",
    "spread_n8": "spread-n8",
    "tag": "tag",
    "world": "world",
}
TOL = 1e-9


def episodes(golden, case):
    eps = sorted({k.split("/")[1] for k in golden if k.startswith(case + "/")})
    assert len(eps) == 8
    return eps


@pytest.mark.parametrize("case", sorted(CASES))
def test_paper_flavor_replays_golden(golden, case):
    task = parse_task_id(CASES[case])
    env = ReferenceEnv(task)
    for ep in episodes(golden, case):
        g = {f: golden[f"{case}/{ep}/{f}"] for f in ("init_pos", "init_vel", "obs0", "obs_dims", "actions",
                                                    "obs", "rewards", "pos", "vel", "entity_sizes")}
        assert tuple(g["obs_dims"]) == task.obs_dims
        np.testing.assert_array_equal(env.entity_sizes, g["entity_sizes"])
        obs = env.set_state(g["init_pos"], g["init_vel"])
        np.testing.assert_allclose(np.concatenate(obs), g["obs0"], rtol=0, atol=TOL)
        for t in range(25):
            obs, rew = env.step(g["actions"][t])
            pos, vel = env.get_state()
            np.testing.assert_allclose(pos, g["pos"][t], rtol=0, atol=TOL, err_msg=f"{case} {ep} t={t} pos")
            np.testing.assert_allclose(vel, g["vel"][t], rtol=0, atol=TOL, err_msg=f"{case} {ep} t={t} vel")
            np.testing.assert_allclose(np.concatenate(obs), g["obs"][t], rtol=0, atol=TOL,
                                       err_msg=f"{case} {ep} t={t} obs")
            np.testing.assert_allclose(rew, g["rewards"][t], rtol=0, atol=TOL, err_msg=f"{case} {ep} t={t} rew")
