"""Projected wall time of the whole paper-scale study on this machine's two cores.

The study (README, *The paper-scale study*): the ``paper`` preset's grid — the four paper algorithms ×
spread, tag, world × four levels, 5 seeds batched per run, the preset's update rounds per dataset —
plus the agent-count study (MA-CQL and OMAR on spread-nN medium-replay, N = 1, 2, 4, 5; N = 3 is the
grid's cell), plus the behaviour training that builds the 16 datasets (in full, and as the medium-replay
prefixes that installed shipped behaviour runs still retrain, :mod:`omarbench.collect.shipped`).

Measured here, in one run, on one thread, as CPU time of the process (see ``_clock``):

* the update-round time of each algorithm on each task's learner sizes (5 seeds, batch 1,024), rounds
  of the algorithms interleaved so that load from other processes hits them alike (median);
* one periodic evaluation (5 seeds × 10 episodes) and one final evaluation (5 × 100) per task;
* behaviour training's env-steps/s per task in steady state (:mod:`omarbench.perf.behaviour`: acting,
  environment steps, replay buffer and the preset's gradient rounds; evaluations and checkpoint writes,
  about 0.1 s per 10,000-step segment, left out).

The projection multiplies each by the study's counts and divides the core-time by two (two single-
threaded jobs at once, perfect packing: a lower bound on the real wall time). It is printed twice: as
the study runs by default, and with MA-CQL's and OMAR's sampled-action and search passes in bfloat16
(``sample_precision="bf16"``, timed in the same interleaved rounds). Dataset rollouts
(seconds each) and loading are left out. Also printed: the zoo's ratio against the authors' per-agent
structure on spread's sizes, both as one process holding all 15 (seed, agent) learners and as five
separate per-seed runs (what the authors' scripts run), measured interleaved.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from pathlib import Path

import torch

from omarbench.kernels import resolve_kernel
from omarbench.machine import cpu_capability, cpu_label
from omarbench.offline.algos import get_algorithm
from omarbench.offline.algos.core import Learners
from omarbench.offline.presets import PAPER_ROUNDS, make_config
from omarbench.tasks.spec import parse_task_id
from omarbench.vocab import PAPER_ALGOS, PAPER_TASKS, SCALING_ALGOS, SCALING_LEVEL

GRID_TASKS = PAPER_TASKS
SCALING_AGENTS = (1, 2, 4, 5)
SEEDS = 5
ROWS = 50_000
BF16_ALGOS = ("MA-CQL", "OMAR")  # the algorithms with a sample_precision key
# CPU seconds of this (one-threaded) process: on a shared machine, other processes' load stretches wall
# time by however much of the core they take, but CPU time only by what they do to caches and memory
# bandwidth, so the projection stays close to what the study costs on idle cores
_clock = time.process_time


class _Agents:
    def __init__(self, o, a, r, o2):
        self.observations, self.actions, self.rewards, self.next_observations = o, a, r, o2


class _Data:
    """Random transitions with a task's learner sizes, in episode order (MA-ICQ finds next actions)."""

    def __init__(self, task):
        g = torch.Generator().manual_seed(0)
        self.agents = []
        for agent in task.agents:
            o = torch.randn(ROWS + 1, agent.obs_dim, generator=g)
            self.agents.append(_Agents(o[:-1], torch.rand(ROWS, 2, generator=g) * 2 - 1,
                                       torch.randn(ROWS, generator=g), o[1:]))
        self.terminals = torch.zeros(ROWS, dtype=torch.bool)
        self.truncations = torch.zeros(ROWS, dtype=torch.bool)
        self.learner_indices = tuple(task.learner_indices)
        self.id = f"bench-{task.id}"


def round_times(task_id: str, algos, reps: int, bf16: tuple[str, ...] = ()) -> dict[str, float]:
    """Median seconds per update round of each algorithm (5 seeds batched), algorithms interleaved; each of
    ``bf16`` is also timed with ``sample_precision="bf16"``, as ``"<name>@bf16"``."""
    task = parse_task_id(task_id)
    data = _Data(task)
    runs = {}
    for name in list(algos) + [f"{a}@bf16" for a in bf16]:
        algo, _, prec = name.partition("@")
        cfg = make_config(algo, task, SCALING_LEVEL if task.name == "spread" else "medium", "paper")
        if prec:
            cfg = dataclasses.replace(cfg, sample_precision=prec)
        runs[name] = Learners(get_algorithm(algo)(cfg), list(range(SEEDS)), data)
    return interleaved_rounds(runs, reps)


def interleaved_rounds(runs: dict, reps: int) -> dict:
    """Median CPU seconds of one ``update()`` of each of ``runs`` (after one warm-up round each), the runs
    taking turns round after round so that load from other processes hits them alike."""
    for learners in runs.values():
        learners.update()  # warm-up
    times: dict = {k: [] for k in runs}
    for _ in range(reps):
        for key, learners in runs.items():
            t = _clock()
            learners.update()
            times[key].append(_clock() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def eval_times(task_id: str, episodes: tuple[int, int] = (10, 100)) -> tuple[float, float]:
    """Seconds of one periodic and one final evaluation of 5 seeds (the deterministic actors)."""
    from omarbench.offline.train import Evaluator

    task = parse_task_id(task_id)
    cls = get_algorithm("MA-TD3+BC")
    learners = Learners(cls(cls.config_cls()), list(range(SEEDS)), _Data(task))
    out = []
    for n in episodes:
        ev = Evaluator(task, list(range(SEEDS)), n, "numpy", torch.device("cpu"))
        ev.run(learners.act)  # warm-up
        t = _clock()
        ev.run(learners.act)
        out.append(_clock() - t)
    return out[0], out[1]


def behaviour_rate(task_id: str, steps: int, reps: int) -> tuple[float, int]:
    """Behaviour training env-steps/s (``paper`` preset settings, steady state: see
    :mod:`omarbench.perf.behaviour`) and the preset's step budget."""
    from omarbench.collect.collector import preset_config
    from omarbench.perf.behaviour import rate

    return rate(task_id, steps, reps), preset_config(parse_task_id(task_id), "paper").run.total_steps


def shipped_steps(task_id: str) -> int | None:
    """Steps a shipped behaviour run of the task (``paper`` preset, its seed) still trains when installed:
    the medium-replay prefix (:mod:`omarbench.collect.shipped`); None if the package ships no such run."""
    import json

    from omarbench.collect import shipped
    from omarbench.collect.collector import preset_config, preset_seed
    from omarbench.collect.run import RunConfig

    task = parse_task_id(task_id)
    src = shipped.shipped_path(f"{task.id.replace(':', '+')}-paper-seed{preset_seed(task, 'paper')}")
    if src is None:
        return None
    info = json.loads((src / "run.json").read_text())
    if RunConfig.from_dict(info["config"]) != preset_config(task, "paper").run:
        return None
    medium = int(info["levels"]["medium-replay"])
    return next(c["steps"] for c in info["checkpoints"] if c["segment"] == medium)


def authors_ratios(reps: int) -> dict[str, tuple[float, float]]:
    """Per algorithm on spread's sizes: (authors' 15 learners in one process / ours, five per-seed runs of
    the authors' 3 learners / ours), medians of per-round ratios, all three interleaved."""
    from omarbench.perf import zoo

    data = zoo._Data()
    out = {}
    for name in PAPER_ALGOS:
        cls = get_algorithm(name)
        cfg = cls.config_cls()
        ours = Learners(cls(cfg), list(range(zoo.SEEDS)), data)
        all15 = zoo._Baseline(name, cfg, data.tensors())
        per_seed = [zoo._Baseline(name, cfg, data.tensors(), seeds=1) for _ in range(zoo.SEEDS)]
        ours.update()
        all15.round()
        per_seed[0].round()
        r15, r5 = [], []
        for _ in range(reps):
            t = _clock()
            ours.update()
            t_ours = _clock() - t
            t = _clock()
            all15.round()
            t_15 = _clock() - t
            t = _clock()
            for run in per_seed:  # one round of each separate run
                run.round()
            t_5 = _clock() - t
            r15.append(t_15 / t_ours)
            r5.append(t_5 / t_ours)
        out[name] = (statistics.median(r15), statistics.median(r5))
    return out


def study_runs() -> list[tuple[str, str, str, int]]:
    """Every run of the study: ``(algo, task, level, rounds)`` (5 seeds each)."""
    runs = [(a, t, lv, n) for t in GRID_TASKS for lv, n in PAPER_ROUNDS[t].items() for a in PAPER_ALGOS]
    runs += [(a, f"spread-n{n}", SCALING_LEVEL, PAPER_ROUNDS["spread"][SCALING_LEVEL])
             for n in SCALING_AGENTS for a in SCALING_ALGOS]
    return runs


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def job_seconds(per_round: dict, evals: dict, eval_every: int) -> dict[str, float]:
    """Projected CPU seconds of each study job (5 seeds batched), keyed ``"algo|task|level"``."""
    out = {}
    for a, t, lv, rounds in study_runs():
        n_evals = rounds // eval_every + 1
        out[f"{a}|{t}|{lv}"] = rounds * per_round[(a, t)] + n_evals * evals[t][0] + evals[t][1]
    return out


def run(quick: bool = False, save: str | os.PathLike | None = None, training_only: bool = False) -> None:
    """Print the projection; ``save``: also write the per-job projection as JSON; ``training_only``: only the
    float32 rounds and evaluations (no bfloat16 rounds, zoo ratios or behaviour training)."""
    reps = 2 if quick else 5
    load_before = _load()
    kernel = resolve_kernel()
    cfg = make_config("OMAR", "spread", "medium", "paper")
    runs = study_runs()
    tasks = list(dict.fromkeys(t for _, t, _, _ in runs))
    per_round: dict[tuple[str, str], float] = {}
    evals: dict[str, tuple[float, float]] = {}
    print(f"update rounds (s, median of {reps}; {SEEDS} seeds batched, batch {cfg.batch_size}, one thread; "
          "@bf16: sample_precision=bf16):")
    for t in tasks:
        algos = list(dict.fromkeys(a for a, tt, _, _ in runs if tt == t))
        bf16 = () if training_only else tuple(a for a in algos if a in BF16_ALGOS)
        times = round_times(t, algos, reps, bf16=bf16)
        per_round.update({(a, t): s for a, s in times.items()})
        evals[t] = eval_times(t)
        print(f"  {t:10s} " + "  ".join(f"{a} {s:.3f}" for a, s in times.items())
              + f"  | eval {evals[t][0]:.2f} s periodic, {evals[t][1]:.2f} s final", flush=True)
    def training_time(bf16: bool) -> float:
        train_s = {"grid": 0.0, "agent-count": 0.0}
        by_algo: dict[str, float] = {}
        for a, t, _, rounds in runs:
            key = (f"{a}@bf16" if bf16 and a in BF16_ALGOS else a, t)
            n_evals = rounds // cfg.eval_every + 1
            s = rounds * per_round[key] + n_evals * evals[t][0] + evals[t][1]
            train_s["grid" if t in GRID_TASKS else "agent-count"] += s
            by_algo[a] = by_algo.get(a, 0.0) + s
        total = sum(train_s.values())
        print(f"training{' with sample_precision=bf16 (MA-CQL, OMAR)' if bf16 else ''}: {len(runs)} runs of "
              f"{SEEDS} seeds, core-minutes: grid {train_s['grid'] / 60:.0f}, agent-count study "
              f"{train_s['agent-count'] / 60:.0f}; by algorithm: "
              + ", ".join(f"{a} {s / 60:.0f}" for a, s in by_algo.items())
              + f" -> {total / 2 / 60:.0f} min on 2 cores", flush=True)
        return total

    training = training_time(bf16=False)
    if training_only:
        _save(save, kernel, load_before, job_seconds(per_round, evals, cfg.eval_every), None)
        return
    training_bf16 = training_time(bf16=True)
    print("zoo vs the authors' per-agent structure (spread sizes, 5 seeds x 3 agents):")
    for a, (r15, r5) in authors_ratios(reps).items():
        print(f"  {a:10s} {r15:5.1f}x vs 15 learners in one process, {r5:5.1f}x vs five per-seed runs", flush=True)
    behaviour_s = shipped_s = 0.0
    for t in GRID_TASKS + tuple(f"spread-n{n}" for n in SCALING_AGENTS):
        rate, budget = behaviour_rate(t, 10 if quick else 40, reps)
        prefix = shipped_steps(t)
        behaviour_s += budget / rate
        shipped_s += (budget if prefix is None else prefix) / rate
        print(f"  behaviour {t:10s} {rate:7,.0f} env-steps/s -> {budget:,} steps {budget / rate / 60:5.1f} min"
              + ("" if prefix is None else f"; shipped: {prefix:,} steps {prefix / rate / 60:5.1f} min"),
              flush=True)
    print(f"behaviour training: {behaviour_s / 60:.0f} core-minutes, {shipped_s / 60:.0f} from the shipped runs "
          "(installed where this machine reproduces them: only each medium-replay prefix is retrained)")
    for label, train, beh in (("", training, behaviour_s),
                              (" with sample_precision=bf16", training_bf16, behaviour_s),
                              (" from the shipped behaviour runs", training, shipped_s)):
        total = train + beh
        print(f"projected wall time of the whole paper study{label} on 2 cores: {total / 2 / 60:.0f} min "
              f"({total / 60:.0f} core-minutes / 2, perfect packing; matmul kernel {kernel}; "
              f"load average {load_before:.1f} at the start, {_load():.1f} now)", flush=True)
    _save(save, kernel, load_before, job_seconds(per_round, evals, cfg.eval_every),
          {"full": round(behaviour_s, 1), "shipped": round(shipped_s, 1)})


def _save(path, kernel: str, load_before: float, jobs: dict[str, float], behaviour: dict | None) -> None:
    if path is None:
        return
    from omarbench.io import atomic_write_json

    atomic_write_json(Path(path), {
        "what": "projected CPU seconds of each paper-study job (5 seeds), python -m omarbench.perf.study",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "matmul_kernel": kernel,
        "cpu": cpu_label(), "cpu_capability": cpu_capability(),
        "load_average": [round(load_before, 2), round(_load(), 2)],
        "jobs": {k: round(v, 3) for k, v in jobs.items()}, "behaviour_s": behaviour})
    print(f"per-job projection saved to {path}")


def compare(projection: str | os.PathLike, records: str | os.PathLike,
            until: str | None = None, since: str | None = None) -> list[tuple[str, float, float]]:
    """``(job, recorded wall s, projected s)`` for every study job that has all its 5 seeds recorded.

    A job's record holds the wall time of the whole batched job (every seed's record the same), so each
    job counts once. Behaviour records are not jobs of the projection and are skipped; ``since`` and
    ``until`` (ISO times such as ``2026-12-04T12:00``) keep only records created in that window, to compare
    the part of a study that ran on the machine the projection was measured on."""
    import json

    jobs = json.loads(Path(projection).read_text())["jobs"]
    walls: dict[str, dict[int, float]] = {}
    for f in sorted(Path(records).glob("*.json")):
        rec = json.loads(f.read_text())
        created = str(rec.get("created", ""))
        if "algo" not in rec or (until is not None and created > until) or (since is not None and created < since):
            continue
        key = f"{rec['algo']}|{rec['task']}|{rec['level']}"
        if rec.get("status") == "ok" and key in jobs:
            walls.setdefault(key, {})[int(rec["seed"])] = float(rec["wall_time_s"])
    return [(k, max(w.values()), jobs[k]) for k, w in walls.items() if len(w) == SEEDS]


def print_comparison(projection: str | os.PathLike, records: str | os.PathLike,
                     until: str | None = None, since: str | None = None) -> float | None:
    rows = compare(projection, records, until, since)
    if not rows:
        print("no study job with all its seeds recorded")
        return None
    print(f"{'job':40s} {'recorded s':>11s} {'projected s':>12s} {'ratio':>6s}")
    for k, wall, proj in rows:
        print(f"{k:40s} {wall:11.0f} {proj:12.0f} {wall / proj:6.2f}")
    wall, proj = sum(r[1] for r in rows), sum(r[2] for r in rows)
    print(f"{len(rows)} of {len(study_runs())} jobs: recorded {wall / 60:.1f} core-minutes, projected "
          f"{proj / 60:.1f}: ratio {wall / proj:.3f}")
    return wall / proj


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m omarbench.perf.study", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    parser.add_argument("--save", metavar="FILE", help="also write the per-job projection as JSON")
    parser.add_argument("--training-only", action="store_true",
                        help="only the float32 update rounds and evaluations (no bf16, zoo ratios, behaviour)")
    parser.add_argument("--check", nargs=2, metavar=("PROJECTION", "RECORDS"),
                        help="compare the recorded jobs in RECORDS with a saved projection instead of measuring")
    parser.add_argument("--until", metavar="TIME",
                        help="with --check: only records created up to TIME (ISO, e.g. 2026-12-04T12:00)")
    parser.add_argument("--since", metavar="TIME", help="with --check: only records created from TIME on")
    args = parser.parse_args(argv)
    if args.check:
        print_comparison(*args.check, until=args.until, since=args.since)
    else:
        run(quick=args.quick, save=args.save, training_only=args.training_only)


if __name__ == "__main__":
    main()
