"""``omarbench eval``: run the evaluation grid (or the agent-count study) from the command line.

Parses the options, calls :func:`omarbench.grid.sweep.run_sweep`, prints; exit code 0 when every run
finished, 1 when a run failed (it is recorded with its reason), 2 for bad input, 130 when interrupted.
"""

from __future__ import annotations

from typing import Annotated

import typer

from omarbench.cli import options as opt
from omarbench.errors import UsageError
from omarbench.vocab import EXECUTORS, PAPER_ALGOS, PAPER_TASKS, parse_levels, parse_overrides, seeds_or_default

_ALGOS_HELP = f"paper ({', '.join(PAPER_ALGOS)}; the default), all (every algorithm of the zoo), or a comma list."


def eval_command(
    algos: Annotated[str | None, typer.Option("--algos", help=_ALGOS_HELP)] = None,
    tasks: Annotated[
        str | None, typer.Option("--tasks", help=f"Comma list of task ids (default: {','.join(PAPER_TASKS)}).")
    ] = None,
    levels: Annotated[
        str | None, typer.Option("--levels", help="all (default) or a comma list of dataset levels.")
    ] = None,
    seeds: opt.Seeds = None,
    preset: opt.Preset = "paper",
    jobs: Annotated[
        int | None, typer.Option("--jobs", help="Jobs at a time (default: one per core, threads split evenly).")
    ] = None,
    executor: Annotated[str, typer.Option("--executor", help=f"{' or '.join(EXECUTORS)}.")] = "local",
    results: opt.Results = None,
    root: opt.Root = None,
    no_collect: Annotated[
        bool, typer.Option("--no-collect", help="Fail on missing datasets instead of collecting them.")
    ] = False,
    scaling: Annotated[
        bool, typer.Option("--scaling", help="The agent-count study: spread-nN, medium-replay, MA-CQL and OMAR.")
    ] = False,
    agents: Annotated[str, typer.Option("--agents", help="Agent counts for --scaling, e.g. 1-5 or 1-8.")] = "1-5",
    device: opt.Device = "cpu",
    backend: opt.Backend = "numpy",
    set_: opt.Set = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would run, run nothing.")] = False,
    progress: opt.Progress = True,
    checkpoint_every: Annotated[
        int | None, typer.Option("--checkpoint-every", help="Rounds between the checkpoints a killed job "
                                                            "resumes from (default 250; 0 = none).")
    ] = None,
) -> None:
    """Run the grid algos × tasks × levels × seeds; finished runs are skipped, so a killed sweep resumes."""
    from omarbench.grid import sweep
    from omarbench.offline.checkpoint import ENV_EVERY, resolve_every
    from omarbench.offline.train import check_device
    from omarbench.progress import make_console

    seed_list = seeds_or_default(seeds, preset)
    check_device(device)
    if checkpoint_every is not None:  # the jobs read it from the environment they inherit
        import os

        os.environ[ENV_EVERY] = str(resolve_every(checkpoint_every))
    settings = dict(
        preset=preset, root=str(root) if root else None, results_dir=str(results) if results else None,
        device=device, backend=backend, overrides=parse_overrides(set_) or None,
    )
    if scaling:
        given = [name for name, v in (("--algos", algos), ("--tasks", tasks), ("--levels", levels)) if v]
        if given:
            raise UsageError(f"--scaling fixes tasks, levels and algorithms; drop {', '.join(given)}")
        spec = sweep.scaling_spec(sweep.parse_agents(agents), seed_list, **settings)
    else:
        spec = sweep.SweepSpec(
            algos=sweep.parse_algos(algos if algos is not None else "paper"),
            tasks=sweep.parse_tasks(tasks if tasks is not None else "all"),
            levels=parse_levels(levels if levels is not None else "all"),
            seeds=seed_list,
            **settings,
        )
    console = make_console(stderr=True)
    try:
        outcome = sweep.run_sweep(
            spec, executor=executor, jobs=jobs, collect=not no_collect, progress=progress, dry_run=dry_run,
            console=console,
        )
    except KeyboardInterrupt:
        console.print("interrupted: finished runs are recorded; run the same command to resume", markup=False)
        raise typer.Exit(130) from None
    if outcome.failed:
        console.print(f"{len(outcome.failed)} run(s) failed; their records hold the reasons", markup=False)
    raise typer.Exit(outcome.exit_code)
