"""Cost of ``halfcheetah-2x3``: environment steps, behaviour (MATD3) updates, offline-zoo updates.

* Environment: CPU time per transition of MaMuJoCo stepped directly (one env, the reference), of
  :class:`omarbench.tasks.mamujoco.MujocoVecEnv` with 1, 16 and 64 copies (observations included), and of
  ``mujoco.rollout`` stepping the same batches (physics state only; it drops the solver's warm start
  between calls, so its trajectories are not Gymnasium's: shown for comparison only).
* Behaviour learner: one MATD3 update round of both agents with ``HALFCHEETAH_MATD3`` (hidden 256,
  batch 256): centralised twin critics, target smoothing, the actor every second round.
* Offline zoo: one update round of the batched learners (:class:`omarbench.offline.algos.core.Learners`) of
  each paper algorithm with the ``halfcheetah-2x3`` preset row (hidden 256, batch 256; MA-CQL's uniform +
  policy samples, OMAR's CEM), 5 seeds batched, and one periodic evaluation (10 episodes per seed, all
  seeds stepped together), projected onto the offline presets' grids (4 algorithms x 4 levels x 5 seeds).

Everything is measured in CPU seconds on one thread (``time.process_time``), alternating the
candidates round by round so that load from other processes hits them alike; medians are printed with
the projected cost of the presets.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping

import numpy as np
import torch

from omarbench.tasks.spec import parse_task_id
from omarbench.vocab import PAPER_ALGOS

LEVELS, SEEDS = 4, 5


def interleaved_cpu_ms(fns: Mapping[str, Callable[[], object]], reps: int) -> dict[str, float]:
    """Median CPU time (ms) of each function over ``reps`` alternating calls."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for key, f in fns.items():
            t = time.process_time()
            f()
            times[key].append(time.process_time() - t)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


def env_costs(steps: int) -> dict[str, float]:
    """CPU microseconds per transition of each way of stepping the task."""
    import mujoco
    import mujoco.rollout

    from omarbench.tasks.envs import make_vec_env
    from omarbench.tasks.mamujoco import reference_env

    task = parse_task_id("halfcheetah-2x3")
    rng = np.random.default_rng(0)
    ref = reference_env(task)
    ref.reset(seed=0)
    names = ref.possible_agents
    vec = {e: make_vec_env(task, e, "mujoco", seed=0) for e in (1, 16, 64)}
    for v in vec.values():
        v.reset()
    model = vec[64].model
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    states = {}
    for e in (16, 64):
        st = np.zeros((e, mujoco.mj_stateSize(model, spec)))
        for i, d in enumerate(vec[e].datas):
            mujoco.mj_getState(model, d, st[i], spec)
        states[e] = st
    roller = mujoco.rollout.Rollout(nthread=0)
    scratch = mujoco.MjData(model)

    def reference():
        for _ in range(steps):
            if not ref.agents:
                ref.reset(seed=1)
            ref.step({n: rng.uniform(-1, 1, 3) for n in names})

    def batched(e):
        def go():
            for _ in range(max(1, steps // e)):
                vec[e].step(rng.uniform(-1, 1, (e, 2, 3)))
        return go

    def rollout(e):
        def go():
            for _ in range(max(1, steps // e)):
                ctrl = np.repeat(rng.uniform(-1, 1, (e, 1, 6)), 5, axis=1)
                out, _ = roller.rollout(model, scratch, states[e], ctrl)
                states[e] = out[:, -1]
        return go

    fns = {"mamujoco, 1 env": reference, **{f"batched, {e} envs": batched(e) for e in (1, 16, 64)},
           **{f"mujoco.rollout, {e} envs": rollout(e) for e in (16, 64)}}
    per = {"mamujoco, 1 env": steps, **{f"batched, {e} envs": max(1, steps // e) * e for e in (1, 16, 64)},
           **{f"mujoco.rollout, {e} envs": max(1, steps // e) * e for e in (16, 64)}}
    ms = interleaved_cpu_ms(fns, reps=5)
    roller.close()
    return {k: 1e3 * v / per[k] for k, v in ms.items()}


def behaviour_update_ms(rounds: int) -> tuple[float, float]:
    """(ms per MATD3 update round, µs of actor forward per transition at the paper preset's copies)."""
    from omarbench.collect.matd3 import MATD3, ReplayBuffer
    from omarbench.collect.mujoco import HALFCHEETAH_MATD3

    rng = np.random.default_rng(0)
    learner = MATD3((6, 6), HALFCHEETAH_MATD3, seed=0, act_dim=3)
    buf = ReplayBuffer((6, 6), 50_000, act_dim=3)
    for _ in range(50):
        buf.add([rng.normal(size=(1000, 6)) for _ in range(2)], rng.uniform(-1, 1, (1000, 2, 3)),
                rng.normal(size=(1000, 2)), [rng.normal(size=(1000, 6)) for _ in range(2)])
    for _ in range(4):
        learner.update(buf)

    def two_rounds():  # one critic-only and one critic+actor round (policy delay 2)
        learner.update(buf)
        learner.update(buf)

    from omarbench.collect.mujoco import mujoco_preset_config

    e = mujoco_preset_config(parse_task_id("halfcheetah-2x3")).run.num_envs
    obs = [rng.normal(size=(e, 6)) for _ in range(2)]

    def act_100():
        for _ in range(100):
            learner.act(obs, 0.1, rng)

    ms = interleaved_cpu_ms({"matd3": two_rounds, "act": act_100}, reps=max(2, rounds // 2))
    return ms["matd3"] / 2, ms["act"] * 1e3 / (100 * e)


class _Agent:
    def __init__(self, o, a, r, o2):
        self.observations, self.actions, self.rewards, self.next_observations = o, a, r, o2


class _Data:
    """Random transitions of HalfCheetah's sizes (2 agents, obs 6, act 3), in episode order."""

    def __init__(self, rows: int = 100_000):
        g = torch.Generator().manual_seed(0)
        self.agents = []
        for _ in range(2):
            o = torch.randn(rows + 1, 6, generator=g)
            self.agents.append(_Agent(o[:-1], torch.rand(rows, 3, generator=g) * 2 - 1,
                                      torch.randn(rows, generator=g), o[1:]))
        self.terminals = torch.zeros(rows, dtype=torch.bool)
        self.truncations = torch.zeros(rows, dtype=torch.bool)
        self.learner_indices = (0, 1)
        self.id = "bench-halfcheetah"


def zoo_round_ms(rounds: int) -> dict[str, float]:
    """CPU ms of one update round of each paper algorithm, ``SEEDS`` seeds batched, HalfCheetah's preset row."""
    from omarbench.offline.algos import get_algorithm
    from omarbench.offline.algos.core import Learners
    from omarbench.offline.presets import make_config

    data = _Data()
    fns = {}
    for name in PAPER_ALGOS:
        cfg = make_config(name, "halfcheetah-2x3", "expert")
        learners = Learners(get_algorithm(name)(cfg), list(range(SEEDS)), data)
        learners.update()
        fns[name] = learners.update
    return interleaved_cpu_ms(fns, reps=rounds)


def eval_ms(episodes: int) -> float:
    """CPU ms of one evaluation of ``SEEDS`` seeds x ``episodes`` full episodes through the training loop's
    :class:`~omarbench.offline.train.Evaluator` (batched actors, ``mujoco`` backend)."""
    from omarbench.offline.algos import get_algorithm
    from omarbench.offline.algos.core import Learners
    from omarbench.offline.presets import make_config
    from omarbench.offline.train import Evaluator

    cfg = make_config("MA-TD3+BC", "halfcheetah-2x3", "expert")
    learners = Learners(get_algorithm("MA-TD3+BC")(cfg), list(range(SEEDS)), _Data(1_000))
    ev = Evaluator(parse_task_id("halfcheetah-2x3"), list(range(SEEDS)), episodes, "numpy", "cpu")
    t = time.process_time()
    ev.run(learners.act)
    return (time.process_time() - t) * 1e3


def grid_cost(round_ms: Mapping[str, float], eval_10_ms: float, values: Mapping[str, int]) -> dict[str, float]:
    """CPU hours of the offline grid per algorithm (4 levels), training rounds plus evaluations."""
    rounds, every = values["rounds"], values["eval_every"]
    per_episode = eval_10_ms / 10
    evals = (rounds // every + 1) * values["eval_episodes"] + values["final_episodes"]  # episodes per seed set
    return {k: LEVELS * (rounds * ms + evals * per_episode) / 3.6e6 for k, ms in round_ms.items()}


def run(quick: bool = False) -> None:
    torch.set_num_threads(1)
    steps, rounds = (500, 10) if quick else (3_000, 40)
    env = env_costs(steps)
    print("environment, CPU µs per transition (median of 5 alternating runs):")
    ref = env["mamujoco, 1 env"]
    for k, us in env.items():
        print(f"  {k:24s} {us:7.1f} µs  ({1e6 / us:8,.0f} transitions per CPU-second, {ref / us:4.2f}x mamujoco)")
    upd, act_us = behaviour_update_ms(rounds)
    print(f"behaviour MATD3 update round (2 agents, hidden 256, batch 256): {upd:.1f} ms CPU; "
          f"acting {act_us:.1f} µs per transition")

    # behaviour runs: where the time goes --------------------------------------------------------------
    from omarbench.collect.mujoco import mujoco_preset_config

    task = parse_task_id("halfcheetah-2x3")
    print("projected behaviour runs, CPU-hours (MATD3 updates / MuJoCo steps / acting / evaluation episodes; "
          "level rollouts not included):")
    for preset in ("quick", "paper"):
        c = mujoco_preset_config(task, preset).run
        env_us = env[f"batched, {min((1, 16, 64), key=lambda e: abs(e - c.num_envs))} envs"]
        updates = max(0, c.total_steps - c.warmup_steps) * c.updates_per_step / c.num_envs
        eval_steps = c.total_steps / (c.num_envs * c.segment_episodes) * c.eval_episodes
        parts = {"updates": updates * upd / 1e3, "steps": c.total_steps * env_us / 1e6,
                 "acting": c.total_steps * act_us / 1e6, "evaluation": eval_steps * (env_us + act_us) / 1e6}
        total = sum(parts.values())
        shares = ", ".join(f"{k} {v / 3600:.2f} ({100 * v / total:.1f}%)" for k, v in parts.items())
        print(f"  {preset:6s} {c.total_steps:>9,} transitions, {updates:>9,.0f} update rounds: "
              f"{total / 3600:6.2f} CPU-hours = {shares}")

    # offline zoo ---------------------------------------------------------------------------------------
    zoo = zoo_round_ms(max(3, rounds // 4))
    print(f"offline zoo update round at the halfcheetah-2x3 preset row, {SEEDS} seeds batched, ms CPU:")
    for name, ms in zoo.items():
        print(f"  {name:10s} {ms:8.1f} ms  ({ms / SEEDS:6.1f} per seed)")
    ev10 = eval_ms(2 if quick else 10) * (5 if quick else 1)
    print(f"one evaluation, {SEEDS} seeds x 10 episodes of 1,000 steps: {ev10 / 1e3:.1f} s CPU")
    from omarbench.offline.presets import HALFCHEETAH_LAPTOP, make_config

    for preset, extra in (("quick", {}), ("paper", {}), ("laptop", HALFCHEETAH_LAPTOP)):
        cfg = make_config("OMAR", task, "expert", "paper" if preset == "laptop" else preset, extra)
        values = {k: getattr(cfg, k) for k in ("rounds", "eval_every", "eval_episodes", "final_episodes")}
        cost = grid_cost(zoo, ev10, values)
        total = sum(cost.values())
        each = ", ".join(f"{k} {v:.2f}" for k, v in cost.items())
        print(f"offline grid, {preset} ({values['rounds']:,} rounds, evaluation every {values['eval_every']} on "
              f"{values['eval_episodes']} episodes, {values['final_episodes']} final; 4 algorithms x {LEVELS} "
              f"levels x {SEEDS} seeds batched): {total:7.2f} CPU-hours ({each}); {total / 2:6.2f} h on 2 cores")
