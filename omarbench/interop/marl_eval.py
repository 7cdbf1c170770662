"""Run records as the raw-data JSON of marl-eval (InstaDeep; ``id-marl-eval`` on PyPI).

marl-eval (Gorsane et al., "Towards a Standardised Performance Evaluation Protocol for Cooperative MARL",
NeurIPS 2022) reads one JSON object nested environment → task → algorithm → run → step::

    {"mpe": {"spread-expert": {"OMAR": {"run_0": {
        "step_0": {"step_count": 0, "return": [194.5], "normalised_score": [8.6]},
        ...
        "absolute_metrics": {"return": [263.9], "normalised_score": [45.4]}}}}}}

How our records map onto it:

- environment: ``mpe`` (every omarbench task is a particle environment); task: the dataset id
  ``<task>-<level>`` (marl-eval has no level axis, and each dataset is a separate offline task);
  algorithm: our canonical name; run: ``run_<seed>``.
- ``step_<i>``: the i-th periodic evaluation of the run's curve, ``step_count`` = its training round
  (gradient steps, not environment steps: training is offline). Round 0, the untrained policy, is left
  out: marl-eval's steps are evaluations after training intervals, and it derives the evaluation
  interval from the differences of consecutive ``step_count`` values starting from 0.
- metrics: ``return`` (reported return) and ``normalised_score`` (100 (S − random)/(expert − random)
  with the dataset's stored references, or the paper's). Records keep each evaluation's mean over its
  episodes, not the per-episode returns, so every metric list holds one value, that mean.
- ``absolute_metrics``: the final policy, evaluated on the final episode count (100 per seed), which is
  what our tables score; marl-eval's own convention evaluates its best checkpoint there instead.

Pass ``metrics_to_normalize=["return"]`` to marl-eval for its per-task min-max normalisation of
returns; ``normalised_score`` is ours and is used as is.

Only finished runs (status ``ok``) are written, the newest record of each (algo, task, level, seed), as
in ``omarbench report``, of the report's main-table tasks unless ``tasks`` says otherwise. marl-eval
assumes every algorithm of an environment has the same runs and every run the same evaluation steps:
:func:`marl_eval_data` returns notes naming where that does not hold, and ``curve_points`` evens out the
steps.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from omarbench import results as rs
from omarbench.errors import OmarbenchError, UsageError, bad_choice

ENVIRONMENT = "mpe"
METRICS = ("return", "normalised_score")
ABSOLUTE = "absolute_metrics"
DEFAULT_FILE = "marl-eval.json"


@dataclass
class MarlEvalExport:
    """The JSON object and what is worth telling about it."""

    data: dict[str, Any]
    n_runs: int = 0
    notes: list[str] = field(default_factory=list)


def _value(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _metrics(ret: Any, norm: Any) -> dict[str, list[float]]:
    out = {}
    for name, v in zip(METRICS, (_value(ret), _value(norm))):
        if v is not None:
            out[name] = [v]
    return out


def marl_eval_data(
    results_dir: str | os.PathLike,
    *,
    preset: str | None = None,
    references: str = "ours",
    environment: str = ENVIRONMENT,
    tasks: Sequence[str] | None = None,
    curve_points: int | None = None,
) -> MarlEvalExport:
    """The records of ``results_dir`` in marl-eval's raw-data layout (see the module docstring).

    ``tasks``: the tasks to write (default: those of the report's main table, i.e. all but the spread-nN
    of the agent-count study, which has other algorithms). ``curve_points``: keep K evaluations per run,
    evenly spaced over its curve and ending with its last, so that runs of different budgets (the
    ``paper`` preset trains some datasets longer) have the equal step counts marl-eval expects.
    """
    from omarbench.report.build import REFERENCES, choose_preset, is_scaling_task, latest_per_run
    from omarbench.report.paper import normalise_with_paper

    if references not in REFERENCES:
        raise bad_choice("references", references, REFERENCES)
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise OmarbenchError(f"results directory {str(results_dir)!r} does not exist")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", rs.RecordWarning)
        records = rs.load_records(results_dir)
        curves = rs.load_curves(results_dir)
    export = MarlEvalExport(data={})
    export.notes += [f"skipped: {w.message}" for w in caught if issubclass(w.category, rs.RecordWarning)]
    if records.empty:
        raise OmarbenchError(f"no run records in {str(results_dir)!r}: run 'omarbench eval' first")
    chosen = choose_preset(records, preset)
    if chosen is not None:
        records = records[records["preset"] == chosen]
    runs, _ = latest_per_run(records)
    failed = runs[runs["status"] != "ok"]
    if len(failed):
        export.notes.append(f"{len(failed)} failed run(s) left out")
    runs = runs[runs["status"] == "ok"]
    runs = runs[runs["task"].isin(list(tasks))] if tasks else runs[~runs["task"].map(is_scaling_task)]
    if runs.empty:
        raise OmarbenchError("no finished runs to write after selection (check --tasks / --preset)")
    if curve_points is not None and curve_points < 1:
        raise UsageError(f"--curve-points must be a positive count, got {curve_points}")
    by_key = {k: g.sort_values("round") for k, g in curves[curves["key"].isin(set(runs["key"]))].groupby("key")}

    def norm(task: str, ret: Any, stored: Any) -> Any:
        v = _value(ret)
        return stored if references == "ours" else normalise_with_paper(task, math.nan if v is None else v)

    env: dict[str, Any] = {}
    for r in runs.itertuples():
        task_name = f"{r.task}-{r.level}"
        run: dict[str, Any] = {}
        curve = by_key.get(r.key)
        if curve is not None:
            curve = curve[curve["round"] > 0]  # round 0 is the untrained policy (see the module docstring)
            if curve_points is not None:
                m = len(curve)
                if m < curve_points:
                    raise UsageError(f"--curve-points {curve_points}: run {r.algo} {task_name} seed {r.seed} "
                                     f"has only {m} evaluations after round 0")
                curve = curve.iloc[np.round(np.linspace(m / curve_points - 1, m - 1, curve_points)).astype(int)]
            points = zip(curve["round"], curve["return"], curve["normalised"])
            for i, (step, ret, nrm) in enumerate(points):
                run[f"step_{i}"] = {"step_count": int(step), **_metrics(ret, norm(r.task, ret, nrm))}
        run[ABSOLUTE] = _metrics(r.final_return, norm(r.task, r.final_return, r.normalised))
        env.setdefault(task_name, {}).setdefault(r.algo, {})[f"run_{int(r.seed)}"] = run
        export.n_runs += 1
    export.data = {environment: {t: {a: env[t][a] for a in sorted(env[t])} for t in sorted(env)}}
    export.notes += _layout_notes(env)
    return export


def _layout_notes(env: dict[str, Any]) -> list[str]:
    """Where the data breaks marl-eval's assumption of equal runs and equal steps within an environment."""
    notes = []
    run_sets = {(t, a): tuple(sorted(runs)) for t, algos in env.items() for a, runs in algos.items()}
    if len(set(run_sets.values())) > 1:
        notes.append("algorithms or tasks differ in their runs (seeds): marl-eval expects the same runs "
                     "everywhere in an environment; select with --tasks or rerun the missing seeds")
    steps = {len(run) for algos in env.values() for runs in algos.values() for run in runs.values()}
    if len(steps) > 1:
        notes.append(f"runs differ in their number of evaluations ({', '.join(map(str, sorted(steps)))} steps "
                     "with the final one): marl-eval needs equal counts; pass --curve-points K to keep K "
                     "evenly spaced evaluations per run")
    return notes


def write_marl_eval(
    results_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    preset: str | None = None,
    references: str = "ours",
    tasks: Sequence[str] | None = None,
    curve_points: int | None = None,
) -> tuple[Path, MarlEvalExport]:
    """Write the marl-eval JSON to ``out`` (a ``.json`` file, or a directory to hold ``marl-eval.json``)."""
    export = marl_eval_data(results_dir, preset=preset, references=references, tasks=tasks,
                            curve_points=curve_points)
    out = Path(out).expanduser()
    path = out if out.suffix == ".json" else out / DEFAULT_FILE
    text = json.dumps(export.data, indent=1, sort_keys=False) + "\n"
    rs.atomic_write_text(path, text)
    return path, export
