"""Named training budgets (``paper``, ``quick``) and the paper's per-dataset hyperparameter table.

``paper`` is what the authors' code ran on MPE (docs/protocol.md §4–§5): update rounds per task and level
(spread 2,000, random 6,000; tag 2,000, medium-replay 1,000; world 1,000), evaluation every 10 rounds
on 10 episodes, and the per-dataset OMAR τ / CQL α table of their ``env_config_map``. ``quick`` keeps
every coefficient but shrinks the budget so the whole grid (5 algorithms × 3 tasks × 4 levels) runs as
a smoke test in minutes: 400 rounds of batch 256, evaluation every 50 rounds. Every value can be
overridden (``overrides={"rounds": 500}`` / ``--set rounds=500``).

Tasks other than the paper's three use the table row of their family: ``spread-nN`` and ``spread:mpe2``
use spread's, ``tag:mpe2`` tag's, ``world:mpe2`` world's.

``halfcheetah-2x3`` (the family ``halfcheetah``) has its own row, the authors' MaMuJoCo settings
(docs/protocol.md §4–§5, their ``main.py``): hidden 256, batch 256, Adam 3e-4, soft update 0.005,
100,000 rounds (1M loop steps, one round per 10), evaluation every 500 rounds on 10 episodes, MA-CQL's
uniform + policy samples and OMAR's CEM search (2 iterations, 20 samples, 5 elites), and their τ / α per
level. γ stays 0.95: their code sets 0.99 for HalfCheetah but, as on MPE, never passes it to the
learner (``--set gamma=0.99`` gives the intended value). ``quick`` shrinks the budget (rounds 100, batch
256, evaluation every 50 rounds on 2 episodes, 5 final episodes); :data:`HALFCHEETAH_LAPTOP` is the
budget this project's 2-core machine can finish for the whole grid (README, "Two-agent HalfCheetah").
The maze2d tasks have their own presets (``paper``, ``laptop``, ``quick``;
:mod:`omarbench.offline.maze2d_presets`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omarbench.offline.algos import canonical_name, get_algorithm
from omarbench.offline.algos.core import TD3Config
from omarbench.tasks.maze2d import is_maze2d
from omarbench.tasks.spec import Task, parse_task_id
from omarbench.vocab import LEVELS, check_choice, check_preset, level_name

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

# the authors' MaMuJoCo settings (their main.py / maddpg.py), every algorithm; τ / α come from the table
PAPER_ROUNDS["halfcheetah"] = dict.fromkeys(LEVELS, 100_000)
PAPER_COEFFICIENTS["halfcheetah"] = {"random": (1.0, 1.0), "medium-replay": (0.9, 5.0), "medium": (0.7, 1.0),
                                     "expert": (0.5, 5.0)}
FAMILY_VALUES: dict[str, dict[str, Any]] = {
    "halfcheetah": {"hidden": 256, "batch_size": 256, "lr": 3e-4, "soft_update": 0.005, "eval_every": 500,
                    "eval_episodes": 10, "final_episodes": 100, "cql_sampler": "uniform+policy",
                    "cql_actions": 10, "cql_policy_noise": 0.2, "omar_search": "cem", "omar_iters": 2,
                    "omar_samples": 20, "omar_elites": 5, "omar_mu0": 0.0, "omar_sigma0": 2.0},
}
FAMILY_QUICK: dict[str, dict[str, Any]] = {
    "halfcheetah": {"rounds": 100, "batch_size": 256, "eval_every": 50, "eval_episodes": 2, "final_episodes": 5},
}
# The laptop budget of the HalfCheetah grid (4 algorithms x 4 levels x 5 seeds on this project's 2-core
# machine): the paper preset with these overrides (``--set rounds=500 --set eval_every=250
# --set final_episodes=20``), about 2.8 CPU-hours for the 80 seed-runs (``python -m omarbench.perf
# halfcheetah``; README, "Two-agent HalfCheetah").
HALFCHEETAH_LAPTOP: dict[str, Any] = {"rounds": 500, "eval_every": 250, "final_episodes": 20}
# the ``laptop`` preset of the families that have one besides maze2d (whose budgets are its own module's)
FAMILY_LAPTOP: dict[str, dict[str, Any]] = {"halfcheetah": HALFCHEETAH_LAPTOP}


def preset_values(algo: str, task: Task | str, level: str, preset: str = "paper") -> dict[str, Any]:
    """The preset's values for one run (only the keys the algorithm's config has)."""
    name = canonical_name(algo)
    task = parse_task_id(task) if isinstance(task, str) else task
    level = check_task_level(task, level)
    check_preset(preset)
    fields = get_algorithm(name).config_cls.__dataclass_fields__
    if is_maze2d(task):
        from omarbench.offline.maze2d_presets import maze2d_values

        return {k: v for k, v in maze2d_values(name, preset).items() if k in fields}
    from omarbench.offline.maze2d_presets import check_mpe_preset

    if task.name not in FAMILY_LAPTOP:
        check_mpe_preset(preset, task.id)
    tau, alpha = PAPER_COEFFICIENTS[task.name][level]
    values: dict[str, Any] = {"rounds": PAPER_ROUNDS[task.name][level], "tau": tau, "alpha": alpha,
                              **FAMILY_VALUES.get(task.name, {})}
    if preset == "quick":
        values.update(FAMILY_QUICK.get(task.name, QUICK))
    elif preset == "laptop":
        values.update(FAMILY_LAPTOP[task.name])
    return {k: v for k, v in values.items() if k in fields}


def check_task_level(task: Task, level: str) -> str:
    """``level`` if ``task`` has a dataset of that level (MPE: the four levels; maze2d: ``waypoint``)."""
    from omarbench.data.schema import task_levels

    return check_choice("level", level_name(level), task_levels(task))


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

