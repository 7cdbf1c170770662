"""Would ``torch.compile`` (inductor) speed up the critic? Our eager passes against compiled ones.

Two measurements, 5 seeds x 3 agents batched, batch 1024, spread's sizes, one process:

- the twin critic's regression step (both heads on the data actions, forward + gradients), eager vs
  ``torch.compile`` of the same function;
- CQL's sampled-action pass (10 uniform actions per state, both heads, logsumexp, gradients): the plain
  autograd version eager and compiled, against ``omarbench.offline.nn.sampled_logsumexp`` (chunked, hand-written
  backward), which the algorithms use.

A whole update round is not compiled: it mutates flat parameter buffers through views, which
aot_autograd rejects. The first compiled calls (tens of seconds) are excluded from the timings.
"""

from __future__ import annotations

import time

import torch

from omarbench.offline.nn import BatchedTwinCritic, sampled_logsumexp
from omarbench.perf import interleaved_median_ms

MEMBERS, BATCH, OBS, ACT, SAMPLED = 15, 1024, 18, 2, 10


def run(quick: bool = False) -> None:
    g = torch.Generator().manual_seed(0)
    critic = BatchedTwinCritic(MEMBERS, OBS, ACT, track_running_stats=False)
    critic.init_([torch.Generator().manual_seed(i) for i in range(MEMBERS)])
    batch = 256 if quick else BATCH
    obs = torch.randn(MEMBERS, batch, OBS, generator=g)
    act = torch.rand(MEMBERS, batch, 1, ACT, generator=g) * 2 - 1
    sampled = torch.rand(MEMBERS, batch, SAMPLED, ACT, generator=g) * 2 - 1
    target = torch.randn(MEMBERS, 1, batch, generator=g)
    names = list(critic.params.p)
    leaves = [critic.params.p[n].detach().clone().requires_grad_() for n in names]

    def with_params(ps, a):
        own = critic.params.p
        critic.params.p = dict(zip(names, ps))
        try:
            return critic(obs, a, heads=2, update_stats=False)
        finally:
            critic.params.p = own

    def regression(*ps):
        q = with_params(ps, act)[..., 0]
        return torch.autograd.grad((q - target).square().mean(2).sum(), ps)

    def penalty(*ps):
        q = with_params(ps, sampled)
        return torch.autograd.grad(torch.logsumexp(q, 3).mean(2).sum(), ps)

    def ours_penalty():
        critic.params.zero_grad()
        sampled_logsumexp(critic, obs, sampled, 0.0, update_stats=False).sum().backward()

    t = time.perf_counter()
    reg_c, pen_c = torch.compile(regression), torch.compile(penalty)
    try:
        for _ in range(2):
            reg_c(*leaves)
            pen_c(*leaves)
    except Exception as exc:  # inductor needs a C++ compiler; say so instead of failing the bench run
        print(f"  torch.compile unavailable here: {type(exc).__name__}: {str(exc).splitlines()[0]}")
        return
    print(f"  compiling (2 warm-up calls each): {time.perf_counter() - t:.1f} s")
    got = reg_c(*leaves)
    want = regression(*leaves)
    diff = max((a - b).abs().max().item() for a, b in zip(got, want))
    print(f"  compiled vs eager gradients, twin regression step: max difference {diff:.1e}")

    reps = 5 if quick else 20
    r = interleaved_median_ms({"eager": lambda: regression(*leaves), "compiled": lambda: reg_c(*leaves)}, reps)
    print(f"  twin regression step, {MEMBERS} members x {batch} rows: eager {r['eager']:.1f} ms, "
          f"compiled {r['compiled']:.1f} ms ({r['eager'] / r['compiled']:.2f}x)")
    r = interleaved_median_ms({"autograd": lambda: penalty(*leaves), "compiled": lambda: pen_c(*leaves),
                    "ours": ours_penalty}, max(3, reps // 2))
    print(f"  sampled-action pass, {SAMPLED} actions/state: autograd eager {r['autograd']:.0f} ms, "
          f"autograd compiled {r['compiled']:.0f} ms, sampled_logsumexp {r['ours']:.0f} ms "
          f"(ours vs compiled {r['compiled'] / r['ours']:.2f}x)")
