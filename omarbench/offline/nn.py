"""Batched networks: one set of tensors holds every (seed, agent) member of a training run.

The offline learners (docs/protocol.md §5) are small: input BatchNorm, Linear-ReLU-Linear-ReLU-Linear, hidden
64. Training five seeds of three agents as fifteen separate modules spends most of its time in Python and
in tiny kernels; here every weight has a leading *member* axis and a layer is one batched matmul over all
members (``baddbmm``). On this project's CPU that layer was measured against
``torch.func.stack_module_state`` + ``vmap`` (``python -m omarbench.perf zoo``, figures in the README):
it was ahead in every run, by 5–10%, and needs no functional-call machinery, so it is what we use.

Three pieces:

* :class:`FlatParams` keeps all parameters of one network in a single flat buffer (and the gradients in
  another). Each layer's weight is a leaf ``Parameter`` whose storage is a view of that buffer, so autograd
  accumulates straight into the flat gradient; Adam, per-member gradient clipping and soft target updates
  are then a handful of elementwise ops on one tensor, whatever the number of members.
* :class:`BatchedActor` and :class:`BatchedTwinCritic`: the authors' networks (maddpg-pytorch's
  ``MLPNetwork`` / OMAR's ``DoubleMLPNetwork``) with per-member BatchNorm statistics, train/eval modes,
  the authors' initialisation (PyTorch's default ``Linear`` init; the actor's last weight in U(±3e-3)),
  and twin critic heads that share the input BatchNorm.
* Per-member random streams (:func:`member_generators`): member ``(seed, agent)`` draws from a
  ``torch.Generator`` seeded from ``(seed, agent, purpose)`` only, so running seeds {0, 1, 2} together
  gives member ``k`` exactly what a lone run of seed ``k`` gets.

Heterogeneous observation sizes are handled one level up (``omarbench.offline.algos.core`` builds one batched
network per distinct (obs_dim, act_dim) group of learners), so no padding ever touches user data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

BN_EPS = 1e-5
BN_MOMENTUM = 0.1
# Critic passes over many rows (the sampled actions of CQL and OMAR) are memory-bound when done in one
# go: a [members, 10240, 64] activation is tens of MB and every elementwise pass streams it from memory.
# A pass that needs no gradients (OMAR's search) goes through CHUNK_ROWS rows at a time, each chunk in
# cache: ~1.5x faster here. (With gradients, recomputing chunks in the backward pass was tried and
# measured no faster: 209 vs 211 ms for CQL's sampled pass of 15 members.)
CHUNK_ROWS = 512

# purposes of the per-member random streams (part of the seed derivation: never renumber)
INIT, MINIBATCH, NOISE = 0, 1, 2


def member_seed(seed: int, agent: int, purpose: int) -> int:
    """A 63-bit seed for member ``(seed, agent)``'s stream ``purpose`` (independent of everything else)."""
    state = np.random.SeedSequence([int(seed), int(agent), int(purpose), 0x0A11CE]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def member_generators(members: Sequence[tuple[int, int]], purpose: int, device: str | torch.device = "cpu"):
    """One ``torch.Generator`` per ``(seed, agent)`` member, seeded by :func:`member_seed`."""
    gens = []
    for seed, agent in members:
        g = torch.Generator(device=device)
        g.manual_seed(member_seed(seed, agent, purpose))
        gens.append(g)
    return gens


_ALLOCATOR_TUNED = False


def keep_freed_memory() -> None:
    """Let glibc reuse freed memory instead of returning it to the system (process-wide, idempotent).

    The batched passes allocate activations of tens of MB (e.g. MA-CQL's 10 sampled actions per state for
    15 members). glibc serves blocks above its mmap threshold (at most 32 MB) with fresh ``mmap`` calls and
    unmaps them on free, so every such tensor is page-faulted in again, step after step: on this project's
    CPU that made an elementwise pass over such a tensor ~8x slower. Raising the mmap and trim thresholds
    keeps those pages in the heap for reuse. No effect (and no error) outside glibc.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return
    _ALLOCATOR_TUNED = True
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 1 << 30)
        libc.mallopt(m_trim_threshold, 1 << 31)
    except (OSError, AttributeError):
        pass


# --------------------------------------------------------------------------------------------------
# flat parameter storage
# --------------------------------------------------------------------------------------------------


class FlatParams:
    """Every parameter of one batched network, stored in one flat buffer with a leading member axis.

    ``shapes`` maps a name to a per-network shape whose first axis is the member axis ``M``. The
    parameters (``self.p[name]``) are leaf tensors viewing ``self.data``; their ``.grad`` views
    ``self.grad``. ``self.c[name]`` are detached views of the same storage (for passes that must not
    produce gradients, e.g. the critic inside the actor's loss).
    """

    def __init__(self, shapes: dict[str, tuple[int, ...]], n_members: int, device: str | torch.device = "cpu"):
        self.n_members = n_members
        self.shapes = dict(shapes)
        sizes = {k: math.prod(s) for k, s in shapes.items()}
        total = sum(sizes.values())
        self.data = torch.zeros(total, device=device)
        self.grad = torch.zeros(total, device=device)
        self.p: dict[str, torch.Tensor] = {}
        self.c: dict[str, torch.Tensor] = {}
        member_of = []
        off = 0
        for name, shape in shapes.items():
            if shape[0] != n_members:
                raise ValueError(f"parameter {name} must lead with the member axis {n_members}, got {shape}")
            n = sizes[name]
            p = torch.nn.Parameter(torch.empty(0, device=device))
            p.data = self.data[off : off + n].view(shape)
            p.grad = self.grad[off : off + n].view(shape)
            self.p[name] = p
            self.c[name] = p.detach()
            member_of.append(torch.arange(n_members, device=device).repeat_interleave(n // n_members))
            off += n
        self.member_of = torch.cat(member_of)

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.p[name]

    def zero_grad(self) -> None:
        self.grad.zero_()

    def member_grad_norms(self) -> torch.Tensor:
        """L2 norm of each member's gradient over that member's parameters only: ``[M]``."""
        sq = torch.zeros(self.n_members, device=self.grad.device)
        sq.index_add_(0, self.member_of, self.grad * self.grad)
        return sq.sqrt_()

    def clip_grad_norm_(self, max_norm: float) -> torch.Tensor:
        """Per-member ``torch.nn.utils.clip_grad_norm_``: each member's gradient is scaled by
        ``min(1, max_norm / (norm + 1e-6))`` of its own norm. Returns the norms before clipping."""
        norms = self.member_grad_norms()
        coef = (max_norm / (norms + 1e-6)).clamp_(max=1.0)
        self.grad.mul_(coef.index_select(0, self.member_of))
        return norms

    def copy_(self, other: FlatParams) -> None:
        self.data.copy_(other.data)

    def soft_update_(self, source: FlatParams, tau: float) -> None:
        """``self ← (1 − τ) self + τ source`` on every parameter (BatchNorm affine included, as the
        authors' ``soft_update`` walks ``parameters()``; running statistics are buffers and are not moved)."""
        self.data.lerp_(source.data, tau)


class FlatAdam:
    """Adam (Kingma & Ba; PyTorch's defaults and update formula) on a :class:`FlatParams` buffer.

    Adam is elementwise, so on batched tensors it is per-member exact: member k's moments only ever see
    member k's gradients. All members share the step count (they always step together)."""

    def __init__(self, params: FlatParams, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params = params
        self.lr, self.betas, self.eps = lr, betas, eps
        self.m = torch.zeros_like(params.data)
        self.v = torch.zeros_like(params.data)
        self.t = 0

    def step(self) -> None:
        b1, b2 = self.betas
        self.t += 1
        g = self.params.grad
        self.m.lerp_(g, 1 - b1)
        self.v.mul_(b2).addcmul_(g, g, value=1 - b2)
        bc1 = 1 - b1**self.t
        bc2_sqrt = math.sqrt(1 - b2**self.t)
        denom = (self.v.sqrt() / bc2_sqrt).add_(self.eps)
        self.params.data.addcdiv_(self.m, denom, value=-self.lr / bc1)


# --------------------------------------------------------------------------------------------------
# batch normalisation with a member axis
# --------------------------------------------------------------------------------------------------


@dataclass
class RunningStats:
    """Per-member BatchNorm running statistics (``[M, d]``), momentum 0.1, unbiased variance."""

    mean: torch.Tensor
    var: torch.Tensor

    @classmethod
    def fresh(cls, n_members: int, dim: int, device) -> RunningStats:
        return cls(torch.zeros(n_members, dim, device=device), torch.ones(n_members, dim, device=device))

    def update(self, sl: slice, mean: torch.Tensor, var_biased: torch.Tensor, n: int) -> None:
        with torch.no_grad():
            self.mean[:, sl].lerp_(mean.reshape(self.mean.shape[0], -1), BN_MOMENTUM)
            unbiased = var_biased.reshape(self.var.shape[0], -1) * (n / max(n - 1, 1))
            self.var[:, sl].lerp_(unbiased, BN_MOMENTUM)


def _bn_train(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, dims: tuple[int, ...]):
    """Normalise ``x`` ([M, ..., d]) with its own batch statistics over ``dims``; ``w``/``b`` are [M, d]."""
    # mean, then the mean square of the centred values (as var_mean computes it, but torch.var_mean
    # reduces over a middle axis ~15x slower than these three passes on this project's CPU)
    mean = x.mean(dim=dims, keepdim=True)
    xc = x - mean
    var = xc.square().mean(dim=dims, keepdim=True)
    shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (x.shape[-1],)
    scale = w.view(shape) * torch.rsqrt(var + BN_EPS)
    return torch.addcmul(b.view(shape), xc, scale), mean, var


def _bn_eval(x: torch.Tensor, w, b, stats: RunningStats, sl: slice):
    shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (x.shape[-1],)
    scale = w.view(shape) * torch.rsqrt(stats.var[:, sl].reshape(shape) + BN_EPS)
    return torch.addcmul(b.view(shape) - stats.mean[:, sl].reshape(shape) * scale, x, scale)


# --------------------------------------------------------------------------------------------------
# initialisation
# --------------------------------------------------------------------------------------------------


def _uniform_(t: torch.Tensor, bound: float, gens: Sequence[torch.Generator]) -> None:
    """Fill member k's slice ``t[k]`` from generator k (U(−bound, bound))."""
    for k, g in enumerate(gens):
        t[k].uniform_(-bound, bound, generator=g)


def default_linear_init_(w: torch.Tensor, b: torch.Tensor, fan_in: int, gens, weight_bound: float | None = None):
    """PyTorch's ``nn.Linear`` default: weight and bias in U(±1/sqrt(fan_in)) (kaiming-uniform with a=√5)."""
    bound = 1.0 / math.sqrt(fan_in)
    _uniform_(w, bound if weight_bound is None else weight_bound, gens)
    _uniform_(b, bound, gens)


# --------------------------------------------------------------------------------------------------
# networks
# --------------------------------------------------------------------------------------------------


class BatchedActor:
    """π(o) for M members: BatchNorm1d(obs) → Linear-ReLU-Linear-ReLU-Linear → tanh (authors' MLPNetwork).

    Shapes: ``obs [M, B, obs_dim] → actions [M, B, act_dim]``. Weights are stored ``[M, out, in]`` (as
    ``nn.Linear`` stores them) and used transposed: the backward's ``grad @ W`` then reads a contiguous
    matrix, which on this project's CPU made that product ~1.7x faster than through a transposed view.
    """

    def __init__(self, n_members: int, obs_dim: int, act_dim: int, hidden: int = 64, device="cpu",
                 track_running_stats: bool = True):
        self.n_members, self.obs_dim, self.act_dim, self.hidden = n_members, obs_dim, act_dim, hidden
        M, h = n_members, hidden
        self.params = FlatParams(
            {
                "bn_w": (M, obs_dim), "bn_b": (M, obs_dim),
                "w1": (M, h, obs_dim), "b1": (M, 1, h),
                "w2": (M, h, h), "b2": (M, 1, h),
                "w3": (M, act_dim, h), "b3": (M, 1, act_dim),
            },
            M, device,
        )
        self.stats = RunningStats.fresh(M, obs_dim, device) if track_running_stats else None

    def init_(self, gens: Sequence[torch.Generator]) -> None:
        """Authors' init: BN weight 1, bias 0; Linear default; last weight U(±3e-3), last bias default."""
        p = self.params.p
        with torch.no_grad():
            p["bn_w"].fill_(1.0)
            p["bn_b"].zero_()
            default_linear_init_(p["w1"], p["b1"], self.obs_dim, gens)
            default_linear_init_(p["w2"], p["b2"], self.hidden, gens)
            default_linear_init_(p["w3"], p["b3"], self.hidden, gens, weight_bound=3e-3)

    def forward(self, obs: torch.Tensor, train: bool = True, update_stats: bool = True,
                detached: bool = False) -> torch.Tensor:
        p = self.params.c if detached else self.params.p
        if train:
            x, mean, var = _bn_train(obs, p["bn_w"], p["bn_b"], dims=(1,))
            if update_stats and self.stats is not None:
                self.stats.update(slice(None), mean, var, obs.shape[1])
        else:
            if self.stats is None:
                raise RuntimeError("this actor keeps no running statistics (eval mode needs them)")
            x = _bn_eval(obs, p["bn_w"], p["bn_b"], self.stats, slice(None))
        h = torch.relu(torch.baddbmm(p["b1"], x, p["w1"].mT))
        h = torch.relu(torch.baddbmm(p["b2"], h, p["w2"].mT))
        return torch.tanh(torch.baddbmm(p["b3"], h, p["w3"].mT))

    __call__ = forward


class BatchedTwinCritic:
    """Q_1, Q_2(o, a) for M members with one shared input BatchNorm (authors' DoubleMLPNetwork).

    ``forward(obs [M, B, do], act [M, B, K, da])`` evaluates K actions per observation — the authors'
    "repeat the observation K times and concatenate" pass. The critic is always in train mode (the
    authors never switch it to eval), so every pass normalises with its own batch statistics, including
    the sampled-action passes; the statistics of the observation columns over the B·K repeated rows equal
    those over the B rows, so they are computed on the B rows. Returns ``[M, H, B, K]`` for the
    requested heads (``heads=2``: both, ``heads=1``: Q1 only).

    Weights are stored member-major with the head axis second (``w2 [M, H, out, in]``), so a two-head
    pass is one batched matmul over ``M·H`` matrices.
    """

    HEADS = 2

    def __init__(self, n_members: int, obs_dim: int, act_dim: int, hidden: int = 64, device="cpu",
                 track_running_stats: bool = True):
        self.n_members, self.obs_dim, self.act_dim, self.hidden = n_members, obs_dim, act_dim, hidden
        M, H, h, d = n_members, self.HEADS, hidden, obs_dim + act_dim
        self.params = FlatParams(
            {
                "bn_w": (M, d), "bn_b": (M, d),
                "w1": (M, H, h, d), "b1": (M, H, 1, h),
                "w2": (M, H, h, h), "b2": (M, H, 1, h),
                "w3": (M, H, 1, h), "b3": (M, H, 1, 1),
            },
            M, device,
        )
        self.stats = RunningStats.fresh(M, d, device) if track_running_stats else None

    def init_(self, gens: Sequence[torch.Generator]) -> None:
        """Authors' init: BN weight 1, bias 0; every Linear at PyTorch's default (head 1, then head 2)."""
        p = self.params.p
        d, h = self.obs_dim + self.act_dim, self.hidden
        with torch.no_grad():
            p["bn_w"].fill_(1.0)
            p["bn_b"].zero_()
            for head in range(self.HEADS):
                default_linear_init_(p["w1"][:, head], p["b1"][:, head], d, gens)
                default_linear_init_(p["w2"][:, head], p["b2"][:, head], h, gens)
                default_linear_init_(p["w3"][:, head], p["b3"][:, head], h, gens)

    def forward(self, obs: torch.Tensor, act: torch.Tensor, heads: int = 2, update_stats: bool = True,
                detached: bool = False) -> torch.Tensor:
        p = self.params.c if detached else self.params.p
        M, B, K = act.shape[0], act.shape[1], act.shape[2]
        do, d = self.obs_dim, self.obs_dim + self.act_dim
        w, b = p["bn_w"], p["bn_b"]
        xo, mo, vo = _bn_train(obs, w[:, :do], b[:, :do], dims=(1,))
        xa, ma, va = _bn_train(act, w[:, do:], b[:, do:], dims=(1, 2))
        if update_stats and self.stats is not None:
            self.stats.update(slice(0, do), mo, vo, B * K)
            self.stats.update(slice(do, None), ma, va, B * K)
        x = torch.cat([xo.unsqueeze(2).expand(M, B, K, do), xa], dim=3)  # the repeated rows, [M, B, K, d]
        H = heads
        if H == self.HEADS:  # both heads read the same normalised input: one bmm over M·H matrices
            x = x.view(M, 1, B * K, d).expand(M, H, B * K, d).reshape(M * H, B * K, d)
        else:
            x = x.view(M, B * K, d)
        w1, b1 = self._stack(p["w1"], H).mT, self._stack(p["b1"], H)
        w2, b2 = self._stack(p["w2"], H).mT, self._stack(p["b2"], H)
        # the output layer is padded to two columns: a single [R, 64] x [64, 1] product takes a
        # matrix-vector path whose rounding differs from the batched one, which would make a lone
        # one-member run differ from the same member in a batch
        w3 = torch.nn.functional.pad(self._stack(p["w3"], H), (0, 0, 0, 1)).mT
        b3 = torch.nn.functional.pad(self._stack(p["b3"], H), (0, 1))
        rows = B * K
        if not torch.is_grad_enabled() and rows > CHUNK_ROWS:
            q = _mlp_chunked(x, w1, b1, w2, b2, w3, b3)  # OMAR's search: nothing to differentiate
        else:
            h1 = torch.relu(torch.baddbmm(b1, x, w1))
            h2 = torch.relu(torch.baddbmm(b2, h1, w2))
            q = torch.baddbmm(b3, h2, w3)[..., 0]
        return q.view(M, H, B, K)

    def _stack(self, t: torch.Tensor, H: int) -> torch.Tensor:
        """``[M, 2, ...]`` → ``[M·2, ...]`` (both heads) or the Q1 slice ``[M, ...]``."""
        return t.reshape(t.shape[0] * self.HEADS, *t.shape[2:]) if H == self.HEADS else t[:, 0]

    __call__ = forward


def sampled_logsumexp(critic: BatchedTwinCritic, obs: torch.Tensor, act: torch.Tensor, shift: float,
                      update_stats: bool = True) -> torch.Tensor:
    """``Σ_heads mean_B logsumexp_K(Q_h(o, a_k) − shift)`` per member, ``[M]``, with its gradient.

    The value and gradient equal those of ``critic(obs, act, heads=2)`` followed by the logsumexp and
    the reductions under autograd (up to float rounding), but the pass runs ``CHUNK_ROWS`` rows at a time
    and does each chunk's backward right after its forward, while its activations are still in cache:
    the term is a sum over states, each state's K rows lie in one chunk, and the input BatchNorm's
    statistics are those of data and sampled actions (constants), so every chunk's gradient is final
    as soon as the chunk is done. The full-size activations of the autograd pass (tens of MB for MA-CQL's
    10 actions per state) are never materialised. ``act`` is ``[M, B, K, da]`` and must not need grad.
    """
    M, B, K, _ = act.shape
    do = critic.obs_dim
    p = critic.params.p
    with torch.no_grad():
        xo, mo, vo = _bn_train(obs, torch.ones_like(p["bn_w"][:, :do]), torch.zeros_like(p["bn_b"][:, :do]),
                               dims=(1,))
        xa, ma, va = _bn_train(act, torch.ones_like(p["bn_w"][:, do:]), torch.zeros_like(p["bn_b"][:, do:]),
                               dims=(1, 2))
    if update_stats and critic.stats is not None:
        critic.stats.update(slice(0, do), mo, vo, B * K)
        critic.stats.update(slice(do, None), ma, va, B * K)
    return _SampledLSE.apply(xo, xa, float(shift), p["bn_w"], p["bn_b"], p["w1"], p["b1"], p["w2"], p["b2"],
                             p["w3"], p["b3"])


def _relu_grad(grad: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``grad`` where the ReLU output ``out`` is positive, else 0 (autograd's own kernel: one pass, no
    boolean mask to convert, ~8x faster here than ``grad * (out > 0)``)."""
    return torch.ops.aten.threshold_backward(grad, out, 0.0)


class _SampledLSE(torch.autograd.Function):
    """Chunked forward + backward of :func:`sampled_logsumexp` (gradients computed in the forward)."""

    @staticmethod
    def forward(ctx, xo, xa, shift, bn_w, bn_b, w1, b1, w2, b2, w3, b3):
        M, B, K, da = xa.shape
        H, h = w1.shape[1], w1.shape[2]
        do = xo.shape[2]
        d = do + da
        MH = M * H
        W1, B1 = w1.reshape(MH, h, d), b1.reshape(MH, 1, h)
        W2, B2 = w2.reshape(MH, h, h), b2.reshape(MH, 1, h)
        W3, B3 = w3.reshape(MH, 1, h), b3.reshape(MH, 1, 1)
        W1t, W2t, W3t = W1.mT, W2.mT, W3.mT
        g = {name: torch.zeros_like(t) for name, t in
             (("w1", W1), ("b1", B1), ("w2", W2), ("b2", B2), ("w3", W3), ("b3", B3))}
        g_bn_w = torch.zeros_like(bn_w)
        g_bn_b = torch.zeros_like(bn_b)
        total = torch.zeros(MH, device=xa.device, dtype=xa.dtype)
        sw = bn_w.view(M, 1, 1, d)
        sb = bn_b.view(M, 1, 1, d)
        per = max(1, CHUNK_ROWS // K)  # states per chunk (a state's K rows never straddle two chunks)
        for i in range(0, B, per):
            j = min(B, i + per)
            n, R = j - i, (j - i) * K
            xhat = torch.cat([xo[:, i:j].unsqueeze(2).expand(M, n, K, do), xa[:, i:j]], dim=3)  # [M, n, K, d]
            x = torch.addcmul(sb, xhat, sw).view(M, 1, R, d).expand(M, H, R, d).reshape(MH, R, d)
            h1 = torch.baddbmm(B1, x, W1t).relu_()
            h2 = torch.baddbmm(B2, h1, W2t).relu_()
            q = torch.baddbmm(B3, h2, W3t).view(MH, n, K)
            z = q - shift
            total += torch.logsumexp(z, dim=2).sum(1)
            dq = torch.softmax(z, dim=2).view(MH, R, 1)  # d(Σ_states lse) / dq, scaled by 1/B below
            g["w3"] += torch.bmm(dq.mT, h2)
            g["b3"] += dq.sum(1, keepdim=True)
            dh2 = _relu_grad(dq * W3, h2)
            g["w2"] += torch.bmm(dh2.mT, h1)
            g["b2"] += dh2.sum(1, keepdim=True)
            dh1 = _relu_grad(torch.bmm(dh2, W2), h1)
            g["w1"] += torch.bmm(dh1.mT, x)
            g["b1"] += dh1.sum(1, keepdim=True)
            dx = torch.bmm(dh1, W1).view(M, H, R, d).sum(1).view(M, n, K, d)
            g_bn_b += dx.sum((1, 2))
            g_bn_w += (dx * xhat).sum((1, 2))
        inv_b = 1.0 / B
        grads = [g_bn_w, g_bn_b, g["w1"].view_as(w1), g["b1"].view_as(b1), g["w2"].view_as(w2),
                 g["b2"].view_as(b2), g["w3"].view_as(w3), g["b3"].view_as(b3)]
        for t in grads:
            t.mul_(inv_b)
        ctx.save_for_backward(*grads)
        return total.view(M, H).sum(1).mul_(inv_b)

    @staticmethod
    def backward(ctx, grad_out):
        out = []
        for t in ctx.saved_tensors:
            out.append(t * grad_out.view((-1,) + (1,) * (t.dim() - 1)))
        return (None, None, None, *out)


def _mlp_chunked(x, w1, b1, w2, b2, w3, b3) -> torch.Tensor:
    """relu(x W1 + b1) → relu(· W2 + b2) → · W3 + b3 (first output column), ``CHUNK_ROWS`` rows at a time."""
    rows = x.shape[1]
    q = torch.empty(x.shape[0], rows, device=x.device, dtype=x.dtype)
    for i in range(0, rows, CHUNK_ROWS):
        h = torch.baddbmm(b1, x[:, i : i + CHUNK_ROWS], w1).relu_()
        h = torch.baddbmm(b2, h, w2).relu_()
        q[:, i : i + CHUNK_ROWS] = torch.baddbmm(b3, h, w3)[..., 0]
    return q



class BatchedValue:
    """V(o) for M members: BatchNorm1d(obs) → Linear-ReLU-Linear-ReLU-Linear(1), for algorithms with a
    state-value network (IQL). Like the critics it always normalises with the pass's batch statistics.
    ``obs [M, B, obs_dim] → values [M, B]``."""

    def __init__(self, n_members: int, obs_dim: int, hidden: int = 64, device="cpu"):
        self.n_members, self.obs_dim, self.hidden = n_members, obs_dim, hidden
        M, h = n_members, hidden
        self.params = FlatParams(
            {
                "bn_w": (M, obs_dim), "bn_b": (M, obs_dim),
                "w1": (M, h, obs_dim), "b1": (M, 1, h),
                "w2": (M, h, h), "b2": (M, 1, h),
                "w3": (M, 1, h), "b3": (M, 1, 1),
            },
            M, device,
        )

    def init_(self, gens: Sequence[torch.Generator]) -> None:
        """BN weight 1, bias 0; every Linear at PyTorch's default."""
        p = self.params.p
        with torch.no_grad():
            p["bn_w"].fill_(1.0)
            p["bn_b"].zero_()
            default_linear_init_(p["w1"], p["b1"], self.obs_dim, gens)
            default_linear_init_(p["w2"], p["b2"], self.hidden, gens)
            default_linear_init_(p["w3"], p["b3"], self.hidden, gens)

    def forward(self, obs: torch.Tensor, detached: bool = False) -> torch.Tensor:
        p = self.params.c if detached else self.params.p
        x, _, _ = _bn_train(obs, p["bn_w"], p["bn_b"], dims=(1,))
        h = torch.relu(torch.baddbmm(p["b1"], x, p["w1"].mT))
        h = torch.relu(torch.baddbmm(p["b2"], h, p["w2"].mT))
        # padded to two output columns, as the critics' output layer (same rounding alone and batched)
        w3 = torch.nn.functional.pad(p["w3"], (0, 0, 0, 1)).mT
        b3 = torch.nn.functional.pad(p["b3"], (0, 1))
        return torch.baddbmm(b3, h, w3)[..., 0]

    __call__ = forward
