"""Short, committed records of behaviour runs (settings, learning curve, reference returns).

``python -m omarbench.behaviour.tuning RUN_DIR OUT_DIR`` writes ``OUT_DIR/<run name>.md`` (settings,
status, best checkpoint, the references if the collector measured them, the curve as a table) and
``OUT_DIR/<run name>.csv`` (steps, evaluation return, per-agent returns) from a run's ``run.json``.
A run still training gives a record of where it stands; rerunning the command refreshes it.
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
    return [
        f"- budget {cfg['total_steps']:,} steps, {cfg['num_envs']} environments, "
        f"{cfg['updates_per_step']} gradient round(s) per batched step, warm-up {cfg['warmup_steps']:,}",
        f"- actor lr {m['actor_lr']}, critic lr {m['critic_lr']}, decaying linearly to "
        f"{m.get('lr_final_fraction', 1.0)} x by the end; batch {m['batch_size']}; gamma {m['gamma']}; "
        f"tau {m['tau']}",
        f"- exploration noise {m['expl_noise']}, target noise {m['target_noise']} "
        f"(clip {m['target_noise_clip']}), "
        f"policy delay {m['policy_delay']}, gradient clip {m['grad_clip']}",
        f"- checkpoint every {cfg['segment_episodes'] * cfg['num_envs'] * 25:,} steps, evaluated over "
        f"{cfg['eval_episodes']} deterministic episodes",
        f"- seed {info['seed']}, backend {info['backend']}, fixed policy "
        f"{(info.get('fixed_policy') or {}).get('name', 'none')}",
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
    lines = [f"# Behaviour run `{name}`", "", f"Task `{info['task']['id']}`; status **{info['status']}** at "
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


if __name__ == "__main__":
    print(write_record(Path(sys.argv[1]), Path(sys.argv[2]), " ".join(sys.argv[3:])))
