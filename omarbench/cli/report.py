"""``omarbench report``: rebuild the leaderboard (tables, statistics, plots) from a results directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from omarbench.cli import options as opt
from omarbench.errors import UsageError, bad_choice

FORMATS = ("leaderboard", "marl-eval")


def report_command(
    results: opt.Results = None,
    out: Annotated[Path, typer.Option("--out", help="Where to write the tables and figures.")] = Path(
        "leaderboards"
    ),
    references: Annotated[
        str, typer.Option("--references", help="ours (the datasets' stored references), paper, or d4rl "
                                             "(maze2d: D4RL's reference scores).")
    ] = "ours",
    scaling: Annotated[
        bool, typer.Option("--scaling", help="Add the agent-count study (omarbench eval --scaling).")
    ] = False,
    preset: Annotated[
        str | None, typer.Option("--preset", help="Which preset's runs, when the results hold several.")
    ] = None,
    tasks: Annotated[
        str | None, typer.Option("--tasks", help="Tasks of the main table (default: all but spread-nN).")
    ] = None,
    root: opt.Root = None,
    fmt: Annotated[str, typer.Option("--format", help="leaderboard (default) or marl-eval (the records as "
                                                     "marl-eval's JSON, written to --out/marl-eval.json).")]
    = "leaderboard",
    curve_points: Annotated[int | None, typer.Option("--curve-points", help="marl-eval: keep K evenly spaced "
                                                     "evaluations per run (equal step counts).")] = None,
    best: Annotated[bool, typer.Option("--best", help="Add the best periodic evaluation next to the final "
                                                      "policy's score (a separate table).")] = False,
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Leave out malformed record files (listed in the report) "
                                               "instead of stopping.")
    ] = False,
) -> None:
    """Tables (Markdown, LaTeX, CSV), aggregates with CIs, the paper side by side, plots: from records alone."""
    from omarbench.paths import results_dir
    from omarbench.progress import make_console
    from omarbench.report.build import build_report
    from omarbench.tasks.spec import parse_task_list

    if fmt not in FORMATS:
        raise bad_choice("format", fmt, FORMATS)
    if curve_points is not None and curve_points < 1:
        raise UsageError(f"--curve-points must be a positive integer, got {curve_points}")
    task_list = parse_task_list(tasks) if tasks is not None else None
    # the default results directory follows the preset's data root, as in ``omarbench eval``
    where = results if results is not None else results_dir(root, preset or "paper")
    console = make_console()
    if fmt == "marl-eval":
        from omarbench.interop.marl_eval import write_marl_eval

        path, export = write_marl_eval(where, out, preset=preset, references=references, tasks=task_list,
                                       curve_points=curve_points)
        for note in export.notes:
            console.print(f"note: {note}", markup=False, highlight=False)
        console.print(f"{export.n_runs} run(s) written to {path} (marl-eval's JSON layout)", markup=False)
        return
    summary = build_report(where, out, references=references, scaling=scaling, preset=preset, tasks=task_list,
                           best=best, skip_bad=skip_bad)
    for note in summary.notes:
        console.print(f"note: {note}", markup=False, highlight=False)
    console.print(f"report of {summary.n_records} run record(s) (preset {summary.preset}) written to {out}: "
                  f"{', '.join(p.name for p in summary.files)}", markup=False, highlight=False, soft_wrap=True)
