"""The ``omarbench`` command line: one module per command, sharing the options of
:mod:`omarbench.cli.options`. Commands parse, call one library function and print; the library checks
what it is given, so its errors read the same from Python and from the command line."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from omarbench import __version__
from omarbench.cli import collect, datasets, report, tasks, train
from omarbench.cli import eval as eval_
from omarbench.errors import OmarbenchError
from omarbench.progress import make_console

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

console = make_console()
err_console = make_console(stderr=True)


def _help_width() -> None:
    """Help read through a pipe or a file (``omarbench eval --help | less``) is laid out as wide as the
    rest of the output there, not folded at 80 columns; a terminal keeps its own width; $TERMINAL_WIDTH wins."""
    import os

    import typer.rich_utils as rich_utils

    from omarbench.progress import PIPE_WIDTH

    try:
        tty = sys.stdout.isatty()
    except (AttributeError, ValueError):
        tty = False
    if not tty and not os.environ.get("TERMINAL_WIDTH"):
        rich_utils.MAX_WIDTH = PIPE_WIDTH


_help_width()


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
    """Console entry point: user-facing errors, bad options included, become one line on stderr and exit
    code 2 (never a traceback)."""
    sys.exit(run_cli(app))


def run_cli(application, args=None, prog: str = "omarbench") -> int:
    """Run a Typer application; return its exit code. Errors print one line: ``error: ...``."""
    from typer import Abort
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

    try:
        rv = application(args=args, prog_name=prog, standalone_mode=False)
    except NoArgsIsHelpError as exc:  # a bare group: its help, as without standalone mode
        exc.show()
        return 2
    except UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else prog
        hint = f" (see '{where} --help')"
        err_console.print(f"error: {' '.join(exc.format_message().split())}{hint}", markup=False,
                          highlight=False, soft_wrap=True)
        return 2
    except OmarbenchError as exc:
        err_console.print(f"error: {' '.join(str(exc).split())}", markup=False, highlight=False, soft_wrap=True)
        return 2
    except ClickException as exc:
        err_console.print(f"error: {' '.join(exc.format_message().split())}", markup=False, highlight=False,
                          soft_wrap=True)
        return exc.exit_code
    except (Abort, KeyboardInterrupt):
        err_console.print("aborted", markup=False, highlight=False)
        return 130
    return rv if isinstance(rv, int) else 0
