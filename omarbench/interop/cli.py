"""``omarbench datasets import og-marl PATH``: parsing and printing only (the work is in og_marl.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from omarbench.errors import bad_choice

IMPORT_FORMATS = ("og-marl",)


def import_command(
    fmt: Annotated[str, typer.Argument(help="Source format: og-marl (a flashbax vault of OG-MARL).")],
    path: Annotated[Path, typer.Argument(help="The vault: a uid folder (…/simple_tag.vlt/Expert) or the .vlt "
                                              "folder with --uid.")],
    uid: Annotated[str | None, typer.Option("--uid", help="Which dataset of a .vlt folder (Random, "
                                                          "Medium-Replay, Medium, Expert).")] = None,
    batch: Annotated[int, typer.Option("--batch", help="Batch row of the vault: the OMAR authors' vaults hold "
                                                       "one per training seed (0-4).")] = 0,
    task: Annotated[str | None, typer.Option("--task", help="Task id (default: from the vault name).")] = None,
    level: Annotated[str | None, typer.Option("--level", help="Level (default: from the uid).")] = None,
    root: Annotated[Path | None, typer.Option("--root", help="Where to write the dataset (default: "
                                                             "<data root>/og-marl).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing dataset.")] = False,
) -> None:
    """Import another project's dataset into our Zarr format (per-agent groups, episodes, provenance)."""
    from omarbench.progress import make_console

    if fmt not in IMPORT_FORMATS:
        raise bad_choice("import format", fmt, IMPORT_FORMATS)
    from omarbench.interop.og_marl import import_vault

    store, digest = import_vault(path, root, uid=uid, batch=batch, task=task, level=level, force=force)
    make_console().print(f"wrote {store} (digest {digest[:12]}); train on it with --root {store.parent}",
                         markup=False, highlight=False, soft_wrap=True)
