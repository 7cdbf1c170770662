"""The maze2d leaderboard: the paper's D4RL table regenerated on omarbench's PointMaze-based maze2d tasks.

:func:`maze2d_files` turns the run records of the maze2d tasks into (file name → bytes):

    leaderboard.md            everything, readable on a forge
    scores.{csv,tex}          final and best normalised scores, rows mazes, columns algorithms
    paper_comparison.{csv,tex} ours (final and best) next to the paper's maze2d table
    curves.{png,pdf}          learning curves (the periodic evaluations)

Two scores per run, both labelled everywhere: **final**, the policy after the last round on
``final_episodes`` fresh episodes per seed, and **best**, the highest of the run's periodic evaluations
after round 0 (``eval_episodes`` episodes each), as recorded by the run (``best`` in its record). CORL
(Tarasov et al., NeurIPS 2023) reports both for maze2d because they differ a lot there; a maximum over
noisy evaluations is biased upwards, so the best is an upper bound, not a score.

References: ``ours`` (the default) are the random and expert returns measured when each dataset was
collected and stored in it; ``d4rl`` are D4RL's maze2d-*-v1 ``ref_min_score`` / ``ref_max_score``, the
ones the paper normalised with (``paper`` means the same for these tasks). Same records, same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from omarbench.errors import UsageError
from omarbench.report.paper import PAPER_CITATION, load_paper_tables
from omarbench.report.tables import (
    MISSING,
    ScoreTable,
    build_score_table,
    csv_text,
    fnum,
    format_cell,
    latex_plain,
    markdown_table,
    order_algos,
)
from omarbench.tasks import maze2d
from omarbench.vocab import normalised_score

REFERENCES = ("ours", "d4rl", "paper")  # paper: the paper normalised maze2d with D4RL's references
PAPER_NAMES = {"MA-TD3+BC": "TD3+BC", "MA-ICQ": "ICQ", "MA-CQL": "CQL", "OMAR": "OMAR"}  # the paper's columns
CORL = "CORL (Tarasov et al., NeurIPS 2023 Datasets and Benchmarks)"


def is_maze2d_selection(tasks: Sequence[str]) -> bool:
    """True when every task is a maze2d task (the maze2d leaderboard), False when none is; an error for a mix."""
    kinds = {maze2d.is_maze2d(t) for t in tasks}
    if kinds == {True, False}:
        raise UsageError("the results mix maze2d and other tasks; report them apart with --tasks "
                         f"({','.join(maze2d.TASK_IDS)} or the others)")
    return kinds == {True}


def maze_order(tasks) -> list[str]:
    present = set(tasks)
    return [t for t in maze2d.TASK_IDS if t in present]


def _d4rl(task: str) -> dict[str, float]:
    return maze2d.PUBLISHED_REFERENCES["d4rl"][task[len(maze2d.PREFIX) + 1:]]


def add_maze2d_scores(runs: pd.DataFrame, references: str) -> pd.DataFrame:
    """Columns ``final`` and ``best``: each run's final and best normalised score with ``references``."""
    if references not in REFERENCES:
        from omarbench.errors import bad_choice

        raise bad_choice("references", references, REFERENCES)
    if references == "ours":
        return runs.assign(final=runs["normalised"].astype(float), best=runs["best_normalised"].astype(float))
    final = [normalised_score(float(v), _d4rl(t)["random"], _d4rl(t)["expert"])
             for t, v in zip(runs["task"], runs["final_return"])]
    best = [normalised_score(float(v), _d4rl(t)["random"], _d4rl(t)["expert"])
            for t, v in zip(runs["task"], runs["best_return"])]
    return runs.assign(final=np.asarray(final, float), best=np.asarray(best, float))


def _table(runs: pd.DataFrame, column: str) -> ScoreTable:
    table = build_score_table(runs[["algo", "task", "level", "seed", "status"]].assign(score=runs[column]))
    table.tasks = maze_order(table.tasks)
    return table


def _rows(table: ScoreTable) -> list[tuple[str, list[tuple[str, bool]]]]:
    out = []
    for level, task in table.rows:
        cells = []
        for a in table.algos:
            c = table.cell(level, task, a)
            cells.append((format_cell(c), bool(c is not None and c.bold)))
        out.append((task, cells))
    return out


def _md(rows: list[tuple[str, list[tuple[str, bool]]]], algos: Sequence[str]) -> str:
    body = [[t, *(f"**{x}**" if b else x for x, b in cells)] for t, cells in rows]
    return markdown_table(["Maze", *algos], body, ["l"] + ["r"] * len(algos))


def _refs_text(references: str) -> str:
    if references == "ours":
        return ("the random and expert returns measured by omarbench when it collected each dataset and stored in "
                "it (uniform random actions / the noise-free waypoint controller, 500 episodes each)")
    refs = "; ".join(f"{t.split('-')[1]} {_d4rl(t)['random']} / {_d4rl(t)['expert']}" for t in maze2d.TASK_IDS)
    return f"D4RL's maze2d-*-v1 ref_min_score / ref_max_score, which the paper normalised with ({refs})"


def _config_value(runs: pd.DataFrame, key: str) -> str:
    import json

    values = sorted({json.loads(c).get(key) for c in runs["config"]} - {None})
    return "/".join(f"{v:,}" if isinstance(v, int) else str(v) for v in values) or "?"


def maze2d_files(runs: pd.DataFrame, curves: pd.DataFrame, references: str, header: Sequence[str],
                 notes: Sequence[str]) -> dict[str, bytes]:
    """The maze2d leaderboard's files from ``runs`` (one record per run, as the report selects them)."""
    from omarbench.report import plots

    runs = add_maze2d_scores(runs, references)
    final, best = _table(runs, "final"), _table(runs, "best")
    algos = order_algos(runs["algo"])
    final.algos = best.algos = algos
    n_final, n_eval = _config_value(runs, "final_episodes"), _config_value(runs, "eval_episodes")
    rounds, every = _config_value(runs, "rounds"), _config_value(runs, "eval_every")
    refs = _refs_text(references)
    common = [
        f"Normalised score 100 × (S − S_random) / (S_expert − S_random), mean ± std over seeds (ddof = 0), seed "
        f"count in parentheses. References: {refs}.",
        "Bold: the highest mean of the row and every entry not significantly below it (Welch's t-test, two-sided, "
        "p ≥ 0.05).",
    ]
    final_notes = [f"Final: the policy after the last of {rounds} update rounds, {n_final} evaluation episodes "
                   "per seed (fresh episodes, the same for every algorithm).", *common]
    best_notes = [f"Best: per run, the highest of its periodic evaluations after round 0 (every {every} rounds, "
                  f"{n_eval} episodes each), recorded by the run, then mean ± std over seeds. A maximum over "
                  "noisy evaluations is biased upwards and selects with evaluation episodes an offline method "
                  f"does not have: an upper bound, reported as {CORL} does for maze2d.", *common]
    md = list(header)
    md += ["## Normalised scores: final policy", _md(_rows(final), algos), _numbered(final_notes)]
    md += ["## Normalised scores: best evaluation", _md(_rows(best), algos), _numbered(best_notes)]
    failed = runs[runs["status"] != "ok"]
    if len(failed):
        md += ["### Failures", markdown_table(["Algorithm", "Maze", "Seed", "Reason"],
                                              [[r.algo, r.task, str(r.seed), str(r.reason or "")]
                                               for r in failed.itertuples()], ["l"] * 4)]
    files: dict[str, bytes] = {}
    files["scores.csv"] = _scores_csv(final, best).encode()
    files["scores.tex"] = (
        latex_plain(["Maze (final)", *algos], [[(t, False), *c] for t, c in _rows(final)], final_notes)
        + latex_plain(["Maze (best)", *algos], [[(t, False), *c] for t, c in _rows(best)], best_notes)
    ).encode()
    comp_md, comp_csv, comp_tex = _paper_comparison(final, best)
    comp_notes = [
        f"Paper: {PAPER_CITATION}; its maze2d table (D4RL maze2d-*-v1, mean ± std over 5 seeds), shipped in "
        "omarbench/assets/paper_tables.csv. The paper does not say whether it reports final or best evaluations.",
        "Ours: the two tables above (" + ("our datasets' references" if references == "ours"
                                          else "D4RL's references") + ").",
        "Not the same experiment: our tasks run D4RL's maps, goal, reward, horizon and start distribution on "
        "gymnasium-robotics' PointMaze-v3 MuJoCo model in its own coordinate frame (D4RL's walls sit 0.2 off the "
        "nominal cell centres; ours are centred), our datasets come from our implementation of D4RL's waypoint "
        f"collector, and our budget is {rounds} update rounds (the paper's is not stated; CORL's maze2d runs use "
        "1,000,000).",
    ]
    md += ["## Side by side with the paper", comp_md, _numbered(comp_notes)]
    files["paper_comparison.csv"] = comp_csv.encode()
    files["paper_comparison.tex"] = latex_plain(["Maze", "Algorithm", "Ours, final", "Ours, best", "Paper"],
                                                comp_tex, comp_notes).encode()
    mc = _curve_scores(curves, runs, references)
    if not mc.empty:
        fig = plots.curves_figure(mc, ["waypoint"], maze_order(mc["task"]), "normalised score")
        for fmt, data in plots.figure_bytes(fig).items():
            files[f"curves.{fmt}"] = data
        plots.close(fig)
        md += ["## Learning curves", "![learning curves](curves.png)",
               "Normalised score of the deterministic policy at the periodic evaluations "
               f"({n_eval} episodes each, round 0 is the untrained policy), mean over seeds with a 95% "
               "Student-t band."]
    md += ["## References", _refs_table(runs),
           "Ours: stored in each dataset when it was collected. D4RL: maze2d-*-v1 registrations "
           f"({maze2d.D4RL_CITATION}); their scale differs from ours (other frame, walls, engine)."]
    prov = runs.drop_duplicates(["dataset_id", "dataset_digest"]).sort_values(["dataset_id", "dataset_digest"])
    md += ["## Provenance", "Datasets (id: digest):",
           "".join(f"- {r.dataset_id}: `{(r.dataset_digest or 'unknown')[:16]}`\n" for r in prov.itertuples())]
    if notes:
        md += ["Notes:", "".join(f"- {n}\n" for n in notes)]
    files["leaderboard.md"] = "\n".join(b.rstrip("\n") + "\n" for b in md).encode()
    return files


def _numbered(notes: Sequence[str]) -> str:
    return "".join(f"{i + 1}. {n}\n" for i, n in enumerate(notes))


def _scores_csv(final: ScoreTable, best: ScoreTable) -> str:
    rows = []
    for level, task in final.rows:
        for a in final.algos:
            f, b = final.cell(level, task, a), best.cell(level, task, a)
            if f is None:
                continue
            rows.append([task, a, f.n, fnum(f.mean), fnum(f.std), int(f.bold), b.n if b else 0,
                         fnum(b.mean) if b else "", fnum(b.std) if b else "", int(bool(b and b.bold)), f.failed,
                         " ".join(str(s) for s in f.seeds)])
    return csv_text(["task", "algo", "final_n", "final_mean", "final_std", "final_bold", "best_n", "best_mean",
                     "best_std", "best_bold", "failed_seeds", "seeds"], rows)


def paper_maze2d_table() -> pd.DataFrame:
    """The paper's maze2d table: columns task, algo (the paper's names), mean, std."""
    df = load_paper_tables()
    df = df[df["table"] == "d4rl"].rename(columns={"env": "task"})
    return df[["task", "algo", "mean", "std"]].reset_index(drop=True)


def _paper_comparison(final: ScoreTable, best: ScoreTable):
    paper = paper_maze2d_table()
    md_rows, csv_rows, tex_rows = [], [], []
    for task in maze2d.TASK_IDS:  # every maze of the paper's table, ours or not
        for algo, name in PAPER_NAMES.items():
            f, b = final.cell("waypoint", task, algo), best.cell("waypoint", task, algo)
            p = paper[(paper["task"] == task) & (paper["algo"] == name)]
            ptext = f"{p['mean'].iloc[0]:.1f} ± {p['std'].iloc[0]:.1f}" if len(p) else MISSING
            pmean = float(p["mean"].iloc[0]) if len(p) else math.nan
            pstd = float(p["std"].iloc[0]) if len(p) else math.nan
            ftext, btext = format_cell(f), format_cell(b)
            md_rows.append([task, algo, ftext, btext, ptext])
            tex_rows.append([(task, False), (algo, False), (ftext, False), (btext, False), (ptext, False)])
            fm = f.mean if f is not None else math.nan
            bm = b.mean if b is not None else math.nan
            csv_rows.append([task, algo, name, f.n if f else 0, fnum(fm), fnum(f.std if f else math.nan), fnum(bm),
                             fnum(b.std if b else math.nan), fnum(pmean), fnum(pstd), fnum(fm - pmean),
                             fnum(bm - pmean)])
    md = markdown_table(["Maze", "Algorithm", "Ours, final", "Ours, best", "Paper"], md_rows,
                        ["l", "l", "r", "r", "r"])
    csv = csv_text(["task", "algo", "paper_algo", "n_seeds", "final_mean", "final_std", "best_mean", "best_std",
                    "paper_mean", "paper_std", "final_minus_paper", "best_minus_paper"], csv_rows)
    return md, csv, tex_rows


def _curve_scores(curves: pd.DataFrame, runs: pd.DataFrame, references: str) -> pd.DataFrame:
    mc = curves[curves["key"].isin(set(runs.loc[runs["status"] == "ok", "key"]))]
    if mc.empty:
        return mc
    if references == "ours":
        mc = mc.assign(score=mc["normalised"].astype(float))
    else:
        mc = mc.assign(score=[normalised_score(float(v), _d4rl(t)["random"], _d4rl(t)["expert"])
                              for t, v in zip(mc["task"], mc["return"])])
    return mc[np.isfinite(mc["score"].astype(float))]


def _refs_table(runs: pd.DataFrame) -> str:
    rows = []
    for task in maze_order(runs["task"]):
        r = runs[runs["task"] == task]
        rand = sorted(set(r["reference_random"].astype(float)))
        exp = sorted(set(r["reference_expert"].astype(float)))
        d = _d4rl(task)
        rows.append([task, "/".join(f"{v:.2f}" for v in rand), "/".join(f"{v:.2f}" for v in exp),
                     f"{d['random']:.2f}", f"{d['expert']:.2f}"])
    return markdown_table(["Maze", "Random (ours)", "Expert (ours)", "Random (D4RL)", "Expert (D4RL)"], rows,
                          ["l", "r", "r", "r", "r"])
