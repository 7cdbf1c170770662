"""Training presets of the single-agent maze2d tasks (``maze2d-umaze``, ``-medium``, ``-large``).

The OMAR paper's maze2d table (OMAR vs CQL, TD3+BC and ICQ on D4RL's maze2d-*-v1) gives no
hyperparameters, and docs/protocol.md has no per-algorithm maze2d coefficients. The ``paper`` preset
therefore follows common single-agent practice, the maze2d settings of CORL (Tarasov et al., "CORL:
Research-oriented Deep Offline Reinforcement Learning Library", NeurIPS 2023 Datasets and Benchmarks;
github.com/tinkoff-ai/CORL, ``configs/offline/{td3_bc,cql,iql,bc}/maze2d/*_v1.yaml`` and
``algorithms/offline/*.py``): two hidden layers of 256 (actor and twin critics), Adam with learning rate
3e-4, minibatch 256, discount 0.99, soft target updates 0.005, 1,000,000 gradient steps, an evaluation
every 5,000 steps on 100 episodes; no gradient clipping and no action penalty. Per algorithm:

* MA-TD3+BC: λ = 2.5 (CORL's ``alpha: 2.5``, Fujimoto & Gu's value);
* MA-CQL: α = 10 with 10 sampled actions (CORL's ``cql_alpha: 10.0``, ``cql_n_actions: 10``); CORL also
  tunes a Lagrange multiplier on the penalty (``cql_lagrange: true``, target gap 5), uses three hidden
  layers and a ten times smaller actor learning rate, none of which the zoo's fixed-α CQL has;
* OMAR: MA-CQL's critic (α = 10) and τ = 0.7, the value the paper's appendix gives for medium-level data
  (the paper lists none for maze2d);
* MA-IQL: expectile 0.7, β = 3.0 (CORL's ``iql_tau: 0.7``, ``beta: 3.0``; the zoo's defaults already);
* MA-ICQ and BC: the zoo's defaults (CORL has no ICQ; ICQ's temperatures as on MPE).

What stays the zoo's (the authors' skeleton, the same for every task): the input BatchNorm (CORL
normalises states with the dataset's mean and std instead), no target-policy smoothing and no delayed
actor update in MA-TD3+BC (CORL's TD3+BC has both), a deterministic tanh actor for IQL.

``laptop`` is the first rounds of ``paper`` (same networks and optimiser, so its learning curves are a
prefix of the paper runs'), sized so that this project's 2-core machine finishes the whole grid (six
algorithms × three mazes × five seeds) in about an hour of CPU time; the README states the measured
cost. ``quick`` is a smoke test of the path on the quick datasets (minutes).
"""

from __future__ import annotations

from typing import Any

from omarbench.errors import UsageError, bad_choice

CORL_CITATION = ("Tarasov, Nikulin, Akimov, Kurenkov, Kolesnikov. CORL: Research-oriented Deep Offline "
                 "Reinforcement Learning Library. NeurIPS 2023 Datasets and Benchmarks; maze2d configs of "
                 "github.com/tinkoff-ai/CORL")

# every algorithm, every maze: CORL's maze2d training settings
PAPER: dict[str, Any] = {
    "rounds": 1_000_000, "batch_size": 256, "hidden": 256, "lr": 3e-4, "gamma": 0.99, "soft_update": 0.005,
    "grad_clip": 1e6,  # CORL clips no gradient; 1e6 is the largest accepted bound, never reached
    "action_l2": 0.0, "eval_every": 5000, "eval_episodes": 100, "final_episodes": 100,
}
# per algorithm (only the keys its config has are used)
COEFFICIENTS: dict[str, Any] = {"alpha": 10.0, "cql_actions": 10, "tau": 0.7, "lam": 2.5,
                                "expectile": 0.7}
IQL_BETA = 3.0  # MA-IQL's β (CORL's maze2d value); MA-ICQ's β of the same name keeps its default

# the paper preset's first rounds, evaluated more sparsely (README, "Single-agent maze2d")
LAPTOP: dict[str, Any] = {"rounds": 300, "eval_every": 100, "eval_episodes": 10, "final_episodes": 100}
QUICK: dict[str, Any] = {"rounds": 200, "eval_every": 100, "eval_episodes": 5, "final_episodes": 10}
BUDGETS: dict[str, dict[str, Any]] = {"paper": {}, "laptop": LAPTOP, "quick": QUICK}


def maze2d_values(algo: str, preset: str) -> dict[str, Any]:
    """Every preset value of one maze2d run (the caller keeps the keys the algorithm's config has)."""
    if preset not in BUDGETS:
        raise bad_choice("preset", preset, tuple(BUDGETS))
    values = {**PAPER, **COEFFICIENTS, **BUDGETS[preset]}
    if algo == "MA-IQL":
        values["beta"] = IQL_BETA
    return values


def check_mpe_preset(preset: str, task_id: str) -> None:
    """``laptop`` is a budget of maze2d and halfcheetah-2x3: a one-line error for the other tasks."""
    if preset == "laptop":
        raise UsageError("preset 'laptop' is defined for the maze2d tasks and halfcheetah-2x3 only, "
                         f"not {task_id!r}; "
                         "valid for it: paper, quick")
