"""What "random" means: the reported return of uniform-random, zero and untrained-actor learners.

The evidence behind the ``random`` level being the uniform-random policy (docs/protocol.md §2)::

    python -m omarbench.collect.random_evidence spread spread-n1 spread-n2 spread-n4 spread-n5
"""

from __future__ import annotations

import numpy as np

from omarbench.tasks.reference_policies import Actions, policy_returns, summary, uniform_actions


def compare_random_policies(task_id: str, episodes: int = 4_000, seed: int = 2_000_000) -> dict[str, dict]:
    """Reported return of uniform-random, zero and untrained-actor learners (docs/protocol.md §2)."""
    from omarbench.collect.matd3 import MATD3, MATD3Config
    from omarbench.tasks.prey import fixed_policy_for
    from omarbench.tasks.spec import parse_task_id

    task = parse_task_id(task_id)
    learners = list(task.learner_indices)
    untrained = MATD3(tuple(task.obs_dims[i] for i in learners), MATD3Config(), seed=0)
    policies: dict[str, Actions] = {
        "uniform": uniform_actions,
        "zero": lambda env, obs, rng: np.zeros((env.num_envs, len(learners), 2)),
        "untrained actor": lambda env, obs, rng: untrained.act([obs[i] for i in learners], 0.0),
    }
    fixed = fixed_policy_for(task)
    return {name: summary(policy_returns(task, episodes, fn, seed=seed, key=0, fixed_policy=fixed))
            for name, fn in policies.items()}


if __name__ == "__main__":  # python -m omarbench.tasks.reference_policies spread [spread-n5 ...]
    import sys

    for tid in sys.argv[1:] or ["spread"]:
        for name, s in compare_random_policies(tid).items():
            print(f"{tid:10s} {name:16s} {s['mean']:9.2f} ± {s['se']:.2f} (s.e., {s['episodes']} episodes)")
