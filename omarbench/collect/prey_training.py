"""Train the fixed prey of ``tag`` and ``world`` and ship it as a package asset.

The paper's prey is a pretrained policy that stays fixed while the predators learn; the authors' prey
is not available. omarbench makes its own, by a rule that anyone can rerun:

1. **Co-train** predators and prey with MATD3 (every agent learning) for ``PREY_RUN.total_steps``
   steps, keeping a checkpoint every 4,000 steps. Each distinct checkpoint's prey is a candidate,
   the untrained one (step 0) included; a checkpoint taken before the first update (the warm-up) holds
   the same weights as step 0 and is not scored twice.
2. **Score** every candidate as a fixed prey over ``CANDIDATE_EPISODES`` episodes against two predator
   teams: uniform-random predators (the benchmark's random policy; the reported return is the task's
   random reference) and the scripted chase (every predator pushes straight at the prey), which tells
   easy prey from hard prey far more sharply. Both also count catches (predator-prey contacts).
3. **Select** (``select_candidate``): the candidates whose random reference lies within ``TOLERANCE`` ×
   the paper's expert−random span of the paper's random reference are eligible; among them the one on
   which the scripted chase scores closest to the paper's expert reference (the scripted team stands in
   for a trained expert team, so the expert scale is reachable). With no eligible candidate, the one
   whose random reference is closest.
   The ``mpe2`` flavor has no paper numbers (its stock rewards differ), so its targets are the chosen
   ``paper``-flavor prey's catches per episode against the same two teams, with ``TOLERANCE_CATCHES``
   (relative) in place of the span tolerance: its prey is as catchable as the paper-flavor one.

The chosen prey's actor is frozen and written to ``omarbench/assets/prey/<task>.pt`` with a provenance
file ``<task>.json`` (rule, targets, every candidate's scores, the seeds tried, the chosen checkpoint,
SHA-256 of the weights, the co-training configuration and curve, the command that regenerates them).
Datasets record the digest.

Regenerate: ``omarbench prey train tag`` (then ``world``, ``tag:mpe2``, ``world:mpe2``; the ``mpe2``
flavor reads the paper flavor's provenance for its targets).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from omarbench.collect.matd3 import MATD3Config
from omarbench.collect.run import BehaviourRun, RunConfig, torch_bytes
from omarbench.data import default_root
from omarbench.data.paper_refs import PAPER_REFERENCE_RETURNS
from omarbench.data.provenance import command_line, now_utc, package_versions
from omarbench.errors import OmarbenchError, UsageError
from omarbench.io import atomic_write_bytes, atomic_write_json
from omarbench.paths import check_writable
from omarbench.tasks.actor import Actor
from omarbench.tasks.prey import prey_asset_path
from omarbench.tasks.reference_policies import (
    CHASE,
    UNIFORM_RANDOM,
    chase_actions,
    policy_rollout,
    summary,
    uniform_actions,
)
from omarbench.tasks.spec import Task, parse_task_id
from omarbench.vocab import check_positive

PREY_RUN = RunConfig(
    total_steps=120_000, num_envs=16, segment_episodes=10,  # a candidate prey every 4,000 steps
    matd3=MATD3Config(actor_lr=1e-2, critic_lr=1e-2, batch_size=256),
)
CANDIDATE_EPISODES = 1_000  # episodes per candidate and predator team
CANDIDATE_SEED = 3_000_000  # environment seeds of the candidates' episodes (disjoint from training and eval)
RANDOM_KEY, CHASE_KEY = 7, 8  # action-stream keys of the two predator teams
TOLERANCE = 0.01  # eligible: random reference within this fraction of the paper's span of the paper's
TOLERANCE_CATCHES = 0.1  # mpe2 flavor: random predators' catches within this fraction of the target's
RULE = (
    "candidates: the prey of every distinct co-training checkpoint (step 0, the untrained prey, included); "
    "scores over "
    f"{CANDIDATE_EPISODES} episodes with uniform-random predators and with the scripted chase; eligible: "
    "random reference within TOLERANCE x (paper expert - paper random) of the paper's random reference "
    "(mpe2 flavor: random predators' catches per episode within TOLERANCE_CATCHES x the target's, the target "
    "being the chosen paper-flavor prey's); chosen: the eligible candidate whose chase score (mpe2: chase "
    "catches) is closest to the paper's expert reference (mpe2: the paper-flavor prey's chase catches); "
    "with none eligible, the candidate whose random reference (catches) is closest to the target"
)


class ActorPrey:
    """A prey actor held in memory, usable as a task's fixed policy (deterministic)."""

    is_placeholder = False

    def __init__(self, actor: Actor, name: str):
        self.actor, self.name, self.digest = actor, name, None

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.actor(torch.as_tensor(np.asarray(obs), dtype=torch.float32)).numpy().astype(np.float64)


def _co_training_task(task: Task) -> Task:
    agents = tuple(replace(a, role="learner") for a in task.agents)
    return replace(task, agents=agents, fixed_policy=None)


def score_candidate(task: Task, actor: Actor, *, episodes: int = CANDIDATE_EPISODES,
                    backend: str = "numpy") -> dict[str, Any]:
    """A prey actor's scores as the fixed prey of ``task``: random reference, chase score, catches."""
    prey = ActorPrey(actor, "candidate")
    out: dict[str, Any] = {}
    for name, actions, key in (("random", uniform_actions, RANDOM_KEY), ("chase", chase_actions, CHASE_KEY)):
        rewards, catches = policy_rollout(task, episodes, actions, seed=CANDIDATE_SEED, key=key, backend=backend,
                                          fixed_policy=prey)
        out[name] = summary(task.reported_return(rewards))
        out[f"{name}_catches"] = float(catches.mean())
    return out


def selection_targets(task: Task) -> dict[str, Any]:
    """What the rule matches for ``task``: the paper's references, or (mpe2) the paper-flavor prey's catches."""
    if task.flavor == "paper":
        ref = PAPER_REFERENCE_RETURNS[task.name]
        return {"quantity": "return", "random": ref["random"], "chase": ref["expert"],
                "tolerance": TOLERANCE * (ref["expert"] - ref["random"]),
                "origin": "the paper's random and expert reference returns"}
    paper = parse_task_id(f"{task.name}:paper")
    prov = read_provenance(paper)
    if prov is None or "chosen" not in prov:
        raise OmarbenchError(f"the {task.name} prey of the paper flavor is not selected yet: run "
                             f"'omarbench prey train {task.name}' first (the {task.id} prey is matched to it)")
    chosen = prov["chosen"]["scores"]
    return {"quantity": "catches", "random": chosen["random_catches"], "chase": chosen["chase_catches"],
            "tolerance": TOLERANCE_CATCHES * chosen["random_catches"],
            "origin": f"catches per episode of the {task.name} paper-flavor prey (sha256 {prov['sha256'][:12]}) "
                      "with uniform-random and with chasing predators"}


def select_candidate(candidates: list[dict[str, Any]], targets: dict[str, Any]) -> dict[str, Any]:
    """The rule of the module docstring over scored candidates (each with a ``scores`` dict)."""
    if not candidates:
        raise ValueError("no candidates to select from")
    catches = targets["quantity"] == "catches"

    def value(c: dict[str, Any], team: str) -> float:
        return c["scores"][f"{team}_catches"] if catches else c["scores"][team]["mean"]

    def off(c: dict[str, Any], team: str) -> float:
        return abs(value(c, team) - targets[team])

    eligible = [c for c in candidates if off(c, "random") <= targets["tolerance"]]
    if eligible:
        return min(eligible, key=lambda c: (off(c, "chase"), c["steps"]))
    return min(candidates, key=lambda c: (off(c, "random"), c["steps"]))


def train_prey(task_id: str, *, seed: int = 0, root: str | os.PathLike | None = None, backend: str = "numpy",
               config: RunConfig = PREY_RUN, out: Path | None = None, episodes: int = CANDIDATE_EPISODES,
               log: Callable[[str], None] = print, pick: int | None = None) -> Path:
    """Co-train, score every checkpoint's prey, select one by the rule, write the asset; returns its path.

    ``pick`` (the step count of a checkpoint) writes that checkpoint's prey instead of the rule's choice,
    for ablations on the prey; the provenance then says so (``picked``) and the rule's choice stays
    recorded (``rule_choice``)."""
    task = parse_task_id(task_id)
    if seed < 0:
        raise UsageError(f"--seed must be non-negative, got {seed}")
    from omarbench.errors import bad_choice
    from omarbench.guard import MAX_SEED, check_int, check_output_file
    from omarbench.vocab import BACKENDS

    check_int("--seed", seed, 0, MAX_SEED)
    if backend not in BACKENDS:
        raise bad_choice("backend", backend, BACKENDS)
    check_positive("--steps", config.total_steps)
    if pick is not None:
        check_int("--pick", pick, 0, config.total_steps)
    if not task.fixed_indices:
        raise UsageError(f"task {task.id!r} has no fixed agents; prey are trained for: tag, world")
    if out is not None:
        check_output_file(out, "--out")  # before any training: a bad path must not cost the run
    (prey,) = task.fixed_indices
    targets = selection_targets(task)  # fails early if the mpe2 flavor's paper-flavor prey is missing
    co_task = _co_training_task(task)
    base = Path(root).expanduser() if root is not None else default_root()
    check_writable(base)
    run_dir = base / "behaviour" / f"prey-{task.id.replace(':', '+')}-seed{seed}"
    run = BehaviourRun(co_task, run_dir, config, seed=seed, backend=backend)
    log(f"co-training predators and prey of {task.id} in {run_dir}")
    info = run.train(progress=lambda s, t, r: log(f"  step {s:,}/{t:,}: predator return {r:.2f}"))
    distinct, seen = [], set()
    for c in info["checkpoints"]:
        if c["digest"] not in seen:  # the same weights as an earlier checkpoint (no update in between) are skipped
            seen.add(c["digest"])
            distinct.append(c)
    if pick is not None and pick not in {c["steps"] for c in distinct}:  # before the costly scoring
        raise UsageError(f"--pick {pick}: no checkpoint at that step; choose from: "
                         + ", ".join(str(c["steps"]) for c in distinct))
    candidates = []
    for c in distinct:
        scores = score_candidate(task, run.load_actors(c["segment"])[prey], episodes=episodes, backend=backend)
        candidates.append({"segment": c["segment"], "steps": c["steps"], "updates": c["updates"],
                           "checkpoint_digest": c["digest"], "scores": scores})
        log(f"  candidate {c['steps']:>7,}: random {scores['random']['mean']:7.2f} "
            f"(catches {scores['random_catches']:.2f}), chase {scores['chase']['mean']:7.2f} "
            f"(catches {scores['chase_catches']:.2f})")
    chosen = rule_choice = select_candidate(candidates, targets)
    if pick is not None:
        chosen = next(c for c in candidates if c["steps"] == pick)
    actors = run.load_actors(chosen["segment"])
    path = out if out is not None else prey_asset_path(task)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {"actor": actors[prey].state_dict(), "obs_dim": task.agents[prey].obs_dim,
            "hidden": config.matd3.hidden}
    data = torch_bytes(blob)
    curve = [{"steps": c["steps"], "prey_return": c["eval_agent_returns"][prey],
              "predator_return": c["eval_return"]} for c in info["checkpoints"]]
    every = config.segment_episodes * config.num_envs * co_task.episode_length  # env-steps a segment
    provenance = {
        "task": task.id,
        "how": "MATD3 co-training of predators and prey (every agent learning), a checkpoint every "
               f"{every:,} steps; the prey of one checkpoint chosen by the rule and frozen",
        "rule": RULE,
        "tolerances": {"TOLERANCE": TOLERANCE, "TOLERANCE_CATCHES": TOLERANCE_CATCHES},
        "targets": targets,
        "predator_teams": {"random": UNIFORM_RANDOM, "chase": CHASE,
                           "episodes": episodes, "env_seed": CANDIDATE_SEED,
                           "action_stream_keys": {"random": RANDOM_KEY, "chase": CHASE_KEY}},
        "seeds": [seed],
        "candidates": candidates,
        "chosen": chosen,
        **({"picked": pick, "rule_choice": rule_choice} if pick is not None else {}),
        "steps": chosen["steps"],
        "seed": seed,
        "backend": backend,
        "config": config.to_dict(),
        "curve": curve,
        "sha256": hashlib.sha256(data).hexdigest(),
        "command": _portable(command_line()),
        "created": now_utc(),
        "versions": package_versions(),
    }
    # provenance first, then the weights (each replaced atomically): the weights only appear complete
    atomic_write_json(path.with_suffix(".json"), provenance)
    atomic_write_bytes(path, data)
    sc = chosen["scores"]
    log(f"prey of {task.id}: {path} (sha256 {provenance['sha256'][:12]}, checkpoint at {chosen['steps']:,} steps; "
        f"random reference {sc['random']['mean']:.2f}, chase {sc['chase']['mean']:.2f})")
    return path


def _portable(command: str) -> str:
    """The command with the value of ``--root`` (a path on the machine that ran it) replaced by ``DIR``."""
    words = command.split(" ")
    for i, w in enumerate(words[:-1]):
        if w == "--root":
            words[i + 1] = "DIR"
    return " ".join(w if not w.startswith("--root=") else "--root=DIR" for w in words)


def read_provenance(task: Task) -> dict[str, Any] | None:
    path = prey_asset_path(task).with_suffix(".json")
    return json.loads(path.read_text()) if path.exists() else None


class _UniformPrey:
    """A prey acting uniformly at random (for comparison only: its stream follows the order of calls)."""

    name, digest = "uniform-random-prey", None

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self.rng.uniform(-1.0, 1.0, (np.asarray(obs).shape[0], 2))


def compare_reference_prey(task_id: str, episodes: int = CANDIDATE_EPISODES) -> dict[str, dict[str, Any]]:
    """The rule's scores for a still prey and a uniform-random prey (what the shipped prey is compared with)."""
    from omarbench.tasks.prey import StillPrey

    task = parse_task_id(task_id)
    out = {}
    for prey in (StillPrey(), _UniformPrey()):
        scores: dict[str, Any] = {}
        for name, actions, key in (("random", uniform_actions, RANDOM_KEY), ("chase", chase_actions, CHASE_KEY)):
            rewards, catches = policy_rollout(task, episodes, actions, seed=CANDIDATE_SEED, key=key,
                                              fixed_policy=prey)
            scores[name] = summary(task.reported_return(rewards))
            scores[f"{name}_catches"] = float(catches.mean())
        out[prey.name] = scores
    return out


if __name__ == "__main__":  # python -m omarbench.collect.prey_training tag world
    import sys

    for tid in sys.argv[1:]:
        for name, sc in compare_reference_prey(tid).items():
            print(f"{tid:10s} {name:20s} random {sc['random']['mean']:7.2f} ± {sc['random']['se']:.2f} "
                  f"(catches {sc['random_catches']:.2f}), chase {sc['chase']['mean']:7.2f} "
                  f"(catches {sc['chase_catches']:.2f})")
