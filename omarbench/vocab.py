"""The project's shared words, each list defined once: dataset levels, presets, backends, flavors,
executors, the paper's tasks, seed defaults; and the parsers and checks that turn user text into them.

The ground floor of the package: it imports nothing of omarbench but :mod:`omarbench.errors`, so every
stage can use it. Algorithm names come from the algorithm registry (:mod:`omarbench.offline.algos`),
task ids from :mod:`omarbench.tasks.spec`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from omarbench.errors import UsageError, bad_choice

LEVELS: tuple[str, ...] = ("random", "medium-replay", "medium", "expert")  # the canonical order
# maze2d has one dataset per maze, made by the waypoint controller (D4RL's method); its level is named after it
MAZE2D_LEVELS: tuple[str, ...] = ("waypoint",)
ALL_LEVELS: tuple[str, ...] = LEVELS + MAZE2D_LEVELS
PRESETS: tuple[str, ...] = ("paper", "quick", "laptop")  # budgets of collection and training together
# ``laptop``: a training budget for maze2d that this project's 2-core machine finishes for the whole grid
# (omarbench.offline.maze2d_presets); its datasets are the ``paper`` ones
DATA_PRESETS: dict[str, str] = {"laptop": "paper"}  # presets that train on another preset's datasets
# ... except for these task families, whose preset has datasets of its own: halfcheetah-2x3's ``laptop``
# collection is a shorter behaviour run than ``paper``'s (omarbench.collect.mujoco)
OWN_DATASETS: dict[str, tuple[str, ...]] = {"laptop": ("halfcheetah",)}
DEFAULT_SEEDS: dict[str, int] = {"paper": 5, "quick": 2, "laptop": 5}  # seeds 0..N-1 when none are given
BACKENDS: tuple[str, ...] = ("numpy", "mpe2")  # environments: the batched engine, the mpe2-based reference
FLAVORS: tuple[str, ...] = ("paper", "mpe2")  # scenarios: the authors', stock mpe2
EXECUTORS: tuple[str, ...] = ("local", "ray")
PAPER_TASKS: tuple[str, ...] = ("spread", "tag", "world")
PAPER_ALGOS: tuple[str, ...] = ("MA-ICQ", "MA-TD3+BC", "MA-CQL", "OMAR")  # the paper's MPE table
SCALING_ALGOS: tuple[str, ...] = ("MA-CQL", "OMAR")  # the paper's agent-count study
SCALING_LEVEL = "medium-replay"  # the agent-count study's datasets


def check_choice(kind: str, value: str, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``, else a one-line :class:`UsageError` naming them."""
    if value not in choices:
        raise bad_choice(kind, value, choices)
    return value


def level_name(text: str) -> str:
    """A level as users type it (any case, ``_`` for ``-``: Medium, medium_replay) in its canonical spelling;
    text that names no level comes back unchanged (for the check to name it)."""
    key = str(text).strip().lower().replace("_", "-")
    return key if key in ALL_LEVELS else str(text)


def check_level(level: str) -> str:
    """The canonical spelling of an MPE dataset level (see :func:`level_name`), else a one-line error."""
    return check_choice("level", level_name(level), LEVELS)


def check_preset(preset: str) -> str:
    return check_choice("preset", preset, PRESETS)


def task_family(task_id: str) -> str:
    """A task id's family, the part before its first ``-`` or ``:`` (``halfcheetah-2x3`` → ``halfcheetah``)."""
    return str(task_id).split(":")[0].split("-")[0]


def data_preset(preset: str, task_id: str | None = None) -> str:
    """The preset whose datasets (and collection budgets) ``preset`` uses for ``task_id``: ``laptop`` →
    ``paper`` (maze2d), but ``laptop`` for halfcheetah-2x3 (:data:`OWN_DATASETS`)."""
    if task_id is not None and task_family(task_id) in OWN_DATASETS.get(preset, ()):
        return preset
    return DATA_PRESETS.get(preset, preset)


def check_backend(backend: str) -> str:
    return check_choice("backend", backend, BACKENDS)


def items(text: str) -> list[str]:
    """The non-empty items of a comma list."""
    return [t.strip() for t in str(text).split(",") if t.strip()]


def parse_levels(text: str, choices: tuple[str, ...] = ALL_LEVELS) -> tuple[str, ...]:
    """``all`` or a comma list of ``choices``, kept in their order (by default every level of every task,
    so MPE's four and maze2d's ``waypoint``, ``all`` included; a grid keeps the ones each task has)."""
    chosen = items(text)
    if len(chosen) == 1 and chosen[0].lower() == "all":
        return choices
    if not chosen:
        raise bad_choice("level", text, choices + ("all",))
    for item in chosen:
        if level_name(item) not in choices:
            raise bad_choice("level", item, choices + ("all",))
    lowered = {level_name(i) for i in chosen}
    return tuple(lv for lv in choices if lv in lowered)


def int_list(text: str, what: str, example: str, limit: int = 1_000_000) -> list[int]:
    """``0-2,5`` → ``[0, 1, 2, 5]`` (sorted, unique, >= 0, at most ``limit`` of them); a one-line error
    naming ``example`` otherwise."""
    out: list[int] = []
    for item in items(text):
        lo, sep, hi = item.partition("-")
        try:
            if sep:
                a, b = int(lo), int(hi)
                if a > b or b - a + 1 + len(out) > limit:
                    raise ValueError
                out.extend(range(a, b + 1))
            else:
                out.append(int(item))
        except ValueError:
            raise UsageError(f"bad {what} {text!r}; expected {example}") from None
    if not out or min(out) < 0 or len(set(out)) > limit:
        raise UsageError(f"bad {what} {text!r}; expected {example}")
    return sorted(set(out))


def parse_seeds(text: str) -> tuple[int, ...]:
    """``5`` (a count: seeds 0..4), ``0,1,2`` (a list) or ``0-4`` (an inclusive range, may be mixed in a list)."""
    from omarbench.guard import MAX_SEED, MAX_SEEDS

    example = f"a count (5), a list (0,1,2) or a range (0-4) of seeds in 0..{MAX_SEED}, at most {MAX_SEEDS:,}"
    text = str(text).strip()
    if text.isdigit():
        n = int(text)
        if not 1 <= n <= MAX_SEEDS:
            raise UsageError(f"bad seeds {text!r}; expected {example}")
        return tuple(range(n))
    seeds = int_list(text, "seeds", example, limit=MAX_SEEDS)
    if seeds[-1] > MAX_SEED:
        raise UsageError(f"bad seeds {text!r}; expected {example}")
    return tuple(seeds)


def seeds_or_default(text: str | None, preset: str) -> tuple[int, ...]:
    """The seeds asked for, or the preset's default count (the same for ``train`` and ``eval``)."""
    return parse_seeds(text if text is not None else str(DEFAULT_SEEDS[check_preset(preset)]))


def parse_overrides(pairs: Iterable[str] | None) -> dict[str, str]:
    """``["rounds=500", "alpha=1"]`` → ``{"rounds": "500", "alpha": "1"}`` (the config types the values)."""
    out: dict[str, str] = {}
    for item in pairs or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UsageError(f"bad --set {item!r}; expected KEY=VALUE, e.g. rounds=500")
        out[key.strip()] = value.strip()
    return out


def format_seeds(seeds: Iterable[int]) -> str:
    """``(0, 1, 2, 4)`` → ``0-2,4``."""
    seeds = sorted(seeds)
    parts, i = [], 0
    while i < len(seeds):
        j = i
        while j + 1 < len(seeds) and seeds[j + 1] == seeds[j] + 1:
            j += 1
        parts.append(str(seeds[i]) if i == j else f"{seeds[i]}-{seeds[j]}")
        i = j + 1
    return ",".join(parts)


def check_positive(name: str, value: int | None) -> int | None:
    """``value`` if it is None or a positive integer, else a one-line :class:`UsageError`."""
    if value is not None and value < 1:
        raise UsageError(f"{name} must be a positive integer, got {value}")
    return value


def normalised_score(value: float, random: float, expert: float) -> float:
    """``100 · (value − random) / (expert − random)``: 0 is the random reference, 100 the expert one.
    NaN when a reference is missing or the two are equal (the one definition every stage uses)."""
    if not (math.isfinite(random) and math.isfinite(expert)) or expert == random:
        return math.nan
    return 100.0 * (value - random) / (expert - random)
