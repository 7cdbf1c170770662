"""``omarbench collect TASK --level LEVEL``: train the behaviour policy and write dataset levels."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from omarbench.cli import options as opt


def collect_command(
    task: Annotated[str, typer.Argument(help="Task id: spread, spread-n5, tag, world (add :mpe2 for stock), "
                                             "halfcheetah-2x3, maze2d-umaze, maze2d-medium, maze2d-large.")],
    level: Annotated[
        str, typer.Option("--level", help="all (default) or a comma list of random, medium-replay, medium, expert "
                                     "(maze2d: waypoint).")
    ] = "all",
    transitions: Annotated[
        int | None, typer.Option("--transitions", help="Size of random/medium/expert (default: the preset's).")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed of the behaviour run and the rollouts (default: the "
                                                "preset's seed for the task; paper: world 1, others 0).")
    ] = None,
    root: opt.Root = None,
    backend: opt.Backend = "numpy",
    preset: opt.Preset = "paper",
    flavor: opt.Flavor = None,
    progress: opt.Progress = True,
    retrain: Annotated[
        bool, typer.Option("--retrain", help="Train the behaviour run here even where the package ships it "
                                             "(hours instead of minutes; on another CPU the datasets then "
                                             "differ from the published cards).")
    ] = False,
) -> None:
    """Collect datasets: install the shipped behaviour run (or train, reuse, resume one), then write levels."""
    from omarbench.collect.api import collect
    from omarbench.progress import make_console

    console = make_console()
    paths = collect(task, level, transitions=transitions, seed=seed, root=root, backend=backend, preset=preset,
                    flavor=flavor, progress=progress, log=console.print, retrain=retrain)
    for p in paths:
        console.print(f"dataset ready: {p}")


prey_app = typer.Typer(help="The fixed prey of tag and world: train and ship it.", no_args_is_help=True)


@prey_app.command("train")
def prey_train_command(
    task: Annotated[str, typer.Argument(help="tag or world (add :mpe2 for the stock flavor).")],
    seed: Annotated[int, typer.Option("--seed", help="Seed of the co-training run.")] = 0,
    steps: Annotated[int | None, typer.Option("--steps", help="Co-training steps (default: shipped).")] = None,
    root: Annotated[Path | None, typer.Option("--root", help="Where the co-training run is kept.")] = None,
    backend: opt.Backend = "numpy",
    out: Annotated[
        Path | None, typer.Option("--out", help="Weights file (default: the package's prey asset).")
    ] = None,
    pick: Annotated[int | None, typer.Option(
        "--pick", help="Write the prey of the checkpoint at this step, not the rule's choice (ablations)."
    )] = None,
) -> None:
    """Co-train predators and prey, score every checkpoint's prey, ship the one the selection rule picks."""
    from dataclasses import replace

    from omarbench.collect.prey_training import PREY_RUN, train_prey
    from omarbench.errors import UsageError
    from omarbench.guard import MAX_STEPS, check_int
    from omarbench.progress import make_console

    if steps is not None and steps <= 0:
        raise UsageError(f"--steps must be a positive integer, got {steps}")
    if steps is not None:
        check_int("--steps", steps, 1, MAX_STEPS)
    config = PREY_RUN if steps is None else replace(PREY_RUN, total_steps=steps)
    console = make_console()
    train_prey(task, seed=seed, root=root, backend=backend, config=config, out=out, log=console.print, pick=pick)
