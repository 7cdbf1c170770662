"""``omarbench report``: rebuild the leaderboard (tables, statistics, plots) from a results directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def report_command(
    results: Annotated[
        Path | None, typer.Option("--results", help="Results directory (default: <data root>/results; "
                                                "<data root>/quick/results with --preset quick).")
    ] = None,
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
    root: Annotated[Path | None, typer.Option("--root", help="Data root, for the default results directory.")]
    = None,
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Leave out malformed record files (listed in the report) "
                                               "instead of stopping.")
    ] = False,
) -> None:
    """Tables (Markdown, LaTeX, CSV), aggregates with CIs, the paper side by side, plots: from records alone."""
    from omarbench.progress import make_console
    from omarbench.report.build import REFERENCES, build_report
    from omarbench.sweep import PRESETS, check_choice, default_root, parse_tasks

    check_choice("references", references, REFERENCES)
    if preset is not None:
        check_choice("preset", preset, PRESETS)
    task_list = parse_tasks(tasks) if tasks is not None else None
    from omarbench.data.schema import preset_root

    # the default results directory follows the preset's data root, as in ``omarbench eval``
    data_root = preset_root(default_root(root), preset or "paper")
    results_dir = results if results is not None else data_root / "results"
    summary = build_report(results_dir, out, references=references, scaling=scaling, preset=preset,
                           tasks=task_list, skip_bad=skip_bad)
    console = make_console()
    for note in summary.notes:
        console.print(f"note: {note}", markup=False, highlight=False)
    console.print(f"report of {summary.n_records} run record(s) (preset {summary.preset}) written to {out}: "
                  f"{', '.join(p.name for p in summary.files)}", markup=False, highlight=False, soft_wrap=True)
