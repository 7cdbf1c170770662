"""``omarbench datasets ...``: list, inspect, verify, document and export datasets. Parsing and printing only."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from omarbench.cli import options as opt
from omarbench.errors import UsageError

app = typer.Typer(
    help="Datasets on disk: list, inspect, verify, write cards, export.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)  # no folding in pipes

DatasetArg = Annotated[str, typer.Argument(help="Dataset id (tag-expert, spread-n5-medium-replay, "
                                                "tag:mpe2-random) or path to a .zarr store.")]


def _num(x, digits: int = 1) -> str:
    return "—" if x is None else f"{x:,.{digits}f}"


PresetOpt = Annotated[
    str | None,
    typer.Option("--preset", help="Whose datasets: paper (under the root), quick (under <root>/quick) or laptop "
                                  "(halfcheetah-2x3's under <root>/laptop, the others' the paper ones). "
                                  "Default: paper for one dataset; every preset for list."),
]


def _root(root: Path | None, preset: str | None, dataset: str | None = None) -> Path:
    """The one data-root rule of every command: --root (or its default), then <root>/<preset> for the
    presets that keep their datasets apart (for ``laptop``, halfcheetah-2x3's datasets only: ``dataset``
    names the task)."""
    from omarbench.data.schema import preset_root
    from omarbench.vocab import check_preset

    if preset is not None:
        check_preset(preset)
    return preset_root(root, preset or "paper", dataset)


@app.command("list")
def list_cmd(root: opt.Root = None, preset: PresetOpt = None) -> None:
    """Every dataset under the root (and its presets' sub-roots): size, return, digest, completeness."""
    from omarbench.data.schema import SUBROOT_PRESETS
    from omarbench.vocab import OWN_DATASETS

    presets = [preset] if preset is not None else ["paper", *SUBROOT_PRESETS]
    bases = [_root(root, p) for p in presets]
    bases += [_root(root, p, fam) for p in OWN_DATASETS if preset in (None, p) for fam in OWN_DATASETS[p]]
    bases = list(dict.fromkeys(bases))
    shown = [b for b in bases if b.is_dir()] if preset is None else bases
    if not any(_list_one(b) for b in shown):
        console.print(f"no datasets under {', '.join(str(b) for b in bases)}")


def _list_one(base: Path) -> bool:
    from omarbench.data.catalog import list_datasets

    entries = list_datasets(base)
    if not entries:
        return False
    table = Table(title=f"datasets under {base}", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("id", "level", "transitions", "episodes", "return", "norm.", "digest", "complete"):
        table.add_column(col, no_wrap=True)
    for e in entries:
        if e.error:
            table.add_row(e.path.name, "", "", "", "", "", "", "unreadable")
            continue
        table.add_row(
            e.id, e.level, f"{e.n_transitions:,}", f"{e.n_episodes:,}", _num(e.mean_return, 2),
            _num(e.normalised), (e.digest or "")[:10], "yes" if e.complete else "NO",
        )
    console.print(table)
    for e in entries:
        if e.error:
            console.print(f"unreadable {e.path.name}: {e.error}", markup=False)
    return True


@app.command("info")
def info_cmd(
    dataset: DatasetArg,
    root: opt.Root = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full metadata as JSON.")] = False,
    preset: PresetOpt = None,
) -> None:
    """A dataset's metadata: task, sizes, returns, references, provenance, digest, versions."""
    from omarbench.data.stats import normalised_score
    from omarbench.data.store import open_dataset, stored_size

    _, info = open_dataset(dataset, _root(root, preset, dataset))
    if as_json:
        console.print_json(json.dumps(info.attrs))
        return
    a = info.attrs
    ret = info.returns
    console.print(f"[bold]{info.id}[/]  {info.path}")
    console.print(f"complete: {'yes' if info.complete else 'NO (incomplete: resume or delete)'}   "
                  f"schema {a.get('schema_version')}   on disk {stored_size(info.path) / 1e6:,.1f} MB")
    console.print(f"task {info.task.id} ({info.task.flavor}), level {info.level}: "
                  f"{info.n_transitions:,} transitions, {info.n_episodes:,} episodes")
    table = Table()
    for col in ("index", "agent", "role", "obs dim", "act dim"):
        table.add_column(col)
    for i, ag in enumerate(info.task.agents):
        table.add_row(str(i), ag.name, ag.role, str(ag.obs_dim), str(ag.act_dim))
    console.print(table)
    if ret:
        console.print(f"return ({ret.get('rule')}): mean {_num(ret.get('mean'), 2)} ± {_num(ret.get('std'), 2)}, "
                      f"min {_num(ret.get('min'), 2)}, max {_num(ret.get('max'), 2)}; normalised "
                      f"{_num(normalised_score(ret.get('mean'), info.reference_returns))}")
    console.print(f"reference returns: {json.dumps(info.reference_returns)}")
    console.print(f"digest: {info.digest}")
    console.print(f"created {a.get('created')}, finalized {a.get('finalized')}; command: {a.get('command')}",
                  markup=False)
    console.print(f"seeds: {json.dumps(a.get('seeds'))}", markup=False)
    console.print(f"provenance: {json.dumps(a.get('provenance'))}", markup=False)
    console.print("versions: " + ", ".join(f"{k} {v}" for k, v in (a.get("versions") or {}).items()),
                  markup=False)


@app.command("verify")
def verify_cmd(
    dataset: Annotated[str | None, typer.Argument(help="Dataset id or path (or use --all).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Verify every dataset under the root.")] = False,
    root: opt.Root = None,
    preset: PresetOpt = None,
) -> None:
    """Decode every chunk (checksums) and recompute the digest; exit 1 if anything is wrong."""
    from omarbench.data.catalog import list_datasets
    from omarbench.data.verify import verify_dataset

    if (dataset is None) == (not all_):
        raise UsageError("give either a dataset id/path or --all (not both)")
    root = _root(root, preset, dataset)
    targets = [dataset] if dataset is not None else [str(e.path) for e in list_datasets(root)]
    if not targets:
        console.print("no datasets to verify")
        return
    failed = 0
    for target in targets:
        result = verify_dataset(target, root)
        name = result.id or str(result.path)
        if result.ok:
            console.print(f"OK    {name}: {result.chunks_checked} chunks, digest {result.digest_computed}",
                          markup=False)
        else:
            failed += 1
            console.print(f"FAIL  {name}:", markup=False)
            for p in result.problems:
                console.print(f"      - {p}", markup=False)
        for w in result.warnings:
            console.print(f"      warning: {w}", markup=False)
    if failed:
        raise typer.Exit(1)


@app.command("card")
def card_cmd(
    dataset: DatasetArg,
    out: Annotated[Path, typer.Option("--out", help="Directory for the card and its histogram.")] = Path(
        "dataset_cards"),
    root: opt.Root = None,
    preset: PresetOpt = None,
) -> None:
    """Write the dataset card (Markdown) and its return histogram (PNG)."""
    from omarbench.data.card import write_card

    md, png = write_card(dataset, _root(root, preset, dataset), out)
    console.print(f"wrote {md} and {png}", markup=False)


@app.command("export")
def export_cmd(
    dataset: DatasetArg,
    fmt: Annotated[str, typer.Option("--format", help="omar-npy (the OMAR authors' per-agent .npy files), "
                                                      "npz (one file) or minari (single-agent datasets).")],
    out: Annotated[Path, typer.Option("--out", help="Output directory.")],
    root: opt.Root = None,
    force: Annotated[bool, typer.Option("--force", help="Replace existing files.")] = False,
    preset: PresetOpt = None,
) -> None:
    """Export a dataset to NumPy files, e.g. for the authors' code, or (one agent) to a Minari dataset."""
    if fmt == "minari":
        from omarbench.interop.minari import export_minari

        path = export_minari(dataset, out, _root(root, preset, dataset), force=force)
        console.print(f"wrote Minari dataset {path}", markup=False)
        return
    from omarbench.data.export import export_dataset

    files = export_dataset(dataset, fmt, out, _root(root, preset, dataset), force=force)
    console.print(f"wrote {len(files)} files to {out}", markup=False)


app.command("import")(__import__("omarbench.interop.cli", fromlist=["import_command"]).import_command)
