"""The filtering functions: scipy.signal semantics on torch tensors, every input differentiable.

This module is glue: argument checks, dtype promotion, axis moves, broadcasting and the scipy state
layouts. The recurrences themselves run in the three ops of ``ssm_lfilter.ops``. Initial states
never enter an op: a transposed-direct-form-II state ``zi`` acts exactly like an extra input
``zi[n]`` added to the FIR output at ``n < K``, and a direct-form-I history acts like a known input
correction at the first samples, so the ops always start from rest.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from . import backend, ops
from ._checks import (
    as_tensor,
    broadcast_batch,
    check_leading_coefficient,
    check_state_shape,
    dtypes,
    flat_rows,
    normalize_axis,
    rows,
    same_device,
    time_last,
    to_dtype,
    unflat_rows,
)

__all__ = ["lfilter", "sosfilt", "time_varying_lfilter", "time_varying_sosfilt", "linear_recurrence"]


def _coefficients(t: Tensor, name: str, min_dims: int = 1) -> None:
    if t.dim() < min_dims or t.shape[-1] < 1:
        raise ValueError(f"{name}: expected at least one coefficient in the last dim, got shape {tuple(t.shape)}")


def _state_shape(time_last: tuple[int, ...], ax: int, K: int) -> tuple[int, ...]:
    """scipy's TDF-II state shape: the output's shape (given time last) with its time axis moved to
    ``ax`` and replaced by the state size ``K``."""
    shape = list(time_last[:-1])
    shape.insert(len(shape) + 1 + ax if ax < 0 else ax, K)
    return tuple(shape)


def _window_sums(last: Tensor, taps: Tensor, K: int) -> Tensor:
    """``out[:, k] = sum_{j=k+1..K} taps[j-1] s[T+k-j]`` for the last ``n <= K`` samples ``last (R, n)``
    and ``taps (Rt, <= K)`` (zero-padded to ``K``): ``(R, K)``."""
    n = last.shape[1]
    windows = F.pad(last, (K - n, K)).unfold(1, K, 1)[:, :K]  # [R, k, m] = s[T-K+k+m], zeros beyond
    rev = F.pad(taps, (0, K - taps.shape[1])).flip(-1)  # taps K .. 1
    return (windows * rev[:, None, :]).sum(-1)


def _tdf2_final_state(x: Tensor, y: Tensor, b: Tensor, a: Tensor, zi: Tensor | None, K: int,
                      a0: Tensor | None = None) -> Tensor:
    """scipy's final TDF-II state from the last ``K`` inputs and outputs (rows ``(R, T)``):
    ``zf[k] = sum_{j=k+1..K} (b_j x[T+k-j] - a_j y[T+k-j]) + zi[T+k]`` (the last term while ``T+k < K``),
    for ``b (Rb, M+1)`` and the poles ``a (Ra, N)`` normalized, or raw with their leading coefficients
    ``a0 (Ra, 1)``: the sums are then divided by ``a0`` (one division of the state, where normalizing
    the coefficients took two, and their backward twice as many operations).

    As ``zf[k] = sum_m c_rev[m] s[k + m]`` for ``c = b`` (``x``) and ``c = a`` (``y``): ``c_rev`` the
    taps ``c_K .. c_1`` (zero-padded to ``K``, as scipy pads them) and ``s`` the last ``K`` samples
    followed by ``K`` zeros, whose windows are views (``unfold``): eleven computing torch operations
    (and a few views), five for a pure FIR, where gathering the coefficients through a lag matrix took
    twenty, each a launch on a GPU and a node of the graph for a backward (a streaming call pays them
    every block). The zeros are on the samples' side, so only scipy's taps ever meet a sample: Hankel
    windows of zero-padded coefficients multiplied an infinite sample by a zero beyond the order (NaN
    where scipy's state is infinite or finite)."""
    R, T = x.shape
    if K == 0:
        return x.new_zeros(R, 0)
    n = min(K, T)
    # the last K samples in time order (zeros before the start), then K zeros: only the last samples
    # are copied (padding the whole signal moved it twice, and its gradient through the pad again)
    zf = _window_sums(x[:, T - n:], b[:, 1:], K)
    if a.shape[1]:  # a pure FIR has no feedback taps at all (scipy convolves)
        zf = zf - _window_sums(y[:, T - n:], a, K)
    if a0 is not None:
        zf = zf / a0
    if zi is not None and T < K:
        zf = zf + F.pad(zi[:, T:], (0, T))
    return zf


def lfilter(b, a, x, axis: int = -1, zi=None):
    r"""Filter ``x`` along ``axis`` with the IIR filter ``b / a``, like ``scipy.signal.lfilter``.

    .. math:: a_0 y[n] = \sum_{k=0}^{M} b_k x[n-k] - \sum_{k=1}^{N} a_k y[n-k]

    Args:
        b: numerator, ``(..., M+1)``. Leading dims are batch dims that broadcast against
            ``x.shape`` without ``axis`` (e.g. per-channel filters ``(C, M+1)`` on ``x (B, C, T)``).
        a: denominator, ``(..., N+1)``; ``a[..., 0]`` normalizes and must be nonzero (a ValueError on
            CPU; CUDA calls never wait for the GPU to check a value, so there a zero gives inf/nan).
        x: signal ``(..., T, ...)`` with time along ``axis``.
        axis: the time axis of ``x``.
        zi: initial state in scipy's transposed-direct-form-II layout: the output's shape with
            ``axis`` replaced by ``K = max(M, N)`` (size-1 dims broadcast), e.g. from
            :func:`ssm_lfilter.lfilter_zi`.

    Returns:
        ``y`` with the broadcast batch shape, or ``(y, zf)`` when ``zi`` is given (``zf`` in
        ``zi``'s layout, ready to pass to the next chunk).

    Orders 0 to 32 and beyond; float32/float64, float16/bfloat16 (float32 inside), complex64/128;
    integer inputs become the default float dtype. CPU tensors run the blockwise torch engine, CUDA
    tensors the Triton kernels. Differentiable in ``b``, ``a``, ``x`` and ``zi``, twice. Unstable
    filters overflow, as they do in scipy.

    Example:
        >>> import torch, ssm_lfilter as sl
        >>> b, a = torch.tensor([0.2, 0.2]), torch.tensor([1.0, -0.6])
        >>> y = sl.lfilter(b, a, torch.ones(2, 8))
        >>> y.shape, round(y[0, -1].item(), 4)
        (torch.Size([2, 8]), 0.9776)
    """
    b, a, x = as_tensor(b, "b"), as_tensor(a, "a"), as_tensor(x, "x")
    zi = None if zi is None else as_tensor(zi, "zi")
    same_device(b=b, a=a, x=x, zi=zi)
    out_dtype, dt = dtypes(b=b, a=a, x=x, zi=zi)
    _coefficients(b, "b")
    _coefficients(a, "a")
    if x.dim() < 1:
        raise ValueError("x: expected at least 1 dim, got a 0-dim tensor")
    ax = normalize_axis(axis, x.dim())
    b, a, x = to_dtype(b, dt), to_dtype(a, dt), to_dtype(x, dt)
    check_leading_coefficient(a, 0, "a")

    xm = time_last(x, ax)
    T = xm.shape[-1]
    batch = broadcast_batch({"x (without axis)": xm.shape[:-1], "b": b.shape[:-1], "a": a.shape[:-1]})
    M, N = b.shape[-1] - 1, a.shape[-1] - 1
    K = max(M, N)
    R = batch.numel()
    xr = flat_rows(xm, batch, (T,))
    # the op divides by a0 itself, so autograd records no division or slice around it (their
    # backward nodes cost more host time than the filter's fused backward on a GPU); zi enters as
    # its head, which the op adds to the normalized recurrence
    br, ar = rows(b, batch, (M + 1,)), rows(a, batch, (N + 1,))
    if zi is None:
        y = ops.lti(xr, br, ar, xr.new_zeros(R, 0), monic=False)
        return to_dtype(unflat_rows(y, batch, ax), out_dtype)

    check_state_shape(zi, _state_shape((*batch, T), ax, K), ax)
    zr = zi.to(dt).movedim(ax, -1).expand(*batch, K).reshape(R, K)
    y = ops.lti(xr, br, ar, zr, monic=False)
    out = to_dtype(unflat_rows(y, batch, ax), out_dtype)
    zf = _tdf2_final_state(xr, y, br, ar[:, 1:], zr, K, a0=ar[:, :1])
    return out, zf.reshape(*batch, K).movedim(-1, ax).to(out_dtype)


def _check_sos(sos: Tensor, name: str = "sos", time_axis: bool = False) -> None:
    if sos.dim() < 2 or sos.shape[-1] != 6:
        layout = "(..., T, n_sections, 6)" if time_axis else "(..., n_sections, 6)"
        raise ValueError(f"{name}: expected shape {layout}, got {tuple(sos.shape)}")


def _section_states(zi: Tensor | None, expected: tuple[int, ...], state_dim: int) -> None:
    """Check a cascade's ``zi`` against its full expected shape ``(n_sections, ...)`` up front, so
    the error names the whole shape rather than one section's."""
    if zi is None:
        return
    if zi.dim() != len(expected) or zi.shape[0] != expected[0]:
        raise ValueError(f"zi: expected shape {expected}, got {tuple(zi.shape)}")
    check_state_shape(zi, expected, state_dim)


def _cascade_shape(sos: Tensor, x: Tensor, ax: int, time_axis: bool) -> torch.Size:
    """The output shape of a cascade on ``x``, time last."""
    timed = time_axis and sos.dim() >= 3 and sos.shape[-3] == x.shape[ax]
    lead = sos.shape[:-3] if timed else sos.shape[:-2]
    xm_batch = x.movedim(ax, -1).shape[:-1]
    try:
        batch = broadcast_batch({"x (without axis)": xm_batch, "sos": lead})
    except ValueError as e:
        if time_axis and sos.dim() >= 3 and not timed:  # per-sample sections of the wrong length?
            raise ValueError(f"{e} (sos's dim -3 is its time axis only when its size is x's length "
                             f"T={x.shape[ax]}; here it is read as a batch dim)") from None
        raise
    return torch.Size((*batch, x.shape[ax]))


def _cascade(section_filter, sos: Tensor, x: Tensor, axis: int, zi: Tensor | None, dt, out_dtype):
    """Run ``section_filter(b, a, y, axis[, zi])`` section by section in the compute dtype ``dt``
    (so half precision is not rounded between sections); stack the sections' final states."""
    y, zfs = x.to(dt), []
    for s in range(sos.shape[-2]):
        section = sos[..., s, :].to(dt)
        if zi is None:
            y = section_filter(section[..., :3], section[..., 3:], y, axis)
        else:
            y, zf = section_filter(section[..., :3], section[..., 3:], y, axis, zi[s].to(dt))
            zfs.append(zf)
    y = y.to(out_dtype)
    if zi is None:
        return y
    return y, torch.stack(zfs, 0).to(out_dtype)


def sosfilt(sos, x, axis: int = -1, zi=None):
    r"""Filter ``x`` with a cascade of second-order sections, like ``scipy.signal.sosfilt``.

    Each row ``[b0, b1, b2, 1, a1, a2]`` of ``sos`` is a biquad
    ``y[n] = b0 x[n] + b1 x[n-1] + b2 x[n-2] - a1 y[n-1] - a2 y[n-2]``; the sections run in order.

    Args:
        sos: ``(..., n_sections, 6)``; leading dims broadcast against ``x`` without ``axis``.
            scipy requires ``sos[..., 3] == 1``; here each section is normalized by its
            ``sos[..., 3]`` (nonzero) instead, so the gradient with respect to it exists.
        x: signal with time along ``axis``.
        zi: ``(n_sections, ...)`` where ``...`` is the output's shape with ``axis`` replaced by 2
            (scipy's layout, e.g. from :func:`ssm_lfilter.sosfilt_zi`).

    Returns:
        ``y``, or ``(y, zf)`` when ``zi`` is given. Same dtypes, devices and autograd as
        :func:`lfilter`; the cascade is computed in float32 or wider throughout. On the kernels
        (CUDA) every section runs in one launch, with or without ``zi`` (the backward in two); on
        the torch engine in one blockwise pass when no gradient is needed.

    Example:
        >>> import torch, ssm_lfilter as sl
        >>> sos = torch.tensor([[0.1, 0.2, 0.1, 1.0, -0.9, 0.3], [1.0, 0.0, -1.0, 1.0, 0.0, 0.25]])
        >>> sl.sosfilt(sos, torch.randn(3, 100)).shape
        torch.Size([3, 100])
    """
    sos, x = as_tensor(sos, "sos"), as_tensor(x, "x")
    zi = None if zi is None else as_tensor(zi, "zi")
    same_device(sos=sos, x=x, zi=zi)
    out_dtype, dt = dtypes(sos=sos, x=x, zi=zi)
    _check_sos(sos)
    n = sos.shape[-2]
    if x.dim() < 1:
        raise ValueError("x: expected at least 1 dim, got a 0-dim tensor")
    ax = normalize_axis(axis, x.dim())
    if zi is not None:
        out_shape = _cascade_shape(sos, x, ax, time_axis=False)
        _section_states(zi, (n, *_state_shape(out_shape, ax, 2)), ax)
        if n == 0:  # no sections: the identity, and no state to carry
            return sosfilt(sos, x, axis).to(out_dtype), x.new_zeros((0, *_state_shape(out_shape, ax, 2)),
                                                                   dtype=out_dtype)
    check_leading_coefficient(sos, 3, "sos")
    sos, xm = to_dtype(sos, dt), time_last(to_dtype(x, dt), ax)
    T = xm.shape[-1]
    batch = broadcast_batch({"x (without axis)": xm.shape[:-1], "sos": sos.shape[:-2]})
    R = batch.numel()
    xr = flat_rows(xm, batch, (T,))
    if zi is None and backend.use_triton("lti", x):
        # the op divides by each section's a0 itself (as lfilter's lti: no division recorded for
        # autograd around the op), on b and a split from sos as _tv_cascade does (one cat in the
        # backward, not two slices' zero-filled gradients added)
        bs, as_ = torch.split(sos, 3, -1)
        y, _ = ops.sos(xr, rows(bs, batch, (n, 3)), rows(as_, batch, (n, 3)), xr.new_zeros(R, n, 0), 0, monic=False)
        return to_dtype(unflat_rows(y, batch, ax), out_dtype)
    a0 = sos[..., 3:4]
    br = rows(sos[..., :3] / a0, batch, (n, 3))
    ar = rows(sos[..., 4:] / a0, batch, (n, 2))
    zr = None if zi is None else zi.to(dt).movedim(ax, -1).expand(n, *batch, 2).reshape(n, R, 2)
    if backend.use_triton("lti", x) or not ops._needs_grad(sos, x, zi):
        # The whole cascade is one op: on the kernels one pass over memory, on the torch engine one
        # blockwise pass for all sections (engine/cascade.py). Each section's zi enters as its head,
        # and every section's last two outputs come back for the final states.
        k = 0 if zi is None else min(T, 2)
        y, ends = ops.sos(xr, br, ar, xr.new_zeros(R, n, 0) if zr is None else zr.transpose(0, 1), k)
        out = to_dtype(unflat_rows(y, batch, ax), out_dtype)
        if zi is None:
            return out
        return out, _sos_final_states(_section_inputs(xr, ends), ends, br, ar, zr, batch, ax, out_dtype)
    # With a gradient to compute, section by section on the torch engine: its autograd keeps the
    # section outputs instead of recomputing them (the fused cascade's backward would, and its every
    # section's outputs took longer than the sections one by one beyond a few thousand samples);
    # each section one lti op on the rows normalized above (not a whole lfilter call: its checks
    # and glue cost every section host time).
    y, ins, outs = xr, [], []
    for s in range(n):
        y_next = ops.lti(y, br[:, s], ar[:, s], xr.new_zeros(R, 0) if zr is None else zr[s])
        ins.append(y[:, -2:])
        outs.append(y_next[:, -2:])
        y = y_next
    out = to_dtype(unflat_rows(y, batch, ax), out_dtype)
    if zi is None:
        return out
    return out, _sos_final_states(torch.stack(ins), torch.stack(outs), br, ar, zr, batch, ax, out_dtype)


def _section_inputs(xr: Tensor, ends: Tensor) -> Tensor:
    """Every section's last ``k`` inputs ``(n, R, k)`` from a cascade's ``ends``, its sections' last
    ``k`` outputs: section ``s``'s input is section ``s-1``'s output, section 0's is ``xr (R, T)``."""
    k = ends.shape[-1]
    return torch.cat([xr[None, :, xr.shape[1] - k:], ends[:-1]]) if ends.shape[0] else ends


def _sos_final_states(ins: Tensor, outs: Tensor, br: Tensor, ar: Tensor, zr: Tensor, batch, ax: int, out_dtype):
    """Every section's final TDF-II state in one batched computation from the sections' last
    ``k = min(T, 2)`` inputs and outputs (``ins``, ``outs``: ``(n, R, k)``), in ``zi``'s layout."""
    n, R, k = ins.shape
    zf = _tdf2_final_state(ins.reshape(n * R, k), outs.reshape(n * R, k),
                           br.expand(R, n, 3).transpose(0, 1).reshape(n * R, 3),
                           ar.expand(R, n, 2).transpose(0, 1).reshape(n * R, 2), zr.reshape(n * R, 2), 2)
    return zf.reshape(n, *batch, 2).movedim(-1, ax).to(out_dtype)


def time_varying_lfilter(b, a, x, axis: int = -1, zi=None):
    r"""Filter ``x`` with coefficients that change every sample (direct form I).

    .. math:: a[n,0]\, y[n] = \sum_{k=0}^{M} b[n,k]\, x[n-k] - \sum_{k=1}^{N} a[n,k]\, y[n-k]

    Coefficients are indexed by output time ``n``.

    Args:
        b: ``(..., T, M+1)`` (time-varying) or ``(..., M+1)`` (constant). A dim ``-2`` of size ``T``
            is read as the time axis; other leading dims broadcast against ``x`` without ``axis``.
        a: ``(..., T, N+1)`` or ``(..., N+1)``; ``a[..., 0]`` must be nonzero (checked as in
            :func:`lfilter`).
        x: signal with time along ``axis``.
        zi: ``(..., M+N)``: the history ``[x[-1], ..., x[-M], y[-1], ..., y[-N]]``, newest first.

    Returns:
        ``y``, or ``(y, zf)`` when ``zi`` is given, ``zf`` in the same layout. Streaming a signal in
        chunks and passing each ``zf`` on gives exactly the result of one call on the whole signal.

    Same dtypes, devices and autograd as :func:`lfilter` (complex runs on the torch engine). On the
    kernels, orders ``N <= 4``, ``M <= min(N, 3)`` (per-sample or constant ``b``, from rest or with
    ``zi``) run the FIR, the division by ``a[n, 0]`` and the recurrence in one launch (the backward in
    two); per-sample ``b`` of other orders from rest is one op of sections too.

    Example:
        >>> import torch, ssm_lfilter as sl
        >>> T = 6
        >>> a = torch.stack([torch.ones(T), -torch.linspace(0.1, 0.9, T)], -1)  # (T, 2)
        >>> y = sl.time_varying_lfilter(torch.ones(1), a, torch.ones(T))
        >>> y.shape
        torch.Size([6])
    """
    b, a, x = as_tensor(b, "b"), as_tensor(a, "a"), as_tensor(x, "x")
    zi = None if zi is None else as_tensor(zi, "zi")
    same_device(b=b, a=a, x=x, zi=zi)
    out_dtype, dt = dtypes(b=b, a=a, x=x, zi=zi)
    _coefficients(b, "b")
    _coefficients(a, "a")
    if x.dim() < 1:
        raise ValueError("x: expected at least 1 dim, got a 0-dim tensor")
    ax = normalize_axis(axis, x.dim())
    b, a, x = to_dtype(b, dt), to_dtype(a, dt), to_dtype(x, dt)
    xm = time_last(x, ax)
    T = xm.shape[-1]
    bt = b if b.dim() >= 2 and b.shape[-2] == T else b.unsqueeze(-2)
    at = a if a.dim() >= 2 and a.shape[-2] == T else a.unsqueeze(-2)
    check_leading_coefficient(at, 0, "a")
    batch = broadcast_batch({"x (without axis)": xm.shape[:-1], "b": bt.shape[:-2], "a": at.shape[:-2]})
    M, N = bt.shape[-1] - 1, at.shape[-1] - 1
    R = batch.numel()
    a0 = at[..., :1]
    xr = flat_rows(xm, batch, (T,))
    const_b = bt.shape[-2] == 1
    zr = None if zi is None else _tv_states(zi, dt, batch, M + N)
    tv_kernels = N and not dt.is_complex and backend.use_triton("tv", x)
    if tv_kernels and ((zi is None and not const_b) or (N <= 4 and M <= min(N, 3))):
        # On the kernels: the FIR and the recurrence in one op (a cascade of one section, one launch,
        # where the FIR below moves the signal 2(M+1) times before the kernel). The raw coefficients go
        # in as views (stride 0 in time where constant): the kernel divides by a[n, 0] in registers, where
        # normalized copies of b and a (and their gradients' chain rule) took ~12 passes over the
        # coefficients in torch, more memory traffic than the kernel's own at order 2. With zi the
        # history enters as the section's head, and the final state comes from the last outputs
        # (the op's ends) and inputs.
        br = rows(bt, batch, tuple(bt.shape[-2:])).expand(-1, T, M + 1)  # (Rb, T, M+1)
        ar = rows(at, batch, tuple(at.shape[-2:])).expand(-1, T, N + 1)  # (Ra, T, N+1)
        head, n_ends = xr.new_zeros(R, 0), 0
        if zr is not None:
            head, n_ends = _tv_head(zr, br, ar, M, N, T), min(N, T)
        y, ends = ops.tv_sos(xr, br[:, :, None], ar[:, :, None], head[:, None], n_ends, False)
        out = to_dtype(unflat_rows(y, batch, ax), out_dtype)
        if zr is None:
            return out
        return out, _tv_final_state(zr, xr, ends[0], M, N).reshape(*batch, M + N).to(out_dtype)
    an = at[..., 1:] / a0
    ar = rows(an, batch, tuple(an.shape[-2:]))  # (Ra, T or 1, N)

    if zr is None:
        zr = xr.new_zeros(R, M + N)
    x_hist = zr[:, :M].flip(1)  # x[-M], ..., x[-1]
    y_hist = zr[:, M:]  # y[-1], ..., y[-N]

    # FIR over the input with its history in front: u[n] = sum_k b[n,k] x[n-k] / a[n,0].
    xe = torch.cat([x_hist, xr], 1) if zi is not None or not const_b else None
    if const_b:
        # constant b: one pass of the LTI op (an FIR: no poles), the history entering as its head
        # (head[n] = sum_{k>n} b_k x[n-k]), then the division by a time-varying a[n, 0]; the torch
        # sum below moves the signal 2(M+1) times
        const_a0 = a0.shape[-2] == 1
        bc = rows((bt / a0 if const_a0 else bt)[..., 0, :], batch, (M + 1,))  # (Rb, M+1)
        head = xr.new_zeros(R, 0)
        if zi is not None and M:
            head = torch.stack([sum(bc[:, k] * x_hist[:, M + n - k] for k in range(n + 1, M + 1))
                                for n in range(M)], 1)
        u = ops.lti(xr, bc, xr.new_zeros(1, 0), head)
        if not const_a0:
            u = u / rows(a0[..., 0], batch, (T,))
    else:
        bn = bt / a0
        br = rows(bn, batch, tuple(bn.shape[-2:]))  # (Rb, T, M+1)
        u = sum(br[:, :, k] * xe[:, M - k : M - k + T] for k in range(M + 1))
    # The known past outputs enter the first N samples like an input: -sum_{k>n} a[n,k] y[n-k].
    n0 = min(N, T)
    if n0 and zi is not None:
        a_head = ar[:, :n0] if ar.shape[1] > 1 else ar.expand(-1, n0, -1)
        corr = torch.stack(
            [sum(a_head[:, n, k - 1] * y_hist[:, k - n - 1] for k in range(n + 1, N + 1)) for n in range(n0)], 1
        )
        u = torch.cat([u[:, :n0] - corr, u[:, n0:]], 1)
    y = ops.tv(u, ar.expand(ar.shape[0], T, N)) if N else u
    out = to_dtype(unflat_rows(y, batch, ax), out_dtype)
    if zi is None:
        return out
    return out, _tv_final_state(zr, xr, y[:, T - min(N, T):], M, N).reshape(*batch, M + N).to(out_dtype)


def _tv_states(zi: Tensor, dt, batch: torch.Size, K: int) -> Tensor:
    """``time_varying_lfilter``'s ``zi (..., M+N)`` as rows ``(R, M+N)``, or a ValueError with the shapes."""
    try:
        zr = zi.to(dt).expand(*batch, K).reshape(batch.numel(), K)
    except RuntimeError:
        zr = None
    if zr is None or zi.shape[-1] != K:
        raise ValueError(f"zi: expected shape {(*batch, K)}, got {tuple(zi.shape)}")
    return zr


def _tv_head(zr: Tensor, b: Tensor, a: Tensor, M: int, N: int, T: int) -> Tensor:
    """What the history ``zr = [x[-1] .. x[-M], y[-1] .. y[-N]]`` adds to the first ``min(max(M, N), T)``
    samples of a time-varying section, normalized like its input: ``(sum_{k>n} b[n,k] x[n-k] -
    sum_{k>n} a[n,k] y[n-k]) / a[n,0]``. ``b (Rb, T, M+1)``, ``a (Ra, T, N+1)`` raw; ``(R, K)``."""
    K = min(max(M, N), T)
    x_old, y_old = zr[:, :M], zr[:, M:]  # x[-1-j], y[-1-j] at j
    cols = []
    for n in range(K):
        acc = zr.new_zeros(zr.shape[0])
        for k in range(n + 1, M + 1):
            acc = acc + b[:, n, k] * x_old[:, k - n - 1]
        for k in range(n + 1, N + 1):
            acc = acc - a[:, n, k] * y_old[:, k - n - 1]
        cols.append(acc / a[:, n, 0])
    return torch.stack(cols, 1) if cols else zr.new_zeros(zr.shape[0], 0)


def _tv_final_state(zr: Tensor, x: Tensor, y_last: Tensor, M: int, N: int) -> Tensor:
    """The final history ``[x[T-1] .. x[T-M], y[T-1] .. y[T-N]]`` (newest first) from the initial one
    ``zr``, the signal's last inputs and ``y_last``, its last ``min(N, T)`` outputs: only the tails
    are copied, never the signal."""
    T = x.shape[1]
    xs = torch.cat([zr[:, :M].flip(1), x[:, T - min(M, T):]], 1)  # oldest first
    ys = torch.cat([zr[:, M:].flip(1), y_last], 1)
    return torch.cat([xs.flip(1)[:, :M], ys.flip(1)[:, :N]], 1)


def time_varying_sosfilt(sos, x, axis: int = -1, zi=None):
    r"""A cascade of time-varying biquads; each section is a :func:`time_varying_lfilter` of order 2.

    On the kernels (CUDA), all sections run in one launch that reads ``x`` once and writes ``y`` once
    (the backward in two), with or without ``zi``; on CPU, section by section.

    Args:
        sos: ``(..., T, n_sections, 6)`` (or ``(..., n_sections, 6)`` for constant sections): per
            sample ``[b0, b1, b2, a0, a1, a2]``, each section divided by its ``a0`` (nonzero). A dim
            ``-3`` of size ``T`` is read as the time axis, any other size as a batch dim (so per-sample
            sections of the wrong length are a batch: check ``sos.shape[-3] == T``); other leading
            dims broadcast against ``x`` without ``axis``.
        x: signal with time along ``axis``.
        zi: ``(n_sections, ..., 4)``: per section ``[x[-1], x[-2], y[-1], y[-2]]``.

    Returns:
        ``y``, or ``(y, zf)`` when ``zi`` is given. Chunked streaming with ``zf`` equals one call.

    Example:
        >>> import torch, ssm_lfilter as sl
        >>> T = 50
        >>> sos = torch.tensor([0.2, 0.4, 0.2, 1.0, -0.5, 0.2]).repeat(T, 2, 1)  # (T, 2 sections, 6)
        >>> sl.time_varying_sosfilt(sos, torch.randn(4, T)).shape
        torch.Size([4, 50])
    """
    sos, x = as_tensor(sos, "sos"), as_tensor(x, "x")
    zi = None if zi is None else as_tensor(zi, "zi")
    same_device(sos=sos, x=x, zi=zi)
    out_dtype, dt = dtypes(sos=sos, x=x, zi=zi)
    _check_sos(sos, time_axis=True)
    n = sos.shape[-2]
    if x.dim() < 1:
        raise ValueError("x: expected at least 1 dim, got a 0-dim tensor")
    ax = normalize_axis(axis, x.dim())
    # checked here, in the user's terms (sos), for every path: the section-by-section one would
    # otherwise report them as time_varying_lfilter's a and b
    out_shape = _cascade_shape(sos, x, ax, time_axis=True)
    check_leading_coefficient(sos, 3, "sos")
    if zi is not None:
        _section_states(zi, (n, *out_shape[:-1], 4), -1)
        if n == 0:  # no sections: the identity, and no state to carry
            return time_varying_sosfilt(sos, x, axis).to(out_dtype), x.new_zeros((0, *out_shape[:-1], 4),
                                                                                dtype=out_dtype)
    if not dt.is_complex and x.shape[ax] and backend.use_triton("tv", x):
        # on the kernels the whole cascade is one op (its forward one launch)
        return _tv_cascade(sos, x, ax, dt, out_dtype, zi)
    return _cascade(time_varying_lfilter, sos, x, axis, zi, dt, out_dtype)


def _tv_cascade(sos: Tensor, x: Tensor, ax: int, dt, out_dtype, zi: Tensor | None):
    """``time_varying_sosfilt`` as one ``tv_sos`` op (constant sections from rest: ``sosfilt``'s op).
    A section's history ``zi[s] = [x[-1], x[-2], y[-1], y[-2]]`` enters as its head: what the history
    adds to its first two samples, ``sum_{k>n} b[n,k] x[n-k] - sum_{k>n} a[n,k] y[n-k]``; the final
    states come from every section's last two outputs. ``time_varying_sosfilt`` has checked the
    arguments (``a0`` and the shapes included)."""
    T = x.shape[ax]
    timed = sos.dim() >= 3 and sos.shape[-3] == T
    if not timed and zi is None:
        return sosfilt(sos, x, ax)
    sos, xm = to_dtype(sos, dt), time_last(to_dtype(x, dt), ax)
    n = sos.shape[-2]
    # b and a are views of the raw sections, a with a0 first (the kernel reads them strided and divides
    # by a0 in registers: no normalized (..., T, n, 6) copy, nor its gradient's chain rule in torch).
    # Constant sections are expanded in time with stride 0.
    sr = sos if timed else sos.unsqueeze(-3).expand(*sos.shape[:-2], T, n, 6)
    batch = broadcast_batch({"x (without axis)": xm.shape[:-1], "sos": sr.shape[:-3]})
    # split, not two slices: the gradient is then one cat of db and da, where two slices' backwards
    # zero-filled a (..., T, n, 6) tensor each and added them
    bs, as_ = torch.split(sr, 3, -1)
    br = rows(bs, batch, (T, n, 3))
    ar = rows(as_, batch, (T, n, 3))
    R = batch.numel()
    xr = flat_rows(xm, batch, (T,))
    if zi is None:
        y, _ = ops.tv_sos(xr, br, ar, xr.new_zeros(R, n, 0), 0, False)
        return to_dtype(unflat_rows(y, batch, ax), out_dtype)
    x1, x2, y1, y2 = zi.to(dt).expand(n, *batch, 4).reshape(n, R, 4).unbind(-1)  # each (n, R)
    # the heads (normalized, as the kernel adds them) from the sections at times 0 and 1
    lead = ar[:, : min(T, 2), :, :1]
    bn, an = br[:, : min(T, 2)] / lead, ar[:, : min(T, 2), :, 1:] / lead
    b0, a0 = bn[:, 0].transpose(0, 1), an[:, 0].transpose(0, 1)  # (n, Rb, 3), (n, Ra, 2): time 0
    heads = [b0[..., 1] * x1 + b0[..., 2] * x2 - a0[..., 0] * y1 - a0[..., 1] * y2]
    if T > 1:
        b1, a1 = bn[:, 1].transpose(0, 1), an[:, 1].transpose(0, 1)
        heads.append(b1[..., 2] * x1 - a1[..., 1] * y1)
    k = len(heads)
    y, ends = ops.tv_sos(xr, br, ar, torch.stack(heads, -1).transpose(0, 1), k, False)
    ins = torch.cat([x2[..., None], x1[..., None], _section_inputs(xr, ends)], -1)  # histories in front (T < 2)
    outs = torch.cat([y2[..., None], y1[..., None], ends], -1)
    zf = torch.stack([ins[..., -1], ins[..., -2], outs[..., -1], outs[..., -2]], -1)
    return to_dtype(unflat_rows(y, batch, ax), out_dtype), zf.reshape(n, *batch, 4).to(out_dtype)


def linear_recurrence(a, u, h0=None, reverse: bool = False, dim: int = -1):
    r"""The diagonal state-space primitive: ``h[t] = a[t] h[t-1] + u[t]`` along ``dim``.

    With ``reverse=True``: ``h[t] = a[t] h[t+1] + u[t]``, starting from the end.

    Args:
        a: decays, broadcasting against ``u`` (size 1 along ``dim`` for a constant per channel).
        u: inputs ``(..., T)`` (time along ``dim``).
        h0: initial state ``h[-1]`` (``h[T]`` when reversed), broadcasting against ``u``'s shape
            without ``dim``; zero when omitted.
        reverse: run from the end of the sequence.
        dim: the time dim.

    Returns:
        ``h`` with the broadcast shape of ``a`` and ``u``. Its last entry along ``dim`` (first when
        reversed) is the state to pass on as ``h0`` when streaming.

    Real or complex (modal filters, LRU/S4D-style layers); differentiable in ``a``, ``u`` and
    ``h0`` (complex gradients follow PyTorch's conjugate convention), twice.

    Example:
        >>> import torch, ssm_lfilter as sl
        >>> sl.linear_recurrence(torch.tensor(0.5), torch.ones(4))
        tensor([1.0000, 1.5000, 1.7500, 1.8750])
    """
    a, u = as_tensor(a, "a"), as_tensor(u, "u")
    h0 = None if h0 is None else as_tensor(h0, "h0")
    same_device(a=a, u=u, h0=h0)
    out_dtype, dt = dtypes(a=a, u=u, h0=h0)
    full = broadcast_batch({"a": a.shape, "u": u.shape})
    if len(full) == 0:
        raise ValueError("u: expected at least 1 dim (time), got a 0-dim tensor")
    d = normalize_axis(dim, len(full), "dim")
    a = a.to(dt).reshape((1,) * (len(full) - a.dim()) + tuple(a.shape)).movedim(d, -1)
    u = to_dtype(u, dt)
    um = time_last(u if u.shape == full else u.expand(full), d)
    batch, T = um.shape[:-1], um.shape[-1]
    R = batch.numel()
    ar = rows(a, batch, (a.shape[-1],))
    ur = flat_rows(um, batch, (T,))
    if h0 is not None:
        try:
            h0r = h0.to(dt).expand(batch).reshape(R)
        except RuntimeError:
            raise ValueError(f"h0: expected a shape that broadcasts to {tuple(batch)}, got {tuple(h0.shape)}") from None
        if T:
            t0 = T - 1 if reverse else 0
            kick = ur[:, t0] + ar[:, t0 if ar.shape[1] > 1 else 0] * h0r
            ur = torch.cat([ur[:, :t0], kick[:, None], ur[:, t0 + 1 :]], 1)
    h = ops.diag(ar, ur, reverse)
    return to_dtype(unflat_rows(h, batch, d), out_dtype)
