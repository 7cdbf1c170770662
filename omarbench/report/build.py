"""Build the report from a results directory alone: tables, aggregates, the paper comparison, plots.

:func:`build_report` reads the run records, keeps one record per (algo, task, level, seed) (the newest
finished one), scores each run by its final policy's normalised score (references: the datasets' own
by default, or the paper's), and writes into ``out_dir``:

    leaderboard.md                   everything, readable on a forge
    scores.{csv,tex}                 the main table (rows level × task, columns algorithms)
    aggregates.{csv,tex}             IQM / mean with stratified-bootstrap CIs, P(OMAR > baseline)
    paper_comparison.{csv,tex}       ours next to the paper's, per cell
    claims.csv                       the paper's claims, evaluated on its numbers and on ours
    curves.{png,pdf}                 learning curves (if the records hold curves)
    scaling.{csv,png,pdf}            the agent-count study (with ``scaling=True``)

The same records always give byte-identical files: no time stamps, fixed orders and bootstrap seeds,
figure metadata stripped.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from omarbench import results as rs
from omarbench.errors import OmarbenchError, UsageError, bad_choice
from omarbench.io import atomic_write_bytes
from omarbench.report import compare, plots, stats
from omarbench.report.paper import PAPER_CITATION, PAPER_TABLE_TASKS, normalise_with_paper
from omarbench.report.scaling import scaling_claims, scaling_rows, scaling_section
from omarbench.report.tables import (
    LEVEL_LABELS,
    ScoreTable,
    build_score_table,
    csv_text,
    fnum,
    latex_plain,
    latex_tabular,
    markdown_table,
    order_tasks,
    score_csv,
    score_latex,
    score_markdown,
)
from omarbench.vocab import LEVELS, check_preset

REFERENCES = ("ours", "paper", "d4rl")  # d4rl: the maze2d tasks only
RLIABLE_CITATION = (
    "Agarwal, Schwarzer, Castro, Courville, Bellemare. Deep Reinforcement Learning at the Edge of the "
    "Statistical Precipice. NeurIPS 2021"
)


@dataclass
class ReportSummary:
    """What :func:`build_report` did: files written and notes worth printing."""

    out_dir: Path
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    n_records: int = 0
    preset: str | None = None


# ----------------------------------------------------------------------------------------- selection


def choose_preset(df: pd.DataFrame, preset: str | None, where: str = "these results") -> str | None:
    from omarbench.vocab import PRESETS

    present = sorted(p for p in df["preset"].dropna().unique())
    if preset is not None:
        if preset in PRESETS and preset not in present:
            hint = f"; use --preset {present[0]}" if len(present) == 1 else \
                f"; choose one of {', '.join(present)}" if present else ""
            held = ", ".join(present) or "none"
            raise UsageError(f"no records of preset {preset!r} in {where} (it holds {held}){hint}")
        if preset not in present:
            raise bad_choice("preset", preset, present or ["(none in these results)"])
        return preset
    if len(present) > 1:
        raise UsageError(f"the results hold runs of presets {', '.join(present)}; choose one with --preset")
    return present[0] if present else None


def latest_per_run(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """One record per (algo, task, level, seed): the newest ``ok`` one, else the newest failure."""
    if df.empty:
        return df, 0
    d = df.assign(_ok=(df["status"] == "ok").astype(int), _created=df["created"].fillna(""))
    d = d.sort_values(["algo", "task", "level", "seed", "_ok", "_created", "file"], kind="stable")
    kept = d.groupby(["algo", "task", "level", "seed"], sort=True).tail(1)
    kept = kept.drop(columns=["_ok", "_created"]).sort_values(["algo", "task", "level", "seed"])
    return kept.reset_index(drop=True), len(df) - len(kept)


def superseded_settings(records: pd.DataFrame, kept: pd.DataFrame) -> tuple[int, list[str]]:
    """How many superseded records were trained with other settings than the record kept for their run,
    and the config keys that differ (a ``--set`` run in the same results directory hides the default)."""
    if records.empty or "config" not in records:
        return 0, []
    cols = ["algo", "task", "level", "seed"]
    kept_cfg = {tuple(r[c] for c in cols): (r["file"], r["config"]) for _, r in kept.iterrows()}
    count, keys = 0, set()
    for _, r in records.iterrows():
        file, cfg = kept_cfg.get(tuple(r[c] for c in cols), (None, None))
        if file is None or r["file"] == file or r["config"] == cfg:
            continue
        count += 1
        a, b = json.loads(r["config"] or "{}"), json.loads(cfg or "{}")
        keys |= {k for k in set(a) | set(b) if a.get(k) != b.get(k)}
    return count, sorted(keys)


def add_scores(df: pd.DataFrame, references: str, value: str = "final_return", norm: str = "normalised"):
    """Column ``score``: the stored normalised score (ours) or the return normalised with the paper's."""
    if references == "ours":
        return df.assign(score=df[norm].astype(float))
    scores = [float(normalise_with_paper(t, v)) for t, v in zip(df["task"], df[value].astype(float))]
    return df.assign(score=np.asarray(scores, float))


def is_scaling_task(task: str) -> bool:
    """spread with a non-default team (spread-nN): part of the agent-count study, not the main table."""
    from omarbench.tasks.spec import SPREAD_DEFAULT_AGENTS, parse_task_id

    try:
        t = parse_task_id(task)
    except OmarbenchError:
        return False
    return t.name == "spread" and t.n_agents != SPREAD_DEFAULT_AGENTS


# ------------------------------------------------------------------------------------------ sections


def _paper_refs_text(tasks: Sequence[str]) -> str:
    """The paper's expert/random references of ``tasks`` (those that have them), e.g. ``tag 185.6/−4.1``."""
    from omarbench.data.paper_refs import PAPER_REFERENCE_RETURNS

    def num(x: float) -> str:
        return str(float(x)).replace("-", "−")

    return ", ".join(f"{t} {num(r['expert'])}/{num(r['random'])}" for t in tasks
                     if (r := PAPER_REFERENCE_RETURNS.get(t)) is not None)


def _table_names(tasks: Sequence[str]) -> str:
    """``MPE table``, ``HalfCheetah table`` or both: the paper's tables that hold ``tasks``."""
    from omarbench.report.paper import PAPER_TABLE_TITLES, tables_of

    found = [PAPER_TABLE_TITLES[n] for n in tables_of(tasks)]
    return " and ".join(found) + (" tables" if len(found) > 1 else " table")


def _main_footnotes(table: ScoreTable, references: str, n_eval: str) -> list[str]:
    refs = ("the random and expert returns stored in each dataset (measured by omarbench when it collected)"
            if references == "ours" else "the paper's reference returns (docs/protocol.md §3: "
            f"{_paper_refs_text(table.tasks)} for expert/random)")
    notes = [
        "Cells: normalised score 100 × (S − S_random) / (S_expert − S_random) of the final policy "
        f"({n_eval}), mean ± std over seeds (std with ddof = 0), seed count in parentheses.",
        f"References: {refs}.",
        "Bold: the highest mean of the row and every entry not significantly below it (Welch's t-test, "
        "two-sided, p ≥ 0.05, scipy.stats.ttest_ind with equal_var=False); an entry with fewer than 2 seeds "
        "cannot be tested and is bold only if its mean equals the best.",
    ]
    if table.any_failed:
        notes.append("†: some seeds of this cell failed (see Failures); the statistics use the finished seeds.")
    return notes


def _eval_episodes(df: pd.DataFrame) -> str:
    eps = sorted({int(e) for e in pd.to_numeric(df["final_episodes"], errors="coerce").dropna()})
    if not eps:
        return "evaluation episodes not recorded"
    return f"{eps[0]} evaluation episodes per seed" if len(eps) == 1 else f"{eps[0]}–{eps[-1]} episodes per seed"


def aggregate_rows(table: ScoreTable) -> list[dict[str, object]]:
    """Per algorithm over the table's task × level cells: mean and IQM with 95% stratified-bootstrap CIs,
    and the probability that OMAR beats it (cells where both have runs)."""
    rows = []
    for algo in table.algos:
        cells = [c for (_, _, a), c in sorted(table.cells.items()) if a == algo and c.n]
        if not cells:
            continue
        groups = [c.values for c in cells]
        row = {"algo": algo, "cells": len(cells), "runs": sum(len(g) for g in groups),
               "mean": stats.mean_ci(groups), "iqm": stats.iqm_ci(groups), "poi": stats.NAN_ESTIMATE}
        if algo != "OMAR":
            pairs = []
            for (lv, t, a), c in sorted(table.cells.items()):
                o = table.cell(lv, t, "OMAR")
                if a == algo and c.n and o is not None and o.n:
                    pairs.append((o.values, c.values))
            row["poi"] = stats.probability_of_improvement(pairs)
        rows.append(row)
    return rows


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def numbered(notes: Sequence[str]) -> str:
    return "".join(f"{i + 1}. {n}\n" for i, n in enumerate(notes))


def _main_sections(main: pd.DataFrame, table: ScoreTable, references: str, md: list[str],
                   files: dict[str, bytes]) -> list[compare.Claim]:
    """The main table, failures, aggregates and the paper side by side; returns the paper's claims."""
    n_eval = _eval_episodes(main)
    foot = _main_footnotes(table, references, n_eval)
    md += ["## Normalised scores", score_markdown(table), numbered(foot)]
    files["scores.csv"] = score_csv(table).encode()
    files["scores.tex"] = score_latex(table, foot).encode()

    failed = main[main["status"] != "ok"]
    if len(failed):
        md.append("### Failures")
        rows = [[r.algo, r.task, r.level, str(r.seed), str(r.reason or "")] for r in failed.itertuples()]
        md.append(markdown_table(["Algorithm", "Task", "Level", "Seed", "Reason"], rows, ["l"] * 5))

    # aggregates
    agg = aggregate_rows(table)
    agg_notes = [
        "Over all task × level cells of the table, pooling runs (seeds). IQM: interquartile mean (mean of the "
        "middle 50% of runs). 95% CIs: percentile stratified bootstrap (runs resampled within each "
        f"task × level cell, {stats.BOOTSTRAP_REPS} resamples, seed {stats.BOOTSTRAP_SEED}).",
        "P(OMAR > X): probability that a run of OMAR scores higher than a run of X in the same cell "
        "(Mann–Whitney U / nm, ties count ½), averaged over the cells where both have runs.",
        f"Method: {RLIABLE_CITATION} (the rliable library), implemented here with numpy and scipy.",
    ]
    header = ["Algorithm", "Cells", "Runs", "Mean [95% CI]", "IQM [95% CI]", "P(OMAR > X) [95% CI]"]
    arows = [[r["algo"], str(r["cells"]), str(r["runs"]), r["mean"].fmt(), r["iqm"].fmt(), r["poi"].fmt(2)]
             for r in agg]
    md += ["## Aggregates over tasks and levels", markdown_table(header, arows), numbered(agg_notes)]
    files["aggregates.csv"] = csv_text(
        ["algo", "cells", "runs", "mean", "mean_lo", "mean_hi", "iqm", "iqm_lo", "iqm_hi", "p_omar_better",
         "p_lo", "p_hi"],
        [[r["algo"], r["cells"], r["runs"], *(fnum(getattr(r[k], f)) for k in ("mean", "iqm", "poi")
                                              for f in ("value", "lo", "hi"))] for r in agg],
    ).encode()
    files["aggregates.tex"] = latex_plain(header, [[(c, False) for c in r] for r in arows], agg_notes).encode()

    # the paper, side by side, and its claims
    comp = compare.comparison_rows(table)
    poi = {r["algo"]: r["poi"] for r in agg if r["algo"] in compare.BASELINES and r["cells"]}
    claims = compare.evaluate_claims(table, poi)
    md += ["## Side by side with the paper"]
    header = ["Level", "Task"] + [f"{a} {src}" for a in compare.PAPER_ALGOS for src in ("(ours)", "(paper)")]
    crow: dict[tuple[str, str], list[str]] = {}
    for r in comp:
        cells = crow.setdefault((r["level"], r["task"]), [])
        cells.append(f"**{r['ours']}**" if r["ours_bold"] else r["ours"])
        cells.append(f"**{r['paper']}**" if r["paper_bold"] else r["paper"])
    md.append(markdown_table(header, [[LEVEL_LABELS[lv], t, *c] for (lv, t), c in crow.items()]))
    comp_notes = [
        f"Paper: {PAPER_CITATION}; its {_table_names(table.tasks)} (mean ± std over 5 seeds), shipped in "
        "omarbench/assets/paper_tables.csv.",
        "Ours: as in the main table (" + ("our datasets' references" if references == "ours"
                                          else "the paper's references") + "); bold per source, same rule.",
        "Differences to expect: our datasets, references and final-policy scores are our own; the paper "
        "does not say whether it reports final or best evaluations.",
    ]
    md.append(numbered(comp_notes))
    files["paper_comparison.csv"] = csv_text(
        ["level", "task", "algo", "ours_mean", "ours_std", "ours_n", "ours_bold", "paper_mean", "paper_std",
         "paper_bold", "difference"],
        [[r["level"], r["task"], r["algo"], fnum(r["ours_mean"]), fnum(r["ours_std"]), r["ours_n"],
          int(r["ours_bold"]), fnum(r["paper_mean"]), fnum(r["paper_std"]), int(r["paper_bold"]),
          fnum(r["ours_mean"] - r["paper_mean"])] for r in comp],
    ).encode()
    groups = []
    for level in LEVELS:
        grows = [[(t, False)] + [(c.replace("**", ""), c.startswith("**")) for c in cells]
                 for (lv, t), cells in crow.items() if lv == level]
        groups.append((LEVEL_LABELS[level], grows))
    files["paper_comparison.tex"] = latex_tabular(header, groups, comp_notes).encode()

    return claims


def _curves_section(main: pd.DataFrame, curves: pd.DataFrame, table: ScoreTable, references: str,
                    md: list[str], files: dict[str, bytes]) -> None:
    """Learning curves of the main table's runs, if their records hold curves."""
    mc = curves[curves["key"].isin(set(main["key"]))]
    if not mc.empty:
        mc = add_scores(mc, references, value="return", norm="normalised")
        mc = mc[np.isfinite(mc["score"].astype(float))]
    if not mc.empty:
        levels = [lv for lv in table.levels if lv in set(mc["level"])]
        ctasks = [t for t in order_tasks(mc["task"])]
        fig = plots.curves_figure(mc, levels, ctasks, "normalised score")
        for fmt, data in plots.figure_bytes(fig).items():
            files[f"curves.{fmt}"] = data
        plots.close(fig)
        md += ["## Learning curves",
               "![learning curves](curves.png)",
               "Normalised score of the deterministic policy at the periodic evaluations during training "
               f"({_config_values(main, 'eval_episodes')} episodes each), mean over seeds with a 95% Student-t "
               "band; the table above scores the final policy, evaluated on more episodes."]


def _config_values(runs: pd.DataFrame, key: str) -> str:
    """The distinct values of one config entry over the runs, e.g. ``10`` or ``2/10``."""
    values = set()
    for text in runs["config"]:
        try:
            v = json.loads(text).get(key)
        except (TypeError, ValueError, AttributeError):
            v = None
        if v is not None:
            values.add(v)
    return "/".join(str(v) for v in sorted(values)) if values else "an unrecorded number of"


# ---------------------------------------------------------------------------------------------- build


def build_report(
    results_dir: str | os.PathLike,
    out_dir: str | os.PathLike = "leaderboards",
    *,
    references: str = "ours",
    scaling: bool = False,
    preset: str | None = None,
    tasks: Sequence[str] | None = None,
    best: bool = False,
    skip_bad: bool = False,
) -> ReportSummary:
    """Read the records of ``results_dir`` and write the report files into ``out_dir``.

    With ``best``, a section puts each cell's best periodic evaluation next to its final score
    (:mod:`omarbench.report.best`); without it the files are exactly as before. A file that is not a
    well-formed record is an error naming it; with ``skip_bad`` it is left out and listed in the summary's
    notes and in the leaderboard's."""
    if references not in REFERENCES:
        raise bad_choice("references", references, REFERENCES)
    if preset is not None:
        check_preset(preset)
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    from omarbench.guard import check_output_dir

    check_output_dir(out_dir, "--out")
    if not results_dir.is_dir():
        raise OmarbenchError(f"results directory {str(results_dir)!r} does not exist")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", rs.RecordWarning)
        records = rs.load_records(results_dir)
        curves = rs.load_curves(results_dir)
        behaviour = rs.load_behaviour(results_dir)
    summary = ReportSummary(out_dir=out_dir)
    bad = list(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, rs.RecordWarning)))
    if bad and not skip_bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise OmarbenchError(f"malformed record: {bad[0].removeprefix('skipping ')}{more}; fix or remove it, "
                             "or pass --skip-bad to leave such files out (they are then listed in the report)")
    summary.notes += [f"skipped: {m.removeprefix('skipping ')}" for m in bad]
    if records.empty:
        raise OmarbenchError(f"no run records in {str(results_dir)!r}: run 'omarbench eval' first")
    chosen = choose_preset(records, preset, repr(str(results_dir)))
    summary.preset = chosen
    if chosen is not None:
        records = records[records["preset"] == chosen]
    runs, superseded = latest_per_run(records)
    summary.n_records = len(runs)
    if superseded:
        note = f"{superseded} older record(s) of the same runs were superseded by newer ones"
        other, keys = superseded_settings(records, runs)
        if other:
            note += (f"; {other} of them had other settings ({', '.join(keys)}): keep runs of different settings "
                     "in separate results directories to compare them")
        summary.notes.append(note)

    selected = runs[runs["task"].isin(list(tasks))] if tasks else runs
    from omarbench.report.maze2d import is_maze2d_selection

    if is_maze2d_selection(selected["task"]):
        return _maze2d_report(selected, curves, references, scaling, preset, chosen, out_dir, summary)
    if references == "d4rl":
        raise UsageError("--references d4rl applies to the maze2d tasks only; valid here: ours, paper")
    runs = add_scores(runs, references)
    if tasks:
        main = runs[runs["task"].isin(list(tasks))]
    else:
        main = runs[~runs["task"].map(is_scaling_task)]
    if references == "paper":
        no_refs = sorted(set(main["task"]) - set(PAPER_TABLE_TASKS))
        if no_refs:
            summary.notes.append(f"the paper has no reference returns for {', '.join(no_refs)}: left out")
            main = main[main["task"].isin(PAPER_TABLE_TASKS)]
    scale = scaling_rows(runs, behaviour) if scaling else None
    if main.empty and (scale is None or scale.empty):
        raise OmarbenchError("no runs to tabulate after selection (check --tasks / --preset / --references)")

    cmd = "omarbench report" + (" --references paper" if references == "paper" else "") + \
        (" --scaling" if scaling else "") + (f" --preset {preset}" if preset else "") + (" --best" if best else "")
    used = main if not main.empty else runs
    versions = sorted(set(used["code_version"].dropna()))
    jobs = used.drop_duplicates(["algo", "task", "level", "code_version", "wall_time_s"])  # seeds share a job
    wall = float(np.nansum(jobs["wall_time_s"].astype(float)))
    files: dict[str, bytes] = {}
    md = [
        "# omarbench leaderboard",
        f"Made by `{cmd}` from {len(main)} run record(s) in the main table (preset {chosen or 'unknown'}; code "
        f"{', '.join(versions) or 'unknown'}; {_duration(wall)} of training wall-clock time over {len(jobs)} "
        "batched jobs, as recorded). Every number below is computed from the run records alone.",
    ]
    claims: list[compare.Claim] = []
    if not main.empty:
        table = build_score_table(main[["algo", "task", "level", "seed", "status", "score"]])
        claims += _main_sections(main, table, references, md, files)
    if scale is not None:
        claims += scaling_claims(scale)
    if claims:
        md += ["## The paper's claims, checked",
               markdown_table(["Claim", "On the paper's numbers", "On ours"],
                              [[c.claim, c.paper, c.ours] for c in claims], ["l", "l", "l"]),
               "Counts are cells where the claim holds over cells evaluated (cells where OMAR and at least one "
               "baseline have finished runs)."]
        files["claims.csv"] = csv_text(["claim", "paper", "ours"], [[c.claim, c.paper, c.ours] for c in claims]
                                       ).encode()
    if not main.empty:
        _curves_section(main, curves, table, references, md, files)
        if best:
            from omarbench.report.best import best_section

            best_section(main, curves, references, md, files)
    if scale is not None:
        scaling_section(scale, md, files)

    prov = used.drop_duplicates(["dataset_id", "dataset_digest"])[["dataset_id", "dataset_digest"]]
    prov = prov.sort_values(["dataset_id", "dataset_digest"], na_position="last")
    md += ["## Provenance", "Datasets (id: digest):",
           "".join(f"- {r.dataset_id}: `{(r.dataset_digest or 'unknown')[:16]}`\n" for r in prov.itertuples())]
    if summary.notes:
        md += ["Notes:", "".join(f"- {n}\n" for n in summary.notes)]
    files["leaderboard.md"] = "\n".join(b.rstrip("\n") + "\n" for b in md).encode()

    return _write_files(out_dir, files, summary)


def _write_files(out_dir: Path, files: dict[str, bytes], summary: ReportSummary) -> ReportSummary:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in sorted(files):
        path = out_dir / name
        atomic_write_bytes(path, files[name])
        summary.files.append(path)
    return summary


def _maze2d_report(runs: pd.DataFrame, curves: pd.DataFrame, references: str, scaling: bool, preset: str | None,
                   chosen: str | None, out_dir: Path, summary: ReportSummary) -> ReportSummary:
    """The maze2d leaderboard (:mod:`omarbench.report.maze2d`): final and best scores, the paper's D4RL table."""
    from omarbench.report.maze2d import maze2d_files

    if scaling:
        raise UsageError("--scaling is the MPE agent-count study; drop it for the maze2d tasks")
    cmd = "omarbench report" + (f" --references {references}" if references != "ours" else "") + \
        (f" --preset {preset}" if preset else "")
    versions = sorted(set(runs["code_version"].dropna()))
    jobs = runs.drop_duplicates(["algo", "task", "level", "code_version", "wall_time_s"])
    wall = float(np.nansum(jobs["wall_time_s"].astype(float)))
    header = [
        "# omarbench leaderboard: maze2d",
        f"Made by `{cmd}` from {len(runs)} run record(s) (preset {chosen or 'unknown'}; code "
        f"{', '.join(versions) or 'unknown'}; {_duration(wall)} of training wall-clock time over {len(jobs)} "
        "batched jobs, as recorded). Every number below is computed from the run records alone.",
    ]
    summary.n_records = len(runs)
    files = maze2d_files(runs, curves, references, header, summary.notes)
    return _write_files(out_dir, files, summary)
