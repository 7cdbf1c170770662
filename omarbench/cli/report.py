"""``omarbench report``: rebuild the leaderboard (tables, statistics, plots) from a results directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from omarbench.cli import options as opt


def report_command(
    results: opt.Results = None,
    out: Annotated[Path, typer.Option("--out", help="Where to write the tables and figures.")] = Path(
        "leaderboards"
    ),
    references: Annotated[
        str, typer.Option("--references", help="ours (the datasets' stored references) or paper.")
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

    task_list = parse_task_list(tasks) if tasks is not None else None
    # the default results directory follows the preset's data root, as in ``omarbench eval``
    where = results if results is not None else results_dir(root, preset or "paper")
    summary = build_report(where, out, references=references, scaling=scaling, preset=preset, tasks=task_list,
                           skip_bad=skip_bad)
    console = make_console()
    for note in summary.notes:
        console.print(f"note: {note}", markup=False, highlight=False)
    console.print(f"report of {summary.n_records} run record(s) (preset {summary.preset}) written to {out}: "
                  f"{', '.join(p.name for p in summary.files)}", markup=False, highlight=False, soft_wrap=True)
