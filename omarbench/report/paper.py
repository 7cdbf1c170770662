"""The paper's published numbers, shipped as data with their origin.

``omarbench/assets/paper_tables.csv`` holds the tables of Pan, Huang, Ma and Xu, "Plan Better Amid
Conservatism: Offline Multi-Agent Reinforcement Learning with Actor Rectification", ICML 2022
(arXiv:2111.11188): the MPE table (normalised score, mean and std over 5 seeds), the multi-agent
HalfCheetah and maze2d tables, and two ablations, copied by hand from the paper. Columns:
``table, env, level, algo, mean, std``.

The reference returns (expert, random) the paper normalised its scores with ship with the datasets
module (:mod:`omarbench.data.paper_refs`) and are reused here. They apply to the paper flavor of the
tasks with the paper's team sizes only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from importlib import resources

import pandas as pd

from omarbench.data.paper_refs import CITATION as PAPER_CITATION
from omarbench.data.paper_refs import PAPER_REFERENCE_RETURNS
from omarbench.vocab import PAPER_TASKS, normalised_score  # the task ids (paper flavor) the MPE table covers

PAPER_SEEDS = 5  # the paper reports mean and std over five training seeds
# the paper's tables on omarbench tasks: their name in paper_tables.csv -> task ids, in the paper's order
PAPER_TABLES: dict[str, tuple[str, ...]] = {"mpe": PAPER_TASKS, "mamujoco": ("halfcheetah-2x3",)}
PAPER_TABLE_TASKS: tuple[str, ...] = tuple(t for ts in PAPER_TABLES.values() for t in ts)
PAPER_TABLE_TITLES: dict[str, str] = {"mpe": "MPE", "mamujoco": "HalfCheetah"}


def tables_of(tasks: Iterable[str]) -> list[str]:
    """The paper's tables that hold at least one of ``tasks`` (the MPE table when none does)."""
    names = [name for name, ts in PAPER_TABLES.items() if set(ts) & set(tasks)]
    return names or ["mpe"]


def load_paper_tables() -> pd.DataFrame:
    """Every table of the paper as one long frame (see the module docstring for the columns)."""
    with resources.files("omarbench").joinpath("assets/paper_tables.csv").open("r", encoding="utf-8") as f:
        df = pd.read_csv(f)
    df.attrs["citation"] = PAPER_CITATION
    return df


def paper_table(tables: Sequence[str] = ("mpe",)) -> pd.DataFrame:
    """The paper's tables named (:data:`PAPER_TABLES`; default its MPE table): columns task, level, algo,
    mean, std (task ids as in omarbench)."""
    df = load_paper_tables()
    df = df[df["table"].isin(list(tables))].rename(columns={"env": "task"})
    out = df[["task", "level", "algo", "mean", "std"]].reset_index(drop=True)
    out.attrs["citation"] = PAPER_CITATION
    return out


def normalise_with_paper(task: str, returns: pd.Series | float) -> pd.Series | float:
    """``100 (S − S_random) / (S_expert − S_random)`` with the paper's references (NaN for other tasks)."""
    refs = PAPER_REFERENCE_RETURNS.get(task) if task in PAPER_TABLE_TASKS else None
    if refs is None:
        return returns * float("nan")
    return normalised_score(returns, refs["random"], refs["expert"])
