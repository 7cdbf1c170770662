"""The report: the paper's tables, statistics and plots, rebuilt from a results directory alone.

    from omarbench.report import build_report
    build_report("results/", "leaderboards/", references="ours", scaling=False)

Modules: :mod:`~omarbench.report.build` (orchestration, files), :mod:`~omarbench.report.tables` (the
level × task table and its renderings), :mod:`~omarbench.report.stats` (Welch ties, IQM, probability
of improvement, bootstrap CIs), :mod:`~omarbench.report.compare` (the paper's numbers and claims),
:mod:`~omarbench.report.plots` (learning curves, agent-count study), :mod:`~omarbench.report.paper`
(the paper's table as data, with its citation). Importing this package is cheap; the heavy modules
load on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_report", "ReportSummary"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from omarbench.report import build

        return getattr(build, name)
    raise AttributeError(name)
