"""The ``omarbench`` command line: parse, call one library function, print. No logic lives here."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from omarbench import __version__
from omarbench.errors import OmarbenchError
from omarbench.progress import make_console

app = typer.Typer(
    help="omarbench: offline multi-agent RL on the OMAR paper's tasks, reproducible on a CPU.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
tasks_app = typer.Typer(help="List and inspect the benchmark's tasks.", invoke_without_command=True)
app.add_typer(tasks_app, name="tasks")
app.add_typer(__import__("omarbench.data.cli", fromlist=["app"]).app, name="datasets")
app.command("collect")(__import__("omarbench.behaviour.cli", fromlist=["collect_command"]).collect_command)
app.add_typer(__import__("omarbench.behaviour.cli", fromlist=["prey_app"]).prey_app, name="prey")
app.command("eval")(__import__("omarbench.sweep_cli", fromlist=["eval_command"]).eval_command)
app.command("report")(__import__("omarbench.report.cli", fromlist=["report_command"]).report_command)
app.command("train")(__import__("omarbench.train_cli", fromlist=["train_command"]).train_command)

console = make_console()
err_console = make_console(stderr=True)

TaskArg = Annotated[str, typer.Argument(help="Task id, e.g. spread, spread-n5, tag:mpe2.")]
FlavorOpt = Annotated[
    str | None, typer.Option("--flavor", help="paper (default, the authors' scenarios) or mpe2 (stock).")
]


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


def _dims(dims: tuple[int, ...]) -> str:
    """``(16, 16, 16, 14)`` → ``16×3, 14`` (runs of equal sizes folded)."""
    runs: list[list[int]] = []
    for d in dims:
        if runs and runs[-1][0] == d:
            runs[-1][1] += 1
        else:
            runs.append([d, 1])
    return ", ".join(f"{d}×{k}" if k > 1 else str(d) for d, k in runs)


@tasks_app.callback()
def tasks_list(ctx: typer.Context, flavor: FlavorOpt = None) -> None:
    """Table of the tasks, their flavors, agents and dimensions."""
    if ctx.invoked_subcommand is not None:
        return
    from omarbench.tasks.spec import FLAVORS, default_tasks

    table = Table(title="omarbench tasks (spread takes -nN, 1 <= N <= 20; add :mpe2 for the stock flavor)")
    table.add_column("id", no_wrap=True)
    for col in ("flavor", "agents", "learners", "fixed", "obs dims", "act", "return", "T"):
        table.add_column(col)
    for fl in [flavor] if flavor else FLAVORS:
        for task in default_tasks(fl):
            table.add_row(
                task.id,
                task.flavor,
                str(task.n_agents),
                str(len(task.learner_indices)),
                str(len(task.fixed_indices)),
                _dims(task.obs_dims),
                "2",
                task.return_rule,
                str(task.episode_length),
            )
    console.print(table)


@tasks_app.command("show")
def tasks_show(task_id: TaskArg, flavor: FlavorOpt = None) -> None:
    """Everything about one task: agents, roles, dimensions, the fixed policy."""
    from omarbench.tasks.prey import fixed_policy_for
    from omarbench.tasks.spec import parse_task_id

    task = parse_task_id(task_id, flavor)
    console.print(f"[bold]{task.id}[/]  flavor={task.flavor}  episode length={task.episode_length}  "
                  f"reported return={task.return_rule}")
    table = Table()
    for col in ("index", "agent", "role", "obs dim", "act dim"):
        table.add_column(col)
    for i, a in enumerate(task.agents):
        table.add_row(str(i), a.name, a.role, str(a.obs_dim), str(a.act_dim))
    console.print(table)
    fixed = fixed_policy_for(task)
    if fixed is not None:
        note = " (placeholder: not the trained prey)" if getattr(fixed, "is_placeholder", False) else ""
        console.print(f"fixed agents follow: {fixed.name}{note}")


@tasks_app.command("rollout")
def tasks_rollout(
    task_id: TaskArg,
    flavor: FlavorOpt = None,
    episodes: Annotated[int, typer.Option(help="Number of episodes.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the actions and resets.")] = 0,
    backend: Annotated[
        str, typer.Option(help="numpy (batched engine, default) or mpe2 (reference, one env at a time).")
    ] = "numpy",
) -> None:
    """Step a task with uniform-random learners and print the reported return."""
    from omarbench.tasks.rollout import random_rollout
    from omarbench.tasks.spec import parse_task_id

    summary = random_rollout(parse_task_id(task_id, flavor), episodes=episodes, seed=seed, backend=backend)
    fixed = f", fixed agents: {summary.fixed_policy}" if summary.fixed_policy else ""
    console.print(
        f"{summary.task_id}: random policy, {summary.episodes} episodes{fixed}: "
        f"reported return {summary.mean:.2f} ± {summary.std:.2f}"
    )


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


if __name__ == "__main__":
    main()
