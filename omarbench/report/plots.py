"""Figures of the report: learning curves per task × level and the agent-count study, as PNG and PDF.

Files are byte-identical when re-made from the same records: the Agg backend, fixed styles, and no
time stamp or software name in the PNG/PDF metadata.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pandas as pd

from omarbench.report import stats
from omarbench.report.tables import LEVEL_LABELS, order_algos

COLORS = {"MA-ICQ": "#1f77b4", "MA-TD3+BC": "#2ca02c", "MA-CQL": "#ff7f0e", "OMAR": "#d62728", "BC": "#7f7f7f"}
EXTRA_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
PNG_META = {"Software": None}
PDF_META = {"Creator": None, "Producer": None, "CreationDate": None}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcdefaults()
    plt.rcParams.update({"font.size": 8, "axes.titlesize": 9, "legend.fontsize": 8, "svg.hashsalt": "omarbench"})
    return plt


def color_of(algo: str, algos: Sequence[str]) -> str:
    if algo in COLORS:
        return COLORS[algo]
    extras = [a for a in algos if a not in COLORS]
    return EXTRA_COLORS[extras.index(algo) % len(EXTRA_COLORS)]


def figure_bytes(fig) -> dict[str, bytes]:
    """The figure rendered as PNG and PDF bytes (no metadata that changes between runs)."""
    out = {}
    for fmt, meta in (("png", PNG_META), ("pdf", PDF_META)):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=100, metadata=meta)
        out[fmt] = buf.getvalue()
    return out


def curves_figure(curves: pd.DataFrame, levels: Sequence[str], tasks: Sequence[str], ylabel: str):
    """One panel per (level, task); per algorithm the mean over seeds and a 95% t-interval band.

    ``curves``: columns algo, task, level, seed, round, score.
    """
    plt = _pyplot()
    algos = order_algos(curves["algo"])
    fig, axes = plt.subplots(len(levels), len(tasks), figsize=(3.2 * len(tasks), 2.4 * len(levels)),
                             squeeze=False, sharex=False)
    for r, level in enumerate(levels):
        for c, task in enumerate(tasks):
            ax = axes[r][c]
            panel = curves[(curves["level"] == level) & (curves["task"] == task)]
            for algo in algos:
                g = panel[panel["algo"] == algo]
                if g.empty:
                    continue
                wide = g.pivot_table(index="round", columns="seed", values="score", aggfunc="mean").sort_index()
                xs = wide.index.to_numpy()
                means, half = [], []
                for _, row in wide.iterrows():
                    vals = row.dropna().to_numpy()
                    m, h = stats.t_interval(vals) if len(vals) else (np.nan, np.nan)
                    means.append(float(m))
                    half.append(float(h))
                means, half = np.array(means), np.array(half)
                col = color_of(algo, algos)
                ax.plot(xs, means, color=col, lw=1.2, label=algo)
                ok = np.isfinite(half)
                if ok.any():
                    ax.fill_between(xs[ok], (means - half)[ok], (means + half)[ok], color=col, alpha=0.2, lw=0)
            ax.set_title(f"{task} · {LEVEL_LABELS.get(level, level)}")
            ax.grid(alpha=0.3)
            if r == len(levels) - 1:
                ax.set_xlabel("update round")
            if c == 0:
                ax.set_ylabel(ylabel)
    handles = [plt.Line2D([], [], color=color_of(a, algos), lw=1.5, label=a) for a in algos]
    fig.legend(handles=handles, loc="upper center", ncol=len(algos), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    return fig


def scaling_figure(rows: pd.DataFrame):
    """Improvement % vs number of agents: MA-CQL over the behaviour policy, OMAR over MA-CQL (95% CIs).

    ``rows``: columns n, cql_vs_behaviour, cql_vs_behaviour_lo/hi, omar_vs_cql, omar_vs_cql_lo/hi.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(7.0, 2.8), squeeze=False)
    panels = (
        ("cql_vs_behaviour", "MA-CQL over the behaviour policy", COLORS["MA-CQL"]),
        ("omar_vs_cql", "OMAR over MA-CQL", COLORS["OMAR"]),
    )
    for ax, (col, title, color) in zip(axes[0], panels):
        d = rows[np.isfinite(rows[col].astype(float))]
        x = d["n"].to_numpy()
        y = d[col].to_numpy(float)
        lo = np.where(np.isfinite(d[f"{col}_lo"].astype(float)), y - d[f"{col}_lo"].astype(float), 0.0)
        hi = np.where(np.isfinite(d[f"{col}_hi"].astype(float)), d[f"{col}_hi"].astype(float) - y, 0.0)
        if len(x):
            ax.errorbar(x, y, yerr=[lo, hi], color=color, marker="o", ms=4, lw=1.2, capsize=3)
        ax.axhline(0.0, color="black", lw=0.6)
        ax.set_title(title)
        ax.set_xlabel("number of agents")
        ax.set_ylabel("improvement (%)")
        ns = rows["n"].to_numpy()
        if len(ns):
            ax.set_xticks(sorted(set(int(n) for n in ns)))
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def close(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)
