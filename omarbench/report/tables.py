"""Score tables in the paper's layout: rows level × task, columns algorithms, cells mean ± std (seeds).

The best mean of a row is bold, and so is every entry that is not significantly below it (Welch's
t-test, two-sided, p >= 0.05). Rendered as Markdown, LaTeX (booktabs) and CSV, with fixed formatting
and order so the same records always give the same bytes.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from omarbench.report import stats
from omarbench.vocab import LEVELS as LEVEL_ORDER
from omarbench.vocab import PAPER_ALGOS as ALGO_ORDER  # then any other algorithm, by name
from omarbench.vocab import PAPER_TASKS as TASK_ORDER

LEVEL_LABELS = {"random": "Random", "medium-replay": "Medium-replay", "medium": "Medium", "expert": "Expert"}
MISSING = "—"


def order_levels(levels: Iterable[str]) -> list[str]:
    levels = set(levels)
    return [lv for lv in LEVEL_ORDER if lv in levels] + sorted(levels - set(LEVEL_ORDER))


def order_algos(algos: Iterable[str]) -> list[str]:
    algos = set(algos)
    return [a for a in ALGO_ORDER if a in algos] + sorted(algos - set(ALGO_ORDER))


def _task_sort_key(task: str) -> tuple:
    from omarbench.errors import OmarbenchError
    from omarbench.tasks.spec import parse_task_id

    try:
        t = parse_task_id(task)
    except OmarbenchError:
        return (1, 0, 0, 0, task)
    name = TASK_ORDER.index(t.name) if t.name in TASK_ORDER else len(TASK_ORDER)
    default_team = t.id.split(":")[0] in TASK_ORDER
    return (0, t.flavor != "paper", name, (not default_team, t.n_agents), task)


def order_tasks(tasks: Iterable[str]) -> list[str]:
    """spread, tag, world (paper flavor) first, then variants (spread-nN by N, other flavors), then others."""
    return sorted(set(tasks), key=_task_sort_key)


@dataclass
class Cell:
    """One algorithm on one (level, task): final normalised scores per seed."""

    level: str
    task: str
    algo: str
    seeds: tuple[int, ...] = ()
    values: tuple[float, ...] = ()
    failed: int = 0  # seeds whose run failed (and never succeeded)
    bold: bool = False
    p_vs_best: float = math.nan

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else math.nan

    @property
    def std(self) -> float:
        """Standard deviation over seeds (ddof = 0, numpy's default, as common in RL papers)."""
        return float(np.std(self.values)) if self.values else math.nan


@dataclass
class ScoreTable:
    """Cells keyed by (level, task, algo), with the order of rows and columns."""

    levels: list[str]
    tasks: list[str]
    algos: list[str]
    cells: dict[tuple[str, str, str], Cell] = field(default_factory=dict)

    @property
    def rows(self) -> list[tuple[str, str]]:
        return [(lv, t) for lv in self.levels for t in self.tasks
                if any((lv, t, a) in self.cells for a in self.algos)]

    def cell(self, level: str, task: str, algo: str) -> Cell | None:
        return self.cells.get((level, task, algo))

    @property
    def any_failed(self) -> bool:
        return any(c.failed for c in self.cells.values())


def build_score_table(scores: pd.DataFrame, alpha: float = stats.ALPHA) -> ScoreTable:
    """``scores``: one row per run with columns algo, task, level, seed, status, score."""
    table = ScoreTable(order_levels(scores["level"]), order_tasks(scores["task"]), order_algos(scores["algo"]))
    for (level, task, algo), g in scores.groupby(["level", "task", "algo"], sort=True):
        ok = g[(g["status"] == "ok") & np.isfinite(g["score"].astype(float))].sort_values("seed")
        table.cells[(level, task, algo)] = Cell(
            level, task, algo, tuple(int(s) for s in ok["seed"]), tuple(float(v) for v in ok["score"]),
            failed=int((g["status"] != "ok").sum()),
        )
    mark_ties(table, alpha)
    return table


def mark_ties(table: ScoreTable, alpha: float = stats.ALPHA) -> None:
    """Bold the best mean of each row and every entry not significantly below it (Welch, p >= alpha).

    An entry with fewer than two seeds (or a best entry with fewer than two) cannot be tested: it is
    bold only if its mean equals the best.
    """
    for level, task in table.rows:
        row = [c for a in table.algos if (c := table.cell(level, task, a)) is not None and c.n > 0]
        if not row:
            continue
        best = max(row, key=lambda c: c.mean)
        for c in row:
            c.p_vs_best = 1.0 if c is best else stats.welch_p(c.values, best.values)
            c.bold = c.mean == best.mean or (math.isfinite(c.p_vs_best) and c.p_vs_best >= alpha)


def format_cell(cell: Cell | None, digits: int = 1) -> str:
    """``47.9 ± 18.9 (5)``; one seed: ``47.9 (1)``; failures flagged with †; no data: ``—``."""
    if cell is None:
        return MISSING
    if cell.n == 0:
        return f"failed ({cell.failed})" if cell.failed else MISSING
    mark = "†" if cell.failed else ""
    if cell.n == 1:
        return f"{cell.mean:.{digits}f} ({cell.n}){mark}"
    return f"{cell.mean:.{digits}f} ± {cell.std:.{digits}f} ({cell.n}){mark}"


# -------------------------------------------------------------------------------------- rendering


def markdown_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], align: Sequence[str] | None = None
) -> str:
    align = align or ["l"] * 2 + ["r"] * (len(header) - 2)
    rule = ["---:" if a == "r" else ":---:" if a == "c" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
    "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}", ">": r"$>$", "<": r"$<$",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def _latex_cell(text: str, bold: bool) -> str:
    body = latex_escape(text).replace("±", r"$\pm$").replace("†", r"$^\dagger$").replace("—", "--")
    return rf"\textbf{{{body}}}" if bold else body


def latex_tabular(
    header: Sequence[str],
    groups: Sequence[tuple[str, Sequence[Sequence[tuple[str, bool]]]]],
    comments: Sequence[str],
) -> str:
    """A booktabs tabular: ``groups`` = [(group label, rows of (text, bold))], a midrule between groups."""
    lines = [f"% {c}" for c in comments]
    lines.append(r"\begin{tabular}{ll" + "c" * (len(header) - 2) + "}")
    lines.append(r"\toprule")
    lines.append(" & ".join(latex_escape(h) for h in header) + r" \\")
    for label, rows in groups:
        lines.append(r"\midrule")
        for ri, row in enumerate(rows):
            first = latex_escape(label) if ri == 0 else ""
            lines.append(" & ".join([first] + [_latex_cell(t, b) for t, b in row]) + r" \\")
    lines.append(r"\bottomrule")
    lines.append(r"\end{tabular}")
    return "\n".join(lines) + "\n"


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow(["" if isinstance(v, float) and not math.isfinite(v) else v for v in r])
    return buf.getvalue()


def fnum(x: float, digits: int = 4) -> str:
    return "" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def score_markdown(table: ScoreTable) -> str:
    header = ["Level", "Task", *table.algos]
    rows = []
    for level, task in table.rows:
        cells = []
        for a in table.algos:
            c = table.cell(level, task, a)
            text = format_cell(c)
            cells.append(f"**{text}**" if c is not None and c.bold else text)
        rows.append([LEVEL_LABELS.get(level, level), task, *cells])
    return markdown_table(header, rows)


def score_latex(table: ScoreTable, comments: Sequence[str]) -> str:
    groups = []
    for level in table.levels:
        rows = []
        for lv, task in table.rows:
            if lv != level:
                continue
            row = [(task, False)]
            for a in table.algos:
                c = table.cell(level, task, a)
                row.append((format_cell(c), bool(c is not None and c.bold)))
            rows.append(row)
        if rows:
            groups.append((LEVEL_LABELS.get(level, level), rows))
    return latex_tabular(["Level", "Task", *table.algos], groups, comments)


def score_csv(table: ScoreTable) -> str:
    header = ["level", "task", "algo", "n_seeds", "mean", "std", "bold", "p_welch_vs_best", "failed_seeds",
              "seeds"]
    rows = []
    for level, task in table.rows:
        for a in table.algos:
            c = table.cell(level, task, a)
            if c is None:
                continue
            rows.append([level, task, a, c.n, fnum(c.mean), fnum(c.std), int(c.bold), fnum(c.p_vs_best),
                         c.failed, " ".join(str(s) for s in c.seeds)])
    return csv_text(header, rows)


def latex_plain(header: Sequence[str], rows: Sequence[Sequence[tuple[str, bool]]], comments: Sequence[str]) -> str:
    """A booktabs tabular without groups: first column left-aligned, the rest centred."""
    lines = [f"% {c}" for c in comments]
    lines.append(r"\begin{tabular}{l" + "c" * (len(header) - 1) + "}")
    lines.append(r"\toprule")
    lines.append(" & ".join(latex_escape(h) for h in header) + r" \\")
    lines.append(r"\midrule")
    for row in rows:
        lines.append(" & ".join(_latex_cell(t, b) for t, b in row) + r" \\")
    lines.append(r"\bottomrule")
    lines.append(r"\end{tabular}")
    return "\n".join(lines) + "\n"
