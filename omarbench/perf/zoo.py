"""Agent-updates per second of the offline zoo: batched (seed, agent) members vs per-agent modules.

Workload: 5 seeds × 3 agents, batch 1024 per learner, hidden 64, spread's sizes (obs 18, act 2).

* **baseline** — the authors' structure (OMAR's ``MATD3.update``): one ``nn.Module`` actor and twin
  critic per (seed, agent), ``torch.optim.Adam``, ``clip_grad_norm_``, soft updates walking
  ``parameters()``, one update call per agent; the same math as :mod:`omarbench.offline.algos`.
* **batched** — :class:`omarbench.offline.algos.core.Learners`: all 15 members in one set of tensors.

Both run in the same process, interleaved round by round so that load from other processes hits both
alike; the ratio is the median over rounds. Also printed: the achieved GFLOP/s of the batched learner
(matmul FLOPs of the authors' formulation per member-update, counted below) against a measured matmul
peak, and the batched-layer choice (``bmm`` over stacked weights vs ``torch.func`` ``vmap``).
"""

from __future__ import annotations

import copy
import math
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from omarbench.offline.algos import ALGO_NAMES, get_algorithm
from omarbench.offline.algos.core import Learners
from omarbench.perf import interleaved_median_ms

SEEDS, AGENTS, BATCH, HIDDEN, OBS, ACT, ROWS = 5, 3, 1024, 64, 18, 2, 100_000
BASELINES = ("BC", "MA-TD3+BC", "MA-ICQ", "MA-CQL", "OMAR")  # the algorithms written here the authors' way


def order() -> list[str]:
    """Every registered algorithm: those with a baseline first, then the others (timed batched only)."""
    return [a for a in BASELINES if a in ALGO_NAMES] + [a for a in ALGO_NAMES if a not in BASELINES]


# ------------------------------------------------------------------------------------ the baseline


class _MLP(nn.Module):
    """maddpg-pytorch's MLPNetwork: input BatchNorm, two hidden layers, optional tanh output."""

    def __init__(self, i, o, h=HIDDEN, actor=False):
        super().__init__()
        self.bn, self.f1, self.f2, self.f3, self.actor = nn.BatchNorm1d(i), nn.Linear(i, h), nn.Linear(h, h), \
            nn.Linear(h, o), actor
        if actor:
            self.f3.weight.data.uniform_(-3e-3, 3e-3)

    def forward(self, x):
        y = self.f3(F.relu(self.f2(F.relu(self.f1(self.bn(x))))))
        return torch.tanh(y) if self.actor else y


class _Twin(nn.Module):
    """OMAR's DoubleMLPNetwork: two heads sharing the input BatchNorm."""

    def __init__(self, i, h=HIDDEN):
        super().__init__()
        self.bn = nn.BatchNorm1d(i)
        self.q1 = nn.Sequential(nn.Linear(i, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 1))
        self.q2 = nn.Sequential(nn.Linear(i, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 1))

    def forward(self, x):
        n = self.bn(x)
        return self.q1(n), self.q2(n)

    def Q1(self, x):  # noqa: N802 (the authors' name)
        return self.q1(self.bn(x))


class _Agent:
    def __init__(self, cfg, critic: bool):
        self.pi = _MLP(OBS, ACT, actor=True)
        self.pi_t = copy.deepcopy(self.pi)
        self.pi_opt = torch.optim.Adam(self.pi.parameters(), lr=cfg.lr)
        if critic:
            self.q = _Twin(OBS + ACT)
            self.q_t = copy.deepcopy(self.q)
            self.q_opt = torch.optim.Adam(self.q.parameters(), lr=cfg.lr)


def _soft(target, source, tau):
    for t, s in zip(target.parameters(), source.parameters()):
        t.data.copy_(t.data * (1.0 - tau) + s.data * tau)


def _baseline_update(name, cfg, ag: _Agent, o, a, r, o2, d, a2):
    """One agent's update as the authors wrote it (critic step, actor step)."""
    B = o.shape[0]
    if name != "BC":
        ag.q_opt.zero_grad()
        with torch.no_grad():
            if name == "MA-ICQ":
                n1, n2 = ag.q_t(torch.cat([o2, a2], 1))
                qn = torch.min(n1, n2)
                w = torch.softmax(qn / cfg.beta_q, 0)
                y = r + cfg.gamma * (1 - d) * B * w * qn
            else:
                n1, n2 = ag.q_t(torch.cat([o2, ag.pi_t(o2)], 1))
                y = r + cfg.gamma * (1 - d) * torch.min(n1, n2)
        q1, q2 = ag.q(torch.cat([o, a], 1))
        loss = F.mse_loss(q1, y) + F.mse_loss(q2, y)
        if name in ("MA-CQL", "OMAR"):
            K = cfg.cql_actions
            fo = o.unsqueeze(1).repeat(1, K, 1).view(-1, OBS)
            ra = torch.empty(B * K, ACT).uniform_(-1, 1)
            r1, r2 = ag.q(torch.cat([fo, ra], 1))
            logp = math.log(0.5**ACT)
            p1 = torch.logsumexp(r1.view(B, K) - logp, 1, keepdim=True)
            p2 = torch.logsumexp(r2.view(B, K) - logp, 1, keepdim=True)
            loss = loss + cfg.alpha * ((p1 - q1).mean() + (p2 - q2).mean())
        loss.backward()
        nn.utils.clip_grad_norm_(ag.q.parameters(), cfg.grad_clip)
        ag.q_opt.step()
    ag.pi_opt.zero_grad()
    pi = ag.pi(o)
    if name == "BC":
        pl = F.mse_loss(pi, a)
    elif name == "MA-TD3+BC":
        q = ag.q.Q1(torch.cat([o, pi], 1))
        pl = -cfg.lam / q.abs().mean().detach() * q.mean() + F.mse_loss(pi, a)
    elif name == "MA-ICQ":
        with torch.no_grad():
            adv = ag.q.Q1(torch.cat([o, a], 1)) - ag.q.Q1(torch.cat([o, pi], 1))
            w = torch.softmax(adv / cfg.beta, 0)
        pl = (w * ((pi - a) ** 2).mean(1, keepdim=True)).sum()
    elif name == "MA-CQL":
        pl = -ag.q.Q1(torch.cat([o, pi], 1)).mean()
    else:  # OMAR, the authors' MPE search
        q_pi = ag.q.Q1(torch.cat([o, pi], 1))
        S = cfg.omar_samples
        mu, sigma = torch.zeros(B, ACT) + cfg.omar_mu0, torch.zeros(B, ACT) + cfg.omar_sigma0
        fo = o.unsqueeze(1).repeat(1, S, 1).view(-1, OBS)
        for _ in range(cfg.omar_iters):
            dist = torch.distributions.Normal(mu, sigma)
            s = dist.sample((S,)).detach().permute(1, 0, 2).clamp(-1, 1)
            qs = ag.q.Q1(torch.cat([fo, s.reshape(-1, ACT)], 1)).view(B, S, 1)
            e = torch.exp(qs - qs.max(1, keepdim=True)[0])
            mu = (s * e).sum(1) / e.sum(1)
            sigma = torch.sqrt(((s - mu.unsqueeze(1)) ** 2).mean(1)).clamp(min=cfg.omar_sigma_min)
        top_q, top_i = qs.max(1)
        top_a = torch.gather(s, 1, top_i.unsqueeze(-1).expand(B, 1, ACT)).squeeze(1)
        a_hat = torch.where(top_q > q_pi.detach(), top_a, pi.detach())
        pl = cfg.tau * F.mse_loss(pi, a_hat) - (1 - cfg.tau) * q_pi.mean()
    pl = pl + (pi**2).mean() * cfg.action_l2
    pl.backward()
    nn.utils.clip_grad_norm_(ag.pi.parameters(), cfg.grad_clip)
    ag.pi_opt.step()


class _Baseline:
    def __init__(self, name, cfg, data):
        self.name, self.cfg, self.data = name, cfg, data
        self.agents = [_Agent(cfg, name != "BC") for _ in range(SEEDS * AGENTS)]

    def round(self):
        o, a, r, o2, d, a2 = self.data
        for k, ag in enumerate(self.agents):
            idx = torch.randint(ROWS - 1, (BATCH,))
            j = k % AGENTS
            _baseline_update(self.name, self.cfg, ag, o[j][idx], a[j][idx], r[j][idx].view(-1, 1), o2[j][idx],
                             d[idx].view(-1, 1), a[j][idx + 1])
        for ag in self.agents:
            if self.name != "BC":
                _soft(ag.q_t, ag.q, self.cfg.soft_update)
            _soft(ag.pi_t, ag.pi, self.cfg.soft_update)


# -------------------------------------------------------------------------------------- workloads


class _Agents:
    def __init__(self, o, a, r, o2):
        self.observations, self.actions, self.rewards, self.next_observations = o, a, r, o2


class _Data:
    """Random transitions of spread's sizes, stored in episode order (so MA-ICQ finds next actions)."""

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.agents = []
        for _ in range(AGENTS):
            o = torch.randn(ROWS + 1, OBS, generator=g)
            self.agents.append(_Agents(o[:-1], torch.rand(ROWS, ACT, generator=g) * 2 - 1,
                                       torch.randn(ROWS, generator=g), o[1:]))
        self.terminals = torch.zeros(ROWS, dtype=torch.bool)
        self.truncations = torch.zeros(ROWS, dtype=torch.bool)
        self.learner_indices = tuple(range(AGENTS))
        self.id = "bench"

    def tensors(self):
        ags = self.agents
        return ([x.observations for x in ags], [x.actions for x in ags], [x.rewards for x in ags],
                [x.next_observations for x in ags], self.terminals.float(), None)


def model_flops(name: str, cfg) -> float:
    """Matmul FLOPs of one member-update in the authors' formulation (2 per multiply-add).

    Per row: actor forward ``A``, one critic head ``C``; a backward pass costs twice its forward; in the
    actor step only the critic's input gradient is needed."""
    A = OBS * HIDDEN + HIDDEN * HIDDEN + HIDDEN * ACT
    C = (OBS + ACT) * HIDDEN + HIDDEN * HIDDEN + HIDDEN
    td3_actor = 3 * A + 2 * C  # actor forward+backward, Q1 forward and its input gradient
    twin_step = 2 * C + 6 * C  # target twin forward, twin forward+backward
    K = getattr(cfg, "cql_actions", 10)
    per_row = {
        "BC": 3 * A,
        "MA-TD3+BC": A + twin_step + td3_actor,
        "MA-ICQ": twin_step + 3 * A + 2 * C,  # no target actor; Q1 at the data and policy actions
        "MA-CQL": A + twin_step + 6 * C * K + td3_actor,
        "OMAR": A + twin_step + 6 * C * K + td3_actor
        + C * getattr(cfg, "omar_iters", 3) * getattr(cfg, "omar_samples", 10),
    }
    return 2.0 * per_row[name] * BATCH


def matmul_peak(seconds: float = 1.0, n: int = 2048) -> float:
    """GFLOP/s of a large square float32 matmul at the current thread count (best of a few)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best, t_end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return best


MATMUL_OPS = ("aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm", "aten::matmul")


def time_breakdown(step, rounds: int = 2) -> dict[str, float]:
    """Share of CPU time in matrix multiplies vs everything else (torch.profiler, self time per op)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(rounds):
            step()
    total = mm = 0.0
    top: dict[str, float] = {}
    for ev in prof.key_averages():
        t = ev.self_cpu_time_total
        total += t
        if ev.key in MATMUL_OPS:
            mm += t
        else:
            top[ev.key] = t
    worst = sorted(top.items(), key=lambda kv: -kv[1])[:3]
    return {"matmul": mm / total, "top": [(k.removeprefix("aten::"), t / total) for k, t in worst]}


def compare(name: str, rounds: int, data: _Data) -> dict:
    cls = get_algorithm(name)
    cfg = cls.config_cls()
    ours = Learners(cls(cfg), list(range(SEEDS)), data)
    base = _Baseline(name, cfg, data.tensors()) if name in BASELINES else None
    for _ in range(2):  # warm-up
        ours.update()
        if base is not None:
            base.round()
    t_ours, t_base = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        ours.update()
        t_ours.append(time.perf_counter() - t)
        if base is not None:
            t = time.perf_counter()
            base.round()
            t_base.append(time.perf_counter() - t)
    members = SEEDS * AGENTS
    to = statistics.median(t_ours)
    out = {"algo": name, "ours": members / to, "round_ms": to * 1e3, "ours_split": time_breakdown(ours.update)}
    if base is None:
        return out
    ratio = statistics.median(b / o for b, o in zip(t_base, t_ours))
    tb = statistics.median(t_base)
    return {**out, "base": members / tb, "ratio": ratio, "gflops": model_flops(name, cfg) * members / to / 1e9,
            "base_split": time_breakdown(base.round, 1)}


# ------------------------------------------------------------------------- batched-layer choice


def _layer_times(M: int, reps: int) -> tuple[float, float]:
    from torch.func import functional_call, stack_module_state, vmap

    x = torch.randn(M, BATCH, OBS + ACT)
    mods = [nn.Sequential(nn.Linear(OBS + ACT, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU(),
                          nn.Linear(HIDDEN, 1)) for _ in range(M)]
    params, bufs = stack_module_state(mods)
    base = copy.deepcopy(mods[0]).to("meta")
    vf = vmap(lambda p, b, xx: functional_call(base, (p, b), (xx,)))
    ws = [torch.stack([m[i].weight.detach().T for m in mods]).requires_grad_() for i in (0, 2, 4)]
    bs = [torch.stack([m[i].bias.detach()[None] for m in mods]).requires_grad_() for i in (0, 2, 4)]

    def bmm_step():
        h = torch.relu(torch.baddbmm(bs[0], x, ws[0]))
        h = torch.relu(torch.baddbmm(bs[1], h, ws[1]))
        torch.baddbmm(bs[2], h, ws[2]).sum().backward()

    def vmap_step():
        vf(params, bufs, x).sum().backward()

    bmm_step()
    vmap_step()
    ms = interleaved_median_ms({"bmm": bmm_step, "vmap": vmap_step}, reps)
    return ms["bmm"], ms["vmap"]


def layer_choice(reps: int) -> list[tuple[int, float, float]]:
    """Forward+backward of a 3-layer MLP over M members (B=1024): stacked-weight ``bmm`` vs ``vmap``."""
    return [(M, *_layer_times(M, reps)) for M in (15, 30)]


def run(quick: bool = False) -> None:
    rounds = 3 if quick else 12
    data = _Data()
    for threads in sorted({1, torch.get_num_threads()}):
        torch.set_num_threads(threads)
        peak = matmul_peak(0.5 if quick else 2.0)
        print(f"threads={threads}: matmul peak {peak:.0f} GFLOP/s (2048² float32)")
        for M, tb, tv in layer_choice(5 if quick else 20):
            print(f"  layer choice, M={M} members fwd+bwd: stacked bmm {tb:.2f} ms, torch.func vmap {tv:.2f} ms")
        print(f"  {'algorithm':10s} {'batched':>10s} {'baseline':>10s} {'ratio':>6s} {'GFLOP/s':>8s} "
              f"{'of peak':>7s}   (agent-updates/s; 5 seeds x 3 agents, batch 1024)")
        for name in order():
            r = compare(name, rounds, data)
            if "base" not in r:
                print(f"  {name:10s} {r['ours']:10.0f} {'—':>10s} (no per-agent baseline here)", flush=True)
                continue
            print(f"  {name:10s} {r['ours']:10.0f} {r['base']:10.0f} {r['ratio']:5.1f}x {r['gflops']:8.1f} "
                  f"{100 * r['gflops'] / peak:6.0f}%", flush=True)
            for who in ("ours", "base"):
                split = r[f"{who}_split"]
                rest = ", ".join(f"{k} {100 * v:.0f}%" for k, v in split["top"])
                print(f"  {'':10s}   {'batched' if who == 'ours' else 'baseline'} time: matmul "
                      f"{100 * split['matmul']:.0f}%, then {rest}")
