"""Task ids, specs and their agreement with the reference environments."""

import numpy as np
import pytest

from omarbench.errors import UsageError
from omarbench.tasks.mpe_ref import ReferenceEnv
from omarbench.tasks.prey import StillPrey, fixed_policy_for
from omarbench.tasks.spec import FLAVORS, Task, parse_task_id


@pytest.mark.parametrize("text,tid,n,flavor", [
    ("spread", "spread", 3, "paper"),
    ("spread-n5", "spread-n5", 5, "paper"),
    ("spread-n3", "spread", 3, "paper"),
    ("SPREAD-N20:mpe2", "spread-n20:mpe2", 20, "mpe2"),
    ("tag", "tag", 4, "paper"),
    ("world:mpe2", "world:mpe2", 4, "mpe2"),
])
def test_ids_parse_to_canonical_tasks(text, tid, n, flavor):
    task = parse_task_id(text)
    assert (task.id, task.n_agents, task.flavor) == (tid, n, flavor)
    assert parse_task_id(task.id) == task
    assert Task.from_dict(task.to_dict()) == task


def test_flavor_option_and_suffix():
    assert parse_task_id("tag", "mpe2").flavor == "mpe2"
    assert parse_task_id("tag:mpe2", "mpe2").flavor == "mpe2"
    with pytest.raises(UsageError, match="says flavor"):
        parse_task_id("tag:mpe2", "paper")


@pytest.mark.parametrize("text,fragment", [
    ("foo", "valid choices: spread, spread-nN, tag, world"),
    ("spread-n0", "valid: 1..20"),
    ("spread-n21", "valid: 1..20"),
    ("tag-n4", "fixed team"),
    ("spread:gym", "valid choices: paper, mpe2"),
])
def test_bad_ids_name_the_valid_choices(text, fragment):
    with pytest.raises(UsageError, match=fragment) as err:
        parse_task_id(text)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize("text", ["spread-n1", "spread", "spread-n10", "spread-n20", "tag", "world"])
def test_spec_dims_match_reference_env(text, flavor):
    task = parse_task_id(text, flavor)
    obs = ReferenceEnv(task, seed=0).reset(0)
    assert tuple(o.shape[0] for o in obs) == task.obs_dims
    _, rew = ReferenceEnv(task, seed=0).step(np.zeros((task.n_agents, 2)))
    assert rew.shape == (task.n_agents,)


def test_roles_and_return_rule():
    spread, tag = parse_task_id("spread"), parse_task_id("tag")
    assert spread.learner_indices == (0, 1, 2) and spread.fixed_indices == ()
    assert tag.learner_indices == (0, 1, 2) and tag.fixed_indices == (3,)
    rewards = np.arange(25 * 4, dtype=float).reshape(25, 4)
    assert tag.reported_return(rewards) == rewards[:, 0].sum()
    assert spread.reported_return(rewards[:, :3]) == pytest.approx(rewards[:, :3].mean(1).sum())


def test_reset_is_seeded():
    task = parse_task_id("world")
    a, b = ReferenceEnv(task), ReferenceEnv(task)
    np.testing.assert_array_equal(a.reset(7)[0], b.reset(7)[0])
    assert not np.array_equal(a.reset(7)[0], b.reset(8)[0])


def test_spread_reset_range_grows_with_agents():
    small = ReferenceEnv(parse_task_id("spread"))
    large = ReferenceEnv(parse_task_id("spread-n12"))
    p_small = np.concatenate([small.reset(s) and small.get_state()[0] for s in range(50)])
    p_large = np.concatenate([large.reset(s) and large.get_state()[0] for s in range(50)])
    assert np.abs(p_small).max() <= 1 and 1.5 < np.abs(p_large).max() <= 2


def test_fixed_policy_slot_holds_the_shipped_prey_or_a_named_placeholder():
    import json

    from omarbench.tasks.prey import prey_asset_path

    assert fixed_policy_for(parse_task_id("spread")) is None
    for tid in ("tag", "world", "tag:mpe2", "world:mpe2"):
        task = parse_task_id(tid)
        prey = fixed_policy_for(task)
        if task.flavor == "mpe2" and not prey_asset_path(task).exists():
            assert isinstance(prey, StillPrey)  # not shipped: the named placeholder
            continue
        provenance = json.loads(prey_asset_path(task).with_suffix(".json").read_text())
        assert prey.digest == provenance["sha256"] and prey.name.startswith("trained-prey-")
        obs = np.random.default_rng(0).normal(size=(64, task.agents[3].obs_dim))
        acts = prey(obs)
        assert acts.shape == (64, 2) and np.all(np.abs(acts) <= 1)
        np.testing.assert_array_equal(acts, prey(obs))  # deterministic
    still = StillPrey()  # the fallback of a task whose prey is not shipped
    assert "placeholder" in still.name
    np.testing.assert_array_equal(still(np.ones((5, 14))), np.zeros((5, 2)))
