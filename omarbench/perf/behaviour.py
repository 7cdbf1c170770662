"""Behaviour training (online MATD3, ``omarbench collect``) against the previous implementation.

``Reference`` below is the behaviour learner as it was before its loop was trimmed (kept compact, with
the same networks and optimisers): per-agent buffer gathers, ``repeat_interleave`` for the twin heads,
both heads evaluated in the actors' pass, Adam's per-tensor loop, mode switches around acting, the
modules' own forwards. The current learner (:class:`omarbench.collect.matd3.MATD3`) must compute the
same thing to the bit: this benchmark checks it on the ``paper`` preset's shapes while it times them.

For each task, two copies of the training loop (acting with exploration noise, the environment step,
the replay buffer, the preset's gradient rounds per step), one with each learner, start from the same
seed and fill a replay buffer with ``FILL`` transitions of the untrained actors (no gradient rounds, to
save time); then windows of batched steps alternate between them and the medians of CPU time per
window give env-steps/s and the ratio. After every window the two learners' complete states (networks,
target networks, optimisers, generator) must agree to the bit, and so must their actions. Evaluation
and checkpoint writes (about 0.1 s per 10,000-step MPE segment) are left out: the same code in both.
"""

from __future__ import annotations

import hashlib
import statistics
import time

import numpy as np
import torch
from torch import nn

from omarbench.collect.matd3 import MATD3, AgentsTwinCritic, ReplayBuffer
from omarbench.collect.run import behaviour_kernel
from omarbench.errors import UsageError
from omarbench.kernels import matmul_kernel

FILL = 20_000  # replay transitions before timing starts (the preset's warm-up is 5,000)
TASKS = ("spread", "world", "halfcheetah-2x3")
_clock = time.process_time


class ReferenceBuffer:
    """The previous replay buffer: one tensor per agent and field, one gather each."""

    def __init__(self, obs_dims: tuple[int, ...], capacity: int, act_dim: int = 2):
        self.capacity = capacity
        self.obs = [torch.zeros(capacity, d) for d in obs_dims]
        self.next_obs = [torch.zeros(capacity, d) for d in obs_dims]
        self.actions = torch.zeros(capacity, len(obs_dims), act_dim)
        self.rewards = torch.zeros(capacity, len(obs_dims))
        self.size = self.pos = 0

    def add(self, obs, actions, rewards, next_obs) -> None:
        b = actions.shape[0]
        idx = (self.pos + np.arange(b)) % self.capacity
        for i in range(len(self.obs)):
            self.obs[i][idx] = torch.from_numpy(np.asarray(obs[i], np.float32))
            self.next_obs[i][idx] = torch.from_numpy(np.asarray(next_obs[i], np.float32))
        self.actions[idx] = torch.from_numpy(np.asarray(actions, np.float32))
        self.rewards[idx] = torch.from_numpy(np.asarray(rewards, np.float32))
        self.pos = int((self.pos + b) % self.capacity)
        self.size = min(self.size + b, self.capacity)

    def sample(self, batch: int, gen: torch.Generator):
        idx = torch.randint(0, self.size, (batch,), generator=gen)
        return [o[idx] for o in self.obs], self.actions[idx], self.rewards[idx], [o[idx] for o in self.next_obs]


def _reference_critic(critic: AgentsTwinCritic, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = x.mean(dim=-2, keepdim=True)
    var = x.var(dim=-2, unbiased=False, keepdim=True)
    h = (x - mean) / torch.sqrt(var + critic.eps)
    h = (h * critic.norm_weight + critic.norm_bias).repeat_interleave(2, dim=0)
    for k, (w, bias) in enumerate(zip(critic.weights, critic.biases)):
        h = torch.baddbmm(bias, h, w)
        if k < len(critic.weights) - 1:
            h = torch.relu(h)
    q = h.squeeze(-1).reshape(critic.n, 2, -1)
    return q[:, 0], q[:, 1]


class Reference(MATD3):
    """The previous learner's acting and update round on :class:`MATD3`'s networks and optimisers."""

    @torch.no_grad()
    def act(self, obs, noise, rng=None):
        self.actors.eval()
        acts = np.stack([a(torch.as_tensor(o, dtype=torch.float32)).numpy() for a, o in zip(self.actors, obs)], 1)
        self.actors.train()
        if noise > 0:
            acts = acts + rng.normal(0.0, noise, acts.shape)
        return np.clip(acts, -1.0, 1.0).astype(np.float64)

    def update(self, buffer: ReferenceBuffer) -> None:
        c = self.cfg
        obs, actions, rewards, next_obs = buffer.sample(c.batch_size, self.gen)
        b = actions.shape[0]
        obs_cat, next_obs_cat = torch.cat(obs, 1), torch.cat(next_obs, 1)
        with torch.no_grad():
            acts = torch.stack([a(o) for a, o in zip(self.actors_t, next_obs)], 1)
            noise = torch.randn(acts.shape, generator=self.gen) * c.target_noise
            next_act = (acts + noise.clamp(-c.target_noise_clip, c.target_noise_clip)).clamp(-1.0, 1.0)
            q1_t, q2_t = _reference_critic(self.critic_t, torch.cat([next_obs_cat, next_act.reshape(b, -1)], 1))
            y = rewards.T + c.gamma * torch.min(q1_t, q2_t)
        q1, q2 = _reference_critic(self.critic, torch.cat([obs_cat, actions.reshape(b, -1)], 1))
        loss = (((q1 - y) ** 2).mean(1) + ((q2 - y) ** 2).mean(1)).sum()
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.critic.clip_grad_norms_(c.grad_clip)
        self.critic_opt.step()
        self.updates += 1
        if self.updates % c.policy_delay:
            return
        pis = [a(o) for a, o in zip(self.actors, obs)]
        joint = actions.unsqueeze(0).repeat(self.n, 1, 1, 1)
        for i, pi in enumerate(pis):
            joint[i, :, i] = pi
        x = torch.cat([obs_cat.unsqueeze(0).expand(self.n, -1, -1), joint.reshape(self.n, b, -1)], 2)
        q1_pi, _ = _reference_critic(self.critic, x)
        loss = sum(-q1_pi[i].mean() + c.action_l2 * (pi**2).mean() for i, pi in enumerate(pis))
        self.actor_opt.zero_grad(set_to_none=True)
        loss.backward(inputs=list(self.actors.parameters()))
        for a in self.actors:
            nn.utils.clip_grad_norm_(a.parameters(), c.grad_clip)
        self.actor_opt.step()
        with torch.no_grad():
            for net, tgt in ((self.actors, self.actors_t), (self.critic, self.critic_t)):
                for p, pt in zip(net.parameters(), tgt.parameters()):
                    pt.mul_(1 - c.tau).add_(p, alpha=c.tau)
                for bf, bt in zip(net.buffers(), tgt.buffers()):
                    bt.copy_(bf)


def learner_digest(learner: MATD3) -> str:
    """SHA-256 over a learner's whole state (every tensor's bytes and every other value)."""
    h = hashlib.sha256()

    def walk(prefix, obj):
        if isinstance(obj, dict):
            for k in sorted(obj, key=str):
                walk(f"{prefix}/{k}", obj[k])
        elif isinstance(obj, (list, tuple)):
            for i, v in enumerate(obj):
                walk(f"{prefix}/{i}", v)
        elif isinstance(obj, torch.Tensor):
            t = obj.detach().contiguous()
            h.update(f"{prefix}|{t.dtype}|{tuple(t.shape)}|".encode())
            h.update(t.numpy().tobytes())
        else:
            h.update(f"{prefix}={obj!r}|".encode())

    walk("", learner.state_dict())
    return h.hexdigest()


def _run_config(task):
    if task.name.startswith("halfcheetah"):
        from omarbench.collect.mujoco import mujoco_preset_config

        return mujoco_preset_config(task, "paper").run, "mujoco"
    from omarbench.collect.collector import preset_config

    return preset_config(task, "paper").run, "numpy"


class Loop:
    """The behaviour run's inner loop (:meth:`omarbench.collect.run.BehaviourRun._train`) for one learner."""

    def __init__(self, task_id: str, reference: bool, seed: int = 0, fill: int = FILL):
        from omarbench.tasks.envs import make_vec_env
        from omarbench.tasks.prey import fixed_policy_for
        from omarbench.tasks.spec import parse_task_id

        task = self.task = parse_task_id(task_id)
        self.cfg, backend = _run_config(task)
        self.learners = list(task.learner_indices)
        dims = tuple(task.obs_dims[i] for i in self.learners)
        cls, buf = (Reference, ReferenceBuffer) if reference else (MATD3, ReplayBuffer)
        self.learner = cls(dims, self.cfg.matd3, seed=seed, act_dim=task.act_dim)
        self.buffer = buf(dims, self.cfg.buffer_size, act_dim=task.act_dim)
        self.rng = np.random.default_rng(seed + 2)
        self.kernel = behaviour_kernel(self.cfg.matd3)
        self.env = make_vec_env(task, self.cfg.num_envs, backend, seed=seed, fixed_policy=fixed_policy_for(task))
        self.obs = self.env.reset()
        self.acc = 0.0
        self.actions: list[np.ndarray] = []
        while self.buffer.size < fill:  # the buffer of a run in progress (no gradient rounds: quicker)
            self.step(learn=False)

    def step(self, learn: bool = True) -> None:
        cfg, ln = self.cfg, self.learners
        acts = self.learner.act([self.obs[i] for i in ln], cfg.matd3.expl_noise, self.rng)
        step = self.env.step(acts)
        self.buffer.add([self.obs[i] for i in ln], acts, step.rewards[:, ln], [step.next_obs[i] for i in ln])
        self.obs = step.obs
        self.actions.append(acts)
        if learn and self.buffer.size >= cfg.warmup_steps:
            self.acc += cfg.updates_per_step
            with matmul_kernel(self.kernel):  # the gradient rounds' kernel, as in a behaviour run here
                while self.acc >= 1:
                    self.learner.update(self.buffer)
                    self.acc -= 1

    def window(self, steps: int) -> float:
        """CPU seconds of ``steps`` batched steps."""
        t = _clock()
        for _ in range(steps):
            self.step()
        return _clock() - t


def compare(task_id: str, steps: int, reps: int, fill: int = FILL) -> tuple[float, float, bool]:
    """(reference env-steps/s, current env-steps/s, bit-identical throughout) on ``task_id``."""
    ref, cur = Loop(task_id, reference=True, fill=fill), Loop(task_id, reference=False, fill=fill)
    times: dict[bool, list[float]] = {True: [], False: []}
    same = True
    for _ in range(reps):
        for loop in (ref, cur):
            times[loop is ref].append(loop.window(steps))
        same &= learner_digest(ref.learner) == learner_digest(cur.learner)
        same &= all(np.array_equal(a, b) for a, b in zip(ref.actions, cur.actions))
        ref.actions.clear()
        cur.actions.clear()
    per = steps * ref.cfg.num_envs
    return per / statistics.median(times[True]), per / statistics.median(times[False]), same


def rate(task_id: str, steps: int, reps: int, fill: int = FILL) -> float:
    """Current learner's env-steps/s on ``task_id`` (paper preset, steady state), median of ``reps``."""
    loop = Loop(task_id, reference=False, fill=fill)
    return steps * loop.cfg.num_envs / statistics.median(loop.window(steps) for _ in range(reps))


WINDOW = {"halfcheetah-2x3": 4}  # batched steps per window (HalfCheetah: 5 rounds of hidden 256 per step)


STUDY_RUNS = ("spread", "tag", "world", "spread-n1", "spread-n2", "spread-n4", "spread-n5")  # the study's 7


def run(quick: bool = False) -> None:
    from omarbench.collect.collector import preset_config
    from omarbench.tasks.spec import parse_task_id

    reps = 3 if quick else 7
    torch.set_num_threads(1)
    print(f"behaviour training, paper preset, steady state (buffer of {FILL:,}), CPU time on one thread, "
          f"medians of {reps} interleaved windows:")
    rates = {}
    for tid in TASKS:
        steps = WINDOW.get(tid, 10 if quick else 40)
        try:
            old, new, same = compare(tid, steps, reps)
        except UsageError as err:  # the mujoco extra is missing
            print(f"  {tid:16s} skipped: {err}")
            continue
        rates[tid] = new
        print(f"  {tid:16s} previous {old:7,.0f} env-steps/s, now {new:7,.0f} env-steps/s: {new / old:4.2f}x; "
              f"results {'bit-identical' if same else 'DIFFERENT'}", flush=True)
    print("the paper study's behaviour runs at the current rate:")
    total = 0.0
    for tid in STUDY_RUNS:
        r = rates[tid] if tid in rates else rate(tid, 10 if quick else 40, reps)
        budget = preset_config(parse_task_id(tid), "paper").run.total_steps
        total += budget / r
        print(f"  {tid:10s} {r:7,.0f} env-steps/s -> {budget:,} steps in {budget / r / 60:5.1f} core-minutes",
              flush=True)
    print(f"  total {total / 60:.0f} core-minutes ({total / 2 / 60:.0f} min on 2 cores, two runs at a time)")
