"""The ``omarbench`` command line: one module per command, sharing the options of
:mod:`omarbench.cli.options`. Commands parse, call one library function and print; the library checks
what it is given, so its errors read the same from Python and from the command line."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from omarbench import __version__
from omarbench.cli import collect, datasets, report, tasks, train
from omarbench.cli import eval as eval_
from omarbench.errors import OmarbenchError

app = typer.Typer(
    help="omarbench: offline multi-agent RL on the OMAR paper's tasks, reproducible on a CPU.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
app.add_typer(tasks.app, name="tasks")
app.add_typer(datasets.app, name="datasets")
app.command("collect")(collect.collect_command)
app.add_typer(collect.prey_app, name="prey")
app.command("eval")(eval_.eval_command)
app.command("report")(report.report_command)
app.command("train")(train.train_command)

console = Console()
err_console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        console.print(f"omarbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """omarbench: offline multi-agent RL on the OMAR paper's tasks, reproducible on a CPU."""


def main() -> None:
    """Console entry point: user-facing errors become one line on stderr and exit code 2."""
    try:
        app()
    except OmarbenchError as exc:
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
