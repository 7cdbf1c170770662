"""End to end on a tiny budget: datasets on disk → ``omarbench eval`` with the real trainer → a second
sweep skips every run (the sweep and the trainer agree on run keys) → ``omarbench report``."""

import numpy as np
import pytest

from omarbench import results as rs
from omarbench.grid import sweep

TINY = {"rounds": 4, "eval_every": 2, "eval_episodes": 2, "final_episodes": 4, "batch_size": 32}


def make_dataset(root, task_id, level, episodes=40, seed=0):
    """A small dataset with the task's shapes (random transitions; enough to train a few rounds on)."""
    from omarbench.data import DatasetWriter, dataset_id, dataset_path
    from omarbench.tasks.spec import parse_task_id

    task = parse_task_id(task_id)
    rng = np.random.default_rng(seed)
    t = task.episode_length
    obs = [rng.standard_normal((episodes, t + 1, a.obs_dim)) for a in task.agents]
    actions = [rng.uniform(-1, 1, (episodes, t, a.act_dim)) for a in task.agents]
    rewards = rng.standard_normal((episodes, t, task.n_agents))
    terminals = np.zeros((episodes, t), bool)
    truncations = np.zeros((episodes, t), bool)
    truncations[:, -1] = True
    refs = {"random": {"mean": -10.0, "std": 1.0, "episodes": 10},
            "expert": {"mean": 10.0, "std": 1.0, "episodes": 10}}
    w = DatasetWriter.create(dataset_path(dataset_id(task, level), root), task, level,
                             {"reference_returns": refs}, durable=False)
    w.append_episodes([o[:, :-1] for o in obs], actions, rewards, [o[:, 1:] for o in obs], terminals, truncations)
    return w.finalize()


@pytest.mark.slow
def test_eval_then_report_with_the_real_trainer(tmp_path):
    pytest.importorskip("omarbench.offline.train", reason="the offline trainer is not in this build")
    from omarbench.data import preset_root

    root = tmp_path / "data"
    quick_root = preset_root(root, "quick")  # where the quick preset keeps its datasets and results
    for task in ("spread", "tag"):
        make_dataset(quick_root, task, "medium")
    spec = sweep.SweepSpec(algos=("MA-CQL", "OMAR"), tasks=("spread", "tag"), levels=("medium",), seeds=(0, 1),
                           root=str(root), preset="quick", overrides=TINY)
    out = sweep.run_sweep(spec, jobs=2, collect=False, progress=False)
    assert out.exit_code == 0 and out.ok == 8, out.failed
    again = sweep.run_sweep(spec, jobs=2, collect=False, progress=False)
    assert again.skipped == 8 and again.ok == 0

    df = rs.load_records(quick_root / "results")
    assert len(df) == 8 and (df["status"] == "ok").all() and df["normalised"].notna().all()
    # each algorithm its own, and tag's runs their prey's
    assert all(df["code_version"] == [rs.code_version(a, t) for a, t in zip(df["algo"], df["task"])])
    assert df["code_version"].nunique() == 4

    from omarbench.report import build_report

    summary = build_report(quick_root / "results", tmp_path / "lb")
    assert (tmp_path / "lb" / "curves.png").exists()
    scores = (tmp_path / "lb" / "scores.csv").read_text()
    assert "medium,spread,OMAR,2," in scores and "medium,tag,MA-CQL,2," in scores
    assert summary.preset == "quick"
