"""The options several commands share, each declared once (name, type, help)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from omarbench.vocab import BACKENDS, DEFAULT_SEEDS, FLAVORS, PRESETS

_presets = ", ".join(f"{p} ({DEFAULT_SEEDS[p]} seeds by default)" for p in PRESETS)

Root = Annotated[
    Path | None,
    typer.Option("--root", help="Data root (default: $OMARBENCH_DATA, else ~/.local/share/omarbench/datasets); "
                                "a preset other than paper keeps its datasets in <root>/<preset>."),
]
Results = Annotated[
    Path | None,
    typer.Option("--results", help="Results directory (default: <data root of the preset>/results)."),
]
Preset = Annotated[str, typer.Option("--preset", help=f"Budget: {', '.join(PRESETS)}.")]
Backend = Annotated[
    str, typer.Option("--backend", help=f"Environments: {' or '.join(BACKENDS)} (batched engine or the "
                                        "mpe2-based reference, one copy at a time).")
]
Flavor = Annotated[
    str | None, typer.Option("--flavor", help=f"Scenario flavor: {', '.join(FLAVORS)} (default: paper).")
]
Seeds = Annotated[
    str | None,
    typer.Option("--seeds", help=f"A count (5 = seeds 0-4), a list (0,1,2) or a range (0-4); default per preset: "
                                 f"{_presets}."),
]
Set = Annotated[
    list[str] | None, typer.Option("--set", help="Override a hyperparameter: --set rounds=500 (repeatable).")
]
Device = Annotated[str, typer.Option("--device", help="Torch device of the learners: cpu (default) or cuda.")]
Progress = Annotated[bool, typer.Option("--progress/--no-progress", help="Live progress display.")]
