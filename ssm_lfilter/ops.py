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
from ._raw_coefficients import a_grad_width
from ._raw_coefficients import normalized as _normalized
from .engine import cascade as _cascade_engine
from .engine import diagonal as _diag_engine
from .engine import lti as _lti_engine
from .engine import time_varying as _tv_engine

__all__ = ["lti", "lti_coef_grads", "lti_adjoint", "sos", "sos_adjoint", "tv", "tv_adjoint", "tv_sos", "tv_sos_adjoint",
           "diag", "diag_adjoint", "lti_op", "lti_coef_grads_op", "lti_adjoint_op", "sos_op", "sos_adjoint_op", "tv_op", "tv_adjoint_op",
           "tv_sos_op", "tv_sos_adjoint_op", "diag_op", "diag_adjoint_op"]


def _kernels():
    # Imported on first use: Triton reads TRITON_INTERPRET when the kernels are defined.
    from . import kernels

    return kernels


def _lagged_dot(v: Tensor, z: Tensor, lags: range, reverse: bool = False) -> Tensor:
    """``out[:, i] = sum_n v[n] conj(z[n - k])`` for ``k = lags[i]`` (``z[n + k]`` when ``reverse``):
    the coefficient gradients."""
    T = v.shape[1]
    cols = [
        (torch.linalg.vecdot(z[:, k:], v[:, : T - k]) if reverse else torch.linalg.vecdot(z[:, : T - k], v[:, k:]))
        if k < T else v.new_zeros(v.shape[0]) for k in lags
    ]
    return torch.stack(cols, 1) if cols else v.new_zeros(v.shape[0], 0)


def _sum_rows_like(grad: Tensor, like: Tensor) -> Tensor:
    """Sum a per-row gradient over rows when the input was one row shared by all."""
    return grad.sum(0, keepdim=True) if like.shape[0] == 1 and grad.shape[0] != 1 else grad


def _unnormalized_grads(b: Tensor, a: Tensor, db: Tensor, da: Tensor) -> tuple[Tensor, Tensor]:
    """The gradients of ``b`` and ``a`` (``a0`` first) from ``db`` and ``da``, those of the normalized
    sections ``(b / a0, a[..., 1:] / a0)`` (per row, broadcasting against ``b`` and ``a``):
    ``db / a0``, ``da / a0`` and ``-(sum db b + sum da a[1:]) / a0`` for ``a0``, conjugated as torch's
    division is. ``da`` None (``a``'s gradient not needed): ``(db / a0, None)``."""
    a0c = a[..., :1].conj()
    db_raw = db / a0c
    if da is None:
        return db_raw, None
    da_rest = da / a0c
    da0 = -((db_raw * b.conj()).sum(-1, keepdim=True) + (da_rest * a[..., 1:].conj()).sum(-1, keepdim=True)) / a0c
    return db_raw, torch.cat([da0, da_rest], -1)


# --------------------------------------------------------------------------------------------- lti
def _lti_impl(x: Tensor, b: Tensor, a: Tensor, head: Tensor, reverse: bool = False, monic: bool = True) -> Tensor:
    """``y[n] = sum_k b[k] x[n-k] + head[n] - sum_k a[k-1] y[n-k]`` from rest. ``x (R, T)``,
    ``b (Rb, M+1)``, ``a (Ra, N)`` normalized, ``head (R, K)``; ``Rb, Ra`` in {1, R}. ``reverse``:
    the same filter backwards in time, ``flip(lti(flip(x)))`` with ``head[n]`` entering at ``T-1-n``
    (the kernels read the reversed signal in place; the backward uses it instead of flipped copies).
    ``monic=False``: ``a (Ra, N+1)`` with its leading coefficient ``a0`` first, for the filter
    ``(b / a0, a[1:] / a0)``, divided inside the op (by the kernels' launcher or in registers, or here
    for the torch engine): a caller that divided first recorded the division and the slices for
    autograd, whose backward nodes took more host time than the filter's own backward on an H200
    (``benchmarks/results/cuda-nvidia-h200-2026-11-28``)."""
    if backend.use_triton("lti", x) and not _kernels_would_cancel(x, a, monic):
        # raw coefficients: the single-pass kernel divides in registers (no division launched)
        return _kernels().lti(x, b, a, head, reverse=reverse, monic=monic).contiguous()
    if not monic:
        b, a = _normalized(b, a)
    if reverse:
        return _lti_engine.lti(x.flip(1), b, a, head).flip(1).contiguous()
    return _lti_engine.lti(x, b, a, head).contiguous()


def _kernels_would_cancel(x: Tensor, a: Tensor, monic: bool) -> bool:
    """Whether a call on the kernels' path under ``SSM_LFILTER_BACKEND=auto`` should take the torch
    engine (on the same device) instead: a real direct form whose carries cancel
    (``engine/lti.py``'s ``cancels_in``), which the engine runs as second-order sections (with a
    refinement step for float64 data, ``engine/sections.py``). The kernels carry the direct form's
    last outputs in float64 registers; their error grows about as ``|G|^2`` times float64's
    rounding (``butter(4, 0.02)``, ``|G|`` 1e4: 1.1e-5 relative; ``cheby1(8, 1, 0.1)`` 8e-4).
    The test reads a value back (a host sync), so it runs for float64 data of order >= 3 and for
    orders >= 5 (the three-pass kernels); float32 data of orders 3-4 stays on the single-pass
    kernels unchecked (README, "Numerics")."""
    N = a.shape[1] - (0 if monic else 1)
    if N < 3 or (N < 5 and x.dtype != torch.float64) or a.is_complex() or backend.requested() != "auto":
        return False
    if x.is_cuda and torch.cuda.is_current_stream_capturing():
        return False  # no value can be read back while a CUDA graph is captured: the kernels run
    an = a if monic else a[:, 1:] / a[:, :1]
    return _lti_engine.cancels_in(an, x.shape[1], 0, None, x.dtype)


lti_op = torch.library.custom_op("ssm_lfilter::lti", _lti_impl, mutates_args=())


@lti_op.register_fake
def _(x, b, a, head, reverse=False, monic=True):
    return x.new_empty(x.shape)


def _lti_setup(ctx, inputs, output):
    x, b, a, head, reverse, monic = inputs
    ctx.save_for_backward(x, b, a, output)
    ctx.K = head.shape[1]
    ctx.reverse = reverse
    ctx.monic = monic


def _adjoint_composed(x, b, a, y, g, K, reverse, need_x, n_b, n_a):
    """The LTI backward from the ops: ``(dx or None, db [R, n_b], da [R, n_a], dhead [R, K])`` per row.
    Differentiable again when a graph is being built (double backward); otherwise the coefficient
    reductions are the fused ``lti_coef_grads``."""
    R, T = x.shape
    none = x.new_zeros(R, 0)
    # The adjoint is the same all-pole filter run the other way in time (no flipped copies):
    # v[n] = g[n] - sum_k a_k v[n+k] (forward op; v[n-k] for reverse).
    v = lti(g, x.new_ones(1, 1), a.conj().resolve_conj(), none, not reverse)
    # dx[n] = sum_k conj(b_k) v[n+k] (v[n-k] for reverse): an FIR the other way in time.
    dx = lti(v, b.conj().resolve_conj(), a.new_zeros(1, 0), none, not reverse) if need_x else None
    if torch.is_grad_enabled():
        db = _lagged_dot(v, x, range(n_b), reverse)
        da = -_lagged_dot(v, y, range(1, n_a + 1), reverse)
    else:
        db, da = lti_coef_grads(v, x, y, n_b, n_a, reverse)
    # head[n] entered at step n: time n, or T-1-n for reverse
    v_steps = v.flip(1)[:, :K] if reverse else v[:, :K]
    return dx, db, da, F.pad(v_steps, (0, max(K - T, 0)))


def _lti_adjoint_any(g, x, y, b, a, K, reverse, need_x, n_b, n_a):
    """``lti_adjoint``'s per-row results ``(dx, db, da, dhead)`` for normalized ``b``, ``a``, from the
    composed ops while a graph is being built (``create_graph=True``: differentiable again), else from
    the fused op (on the kernels: one pass over ``g``, ``x``, ``y`` and ``dx``)."""
    if torch.is_grad_enabled():
        return _adjoint_composed(x, b, a, y, g, K, reverse, need_x, n_b, n_a)
    dx, dcoef, dhead = lti_adjoint(g, x, y, b, a, K, reverse, need_x, n_b, n_a)
    return dx, dcoef[:, :n_b], dcoef[:, n_b:], dhead


def _raw_grads(b: Tensor, a: Tensor, db: Tensor, da: Tensor, n_b: int, n_a: int,
               monic: bool) -> tuple[Tensor, Tensor]:
    """The composed ops' per-row gradients of the normalized filter (``db``, ``da``) laid out as the
    fused backward ops return them: taken back through the division to the raw ``b`` and ``a`` (``a0``
    first, ``_unnormalized_grads``) unless ``monic`` (the callers sum shared rows)."""
    if not monic and n_b:
        db, da = _unnormalized_grads(b, a, db, da if n_a else None)
        da = db[..., :0] if da is None else da
    return db, da


def _a0_grad_without_poles(db: Tensor, b: Tensor, a: Tensor) -> Tensor:
    """``a0``'s gradient for raw coefficients without poles (``a = [a0]``): the fused ops' columns hold
    it only in front of the poles' (``a_grad_width``), but ``b / a0`` still depends on it:
    ``-(sum_k db_k b_k) / a0`` from the raw ``db``, conjugated as torch's division is."""
    return -(db * b.conj()).sum(-1, keepdim=True) / a[..., :1].conj()


def _adjoint_raw(x, b, a, y, g, K, reverse, need_x, n_b, n_a, monic, sum_rows):
    """``lti_adjoint``'s results ``(dx, dcoef, dhead)`` from the composed ops (``_raw_grads``), summed over
    rows with ``sum_rows``."""
    bn, an = (b, a) if monic else _normalized(b, a)
    dx, db, da, dhead = _adjoint_composed(x, bn, an, y, g, K, reverse, need_x, n_b, n_a)
    dcoef = torch.cat(_raw_grads(b, a, db, da, n_b, n_a, monic), 1)
    return dx, (dcoef.sum(0, keepdim=True) if sum_rows else dcoef), dhead


def _lti_vjp(x, b, a, y, g, K, reverse, need_x, need_b, need_a, need_head, monic=True):
    """Gradients of ``y = lti(x, b, a, head, reverse, monic)`` (``head`` of length ``K``) for the
    output gradient ``g``. ``monic=False``: those of the normalized filter taken back through the
    division to ``b`` and to ``a`` with ``a0`` first (``a0``'s needs ``db``); summed over rows where
    a filter is shared. Without a graph to build, one fused op (on the kernels one launch and one
    reduction, the division and the row sums included); with one, the composed ops (differentiable
    again)."""
    M, N = b.shape[1] - 1, a.shape[1] - (0 if monic else 1)
    n_b = M + 1 if need_b or (need_a and not monic) else 0
    n_a = N if need_a else 0
    K = K if need_head else 0
    # b and a each one row shared by every row: the gradients are summed over rows
    shared = b.shape[0] == 1 and a.shape[0] == 1 and x.shape[0] > 1
    if torch.is_grad_enabled():
        dx, dcoef, dhead = _adjoint_raw(x, b, a, y, g, K, reverse, need_x, n_b, n_a, monic, shared)
    else:
        dx, dcoef, dhead = lti_adjoint(g, x, y, b, a, K, reverse, need_x, n_b, n_a, monic, shared)
    db, da = dcoef[:, :n_b], dcoef[:, n_b:]
    if need_a and not monic and N == 0:  # a pure FIR b / a0
        da = _a0_grad_without_poles(db, b, a)
    return ((dx if need_x else None), (_sum_rows_like(db, b) if need_b else None),
            (_sum_rows_like(da, a) if need_a else None), (dhead if need_head else None))


def _lti_backward(ctx, g):
    x, b, a, y = ctx.saved_tensors
    return (*_lti_vjp(x, b, a, y, g, ctx.K, ctx.reverse, *ctx.needs_input_grad[:4], ctx.monic), None, None)


lti_op.register_autograd(_lti_backward, setup_context=_lti_setup)


def _lti_coef_grads_impl(v: Tensor, x: Tensor, y: Tensor, n_b: int, n_a: int,
                   reverse: bool = False) -> tuple[Tensor, Tensor]:
    """The LTI coefficient gradients per row, every lag in one pass: ``db[:, k] = sum_n v[n]
    conj(x[n-k])`` (``k < n_b``) and ``da[:, k] = -sum_n v[n] conj(y[n-1-k])`` (``k < n_a``), with
    ``v`` the adjoint (``x[n+k]``, ``y[n+1+k]`` for a filter run in ``reverse``). ``v, x, y (R, T)``.
    No autograd of its own: the backward calls it only when no graph is being built
    (``create_graph=True`` takes the composed, differentiable ops)."""
    if backend.use_triton("lti", v):
        db, da = _kernels().lti_coef_grads(v, x, y, n_b, n_a, reverse=reverse)
        return db.contiguous(), da.contiguous()
    return (_lagged_dot(v, x, range(n_b), reverse).contiguous(),
            (-_lagged_dot(v, y, range(1, n_a + 1), reverse)).contiguous())


lti_coef_grads_op = torch.library.custom_op("ssm_lfilter::lti_coef_grads", _lti_coef_grads_impl, mutates_args=())


@lti_coef_grads_op.register_fake
def _(v, x, y, n_b, n_a, reverse=False):
    return v.new_empty(v.shape[0], n_b), v.new_empty(v.shape[0], n_a)


def _lti_adjoint_impl(g: Tensor, x: Tensor, y: Tensor, b: Tensor, a: Tensor, K: int, reverse: bool, need_x: bool,
                      n_b: int, n_a: int, monic: bool = True, sum_rows: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """The backward of ``y = lti(x, b, a, head, reverse, monic)`` for the output gradient ``g``:
    ``(dx, dcoef, dhead [R, K])`` (``dx`` empty ``(R, 0)`` unless ``need_x``). ``dcoef [R, n_b + n_a]``: per
    row, the gradients of ``b``'s first ``n_b`` and ``a``'s first ``n_a`` coefficients (0 for none), or
    with ``monic=False`` (``a0`` first in ``a``) those of the raw coefficients, ``a``'s ``n_a + 1`` with
    ``a0``'s first (``n_a > 0`` needs ``n_b = M + 1``); ``sum_rows``: summed over the rows, ``[1, ...]``.
    On the kernels, orders ``N, M <= 4`` (a pure FIR too) run ``kernels/lti_adjoint.py`` (one launch:
    ``g``, ``x``, ``y`` read once, ``dx`` written once, the raw coefficients' gradients formed in it;
    then one sum over its tiles); otherwise the composed ops. No autograd of its own: double backward
    takes the composed, differentiable ops."""
    if (backend.use_triton("lti", g) and _kernels().fused_adjoint_applies(b, a, monic=monic)
            and not _kernels_would_cancel(g, a, monic)):
        dx, dcoef, dhead = _kernels().lti_adjoint_sums(g, x, y, b, a, K, need_x, n_b, n_a, reverse=reverse,
                                                       monic=monic, sum_rows=sum_rows)
    else:
        dx, dcoef, dhead = _adjoint_raw(x, b, a, y, g, K, reverse, need_x, n_b, n_a, monic, sum_rows)
    dx = dx.contiguous() if need_x else g.new_empty(g.shape[0], 0)
    return dx, dcoef.contiguous(), dhead.contiguous()


lti_adjoint_op = torch.library.custom_op("ssm_lfilter::lti_adjoint", _lti_adjoint_impl, mutates_args=())


@lti_adjoint_op.register_fake
def _(g, x, y, b, a, K, reverse, need_x, n_b, n_a, monic=True, sum_rows=False):
    R, T = g.shape
    width = n_b + a_grad_width(n_a, monic)
    return g.new_empty(R, T if need_x else 0), g.new_empty(1 if sum_rows else R, width), g.new_empty(R, K)


# --------------------------------------------------------------------------------------------- sos
def _sos_impl(x: Tensor, b: Tensor, a: Tensor, head: Tensor, n_ends: int, monic: bool = True) -> tuple[Tensor, Tensor]:
    """A cascade of LTI filters: section ``s`` is ``lti`` with ``b[:, s]``, ``a[:, s]`` and the head
    ``head[:, s]`` (its initial state, e.g. ``sosfilt``'s ``zi``) on the previous section's output.
    ``x (R, T)``, ``b (Rb, S, M+1)``, ``a (Ra, S, N)`` normalized, ``head (R, S, K)``. Returns ``y`` and
    ``ends (S, R, n_ends)``, every section's last ``n_ends <= T`` outputs (the cascade's final states
    are formed from them). On the kernels, biquad cascades run in one pass over memory
    (``kernels/sos.py``); on the torch engine every cascade runs in one blockwise pass
    (``engine/cascade.py``). ``monic=False``: ``a (Ra, S, N+1)`` with each section's ``a0`` first,
    divided inside the op (as ``lti``'s: by the fused kernel in registers, else here)."""
    S = b.shape[1]
    if backend.use_triton("lti", x):
        ends = x.new_empty(S, x.shape[0], n_ends)
        return _kernels().sos(x, b, a, head=head, ends=ends if n_ends else None, monic=monic).contiguous(), ends
    if not monic:
        b, a = _normalized(b, a)
    # the torch engine: all sections in one blockwise pass
    y, ends = _cascade_engine.cascade(x, [(b[:, s], a[:, s]) for s in range(S)], head.unbind(1), n_ends)
    return y.contiguous(), ends


sos_op = torch.library.custom_op("ssm_lfilter::sos", _sos_impl, mutates_args=())


@sos_op.register_fake
def _(x, b, a, head, n_ends, monic=True):
    return x.new_empty(x.shape), x.new_empty(b.shape[1], x.shape[0], n_ends)


def _sos_setup(ctx, inputs, output):
    x, b, a, head, n_ends, monic = inputs
    ctx.save_for_backward(x, b, a, head, output[0])
    ctx.monic = monic


def _sos_adjoint_composed(g, g_ends, x, y, b, a, head, need_x, n_b, n_a):
    """The cascade's backward from the ops, per row: the section inputs recomputed (the fused forward
    keeps no intermediates), then each section's adjoint, last first (its dx, plus the gradient of
    its last outputs ``g_ends[s]``, is the previous section's output gradient). Differentiable again
    when a graph is being built."""
    (R, T), S, K, KT = x.shape, b.shape[1], head.shape[2], g_ends.shape[2]
    xs = [x]
    for s in range(S - 1):
        xs.append(lti(xs[-1], b[:, s], a[:, s], head[:, s]))
    ys = xs[1:] + [y]
    dbs, das, dheads = [None] * S, [None] * S, [None] * S
    for s in reversed(range(S)):
        if KT:
            g = g + F.pad(g_ends[s], (T - KT, 0))
        g, dbs[s], das[s], dheads[s] = _lti_adjoint_any(g, xs[s], ys[s], b[:, s], a[:, s], K, False,
                                                        need_x or s > 0, n_b, n_a)
    if not S:
        return (g if need_x else None), x.new_zeros(R, 0, n_b), x.new_zeros(R, 0, n_a), x.new_zeros(R, 0, K)
    return (g if need_x else None), torch.stack(dbs, 1), torch.stack(das, 1), torch.stack(dheads, 1)


def _sos_adjoint_raw(g, g_ends, x, y, b, a, head, need_x, n_b, n_a, monic, sum_rows):
    """``sos_adjoint``'s results from the composed ops (``_raw_grads``), summed over rows with ``sum_rows``."""
    bn, an = (b, a) if monic else _normalized(b, a)
    dx, db, da, dhead = _sos_adjoint_composed(g, g_ends, x, y, bn, an, head, need_x, n_b, n_a)
    db, da = _raw_grads(b, a, db, da, n_b, n_a, monic)
    if sum_rows:
        db, da = db.sum(0, keepdim=True), da.sum(0, keepdim=True)
    return dx, db, da, dhead


def _sos_adjoint_impl(g: Tensor, g_ends: Tensor, x: Tensor, y: Tensor, b: Tensor, a: Tensor, head: Tensor,
                      need_x: bool, n_b: int, n_a: int, monic: bool = True,
                      sum_rows: bool = False) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The backward of ``(y, ends) = sos(x, b, a, head, n_ends, monic)`` for the output gradients ``g``
    and ``g_ends (S, R, n_ends)``: ``(dx, db [R, S, n_b], da [R, S, n_a], dhead [R, S, K])`` (``dx``
    empty ``(R, 0)`` unless ``need_x``). ``monic=False`` (``a0`` first in ``a``): the raw coefficients'
    gradients, ``da`` with ``a0``'s first (``n_a + 1`` columns when ``n_a > 0``, which needs
    ``n_b = M + 1``); ``sum_rows``: ``db`` and ``da`` summed over the rows, ``[1, S, ...]``. On the kernels,
    biquad-like sections (``1 <= N <= 4``, ``M <= N``) take two launches and one sum (``kernels/sos.py``,
    ``sos_adjoint``: the section inputs recomputed in one pass, then every section's adjoint in one,
    the division by ``a0`` and its gradient in registers); otherwise the composed ops. No autograd of
    its own (double backward composes)."""
    if backend.use_triton("lti", g) and _kernels().sos_adjoint_applies(b, a, monic=monic):
        dx, db, da, dhead = _kernels().sos_adjoint(g, x, b, a, need_x, n_b, n_a, head=head,
                                                   g_ends=g_ends if g_ends.shape[2] else None, monic=monic,
                                                   sum_rows=sum_rows)
    else:
        dx, db, da, dhead = _sos_adjoint_raw(g, g_ends, x, y, b, a, head, need_x, n_b, n_a, monic, sum_rows)
    dx = dx.contiguous() if need_x else g.new_empty(g.shape[0], 0)
    return dx, db.contiguous(), da.contiguous(), dhead.contiguous()


sos_adjoint_op = torch.library.custom_op("ssm_lfilter::sos_adjoint", _sos_adjoint_impl, mutates_args=())


@sos_adjoint_op.register_fake
def _(g, g_ends, x, y, b, a, head, need_x, n_b, n_a, monic=True, sum_rows=False):
    R, T = g.shape
    S, R_out = b.shape[1], 1 if sum_rows else g.shape[0]
    n_da = a_grad_width(n_a, monic)
    return (g.new_empty(R, T if need_x else 0), g.new_empty(R_out, S, n_b), g.new_empty(R_out, S, n_da),
            g.new_empty(R, S, head.shape[2]))


def _sos_backward(ctx, g, g_ends):
    x, b, a, head, y = ctx.saved_tensors
    need_x, need_b, need_a, need_head = ctx.needs_input_grad[:4]
    monic = ctx.monic
    # monic=False: the raw coefficients' gradients (a0's needs db), formed by the fused op itself
    n_b = b.shape[2] if need_b or (need_a and not monic) else 0
    n_a = a.shape[2] - (0 if monic else 1) if need_a else 0
    g = torch.zeros_like(y) if g is None else g
    g_ends = x.new_zeros(b.shape[1], x.shape[0], 0) if g_ends is None else g_ends
    # b and a each one row shared by every row: the gradients are summed over rows
    shared = b.shape[0] == 1 and a.shape[0] == 1 and x.shape[0] > 1
    if torch.is_grad_enabled():  # create_graph=True: composed ops, differentiable again
        dx, db, da, dhead = _sos_adjoint_raw(g, g_ends, x, y, b, a, head, need_x, n_b, n_a, monic, shared)
    else:
        dx, db, da, dhead = sos_adjoint(g, g_ends, x, y, b, a, head, need_x, n_b, n_a, monic, shared)
    if need_a and not monic and n_a == 0:  # sections without poles
        da = _a0_grad_without_poles(db, b, a)
    return ((dx if need_x else None), (_sum_rows_like(db, b) if need_b else None),
            (_sum_rows_like(da, a) if need_a else None), (dhead if need_head else None), None, None)


sos_op.register_autograd(_sos_backward, setup_context=_sos_setup)


# ---------------------------------------------------------------------------------------------- tv
def _tv_impl(u: Tensor, a: Tensor) -> Tensor:
    """Time-varying all-pole ``y[n] = u[n] - sum_k a[n, k-1] y[n-k]`` from rest. ``u (R, T)``,
    ``a (Ra, T, N)`` normalized; ``Ra`` in {1, R}."""
    # above the kernels' order 16 (LPC orders) the torch engine, unless the kernels are forced (an error)
    if backend.use_triton("tv", u) and (_kernels().time_varying_applies(a) or backend.requested() == "triton"):
        return _kernels().time_varying(u, a).contiguous()
    return _tv_engine.allpole_tv(u, a).contiguous()


tv_op = torch.library.custom_op("ssm_lfilter::tv", _tv_impl, mutates_args=())


@tv_op.register_fake
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


def _tv_adjoint_composed(g, a, y, need_a):
    """The backward of ``y = tv(u, a)`` from the ops: ``(du, da [R, T, N] per row or None)``.
    Differentiable again (double backward)."""
    N = a.shape[2]
    # v[n] = g[n] - sum_k conj(a[n+k, k-1]) v[n+k]: in reversed time m, coefficient k is
    # a[T-1-m+k, k-1] = a.flip(1)[m-k, k-1], i.e. column k of the flipped a delayed by k.
    a_rev = a.conj().resolve_conj().flip(1)
    a_adj = torch.stack([_delayed(a_rev[:, :, k - 1], k) for k in range(1, N + 1)], -1) if N else a_rev
    v = tv(g.flip(1), a_adj).flip(1)
    da = None
    if need_a:
        y_past = torch.stack([_delayed(y, k) for k in range(1, N + 1)], -1) if N else a.new_zeros(*y.shape, 0)
        da = -(v[:, :, None] * y_past.conj())
    return v, da


def _tv_adjoint_impl(g: Tensor, a: Tensor, y: Tensor, need_a: bool) -> tuple[Tensor, Tensor]:
    """The backward of ``y = tv(u, a)`` for the output gradient ``g``: ``(du [R, T], da [R, T, N])``, ``da``
    per row (``(R, 0, N)`` unless ``need_a``). On the kernels, real orders ``1 <= N <= 16`` run fused
    (``kernels/time_varying_adjoint.py``: the single pass at orders up to 4, reading ``g``, ``a``, ``y``
    once and writing ``du`` and ``da`` once; the reversed multi-pass kernels above, no flipped or skewed
    copies); otherwise the composed ops. No autograd of its own (double backward composes)."""
    if backend.use_triton("tv", g) and _kernels().tv_adjoint_applies(a):
        du, da = _kernels().time_varying_adjoint(g, a, y, need_a)
    else:
        du, da = _tv_adjoint_composed(g, a, y, need_a)
    return du.contiguous(), (da.contiguous() if need_a else g.new_zeros(g.shape[0], 0, a.shape[2]))


tv_adjoint_op = torch.library.custom_op("ssm_lfilter::tv_adjoint", _tv_adjoint_impl, mutates_args=())


@tv_adjoint_op.register_fake
def _(g, a, y, need_a):
    R, T = g.shape
    return g.new_empty(R, T), g.new_empty(R, T if need_a else 0, a.shape[2])


def _tv_backward(ctx, g):
    a, y = ctx.saved_tensors
    need_a = ctx.needs_input_grad[1]
    if torch.is_grad_enabled():  # create_graph=True: composed ops, differentiable again
        v, da = _tv_adjoint_composed(g, a, y, need_a)
    else:  # one fused op (on the kernels: one pass)
        v, da = tv_adjoint(g, a, y, need_a)
    return v, (_sum_rows_like(da, a) if need_a else None)


tv_op.register_autograd(_tv_backward, setup_context=_tv_setup)


# ------------------------------------------------------------------------------------------ tv_sos
def _tv_fir(w: Tensor, b: Tensor) -> Tensor:
    """``u[n] = sum_k b[n, k] w[n-k]``, ``w (R, T)``, ``b (Rb, T, M+1)``; zero before time 0. Terms
    in the order of ``k``, as the fused kernel adds them."""
    u = b[:, :, 0] * w
    for k in range(1, b.shape[2]):
        u = u + b[:, :, k] * _delayed(w, k)
    return u


def _tv_sos_fused(x: Tensor, b: Tensor, a: Tensor, monic: bool = True) -> bool:
    return backend.use_triton("tv", x) and _kernels().tv_sos_applies(b, a, monic=monic)


def _with_head(u: Tensor, head: Tensor) -> Tensor:
    """``u`` with ``head (R, K)`` added at its first ``K`` samples (entries past ``T`` have no effect)."""
    T, K = u.shape[1], min(head.shape[1], u.shape[1])
    return u + F.pad(head[:, :K], (0, T - K)) if K else u


def _tv_sections(x: Tensor, b: Tensor, a: Tensor, head: Tensor) -> list[Tensor]:
    """The cascade section by section (``tv`` implementation: kernels or engine): every section's
    input, then the output."""
    ws = [x.clone() if b.shape[2] == 0 else x]
    for s in range(b.shape[2]):
        ws.append(_tv_impl(_with_head(_tv_fir(ws[-1], b[:, :, s]), head[:, s]), a[:, :, s]))
    return ws


def _tv_sos_impl(x: Tensor, b: Tensor, a: Tensor, head: Tensor, n_ends: int, monic: bool = True) -> tuple[Tensor, Tensor]:
    """A cascade of time-varying filters: section ``s`` is the FIR ``b[:, :, s]``, plus its head
    ``head[:, s]`` at the first samples (its initial state in this form; ``K = 0``: from rest), then the
    all-pole ``tv`` with ``a[:, :, s]``, on the previous section's output. ``x (R, T)``,
    ``b (Rb, T, S, M+1)``, ``a (Ra, T, S, N)`` normalized, ``Rb, Ra`` in {1, R}, ``head (R, S, K)``.
    Returns ``y`` and ``ends (S, R, n_ends)``, every section's last ``n_ends <= T`` outputs. On the
    kernels, sections with ``N <= 4``, ``M <= min(N, 3)`` run in one launch (``kernels/tv_sos.py``).

    ``monic=False``: ``a (Ra, T, S, N+1)`` with every section's leading coefficients ``a0`` first, ``b``
    not divided by them (the head stays normalized). The kernels divide in registers, so the caller
    passes views of its raw coefficients: no normalized copies to write and read, nor their
    gradients' chain rule in torch; elsewhere they are normalized here."""
    R, T = x.shape
    S = b.shape[2]
    ends = x.new_empty(S, R, n_ends)
    if _tv_sos_fused(x, b, a, monic):
        y = _kernels().tv_sos(x, b, a, head=head, ends=ends if n_ends and S else None, monic=monic)
        return y.contiguous(), ends
    if not monic:
        b, a = _normalized(b, a)
    ws = _tv_sections(x, b, a, head)
    for s in range(S):
        ends[s] = ws[s + 1][:, T - n_ends:]
    return ws[-1].contiguous(), ends


tv_sos_op = torch.library.custom_op("ssm_lfilter::tv_sos", _tv_sos_impl, mutates_args=())


@tv_sos_op.register_fake
def _(x, b, a, head, n_ends, monic=True):
    return x.new_empty(x.shape), x.new_empty(b.shape[2], x.shape[0], n_ends)


def _tv_sos_setup(ctx, inputs, output):
    x, b, a, head, n_ends, monic = inputs
    ctx.save_for_backward(x, b, a, head)
    ctx.monic = monic


def _tv_sos_vjp(g: Tensor, g_ends: Tensor, ws, b: Tensor, a: Tensor, K: int, need_x: bool, need_b: bool,
                need_a: bool, composed: bool):
    """Per-row gradients ``(dx, db [R, T, S, M+1], da [R, T, S, N], dhead [R, S, K])`` (None where not
    needed) of the cascade for the output gradients ``g`` and ``g_ends (S, R, KT)``, from the section
    signals ``ws`` (``ws[s]`` the input of section ``s``, ``ws[S]`` the output), last section first:
    the all-pole adjoint ``v`` (``tv_adjoint``, or its composed, differentiable form) of the section's
    output gradient (with ``g_ends[s]`` added at its last samples), then ``db[n, k] = v[n] conj(w[n-k])``,
    ``dhead = v`` at the first ``K`` samples, and the previous section's output gradient
    ``sum_k conj(b[n+k, k]) v[n+k]``."""
    (R, T), S, M, KT = ws[0].shape, b.shape[2], b.shape[3] - 1, g_ends.shape[2]
    dbs, das, dheads = [], [], []
    for s in reversed(range(S)):
        if KT:
            g = g + F.pad(g_ends[s], (T - KT, 0))
        if composed:
            v, da = _tv_adjoint_composed(g, a[:, :, s], ws[s + 1], need_a)
        else:
            v, da = tv_adjoint(g, a[:, :, s], ws[s + 1], need_a)
        das.append(da)
        dheads.append(F.pad(v[:, :K], (0, max(K - T, 0))))
        if need_b:
            w_conj = ws[s].conj()
            dbs.append(torch.stack([v * _delayed(w_conj, k) for k in range(M + 1)], -1))
        if need_x or s > 0:
            b_conj = b[:, :, s].conj()
            g = b_conj[:, :, 0] * v
            for k in range(1, M + 1):
                g = g + F.pad(b_conj[:, k:, k] * v[:, k:], (0, min(k, T)))  # nothing beyond T
    db = torch.stack(dbs[::-1], 2) if need_b and S else None
    da = torch.stack(das[::-1], 2) if need_a and S else None
    dhead = torch.stack(dheads[::-1], 1) if S else ws[0].new_zeros(R, 0, K)
    return (g if need_x else None), db, da, dhead


def _tv_sos_adjoint_impl(g: Tensor, g_ends: Tensor, x: Tensor, b: Tensor, a: Tensor, head: Tensor, need_x: bool,
                         need_b: bool, need_a: bool, monic: bool = True) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The backward of ``(y, ends) = tv_sos(x, b, a, head, n_ends)`` for the output gradients ``g`` and
    ``g_ends (S, R, n_ends)``, per row: ``(dx [R, T], db [R, T, S, M+1], da [R, T, S, N], dhead [R, S, K])``,
    ``dx``, ``db``, ``da`` with 0 along dim 1 where not needed. On the kernels (sections with ``N <= 4``,
    ``M <= min(N, 3)``), two launches (``kernels/tv_sos.py``, ``tv_sos_adjoint``: the section signals
    recomputed in one, every section's adjoint, coefficient and head gradients in the other);
    otherwise the section signals recomputed section by section, then one ``tv_adjoint`` and a torch
    FIR adjoint a section. ``monic=False``: as for ``tv_sos``, ``da (R, T, S, N+1)`` with ``a0``'s
    gradient first (the kernels form it in the same launch; elsewhere ``_unnormalized_grads``). No
    autograd of its own (double backward composes)."""
    R, T = g.shape
    S, M, N, K = b.shape[2], b.shape[3] - 1, a.shape[3], head.shape[2]
    if S and _tv_sos_fused(g, b, a, monic):
        dx, db, da, dhead = _kernels().tv_sos_adjoint(g, x, b, a, need_x, need_b, need_a, head=head,
                                                      g_ends=g_ends if g_ends.shape[2] else None, monic=monic)
    elif S and not monic:
        bn, an = _normalized(b, a)
        dx, db, da, dhead = _tv_sos_vjp(g, g_ends, _tv_sections(x, bn, an, head), bn, an, K, need_x,
                                        need_b or need_a, need_a, composed=False)
        if need_b or need_a:
            db, da = _unnormalized_grads(b, a, db, da)
    elif S:
        dx, db, da, dhead = _tv_sos_vjp(g, g_ends, _tv_sections(x, b, a, head), b, a, K, need_x, need_b, need_a,
                                        composed=False)
    else:
        dx, db, da, dhead = g.clone(), None, None, g.new_zeros(R, 0, K)
    dx = dx.contiguous() if need_x else g.new_empty(R, 0)
    db = db.contiguous() if need_b and db is not None else g.new_zeros(R, T if need_b else 0, S, M + 1)
    da = da.contiguous() if need_a and da is not None else g.new_zeros(R, T if need_a else 0, S, N)
    return dx, db, da, dhead.contiguous()


tv_sos_adjoint_op = torch.library.custom_op("ssm_lfilter::tv_sos_adjoint", _tv_sos_adjoint_impl, mutates_args=())


@tv_sos_adjoint_op.register_fake
def _(g, g_ends, x, b, a, head, need_x, need_b, need_a, monic=True):
    R, T = g.shape
    S, M, N = b.shape[2], b.shape[3] - 1, a.shape[3]
    return (g.new_empty(R, T if need_x else 0), g.new_empty(R, T if need_b else 0, S, M + 1),
            g.new_empty(R, T if need_a else 0, S, N), g.new_empty(R, S, head.shape[2]))


def _tv_sos_backward(ctx, g, g_ends):
    x, b, a, head = ctx.saved_tensors
    need_x, need_b, need_a, need_head = ctx.needs_input_grad[:4]
    S, K = b.shape[2], head.shape[2]
    g = torch.zeros_like(x) if g is None else g
    g_ends = x.new_zeros(S, x.shape[0], 0) if g_ends is None else g_ends
    if not S:  # no sections: the identity
        return (g, (torch.zeros_like(b) if need_b else None), (torch.zeros_like(a) if need_a else None),
                (torch.zeros_like(head) if need_head else None), None, None)
    if torch.is_grad_enabled():  # create_graph=True: differentiable section outputs and adjoints
        bn, an = (b, a) if ctx.monic else _normalized(b, a)
        ws = [x]
        for s in range(S):
            ws.append(tv_sos(ws[-1], bn[:, :, s : s + 1], an[:, :, s : s + 1], head[:, s : s + 1])[0])
        dx, db, da, dhead = _tv_sos_vjp(g, g_ends, ws, bn, an, K, need_x, need_b or (need_a and not ctx.monic),
                                        need_a, composed=True)
        if not ctx.monic and (need_b or need_a):
            db, da = _unnormalized_grads(b, a, db, da)
    else:
        dx, db, da, dhead = tv_sos_adjoint(g, g_ends, x, b, a, head, need_x, need_b, need_a, ctx.monic)
    return ((dx if need_x else None), (_sum_rows_like(db, b) if need_b else None),
            (_sum_rows_like(da, a) if need_a else None), (dhead if need_head else None), None, None)


tv_sos_op.register_autograd(_tv_sos_backward, setup_context=_tv_sos_setup)


# -------------------------------------------------------------------------------------------- diag
def _diag_impl(a: Tensor, u: Tensor, reverse: bool) -> Tensor:
    """``h[t] = a[t] h[t-1] + u[t]`` from rest (``reverse``: ``h[t] = a[t] h[t+1] + u[t]``).
    ``a (Ra, Ta)`` with ``Ra`` in {1, R} and ``Ta`` in {1, T}; ``u (R, T)``; same dtype."""
    if backend.use_triton("diag", u):
        return _kernels().diagonal(a, u, reverse).contiguous()
    return _diag_engine.diagonal(a, u, reverse).contiguous()


diag_op = torch.library.custom_op("ssm_lfilter::diag", _diag_impl, mutates_args=())


@diag_op.register_fake
def _(a, u, reverse):
    return u.new_empty(u.shape)


def _diag_setup(ctx, inputs, output):
    a, u, reverse = inputs
    ctx.save_for_backward(a, output)
    ctx.reverse = reverse


def _diag_adjoint_composed(a: Tensor, h: Tensor, g: Tensor, reverse: bool, need_da: bool, run):
    """The diag adjoint from building blocks: ``run(a, u, reverse)`` is the recurrence (the ``diag``
    op, differentiable, or the torch engine). Returns ``(lam, da)``, ``da`` None unless ``need_da``.

    ``lam[t] = g[t] + conj(a[t+1]) lam[t+1]`` (forward recurrence), mirrored for reverse, through a
    shifted copy of ``a``; ``da = lam * conj(h_prev)``. A constant ``a`` needs no shift: at the
    boundary it multiplies a zero state. ``conj_physical``, not a lazy ``conj()`` view: inside a custom
    op under torch.compile the conjugate bit of a view was ignored (opcheck caught a wrong ``da``)."""
    T = h.shape[1]
    a_adj = torch.conj_physical(a)
    if a.shape[1] > 1:
        a_adj = F.pad(a_adj[:, :-1], (1, 0)) if reverse else F.pad(a_adj[:, 1:], (0, 1))
    lam = run(a_adj, g, not reverse)
    if not need_da:
        return lam, None
    h_prev = F.pad(h[:, 1:], (0, 1)) if reverse else F.pad(h[:, : T - 1], (1, 0))
    da = lam * torch.conj_physical(h_prev)
    if a.shape[1] == 1:
        da = da.sum(1, keepdim=True)
    return lam, _sum_rows_like(da, a)


def _diag_adjoint_launcher():
    # Looked up on the kernels package at every call, like the other launchers (tests count calls).
    return _kernels().diagonal_adjoint


def _adjoint_dtype(a: Tensor, h: Tensor, g: Tensor) -> torch.dtype:
    return torch.promote_types(torch.promote_types(a.dtype, h.dtype), g.dtype)


def _diag_adjoint_impl(a: Tensor, h: Tensor, g: Tensor, reverse: bool, need_da: bool) -> tuple[Tensor, Tensor]:
    """The backward of ``diag`` fused: ``(lam, da)`` for the output gradient ``g`` of ``h = diag(a, u,
    reverse)``. ``lam[t] = g[t] + conj(a[t+1]) lam[t+1]`` (reverse: ``conj(a[t-1]) lam[t-1]``) is
    ``du``; ``da = lam * conj(h_prev)`` (``h[t-1]``, reverse ``h[t+1]``, zero at the boundary),
    reduced to ``a``'s shape ``(Ra, Ta)``, or an empty tensor when ``need_da`` is False.

    On Triton, ``kernels.diagonal_adjoint``: by default its three passes (``g`` and ``a``, at the shifted
    index in place, read twice, ``h`` once, ``lam`` and ``da`` written once by the last), opt-in its single
    pass (each read or written once); on the torch engine, the composed formula. Not differentiable:
    double backward uses the composed ``diag`` ops instead (``_diag_backward``)."""
    dt = _adjoint_dtype(a, h, g)
    if backend.use_triton("diag", g):
        lam, da = _diag_adjoint_launcher()(a, h, g, reverse, need_da=need_da)
    else:
        lam, da = _diag_adjoint_composed(a.to(dt), h.to(dt), g.to(dt), reverse, need_da, _diag_engine.diagonal)
        if da is None:
            da = g.new_empty(0, dtype=dt)
    return lam.to(dt).contiguous(), da.to(dt).contiguous()


diag_adjoint_op = torch.library.custom_op("ssm_lfilter::diag_adjoint", _diag_adjoint_impl, mutates_args=())


@diag_adjoint_op.register_fake
def _(a, h, g, reverse, need_da):
    dt = _adjoint_dtype(a, h, g)
    return g.new_empty(g.shape, dtype=dt), g.new_empty(a.shape if need_da else (0,), dtype=dt)


def _diag_backward(ctx, g):
    a, h = ctx.saved_tensors
    need_da = ctx.needs_input_grad[0]
    if torch.is_grad_enabled():
        # create_graph=True (double backward): the composed ops are differentiable, the fused one not.
        lam, da = _diag_adjoint_composed(a, h, g, ctx.reverse, need_da, diag)
    else:
        # The fused op (on the kernels: a read in place at the shifted index, da written by the last
        # pass) instead of a shifted copy of a, the reverse recurrence, a shifted copy of h and the
        # product.
        lam, da = diag_adjoint(a, h, g, ctx.reverse, need_da)
        if not need_da:
            da = None
    return da, lam, None


diag_op.register_autograd(_diag_backward, setup_context=_diag_setup)


# ----------------------------------------------------------------------------- eager entry points
# What the rest of the package calls. A call through a ``torch.library.custom_op`` costs tens of
# microseconds of Python before the implementation runs (its autograd wrapper alone runs even without
# grad; pytorch/pytorch#139500, #176592), more than a single-pass kernel takes on a GPU at 32 x 2^20
# samples: in eager mode on plain tensors these entries call the implementation directly, or through an
# ``autograd.Function`` with the op's own setup and backward when a gradient is needed. Anything
# else (``torch.compile`` tracing, fake, meta or subclass tensors, dispatch modes, ``torch.func``
# transforms) goes through the registered op, which ``opcheck`` and the compile tests check.


eager_entries = True  # False: every call goes through the registered ops (benchmarks time both)


def _eager(*args) -> bool:
    """True when a call may skip the dispatcher: eager mode, plain CPU/CUDA tensors, no dispatch mode
    or functorch transform active."""
    if (not eager_entries or torch.compiler.is_compiling() or torch._C._len_torch_dispatch_stack()
            or torch._C._are_functorch_transforms_active()):
        return False
    return all(type(t) in _PLAIN and not t.is_meta for t in args if isinstance(t, Tensor))


_PLAIN = (Tensor, torch.nn.Parameter)  # a Parameter has no tensor-subclass behavior of its own


def _needs_grad(*args) -> bool:
    return torch.is_grad_enabled() and any(isinstance(t, Tensor) and t.requires_grad for t in args)


def _function(name: str, impl, setup, backward) -> type[torch.autograd.Function]:
    """An ``autograd.Function`` from an op's implementation, setup and backward. ``forward`` takes
    ``ctx`` itself: a separate ``setup_context`` makes every ``apply`` bind its arguments through
    ``inspect.signature`` (tens of microseconds); ``torch.func`` transforms take the op instead."""
    def forward(ctx, *args):
        out = impl(*args)
        setup(ctx, args, out)
        return out

    return type(name, (torch.autograd.Function,), {"forward": staticmethod(forward),
                                                   "backward": staticmethod(backward)})


_LtiFunction = _function("_LtiFunction", _lti_impl, _lti_setup, _lti_backward)
_SosFunction = _function("_SosFunction", _sos_impl, _sos_setup, _sos_backward)
_TvFunction = _function("_TvFunction", _tv_impl, _tv_setup, _tv_backward)
_DiagFunction = _function("_DiagFunction", _diag_impl, _diag_setup, _diag_backward)
_TvSosFunction = _function("_TvSosFunction", _tv_sos_impl, _tv_sos_setup, _tv_sos_backward)


def _call(op, function: type[torch.autograd.Function], impl, *args):
    """One eager entry: the registered ``op`` unless the call may skip the dispatcher, else the
    ``autograd.Function`` when a gradient is needed, else the implementation itself."""
    if not _eager(*args):
        return op(*args)
    if _needs_grad(*args):
        return function.apply(*args)
    return impl(*args)


def lti(x: Tensor, b: Tensor, a: Tensor, head: Tensor, reverse: bool = False, monic: bool = True) -> Tensor:
    """``ssm_lfilter::lti`` (see ``_lti_impl``), differentiable."""
    return _call(lti_op, _LtiFunction, _lti_impl, x, b, a, head, reverse, monic)


def sos(x: Tensor, b: Tensor, a: Tensor, head: Tensor, n_ends: int = 0, monic: bool = True) -> tuple[Tensor, Tensor]:
    """``ssm_lfilter::sos`` (see ``_sos_impl``), differentiable."""
    return _call(sos_op, _SosFunction, _sos_impl, x, b, a, head, n_ends, monic)


def tv(u: Tensor, a: Tensor) -> Tensor:
    """``ssm_lfilter::tv`` (see ``_tv_impl``), differentiable."""
    return _call(tv_op, _TvFunction, _tv_impl, u, a)


def tv_sos(x: Tensor, b: Tensor, a: Tensor, head: Tensor, n_ends: int = 0, monic: bool = True) -> tuple[Tensor, Tensor]:
    """``ssm_lfilter::tv_sos`` (see ``_tv_sos_impl``), differentiable."""
    return _call(tv_sos_op, _TvSosFunction, _tv_sos_impl, x, b, a, head, n_ends, monic)


def diag(a: Tensor, u: Tensor, reverse: bool) -> Tensor:
    """``ssm_lfilter::diag`` (see ``_diag_impl``), differentiable."""
    return _call(diag_op, _DiagFunction, _diag_impl, a, u, reverse)


# The fused backward ops have no autograd (double backward takes the composed ops).
def lti_coef_grads(v: Tensor, x: Tensor, y: Tensor, n_b: int, n_a: int, reverse: bool = False):
    """``ssm_lfilter::lti_coef_grads`` (see ``_lti_coef_grads_impl``)."""
    if _eager(v, x, y):
        return _lti_coef_grads_impl(v, x, y, n_b, n_a, reverse)
    return lti_coef_grads_op(v, x, y, n_b, n_a, reverse)


def lti_adjoint(g: Tensor, x: Tensor, y: Tensor, b: Tensor, a: Tensor, K: int, reverse: bool, need_x: bool,
                n_b: int, n_a: int, monic: bool = True, sum_rows: bool = False):
    """``ssm_lfilter::lti_adjoint`` (see ``_lti_adjoint_impl``)."""
    if _eager(g, x, y, b, a):
        return _lti_adjoint_impl(g, x, y, b, a, K, reverse, need_x, n_b, n_a, monic, sum_rows)
    return lti_adjoint_op(g, x, y, b, a, K, reverse, need_x, n_b, n_a, monic, sum_rows)


def sos_adjoint(g: Tensor, g_ends: Tensor, x: Tensor, y: Tensor, b: Tensor, a: Tensor, head: Tensor, need_x: bool,
                n_b: int, n_a: int, monic: bool = True, sum_rows: bool = False):
    """``ssm_lfilter::sos_adjoint`` (see ``_sos_adjoint_impl``)."""
    if _eager(g, g_ends, x, y, b, a, head):
        return _sos_adjoint_impl(g, g_ends, x, y, b, a, head, need_x, n_b, n_a, monic, sum_rows)
    return sos_adjoint_op(g, g_ends, x, y, b, a, head, need_x, n_b, n_a, monic, sum_rows)


def tv_adjoint(g: Tensor, a: Tensor, y: Tensor, need_a: bool):
    """``ssm_lfilter::tv_adjoint`` (see ``_tv_adjoint_impl``)."""
    if _eager(g, a, y):
        return _tv_adjoint_impl(g, a, y, need_a)
    return tv_adjoint_op(g, a, y, need_a)


def tv_sos_adjoint(g: Tensor, g_ends: Tensor, x: Tensor, b: Tensor, a: Tensor, head: Tensor, need_x: bool,
                   need_b: bool, need_a: bool, monic: bool = True):
    """``ssm_lfilter::tv_sos_adjoint`` (see ``_tv_sos_adjoint_impl``)."""
    if _eager(g, g_ends, x, b, a, head):
        return _tv_sos_adjoint_impl(g, g_ends, x, b, a, head, need_x, need_b, need_a, monic)
    return tv_sos_adjoint_op(g, g_ends, x, b, a, head, need_x, need_b, need_a, monic)


def diag_adjoint(a: Tensor, h: Tensor, g: Tensor, reverse: bool, need_da: bool):
    """``ssm_lfilter::diag_adjoint`` (see ``_diag_adjoint_impl``)."""
    if _eager(a, h, g):
        return _diag_adjoint_impl(a, h, g, reverse, need_da)
    return diag_adjoint_op(a, h, g, reverse, need_da)
