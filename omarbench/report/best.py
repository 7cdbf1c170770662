"""The best periodic evaluation next to the final policy's score (``omarbench report --best``).

Offline RL papers report either the last policy or the best one seen during training, and the two can
differ a lot; CORL (Tarasov et al., "CORL: Research-oriented Deep Offline Reinforcement Learning
Library", NeurIPS 2023 Datasets and Benchmarks) reports both. Our tables score the final policy; this
section adds, per cell, the mean over seeds of each run's **best evaluation**: the maximum of its
normalised score over the periodic evaluations of its learning curve (``eval_episodes`` episodes each,
10 by default), leaving out round 0 (the untrained policy, evaluated before any update).

The two are not measured alike: the final score averages 100 episodes per seed, each curve point only
``eval_episodes``, and taking a maximum over noisy points biases the best upwards; selecting it also uses
evaluation episodes that an offline method would not have. The best is shown as a bound, not a score.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from omarbench.report.paper import normalise_with_paper
from omarbench.report.tables import (
    LEVEL_LABELS,
    build_score_table,
    csv_text,
    fnum,
    markdown_table,
)

FILE = "best_scores.csv"


def best_per_run(main: pd.DataFrame, curves: pd.DataFrame, references: str) -> pd.DataFrame:
    """One row per finished run of ``main``: its final score and the max (and round) of its curve."""
    ok = main[main["status"] == "ok"]
    mc = curves[curves["key"].isin(set(ok["key"])) & (curves["round"] > 0)]  # round 0: the untrained policy
    if mc.empty:
        return pd.DataFrame(columns=["algo", "task", "level", "seed", "status", "final", "score", "round"])
    if references == "ours":  # as the report scores curves: stored normalised, or the paper's references
        mc = mc.assign(score=mc["normalised"].astype(float))
    else:
        mc = mc.assign(score=[float(normalise_with_paper(t, float(v))) for t, v in zip(mc["task"], mc["return"])])
    mc = mc[np.isfinite(mc["score"].astype(float))]
    best = mc.sort_values(["key", "score", "round"], ascending=[True, False, True], kind="stable")
    best = best.groupby("key", sort=True).head(1)[["key", "score", "round"]]
    out = ok[["algo", "task", "level", "seed", "status", "key", "score"]].rename(columns={"score": "final"})
    return out.merge(best, on="key", how="inner").drop(columns=["key"])


def best_section(main: pd.DataFrame, curves: pd.DataFrame, references: str, md: list[str],
                 files: dict[str, bytes]) -> None:
    """Append the section "Final and best evaluation" to ``md`` and ``best_scores.csv`` to ``files``."""
    runs = best_per_run(main, curves, references)
    md.append("## Final and best evaluation")
    if runs.empty:
        md.append("The records hold no learning curves: no best evaluation to show.")
        return
    final = build_score_table(runs.assign(score=runs["final"]))
    best = build_score_table(runs)
    header = ["Level", "Task", *final.algos]
    rows, csv_rows = [], []
    for level, task in final.rows:
        cells = []
        for a in final.algos:
            f, b = final.cell(level, task, a), best.cell(level, task, a)
            if f is None or not f.n:
                cells.append("—")
                continue
            cells.append(f"final {f.mean:.1f} / best {b.mean:.1f} ({f.n})")
            rounds = runs[(runs["level"] == level) & (runs["task"] == task) & (runs["algo"] == a)]["round"]
            csv_rows.append([level, task, a, f.n, fnum(f.mean), fnum(f.std), fnum(b.mean), fnum(b.std),
                             fnum(b.mean - f.mean), fnum(float(np.mean(rounds)), 1)])
        rows.append([LEVEL_LABELS.get(level, level), task, *cells])
    md.append(markdown_table(header, rows))
    gap = runs["score"] - runs["final"]
    md.append(
        "Final: the final policy's normalised score (100 episodes per seed), as in every other table. Best: "
        "per run, the maximum of the normalised score over its periodic evaluations after round 0 (the "
        "learning curve, a few episodes each), then the mean over seeds. A maximum over noisy evaluations is "
        "biased upwards and uses evaluation episodes an offline method would not have: read it as an upper bound. "
        f"Over the {len(runs)} runs, best − final: mean {_num(float(gap.mean()))}, "
        f"median {_num(float(gap.median()))}. Reported both ways following CORL (Tarasov et al., NeurIPS 2023)."
    )
    files[FILE] = csv_text(
        ["level", "task", "algo", "n_seeds", "final_mean", "final_std", "best_mean", "best_std",
         "best_minus_final", "mean_best_round"], csv_rows).encode()


def _num(v: float) -> str:
    return f"{v:.1f}" if math.isfinite(v) else "—"
