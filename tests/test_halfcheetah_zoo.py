"""The zoo's HalfCheetah variants: MA-CQL's uniform + policy samples and OMAR's CEM search."""

import math
from dataclasses import replace

import pytest
import torch
from toy_offline import contextual_dataset, toy_scores

from omarbench.errors import UsageError
from omarbench.offline.algos import get_algorithm
from omarbench.offline.algos.core import Learners
from omarbench.offline.algos.cql import CQLConfig, cql_policy_penalty
from omarbench.offline.algos.omar import OMARConfig, cem_actions
from omarbench.offline.nn import BN_EPS
from omarbench.offline.presets import make_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")

VARIANT = {"MA-CQL": {"cql_sampler": "uniform+policy"},
           "OMAR": {"cql_sampler": "uniform+policy", "omar_search": "cem", "omar_iters": 2, "omar_samples": 20,
                    "omar_elites": 5}}


def _learners(algo, ds, seeds=(0,), device="cpu", **cfg):
    cls = get_algorithm(algo)
    return Learners(cls(cls.config_cls(**{**VARIANT[algo], **cfg})), list(seeds), ds, device)


# ---------------------------------------------------------------------------------------------------
# the CEM search
# ---------------------------------------------------------------------------------------------------


class ScriptedSearch:
    """A stand-in learner: Gaussian draws from a seeded generator, Q1 from ``qfn`` (per call index);
    every call's candidates are recorded."""

    def __init__(self, qfn, seed=0):
        self.qfn, self.g, self.calls, self.draws = qfn, torch.Generator().manual_seed(seed), [], []

    def normal(self, B, S, da):
        self.draws.append(torch.randn(1, B, S, da, generator=self.g))
        return self.draws[-1].clone()

    def q1_search(self, obs, precision="fp32"):
        def search(samples):
            q = self.qfn(len(self.calls), samples)
            self.calls.append((samples.clone(), q.clone()))
            return q
        return search


def _cem(qfn, B=64, q_pi=None, **cfg):
    cfg = OMARConfig(**{"omar_search": "cem", "omar_iters": 2, "omar_samples": 20, "omar_elites": 5, **cfg})
    L = ScriptedSearch(qfn)
    pi = torch.zeros(1, B, 3)
    q_pi = torch.full((1, B), -1e9) if q_pi is None else q_pi
    a_hat, q_hat, sigma = cem_actions(L, torch.zeros(1, B, 6), pi, q_pi, cfg)
    return L, cfg, a_hat, q_hat, sigma


def test_cem_keeps_the_elites_across_iterations():
    # the first iteration's samples score by closeness to 0.5; every later sample scores -100: the
    # answer must be the first iteration's best sample, carried over as an elite
    def qfn(call, a):
        return -(a - 0.5).square().sum(-1) if call == 0 else torch.full(a.shape[:-1], -100.0)

    L, cfg, a_hat, q_hat, _ = _cem(qfn)
    (s0, q0), _ = L.calls
    best = q0.argmax(2)
    torch.testing.assert_close(a_hat, s0.gather(2, best.view(1, -1, 1, 1).expand(1, 64, 1, 3)).squeeze(2))
    torch.testing.assert_close(q_hat, q0.amax(2))


def test_cem_returns_the_best_of_all_candidates_and_its_mean_follows_the_elites():
    target = torch.tensor([0.3, -0.6, 0.9])

    def qfn(call, a):
        return -(a - target).square().sum(-1)

    L, cfg, a_hat, q_hat, sigma = _cem(qfn, omar_iters=3)
    assert len(L.calls) == 3
    # brute force over everything the search saw: the best value any candidate got
    best = torch.stack([q.amax(2) for _, q in L.calls]).amax(0)
    torch.testing.assert_close(q_hat, best)
    torch.testing.assert_close(qfn(0, a_hat), q_hat)
    # the second iteration samples N(mean, std) of the first iteration's top 5, clipped to [-1, 1]
    s0, q0 = L.calls[0]
    top = s0.gather(2, q0.topk(5, dim=2).indices.unsqueeze(3).expand(1, 64, 5, 3))
    width = top.std(2, keepdim=True).clamp(min=cfg.omar_sigma_min)  # the guard where all 5 clip alike
    expect = (top.mean(2, keepdim=True) + width * L.draws[1]).clamp(-1, 1)
    torch.testing.assert_close(L.calls[1][0], expect)
    # and the search gets closer to the optimum than random guessing does
    assert (a_hat - target).square().sum(-1).mean() < 0.5 * (s0 - target).square().sum(-1).mean()
    assert torch.all(sigma >= cfg.omar_sigma_min)


def test_cem_respects_the_action_bounds_and_never_collapses():
    def qfn(call, a):
        return a.sum(-1)  # pushes every sample to the +1 corner

    L, cfg, a_hat, q_hat, sigma = _cem(qfn, omar_mu0=0.9, omar_sigma0=50.0)
    for s, _ in L.calls:
        assert torch.all(s.abs() <= 1)
    assert torch.all(a_hat.abs() <= 1)
    assert torch.all(sigma >= cfg.omar_sigma_min) and torch.all(torch.isfinite(sigma))


def test_cem_keeps_the_policy_action_unless_a_candidate_beats_it():
    def qfn(call, a):
        return -(a - 0.5).square().sum(-1)

    q_pi = torch.where(torch.arange(64) % 2 == 0, torch.tensor(1e9), torch.tensor(-1e9)).view(1, 64)
    _, _, a_hat, q_hat, _ = _cem(qfn, q_pi=q_pi)
    assert torch.all(a_hat[0, ::2] == 0) and torch.all(q_hat[0, ::2] == 1e9)
    assert torch.all(q_hat[0, 1::2] > -1e9) and torch.all(a_hat[0, 1::2] != 0)


def test_cem_on_real_critics_never_rectifies_towards_a_worse_action():
    ds = contextual_dataset(1024)
    L = _learners("OMAR", ds, batch_size=128, lr=3e-3, tau=0.5)
    for _ in range(10):
        L.update()
    g = L.groups[0][0]
    b = g.sample()
    with torch.no_grad():
        pi = g.actor(b.obs, train=True, update_stats=False)
        q_pi = g.q1(b.obs, pi)
        a_hat, q_hat, _ = cem_actions(g, b.obs, pi, q_pi, g.cfg)
    assert torch.all(q_hat >= q_pi) and torch.all(a_hat.abs() <= 1)
    kept = (a_hat == pi).all(-1)
    assert torch.all(q_hat[kept] == q_pi[kept])


# ---------------------------------------------------------------------------------------------------
# MA-CQL's policy samples
# ---------------------------------------------------------------------------------------------------


def _reference_penalty(g, b, q, cfg, noise_states, params):
    """The authors' computation written out per member: three separate critic passes (uniform, π(o)+ε,
    π(o′)+ε, observations repeated) through BatchNorm1d + Linear layers, Q minus the importance term
    (log 0.5^d for uniform samples, the Gaussian density of ε for policy samples), logsumexp over the 30
    actions of each state, mean over states, both heads, minus the dataset-action values, times α
    (with ``cql_policy_shift="log_density"``: the log of that density)."""
    M, B, da = b.act.shape
    K = cfg.cql_actions
    do = g.obs_dim
    out = []
    for m in range(M):
        gen = torch.Generator().set_state(noise_states[m])
        uni = torch.empty(B, K, da).uniform_(-1.0, 1.0, generator=gen)
        sets, shifts = [uni.reshape(B * K, da)], [torch.full((B * K,), da * math.log(0.5))]
        for o in (b.obs, b.next_obs):
            with torch.no_grad():
                pi = g.actor(o, train=True, update_stats=False)[m]
            eps = torch.empty(B, K, da).normal_(generator=gen) * cfg.cql_policy_noise
            pdf = (1 / (cfg.cql_policy_noise * math.sqrt(2 * math.pi))
                   * torch.exp(-eps.square() / (2 * cfg.cql_policy_noise ** 2))).prod(-1).reshape(-1)
            shifts.append(pdf if cfg.cql_policy_shift == "density" else pdf.log())
            sets.append((pi.unsqueeze(1) + eps).clamp(-1, 1).reshape(B * K, da))
        obs_rep = b.obs[m].unsqueeze(1).expand(B, K, do).reshape(B * K, do)
        total = 0.0
        for h in range(2):
            zs = []
            for acts, shift in zip(sets, shifts):
                x = torch.nn.functional.batch_norm(torch.cat([obs_rep, acts], 1), None, None,
                                                   params["bn_w"][m], params["bn_b"][m], True, 0.1, BN_EPS)
                x = torch.relu(x @ params["w1"][m, h].T + params["b1"][m, h, 0])
                x = torch.relu(x @ params["w2"][m, h].T + params["b2"][m, h, 0])
                qv = (x @ params["w3"][m, h].T + params["b3"][m, h, 0]).view(B, K)
                zs.append(qv - shift.view(B, K))
            total = total + torch.logsumexp(torch.cat(zs, 1), dim=1).mean()
        out.append(cfg.alpha * (total - q[m].mean(1).sum()))
    return torch.stack(out)


@pytest.mark.parametrize("shift", ["density", "log_density"])
def test_cql_policy_term_equals_a_plain_per_sample_computation(shift):
    ds = contextual_dataset(512, n_agents=2)
    L = _learners("MA-CQL", ds, seeds=(0, 1), batch_size=24, lr=3e-3, alpha=2.0, cql_policy_shift=shift)
    for _ in range(3):
        L.update()
    g = L.groups[0][0]
    cfg = g.cfg
    b = g.sample()
    with torch.no_grad():
        q = g.critic(b.obs, b.act.unsqueeze(2), heads=2, update_stats=False)[..., 0]
    states = [gen.get_state() for gen in g.g_noise]
    g.critic.params.zero_grad()
    fused = cql_policy_penalty(g, b, q, cfg)
    fused.sum().backward()
    fused_grad = {k: v.grad.clone() for k, v in g.critic.params.p.items()}
    params = {k: v.detach().clone().requires_grad_(True) for k, v in g.critic.params.p.items()}
    ref = _reference_penalty(g, b, q, cfg, states, params)
    torch.testing.assert_close(fused.detach(), ref.detach(), rtol=1e-5, atol=1e-5)
    ref.sum().backward()
    for k, p in params.items():
        torch.testing.assert_close(fused_grad[k], p.grad, rtol=1e-4, atol=1e-6, msg=k)


def test_policy_samples_move_the_actors_running_statistics_like_the_authors_calls():
    ds = contextual_dataset(512)
    L = _learners("MA-CQL", ds, batch_size=32)
    g = L.groups[0][0]
    b = g.sample()
    before = g.actor.stats.mean.clone()
    with torch.no_grad():
        q = g.critic(b.obs, b.act.unsqueeze(2), heads=2, update_stats=False)[..., 0]
    cql_policy_penalty(g, b, q, g.cfg)
    expect = before.lerp(b.obs.mean(1), 0.1).lerp(b.next_obs.mean(1), 0.1)
    torch.testing.assert_close(g.actor.stats.mean, expect)


# ---------------------------------------------------------------------------------------------------
# batching, learning, presets, devices
# ---------------------------------------------------------------------------------------------------


def _all_state(group, members):
    out = []
    for net in (group.actor, group.actor_t, group.critic, group.critic_t):
        out += [p.detach()[members] for p in net.params.p.values()]
        if net.stats is not None:
            out += [net.stats.mean[members], net.stats.var[members]]
    return out


@pytest.mark.parametrize("n_agents", [1, 2])
@pytest.mark.parametrize("algo", ["MA-CQL", "OMAR"])
def test_member_of_a_batched_run_equals_a_lone_run(algo, n_agents):
    ds = contextual_dataset(1024, n_agents=n_agents)
    batched = _learners(algo, ds, seeds=(0, 1, 2), batch_size=32)
    lone = _learners(algo, ds, seeds=(2,), batch_size=32)
    batched.matmul_kernel = lone.matmul_kernel = "mkl"
    for _ in range(8):
        batched.update()
        lone.update()
    gb, gl = batched.groups[0][0], lone.groups[0][0]
    seed2 = slice(2 * n_agents, 3 * n_agents)
    for x, y in zip(_all_state(gb, seed2), _all_state(gl, slice(0, n_agents))):
        torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-7)
    assert not torch.allclose(gb.actor.params.p["w1"][0], gb.actor.params.p["w1"][2])


@pytest.mark.parametrize("algo", ["MA-CQL", "OMAR"])
def test_each_variant_improves_on_a_contextual_toy(algo):
    ds = contextual_dataset(2048)
    L = _learners(algo, ds, batch_size=128, lr=3e-3, **({"tau": 0.5} if algo == "OMAR" else {}))
    before, after = toy_scores(L)
    assert after > before + 0.2, (before, after)
    assert after > ds.agents[0].rewards.mean().item(), after


def test_the_halfcheetah_preset_row_selects_the_variants_and_mpe_keeps_its_own():
    omar = make_config("OMAR", "halfcheetah-2x3", "expert")
    assert (omar.cql_sampler, omar.omar_search, omar.omar_iters, omar.omar_samples, omar.omar_elites) == \
        ("uniform+policy", "cem", 2, 20, 5)
    assert (omar.tau, omar.alpha, omar.rounds, omar.eval_every) == (0.5, 5.0, 100_000, 500)
    assert (omar.hidden, omar.batch_size, omar.lr, omar.soft_update) == (256, 256, 3e-4, 0.005)
    assert make_config("OMAR", "halfcheetah-2x3", "medium").tau == 0.7
    assert make_config("MA-CQL", "halfcheetah-2x3", "medium-replay").alpha == 5.0
    assert make_config("MA-TD3+BC", "halfcheetah-2x3", "random").hidden == 256
    quick = make_config("OMAR", "halfcheetah-2x3", "random", "quick")
    assert quick.omar_search == "cem" and quick.rounds < 1000 and quick.hidden == 256
    mpe = make_config("OMAR", "spread", "expert")
    assert (mpe.cql_sampler, mpe.omar_search, mpe.hidden, mpe.omar_iters) == ("uniform", "softmax", 64, 3)


def test_the_laptop_preset_is_the_paper_row_with_the_laptop_budget():
    from omarbench.offline.presets import HALFCHEETAH_LAPTOP

    for algo in ("OMAR", "MA-CQL", "MA-TD3+BC", "MA-ICQ"):
        paper = make_config(algo, "halfcheetah-2x3", "medium")
        laptop = make_config(algo, "halfcheetah-2x3", "medium", "laptop")
        assert (laptop.rounds, laptop.eval_every, laptop.final_episodes) == (500, 250, 20)
        assert laptop.replace(**{k: getattr(paper, k) for k in HALFCHEETAH_LAPTOP}) == paper


def test_the_laptop_preset_keeps_halfcheetah_datasets_apart(tmp_path):
    """halfcheetah-2x3's laptop datasets come from a shorter behaviour run: they live under <root>/laptop,
    while maze2d's laptop preset trains on the paper datasets under the root itself."""
    from omarbench.collect.mujoco import LAPTOP_STEPS, mujoco_preset_config
    from omarbench.grid.sweep import SweepSpec, run_sweep
    from omarbench.paths import preset_root
    from omarbench.tasks.spec import parse_task_id

    assert preset_root(tmp_path, "laptop", "halfcheetah-2x3") == tmp_path / "laptop"
    assert preset_root(tmp_path, "laptop", "maze2d-umaze") == tmp_path
    assert preset_root(tmp_path, "laptop") == tmp_path
    task = parse_task_id("halfcheetah-2x3")
    paper, laptop = mujoco_preset_config(task, "paper"), mujoco_preset_config(task, "laptop")
    assert laptop.run.total_steps == LAPTOP_STEPS < paper.run.total_steps
    # the same run up to its length (no learning-rate schedule depends on the budget)
    assert paper.run.matd3.lr_final_fraction == 1.0
    assert replace(laptop, run=replace(laptop.run, total_steps=paper.run.total_steps)) == paper
    with pytest.raises(UsageError, match="different roots"):
        run_sweep(SweepSpec(algos=("OMAR",), tasks=("halfcheetah-2x3", "maze2d-umaze"),
                            levels=("expert", "waypoint"), seeds=(0,), preset="laptop", root=str(tmp_path)),
                  collect=False)
    assert not any(tmp_path.iterdir())


def test_variant_choices_are_checked():
    with pytest.raises(UsageError, match="cql_sampler 'policy'.*uniform, uniform\\+policy"):
        CQLConfig().replace(cql_sampler="policy")
    with pytest.raises(UsageError, match="omar_search 'grid'.*softmax, cem"):
        OMARConfig().replace(omar_search="grid")
    with pytest.raises(UsageError, match="omar_elites"):
        OMARConfig().replace(omar_search="cem", omar_samples=4, omar_elites=5)
    with pytest.raises(UsageError, match="cql_policy_noise"):
        CQLConfig().replace(cql_policy_noise=0.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("algo", ["MA-CQL", "OMAR"])
def test_variants_run_on_cuda(algo):
    ds = contextual_dataset(512, n_agents=2)
    L = _learners(algo, ds, seeds=(0, 1), device="cuda", batch_size=32)
    for _ in range(3):
        losses = L.update()
    assert losses.device.type == "cuda" and bool(torch.isfinite(losses).all())
    g = L.groups[0][0]
    assert g.actor.params.p["w1"].device.type == "cuda"
