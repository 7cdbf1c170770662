"""In-memory offline datasets for the algorithm and training tests (the attributes of OfflineDataset)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class ToyAgent:
    observations: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_observations: torch.Tensor


@dataclass
class ToyDataset:
    task: object
    level: str
    id: str
    digest: str
    agents: list
    terminals: torch.Tensor
    truncations: torch.Tensor
    learner_indices: tuple
    reference_returns: dict = field(default_factory=dict)

    @property
    def n_transitions(self) -> int:
        return int(self.terminals.shape[0])


def target_action(obs: np.ndarray) -> np.ndarray:
    """The best action of the contextual toy: a fixed smooth function of the observation, in (−1, 1)²."""
    return np.tanh(np.stack([obs[:, 0] - 0.5 * obs[:, 1], obs[:, 2] + 0.3 * obs[:, 3]], 1))


def contextual_reward(obs: np.ndarray, act: np.ndarray) -> np.ndarray:
    return -np.square(act - target_action(obs)).sum(1)


def contextual_dataset(n: int = 4096, n_agents: int = 1, obs_dims=None, seed: int = 0,
                       good_fraction: float = 0.3) -> ToyDataset:
    """One-step episodes (every row terminal): reward −‖a − f(o)‖². Behaviour: a mix of near-optimal
    and uniform-random actions, so cloning helps a little and value learning helps more."""
    rng = np.random.default_rng(seed)
    obs_dims = obs_dims or [6] * n_agents
    agents = []
    for d in obs_dims:
        obs = rng.normal(size=(n, d)).astype(np.float32)
        good = rng.random(n) < good_fraction
        act = np.where(good[:, None], np.clip(target_action(obs) + 0.3 * rng.normal(size=(n, 2)), -1, 1),
                       rng.uniform(-1, 1, (n, 2))).astype(np.float32)
        rew = contextual_reward(obs, act).astype(np.float32)
        nxt = rng.normal(size=(n, d)).astype(np.float32)
        agents.append(ToyAgent(*(torch.as_tensor(x) for x in (obs, act, rew, nxt))))
    return ToyDataset(task=None, level="random", id="toy-contextual", digest="0" * 64, agents=agents,
                      terminals=torch.ones(n, dtype=torch.bool), truncations=torch.zeros(n, dtype=torch.bool),
                      learner_indices=tuple(range(len(obs_dims))))


def toy_scores(learners, rounds: int = 150, probes: int = 256) -> tuple[float, float]:
    """Mean contextual reward of ``learners``' greedy actions on fixed probe observations, before and after
    ``rounds`` updates (the single-agent contextual toy of :func:`contextual_dataset`)."""
    obs = np.random.default_rng(7).normal(size=(probes, 6)).astype(np.float32)

    def score() -> float:
        a = learners.act([torch.as_tensor(obs)[None]])[0, :, 0].numpy()
        return float(contextual_reward(obs, a).mean())

    before = score()
    for _ in range(rounds):
        learners.update()
    return before, score()


def rollout_dataset(task, episodes: int = 40, seed: int = 0, level: str = "random") -> ToyDataset:
    """Uniform-random learners on the reference (mpe2) backend, stored in episode order."""
    from omarbench.tasks.envs import make_vec_env

    env = make_vec_env(task, 1, backend="mpe2", seed=seed)
    rng = np.random.default_rng(seed)
    n_l = len(task.learner_indices)
    obs_l, act_l, rew_l, nxt_l, trunc = [], [], [], [], []
    ep_returns = []
    obs = env.reset()
    for _ in range(episodes):
        rewards = []
        for _ in range(task.episode_length):
            a = rng.uniform(-1, 1, (1, n_l, 2))
            st = env.step(a)
            obs_l.append([o[0] for o in obs])
            act_l.append(st.actions[0])
            rew_l.append(st.rewards[0])
            nxt_l.append([o[0] for o in st.next_obs])
            trunc.append(bool(st.truncated[0]))
            rewards.append(st.rewards[0])
            obs = st.obs
        ep_returns.append(float(task.reported_return(np.array(rewards))))
    agents = []
    for i in range(task.n_agents):
        agents.append(ToyAgent(
            torch.tensor(np.array([o[i] for o in obs_l]), dtype=torch.float32),
            torch.tensor(np.array([a[i] for a in act_l]), dtype=torch.float32),
            torch.tensor(np.array([r[i] for r in rew_l]), dtype=torch.float32),
            torch.tensor(np.array([o[i] for o in nxt_l]), dtype=torch.float32),
        ))
    n = len(trunc)
    mean = float(np.mean(ep_returns))
    return ToyDataset(task=task, level=level, id=f"{task.id}-{level}", digest="f" * 64, agents=agents,
                      terminals=torch.zeros(n, dtype=torch.bool), truncations=torch.tensor(trunc),
                      learner_indices=task.learner_indices,
                      reference_returns={"random": {"mean": mean}, "expert": {"mean": mean + 100.0}})


def main() -> None:
    """The learning sanity run quoted in the README: each algorithm (or those named on the command
    line) on 400 uniform-random spread-n1 episodes, 600 rounds of the ``quick`` settings, seeds 0-2;
    prints the final returns."""
    import sys
    import tempfile

    from omarbench.offline.algos import ALGO_NAMES
    from omarbench.offline.train import train
    from omarbench.tasks.spec import parse_task_id

    torch.set_num_threads(1)
    task = parse_task_id("spread-n1")
    data = rollout_dataset(task, episodes=400)
    print(f"dataset: {data.n_transitions} transitions, "
          f"mean return {data.reference_returns['random']['mean']:.1f}")
    with tempfile.TemporaryDirectory() as out:
        for algo in sys.argv[1:] or ALGO_NAMES:
            recs = train(algo, task, "random", [0, 1, 2], preset="quick", results_dir=out,
                         overrides={"rounds": 600}, dataset=data, progress=False)
            finals = sorted(r["final"]["return"] for r in recs)
            print(f"{algo}: " + ", ".join(f"{f:.1f}" for f in finals))


if __name__ == "__main__":
    main()
