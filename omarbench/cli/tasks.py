"""``omarbench tasks [show | rollout]``: list and inspect the benchmark's tasks."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from omarbench.cli import options as opt
from omarbench.progress import make_console

app = typer.Typer(help="List and inspect the benchmark's tasks.", invoke_without_command=True)
console = make_console()

TaskArg = Annotated[str, typer.Argument(help="Task id, e.g. spread, spread-n5, tag:mpe2.")]


def _dims(dims: tuple[int, ...]) -> str:
    """``(16, 16, 16, 14)`` → ``16×3, 14`` (runs of equal sizes folded)."""
    runs: list[list[int]] = []
    for d in dims:
        if runs and runs[-1][0] == d:
            runs[-1][1] += 1
        else:
            runs.append([d, 1])
    return ", ".join(f"{d}×{k}" if k > 1 else str(d) for d, k in runs)


@app.callback()
def tasks_list(ctx: typer.Context, flavor: opt.Flavor = None) -> None:
    """Table of the tasks, their flavors, agents and dimensions."""
    if ctx.invoked_subcommand is not None:
        return
    from omarbench.tasks.spec import FLAVORS, default_tasks, parse_task_id

    table = Table(title="omarbench tasks (spread takes -nN, 1 <= N <= 20; add :mpe2 for the stock flavor)")
    tasks = [t for fl in ([flavor] if flavor else FLAVORS) for t in default_tasks(fl)]
    if flavor in (None, "paper"):
        tasks.append(parse_task_id("halfcheetah-2x3"))
    table.add_column("id", no_wrap=True)
    for col in ("flavor", "agents", "learners", "fixed", "obs dims", "act", "return", "T"):
        table.add_column(col)
    for task in tasks:
        table.add_row(
            task.id,
            task.flavor,
            str(task.n_agents),
            str(len(task.learner_indices)),
            str(len(task.fixed_indices)),
            _dims(task.obs_dims),
            str(task.act_dim),
            task.return_rule,
            str(task.episode_length),
        )
    console.print(table)


@app.command("show")
def tasks_show(task_id: TaskArg, flavor: opt.Flavor = None) -> None:
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
    if task.engine == "mujoco":
        from omarbench.tasks.mamujoco import JOINTS

        for a, joints in zip(task.agents, JOINTS[(task.name, task.layout)]):
            console.print(f"{a.name} drives {', '.join(joints)}")


@app.command("rollout")
def tasks_rollout(
    task_id: TaskArg,
    flavor: opt.Flavor = None,
    episodes: Annotated[int, typer.Option(help="Number of episodes.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the actions and resets.")] = 0,
    backend: opt.Backend = "numpy",
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
