"""The sampled-action critic passes of MA-CQL and OMAR, on the first layer folded with the input BatchNorm.

CQL's penalty evaluates each critic at 10 sampled actions per state and OMAR's search at 3 x 10; the
observation part of the first layer, ``W1_o BN(o)``, is the same for every sample of a state, so it is
computed once per state and only the action columns are added per sample (BatchNorm's affine folded into
``W1``; its gradients recovered from the folded weight's gradient). :func:`sampled_logsumexp` does its own
chunked backward; :class:`Q1Search` serves all of a round's search iterations from one observation part.
``sample_precision="bf16"`` runs only these products in bfloat16 (:func:`compute_dtype`).
"""

from __future__ import annotations

import torch

from omarbench.offline.nn import CHUNK_ROWS, PRECISIONS, BatchedTwinCritic, _bn_train


def compute_dtype(precision: str, dtype: torch.dtype) -> torch.dtype:
    """The dtype the sampled-action and search passes multiply in: the networks' own ``dtype`` for
    ``"fp32"`` (float32 in training; float64 in the tests' references), bfloat16 for ``"bf16"``."""
    if precision not in PRECISIONS:
        from omarbench.errors import bad_choice

        raise bad_choice("sample precision", precision, PRECISIONS)
    return torch.bfloat16 if precision == "bf16" else dtype


def _folded_first_layer(p: dict[str, torch.Tensor], do: int, heads: int):
    """The input BatchNorm's affine folded into the first layer, split into observation and action columns.

    With ``x = sb + sw·x̂`` (x̂ the normalised input), ``W1 x + b1 = (W1 diag sw) x̂ + (W1 sb + b1)``. Returns
    ``(w_o [MH, h, do], w_a [MH, h, da], c [MH, 1, h])`` for the first ``heads`` heads, member-major."""
    w1, b1, sw, sb = p["w1"][:, :heads], p["b1"][:, :heads], p["bn_w"], p["bn_b"]
    M, H, h, d = w1.shape
    w_eff = w1 * sw.view(M, 1, 1, d)
    c = torch.matmul(sb.view(M, 1, 1, d), w1.mT).add_(b1)  # [M, H, 1, h]
    return (w_eff[..., :do].reshape(M * H, h, do), w_eff[..., do:].reshape(M * H, h, d - do),
            c.view(M * H, 1, h))


def _per_head(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``[M, ...]`` → ``[M·heads, ...]`` (each member's tensor repeated for each of its heads)."""
    M = x.shape[0]
    return x.unsqueeze(1).expand(M, heads, *x.shape[1:]).reshape(M * heads, *x.shape[1:])


def sampled_logsumexp(critic: BatchedTwinCritic, obs: torch.Tensor, act: torch.Tensor,
                      shift: float | torch.Tensor, update_stats: bool = True, precision: str = "fp32",
                      groups: int = 1) -> torch.Tensor:
    """``Σ_heads mean_B logsumexp_K(Q_h(o, a_k) − shift)`` per member, ``[M]``, with its gradient.

    The value and gradient equal those of ``critic(obs, act, heads=2)`` followed by the logsumexp and
    the reductions under autograd (up to float rounding), but the pass runs ``CHUNK_ROWS`` rows at a time
    and does each chunk's backward right after its forward, while its activations are still in cache:
    the term is a sum over states, each state's K rows lie in one chunk, and the input BatchNorm's
    statistics are those of data and sampled actions (constants), so every chunk's gradient is final
    as soon as the chunk is done. The full-size activations of the autograd pass (tens of MB for MA-CQL's
    10 actions per state) are never materialised.

    The first layer is folded (:func:`_folded_first_layer`): its observation part is computed once per
    state, and only the action columns are multiplied per sampled row (2 of the 20 inputs on spread);
    the BatchNorm affine's gradients follow from the folded weight's gradient, so no input gradient is
    formed. ``precision="bf16"`` does the three layers' products in bfloat16 (the logsumexp, its softmax
    and every gradient accumulate in float32). ``act`` is ``[M, B, K, da]`` and must not need grad.

    ``shift`` is one number (MA-CQL's uniform proposal) or a tensor ``[M, B, K]``, one per sampled action.
    ``groups`` > 1 splits the K actions into that many equal consecutive slices that the authors' code
    passes through the critic one after the other (HalfCheetah's uniform, π(o) and π(o′) samples): each
    slice's action columns are normalised with its own batch statistics, and the running statistics are
    updated once per slice, in order.
    """
    M, B, K, _ = act.shape
    do = critic.obs_dim
    p = critic.params.p
    if groups < 1 or K % groups:
        raise ValueError(f"{K} sampled actions do not split into {groups} equal groups")
    Kg = K // groups
    with torch.no_grad():
        xo, mo, vo = _bn_train(obs, torch.ones_like(p["bn_w"][:, :do]), torch.zeros_like(p["bn_b"][:, :do]),
                               dims=(1,))
        parts = []
        for k in range(0, K, Kg):
            xa_k, ma, va = _bn_train(act[:, :, k:k + Kg] if groups > 1 else act,
                                     torch.ones_like(p["bn_w"][:, do:]), torch.zeros_like(p["bn_b"][:, do:]),
                                     dims=(1, 2))
            parts.append(xa_k)
            if update_stats and critic.stats is not None:
                critic.stats.update(slice(0, do), mo, vo, B * Kg)
                critic.stats.update(slice(do, None), ma, va, B * Kg)
        xa = parts[0] if groups == 1 else torch.cat(parts, dim=2)
    if not isinstance(shift, torch.Tensor):
        shift = float(shift)
    elif shift.shape != (M, B, K):
        raise ValueError(f"a shift tensor must be shaped {(M, B, K)}, got {tuple(shift.shape)}")
    return _SampledLSE.apply(xo, xa, shift, compute_dtype(precision, xa.dtype), p["bn_w"], p["bn_b"],
                             p["w1"], p["b1"], p["w2"], p["b2"], p["w3"], p["b3"])


def _relu_grad(grad: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``grad`` where the ReLU output ``out`` is positive, else 0 (autograd's own kernel: one pass, no
    boolean mask to convert, ~8x faster here than ``grad * (out > 0)``)."""
    return torch.ops.aten.threshold_backward(grad, out, 0.0)


class _SampledLSE(torch.autograd.Function):
    """Chunked forward + backward of :func:`sampled_logsumexp` (gradients computed in the forward)."""

    @staticmethod
    def forward(ctx, xo, xa, shift, cdt, bn_w, bn_b, w1, b1, w2, b2, w3, b3):
        M, B, K, da = xa.shape
        H, h = w1.shape[1], w1.shape[2]
        do = xo.shape[2]
        MH = M * H
        p = {"w1": w1, "b1": b1, "bn_w": bn_w, "bn_b": bn_b}
        with torch.no_grad():
            w_o, w_a, c = _folded_first_layer(p, do, H)
            xo_h = _per_head(xo, H)  # [MH, B, do]
            u = torch.baddbmm(c, xo_h, w_o.mT).to(cdt)  # the observation part of layer 1, once per state
        W2, B2 = w2.reshape(MH, h, h).to(cdt), b2.reshape(MH, 1, h).to(cdt)
        W3, B3 = w3.reshape(MH, 1, h).to(cdt), b3.reshape(MH, 1, 1).to(cdt)
        Wa_t, W2t, W3t = w_a.mT.to(cdt), W2.mT, W3.mT
        if isinstance(shift, torch.Tensor):
            shift = _per_head(shift.to(xa.dtype), H)  # [MH, B, K], sliced per chunk below
        f32 = {"device": xa.device, "dtype": xa.dtype}  # accumulators in the networks' dtype
        g_w2, g_b2 = torch.zeros(MH, h, h, **f32), torch.zeros(MH, 1, h, **f32)
        g_w3, g_b3 = torch.zeros(MH, 1, h, **f32), torch.zeros(MH, 1, 1, **f32)
        g_wa_t = torch.zeros(MH, da, h, **f32)  # d/d(w_a)ᵀ, the action columns of the folded weight
        s = torch.empty(MH, B, h, **f32)  # dL/d(layer-1 pre-activation) summed over each state's K rows
        total = torch.zeros(MH, **f32)
        per = max(1, CHUNK_ROWS // K)  # states per chunk (a state's K rows never straddle two chunks)
        for i in range(0, B, per):
            j = min(B, i + per)
            n, R = j - i, (j - i) * K
            xa_c = _per_head(xa[:, i:j].reshape(M, R, da), H).to(cdt)  # [MH, R, da]
            pre = torch.bmm(xa_c, Wa_t)
            h1 = pre.view(MH, n, K, h).add_(u[:, i:j].unsqueeze(2)).relu_().view(MH, R, h)
            h2 = torch.baddbmm(B2, h1, W2t).relu_()
            q = torch.baddbmm(B3, h2, W3t).view(MH, n, K).to(xa.dtype)
            z = q - (shift[:, i:j] if isinstance(shift, torch.Tensor) else shift)
            total += torch.logsumexp(z, dim=2).sum(1)
            dq = torch.softmax(z, dim=2).view(MH, R, 1)  # d(Σ_states lse) / dq, scaled by 1/B below
            dq_c = dq.to(cdt)
            g_w3 += torch.bmm(dq_c.mT, h2)
            g_b3 += dq.sum(1, keepdim=True)
            dh2 = _relu_grad(dq_c * W3, h2)
            g_w2 += torch.bmm(h1.mT, dh2).mT
            g_b2 += dh2.sum(1, keepdim=True, dtype=xa.dtype)
            dh1 = _relu_grad(torch.bmm(dh2, W2), h1)
            g_wa_t += torch.bmm(xa_c.mT, dh1)  # the narrow operand first: ~2x faster here than dh1ᵀ·xa
            s[:, i:j] = dh1.view(MH, n, K, h).sum(2, dtype=xa.dtype)
        # gradients of the folded first layer → of W1, b1 and the BatchNorm affine
        g_wo = torch.bmm(s.mT, xo_h)  # [MH, h, do]
        gc = s.sum(1)  # [MH, h]: d/dc, c = W1 sb + b1
        d = do + da
        G = torch.cat([g_wo, g_wa_t.mT], dim=2).view(M, H, h, d)  # d/d(W1 diag sw)
        gc = gc.view(M, H, h, 1)
        g_w1 = G * bn_w.view(M, 1, 1, d) + gc * bn_b.view(M, 1, 1, d)
        g_bn_w = (G * w1).sum((1, 2))
        g_bn_b = (gc * w1).sum((1, 2))
        inv_b = 1.0 / B
        grads = [g_bn_w, g_bn_b, g_w1, gc.view_as(b1), g_w2.view_as(w2), g_b2.view_as(b2), g_w3.view_as(w3),
                 g_b3.view_as(b3)]
        for t in grads:
            t.mul_(inv_b)
        ctx.save_for_backward(*grads)
        return total.view(M, H).sum(1).mul_(inv_b)

    @staticmethod
    def backward(ctx, grad_out):
        out = []
        for t in ctx.saved_tensors:
            out.append(t * grad_out.view((-1,) + (1,) * (t.dim() - 1)))
        return (None, None, None, None, *out)


class Q1Search:
    """Q1(o, a) for many sampled actions per state without gradients (OMAR's search), folded.

    Built once per update for a minibatch ``obs [M, B, do]``: the observation columns' BatchNorm
    statistics and the observation part of the folded first layer (:func:`_folded_first_layer`) are the
    same in every search iteration, so they are computed once; each call then normalises its actions
    with their own batch statistics (the critic is in train mode), updates the running statistics as the
    plain pass does, and multiplies only the action columns per sample. Equal to
    ``critic(obs, act, heads=1)[:, 0]`` up to float rounding; ``precision="bf16"`` multiplies in bfloat16.
    """

    def __init__(self, critic: BatchedTwinCritic, obs: torch.Tensor, precision: str = "fp32",
                 update_stats: bool = True):
        self.critic, self.update_stats = critic, update_stats
        self.cdt = compute_dtype(precision, obs.dtype)
        p = critic.params.c
        do = critic.obs_dim
        self.B = obs.shape[1]
        with torch.no_grad():
            xo, self.mo, self.vo = _bn_train(obs, torch.ones_like(p["bn_w"][:, :do]),
                                             torch.zeros_like(p["bn_b"][:, :do]), dims=(1,))
            w_o, w_a, c = _folded_first_layer(p, do, 1)
            self.u = torch.baddbmm(c, xo, w_o.mT).to(self.cdt)  # [M, B, h]
            self.wa_t = w_a.mT.to(self.cdt)
            self.w2t = p["w2"][:, 0].mT.to(self.cdt)
            self.b2 = p["b2"][:, 0].to(self.cdt)
            # the output layer padded to two columns, as in the plain pass (same rounding lone or batched)
            self.w3t = torch.nn.functional.pad(p["w3"][:, 0], (0, 0, 0, 1)).mT.to(self.cdt)
            self.b3 = torch.nn.functional.pad(p["b3"][:, 0], (0, 1)).to(self.cdt)

    @torch.no_grad()
    def __call__(self, act: torch.Tensor) -> torch.Tensor:
        """``act [M, B, S, da]`` → ``Q1 [M, B, S]`` (in ``act``'s dtype)."""
        critic, do = self.critic, self.critic.obs_dim
        M, B, S, da = act.shape
        unit = torch.ones(M, da, device=act.device, dtype=act.dtype)
        xa, ma, va = _bn_train(act, unit, torch.zeros_like(unit), dims=(1, 2))
        if self.update_stats and critic.stats is not None:
            critic.stats.update(slice(0, do), self.mo, self.vo, B * S)
            critic.stats.update(slice(do, None), ma, va, B * S)
        xa = xa.to(self.cdt)
        h = self.u.shape[2]
        q = torch.empty(M, B, S, device=act.device, dtype=act.dtype)
        per = max(1, CHUNK_ROWS // S)
        for i in range(0, B, per):
            j = min(B, i + per)
            n, R = j - i, (j - i) * S
            pre = torch.bmm(xa[:, i:j].reshape(M, R, da), self.wa_t)
            h1 = pre.view(M, n, S, h).add_(self.u[:, i:j].unsqueeze(2)).relu_().view(M, R, h)
            h2 = torch.baddbmm(self.b2, h1, self.w2t).relu_()
            q[:, i:j] = torch.baddbmm(self.b3, h2, self.w3t)[..., 0].view(M, n, S)
        return q
