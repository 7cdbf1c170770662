"""The report: the paper's layout with bold best entries and statistical ties, the aggregate statistics,
the paper side by side with its claims, and byte-identical output when re-run on the same records."""

import math
import sys

import numpy as np
import pytest
from scipy import stats as sst
from test_results import make_record

from omarbench import results as rs
from omarbench.errors import OmarbenchError, UsageError
from omarbench.report import build_report, stats
from omarbench.report.compare import evaluate_claims, omar_best, paper
from omarbench.report.tables import build_score_table, format_cell, score_csv, score_latex, score_markdown

# (level, task) -> algo -> per-seed normalised scores, made by hand
HAND = {
    ("medium", "spread"): {
        "OMAR": [50.0, 52.0, 54.0],        # best mean 52.0, std 1.63
        "MA-CQL": [47.0, 51.0, 53.0],      # mean 50.3: within noise of the best -> bold (tie)
        "MA-ICQ": [10.0, 11.0, 12.0],      # far below -> plain
        "MA-TD3+BC": [30.0],               # one seed: cannot be tested -> plain, printed without ±
    },
    ("random", "tag"): {
        "OMAR": [5.0, 6.0],
        "MA-CQL": [20.0, 21.0, 22.0],      # the best here: OMAR loses this cell
        "MA-ICQ": [1.0, 2.0],
    },
}


def write_hand(results_dir, extra=()):
    for (level, task), algos in HAND.items():
        for algo, values in algos.items():
            for seed, v in enumerate(values):
                curve = [{"round": r, "return": v * r / 20, "normalised": v * r / 20} for r in (10, 20)]
                rs.write_record(results_dir, make_record(algo, task, level, seed, v, curve=curve))
    for rec in extra:
        rs.write_record(results_dir, rec)


def hand_table():
    rows = [{"algo": a, "task": t, "level": lv, "seed": s, "status": "ok", "score": v}
            for (lv, t), algos in HAND.items() for a, vals in algos.items() for s, v in enumerate(vals)]
    rows.append({"algo": "BC", "task": "spread", "level": "medium", "seed": 0, "status": "failed",
                 "score": math.nan})
    import pandas as pd

    return build_score_table(pd.DataFrame(rows))


def test_cells_are_mean_std_and_seed_count_with_bold_best_and_ties():
    table = hand_table()
    assert table.levels == ["random", "medium"] and table.tasks == ["spread", "tag"]
    assert table.algos == ["MA-ICQ", "MA-TD3+BC", "MA-CQL", "OMAR", "BC"]
    omar, cql, icq, td3 = (table.cell("medium", "spread", a) for a in ("OMAR", "MA-CQL", "MA-ICQ", "MA-TD3+BC"))
    assert format_cell(omar) == "52.0 ± 1.6 (3)"
    assert format_cell(td3) == "30.0 (1)"
    assert format_cell(table.cell("medium", "spread", "BC")) == "failed (1)"
    assert format_cell(table.cell("random", "tag", "MA-TD3+BC")) == "—"
    assert omar.bold and cql.bold and not icq.bold and not td3.bold
    # the tie rule is Welch's test at p >= 0.05 against the best
    p = sst.ttest_ind(cql.values, omar.values, equal_var=False).pvalue
    assert p >= 0.05 and math.isclose(cql.p_vs_best, p)
    assert sst.ttest_ind(icq.values, omar.values, equal_var=False).pvalue < 0.05
    tag = {a: table.cell("random", "tag", a) for a in ("OMAR", "MA-CQL", "MA-ICQ")}
    assert tag["MA-CQL"].bold and not tag["OMAR"].bold and not tag["MA-ICQ"].bold

    md = score_markdown(table)
    row = "| Medium | spread | 11.0 ± 0.8 (3) | 30.0 (1) | **50.3 ± 2.5 (3)** | **52.0 ± 1.6 (3)** | failed (1) |"
    assert row in md
    assert md.index("| Random | tag") < md.index("| Medium | spread")  # the paper's level order
    tex = score_latex(table, ["a note"])
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    assert r"\textbf{52.0 $\pm$ 1.6 (3)}" in tex and r"11.0 $\pm$ 0.8 (3)" in tex and "% a note" in tex
    csv = score_csv(table)
    assert "medium,spread,MA-CQL,3,50.3333,2.4944,1," in csv
    assert "medium,spread,MA-ICQ,3,11.0000,0.8165,0," in csv


def test_iqm_poi_and_bootstrap():
    assert stats.iqm(np.arange(1.0, 9.0)) == 4.5  # mean of 3, 4, 5, 6
    groups = [[1.0, 2.0, 3.0, 4.0], [10.0, 11.0, 12.0]]
    est = stats.iqm_ci(groups)
    assert est.lo <= est.value <= est.hi
    assert stats.iqm_ci(groups) == est  # fixed seed: the same interval every time
    assert stats.probability_of_improvement([([5.0, 6.0], [1.0, 2.0])]).value == 1.0
    assert stats.probability_of_improvement([([1.0, 2.0], [1.0, 2.0])]).value == 0.5
    # averaged over cells: 1 in one cell, 0 in the other
    assert stats.probability_of_improvement([([5.0], [1.0]), ([1.0], [5.0])]).value == 0.5
    imp = stats.improvement_pct([24.0, 24.0], 12.0)
    assert imp.value == 100.0 and imp.lo == imp.hi == 100.0
    assert math.isnan(stats.improvement_pct([24.0], -3.0).value)  # % of a negative score: undefined


def test_claims_are_computed_on_the_papers_numbers_and_ours():
    # on the paper's own table OMAR has the best mean in all 12 cells
    v = omar_best(paper())
    assert (v.holds, v.of) == (12, 12)
    claims = {c.claim: c for c in evaluate_claims(hand_table())}
    best = claims["OMAR has the highest mean score in every task–level cell"]
    assert best.paper == "holds (12/12)"
    assert best.ours == "partly (1/2)"  # OMAR loses random/tag to MA-CQL


def test_report_files_and_content(tmp_path):
    write_hand(tmp_path / "results")
    summary = build_report(tmp_path / "results", tmp_path / "lb")
    names = sorted(p.name for p in summary.files)
    assert names == sorted(["leaderboard.md", "scores.csv", "scores.tex", "aggregates.csv", "aggregates.tex",
                            "paper_comparison.csv", "paper_comparison.tex", "claims.csv", "curves.png",
                            "curves.pdf"])
    md = (tmp_path / "lb" / "leaderboard.md").read_text()
    assert "**52.0 ± 1.6 (3)**" in md and "Welch's t-test" in md
    assert "stored in each dataset" in md and "final policy" in md
    assert "Agarwal" in md and "ICML 2022" in md
    assert "IQM" in md and "P(OMAR > X)" in md
    comp = (tmp_path / "lb" / "paper_comparison.csv").read_text().splitlines()
    assert "medium,spread,OMAR,52.0000,1.6330,3,1,47.9000,18.9000,1,4.1000" in comp
    assert (tmp_path / "lb" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "lb" / "curves.pdf").read_bytes()[:5] == b"%PDF-"


def test_report_is_byte_identical_when_rerun(tmp_path):
    write_hand(tmp_path / "results")
    a = build_report(tmp_path / "results", tmp_path / "a")
    b = build_report(tmp_path / "results", tmp_path / "b")
    assert [p.name for p in a.files] == [p.name for p in b.files]
    for pa, pb in zip(a.files, b.files):
        assert pa.read_bytes() == pb.read_bytes(), pa.name


def test_paper_references_renormalise_the_final_returns(tmp_path):
    # spread: the paper's expert return 516.8 is 100, its random 159.8 is 0; our refs would say otherwise
    recs = [make_record("OMAR", "spread", "expert", s, score=1.0, ret=516.8) for s in range(2)]
    recs += [make_record("MA-CQL", "spread", "expert", s, score=2.0, ret=159.8) for s in range(2)]
    write_hand(tmp_path / "results", recs)
    build_report(tmp_path / "results", tmp_path / "lb", references="paper")
    scores = (tmp_path / "lb" / "scores.csv").read_text()
    assert "expert,spread,OMAR,2,100.0000,0.0000,1," in scores
    assert "expert,spread,MA-CQL,2,0.0000,0.0000,0," in scores
    assert "the paper's reference returns" in (tmp_path / "lb" / "leaderboard.md").read_text()


def test_newest_finished_record_of_a_run_wins_and_failures_are_listed(tmp_path):
    old = make_record("OMAR", "spread", "expert", 0, 10.0, created="2026-01-01T00:00:00Z", version="a")
    new = make_record("OMAR", "spread", "expert", 0, 90.0, created="2026-02-01T00:00:00Z", version="b")
    failed_later = make_record("OMAR", "spread", "expert", 0, status="failed", reason="killed",
                               created="2026-03-01T00:00:00Z", version="c")
    only_failed = make_record("MA-CQL", "spread", "expert", 0, status="failed", reason="NaN in critic loss")
    write_hand(tmp_path / "results", [old, new, failed_later, only_failed])
    summary = build_report(tmp_path / "results", tmp_path / "lb")
    scores = (tmp_path / "lb" / "scores.csv").read_text()
    assert "expert,spread,OMAR,1,90.0000," in scores
    md = (tmp_path / "lb" / "leaderboard.md").read_text()
    assert "NaN in critic loss" in md and "failed (1)" in md
    assert any("superseded" in n for n in summary.notes)


def test_a_run_superseded_by_one_with_other_settings_is_named_in_the_notes(tmp_path):
    """Newest wins whatever its settings, so a --set run in the same results directory hides the default
    one: the report says which settings differed (and says nothing of settings when only the code did)."""
    base = make_record("OMAR", "spread", "expert", 0, 40.0, config={"rounds": 10, "sample_precision": "fp32"},
                       created="2026-01-01T00:00:00Z")
    other = make_record("OMAR", "spread", "expert", 0, 45.0, config={"rounds": 10, "sample_precision": "bf16"},
                        created="2026-02-01T00:00:00Z")
    write_hand(tmp_path / "a", [base, other])
    notes = build_report(tmp_path / "a", tmp_path / "lb-a").notes
    assert any("1 of them had other settings (sample_precision)" in n for n in notes)
    rerun = make_record("OMAR", "spread", "expert", 0, 41.0, config={"rounds": 10, "sample_precision": "fp32"},
                        created="2026-02-01T00:00:00Z", version="0.1.0+newer")
    write_hand(tmp_path / "b", [base, rerun])
    notes = build_report(tmp_path / "b", tmp_path / "lb-b").notes
    assert any("superseded" in n for n in notes) and not any("other settings" in n for n in notes)


def test_scaling_section_from_runs_and_behaviour_records(tmp_path):
    res = tmp_path / "results"
    for n, (cql, omar) in {1: (24.0, 30.0), 2: (18.0, 27.0), 3: (15.0, 30.0)}.items():
        task = "spread" if n == 3 else f"spread-n{n}"
        for s in range(2):
            rs.write_record(res, make_record("MA-CQL", task, "medium-replay", s, cql))
            rs.write_record(res, make_record("OMAR", task, "medium-replay", s, omar))
        rs.write_behaviour_record(res, {"task": task, "level": "medium-replay", "return_mean": 12.0,
                                        "normalised": 12.0, "source": "dataset mean episode return",
                                        "dataset": {"id": f"{task}-medium-replay", "digest": "d" * 64}})
    build_report(res, tmp_path / "lb", scaling=True)
    rows = (tmp_path / "lb" / "scaling.csv").read_text().splitlines()
    assert rows[1].startswith("1,spread-n1,12.0000,12.0000,24.0000,2,30.0000,2,100.0000,100.0000,100.0000,25.0000")
    assert rows[3].startswith("3,spread,12.0000,12.0000,15.0000,2,30.0000,2,25.0000,")
    md = (tmp_path / "lb" / "leaderboard.md").read_text()
    assert "## Agent-count study" in md and "dataset's mean episode return" in md
    assert "| OMAR improves on MA-CQL at every agent count (Fig. 2) | claimed (figure) | holds (3/3) |" in md
    assert "spread-n1" not in (tmp_path / "lb" / "scores.csv").read_text()  # kept out of the main table
    assert (tmp_path / "lb" / "scaling.png").exists() and (tmp_path / "lb" / "scaling.pdf").exists()


def test_selection_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(OmarbenchError, match="no run records"):
        build_report(tmp_path / "empty", tmp_path / "lb")
    write_hand(tmp_path / "mixed", [make_record("OMAR", "spread", "expert", 0, preset="quick")])
    with pytest.raises(UsageError, match="presets paper, quick; choose one with --preset"):
        build_report(tmp_path / "mixed", tmp_path / "lb")
    build_report(tmp_path / "mixed", tmp_path / "lb", preset="quick")
    assert "expert,spread,OMAR,1,50.0000" in (tmp_path / "lb" / "scores.csv").read_text()
    with pytest.raises(UsageError, match="unknown references 'theirs'"):
        build_report(tmp_path / "mixed", tmp_path / "lb", references="theirs")


def run_main(monkeypatch, capsys, *args):
    from omarbench import cli

    monkeypatch.setattr(sys, "argv", ["omarbench", *args])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    return exc.value.code, capsys.readouterr()


def test_report_cli(tmp_path, monkeypatch, capsys):
    write_hand(tmp_path / "results")
    (tmp_path / "results" / "junk.json").write_text("{not json")
    code, out = run_main(monkeypatch, capsys, "report", "--results", str(tmp_path / "results"), "--out",
                         str(tmp_path / "lb"))
    assert code == 2 and "junk.json" in out.err and "--skip-bad" in out.err and "Traceback" not in out.err
    assert len(out.err.strip().splitlines()) == 1 and not (tmp_path / "lb").exists()
    code, out = run_main(monkeypatch, capsys, "report", "--results", str(tmp_path / "results"), "--out",
                         str(tmp_path / "lb"), "--skip-bad")
    assert code in (0, None), out.err
    assert "written to" in out.out and "junk.json" in out.out  # skipped on request, and named
    assert "junk.json" in (tmp_path / "lb" / "leaderboard.md").read_text()
    for args, fragment in ((("--references", "theirs"), "unknown references 'theirs'"),
                           (("--results", str(tmp_path / "nowhere")), "does not exist"),
                           (("--tasks", "pong"), "unknown task 'pong'")):
        code, out = run_main(monkeypatch, capsys, "report", "--results", str(tmp_path / "results"), *args)
        assert code == 2 and fragment in out.err and len(out.err.strip().splitlines()) == 1


def test_scaling_improvements_are_on_returns_not_normalised_scores(tmp_path):
    """Normalised scores of spread-nN use our own references, whose range can be tiny; the improvement
    percentages of the agent-count study are on episode returns."""
    res = tmp_path / "results"
    for s in range(2):  # normalised 50 vs 100 (a 100% gain) but returns 200 vs 220 (a 10% gain)
        rs.write_record(res, make_record("MA-CQL", "spread-n2", "medium-replay", s, 50.0, ret=200.0))
        rs.write_record(res, make_record("OMAR", "spread-n2", "medium-replay", s, 100.0, ret=220.0))
    rs.write_behaviour_record(res, {"task": "spread-n2", "level": "medium-replay", "return_mean": 160.0,
                                    "normalised": 10.0, "source": "dataset mean episode return",
                                    "dataset": {"id": "spread-n2-medium-replay", "digest": "d" * 64}})
    build_report(res, tmp_path / "lb", scaling=True)
    header, row = (tmp_path / "lb" / "scaling.csv").read_text().splitlines()[:2]
    got = dict(zip(header.split(","), row.split(",")))
    assert float(got["omar_vs_cql"]) == pytest.approx(10.0)
    assert float(got["cql_vs_behaviour"]) == pytest.approx(25.0)
    assert float(got["cql_mean"]) == 50.0 and float(got["cql_return"]) == 200.0


def test_scaling_only_results_give_the_scaling_section_alone(tmp_path):
    res = tmp_path / "results"
    for n in (1, 2):
        for s in range(2):
            rs.write_record(res, make_record("MA-CQL", f"spread-n{n}", "medium-replay", s, 20.0 + s))
            rs.write_record(res, make_record("OMAR", f"spread-n{n}", "medium-replay", s, 30.0 + s))
    with pytest.raises(OmarbenchError, match="no runs to tabulate"):
        build_report(res, tmp_path / "lb")  # without --scaling there is nothing for the main table
    summary = build_report(res, tmp_path / "lb", scaling=True)
    assert sorted(p.name for p in summary.files) == ["claims.csv", "leaderboard.md", "scaling.csv", "scaling.pdf",
                                                     "scaling.png"]
    md = (tmp_path / "lb" / "leaderboard.md").read_text()
    assert "## Normalised scores" not in md
    assert "| 2 | spread-n2 | — | 20.5 (2) | 30.5 (2) | — / 20.5 / 30.5 | — |" in md


@pytest.mark.parametrize("change, why", [
    (lambda r: r["final"].update({"return": "abc"}), "final.return 'abc' is not a finite number"),
    (lambda r: r["final"].update({"return": float("nan")}), "final.return nan is not a finite number"),
    (lambda r: r.update({"final": None}), "status 'ok' but final is None"),
    (lambda r: r.update({"seed": "one"}), "seed 'one' is not a non-negative integer"),
    (lambda r: r.update({"curve": [{"round": 0, "return": "x"}]}), "return 'x' is not a number"),
    (lambda r: r.pop("key"), "missing field(s) key"),
])
def test_a_malformed_record_stops_the_report_naming_the_file(tmp_path, change, why):
    import json

    write_hand(tmp_path / "results")
    victim = sorted((tmp_path / "results").glob("*.json"))[0]
    rec = json.loads(victim.read_text())
    change(rec)
    victim.write_text(json.dumps(rec))
    with pytest.raises(OmarbenchError, match="malformed record") as exc:
        build_report(tmp_path / "results", tmp_path / "lb")
    assert victim.name in str(exc.value) and why in str(exc.value)
    assert not (tmp_path / "lb").exists()
    summary = build_report(tmp_path / "results", tmp_path / "lb", skip_bad=True)
    assert any(victim.name in n and why in n for n in summary.notes)
    assert victim.name in (tmp_path / "lb" / "leaderboard.md").read_text()


def test_a_preset_absent_from_the_results_says_which_is_there(tmp_path):
    write_hand(tmp_path / "results")
    expected = r"no records of preset 'quick' in .*\(it holds paper\); use --preset paper"
    with pytest.raises(UsageError, match=expected):
        build_report(tmp_path / "results", tmp_path / "lb", preset="quick")


def test_an_output_folder_under_a_file_is_refused_before_anything(tmp_path):
    write_hand(tmp_path / "results")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(UsageError, match="is a file, not a directory"):
        build_report(tmp_path / "results", tmp_path / "afile" / "lb")
