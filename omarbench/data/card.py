"""Dataset cards: a Markdown page and a return histogram generated from a dataset's data and metadata.

A card states what the dataset is (task, level, sizes), what its returns look like (distribution,
quantiles, normalised mean with its own references and with the paper's), how it was made (behaviour
provenance, seeds, command, versions), its digest, and how to load it with or without omarbench.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from omarbench.data import paper_refs, schema
from omarbench.data.coverage import CITATION as COVERAGE_CITATION
from omarbench.data.coverage import dataset_saco
from omarbench.data.stats import episode_returns, normalised_score
from omarbench.data.store import StoreInfo, open_dataset, read_into, require_loadable
from omarbench.guard import check_output_dir, clean_stale_temps, temp_name
from omarbench.tasks.maze2d import is_maze2d

DEFAULT_CARD_DIR = "dataset_cards"

RULE_TEXT = {"mean_over_agents": "Σ_t mean over agents of r_i", "agent0": "Σ_t r of agent 0",
             "shared": "Σ_t r, the one reward every agent receives"}


def _fmt(x: Any, digits: int = 2) -> str:
    if x is None:
        return "—"
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}"
    return f"{float(x):,.{digits}f}"


def _read_numbers(group, info: StoreInfo) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Per-episode returns and per-agent action/reward statistics (reads rewards and actions only)."""
    n = info.n_transitions
    starts = read_into(group[schema.EPISODE_STARTS], np.empty(info.n_episodes + 1, np.int64), info)
    rewards = np.empty((n, info.task.n_agents), dtype=np.float32)
    agents = []
    for i, a in enumerate(info.task.agents):
        r = read_into(group[schema.agent_array_path(a.name, "rewards")], np.empty(n, np.float32), info)
        rewards[:, i] = r
        acts = read_into(group[schema.agent_array_path(a.name, "actions")],
                         np.empty((n, a.act_dim), np.float32), info)
        agents.append({
            "index": i, "name": a.name, "role": a.role, "obs_dim": a.obs_dim, "act_dim": a.act_dim,
            "act_mean": acts.mean(axis=0, dtype=np.float64), "act_std": acts.std(axis=0, dtype=np.float64),
            "act_saturated": float(np.mean(np.abs(acts) >= 0.99)), "reward_mean": float(r.mean(dtype=np.float64)),
        })
    return episode_returns(info.task, rewards, starts), agents


def _histogram(returns: np.ndarray, info: StoreInfo, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
    ax.hist(returns, bins=60, color="#4c72b0", alpha=0.85)
    ax.axvline(returns.mean(), color="black", lw=1.5, label=f"mean {returns.mean():.1f}")
    styles = {"random": ("#c44e52", "--"), "expert": ("#55a868", "--")}
    for level, ref in info.reference_returns.items():
        if level in styles and ref.get("mean") is not None:
            ax.axvline(ref["mean"], color=styles[level][0], ls=styles[level][1], lw=1.2,
                       label=f"{level} reference {ref['mean']:.1f}")
    paper = paper_refs.paper_references(info.task)
    for level, ref in (paper or {}).items():
        if level in styles:
            ax.axvline(ref["mean"], color=styles[level][0], ls=":", lw=1.2,
                       label=f"paper {level} {ref['mean']:.1f}")
    ax.set_xlabel(f"reported return per episode ({info.task.return_rule})")
    ax.set_ylabel("episodes")
    ax.set_title(f"{info.id}: {len(returns):,} episodes")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def _differences(refs: dict[str, Any], paper: dict[str, Any] | None) -> list[str]:
    """Our reference returns against the paper's: by how much they differ."""
    rows = []
    for level in ("random", "expert"):
        ours, theirs = (refs.get(level) or {}).get("mean"), ((paper or {}).get(level) or {}).get("mean")
        if ours is None or theirs is None:
            continue
        diff = float(ours) - float(theirs)
        rel = f" ({100 * diff / abs(theirs):+.1f}%)" if theirs else ""
        rows.append(f"- {level} reference: ours {float(ours):.1f}, paper {float(theirs):.1f}: {diff:+.1f}{rel}")
    return rows


def _published_references(info: StoreInfo) -> list[str]:
    """maze2d: our references beside D4RL's and Minari's, and how the settings differ."""
    from omarbench.tasks import maze2d

    published = maze2d.published_references(info.task)
    if not published:
        return []
    refs = info.reference_returns
    prov = info.attrs.get("provenance") or {}

    def cell(ref: dict[str, Any] | None) -> str:
        if not ref or ref.get("mean") is None:
            return "—"
        std = ref.get("std")
        extra = f" ± {_fmt(std)} ({_fmt(ref.get('episodes'))} episodes)" if std is not None else ""
        return f"{_fmt(float(ref['mean']))}{extra}"

    expert = refs.get("expert") or {}
    lines = [
        "",
        "### Ours, Minari's and D4RL's",
        "",
        "| source | random | expert | setting |",
        "|---|---|---|---|",
        f"| ours | {cell(refs.get('random'))} | {cell(expert)} | this task: D4RL's map, goal (the G cell's "
        "centre), "
        f"start distribution, sparse reward (radius {maze2d.GOAL_RADIUS}) and horizon "
        f"({info.task.episode_length}) on PointMaze-v3 physics; expert = our controller without noise, "
        "replanned at each start"
        + (f", reaching the goal in {100 * expert['success_rate']:.1f}% of episodes" if "success_rate" in expert
           else "") + " |",
        f"| Minari | {_fmt(published['minari']['random'])} | {_fmt(published['minari']['expert'])} | "
        "PointMaze-v3's own reward (radius 0.45) and reset (goal and start U(±0.25) around cell centres, starts "
        "away from the goal), same horizon |",
        f"| D4RL | {_fmt(published['d4rl']['random'])} | {_fmt(published['d4rl']['expert'])} | "
        "maze2d-v1 on mujoco-py; the paper's normalisation; its walls sit 0.2 off the nominal cell centres |",
        "",
        "Sources: D4RL: " + maze2d.D4RL_CITATION + ". Minari: " + maze2d.MINARI_CITATION + ".",
        "",
        "The three are not on one scale. D4RL's and Minari's figures average 100 episodes (our random "
        "reference's standard deviation is about 70, so ±7 of standard error there). D4RL's reference script "
        "(`scripts/reference_scores/maze2d_controller.py`) builds its controller once and the controller plans "
        "only when the target changes, so with the fixed goal every episode after the first reuses the first "
        "episode's plan; ours plans at every start. Minari's PointMaze rewards within 0.45 of a goal moved by "
        "U(±0.25) and starts away from the goal cell.",
    ]
    if prov.get("maze"):
        m = prov["maze"]
        lines += ["", f"Maze `{m['name']}` (rows top to bottom, `G` the evaluation goal at cell "
                  f"{tuple(m['goal_cell'])}, {tuple(m['goal_xy'])} in PointMaze's frame):", "", "```"]
        lines += list(m["rows"]) + ["```"]
    return lines


def render_card(info: StoreInfo, agents: list[dict[str, Any]], png_name: str, notes: str | None = None,
                coverage: dict[str, float] | None = None) -> str:
    """The card's Markdown text; ``notes`` (maintainers' explanation of differences) is included verbatim;
    ``coverage`` (decimals → joint SACo, :mod:`omarbench.data.coverage`) adds a coverage line."""
    a = info.attrs
    task = info.task
    stats = info.returns
    q = stats.get("quantiles", {})
    mean = stats.get("mean")
    refs = info.reference_returns
    paper = paper_refs.paper_references(task)
    paper_ds = paper_refs.paper_dataset(task, info.level)
    learners = ", ".join(x.name for x in task.agents if x.role == "learner")
    fixed = ", ".join(x.name for x in task.agents if x.role == "fixed") or "none"
    lines = [
        f"# Dataset card: `{info.id}`",
        "",
        f"Offline {'single-agent' if is_maze2d(task) else 'multi-agent'} RL dataset of the omarbench "
        f"benchmark: task `{task.id}` "
        f"({task.flavor} flavor), level `{info.level}`. Generated by `omarbench datasets card` from the "
        "dataset itself; do not edit by hand.",
        "",
        "## Summary",
        "",
        "| | |",
        "|---|---|",
        f"| id | `{info.id}` (store `{schema.store_name(info.id)}`) |",
        f"| task | `{task.id}`: {task.n_agents} agents; learners: {learners}; fixed: {fixed} |",
        f"| level | {info.level} |",
        f"| transitions | {_fmt(info.n_transitions)} |",
        f"| episodes | {_fmt(info.n_episodes)} (episode length {task.episode_length}) |",
        f"| reported return | rule `{task.return_rule}` "
        f"({RULE_TEXT[task.return_rule]}) |",
        f"| digest | `{info.digest}` ({a.get('digest_algorithm')}) |",
        f"| schema | version {a.get('schema_version')}, omarbench {a.get('omarbench_version')} |",
        f"| created / finalized | {a.get('created')} / {a.get('finalized')} |",
        "",
        "## Agents",
        "",
        "| index | agent | role | obs dim | act dim | action mean | action std | share saturated (abs ≥ 0.99) "
        "| mean reward per step |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for g in agents:
        act_mean = ", ".join(f"{v:+.3f}" for v in g["act_mean"])
        act_std = ", ".join(f"{v:.3f}" for v in g["act_std"])
        lines.append(
            f"| {g['index']} | {g['name']} | {g['role']} | {g['obs_dim']} | {g['act_dim']} | "
            f"({act_mean}) | ({act_std}) | {g['act_saturated']:.3f} | {g['reward_mean']:+.4f} |"
        )
    norm_own = normalised_score(mean, refs)
    norm_paper = normalised_score(mean, paper)
    lines += [
        "",
        "## Returns",
        "",
        f"![Histogram of per-episode reported returns]({png_name})",
        "",
        "| mean | std | min | 5% | 25% | median | 75% | 95% | max |",
        "|---|---|---|---|---|---|---|---|---|",
        "| " + " | ".join(_fmt(v) for v in (
            mean, stats.get("std"), stats.get("min"), q.get("0.05"), q.get("0.25"), q.get("0.5"),
            q.get("0.75"), q.get("0.95"), stats.get("max"))) + " |",
        "",
        f"Normalised mean return, `100 (S − S_random) / (S_expert − S_random)`: **{_fmt(norm_own, 1)}** with this "
        f"dataset's stored references; **{_fmt(norm_paper, 1)}** with the paper's references"
        + ("" if paper else " (the paper has no references for this task)") + ".",
        *([] if coverage is None else ["", _coverage_line(coverage)]),
        "",
        "## Reference returns",
        "",
        "| reference | measured for this dataset (mean ± std, episodes) | paper |",
        "|---|---|---|",
    ]
    for level in ("random", "expert"):
        ref = refs.get(level) or {}
        std = None if ref.get("std") is None else float(ref["std"])
        measured = (f"{_fmt(float(ref['mean']))} ± {_fmt(std)} ({_fmt(ref.get('episodes'))})"
                    if ref.get("mean") is not None else "not recorded")
        lines.append(f"| {level} | {measured} | {_fmt((paper or {}).get(level, {}).get('mean'))} |")
    lines += _published_references(info)
    if paper_ds:
        lines += ["", f"The authors' `{info.level}` dataset for this task held {_fmt(paper_ds['transitions'])} "
                  f"transitions with mean return {_fmt(paper_ds['mean_return'])}, normalised "
                  f"{_fmt(normalised_score(paper_ds['mean_return'], paper), 1)} with the paper's references "
                  f"(this dataset: {_fmt(mean)}, {_fmt(norm_paper, 1)})."]
    diffs = _differences(refs, paper)
    if diffs or notes:
        lines += ["", "## Differences from the paper", ""] + diffs
        if notes:
            lines += ["", notes.strip()]
    lines += [
        "",
        f"Paper numbers: {paper_refs.CITATION}.",
        "",
        "## How it was made",
        "",
        f"- command: `{a.get('command')}`",
        f"- seeds: `{json.dumps(a.get('seeds'))}`",
    ]
    for r in a.get("resumed") or []:
        lines.append(
            f"- resumed {r.get('at')} from {_fmt(r.get('from_transitions'))} transitions: `{r.get('command')}`"
        )
    versions = a.get("versions") or {}
    lines.append("- versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    lines += ["", "Behaviour provenance:", "", "```json", json.dumps(a.get("provenance") or {}, indent=2), "```"]
    lines += [
        "",
        "## Loading",
        "",
        "```python",
        "from omarbench.data import load_dataset",
        f'ds = load_dataset("{info.id}")            # per-agent torch tensors, checked against the digest',
        "ds.agents[0].observations, ds.terminals, ds.episode_starts",
        "```",
        "",
        "Without omarbench (any Zarr v3 reader):",
        "",
        "```python",
        "import zarr",
        f'g = zarr.open_group("{schema.store_name(info.id)}", mode="r")',
        f'obs = g["agents/{task.agents[0].name}/observations"][:]   # float32 [N, {task.agents[0].obs_dim}]',
        'starts = g["episode_starts"][:]                    # episode k = rows starts[k]:starts[k+1]',
        'meta = dict(g.attrs)                               # task spec, references, provenance, digest',
        "```",
        "",
    ]
    return "\n".join(lines)


def _coverage_line(coverage: dict[str, float]) -> str:
    values = "; ".join(f"**{v:.4f}** at {d} decimal{'s' if d != '1' else ''}" for d, v in coverage.items())
    return (f"Coverage, joint SACo (distinct rounded (joint observation, joint action) rows / transitions; "
            f"{COVERAGE_CITATION}): {values}.")


NOTES_DIR = "notes"


def write_card(
    id_or_path: str | os.PathLike,
    root: str | os.PathLike | None = None,
    out_dir: str | os.PathLike = DEFAULT_CARD_DIR,
) -> tuple[Path, Path]:
    """Write ``<out_dir>/<id>.md`` (``':'`` as ``'+'``) and ``<id>.returns.png``; return both paths.

    A maintainers' note for the task, ``<out_dir>/notes/<task id>.md``, is included under "Differences
    from the paper" when it exists (why our numbers differ; the differences themselves are computed).
    """
    check_output_dir(out_dir, "--out")
    group, info = open_dataset(id_or_path, root)
    require_loadable(group, info)
    returns, agents = _read_numbers(group, info)
    coverage = dataset_saco(group, info)
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(out)
    stem = schema.store_name(info.id)[: -len(schema.STORE_SUFFIX)]
    md, png = out / f"{stem}.md", out / f"{stem}.returns.png"
    notes_file = out / NOTES_DIR / f"{info.task.id.replace(':', '+')}.md"  # per task, written by maintainers
    notes = notes_file.read_text() if notes_file.exists() else None
    tmp_md, tmp_png = temp_name(md), temp_name(png)
    try:
        _histogram(returns, info, tmp_png)
        tmp_md.write_text(render_card(info, agents, png.name, notes, coverage))
        os.replace(tmp_png, png)
        os.replace(tmp_md, md)
    finally:
        tmp_md.unlink(missing_ok=True)
        tmp_png.unlink(missing_ok=True)
    return md, png
