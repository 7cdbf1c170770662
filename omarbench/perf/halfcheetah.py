"""Cost of ``halfcheetah-2x3``: environment steps, behaviour (MATD3) updates, offline-zoo updates.

* Environment: CPU time per transition of MaMuJoCo stepped directly (one env, the reference), of
  :class:`omarbench.tasks.mamujoco.MujocoVecEnv` with 1, 16 and 64 copies (observations included), and of
  ``mujoco.rollout`` stepping the same batches (physics state only; it drops the solver's warm start
  between calls, so its trajectories are not Gymnasium's: shown for comparison only).
* Behaviour learner: one MATD3 update round of both agents with ``HALFCHEETAH_MATD3`` (hidden 256,
  batch 256): centralised twin critics, target smoothing, the actor every second round.
* Offline zoo: one update round of the batched learners (:class:`omarbench.algos.core.Learners`) at
  HalfCheetah's sizes (2 agents, obs 6, act 3, hidden 256, batch 256), 1 and 5 seeds. MA-CQL and OMAR run
  their MPE samplers here (10 uniform actions; 3 x 10 search samples); the HalfCheetah variants sample
  3 x 10 actions for the penalty and 2 x 20 for the CEM, so they cost more (estimated below by the
  number of critic evaluations).

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

PAPER_ROUNDS = 100_000  # the authors' offline training length on HalfCheetah
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


def zoo_round_ms(rounds: int) -> dict[tuple[str, int], float]:
    from omarbench.algos import get_algorithm
    from omarbench.algos.core import Learners

    data = _Data()
    fns = {}
    for name in ("MA-TD3+BC", "MA-ICQ", "MA-CQL", "OMAR"):
        cls = get_algorithm(name)
        cfg = cls.config_cls().replace(hidden=256, batch_size=256, lr=3e-4, soft_update=0.005, gamma=0.99)
        for seeds in (1, SEEDS):
            learners = Learners(cls(cfg), list(range(seeds)), data)
            learners.update()
            fns[(name, seeds)] = learners.update
    ms = interleaved_cpu_ms(fns, reps=rounds)
    return ms


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
    zoo = zoo_round_ms(rounds)
    print("offline zoo update round at HalfCheetah sizes (MPE samplers), ms CPU:")
    for (name, seeds), ms in zoo.items():
        print(f"  {name:10s} {seeds} seed{'s' if seeds > 1 else ' '} {ms:8.1f} ms  ({ms / seeds:6.1f} per seed)")

    # projections ------------------------------------------------------------------------------------
    from omarbench.collect.mujoco import mujoco_preset_config

    task = parse_task_id("halfcheetah-2x3")
    env_us = env["batched, 16 envs"]
    print("projected behaviour runs (one update per transition unless the preset says otherwise):")
    for preset in ("quick", "paper"):
        c = mujoco_preset_config(task, preset).run
        updates = max(0, c.total_steps - c.warmup_steps) * c.updates_per_step / c.num_envs
        evals = c.total_steps / (c.num_envs * task.episode_length * c.segment_episodes) * c.eval_episodes * 1000
        cpu_h = (updates * upd / 1e3 + (c.total_steps + evals) * (env_us + act_us) / 1e6) / 3600
        print(f"  {preset:6s} {c.total_steps:>9,} transitions, {updates:>9,.0f} updates: {cpu_h:6.2f} CPU-hours")
    # the HalfCheetah samplers' extra critic evaluations (per row: MPE 10 penalty / 30 search; HalfCheetah
    # 30 penalty / 40 CEM), scaled on the measured penalty share of a round
    td3 = zoo[("MA-TD3+BC", SEEDS)]
    cql_hc = td3 + 3 * (zoo[("MA-CQL", SEEDS)] - td3)
    omar_hc = cql_hc + (zoo[("OMAR", SEEDS)] - zoo[("MA-CQL", SEEDS)]) * 40 / 30
    per_algo = {"MA-TD3+BC": td3, "MA-ICQ": zoo[("MA-ICQ", SEEDS)], "MA-CQL": cql_hc, "OMAR": omar_hc}
    for label, rnds in (("paper", PAPER_ROUNDS), ("laptop", PAPER_ROUNDS // 10)):
        total = sum(per_algo.values()) * LEVELS * rnds / 1e3 / 3600
        print(f"offline grid, {label} ({rnds:,} rounds, 4 algorithms x 4 levels x {SEEDS} seeds batched): "
              f"{total:6.1f} CPU-hours ({total / 2:5.1f} h on 2 cores; HalfCheetah samplers estimated)")
