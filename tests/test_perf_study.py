"""The study projection's check against real records: one entry per fully recorded job."""

import json

from omarbench.perf.study import SEEDS, compare, job_seconds, study_runs


def test_each_study_job_is_projected_once():
    per_round = {(a, t): 0.5 for a, t, _, _ in study_runs()}
    evals = {t: (1.0, 2.0) for _, t, _, _ in study_runs()}
    jobs = job_seconds(per_round, evals, eval_every=100)
    assert len(jobs) == len(study_runs()) == 56
    # 2000 rounds at 0.5 s, 21 periodic evaluations of 1 s, one final of 2 s
    assert jobs["OMAR|spread|medium"] == 2000 * 0.5 + 21 * 1.0 + 2.0


def test_comparison_counts_only_jobs_with_every_seed(tmp_path):
    proj = tmp_path / "projection.json"
    proj.write_text(json.dumps({"jobs": {"OMAR|tag|expert": 100.0, "MA-CQL|tag|expert": 50.0}}))
    recs = tmp_path / "records"
    recs.mkdir()

    def record(algo, seed, wall, status="ok"):
        rec = {"algo": algo, "task": "tag", "level": "expert", "seed": seed, "status": status, "wall_time_s": wall}
        (recs / f"{algo}__tag__expert__seed{seed}.json").write_text(json.dumps(rec))

    for s in range(SEEDS):
        record("OMAR", s, 120.0)
    for s in range(SEEDS - 1):  # one seed missing: not a whole job yet
        record("MA-CQL", s, 40.0)
    (recs / ".hidden.ckpt").write_text("x")
    assert compare(proj, recs) == [("OMAR|tag|expert", 120.0, 100.0)]
    record("MA-CQL", SEEDS - 1, 40.0, status="failed")  # a failed run does not complete the job
    assert [k for k, _, _ in compare(proj, recs)] == ["OMAR|tag|expert"]


def test_comparison_skips_behaviour_records_and_later_machines(tmp_path):
    proj = tmp_path / "projection.json"
    proj.write_text(json.dumps({"jobs": {"OMAR|tag|expert": 100.0, "MA-CQL|tag|expert": 50.0}}))
    recs = tmp_path / "records"
    recs.mkdir()
    for algo, created in (("OMAR", "2026-12-04T07:00:00Z"), ("MA-CQL", "2026-12-04T19:30:00Z")):
        for s in range(SEEDS):
            rec = {"algo": algo, "task": "tag", "level": "expert", "seed": s, "status": "ok",
                   "wall_time_s": 90.0, "created": created}
            (recs / f"{algo}__tag__expert__seed{s}.json").write_text(json.dumps(rec))
    # the agent-count study's behaviour records carry no algorithm
    (recs / "behaviour__tag__expert__abc.json").write_text(json.dumps({"kind": "behaviour", "task": "tag"}))
    assert sorted(k for k, _, _ in compare(proj, recs)) == ["MA-CQL|tag|expert", "OMAR|tag|expert"]
    assert compare(proj, recs, until="2026-12-04T12:00") == [("OMAR|tag|expert", 90.0, 100.0)]
    assert compare(proj, recs, since="2026-12-04T12:00") == [("MA-CQL|tag|expert", 90.0, 50.0)]
