"""The named collection budgets (``paper``, ``quick``, a tiny one for tests) and the paper preset's seed rule.

Everything that shapes a task's datasets besides the seed is a :class:`CollectConfig`; the ``paper``
preset's choices are explained where they are made, with the evidence in
``leaderboards/paper/behaviour-tuning/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from omarbench.collect.matd3 import MATD3Config
from omarbench.collect.run import RunConfig
from omarbench.tasks.spec import Task
from omarbench.vocab import check_preset, data_preset

# Fraction of the way from random to expert of the authors' medium datasets (docs/protocol.md §2).
MEDIUM_FRACTION = {"spread": 0.32, "tag": 0.64, "world": 0.79}


@dataclass(frozen=True)
class CollectConfig:
    """Everything that shapes a task's datasets, besides the seed."""

    run: RunConfig = field(default_factory=RunConfig)
    transitions: int = 1_000_000  # size of random / medium / expert
    rollout_envs: int = 1_000
    rollout_noise: float | None = None  # None: the behaviour run's exploration noise
    reference_episodes: int = 1_000
    medium_fraction: float = 0.5

    @property
    def noise(self) -> float:
        return self.run.matd3.expl_noise if self.rollout_noise is None else self.rollout_noise


def preset_config(task: Task, preset: str = "paper") -> CollectConfig:
    """Named budgets: ``paper`` (1M-transition levels, a full behaviour run) and ``quick`` (minutes)."""
    check_preset(preset)
    frac = MEDIUM_FRACTION.get(task.name, 0.5)
    matd3 = MATD3Config(actor_lr=1e-2, critic_lr=1e-2, batch_size=256)
    if preset == "paper":
        steps = {"spread": 2_000_000, "tag": 1_500_000, "world": 1_500_000}.get(task.name, 2_000_000)
        if task.name == "spread" and task.n_agents != 3:  # agent-count runs: the budget scales with n
            steps = int(round(steps * task.n_agents / 3, -4))
        # learning rates decay linearly to a tenth: without it spread's run peaked at 850k of 2M steps
        # and oscillated after (leaderboards/paper/behaviour-tuning)
        matd3 = replace(matd3, lr_final_fraction=0.1)
        buffer = RunConfig.buffer_size
        if task.name == "spread":
            # spread's runs keep every transition (the budget rounded up to a whole million): with a 1M-step
            # ring, the 3- and 4-agent runs collapsed once it had overwritten the early, exploratory data
            # (leaderboards/paper/behaviour-tuning, "The replay buffer")
            buffer = max(buffer, -(-steps // 1_000_000) * 1_000_000)
        if task.name == "spread" and task.n_agents >= 4:
            # more exploration for four and more agents: the one setting of those probed that learned faster
            # than the default at n = 4 (leaderboards/paper/behaviour-tuning)
            matd3 = replace(matd3, expl_noise=0.2)
        run = RunConfig(total_steps=steps, num_envs=16, segment_episodes=25, buffer_size=buffer, matd3=matd3)
        return CollectConfig(run=run, medium_fraction=frac)
    run = RunConfig(total_steps=300_000, num_envs=16, segment_episodes=10, eval_episodes=50, matd3=matd3)
    return CollectConfig(run=run, transitions=50_000, rollout_envs=500, reference_episodes=300,
                         medium_fraction=frac)


# The seed of the ``paper`` behaviour run (and so of the datasets) of each task of the paper's MPE table, by
# one rule: seeds 0 and 1 are tried in order, and the first whose expert reference (1,000 episodes) reaches
# the paper's expert minus 5% of the paper's expert-random span is the task's seed; where neither does, the
# one whose expert reference is higher. Every run tried is recorded and shipped
# (leaderboards/paper/behaviour-tuning): spread seed 0 494.6, seed 1 458.8 (target 499): seed 0; tag seed 0
# 215.6 (target 176): seed 0; world seed 0 68.8, seed 1 88.4 (target 75): seed 1. The agent-count runs
# (spread-nN, N != 3) use seed 0.
PAPER_BEHAVIOUR_SEEDS = {"world": 1}
# halfcheetah-2x3's ``laptop`` run (omarbench.collect.mujoco), by the same rule with the target 3376.4 (the
# paper's expert 3568.8 minus 5% of its span to −284.0); both seeds ran (leaderboards/halfcheetah/behaviour):
# seed 0 1711.5, seed 1 1638.9, neither reaching it: seed 0.
LAPTOP_BEHAVIOUR_SEEDS: dict[str, int] = {"halfcheetah-2x3": 0}
BEHAVIOUR_SEEDS: dict[str, dict[str, int]] = {"paper": PAPER_BEHAVIOUR_SEEDS, "laptop": LAPTOP_BEHAVIOUR_SEEDS}


def preset_seed(task: Task, preset: str = "paper") -> int:
    """The behaviour seed a preset's datasets of ``task`` are made with (see ``PAPER_BEHAVIOUR_SEEDS``)."""
    return BEHAVIOUR_SEEDS.get(data_preset(preset, task.id), {}).get(task.id, 0)


def tiny_config(total_steps: int = 4_000, transitions: int = 2_000) -> CollectConfig:
    """A seconds-long configuration for tests and smoke runs."""
    run = RunConfig(total_steps=total_steps, num_envs=8, segment_episodes=5, warmup_steps=500, eval_episodes=10,
                    matd3=replace(MATD3Config(), batch_size=64, actor_lr=1e-2, critic_lr=1e-2))
    return CollectConfig(run=run, transitions=transitions, rollout_envs=40, reference_episodes=20)
