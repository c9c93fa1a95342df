"""The three primitive ops, registered with ``torch.library`` (contracts: docs/architecture.md).

Each op dispatches at run time to the Triton kernels or the torch engine (``ssm_lfilter.backend``).
Each backward is the adjoint: the same op run in reverse time on the output gradient, plus
reductions for the coefficient gradients. Backwards call the ops (never raw kernels), so they are
differentiable again (double backward) and trace under ``torch.compile``.

Complex tensors follow PyTorch's convention: gradients are conjugate Wirtinger derivatives, so every
coefficient in an adjoint appears conjugated.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from . import backend
from .engine import diagonal as _diag_engine
from .engine import lti as _lti_engine
from .engine import time_varying as _tv_engine

__all__ = ["lti", "tv", "diag"]


def _kernels():
    # Imported on first use: Triton reads TRITON_INTERPRET when the kernels are defined.
    from . import kernels

    return kernels


def _lagged_dot(v: Tensor, z: Tensor, lags: range) -> Tensor:
    """``out[:, i] = sum_n v[n] conj(z[n - k])`` for ``k = lags[i]``: the coefficient gradients."""
    T = v.shape[1]
    cols = [
        torch.linalg.vecdot(z[:, : T - k], v[:, k:]) if k < T else v.new_zeros(v.shape[0]) for k in lags
    ]
    return torch.stack(cols, 1) if cols else v.new_zeros(v.shape[0], 0)


def _sum_rows_like(grad: Tensor, like: Tensor) -> Tensor:
    """Sum a per-row gradient over rows when the input was one row shared by all."""
    return grad.sum(0, keepdim=True) if like.shape[0] == 1 and grad.shape[0] != 1 else grad


# --------------------------------------------------------------------------------------------- lti
@torch.library.custom_op("ssm_lfilter::lti", mutates_args=())
def lti(x: Tensor, b: Tensor, a: Tensor, head: Tensor) -> Tensor:
    """``y[n] = sum_k b[k] x[n-k] + head[n] - sum_k a[k-1] y[n-k]`` from rest. ``x (R, T)``,
    ``b (Rb, M+1)``, ``a (Ra, N)`` normalized, ``head (R, K)``; ``Rb, Ra`` in {1, R}."""
    if backend.use_triton("lti", x):
        return _kernels().lti(x, b, a, head).contiguous()
    return _lti_engine.lti(x, b, a, head).contiguous()


@lti.register_fake
def _(x, b, a, head):
    return x.new_empty(x.shape)


def _lti_setup(ctx, inputs, output):
    x, b, a, head = inputs
    ctx.save_for_backward(x, b, a, output)
    ctx.K = head.shape[1]


def _lti_backward(ctx, g):
    x, b, a, y = ctx.saved_tensors
    R, T = x.shape
    need_x, need_b, need_a, need_head = ctx.needs_input_grad
    one = x.new_ones(1, 1)
    none = x.new_zeros(R, 0)
    # The adjoint is the same all-pole filter run backwards in time: v[n] = g[n] - sum_k a_k v[n+k].
    v = lti(g.flip(1), one, a.conj().resolve_conj(), none).flip(1)
    dx = db = da = dhead = None
    if need_x:
        # dx[n] = sum_k conj(b_k) v[n+k]: an FIR in reverse time (the op with no poles).
        dx = lti(v.flip(1), b.conj().resolve_conj(), a.new_zeros(1, 0), none).flip(1)
    if need_b:
        db = _sum_rows_like(_lagged_dot(v, x, range(b.shape[1])), b)
    if need_a:
        da = _sum_rows_like(-_lagged_dot(v, y, range(1, a.shape[1] + 1)), a)
    if need_head:
        dhead = F.pad(v[:, : ctx.K], (0, max(ctx.K - T, 0)))
    return dx, db, da, dhead


lti.register_autograd(_lti_backward, setup_context=_lti_setup)


# ---------------------------------------------------------------------------------------------- tv
@torch.library.custom_op("ssm_lfilter::tv", mutates_args=())
def tv(u: Tensor, a: Tensor) -> Tensor:
    """Time-varying all-pole ``y[n] = u[n] - sum_k a[n, k-1] y[n-k]`` from rest. ``u (R, T)``,
    ``a (Ra, T, N)`` normalized; ``Ra`` in {1, R}."""
    if backend.use_triton("tv", u):
        return _kernels().time_varying(u, a).contiguous()
    return _tv_engine.allpole_tv(u, a).contiguous()


@tv.register_fake
def _(u, a):
    return u.new_empty(u.shape)


def _tv_setup(ctx, inputs, output):
    u, a = inputs
    ctx.save_for_backward(a, output)


def _delayed(t: Tensor, k: int) -> Tensor:
    """``t`` delayed by ``k`` samples along dim 1, zeros in front."""
    T = t.shape[1]
    if k >= T:
        return torch.zeros_like(t)
    return torch.cat([t.new_zeros(t.shape[0], k, *t.shape[2:]), t[:, : T - k]], 1)


def _tv_backward(ctx, g):
    a, y = ctx.saved_tensors
    N = a.shape[2]
    # v[n] = g[n] - sum_k conj(a[n+k, k-1]) v[n+k]: in reversed time m, coefficient k is
    # a[T-1-m+k, k-1] = a.flip(1)[m-k, k-1], i.e. column k of the flipped a delayed by k.
    a_rev = a.conj().resolve_conj().flip(1)
    a_adj = torch.stack([_delayed(a_rev[:, :, k - 1], k) for k in range(1, N + 1)], -1) if N else a_rev
    v = tv(g.flip(1), a_adj).flip(1)
    da = None
    if ctx.needs_input_grad[1]:
        y_past = torch.stack([_delayed(y, k) for k in range(1, N + 1)], -1) if N else a.new_zeros(*y.shape, 0)
        da = _sum_rows_like(-(v[:, :, None] * y_past.conj()), a)
    return v, da


tv.register_autograd(_tv_backward, setup_context=_tv_setup)


# -------------------------------------------------------------------------------------------- diag
@torch.library.custom_op("ssm_lfilter::diag", mutates_args=())
def diag(a: Tensor, u: Tensor, reverse: bool) -> Tensor:
    """``h[t] = a[t] h[t-1] + u[t]`` from rest (``reverse``: ``h[t] = a[t] h[t+1] + u[t]``).
    ``a (Ra, Ta)`` with ``Ra`` in {1, R} and ``Ta`` in {1, T}; ``u (R, T)``; same dtype."""
    if backend.use_triton("diag", u):
        return _kernels().diagonal(a, u, reverse).contiguous()
    return _diag_engine.diagonal(a, u, reverse).contiguous()


@diag.register_fake
def _(a, u, reverse):
    return u.new_empty(u.shape)


def _diag_setup(ctx, inputs, output):
    a, u, reverse = inputs
    ctx.save_for_backward(a, output)
    ctx.reverse = reverse


def _diag_backward(ctx, g):
    a, h = ctx.saved_tensors
    reverse = ctx.reverse
    T = h.shape[1]
    # lam[t] = g[t] + conj(a[t+1]) lam[t+1] (forward recurrence), mirrored for reverse.
    # A constant a needs no shift: at the boundary it multiplies a zero state.
    a_adj = a.conj().resolve_conj()
    if a.shape[1] > 1:
        a_adj = F.pad(a_adj[:, :-1], (1, 0)) if reverse else F.pad(a_adj[:, 1:], (0, 1))
    lam = diag(a_adj, g, not reverse)
    da = None
    if ctx.needs_input_grad[0]:
        h_prev = F.pad(h[:, 1:], (0, 1)) if reverse else F.pad(h[:, : T - 1], (1, 0))
        da = lam * h_prev.conj()
        if a.shape[1] == 1:
            da = da.sum(1, keepdim=True)
        da = _sum_rows_like(da, a)
    return da, lam, None


diag.register_autograd(_diag_backward, setup_context=_diag_setup)
