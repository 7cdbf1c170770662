"""The offline zoo: batching is exact, each algorithm does what its paper says, each one learns."""

import math

import numpy as np
import pytest
import torch
from toy_offline import ToyAgent, ToyDataset, contextual_dataset, toy_scores

from omarbench.errors import UsageError
from omarbench.offline.algos import ALGO_NAMES, canonical_name, get_algorithm
from omarbench.offline.algos.core import Learners
from omarbench.offline.algos.icq import batch_softmax
from omarbench.offline.algos.omar import OMARConfig, rectified_actions
from omarbench.offline.nn import BatchedActor, BatchedTwinCritic, FlatAdam, FlatParams
from omarbench.offline.sampled import sampled_logsumexp

ALIASES = {"MA-ICQ": "icq", "MA-TD3+BC": "td3bc", "MA-CQL": "cql", "OMAR": "omar", "BC": "bc"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # bit-level comparisons need one thread


def _all_state(group, members):
    """Every tensor that defines a member: weights, targets, optimiser moments, BN running stats."""
    out = []
    nets = [group.actor, group.actor_t] + ([group.critic, group.critic_t] if group.algo.uses_critic else [])
    for net in nets:
        for p in net.params.p.values():
            out.append(p.detach()[members])
        if net.stats is not None:
            out += [net.stats.mean[members], net.stats.var[members]]
    return out


@pytest.mark.parametrize("n_agents", [1, 2])
@pytest.mark.parametrize("algo", ALGO_NAMES)
def test_member_of_a_batched_run_equals_a_lone_run(algo, n_agents):
    ds = contextual_dataset(1024, n_agents=n_agents)
    cls = get_algorithm(algo)
    cfg = cls.config_cls(batch_size=32)
    batched = Learners(cls(cfg), [0, 1, 2], ds)
    lone = Learners(cls(cfg), [2], ds)
    # exact under MKL; oneDNN may round a one-member product differently (tests/test_fast_paths.py
    # checks that case within a float tolerance)
    batched.matmul_kernel = lone.matmul_kernel = "mkl"
    for _ in range(8):
        batched.update()
        lone.update()
    gb, gl = batched.groups[0][0], lone.groups[0][0]
    seed2 = slice(2 * n_agents, 3 * n_agents)  # members are seed-major
    for b, ll in zip(_all_state(gb, seed2), _all_state(gl, slice(0, n_agents))):
        # equal to the bit on this CPU; the tolerance only allows for other BLAS builds (Adam turns
        # rounding-level differences of near-zero gradients into lr-sized steps, so "close" means equal)
        torch.testing.assert_close(b, ll, rtol=1e-6, atol=1e-7)
    # and the seeds really differ from each other
    assert not torch.allclose(gb.actor.params.p["w1"][0], gb.actor.params.p["w1"][2])


def test_agents_with_different_observation_sizes_train_in_separate_groups():
    ds = contextual_dataset(512, obs_dims=[6, 9, 6])
    cls = get_algorithm("td3bc")
    cfg = cls.config_cls(batch_size=16)
    L = Learners(cls(cfg), [0, 1], ds)
    assert sorted((g.obs_dim, tuple(g.agents)) for g, _ in L.groups) == [(6, (0, 2)), (9, (1,))]
    losses = L.update()
    assert losses.shape == (2, 3, 2) and torch.isfinite(losses).all()
    obs = [torch.randn(2, 5, d) for d in (6, 9, 6)]
    assert L.act(obs).shape == (2, 5, 3, 2)
    lone = Learners(cls(cfg), [1], ds)
    lone.update()
    odd = [g for g, _ in L.groups if g.obs_dim == 9][0]
    odd_lone = [g for g, _ in lone.groups if g.obs_dim == 9][0]
    torch.testing.assert_close(odd.actor.params.p["w1"].detach()[1], odd_lone.actor.params.p["w1"].detach()[0])
    torch.testing.assert_close(L.act(obs)[1], lone.act([o[1:] for o in obs])[0])


def test_agents_of_one_seed_get_distinct_streams():
    ds = contextual_dataset(1024, n_agents=2)
    L = Learners(get_algorithm("bc")(get_algorithm("bc").config_cls(batch_size=16)), [0], ds)
    g = L.groups[0][0]
    assert not torch.equal(g.actor.params.p["w1"][0], g.actor.params.p["w1"][1])
    g.sample()
    assert not torch.equal(g._idx[0], g._idx[1])


def _authors_actor(obs_dim, act_dim, h=64):
    bn = torch.nn.BatchNorm1d(obs_dim)
    lins = [torch.nn.Linear(obs_dim, h), torch.nn.Linear(h, h), torch.nn.Linear(h, act_dim)]
    return bn, lins


def test_actor_matches_the_authors_network_in_train_and_eval_mode():
    M, do, da = 3, 7, 2
    net = BatchedActor(M, do, da)
    net.init_([torch.Generator().manual_seed(i) for i in range(M)])
    p = net.params.p
    m = 1
    bn, lins = _authors_actor(do, da)
    with torch.no_grad():
        bn.weight.copy_(p["bn_w"][m]), bn.bias.copy_(p["bn_b"][m])
        for lin, w, b in zip(lins, ("w1", "w2", "w3"), ("b1", "b2", "b3")):
            lin.weight.copy_(p[w][m]), lin.bias.copy_(p[b][m, 0])

    def ref(x):
        h = torch.relu(lins[0](bn(x)))
        return torch.tanh(lins[2](torch.relu(lins[1](h))))

    x = torch.randn(M, 50, do) * 3 + 1
    for _ in range(3):  # train mode: batch statistics, running statistics updated alike
        torch.testing.assert_close(net(x, train=True)[m], ref(x[m]), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(net.stats.mean[m], bn.running_mean)
    torch.testing.assert_close(net.stats.var[m], bn.running_var)
    bn.eval()
    y = torch.randn(M, 5, do)
    torch.testing.assert_close(net(y, train=False)[m], ref(y[m]), rtol=1e-5, atol=1e-6)
    # init: last layer weight small, BN identity
    assert p["w3"].abs().max() <= 3e-3 and torch.all(p["bn_w"] == 1) and torch.all(p["bn_b"] == 0)


def test_twin_critic_sampled_pass_equals_repeat_and_concatenate():
    """K actions per state without repeats == the authors' repeat-K-times-and-cat pass, BN in train mode."""
    M, do, da, B, K = 2, 5, 2, 16, 10
    net = BatchedTwinCritic(M, do, da)
    net.init_([torch.Generator().manual_seed(i) for i in range(M)])
    p = net.params.p
    obs, act = torch.randn(M, B, do), torch.rand(M, B, K, da) * 2 - 1
    q = net(obs, act, heads=2)  # [M, 2, B, K]
    for m in range(M):
        x = torch.cat([obs[m].repeat_interleave(K, 0), act[m].reshape(B * K, da)], 1)
        bn = torch.nn.BatchNorm1d(do + da)
        with torch.no_grad():
            bn.weight.copy_(p["bn_w"][m]), bn.bias.copy_(p["bn_b"][m])
        xn = bn(x)
        for head in range(2):
            h = torch.relu(xn @ p["w1"][m, head].T + p["b1"][m, head, 0])
            h = torch.relu(h @ p["w2"][m, head].T + p["b2"][m, head, 0])
            ref = (h @ p["w3"][m, head].T + p["b3"][m, head, 0]).view(B, K)
            torch.testing.assert_close(q[m, head], ref, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(net(obs, act, heads=1)[m, 0], q[m, 0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("B", [7, 200])  # one chunk; several chunks with a ragged last one
def test_fused_sampled_logsumexp_equals_autograd_over_the_full_pass(B):
    """CQL's chunked pass (its own backward) gives autograd's value, gradients and running statistics."""
    M, do, da, K = 3, 5, 2, 10
    nets = [BatchedTwinCritic(M, do, da) for _ in range(2)]
    for net in nets:
        net.init_([torch.Generator().manual_seed(i) for i in range(M)])
        with torch.no_grad():  # BN affine away from its init, so its gradient is exercised
            g = torch.Generator().manual_seed(9)
            net.params.data.add_(0.1 * torch.randn(net.params.data.shape, generator=g))
    # fixed inputs: the fused pass folds the BatchNorm affine into the first layer, so its pre-activations
    # round differently and a ReLU input within float32 rounding of 0 can flip, which moves a near-zero
    # gradient entry by more than rtol (tests/test_fast_paths.py bounds the error norm instead)
    g = torch.Generator().manual_seed(B)
    obs, act = torch.randn(M, B, do, generator=g) * 2 + 1, torch.rand(M, B, K, da, generator=g) * 2 - 1
    shift, weight = da * math.log(0.5), torch.tensor([1.0, -0.5, 2.0])
    ref = torch.logsumexp(nets[0](obs, act, heads=2) - shift, dim=3).mean(2).sum(1)
    (ref * weight).sum().backward()
    fused = sampled_logsumexp(nets[1], obs, act, shift)
    (fused * weight).sum().backward()
    torch.testing.assert_close(fused, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(nets[1].params.grad, nets[0].params.grad, rtol=1e-4, atol=1e-6)
    assert bool((nets[0].params.grad != 0).any())  # the comparison is not between two zero gradients
    torch.testing.assert_close(nets[1].stats.mean, nets[0].stats.mean)
    torch.testing.assert_close(nets[1].stats.var, nets[0].stats.var)


def test_gradient_clipping_is_per_member():
    M = 3
    fp = FlatParams({"a": (M, 4), "b": (M, 2, 3)}, M)
    scales = torch.tensor([0.01, 10.0, 1.0])
    with torch.no_grad():
        fp.grad.copy_(torch.randn_like(fp.grad))
        fp.p["a"].grad.mul_(scales[:, None])
        fp.p["b"].grad.mul_(scales[:, None, None])
    expected = []
    for m in range(M):
        ps = [torch.nn.Parameter(fp.p[k].detach()[m].clone()) for k in ("a", "b")]
        for q, k in zip(ps, ("a", "b")):
            q.grad = fp.p[k].grad[m].clone()
        torch.nn.utils.clip_grad_norm_(ps, 0.5)
        expected.append([q.grad for q in ps])
    norms = fp.clip_grad_norm_(0.5)
    assert norms[0] < 0.5 < norms[1]  # one member left alone, one clipped
    for m in range(M):
        torch.testing.assert_close(fp.p["a"].grad[m], expected[m][0])
        torch.testing.assert_close(fp.p["b"].grad[m], expected[m][1])
    after = fp.member_grad_norms()
    assert after[0] == pytest.approx(norms[0].item(), rel=1e-5) and after[1] == pytest.approx(0.5, rel=1e-4)


def test_flat_adam_equals_torch_adam_for_each_member():
    M = 2
    fp = FlatParams({"w": (M, 5)}, M)
    fp.data.normal_()
    opt = FlatAdam(fp, lr=0.01)
    refs = [torch.nn.Parameter(fp.p["w"].detach()[m].clone()) for m in range(M)]
    topts = [torch.optim.Adam([r], lr=0.01) for r in refs]
    for step in range(5):
        g = torch.randn(M, 5) * (step + 1)
        fp.zero_grad()
        fp.p["w"].grad.copy_(g)
        opt.step()
        for m in range(M):
            refs[m].grad = g[m].clone()
            topts[m].step()
    for m in range(M):
        torch.testing.assert_close(fp.p["w"].detach()[m], refs[m].detach())


def _learners(algo, ds, seeds=(0,), **cfg):
    cls = get_algorithm(algo)
    return Learners(cls(cls.config_cls(**cfg)), list(seeds), ds)


def test_omar_rectified_action_is_never_worse_than_the_policy_action():
    ds = contextual_dataset(1024)
    L = _learners("omar", ds, batch_size=128, lr=3e-3, tau=0.5)
    for _ in range(20):
        L.update()
    g = L.groups[0][0]
    b = g.sample()
    with torch.no_grad():
        pi = g.actor(b.obs, train=True, update_stats=False)
        q_pi = g.q1(b.obs, pi)
        a_hat, q_hat, sigma = rectified_actions(g, b.obs, pi, q_pi, g.cfg)
    assert torch.all(q_hat >= q_pi)
    kept = (a_hat == pi).all(-1)
    assert torch.all(q_hat[kept] == q_pi[kept]) and torch.all(q_hat[~kept] > q_pi[~kept])
    assert 0 < (~kept).float().mean() < 1  # both outcomes occur on this batch
    assert torch.all(a_hat.abs() <= 1)


def test_omar_search_width_never_collapses_to_zero():
    ds = contextual_dataset(256)
    g = _learners("omar", ds, batch_size=64).groups[0][0]
    b = g.sample()
    cfg = OMARConfig(omar_mu0=10.0, omar_sigma0=0.5)  # every sample clips to +1: the authors' σ = 0 case
    pi = torch.zeros(g.M, 64, 2)
    with torch.no_grad():
        a_hat, q_hat, sigma = rectified_actions(g, b.obs, pi, g.q1(b.obs, pi), cfg)
    assert torch.all(sigma >= cfg.omar_sigma_min) and torch.all(torch.isfinite(sigma))
    assert torch.all(torch.isfinite(q_hat)) and torch.all(torch.isfinite(a_hat))


def _narrow_dataset(n=2048, seed=0):
    """Rewards do not depend on the action; the behaviour is a deterministic function of the state.

    (A state-dependent behaviour matters: the critic's BatchNorm standardises the action columns of each
    pass with that pass's own statistics, as in the authors' code, so dataset actions are only told apart
    from uniform ones by how they relate to the state, not by where they sit in [−1, 1]².)
    """
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, 6)).astype(np.float32)
    act = (0.8 * np.tanh(obs[:, :2]) + 0.02 * rng.normal(size=(n, 2))).astype(np.float32)
    rew = (obs[:, 0] * 0.1).astype(np.float32)
    ag = ToyAgent(*(torch.as_tensor(x) for x in (obs, act, rew, obs)))
    return ToyDataset(None, "random", "toy-narrow", "0" * 64, [ag], torch.ones(n, dtype=torch.bool),
                      torch.zeros(n, dtype=torch.bool), (0,))


def _ood_gap(alpha):
    ds = _narrow_dataset()
    L = _learners("cql", ds, batch_size=64, lr=3e-3, alpha=alpha)
    for _ in range(100):
        L.update()
    g = L.groups[0][0]
    b = g.sample()
    with torch.no_grad():
        q_data = g.critic(b.obs, b.act.unsqueeze(2), heads=2).mean()
        q_ood = g.critic(b.obs, g.uniform(b.obs.shape[1], 10, 2), heads=2).mean()
    return (q_data - q_ood).item()


def test_cql_penalty_lowers_q_of_out_of_distribution_actions():
    without, with_penalty = _ood_gap(0.0), _ood_gap(5.0)
    assert with_penalty > 0.5 and with_penalty > without + 0.5


def test_icq_weights_are_a_distribution_over_the_batch():
    v = torch.randn(3, 100) * 50
    w = batch_softmax(v, beta=1.0)
    assert torch.all(w >= 0)
    torch.testing.assert_close(w.sum(1), torch.ones(3))
    mask = torch.rand(3, 100) > 0.3
    wm = batch_softmax(v, beta=1000.0, mask=mask)
    assert torch.all(wm[~mask] == 0) and torch.all(wm >= 0)
    torch.testing.assert_close(wm.sum(1), torch.ones(3))


def test_icq_critic_target_with_flat_weights_is_the_sarsa_target():
    ds = contextual_dataset(512)
    for ag in ds.agents:
        ag.next_observations = torch.roll(ag.observations, -1, 0)
    ds.terminals[:] = False
    ds.truncations[:] = False
    ds.truncations[-1] = True
    cls = get_algorithm("icq")
    L = Learners(cls(cls.config_cls(batch_size=64, beta_q=1e9)), [0], ds)
    g = L.groups[0][0]
    b = g.sample()
    with torch.no_grad():
        y = g.algo.critic_target(g, b)
        qn = g.critic_t(b.next_obs, b.next_act.unsqueeze(2), heads=2)[..., 0].amin(1)
    torch.testing.assert_close(y, b.rew + 0.95 * qn, rtol=1e-5, atol=1e-5)
    # the next action really is the dataset's next row
    rows = (g.pool[g._idx] if g.pool is not None else g._idx)[0]
    torch.testing.assert_close(b.next_act[0], ds.agents[0].actions[rows + 1])


@pytest.mark.parametrize("algo", ALGO_NAMES)
def test_each_algorithm_improves_on_a_contextual_toy(algo):
    ds = contextual_dataset(2048)
    L = _learners(algo, ds, batch_size=128, lr=3e-3, **({"tau": 0.5} if algo == "OMAR" else {}))
    before, after = toy_scores(L)
    behaviour = ds.agents[0].rewards.mean().item()
    assert after > before + 0.2, (before, after)
    assert after > behaviour, (after, behaviour)


def test_registry_names_and_aliases():
    for name, alias in ALIASES.items():
        assert canonical_name(alias) == name == canonical_name(name.lower()) == canonical_name(name)
    with pytest.raises(UsageError, match="unknown algorithm 'sac'; valid choices: MA-ICQ, MA-TD3"):
        canonical_name("sac")


def test_config_overrides_are_typed_and_checked():
    cfg = get_algorithm("omar").config_cls().replace(rounds="500", tau="0.7", alpha=5)
    assert cfg.rounds == 500 and math.isclose(cfg.tau, 0.7) and cfg.alpha == 5.0
    with pytest.raises(UsageError, match="unknown hyperparameter 'lambda'"):
        cfg.replace(**{"lambda": 1})
    with pytest.raises(UsageError, match="rounds='many' is not a valid int"):
        cfg.replace(rounds="many")
    with pytest.raises(UsageError, match="batch_size must be a positive integer in 1..65,536"):
        cfg.replace(batch_size=0)


def _copy_into_baseline(g, ag, m=0):
    """Load member m of a batched group into the bench's per-agent modules (the authors' layout)."""
    p = g.actor.params.p
    with torch.no_grad():
        ag.pi.bn.weight.copy_(p["bn_w"][m]), ag.pi.bn.bias.copy_(p["bn_b"][m])
        for lin, k in zip((ag.pi.f1, ag.pi.f2, ag.pi.f3), "123"):
            lin.weight.copy_(p[f"w{k}"][m]), lin.bias.copy_(p[f"b{k}"][m, 0])
        ag.pi_t.load_state_dict(ag.pi.state_dict())
        if g.algo.uses_critic:
            c = g.critic.params.p
            ag.q.bn.weight.copy_(c["bn_w"][m]), ag.q.bn.bias.copy_(c["bn_b"][m])
            for head, seq in enumerate((ag.q.q1, ag.q.q2)):
                for layer, k in zip((seq[0], seq[2], seq[4]), "123"):
                    layer.weight.copy_(c[f"w{k}"][m, head]), layer.bias.copy_(c[f"b{k}"][m, head, 0])
            ag.q_t.load_state_dict(ag.q.state_dict())


@pytest.mark.parametrize("algo", ["MA-TD3+BC", "MA-ICQ", "BC", "MA-CQL", "OMAR"])
def test_one_update_matches_the_authors_per_agent_formulation(algo):
    """Same weights, same minibatch: the batched update's clipped gradients, new weights and actor
    BatchNorm statistics equal those of plain nn.Modules updated as the authors' MATD3.update does."""
    from omarbench.perf import zoo

    ds = contextual_dataset(512, obs_dims=[zoo.OBS])
    for ag in ds.agents:  # episode-ordered rows, so MA-ICQ has next actions
        ag.next_observations = torch.roll(ag.observations, -1, 0)
    ds.terminals[:] = False
    ds.truncations[:] = False
    ds.truncations[-1] = True
    cls = get_algorithm(algo)
    B = 64
    cfg = cls.config_cls(batch_size=B, **({"tau": 0.5} if algo == "OMAR" else {}))
    g = Learners(cls(cfg), [0], ds).groups[0][0]
    base = zoo._Agent(cfg, g.algo.uses_critic)
    _copy_into_baseline(g, base)
    batch = g.sample()
    g.sample = lambda: batch  # the update below uses exactly this minibatch
    # the sampled actions the baseline will draw from the global generator, in its order: CQL's uniform
    # actions (row b·K + k), then OMAR's three Gaussian draws [S, B, d]
    torch.manual_seed(123)
    K, S = getattr(cfg, "cql_actions", 10), getattr(cfg, "omar_samples", 10)
    uniform = torch.empty(B * K, 2).uniform_(-1, 1).view(1, B, K, 2)
    normals = iter([torch.empty(S, B, 2).normal_().permute(1, 0, 2).unsqueeze(0) for _ in range(3)])
    g.uniform = lambda *shape: uniform
    g.normal = lambda *shape: next(normals)
    g.update()
    torch.manual_seed(123)
    b = {k: getattr(batch, k)[0] for k in ("obs", "act", "rew", "next_obs", "done")}
    a2 = batch.next_act[0] if batch.next_act is not None else None
    critic_grads = {}
    if g.algo.uses_critic:  # the critic's gradients as its optimiser saw them (the authors' actor step
        step = base.q_opt.step  # later adds its own backward through Q to .grad)

        def record_then_step():
            critic_grads.update({id(q): q.grad.clone() for q in base.q.parameters()})
            step()

        base.q_opt.step = record_then_step
    zoo._baseline_update(algo, cfg, base, b["obs"], b["act"], b["rew"].view(-1, 1), b["next_obs"],
                         b["done"].view(-1, 1), a2)
    p = g.actor.params.p
    pairs = [(p["bn_w"], (0,), base.pi.bn.weight), (p["w1"], (0,), base.pi.f1.weight),
             (p["w2"], (0,), base.pi.f2.weight), (p["w3"], (0,), base.pi.f3.weight),
             (p["b3"], (0,), base.pi.f3.bias)]
    if g.algo.uses_critic:
        c = g.critic.params.p
        pairs += [(c["bn_b"], (0,), base.q.bn.bias), (c["w1"], (0, 0), base.q.q1[0].weight),
                  (c["w2"], (0, 1), base.q.q2[2].weight), (c["w3"], (0, 0), base.q.q1[4].weight),
                  (c["b2"], (0, 1), base.q.q2[2].bias)]
    for ours, at, theirs in pairs:
        their_grad = critic_grads.get(id(theirs), theirs.grad)
        torch.testing.assert_close(ours.grad[at].reshape(theirs.shape), their_grad, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(ours.detach()[at].reshape(theirs.shape), theirs.detach(), rtol=1e-4,
                                   atol=1e-5)
    torch.testing.assert_close(g.actor.stats.mean[0], base.pi.bn.running_mean)
    torch.testing.assert_close(g.actor.stats.var[0], base.pi.bn.running_var)
