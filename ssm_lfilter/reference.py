"""Sequential reference implementations: the oracle the tests trust.

These are plain loops over time, one sample after another, written in a different form from the fast
paths (transposed direct form II here, where the engine uses direct form I and blockwise scans).
They are slow by design: use them on short signals only. Every function works on the last axis,
with rows as leading dims, and follows scipy's conventions (``a[..., 0]`` normalizes).
"""
from __future__ import annotations

import torch

__all__ = ["lfilter", "lfilter_extended", "sosfilt", "time_varying_lfilter", "time_varying_sosfilt",
           "linear_recurrence"]


def lfilter(b: torch.Tensor, a: torch.Tensor, x: torch.Tensor, zi: torch.Tensor | None = None):
    """Transposed-direct-form-II loop. ``b (..., M+1)``, ``a (..., N+1)`` broadcast against
    ``x (..., T)``; ``zi (..., K)`` with ``K = max(M, N)``. Returns ``(y, zf)``."""
    K = max(b.shape[-1], a.shape[-1]) - 1
    dtype = torch.promote_types(torch.promote_types(b.dtype, a.dtype), x.dtype)
    b = torch.nn.functional.pad(b.to(dtype), (0, K + 1 - b.shape[-1]))
    a = torch.nn.functional.pad(a.to(dtype), (0, K + 1 - a.shape[-1]))
    b = b / a[..., :1]
    a = a / a[..., :1]
    batch = torch.broadcast_shapes(b.shape[:-1], a.shape[:-1], x.shape[:-1])
    x = x.to(dtype).expand(*batch, x.shape[-1])
    z = [torch.zeros(batch, dtype=dtype, device=x.device) for _ in range(K)]
    if zi is not None:
        zi = zi.to(dtype).expand(*batch, K)
        z = [zi[..., k].clone() for k in range(K)]
    ys = []
    for n in range(x.shape[-1]):
        xn = x[..., n]
        yn = b[..., 0] * xn + (z[0] if K else 0)
        for k in range(K):
            nxt = z[k + 1] if k + 1 < K else 0
            z[k] = b[..., k + 1] * xn + nxt - a[..., k + 1] * yn
        ys.append(yn)
    y = torch.stack(ys, -1) if ys else x.new_zeros(*batch, 0)
    zf = torch.stack(z, -1) if K else x.new_zeros(*batch, 0)
    return y, zf


def lfilter_extended(b, a, x):
    """``lfilter``'s loop from rest in numpy's extended precision (``np.longdouble``: 64-bit mantissas
    on x86, 11 more bits than float64), one 1-D signal, returned in float64: the oracle for float64
    accuracy, where scipy's own float64 loop loses 1e-10 to 1e-8 on direct forms with clustered
    poles (``tests/test_ill_conditioned.py``, ``benchmarks/clustered_poles.py``)."""
    import numpy as np

    b, a = np.asarray(b, np.longdouble), np.asarray(a, np.longdouble)
    b, a = b / a[0], a / a[0]
    K = max(len(a), len(b))
    b, a = np.pad(b, (0, K - len(b))), np.pad(a, (0, K - len(a)))
    z = np.zeros(K - 1, np.longdouble)
    y = np.empty(len(x), np.longdouble)
    for n, xn in enumerate(np.asarray(x, np.longdouble)):
        y[n] = b[0] * xn + (z[0] if K > 1 else 0)
        if K > 1:
            z[:-1] = z[1:] + b[1:-1] * xn - a[1:-1] * y[n]
            z[-1] = b[-1] * xn - a[-1] * y[n]
    return y.astype(np.float64)


def sosfilt(sos: torch.Tensor, x: torch.Tensor, zi: torch.Tensor | None = None):
    """Cascade of biquads. ``sos (n_sections, 6)`` (or ``(..., n_sections, 6)``), ``zi (n_sections, ..., 2)``."""
    zfs = []
    y = x
    for s in range(sos.shape[-2]):
        y, zf = lfilter(sos[..., s, :3], sos[..., s, 3:], y, None if zi is None else zi[s])
        zfs.append(zf)
    return y, torch.stack(zfs, 0)


def time_varying_lfilter(b: torch.Tensor, a: torch.Tensor, x: torch.Tensor, zi: torch.Tensor | None = None):
    """Direct form I with per-sample coefficients, indexed by output time:
    ``a[n,0] y[n] = sum_k b[n,k] x[n-k] - sum_{k>=1} a[n,k] y[n-k]``.

    ``b (..., T, M+1)``, ``a (..., T, N+1)``, ``x (..., T)``; ``zi (..., M+N)`` holds
    ``[x[-1], ..., x[-M], y[-1], ..., y[-N]]``. Returns ``(y, zf)`` in the same layout.
    """
    M, N = b.shape[-1] - 1, a.shape[-1] - 1
    T = x.shape[-1]
    dtype = torch.promote_types(torch.promote_types(b.dtype, a.dtype), x.dtype)
    batch = torch.broadcast_shapes(b.shape[:-2], a.shape[:-2], x.shape[:-1])
    b = b.to(dtype).expand(*batch, T, M + 1)
    a = a.to(dtype).expand(*batch, T, N + 1)
    x = x.to(dtype).expand(*batch, T)
    if zi is None:
        zi = x.new_zeros(*batch, M + N)
    zi = zi.to(dtype).expand(*batch, M + N)
    xs = [zi[..., M - 1 - j] for j in range(M)]  # oldest first
    ys = [zi[..., M + N - 1 - j] for j in range(N)]
    out = []
    for n in range(T):
        acc = b[..., n, 0] * x[..., n]
        for k in range(1, M + 1):
            acc = acc + b[..., n, k] * xs[-k]
        for k in range(1, N + 1):
            acc = acc - a[..., n, k] * ys[-k]
        yn = acc / a[..., n, 0]
        xs.append(x[..., n])
        ys.append(yn)
        out.append(yn)
    y = torch.stack(out, -1) if out else x.new_zeros(*batch, 0)
    hist_x = [xs[-1 - j] for j in range(M)]
    hist_y = [ys[-1 - j] for j in range(N)]
    zf = torch.stack(hist_x + hist_y, -1) if M + N else x.new_zeros(*batch, 0)
    return y, zf


def time_varying_sosfilt(sos: torch.Tensor, x: torch.Tensor, zi: torch.Tensor | None = None):
    """Cascade of time-varying biquads. ``sos (..., T, n_sections, 6)``, ``zi (n_sections, ..., 4)``."""
    zfs = []
    y = x
    for s in range(sos.shape[-2]):
        y, zf = time_varying_lfilter(sos[..., s, :3], sos[..., s, 3:], y, None if zi is None else zi[s])
        zfs.append(zf)
    return y, torch.stack(zfs, 0)


def linear_recurrence(a: torch.Tensor, u: torch.Tensor, h0: torch.Tensor | None = None, reverse: bool = False):
    """``h[t] = a[t] h[t-1] + u[t]`` along the last dim (``reverse``: ``h[t] = a[t] h[t+1] + u[t]``)."""
    a, u = torch.broadcast_tensors(a, u)
    T = u.shape[-1]
    if T == 0:
        return u.clone()
    h = torch.zeros_like(u[..., 0]) if h0 is None else h0.to(u.dtype).expand_as(u[..., 0])
    out = [None] * T
    order = range(T - 1, -1, -1) if reverse else range(T)
    for t in order:
        h = a[..., t] * h + u[..., t]
        out[t] = h
    return torch.stack(out, -1)
