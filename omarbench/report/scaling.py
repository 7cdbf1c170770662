"""The agent-count study of the report: rows per agent count from the spread-nN medium-replay runs of
MA-CQL and OMAR and the behaviour records, its claims, and its section (table, figure, CSV)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from omarbench.errors import OmarbenchError
from omarbench.report import compare, plots, stats
from omarbench.report.tables import csv_text, fnum, markdown_table
from omarbench.vocab import SCALING_LEVEL


def scaling_rows(runs: pd.DataFrame, behaviour: pd.DataFrame) -> pd.DataFrame:
    """The agent-count study from spread-nN medium-replay runs of MA-CQL and OMAR and the behaviour records.

    Scores are the datasets' normalised scores (the paper gives references for n = 3 only).
    """
    from omarbench.tasks.spec import parse_task_id

    out = []
    sel = runs[(runs["level"] == SCALING_LEVEL) & (runs["status"] == "ok")]
    tasks = {}
    for task in sorted(set(sel["task"]) | set(behaviour["task"] if not behaviour.empty else [])):
        try:
            t = parse_task_id(task)
        except OmarbenchError:
            continue
        if t.name == "spread" and t.flavor == "paper":
            tasks[t.n_agents] = task
    for n in sorted(tasks):
        task = tasks[n]
        cql_runs = sel[(sel["task"] == task) & (sel["algo"] == "MA-CQL")]
        omar_runs = sel[(sel["task"] == task) & (sel["algo"] == "OMAR")]
        cql, omar = _finite(cql_runs["normalised"]), _finite(omar_runs["normalised"])
        cql_ret, omar_ret = _finite(cql_runs["final_return"]), _finite(omar_runs["final_return"])
        beh = behaviour[(behaviour["task"] == task) & (behaviour["level"] == SCALING_LEVEL)] \
            if not behaviour.empty else behaviour
        digests = sel[sel["task"] == task]["dataset_digest"].dropna()
        if len(beh) > 1 and len(digests):
            same = beh[beh["dataset_digest"] == digests.mode().iloc[0]]
            beh = same if len(same) else beh
        b = float(beh["normalised"].astype(float).iloc[-1]) if len(beh) else math.nan
        b_ret = float(beh["return_mean"].astype(float).iloc[-1]) if len(beh) else math.nan
        # improvements on episode returns: references exist for n = 3 only, and where our behaviour run
        # barely beat random a normalised score divides by a tiny range
        cvb = stats.NAN_ESTIMATE
        if math.isfinite(b_ret) and len(cql_ret):
            cvb = stats.improvement_pct(cql_ret, b_ret)
        ovc = stats.improvement_pct(omar_ret, cql_ret) if len(cql_ret) and len(omar_ret) else stats.NAN_ESTIMATE
        out.append({
            "n": n, "task": task, "behaviour": b,
            "behaviour_return": b_ret,
            "cql_mean": float(cql.mean()) if len(cql) else math.nan, "cql_n": len(cql),
            "omar_mean": float(omar.mean()) if len(omar) else math.nan, "omar_n": len(omar),
            "cql_vs_behaviour": cvb.value, "cql_vs_behaviour_lo": cvb.lo, "cql_vs_behaviour_hi": cvb.hi,
            "omar_vs_cql": ovc.value, "omar_vs_cql_lo": ovc.lo, "omar_vs_cql_hi": ovc.hi,
            "cql_return": float(cql_ret.mean()) if len(cql_ret) else math.nan,
            "omar_return": float(omar_ret.mean()) if len(omar_ret) else math.nan,
        })
    return pd.DataFrame(out, columns=[
        "n", "task", "behaviour", "behaviour_return", "cql_mean", "cql_n", "omar_mean", "omar_n",
        "cql_vs_behaviour", "cql_vs_behaviour_lo", "cql_vs_behaviour_hi", "omar_vs_cql", "omar_vs_cql_lo",
        "omar_vs_cql_hi", "cql_return", "omar_return",
    ])


def _finite(values: pd.Series) -> np.ndarray:
    arr = values.astype(float).to_numpy()
    return arr[np.isfinite(arr)]


def _pct(v: float, lo: float, hi: float) -> str:
    if not math.isfinite(v):
        return "—"
    if math.isfinite(lo) and math.isfinite(hi):
        return f"{v:+.1f}% [{lo:+.1f}, {hi:+.1f}]"
    return f"{v:+.1f}%"


def _num(v: float, digits: int = 1) -> str:
    return f"{v:.{digits}f}" if math.isfinite(v) else "—"


def scaling_claims(scale: pd.DataFrame) -> list[compare.Claim]:
    ests_o = [stats.Estimate(r.omar_vs_cql, r.omar_vs_cql_lo, r.omar_vs_cql_hi) for r in scale.itertuples()]
    ests_c = [stats.Estimate(r.cql_vs_behaviour, r.cql_vs_behaviour_lo, r.cql_vs_behaviour_hi)
              for r in scale.itertuples()]
    return compare.scaling_claims(list(scale["n"]), ests_o, ests_c)


def scaling_section(scale: pd.DataFrame, md: list[str], files: dict[str, bytes]) -> None:
    md += ["## Agent-count study"]
    if scale.empty:
        md.append("No spread-nN medium-replay runs or behaviour records in these results: run "
                  "`omarbench eval --scaling` first.")
    else:
        header = ["Agents", "Task", "Behaviour", "MA-CQL", "OMAR", "Returns: behaviour / MA-CQL / OMAR",
                  "MA-CQL over behaviour", "OMAR over MA-CQL"]
        srows = [[str(r.n), r.task, _num(r.behaviour), f"{_num(r.cql_mean)} ({r.cql_n})",
                  f"{_num(r.omar_mean)} ({r.omar_n})",
                  f"{_num(r.behaviour_return)} / {_num(r.cql_return)} / {_num(r.omar_return)}",
                  _pct(r.cql_vs_behaviour, r.cql_vs_behaviour_lo, r.cql_vs_behaviour_hi),
                  _pct(r.omar_vs_cql, r.omar_vs_cql_lo, r.omar_vs_cql_hi)] for r in scale.itertuples()]
        md.append(markdown_table(header, srows))
        md.append(
            "spread with n agents and n landmarks, medium-replay data; scores normalised with each dataset's "
            "own references (the paper gives references for n = 3 only), mean episode returns alongside. "
            "Behaviour: the behaviour policy's score, taken as the dataset's mean episode return, not a "
            "fresh evaluation. Improvement % = 100 × (new − base) / base on mean episode returns (positive "
            "on spread; normalised scores would divide by our own random-to-expert range, which is "
            "tiny where a behaviour run barely beat random); 95% CIs from a bootstrap "
            f"over seeds ({stats.BOOTSTRAP_REPS} resamples, seed {stats.BOOTSTRAP_SEED}); undefined (—) "
            "when the base score is not positive.")
        md.append("![agent-count study](scaling.png)")
        fig = plots.scaling_figure(scale)
        for fmt, data in plots.figure_bytes(fig).items():
            files[f"scaling.{fmt}"] = data
        plots.close(fig)
    files["scaling.csv"] = csv_text(
        list(scale.columns),
        [[fnum(v) if isinstance(v, float) else v for v in row] for row in scale.itertuples(index=False)],
    ).encode()
