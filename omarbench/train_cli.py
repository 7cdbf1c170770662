"""``omarbench train ALGO TASK LEVEL``: train one algorithm on one dataset, all seeds batched.

Seeds: ``0-4`` (inclusive range), ``0,2,5`` (list, ranges may be mixed in) or a bare count ``N`` meaning
seeds 0..N-1 — the same forms as ``omarbench eval``. Hyperparameters: ``--set key=value`` (repeatable)
on top of the preset. Prints one line per seed; exit code 0 when every seed finished, 1 when a seed
failed (its record holds the reason), 2 for bad input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def train_command(
    algo: Annotated[str, typer.Argument(help="OMAR, MA-CQL, MA-TD3+BC, MA-ICQ or BC (aliases: omar, cql, ...).")],
    task: Annotated[str, typer.Argument(help="Task id, e.g. spread, spread-n5, tag, world:mpe2.")],
    level: Annotated[str, typer.Argument(help="Dataset level: random, medium-replay, medium or expert.")],
    seeds: Annotated[str, typer.Option("--seeds", help="0-4, 0,2,5 or a count N (= 0..N-1).")] = "0-4",
    preset: Annotated[str, typer.Option("--preset", help="paper (the authors' budgets) or quick.")] = "paper",
    root: Annotated[
        Path | None, typer.Option("--root", help="Data root (default: $OMARBENCH_DATA or its default); "
                                                 "--preset quick reads <root>/quick.")
    ] = None,
    results: Annotated[
        Path | None, typer.Option("--results", help="Results directory (default: <root>/results).")
    ] = None,
    device: Annotated[str, typer.Option("--device", help="cpu (default) or cuda.")] = "cpu",
    backend: Annotated[str, typer.Option("--backend", help="Evaluation environments: numpy or mpe2.")] = "numpy",
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a hyperparameter: --set rounds=500 (repeatable).")
    ] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Live progress bar.")] = True,
    threads: Annotated[
        int | None, typer.Option("--threads", help="Torch threads (default: torch's, one per core).")
    ] = None,
    checkpoint_every: Annotated[
        int | None, typer.Option("--checkpoint-every", help="Rounds between checkpoints a killed run resumes "
                                                            "from (default 250; 0 = none).")
    ] = None,
) -> None:
    """Train one offline algorithm on one dataset; one run record per seed."""
    from omarbench.algos import canonical_name
    from omarbench.errors import UsageError, bad_choice
    from omarbench.presets import check_level, check_preset, make_config, parse_overrides
    from omarbench.progress import make_console
    from omarbench.sweep import parse_seeds
    from omarbench.tasks.envs import BACKENDS
    from omarbench.tasks.spec import parse_task_id
    from omarbench.train import train

    name = canonical_name(algo)
    task_obj = parse_task_id(task)
    check_level(level)
    check_preset(preset)
    if backend not in BACKENDS:
        raise bad_choice("backend", backend, BACKENDS)
    seed_list = list(parse_seeds(seeds))
    overrides = parse_overrides(set_)
    make_config(name, task_obj, level, preset, overrides)  # bad overrides fail before any work
    from omarbench.checkpoint import resolve_every

    resolve_every(checkpoint_every)
    if threads is not None:
        if threads < 1:
            raise UsageError(f"--threads must be a positive integer, got {threads}")
        import torch

        torch.set_num_threads(threads)
    console = make_console()
    from omarbench.data import preset_root

    data_root = str(preset_root(root, preset))  # the preset's datasets, as omarbench eval and collect use
    records = train(name, task_obj, level, seed_list, preset=preset, root=data_root,
                    results_dir=str(results) if results else None, device=device, backend=backend,
                    overrides=overrides, progress=progress, checkpoint_every=checkpoint_every)
    for rec in records:
        if rec["status"] == "ok":
            fin = rec["final"]
            norm = "" if fin["normalised"] is None else f", normalised {fin['normalised']:.1f}"
            console.print(f"{name} {task_obj.id} {level} seed {rec['seed']}: return {fin['return']:.2f} "
                          f"± {fin['return_std']:.2f} over {fin['episodes']} episodes{norm}",
                          markup=False, highlight=False, soft_wrap=True)
        else:
            console.print(f"{name} {task_obj.id} {level} seed {rec['seed']}: failed: {rec['reason']}",
                          markup=False, highlight=False, soft_wrap=True)
    if any(r["status"] != "ok" for r in records):
        raise typer.Exit(1)
