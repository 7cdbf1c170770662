"""Named training budgets (``paper``, ``quick``) and the paper's per-dataset hyperparameter table.

``paper`` is what the authors' code ran on MPE (docs/protocol.md §4–§5): update rounds per task and level
(spread 2,000, random 6,000; tag 2,000, medium-replay 1,000; world 1,000), evaluation every 10 rounds
on 10 episodes, and the per-dataset OMAR τ / CQL α table of their ``env_config_map``. ``quick`` keeps
every coefficient but shrinks the budget so the whole grid (5 algorithms × 3 tasks × 4 levels) runs as
a smoke test in minutes: 400 rounds of batch 256, evaluation every 50 rounds. Every value can be
overridden (``overrides={"rounds": 500}`` / ``--set rounds=500``).

Tasks other than the paper's three use the table row of their family: ``spread-nN`` and ``spread:mpe2``
use spread's, ``tag:mpe2`` tag's, ``world:mpe2`` world's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omarbench.offline.algos import canonical_name, get_algorithm
from omarbench.offline.algos.core import TD3Config
from omarbench.tasks.spec import Task, parse_task_id
from omarbench.vocab import check_level, check_preset

# update rounds of the authors' MPE runs (num_steps / steps_per_update with steps_per_update = 100)
PAPER_ROUNDS: dict[str, dict[str, int]] = {
    "spread": {"random": 6000, "medium-replay": 2000, "medium": 2000, "expert": 2000},
    "tag": {"random": 2000, "medium-replay": 1000, "medium": 2000, "expert": 2000},
    "world": {"random": 1000, "medium-replay": 1000, "medium": 1000, "expert": 1000},
}

# (OMAR τ, CQL α) per dataset, from the authors' code (docs/protocol.md §5 table)
PAPER_COEFFICIENTS: dict[str, dict[str, tuple[float, float]]] = {
    "spread": {"random": (1.0, 0.5), "medium-replay": (1.0, 1.0), "medium": (1.0, 5.0), "expert": (1.0, 5.0)},
    "tag": {"random": (0.9, 0.5), "medium-replay": (0.9, 0.5), "medium": (0.7, 5.0), "expert": (0.9, 5.0)},
    "world": {"random": (1.0, 0.5), "medium-replay": (0.7, 1.0), "medium": (0.1, 0.5), "expert": (0.9, 5.0)},
}

QUICK: dict[str, Any] = {"rounds": 400, "batch_size": 256, "eval_every": 50, "eval_episodes": 10,
                         "final_episodes": 100}


def preset_values(algo: str, task: Task | str, level: str, preset: str = "paper") -> dict[str, Any]:
    """The preset's values for one run (only the keys the algorithm's config has)."""
    name = canonical_name(algo)
    task = parse_task_id(task) if isinstance(task, str) else task
    level = check_level(level)
    check_preset(preset)
    fields = get_algorithm(name).config_cls.__dataclass_fields__
    tau, alpha = PAPER_COEFFICIENTS[task.name][level]
    values: dict[str, Any] = {"rounds": PAPER_ROUNDS[task.name][level], "tau": tau, "alpha": alpha}
    if preset == "quick":
        values.update(QUICK)
    return {k: v for k, v in values.items() if k in fields}


def make_config(algo: str, task: Task | str, level: str, preset: str = "paper",
                overrides: Mapping[str, Any] | None = None) -> TD3Config:
    """The full config of one run: algorithm defaults ← preset ← ``overrides`` (validated)."""
    cls = get_algorithm(algo).config_cls
    cfg = cls().replace(**preset_values(algo, task, level, preset))
    return cfg.replace(**dict(overrides or {})) if overrides else cfg


def resolve_config(algo: str, task: Task | str, level: str, preset: str = "paper",
                   overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The config dict a run records (the sweep's ``resolve_config`` hook)."""
    return make_config(algo, task, level, preset, overrides).to_dict()

