"""Our scores next to the paper's, and which of the paper's claims hold, computed from both.

Each claim is evaluated the same way on the paper's table (mean, std, 5 seeds) and on our records, so
the report shows whether it held in the paper's own numbers and whether it holds in ours.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from omarbench.report import stats
from omarbench.report.paper import PAPER_SEEDS, PAPER_TABLE_TASKS, PAPER_TABLES, paper_table, tables_of
from omarbench.report.tables import ScoreTable, format_cell
from omarbench.vocab import LEVELS, PAPER_ALGOS

TARGET = "OMAR"
BASELINES = ("MA-ICQ", "MA-TD3+BC", "MA-CQL")


@dataclass(frozen=True)
class Summary:
    """One algorithm in one (level, task) cell: mean, std, seed count and, for our runs, the values."""

    mean: float
    std: float
    n: int
    values: tuple[float, ...] | None = None


Cells = Mapping[tuple[str, str, str], Summary]  # (level, task, algo) -> Summary


def ours(table: ScoreTable) -> dict[tuple[str, str, str], Summary]:
    """Our cells on the paper's tasks and algorithms (cells with at least one finished seed)."""
    out = {}
    for (level, task, algo), c in table.cells.items():
        if task in PAPER_TABLE_TASKS and algo in PAPER_ALGOS and c.n:
            out[(level, task, algo)] = Summary(c.mean, c.std, c.n, c.values)
    return out


def paper(tables: Sequence[str] = ("mpe",)) -> dict[tuple[str, str, str], Summary]:
    df = paper_table(tables)
    return {(r.level, r.task, r.algo): Summary(float(r.mean), float(r.std), PAPER_SEEDS)
            for r in df.itertuples(index=False)}


def welch(a: Summary, b: Summary) -> float:
    if a.values is not None and b.values is not None:
        return stats.welch_p(a.values, b.values)
    return stats.welch_p_from_stats(a.mean, a.std, a.n, b.mean, b.std, b.n)


def _grid(cells: Cells) -> list[tuple[str, str]]:
    return sorted({(lv, t) for lv, t, _ in cells})


def _row(cells: Cells, level: str, task: str) -> dict[str, Summary]:
    return {a: cells[(level, task, a)] for a in PAPER_ALGOS if (level, task, a) in cells}


def bold_flags(cells: Cells, alpha: float = stats.ALPHA) -> dict[tuple[str, str, str], bool]:
    """Best mean of each row, plus entries not significantly below it (as in our own table)."""
    out = {}
    for level, task in _grid(cells):
        row = _row(cells, level, task)
        best = max(row.values(), key=lambda s: s.mean)
        for a, s in row.items():
            p = welch(s, best)
            out[(level, task, a)] = s.mean == best.mean or (math.isfinite(p) and p >= alpha)
    return out


# ------------------------------------------------------------------------------------------ claims


@dataclass(frozen=True)
class Verdict:
    holds: int  # cells (or comparisons) where it holds
    of: int  # cells (or comparisons) evaluated
    detail: str = ""

    def text(self) -> str:
        if self.of == 0:
            return "not evaluated (no data)"
        if self.holds == self.of:
            word = "holds"
        elif self.holds == 0:
            word = "does not hold"
        else:
            word = "partly"
        count = f" ({self.holds}/{self.of})" if self.of > 1 else ""
        detail = f"; {self.detail}" if self.detail else ""
        return f"{word}{count}{detail}"


@dataclass(frozen=True)
class Claim:
    claim: str
    paper: str  # verdict on the paper's own numbers
    ours: str  # verdict on our records


def _cells_with_target(cells: Cells) -> list[tuple[str, str, dict[str, Summary]]]:
    out = []
    for level, task in _grid(cells):
        row = _row(cells, level, task)
        if TARGET in row and any(a in row for a in BASELINES):
            out.append((level, task, row))
    return out


def omar_best(cells: Cells) -> Verdict:
    rows = _cells_with_target(cells)
    k = sum(row[TARGET].mean >= max(s.mean for s in row.values()) for _, _, row in rows)
    return Verdict(k, len(rows))


def omar_best_or_tied(cells: Cells, alpha: float = stats.ALPHA) -> Verdict:
    rows = _cells_with_target(cells)
    k = 0
    for _, _, row in rows:
        best = max(row.values(), key=lambda s: s.mean)
        p = welch(row[TARGET], best)
        k += row[TARGET].mean >= best.mean or (math.isfinite(p) and p >= alpha)
    return Verdict(k, len(rows))


def omar_beats(cells: Cells, baseline: str) -> Verdict:
    rows = [(lv, t, r) for lv, t, r in _cells_with_target(cells) if baseline in r]
    k = sum(r[TARGET].mean > r[baseline].mean for _, _, r in rows)
    return Verdict(k, len(rows))


def average_scores(cells: Cells) -> dict[str, float]:
    """Mean of the cell means per algorithm, over the cells where every paper algorithm has a score."""
    common = [(lv, t) for lv, t in _grid(cells) if all((lv, t, a) in cells for a in PAPER_ALGOS)]
    if not common:
        return {}
    return {a: float(np.mean([cells[(lv, t, a)].mean for lv, t in common])) for a in PAPER_ALGOS}


def omar_best_average(cells: Cells) -> Verdict:
    avg = average_scores(cells)
    if not avg:
        return Verdict(0, 0)
    best_other = max(BASELINES, key=lambda a: avg[a])
    detail = f"OMAR {avg[TARGET]:.1f} vs {best_other} {avg[best_other]:.1f}"
    return Verdict(int(avg[TARGET] > avg[best_other]), 1, detail)


def evaluate_claims(table: ScoreTable, improvement: Mapping[str, stats.Estimate] | None = None) -> list[Claim]:
    """The paper's claims about its tables (those of ``table``'s tasks: MPE, HalfCheetah), each evaluated on
    the paper's numbers and on ours."""
    theirs, mine = paper(tables_of(table.tasks)), ours(table)
    claims = [
        Claim("OMAR has the highest mean score in every task–level cell",
              omar_best(theirs).text(), omar_best(mine).text()),
        Claim("OMAR is best or statistically tied with the best in every cell (Welch, p ≥ 0.05)",
              omar_best_or_tied(theirs).text(), omar_best_or_tied(mine).text()),
        Claim("OMAR has the highest average normalised score over the cells",
              omar_best_average(theirs).text(), omar_best_average(mine).text()),
        Claim("OMAR's mean beats MA-CQL's in every cell (actor rectification helps CQL)",
              omar_beats(theirs, "MA-CQL").text(), omar_beats(mine, "MA-CQL").text()),
    ]
    if improvement:
        held = [b for b, e in improvement.items() if math.isfinite(e.lo) and e.lo > 0.5]
        evaluated = [b for b, e in improvement.items() if math.isfinite(e.value)]
        detail = ", ".join(f"{b} {improvement[b].fmt(2)}" for b in evaluated)
        claims.append(Claim(
            "P(OMAR > baseline) exceeds 0.5 for every baseline (95% CI above 0.5)",
            "not computable (the paper gives no per-seed scores)",
            Verdict(len(held), len(evaluated), detail).text(),
        ))
    return claims


def scaling_claims(ns: Sequence[int], omar_vs_cql: Sequence[stats.Estimate],
                   cql_vs_behaviour: Sequence[stats.Estimate]) -> list[Claim]:
    """The agent-count claims (docs/protocol.md §6) on our scaling runs (the paper shows them as figures only)."""
    claims = []
    pts = [(n, e.value) for n, e in zip(ns, omar_vs_cql) if math.isfinite(e.value)]
    pos = sum(v > 0 for _, v in pts)
    claims.append(Claim("OMAR improves on MA-CQL at every agent count (Fig. 2)", "claimed (figure)",
                        Verdict(pos, len(pts)).text()))
    claims.append(Claim("OMAR's gain over MA-CQL grows with the number of agents (Fig. 2)", "claimed (figure)",
                        _trend(pts, rising=True)))
    pts = [(n, e.value) for n, e in zip(ns, cql_vs_behaviour) if math.isfinite(e.value)]
    claims.append(Claim("MA-CQL's gain over the behaviour policy falls as agents are added (Fig. 1c)",
                        "claimed (figure)", _trend(pts, rising=False)))
    return claims


def _trend(points: Sequence[tuple[int, float]], rising: bool) -> str:
    """holds: strictly monotone; partly: Spearman's rho has the right sign; does not hold otherwise."""
    if len(points) < 3:
        return "not evaluated (fewer than 3 agent counts)"
    ns, vs = zip(*sorted(points))
    rho = stats.spearman(ns, vs)
    steps = np.diff(vs)
    monotone = bool(np.all(steps > 0) if rising else np.all(steps < 0))
    right_sign = math.isfinite(rho) and (rho > 0 if rising else rho < 0)
    word = "holds" if monotone else "partly" if right_sign else "does not hold"
    rho_text = f"{rho:.2f}" if math.isfinite(rho) else "n/a"
    return f"{word} (Spearman ρ = {rho_text}, {'strictly monotone' if monotone else 'not monotone'})"


# ------------------------------------------------------------------------------ side-by-side table


def comparison_rows(table: ScoreTable) -> list[dict[str, object]]:
    """Per (level, task, algo) of the paper's table: ours (mean, std, n, bold) and theirs (mean, std, bold)."""
    names = tables_of(table.tasks)
    theirs, mine = paper(names), ours(table)
    bold_t, bold_m = bold_flags(theirs), bold_flags(mine)
    rows = []
    for level in LEVELS:
        for task in [t for name in names for t in PAPER_TABLES[name]]:
            for algo in PAPER_ALGOS:
                k = (level, task, algo)
                p = theirs.get(k)
                c = table.cell(level, task, algo)
                rows.append({
                    "level": level, "task": task, "algo": algo,
                    "ours": format_cell(c), "ours_mean": c.mean if c and c.n else math.nan,
                    "ours_std": c.std if c and c.n else math.nan, "ours_n": c.n if c else 0,
                    "ours_bold": bool(bold_m.get(k)),
                    "paper": f"{p.mean:.1f} ± {p.std:.1f}" if p else "—",
                    "paper_mean": p.mean if p else math.nan, "paper_std": p.std if p else math.nan,
                    "paper_bold": bool(bold_t.get(k)),
                })
    return rows
