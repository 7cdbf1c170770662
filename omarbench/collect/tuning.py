"""Short, committed records of behaviour runs (settings, learning curve, reference returns).

``python -m omarbench.collect.tuning record RUN_DIR OUT_DIR [note]`` writes ``OUT_DIR/<run name>.md`` (settings,
status, best checkpoint, the references if the collector measured them, the curve as a table) and
``OUT_DIR/<run name>.csv`` (steps, evaluation return, per-agent returns) from a run's ``run.json``.
A run still training gives a record of where it stands; rerunning the command refreshes it.
``python -m omarbench.collect.tuning refs TASK DATA_ROOT [CHECKPOINT ...]`` measures a run's 1,000-episode
references as the collector will (``DATA_ROOT`` as given to ``collect --root``).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any


def _settings(info: dict[str, Any]) -> list[str]:
    cfg = info["config"]
    m = cfg["matd3"]
    every = cfg["segment_episodes"] * cfg["num_envs"] * info["task"]["episode_length"]  # env-steps a segment
    return [
        f"- budget {cfg['total_steps']:,} steps, {cfg['num_envs']} environments, "
        f"{cfg['updates_per_step']} gradient round(s) per batched step, warm-up {cfg['warmup_steps']:,}, "
        f"replay buffer {cfg['buffer_size']:,} transitions",
        f"- actor lr {m['actor_lr']}, critic lr {m['critic_lr']}, decaying linearly to "
        f"{m.get('lr_final_fraction', 1.0)} x by the end; batch {m['batch_size']}; hidden {m['hidden']}; "
        f"gamma {m['gamma']}; tau {m['tau']}",
        f"- exploration noise {m['expl_noise']}, target noise {m['target_noise']} "
        f"(clip {m['target_noise_clip']}), "
        f"policy delay {m['policy_delay']}, gradient clip {m['grad_clip']}",
        f"- checkpoint every {every:,} steps, evaluated over "
        f"{cfg['eval_episodes']} deterministic episodes",
        f"- seed {info['seed']}, backend {info['backend']}, fixed policy "
        f"{(info.get('fixed_policy') or {}).get('name', 'none')}, gradient rounds on "
        f"{info.get('matmul_kernel', 'mkl')}",
    ]


def write_record(run_dir: Path, out_dir: Path, note: str = "") -> Path:
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    info = json.loads((run_dir / "run.json").read_text())
    name = run_dir.name
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpts = info["checkpoints"]
    with open(out_dir / f"{name}.csv", "w", newline="") as f:
        w = csv.writer(f)
        n = len(ckpts[0]["eval_agent_returns"])
        w.writerow(["steps", "eval_return", *[f"agent_{i}" for i in range(n)]])
        for c in ckpts:
            w.writerow([c["steps"], f"{c['eval_return']:.3f}", *[f"{x:.3f}" for x in c["eval_agent_returns"]]])
    best = max(ckpts, key=lambda c: c["eval_return"])
    status = "stopped early" if info.get("stopped_early") else info["status"]
    lines = [f"# Behaviour run `{name}`", "", f"Task `{info['task']['id']}`; status **{status}** at "
             f"{info['steps']:,} steps ({info.get('wall_time_s', 0) / 3600:.2f} h of training wall time).", "",
             "Settings:", "", *_settings(info), "",
             f"Best checkpoint: {best['steps']:,} steps, evaluation return {best['eval_return']:.2f} "
             f"({info['config']['eval_episodes']} episodes)."]
    refs = info.get("references")
    if refs:
        lines += ["", "Reference returns measured by the collector:", ""]
        lines += [f"- {k}: {v['mean']:.2f} ± {v['std']:.2f} over {v['episodes']:,} episodes"
                  for k, v in refs.items()]
    if note:
        lines += ["", note.strip()]
    step = max(1, len(ckpts) // 25)
    lines += ["", f"Curve (every {step}th checkpoint; all in `{name}.csv`):", "", "| steps | eval return |",
              "|---|---|"]
    shown = ckpts[::step] + ([ckpts[-1]] if (len(ckpts) - 1) % step else [])
    lines += [f"| {c['steps']:,} | {c['eval_return']:.2f} |" for c in shown]
    path = out_dir / f"{name}.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def references_now(task_id: str, root: Path, segments: list[int] | None = None, preset: str = "paper",
                   seed: int = 0) -> list[str]:
    """The 1,000-episode references of a (possibly unfinished) behaviour run, measured as the collector does.

    Random: the uniform-random policy with the collector's reference stream; expert candidates: the given
    checkpoints (default: the best so far), deterministic, on the collector's reference seeds.
    """
    from omarbench.collect.collector import (
        RANDOM_REFERENCE_KEY,
        REFERENCE_SEED_OFFSET,
        Collector,
        preset_config,
    )
    from omarbench.data import preset_root
    from omarbench.tasks.reference_policies import policy_returns, summary, uniform_actions
    from omarbench.tasks.spec import parse_task_id

    task = parse_task_id(task_id)
    cfg = preset_config(task, preset)
    col = Collector(task, cfg, seed=seed, root=preset_root(root, preset), preset=preset, progress=False,
                    log=lambda s: None)
    run, n = col.run, cfg.reference_episodes
    ckpts = run.checkpoints()
    segments = segments or [max(ckpts, key=lambda c: c["eval_return"])["segment"]]
    r = summary(policy_returns(task, n, uniform_actions, seed=seed + REFERENCE_SEED_OFFSET,
                               key=RANDOM_REFERENCE_KEY, fixed_policy=col.fixed, envs=cfg.rollout_envs))
    out = [f"{task.id} random (uniform): {r['mean']:.2f} ± {r['se']:.2f} (s.e., {n} episodes)"]
    for seg in segments:
        c = next(c for c in ckpts if c["segment"] == seg)
        e = summary(run.evaluate(run.load_actors(seg), n, seed_offset=REFERENCE_SEED_OFFSET))
        out.append(f"{task.id} checkpoint {seg} ({c['steps']:,} steps, evaluation {c['eval_return']:.1f}): "
                   f"{e['mean']:.2f} ± {e['se']:.2f} (s.e., {n} episodes)")
    return out


if __name__ == "__main__":
    # python -m omarbench.collect.tuning record RUN_DIR OUT_DIR [note...]
    # python -m omarbench.collect.tuning refs TASK DATA_ROOT [checkpoint ...]
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "record":
        print(write_record(Path(args[0]), Path(args[1]), " ".join(args[2:])))
    elif cmd == "refs":
        print("\n".join(references_now(args[0], Path(args[1]), [int(a) for a in args[2:]])))
    else:
        raise SystemExit(f"unknown command {cmd!r}; choose from: record, refs")
