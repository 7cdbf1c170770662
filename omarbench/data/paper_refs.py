"""The OMAR paper's reference returns and its datasets' mean returns, as data with their origin.

Source: Pan, Huang, Ma and Xu, "Plan Better Amid Conservatism: Offline Multi-Agent Reinforcement
Learning with Actor Rectification", ICML 2022 (arXiv:2111.11188). The paper normalises scores as
``100 (S - S_random) / (S_expert - S_random)`` with the reference returns below; the dataset mean
returns are those of the datasets released with the authors' code (one training run per task and level).
They describe the paper's scenarios only: the ``paper`` flavor with the paper's team sizes.
"""

from __future__ import annotations

from typing import Any

from omarbench.tasks.spec import SPREAD_DEFAULT_AGENTS, Task

CITATION = (
    "Pan, Huang, Ma, Xu. Plan Better Amid Conservatism: Offline Multi-Agent Reinforcement Learning with "
    "Actor Rectification. ICML 2022. arXiv:2111.11188"
)
BIBTEX_KEY = "pan2022plan"

# Reference returns used for the paper's normalised scores.
PAPER_REFERENCE_RETURNS: dict[str, dict[str, float]] = {
    "spread": {"random": 159.8, "expert": 516.8},
    "tag": {"random": -4.1, "expert": 185.6},
    "world": {"random": -6.8, "expert": 79.5},
    "halfcheetah-2x3": {"random": -284.0, "expert": 3568.8},
    # maze2d: the paper normalises with D4RL's maze2d-*-v1 ref_min_score / ref_max_score
    "maze2d-umaze": {"random": 23.85, "expert": 161.86},
    "maze2d-medium": {"random": 13.13, "expert": 277.39},
    "maze2d-large": {"random": 6.7, "expert": 273.99},
}

# Mean reported return of the authors' released datasets, per level.
PAPER_DATASET_MEAN_RETURNS: dict[str, dict[str, float]] = {
    "spread": {"random": 159.6, "medium-replay": 203.7, "medium": 273.4, "expert": 531.0},
    "tag": {"random": -4.1, "medium-replay": 3.9, "medium": 116.4, "expert": 207.9},
    "world": {"random": -6.8, "medium-replay": 1.2, "medium": 65.9, "expert": 85.2},
    "halfcheetah-2x3": {"random": -282.9, "medium-replay": 423.5, "medium": 1568.9, "expert": 3338.7},
}

# Transitions in the authors' medium-replay datasets (the other levels hold 1M each).
PAPER_MEDIUM_REPLAY_SIZES: dict[str, int] = {
    "spread": 97_500, "tag": 62_500, "world": 80_000, "halfcheetah-2x3": 460_000,
}
PAPER_LEVEL_SIZE = 1_000_000


def paper_key(task: Task) -> str | None:
    """The paper's name for this task, or ``None`` if the paper has no numbers for it."""
    if task.flavor != "paper":
        return None
    if task.name == "spread" and task.n_agents != SPREAD_DEFAULT_AGENTS:
        return None
    # the tasks of the paper's MPE and HalfCheetah tables (maze2d's references are D4RL's: report.maze2d)
    return next((key for key in (task.name, task.id) if key in PAPER_DATASET_MEAN_RETURNS), None)


def paper_references(task: Task) -> dict[str, dict[str, float]] | None:
    """``{"random": {"mean": ...}, "expert": {"mean": ...}}`` for the task, shaped like stored references."""
    key = paper_key(task)
    if key is None:
        return None
    return {level: {"mean": value} for level, value in PAPER_REFERENCE_RETURNS[key].items()}


def paper_dataset(task: Task, level: str) -> dict[str, Any] | None:
    """The authors' dataset for (task, level): mean return and size, or ``None``."""
    key = paper_key(task)
    if key is None or key not in PAPER_DATASET_MEAN_RETURNS:
        return None
    size = PAPER_MEDIUM_REPLAY_SIZES[key] if level == "medium-replay" else PAPER_LEVEL_SIZE
    return {"mean_return": PAPER_DATASET_MEAN_RETURNS[key][level], "transitions": size}
