"""`omarbench report --format marl-eval`: the JSON is read by the real marl-eval package, whose aggregates
(IQM, probability of improvement) match the report's own on the same runs; `report --best` adds the best
evaluation next to the final score."""

import json

import numpy as np
import pytest
from peers import peer
from typer.testing import CliRunner

from omarbench import results as rs
from omarbench.cli import app
from omarbench.report import stats

ALGOS = ("OMAR", "MA-CQL")
TASKS = ("spread", "tag")
SEEDS = (0, 1, 2)
ROUNDS = (0, 50, 100)


def _final(algo, task, seed):
    base = {"OMAR": 60.0, "MA-CQL": 40.0}[algo] + {"spread": 0.0, "tag": 15.0}[task]
    return base + 7.0 * seed - 3.0 * (seed == 2)


def _record(algo, task, seed, status="ok"):
    refs = {"random": 10.0, "expert": 110.0, "source": "dataset"}
    final = _final(algo, task, seed)
    curve = [{"round": r, "return": 10.0 + final * (0.4 + r / 100), "normalised": final * (0.4 + r / 100)}
             for r in ROUNDS]
    rec = {
        "schema": 1, "algo": algo, "task": task, "level": "expert", "seed": seed, "preset": "quick",
        "config": {"rounds": 100}, "dataset": {"id": f"{task}-expert", "digest": "d" * 64, "n_transitions": 1000},
        "reference_returns": refs, "code_version": "0.1.0+src.test", "device": "cpu", "status": status,
        "reason": None if status == "ok" else "diverged", "curve": curve if status == "ok" else [],
        "final": {"return": 10.0 + final, "return_std": 1.0, "episodes": 100, "normalised": final}
        if status == "ok" else None,
        "wall_time_s": 1.0, "created": "2026-01-01T00:00:00Z",
    }
    rec["key"] = rs.key_of(rec)
    return rec


@pytest.fixture
def results(tmp_path):
    d = tmp_path / "results"
    for a in ALGOS:
        for t in TASKS:
            for s in SEEDS:
                rs.write_record(d, _record(a, t, s))
    return d


def _export(results, out):
    res = CliRunner().invoke(app, ["report", "--results", str(results), "--out", str(out),
                                   "--format", "marl-eval"])
    assert res.exit_code == 0, res.output
    return json.loads((out / "marl-eval.json").read_text())


def test_layout_env_task_algo_run_step(results, tmp_path):
    raw = _export(results, tmp_path / "out")
    assert list(raw) == ["mpe"]
    assert sorted(raw["mpe"]) == ["spread-expert", "tag-expert"]
    run = raw["mpe"]["tag-expert"]["OMAR"]["run_2"]
    assert list(run) == ["step_0", "step_1", "absolute_metrics"]  # round 0 (untrained) left out
    assert [run[f"step_{i}"]["step_count"] for i in range(2)] == list(ROUNDS[1:])
    assert run["absolute_metrics"]["normalised_score"] == [pytest.approx(_final("OMAR", "tag", 2))]
    assert run["absolute_metrics"]["return"] == [pytest.approx(10.0 + _final("OMAR", "tag", 2))]


def test_failed_runs_are_left_out_with_a_note(results, tmp_path):
    rec = _record("OMAR", "spread", 3, status="failed")
    rs.write_record(results, rec)
    res = CliRunner().invoke(app, ["report", "--results", str(results), "--out", str(tmp_path), "--format",
                                   "marl-eval"])
    assert res.exit_code == 0, res.output
    assert "1 failed run(s) left out" in res.output
    assert "run_3" not in json.loads((tmp_path / "marl-eval.json").read_text())["mpe"]["spread-expert"]["OMAR"]


def test_real_marl_eval_reads_it_and_its_aggregates_match_ours(results, tmp_path):
    peer("marl_eval", "marl-eval")
    from marl_eval.utils.data_processing_utils import (
        create_matrices_for_rliable,
        data_process_pipeline,
        get_and_aggregate_data_single_task,
    )
    from rliable import metrics

    raw = _export(results, tmp_path / "out")
    processed = data_process_pipeline(raw_data=raw, metrics_to_normalize=["return"])
    assert "extra" in processed, "marl-eval rejected the layout"
    assert processed["extra"]["number_of_runs"] == len(SEEDS)
    assert processed["extra"]["evaluation_interval"]["mpe"] == 50
    matrices, curves = create_matrices_for_rliable(processed, "mpe", ["return"])
    ours = {a: np.array([[_final(a, t, s) for t in TASKS] for s in SEEDS]) for a in ALGOS}
    for a in ALGOS:  # marl-eval lower-cases names; rows runs, columns tasks
        np.testing.assert_allclose(matrices["mean_normalised_score"][a.lower()], ours[a])
        assert curves["mean_normalised_score"][a.lower()].shape == (len(SEEDS), len(TASKS), len(ROUNDS) - 1)

    # marl-eval computes its aggregates with rliable's metrics on these matrices (its bootstrap CIs go
    # through rliable's get_interval_estimates, which does not run against arch >= 8 and pandas >= 3)
    for a in ALGOS:
        m = matrices["mean_normalised_score"][a.lower()]
        assert metrics.aggregate_iqm(m) == pytest.approx(stats.iqm(ours[a].ravel()))
        assert metrics.aggregate_mean(m) == pytest.approx(ours[a].mean())
    poi = metrics.probability_of_improvement(matrices["mean_normalised_score"]["omar"],
                                             matrices["mean_normalised_score"]["ma-cql"])
    pairs = [(ours["OMAR"][:, j], ours["MA-CQL"][:, j]) for j in range(len(TASKS))]
    assert poi == pytest.approx(stats.probability_of_improvement(pairs, reps=10).value)
    per_step = get_and_aggregate_data_single_task(processed, "normalised_score", ["return"], "tag-expert", "mpe")
    assert per_step["omar"]["mean"] == pytest.approx(
        [np.mean([_final("OMAR", "tag", s) * (0.4 + r / 100) for s in SEEDS]) for r in ROUNDS[1:]])


def test_curve_points_keep_evenly_spaced_evaluations_ending_with_the_last(results, tmp_path):
    res = CliRunner().invoke(app, ["report", "--results", str(results), "--out", str(tmp_path), "--format",
                                   "marl-eval", "--curve-points", "1", "--tasks", "tag"])
    assert res.exit_code == 0, res.output
    raw = json.loads((tmp_path / "marl-eval.json").read_text())
    assert list(raw["mpe"]) == ["tag-expert"]
    run = raw["mpe"]["tag-expert"]["MA-CQL"]["run_0"]
    assert list(run) == ["step_0", "absolute_metrics"] and run["step_0"]["step_count"] == ROUNDS[-1]
    res = CliRunner().invoke(app, ["report", "--results", str(results), "--out", str(tmp_path), "--format",
                                   "marl-eval", "--curve-points", "3"])
    assert res.exit_code != 0 and "has only 2 evaluations after round 0" in str(res.exception)


def test_bad_format_is_one_line(results, tmp_path):
    res = CliRunner().invoke(app, ["report", "--results", str(results), "--out", str(tmp_path), "--format", "xls"])
    assert res.exit_code != 0
    assert "unknown format 'xls'" in str(res.exception) and "marl-eval" in str(res.exception)


def test_best_is_the_max_over_the_curve_next_to_the_final(results, tmp_path):
    res = CliRunner().invoke(app, ["report", "--results", str(results), "--out", str(tmp_path), "--best"])
    assert res.exit_code == 0, res.output
    md = (tmp_path / "leaderboard.md").read_text()
    assert "## Final and best evaluation" in md
    rows = [r for r in (tmp_path / "best_scores.csv").read_text().splitlines()[1:]]
    by = {tuple(r.split(",")[:3]): r.split(",") for r in rows}
    omar_tag = by[("expert", "tag", "OMAR")]
    finals = [_final("OMAR", "tag", s) for s in SEEDS]
    assert float(omar_tag[4]) == pytest.approx(np.mean(finals), abs=1e-4)  # final mean
    assert float(omar_tag[6]) == pytest.approx(1.4 * np.mean(finals), abs=1e-4)  # best = max of curve (round 100)
    assert float(omar_tag[9]) == 100.0
    # without --best nothing changes: no best file, no section
    res = CliRunner().invoke(app, ["report", "--results", str(results), "--out", str(tmp_path / "plain")])
    assert not (tmp_path / "plain" / "best_scores.csv").exists()
    assert "Final and best evaluation" not in (tmp_path / "plain" / "leaderboard.md").read_text()


@pytest.mark.slow  # 280 records through marl-eval's pure-Python pipeline
def test_committed_paper_records_give_the_reports_aggregates_in_marl_eval(tmp_path):
    """The committed paper-scale records through marl-eval: its matrices give the committed aggregates."""
    import csv
    from pathlib import Path

    peer("marl_eval", "marl-eval")
    from marl_eval.utils.data_processing_utils import create_matrices_for_rliable, data_process_pipeline
    from rliable import metrics

    board = Path(__file__).resolve().parent.parent / "leaderboards" / "paper"
    if not (board / "records").is_dir():
        pytest.skip("leaderboards/paper is not committed")
    res = CliRunner().invoke(app, ["report", "--results", str(board / "records"), "--out", str(tmp_path),
                                   "--preset", "paper", "--format", "marl-eval", "--curve-points", "100"])
    assert res.exit_code == 0, res.output
    raw = json.loads((tmp_path / "marl-eval.json").read_text())
    assert len(raw["mpe"]) == 12  # the main table's tasks × levels; the agent-count study is left out
    processed = data_process_pipeline(raw_data=raw, metrics_to_normalize=["return"])
    matrices, curves = create_matrices_for_rliable(processed, "mpe", ["return"])
    scores = matrices["mean_normalised_score"]
    assert curves["mean_normalised_score"]["omar"].shape == (5, 12, 100)
    committed = {r["algo"]: r for r in csv.DictReader((board / "aggregates.csv").open())}
    for algo, row in committed.items():
        m = scores[algo.lower()]
        assert m.shape == (5, 12)
        assert metrics.aggregate_iqm(m) == pytest.approx(float(row["iqm"]), abs=1e-4)
        assert metrics.aggregate_mean(m) == pytest.approx(float(row["mean"]), abs=1e-4)
        if algo != "OMAR":
            assert metrics.probability_of_improvement(scores["omar"], m) == pytest.approx(
                float(row["p_omar_better"]), abs=1e-4)
