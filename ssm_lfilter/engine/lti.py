"""Blockwise LTI IIR filtering in vectorized torch (the CPU engine; runs on any device).

``y[n] = sum_k b[k] x[n-k] + head[n] - sum_{k=1..N} a[k-1] y[n-k]`` (see docs/architecture.md):

1. Blocks of ``L`` samples. Each block's zero-state response is one GEMM with the lower-triangular
   Toeplitz matrix of the truncated impulse response of ``B/A`` (the FIR part is fused into it),
   plus a small GEMM for the previous block's last ``M`` inputs (the FIR halo).
2. A block's end state (its last ``N`` outputs) obeys ``S[c] = M S[c-1] + e[c]`` with the constant
   transfer ``M``; ``scan_constant`` solves it in ``log2(C)`` steps.
3. Each block adds the homogeneous response ``G (L x N)`` to its true initial state ``S[c-1]``.

The block responses are computed in float64 (complex128). Float32 data stays in float32 for
orders <= 2; higher direct-form orders run the whole engine in float64, because their homogeneous
responses grow large and the correction ``G S`` then cancels catastrophically in float32 (the design
notes measured relative errors of 0.5 on an order-8 Chebyshev filter at L=64). In float64 the same
algorithm is more accurate than a sequential float32 recurrence.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .scan import scan_constant

__all__ = ["fir", "lti", "work_dtype", "block_size"]

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
    """Causal FIR ``u[r,n] = sum_k b[r,k] x[r,n-k]``; ``b (Rb, M+1)`` with ``Rb`` 1 or ``R``, ``x (R, T)``.

    Shifted multiply-adds in place: conv1d with one channel and a long signal was measured 100x
    slower here (mkldnn picks a poor kernel for that shape).
    """
    T = x.shape[1]
    out = x * b[:, :1]
    for k in range(1, min(b.shape[1], T + 1)):
        out[:, k:].addcmul_(x[:, : T - k], b[:, k : k + 1])
    return out


def _responses(b: torch.Tensor, a: torch.Tensor, L: int):
    """Block responses of the direct-form-I filter ``B/A``, in float64, over ``L`` samples:

    - ``h (Rf, L)``: impulse response of ``B/A`` (the block's zero-state response is ``T(h) x``);
    - ``Hx (Rf, L, M)``: response to a past input ``x[-m] = 1`` (the FIR halo of the previous block);
    - ``G (Rf, L, N)``: response to a past output ``y[-1-j] = 1`` (the carried state);
    - ``ha (Rf, L)``: impulse response of ``1/A`` (for ``head``, which enters after the FIR).

    A loop over the ``L`` block positions (not over the signal), vectorized over the experiments and
    all filters. (Doubling the responses with ``G`` instead of looping was tried: it loses 1e-3
    relative on direct forms with nearly repeated poles, where ``|G|`` reaches 1e4.)
    """
    M, N = b.shape[1] - 1, a.shape[1]
    Rf = max(b.shape[0], a.shape[0])
    n_exp = 2 + M + N  # [x impulse, past x's, past y's, u impulse]
    xs = torch.zeros(n_exp, M + L, dtype=b.dtype, device=b.device)  # inputs at times -M .. L-1
    xs[0, M] = 1.0
    for m in range(1, M + 1):
        xs[m, M - m] = 1.0
    ys = torch.zeros(Rf, n_exp, N + L, dtype=b.dtype, device=b.device)  # outputs at -N .. L-1
    for j in range(N):
        ys[:, 1 + M + j, N - 1 - j] = 1.0
    b_rev = b.flip(-1)[:, None, :]  # multiplies [x[n-M], ..., x[n]]
    a_rev = a.flip(-1)[:, None, :]  # multiplies [y[n-N], ..., y[n-1]]
    for t in range(L):
        y = (b_rev * xs[None, :, t : t + M + 1]).sum(-1)
        if t == 0:
            y = y + F.pad(y.new_ones(1, 1), (n_exp - 1, 0))  # the u impulse (last experiment)
        if N:
            y = y - (a_rev * ys[:, :, t : t + N]).sum(-1)
        ys[:, :, N + t] = y
    out = ys[:, :, N:]  # (Rf, n_exp, L)
    return out[:, 0], out[:, 1 : 1 + M].transpose(1, 2), out[:, 1 + M : 1 + M + N].transpose(1, 2), out[:, -1]


def _toeplitz(h: torch.Tensor) -> torch.Tensor:
    """Lower-triangular Toeplitz ``H[i, j] = h[i - j]`` (``i >= j``) for each row of ``h (Rf, L)``."""
    L = h.shape[1]
    idx = torch.arange(L, device=h.device)
    lag = idx[:, None] - idx[None, :]
    H = h[:, lag.clamp(min=0)]
    return H * (lag >= 0)


def _gemm(A: torch.Tensor, B: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``A (R, C, i) @ B (Rf, i, j)`` with ``Rf`` 1 (one GEMM over all rows) or ``R`` (batched);
    accumulates into ``out`` in place when given."""
    R, C, i = A.shape
    if B.shape[0] == 1:
        if out is None:
            return (A.reshape(R * C, i) @ B[0]).view(R, C, -1)
        out.view(R * C, -1).addmm_(A.reshape(R * C, i), B[0])
        return out
    if out is None:
        return torch.bmm(A, B)
    return out.baddbmm_(A, B)


def lti(x: torch.Tensor, b: torch.Tensor, a: torch.Tensor, head: torch.Tensor, L: int | None = None) -> torch.Tensor:
    """The ``ssm_lfilter::lti`` op on the torch engine (contract in docs/architecture.md)."""
    R, T = x.shape
    M, N = b.shape[1] - 1, a.shape[1]
    K = min(head.shape[1], T)
    if T == 0:
        return x.new_zeros(R, 0)
    if N == 0 and M < 16:
        y = fir(b, x)
        if K:
            y[:, :K] += head[:, :K]
        return y
    wd = work_dtype(x.dtype, N)
    hi = torch.complex128 if wd.is_complex else torch.float64
    # Short signals are one block (no scan); blocks hold at least one state and one FIR halo.
    L = max(min(L or block_size(T, max(M, N)), T), M, N, K, 1)
    h, Hx, G, ha = _responses(b.to(hi), a.to(hi), L)
    # The blocks' end states (y[L-1], ..., y[L-N]) as a function of their initial states.
    Mt = G[:, L - 1 - torch.arange(N, device=G.device), :]
    HT = _toeplitz(h).transpose(1, 2).to(wd)

    C = -(-T // L)
    xw = x.to(wd)
    X = (F.pad(xw, (0, C * L - T)) if C * L != T else xw).reshape(R, C, L)
    # 1. zero-state response of every block: the Toeplitz GEMM, plus the FIR halo of the
    #    previous block's last M inputs, plus head (which only touches block 0 since K <= L).
    Y = _gemm(X, HT)
    if M and C > 1:
        halo = F.pad(X[:, :-1, L - M :].flip(-1), (0, 0, 1, 0))  # (x[cL-1], ..., x[cL-M])
        _gemm(halo, Hx.transpose(1, 2).to(wd), out=Y)
    if K:
        ha_T = _toeplitz(ha)[:, :, :K].transpose(1, 2).to(wd)  # (Rf, K, L)
        Y[:, :1] += _gemm(head[:, None, :K].to(wd), ha_T)
    if N and C > 1:
        # 2. carries: end states from the zero-state ends and the previous carry, scanned.
        E = Y[:, :, L - N :].flip(-1)
        S = scan_constant(Mt.to(wd), E)
        S_prev = F.pad(S[:, :-1], (0, 0, 1, 0))  # the true initial state of each block
        # 3. correction: the homogeneous response to the true initial state, in place.
        _gemm(S_prev, G.transpose(1, 2).to(wd), out=Y)
    return Y.reshape(R, C * L)[:, :T].to(x.dtype)
