"""``omarbench train ALGO TASK LEVEL``: train one algorithm on one dataset, all seeds batched.

Seeds: ``0-4`` (inclusive range), ``0,2,5`` (list, ranges may be mixed in) or a bare count ``N`` meaning
seeds 0..N-1 — the same forms and the same per-preset default as ``omarbench eval``. Hyperparameters:
``--set key=value`` (repeatable) on top of the preset. Prints one line per seed; exit code 0 when every
seed finished, 1 when a seed failed (its record holds the reason), 2 for bad input.
"""

from __future__ import annotations

from typing import Annotated

import typer

from omarbench.cli import options as opt
from omarbench.vocab import LEVELS


def train_command(
    algo: Annotated[str, typer.Argument(help="Algorithm name or alias, any case: OMAR, MA-CQL, cql, iql, ...")],
    task: Annotated[str, typer.Argument(help="Task id, e.g. spread, spread-n5, tag, world:mpe2.")],
    level: Annotated[str, typer.Argument(help=f"Dataset level: {', '.join(LEVELS)}.")],
    seeds: opt.Seeds = None,
    preset: opt.Preset = "paper",
    root: opt.Root = None,
    results: opt.Results = None,
    device: opt.Device = "cpu",
    backend: opt.Backend = "numpy",
    set_: opt.Set = None,
    progress: opt.Progress = True,
    threads: Annotated[
        int | None, typer.Option("--threads", help="Torch threads (default: torch's, one per core).")
    ] = None,
    checkpoint_every: Annotated[
        int | None, typer.Option("--checkpoint-every", help="Rounds between checkpoints a killed run resumes "
                                                            "from (default 250; 0 = none).")
    ] = None,
) -> None:
    """Train one offline algorithm on one dataset; one run record per seed."""
    from omarbench.offline.checkpoint import resolve_every
    from omarbench.offline.presets import check_task_level
    from omarbench.offline.train import train
    from omarbench.paths import preset_root
    from omarbench.progress import make_console
    from omarbench.tasks.spec import parse_task_id
    from omarbench.vocab import check_positive, parse_overrides, seeds_or_default

    level = check_task_level(parse_task_id(task), level)  # any case, _ for -; the task's own levels
    seed_list = list(seeds_or_default(seeds, preset))
    check_positive("--threads", threads)
    resolve_every(checkpoint_every)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    console = make_console()
    data_root = str(preset_root(root, preset, task))  # the preset's datasets, as omarbench eval and collect use
    records = train(algo, task, level, seed_list, preset=preset, root=data_root,
                    results_dir=str(results) if results else None, device=device, backend=backend,
                    overrides=parse_overrides(set_), progress=progress, checkpoint_every=checkpoint_every)
    for rec in records:
        head = f"{rec['algo']} {rec['task']} {level} seed {rec['seed']}"
        if rec["status"] == "ok":
            fin = rec["final"]
            norm = "" if fin["normalised"] is None else f", normalised {fin['normalised']:.1f}"
            console.print(f"{head}: return {fin['return']:.2f} ± {fin['return_std']:.2f} over {fin['episodes']} "
                          f"episodes{norm}", markup=False, highlight=False, soft_wrap=True)
        else:
            console.print(f"{head}: failed: {rec['reason']}", markup=False, highlight=False, soft_wrap=True)
    if any(r["status"] != "ok" for r in records):
        raise typer.Exit(1)
