"""The prey selection rule, the reference predator teams and the shipped prey's provenance."""

import hashlib
import json

import numpy as np
import pytest

from omarbench.collect.prey_training import TOLERANCE, score_candidate, select_candidate, selection_targets
from omarbench.tasks.prey import StillPrey, TrainedPrey, fixed_policy_for, prey_asset_path
from omarbench.tasks.reference_policies import chase_actions, policy_rollout, uniform_actions
from omarbench.tasks.spec import parse_task_id

PREY_TASKS = ("tag", "world", "tag:mpe2", "world:mpe2")
SHIPPED = [t for t in PREY_TASKS if prey_asset_path(parse_task_id(t)).exists()]


def _candidate(steps, random, chase, random_catches=0.3, chase_catches=5.0):
    return {"segment": steps // 4000, "steps": steps, "scores": {
        "random": {"mean": random}, "chase": {"mean": chase},
        "random_catches": random_catches, "chase_catches": chase_catches}}


def test_rule_picks_the_eligible_candidate_whose_chase_is_closest_to_the_paper_expert():
    targets = selection_targets(parse_task_id("tag"))
    assert targets["random"] == -4.1 and targets["chase"] == 185.6
    assert targets["tolerance"] == pytest.approx(TOLERANCE * (185.6 + 4.1))
    cands = [_candidate(4000, -5.0, 230.0), _candidate(8000, -4.5, 120.0), _candidate(12000, -10.0, 186.0)]
    assert select_candidate(cands, targets)["steps"] == 4000  # 12k is closest on chase but not eligible
    cands.append(_candidate(16000, -3.0, 190.0))
    assert select_candidate(cands, targets)["steps"] == 16000
    far = [_candidate(4000, -12.0, 180.0), _candidate(8000, -9.0, 20.0)]
    assert select_candidate(far, targets)["steps"] == 8000  # none eligible: closest random reference
    with pytest.raises(ValueError):
        select_candidate([], targets)


def test_catch_targets_select_on_catches():
    targets = {"quantity": "catches", "random": 0.3, "chase": 20.0, "tolerance": 0.03}
    cands = [_candidate(4000, -5, 0, 0.31, 12.0), _candidate(8000, -5, 0, 0.29, 19.0),
             _candidate(12000, -5, 0, 0.5, 20.0)]
    assert select_candidate(cands, targets)["steps"] == 8000


def test_reference_teams_are_deterministic_and_the_chase_catches_a_still_prey():
    task = parse_task_id("tag")
    still = StillPrey()
    r1, c1 = policy_rollout(task, 30, uniform_actions, seed=5, key=7, fixed_policy=still, envs=16)
    r2, c2 = policy_rollout(task, 30, uniform_actions, seed=5, key=7, fixed_policy=still, envs=16)
    r3, _ = policy_rollout(task, 30, uniform_actions, seed=5, key=8, fixed_policy=still, envs=16)
    np.testing.assert_array_equal(r1, r2)
    np.testing.assert_array_equal(c1, c2)
    assert r1.shape == (30, 25, 4) and not np.array_equal(r1, r3)
    _, chase = policy_rollout(task, 30, chase_actions, seed=5, key=8, fixed_policy=still, envs=16)
    assert chase.mean() > 5 * max(c1.mean(), 0.1)
    with pytest.raises(ValueError, match="no prey"):
        policy_rollout(parse_task_id("spread"), 2, chase_actions, seed=0, key=8)


def test_the_paper_flavor_prey_is_shipped():
    assert {"tag", "world"} <= set(SHIPPED)


@pytest.mark.parametrize("tid", SHIPPED)
def test_shipped_prey_matches_its_provenance(tid):
    task = parse_task_id(tid)
    path = prey_asset_path(task)
    prov = json.loads(path.with_suffix(".json").read_text())
    assert hashlib.sha256(path.read_bytes()).hexdigest() == prov["sha256"]
    prey = fixed_policy_for(task)
    assert isinstance(prey, TrainedPrey) and prey.digest == prov["sha256"]
    assert prov["seed"] in prov["seeds"] and prov["rule"] and prov["candidates"]
    chosen = select_candidate(prov["candidates"], prov["targets"])
    assert chosen == prov["chosen"] and chosen["steps"] == prov["steps"]
    if task.flavor == "mpe2":  # matched to the paper flavor's shipped prey
        paper = json.loads(prey_asset_path(parse_task_id(task.name)).with_suffix(".json").read_text())
        assert prov["targets"]["random"] == paper["chosen"]["scores"]["random_catches"]


@pytest.mark.slow
@pytest.mark.parametrize("tid", PREY_TASKS)
def test_shipped_prey_scores_as_recorded(tid):
    task = parse_task_id(tid)
    prov = json.loads(prey_asset_path(task).with_suffix(".json").read_text())
    scores = score_candidate(task, fixed_policy_for(task).actor, episodes=prov["predator_teams"]["episodes"])
    for team in ("random", "chase"):
        assert scores[team]["mean"] == pytest.approx(prov["chosen"]["scores"][team]["mean"], abs=1e-6)
        assert scores[f"{team}_catches"] == pytest.approx(prov["chosen"]["scores"][f"{team}_catches"])


def test_prey_training_writes_a_prey_its_provenance_describes(tmp_path):
    """The whole `omarbench prey train` path on a tiny budget: co-training, scoring, selection, the files."""
    from omarbench.collect.matd3 import MATD3Config
    from omarbench.collect.prey_training import train_prey
    from omarbench.collect.run import RunConfig

    config = RunConfig(total_steps=1_200, num_envs=8, segment_episodes=2, warmup_steps=400, eval_episodes=4,
                       matd3=MATD3Config(batch_size=64, hidden=16))
    out = tmp_path / "prey" / "tag.pt"
    path = train_prey("tag", root=tmp_path / "data", config=config, out=out, episodes=12, log=lambda s: None)
    assert path == out
    prov = json.loads(out.with_suffix(".json").read_text())
    assert hashlib.sha256(out.read_bytes()).hexdigest() == prov["sha256"]
    assert "a checkpoint every 400 steps" in prov["how"]  # 2 rounds of 8 episodes of 25 steps
    assert [c["steps"] for c in prov["candidates"]][:1] == [0] and len(prov["candidates"]) >= 2
    assert prov["chosen"] == select_candidate(prov["candidates"], prov["targets"])
    assert prov["predator_teams"]["episodes"] == 12 and prov["config"]["total_steps"] == 1_200
    prey = TrainedPrey(out)  # what a task using this asset would load
    assert prey.digest == prov["sha256"] and prey.provenance == prov
    task = parse_task_id("tag")
    obs = np.zeros((3, task.agents[task.fixed_indices[0]].obs_dim))
    act = prey(obs)
    assert act.shape == (3, 2) and np.all(np.abs(act) <= 1.0)


def test_prey_training_can_write_a_named_checkpoint_instead_of_the_rule_s_choice(tmp_path):
    """`omarbench prey train --pick STEPS`: that checkpoint's prey, the provenance saying so; a step with no
    checkpoint is a one-line error naming the valid ones."""
    from omarbench.collect.matd3 import MATD3Config
    from omarbench.collect.prey_training import train_prey
    from omarbench.collect.run import RunConfig
    from omarbench.errors import UsageError

    config = RunConfig(total_steps=1_200, num_envs=8, segment_episodes=2, warmup_steps=400, eval_episodes=4,
                       matd3=MATD3Config(batch_size=64, hidden=16))
    out = tmp_path / "prey" / "tag.pt"
    train_prey("tag", root=tmp_path / "data", config=config, out=out, episodes=12, log=lambda s: None, pick=800)
    prov = json.loads(out.with_suffix(".json").read_text())
    assert prov["picked"] == 800 and prov["chosen"]["steps"] == 800 and prov["steps"] == 800
    assert prov["rule_choice"] == select_candidate(prov["candidates"], prov["targets"])
    assert TrainedPrey(out).digest == prov["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    with pytest.raises(UsageError, match=r"--pick 500: no checkpoint at that step; choose from: 0, 800, 1200"):
        train_prey("tag", root=tmp_path / "data", config=config, out=tmp_path / "x.pt", episodes=12,
                   log=lambda s: None, pick=500)
    assert not (tmp_path / "x.pt").exists()
