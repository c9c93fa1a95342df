"""Blockwise LTI IIR filtering in vectorized torch (the CPU engine; runs on any device).

``y[n] = u[n] - sum_{k=1..N} a[k-1] y[n-k]`` with ``u = FIR(b, x) + head`` (see docs/architecture.md):

1. Blocks of ``L`` samples. Each block's zero-state response is one GEMM with the lower-triangular
   Toeplitz matrix of the truncated impulse response ``h[0..L-1]``.
2. A block's end state (its last ``N`` outputs) obeys ``S[c] = M S[c-1] + e[c]`` with the constant
   transfer ``M``; ``scan_constant`` solves it in ``log2(C)`` steps.
3. Each block adds the homogeneous response ``G (L x N)`` to its true initial state ``S[c-1]``.

``h``, ``G`` and ``M`` are computed in float64 (complex128). Float32 data stays in float32 for
orders <= 2; higher direct-form orders run the whole engine in float64, because their homogeneous
responses grow large and the correction ``G S`` then cancels catastrophically in float32 (the design
notes measured relative errors of 0.5 on an order-8 Chebyshev filter at L=64).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .scan import scan_constant

__all__ = ["fir", "allpole", "lti", "work_dtype", "block_size"]

# Orders up to this run in the input precision; above it, in float64 (see module docstring).
MAX_ORDER_IN_INPUT_PRECISION = 2


def work_dtype(dtype: torch.dtype, order: int) -> torch.dtype:
    if order <= MAX_ORDER_IN_INPUT_PRECISION or dtype in (torch.float64, torch.complex128):
        return dtype
    return torch.complex128 if dtype.is_complex else torch.float64


def block_size(T: int, order: int) -> int:
    """The block length: long enough to hold an ``order``-sample state, short enough that the
    Toeplitz GEMM (``L`` multiply-adds a sample) stays cheap."""
    L = 32 if order <= 2 else 64
    return max(L, order, 1)


def fir(b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Causal FIR ``u[r,n] = sum_k b[r,k] x[r,n-k]``; ``b (Rb, M+1)`` with ``Rb`` 1 or ``R``, ``x (R, T)``."""
    R, T = x.shape
    taps = b.shape[1]
    if taps == 1:
        return x * b
    if T == 0:
        return x.clone()
    if x.is_complex():
        # conv1d has no complex kernels on every backend: shifted multiply-adds instead.
        xp = F.pad(x, (taps - 1, 0))
        return sum(b[:, k : k + 1] * xp[:, taps - 1 - k : taps - 1 - k + T] for k in range(taps))
    xp = F.pad(x, (taps - 1, 0)).unsqueeze(0)  # (1, R, T + M)
    w = b.flip(-1).unsqueeze(1)  # (Rb, 1, M+1): conv1d correlates, so flip for a convolution
    if b.shape[0] == 1:
        return F.conv1d(xp.transpose(0, 1), w).squeeze(1)
    return F.conv1d(xp, w, groups=R).squeeze(0)


def _responses(a: torch.Tensor, L: int):
    """Impulse response ``h (Ra, L)`` and homogeneous responses ``G (Ra, L, N)`` of ``1/A``.

    ``G[t, j]`` is the output at block time ``t`` when the only nonzero past output is
    ``y[-1-j] = 1``. A loop over the ``L`` block positions (not over the signal), vectorized over the
    ``N + 1`` experiments and all filters.
    """
    Ra, N = a.shape
    # Buffer of past outputs per experiment: columns [y[-N], ..., y[-1], y[0], ..., y[L-1]].
    buf = torch.zeros(Ra, N + 1, N + L, dtype=a.dtype, device=a.device)
    for j in range(N):
        buf[:, 1 + j, N - 1 - j] = 1.0
    a_rev = a.flip(-1)[:, None, :]  # multiplies [y[n-N], ..., y[n-1]]
    for t in range(L):
        y = -(a_rev * buf[:, :, t : t + N]).sum(-1)
        if t == 0:
            y[:, 0] += 1.0  # the impulse
        buf[:, :, N + t] = y
    out = buf[:, :, N:]
    return out[:, 0], out[:, 1:].transpose(1, 2)


def _toeplitz(h: torch.Tensor) -> torch.Tensor:
    """Lower-triangular Toeplitz ``H[i, j] = h[i - j]`` (``i >= j``) for each row of ``h (Ra, L)``."""
    L = h.shape[1]
    idx = torch.arange(L, device=h.device)
    lag = idx[:, None] - idx[None, :]
    H = h[:, lag.clamp(min=0)]
    return H * (lag >= 0)


def allpole(u: torch.Tensor, a: torch.Tensor, L: int | None = None) -> torch.Tensor:
    """All-pole filter from rest, ``y[n] = u[n] - sum_k a[k-1] y[n-k]``; ``u (R, T)``, ``a (Ra, N)``."""
    R, T = u.shape
    N = a.shape[1]
    if N == 0 or T == 0:
        return u.clone()
    L = L or block_size(T, N)
    L = max(L, N)
    dt = u.dtype
    hi = torch.complex128 if dt.is_complex else torch.float64
    h, G = _responses(a.to(hi), L)
    M = G[:, L - 1 - torch.arange(N, device=G.device), :]  # end state of the block: (y[L-1], ..., y[L-N])
    H, G, M = _toeplitz(h).to(dt), G.to(dt), M.to(dt)

    C = -(-T // L)
    U = F.pad(u, (0, C * L - T)).view(R, C, L)
    Ra = a.shape[0]
    # 1. zero-state response of every block: one GEMM (one batched GEMM with a filter per row).
    if Ra == 1:
        Y = (U.reshape(R * C, L) @ H[0].T).view(R, C, L)
    else:
        Y = torch.bmm(U, H.transpose(1, 2))
    if C > 1:
        # 2. carries: the end state of each block from its zero-state end and the previous carry.
        E = Y[:, :, L - N :].flip(-1)  # (y[L-1], ..., y[L-N]) of each block
        S = scan_constant(M, E)
        S_prev = F.pad(S[:, :-1], (0, 0, 1, 0))  # the true initial state of each block
        # 3. correction: the homogeneous response to the true initial state.
        if Ra == 1:
            Y = Y + (S_prev.reshape(R * C, N) @ G[0].T).view(R, C, L)
        else:
            Y = Y + torch.bmm(S_prev, G.transpose(1, 2))
    return Y.reshape(R, C * L)[:, :T]


def lti(x: torch.Tensor, b: torch.Tensor, a: torch.Tensor, head: torch.Tensor, L: int | None = None) -> torch.Tensor:
    """The ``ssm_lfilter::lti`` op on the torch engine (contract in docs/architecture.md)."""
    R, T = x.shape
    N = a.shape[1]
    wd = work_dtype(x.dtype, N)
    u = fir(b.to(wd), x.to(wd))
    K = min(head.shape[1], T)
    if K:
        u = torch.cat([u[:, :K] + head[:, :K].to(wd), u[:, K:]], 1)
    return allpole(u, a.to(wd), L).to(x.dtype)
