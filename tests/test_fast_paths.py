"""The fast paths of the offline zoo: the folded first layer, bfloat16 search passes, the matmul kernel.

Tolerances. The folded passes compute the same function as the plain ones in another order, so they
are checked two ways: in float64 they must agree with the plain pass to float64 rounding (the algebra
is exact), and in float32 their error against the float64 result must be no larger than a small
multiple of the plain float32 pass's own error (the fold loses no accuracy). bfloat16 passes are
checked against the noise the algorithm already has: redrawing the sampled actions changes the
gradient far more than computing it in bfloat16 does.
"""

import math
from contextlib import contextmanager

import pytest
import torch
from toy_offline import contextual_dataset

from omarbench import kernels
from omarbench.errors import UsageError
from omarbench.offline.algos import get_algorithm
from omarbench.offline.algos.core import Learners
from omarbench.offline.nn import BatchedTwinCritic
from omarbench.offline.sampled import Q1Search, sampled_logsumexp

pytestmark = pytest.mark.usefixtures("one_torch_thread")

M, DO, DA, K = 3, 5, 2, 10


@contextmanager
def default_dtype(dtype):
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def _critic(dtype, data=None):
    with default_dtype(dtype):
        net = BatchedTwinCritic(M, DO, DA)
    if data is None:
        net.init_([torch.Generator().manual_seed(i) for i in range(M)])
        with torch.no_grad():  # BN affine away from its init, so its gradient is exercised
            g = torch.Generator().manual_seed(9)
            net.params.data.add_(0.1 * torch.randn(net.params.data.shape, generator=g, dtype=dtype))
    else:
        with torch.no_grad():
            net.params.data.copy_(data)
    return net


def _inputs(B, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(M, B, DO, generator=g, dtype=dtype) * 2 + 1
    act = torch.rand(M, B, K, DA, generator=g, dtype=dtype) * 2 - 1
    return obs, act


SHIFT = DA * math.log(0.5)
WEIGHT = torch.tensor([1.0, -0.5, 2.0])


def _plain_lse(net, obs, act):
    """The sampled term through the plain critic pass and autograd: ``(value, grad, stats)``."""
    net.params.zero_grad()
    v = torch.logsumexp(net(obs, act, heads=2) - SHIFT, dim=3).mean(2).sum(1)
    (v * WEIGHT.to(v.dtype)).sum().backward()
    return v.detach(), net.params.grad.clone(), (net.stats.mean.clone(), net.stats.var.clone())


def _folded_lse(net, obs, act, precision="fp32"):
    net.params.zero_grad()
    v = sampled_logsumexp(net, obs, act, SHIFT, precision=precision)
    (v * WEIGHT.to(v.dtype)).sum().backward()
    return v.detach(), net.params.grad.clone(), (net.stats.mean.clone(), net.stats.var.clone())


def _rel(x, ref):
    return float((x.double() - ref.double()).norm() / ref.double().norm())


@pytest.mark.parametrize("B", [7, 200])  # one chunk; several chunks with a ragged last one
def test_folded_sampled_pass_is_exact_algebra_and_loses_no_accuracy(B):
    ref_net = _critic(torch.float64)
    obs, act = _inputs(B)
    ref = _plain_lse(ref_net, obs, act)
    # float64: the fold is the same function (values, every gradient incl. BatchNorm's, running stats)
    fold64 = _folded_lse(_critic(torch.float64, ref_net.params.data), obs, act)
    torch.testing.assert_close(fold64[0], ref[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fold64[1], ref[1], rtol=1e-10, atol=1e-12)
    for a, b in zip(fold64[2], ref[2]):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    # float32: no less accurate than the plain float32 pass
    w32 = ref_net.params.data.float()
    o32, a32 = obs.float(), act.float()
    plain32 = _plain_lse(_critic(torch.float32, w32), o32, a32)
    fold32 = _folded_lse(_critic(torch.float32, w32), o32, a32)
    for k in (0, 1):
        e_plain, e_fold = _rel(plain32[k], ref[k]), _rel(fold32[k], ref[k])
        assert e_fold <= 4 * e_plain + 1e-7, (k, e_fold, e_plain)
    gw = fold64[1]
    assert bool((gw != 0).all() or (gw != 0).sum() > 0.9 * gw.numel())  # every parameter gets a gradient
    for a, b in zip(fold32[2], plain32[2]):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_folded_search_equals_the_plain_critic_pass_over_three_iterations():
    """OMAR's search object: the observation part computed once, then one call per iteration."""
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        base = _critic(torch.float64)
        plain, fold = _critic(dtype, base.params.data.to(dtype)), _critic(dtype, base.params.data.to(dtype))
        obs, _ = _inputs(300, dtype=dtype)
        search = Q1Search(fold, obs)
        for it in range(3):
            _, act = _inputs(300, seed=it + 1, dtype=dtype)
            act = act * (0.5 + it)  # different action statistics in every iteration
            with torch.no_grad():
                ref = plain(obs, act, heads=1, detached=True)[:, 0]
            torch.testing.assert_close(search(act), ref, rtol=tol, atol=tol)
        torch.testing.assert_close(fold.stats.mean, plain.stats.mean, rtol=tol, atol=tol)
        torch.testing.assert_close(fold.stats.var, plain.stats.var, rtol=tol, atol=tol)


def test_bf16_sampled_pass_error_is_below_the_noise_of_redrawing_the_actions():
    base = _critic(torch.float64)
    w32 = base.params.data.float()
    obs, act = _inputs(512)
    _, act2 = _inputs(512, seed=5)
    obs, act, act2 = obs.float(), act.float(), act2.float()
    v32, g32, _ = _folded_lse(_critic(torch.float32, w32), obs, act)
    v16, g16, _ = _folded_lse(_critic(torch.float32, w32), obs, act, precision="bf16")
    _, g_redraw, _ = _folded_lse(_critic(torch.float32, w32), obs, act2)
    assert v16.dtype == torch.float32 and g16.dtype == torch.float32
    torch.testing.assert_close(v16, v32, rtol=2e-2, atol=2e-2)  # bfloat16 keeps 8 significant bits
    e_bf16, e_redraw = _rel(g16, g32), _rel(g_redraw, g32)
    assert e_bf16 < 0.5 * e_redraw, (e_bf16, e_redraw)
    assert e_bf16 > 0  # the bf16 path really ran in another precision


def test_bf16_search_keeps_the_values_to_bfloat16_accuracy():
    net = _critic(torch.float32, _critic(torch.float64).params.data.float())
    obs, act = _inputs(256, dtype=torch.float32)
    q32 = Q1Search(net, obs)(act)
    q16 = Q1Search(net, obs, precision="bf16")(act)
    assert q16.dtype == torch.float32
    scale = q32.abs().max()
    assert 0 < float((q16 - q32).abs().max() / scale) < 3e-2


@pytest.mark.parametrize("algo", ["MA-CQL", "OMAR"])
def test_bf16_rounds_train_and_stay_close_to_fp32(algo):
    ds = contextual_dataset(1024, n_agents=2)
    cls = get_algorithm(algo)
    runs = {p: Learners(cls(cls.config_cls(batch_size=64, sample_precision=p)), [0, 1], ds)
            for p in ("fp32", "bf16")}
    for _ in range(5):
        losses = {p: L.update() for p, L in runs.items()}
    assert all(bool(torch.isfinite(v).all()) for v in losses.values())
    c32, c16 = (runs[p].groups[0][0].critic for p in ("fp32", "bf16"))
    assert c16.stats.mean.dtype == torch.float32
    assert _rel(c16.params.data, c32.params.data) < 0.05  # five Adam steps of lr 0.01 apart at most


def test_sample_precision_is_checked():
    cls = get_algorithm("OMAR")
    with pytest.raises(UsageError, match="sample_precision.*fp32.*bf16"):
        cls.config_cls().replace(sample_precision="fp16")
    assert cls.config_cls().sample_precision == "fp32"  # off by default


# ----------------------------------------------------------------------------- the matmul kernel


def test_kernel_choice_is_checked_and_restored(monkeypatch):
    with pytest.raises(UsageError, match="OMARBENCH_MATMUL.*auto.*mkl.*onednn"):
        kernels.resolve_kernel("blas")
    assert kernels.resolve_kernel("mkl") == "mkl"
    assert kernels.resolve_kernel() in ("mkl", "onednn")
    knob = torch.backends.mkldnn.matmul
    before = knob.fp32_precision
    with kernels.matmul_kernel("onednn"):
        assert knob.fp32_precision == "bf16"
        with kernels.matmul_kernel("mkl"):
            assert knob.fp32_precision == "none"
        assert knob.fp32_precision == "bf16"
    assert knob.fp32_precision == before


def test_auto_never_picks_onednn_where_it_would_compute_in_bfloat16(monkeypatch):
    kernels.resolve_kernel.cache_clear()
    try:
        amx = frozenset(kernels._AVX512 + ("amx_bf16",))
        monkeypatch.setattr(kernels, "cpu_info", lambda: ("AuthenticAMD", amx))
        assert kernels.resolve_kernel("auto") == "mkl"
        with pytest.raises(UsageError, match="onednn"):
            kernels.resolve_kernel("onednn")
        monkeypatch.setattr(kernels, "cpu_info", lambda: ("GenuineIntel", frozenset(kernels._AVX512)))
        assert kernels.resolve_kernel("auto") == "mkl"  # Intel's MKL runs its AVX-512 code already
    finally:
        kernels.resolve_kernel.cache_clear()


def test_onednn_probe_sees_bfloat16_products():
    """The probe's threshold separates float32 from bfloat16 arithmetic (an AMX CPU's oneDNN result)."""
    g = torch.Generator().manual_seed(0)
    a, w = torch.randn(6, 512, 20, generator=g), torch.randn(6, 20, 64, generator=g)
    ref = torch.bmm(a.double(), w.double())
    err32 = float((torch.bmm(a, w).double() - ref).abs().max() / ref.abs().max())
    err16 = float((torch.bmm(a.bfloat16(), w.bfloat16()).double() - ref).abs().max() / ref.abs().max())
    assert err32 < kernels.PROBE_RTOL < err16


@pytest.mark.skipif(not kernels.onednn_exact(), reason="oneDNN does not compute float32 in float32 here")
@pytest.mark.parametrize("algo", ["MA-CQL", "OMAR", "MA-TD3+BC"])
@pytest.mark.parametrize("n_agents", [1, 2])
def test_under_onednn_a_batched_member_equals_a_lone_run_within_float_tolerance(algo, n_agents):
    """oneDNN may round a one-member product differently from a batched one, so under it the invariant
    is closeness: after 8 rounds within 1e-4 absolute / 1e-3 relative (measured worst here: 4e-6
    absolute), where a member mixed up with another seed or stream differs by Adam steps of 1e-2."""
    ds = contextual_dataset(1024, n_agents=n_agents)
    cls = get_algorithm(algo)
    cfg = cls.config_cls(batch_size=32)
    batched, lone = Learners(cls(cfg), [0, 1, 2], ds), Learners(cls(cfg), [2], ds)
    other = Learners(cls(cfg), [1], ds)
    for L in (batched, lone, other):
        L.matmul_kernel = "onednn"
    for _ in range(8):
        for L in (batched, lone, other):
            L.update()
    gb, gl, go = batched.groups[0][0], lone.groups[0][0], other.groups[0][0]
    seed2 = slice(2 * n_agents, 3 * n_agents)
    for b, ll in zip(_state(gb, seed2), _state(gl, slice(None))):
        torch.testing.assert_close(b, ll, rtol=1e-3, atol=1e-4)
    wrong = max(float((b - o).abs().max()) for b, o in zip(_state(gb, seed2), _state(go, slice(None))))
    assert wrong > 1e-2  # the tolerance does tell a member from another seed


def _state(group, members):
    """Weights, targets, Adam moments and BatchNorm running statistics of the given members."""
    out = []
    for net in (group.actor, group.actor_t, group.critic, group.critic_t):
        out += [p.detach()[members] for p in net.params.p.values()]
        if net.stats is not None:
            out += [net.stats.mean[members], net.stats.var[members]]
    for opt in (group.actor_opt, group.critic_opt):
        sel = torch.isin(opt.params.member_of, torch.arange(group.M)[members])
        out += [opt.m[sel], opt.v[sel]]
    return out
