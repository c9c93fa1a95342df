"""Blockwise LTI IIR filtering in vectorized torch (the CPU engine; runs on any device).

``y[n] = sum_k b[k] x[n-k] + head[n] - sum_{k=1..N} a[k-1] y[n-k]`` (see docs/architecture.md):

1. Blocks of ``L`` samples. Each block's zero-state response is one GEMM with the lower-triangular
   Toeplitz matrix of the truncated impulse response of ``B/A`` (the FIR part is fused into it),
   plus a small GEMM for the previous block's last ``M`` inputs (the FIR halo).
2. A block's end state (its last ``N`` outputs) obeys ``S[c] = M S[c-1] + e[c]`` with the constant
   transfer ``M``; ``scan_constant`` solves it blockwise again, groups of blocks at once (a
   triangular solve or a GEMM a level), in a few levels.
3. Each block adds the homogeneous response ``G (L x N)`` to its true initial state ``S[c-1]``.

The block responses are computed in float64 (complex128), and so is the whole engine for float32
data unless the filter is well conditioned: the correction ``G S`` cancels when the homogeneous
responses are large, which in float32 cost 1e-4 relative on a biquad with poles at radius 0.999
(against 2e-5 for a sequential float32 recurrence) and 0.5 on an order-8 Chebyshev filter (design
notes). In float64 the result is limited by the final rounding to float32 (5e-8 on that biquad).
Orders <= 2 whose error amplification (``_amplification``) is at most 8 stay in float32: their
corrections lose at most a few float32 roundings, and float32 runs 2-3x faster.

Even float64 cannot hold the carries of a direct form whose poles cluster near the unit circle: the
last-``N``-outputs basis is so non-normal there that ``butter(4, 0.005)`` came out 1e2 relative off
and higher orders overflowed. Where the homogeneous responses over a block exceed a threshold
(``SECTIONS_MIN_RESPONSE``), orders >= 3 run as second-order sections from their poles
(``engine/sections.py``, through ``engine/cascade.py``), and float64 data takes a step of iterative
refinement (biquads on the direct form, sections where they lose more than scipy): results within
scipy's own sequential error (``tests/test_ill_conditioned.py``).
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from ._solve import direct_fits as _direct_fits
from ._solve import solve_unit_lower, unit_lower_band
from .scan import gemm as _gemm
from .scan import scan_constant
from .sections import allpole_sections, refine
from .time_varying import all_finite, allpole_tv

__all__ = ["fir", "lti", "work_dtype", "block_size"]

def work_dtype(dtype: torch.dtype, order: int) -> torch.dtype:
    """float64 (complex128) for every recursive filter (see above); an FIR keeps its precision."""
    if order == 0 or dtype in (torch.float64, torch.complex128):
        return dtype
    return torch.complex128 if dtype.is_complex else torch.float64


def block_size(T: int, order: int) -> int:
    """The block length: long enough to hold an ``order``-sample state, short enough that the
    Toeplitz GEMM (``L`` multiply-adds a sample) stays cheap."""
    L = 32 if order <= 4 else 64
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

    The all-pole part is one batched triangular solve over the ``L`` block positions (forward
    substitution: the recurrence itself, in one LAPACK call instead of ``L`` Python steps of small
    matmuls, which took half of a short ``lfilter`` call on CPU). (Doubling the responses with ``G``
    instead was tried: it loses 1e-3 relative on direct forms with nearly repeated poles, where
    ``|G|`` reaches 1e4.)
    """
    M, N = b.shape[1] - 1, a.shape[1]
    Rf = max(b.shape[0], a.shape[0])
    # Every experiment's right-hand side (its FIR drive, and the known past outputs moved over
    # from the all-pole side) is a shifted copy of the coefficients: one gather.
    coefs = torch.cat([b.expand(Rf, M + 1), a.neg().expand(Rf, N), _ONE_ZERO.to(b.device, b.dtype).expand(Rf, 2)], 1)
    drive = coefs[:, _drive_index(M, N, L, b.device)]  # (Rf, n_exp, L)
    if N == 0:
        return drive[:, 0], drive[:, 1 : 1 + M].transpose(1, 2), drive[:, 1 + M : 1 + M], drive[:, -1]
    # The all-pole part, y[t] + sum_k a_k y[t-k] = drive[t]: one unit lower-triangular banded
    # Toeplitz solve per filter.
    band = unit_lower_band(a.expand(Rf, N), L)
    out = torch.linalg.solve_triangular(band, drive.transpose(1, 2), upper=False, unitriangular=True)
    out = out.transpose(1, 2)  # (Rf, n_exp, L)
    return out[:, 0], out[:, 1 : 1 + M].transpose(1, 2), out[:, 1 + M : 1 + M + N].transpose(1, 2), out[:, -1]


_ONE_ZERO = torch.tensor([1.0, 0.0], dtype=torch.float64)


@functools.lru_cache(maxsize=64)
def _drive_index(M: int, N: int, L: int, device: torch.device) -> torch.Tensor:
    """``(2 + M + N, L)`` indices into ``[b_0 .. b_M, -a_1 .. -a_N, 1, 0]`` for ``_responses``' drives:
    the ``x`` impulse ``b_t``; a past input ``x[-m] = 1``, ``b_(t+m)``; a past output
    ``y[-1-j] = 1``, ``-a_(t+j+1)`` while ``t + j < N``; the ``u`` impulse, 1 at ``t = 0``; 0 elsewhere."""
    one, zero = M + 1 + N, M + 2 + N
    idx = torch.full((2 + M + N, L), zero, dtype=torch.long)
    t = torch.arange(L)
    for m in range(M + 1):  # m = 0: the x impulse
        idx[m] = torch.where(t + m <= M, t + m, zero)
    for j in range(N):
        idx[1 + M + j] = torch.where(t + j < N, M + 1 + t + j, zero)
    idx[-1, 0] = one
    return idx.to(device)


# Below this error amplification a low-order filter runs in float32 (see _amplification).
FLOAT32_MAX_AMPLIFICATION = 8.0


def _amplification(G: torch.Tensor, M: torch.Tensor) -> float:
    """How much the blockwise corrections amplify a rounding error in a carried state: the largest
    homogeneous response (max row sum of ``|G|``) times the geometric sum of the carries' decay
    ``1 / (1 - ||M||)``. About 1 for a biquad with poles at radius 0.5; thousands at radius 0.999,
    where float32 corrections lose 1e-4 relative. ``inf`` when the carries do not decay."""
    if G.numel() == 0:
        return 1.0
    decay, peak = torch.stack([torch.linalg.matrix_norm(M).max(), G.abs().sum(-1).max()]).tolist()
    return float("inf") if decay >= 0.9 else peak / (1.0 - decay)


def _toeplitz_t(h: torch.Tensor, K: int | None = None) -> torch.Tensor:
    """The transposed lower-triangular Toeplitz matrix ``HT[j, i] = h[i - j]`` (``i >= j``, else 0)
    of each row of ``h (Rf, L)``, its first ``K`` rows, ``(Rf, K, L)``: one cached gather."""
    idx, above = _lag_index(h.shape[1], h.device)
    K = h.shape[1] if K is None else K
    return h[:, idx[:K]].masked_fill_(above[:K], 0)


@functools.lru_cache(maxsize=32)
def _lag_index(L: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(L, L)``: ``max(i - j, 0)`` at ``[j, i]``, and where ``i < j``."""
    lag = torch.arange(L)[None, :] - torch.arange(L)[:, None]
    return lag.clamp(min=0).to(device), (lag < 0).to(device)


def _direct(x: torch.Tensor, b: torch.Tensor, a: torch.Tensor, head: torch.Tensor, K: int,
            wd: torch.dtype) -> torch.Tensor:
    """A short signal as one block the length of the signal: the FIR (plus ``head``), then one unit
    lower-triangular solve with the denominator's banded Toeplitz matrix, i.e. forward substitution,
    the recurrence itself, run by LAPACK in the work precision. On the project's CPU machine a
    (1, 256) biquad took 0.5 ms this way against 1.5 ms blockwise (block responses, GEMMs, carry scan)."""
    u = fir(b.to(wd), x.to(wd))
    if K:
        u[:, :K] += head[:, :K].to(wd)
    if a.shape[1] == 0:  # a long FIR (M >= 16): nothing to solve
        return u.to(x.dtype)
    return solve_unit_lower(unit_lower_band(a.to(wd), x.shape[1]), u).to(x.dtype)


def lti(x: torch.Tensor, b: torch.Tensor, a: torch.Tensor, head: torch.Tensor, L: int | None = None) -> torch.Tensor:
    """The ``ssm_lfilter::lti`` op on the torch engine (contract in docs/architecture.md)."""
    R, T = x.shape
    M, N = b.shape[1] - 1, a.shape[1]
    K = min(head.shape[1], T)
    if T == 0 or R == 0:
        return x.new_zeros(R, T)
    if N == 0 and M < 16:
        y = fir(b, x)
        if K:
            y[:, :K] += head[:, :K]
        return y
    wd = work_dtype(x.dtype, N)
    # One cheap reduction detects NaN/Inf (isfinite() costs three passes over the signal).
    if not all_finite(x, b, a, head):
        # The Toeplitz GEMM multiplies the zeros above its diagonal by every input of a block, so
        # a NaN or Inf would reach earlier samples. Running the recurrence sample by sample inside
        # the blocks propagates it forward only, as scipy does.
        u = fir(b.to(wd), x.to(wd))
        u[:, :K] += head[:, :K].to(wd)
        return allpole_tv(u, a.to(wd)[:, None, :].expand(a.shape[0], T, N)).to(x.dtype)
    if L is None and _direct_fits(T, R, a.shape[0]):
        return _direct(x, b, a, head, K, wd)
    wide = x.dtype in (torch.float64, torch.complex128)
    real = not (x.is_complex() or b.is_complex() or a.is_complex())
    Lb = max(min(L or block_size(T, max(M, N)), T), M, N, K, 1)  # as _blockwise's
    hi = torch.complex128 if wd.is_complex else torch.float64  # as _blockwise's
    resp = _responses(b.to(hi), a.to(hi), Lb)
    # the carries' conditioning, read back only where it decides something (not for float32 biquads)
    peak = _peak(resp[2]) if wide or (N >= 3 and real) else 0.0
    limit = _sections_limit(x.dtype)
    none = head[:, :0]
    if N >= 3 and real and peak > limit:
        sec = allpole_sections(a)
        if sec is not None:  # high orders as biquads, whose carries do not cancel (sections.py)
            y = _sectioned(x, b, sec, head, L)
            if wide and peak > REFINE_SECTIONS_MIN_RESPONSE:
                y = refine(x, b, a, head, y, lambda r: _sectioned(r, b.new_ones(1, 1), sec, none, L))
            return y
    y = _blockwise(x, b, a, head, L, resp)
    if wide and peak > limit:
        y = refine(x, b, a, head, y, lambda r: _blockwise(r, b.new_ones(1, 1), a, none, L))
    return y


# Above this peak homogeneous response over a block (``_peak``) a direct form's carries cancel
# (sections.py): on 3000 samples in float64, butter(8, 0.2) (|G| 1e3) lost 4.6e-11 relative
# blockwise, 1e-13 as sections, butter(4, 0.01) (2.4e4) 4.7e-5 against 1.8e-9; below 32 direct
# forms of order >= 3 lose <= 1e-12 and some sections more (a delay-65 comb, |G| 0.9: 2e-16
# direct, 1e-4 as 33 resonators whose partial cascades amplify rounding). Biquads above it
# (low-angle resonances: butter(2, 0.001), |G| 60, 3.3e-10 against scipy's 2e-13) take a
# refinement step in float64. Data in float32 (or less) is rounded to it once at the end, so its
# float64 carries may lose up to 1e-9: up to |G| 1024 its direct form stays (up to 2x faster than
# the sections on one row).
SECTIONS_MIN_RESPONSE = {torch.float64: 32.0, torch.complex128: 32.0}
SECTIONS_MIN_RESPONSE_SHORT = 1024.0  # float32 and below
# The sections themselves lose up to 1.2e-11 relative up to |G| 5e4 (cheby1(6, 1, 0.1), scipy
# 1e-11), more beyond (butter(5, 0.01): 1.2e-7): float64 data refines them above 1e4.
REFINE_SECTIONS_MIN_RESPONSE = 1e4


def _peak(G: torch.Tensor) -> float:
    """The largest row sum of the homogeneous responses ``|G| (Rf, L, N)``: the factor by which the
    carries' corrections amplify rounding. One value read back."""
    return G.abs().sum(-1).max().item() if G.numel() else 0.0


def cancels_in(a: torch.Tensor, T: int, M: int, L: int | None, dtype: torch.dtype) -> bool:
    """Whether the direct form ``a (Ra, N)`` (normalized) on ``T`` samples of ``dtype`` data has
    homogeneous responses over a block above ``SECTIONS_MIN_RESPONSE`` for ``dtype``."""
    N = a.shape[1]
    L = max(min(L or block_size(T, max(M, N)), T), N, 1)
    hi = torch.complex128 if a.is_complex() else torch.float64
    return _peak(_responses(a.new_ones(1, 1).to(hi), a.to(hi), L)[2]) > _sections_limit(dtype)


def _sections_limit(dtype: torch.dtype) -> float:
    return SECTIONS_MIN_RESPONSE.get(dtype, SECTIONS_MIN_RESPONSE_SHORT)


def _sectioned(x: torch.Tensor, b: torch.Tensor, sec: torch.Tensor, head: torch.Tensor,
               L: int | None) -> torch.Tensor:
    """``lti`` with the denominator as the biquads ``sec (Ra, S, 2)``: the FIR and ``head`` enter the
    first, the others are all-pole (``engine/cascade.py``, every stage in one blockwise pass)."""
    from .cascade import cascade  # engine/cascade.py imports this module

    ones = b.new_ones(1, 1)
    stages = [(b, sec[:, 0])] + [(ones, sec[:, s]) for s in range(1, sec.shape[1])]
    heads = [head] + [head[:, :0]] * (sec.shape[1] - 1)
    return cascade(x, stages, heads, L=L)[0]


def _blockwise(x: torch.Tensor, b: torch.Tensor, a: torch.Tensor, head: torch.Tensor,
               L: int | None, responses: tuple | None = None) -> torch.Tensor:
    """The blockwise direct form (steps 1-3 of the module's docstring); ``responses``: ``_responses``
    of ``b``, ``a`` over the block length computed here, if the caller has them."""
    R, T = x.shape
    M, N = b.shape[1] - 1, a.shape[1]
    K = min(head.shape[1], T)
    wd = work_dtype(x.dtype, N)
    hi = torch.complex128 if wd.is_complex else torch.float64
    # Short signals are one block (no scan); blocks hold at least one state and one FIR halo.
    L = max(min(L or block_size(T, max(M, N)), T), M, N, K, 1)
    h, Hx, G, ha = responses or _responses(b.to(hi), a.to(hi), L)
    # States in time order, so slices of the data need no flips: past inputs (x[-M], ..., x[-1])
    # and past outputs (y[-N], ..., y[-1]); the transfer maps them to (y[L-N], ..., y[L-1]).
    Hx, G = Hx.flip(-1), G.flip(-1)
    Mt = G[:, L - N :, :]
    if wd != x.dtype and N <= 2 and _amplification(G, Mt) <= FLOAT32_MAX_AMPLIFICATION:
        wd = x.dtype  # well conditioned: the data's own precision is exact enough, and 2-3x faster
    HT = _toeplitz_t(h).to(wd)

    C = -(-T // L)
    xw = x.to(wd)
    X = (F.pad(xw, (0, C * L - T)) if C * L != T else xw).reshape(R, C, L)
    # 1. zero-state response of every block from rest: the Toeplitz GEMM, plus head (which only
    #    touches block 0 since K <= L).
    Y = _gemm(X, HT)
    if K:
        ha_T = _toeplitz_t(ha, K).to(wd)  # (Rf, K, L)
        Y[:, :1] += _gemm(head[:, None, :K].to(wd), ha_T)
    # Everything a block inherits from the past is its last M inputs (the FIR halo) and its
    # initial state: one extra GEMM adds both, [halo, S_prev] @ [Hx; G]^T, in place.
    past, resp = [], []
    if M and C > 1:
        past.append(F.pad(X[:, :-1, L - M :], (0, 0, 1, 0)))  # (x[cL-M], ..., x[cL-1]); zeros for c = 0
        resp.append(Hx)
    if N and C > 1:
        # 2. carries: the end states of the blocks (their own response plus their halo's), scanned.
        E = Y[:, :, L - N :]
        if past:
            E = E + _gemm(past[0], Hx[:, L - N :, :].transpose(1, 2).to(wd))
        S = scan_constant(Mt.to(wd), E)
        past.append(F.pad(S[:, :-1], (0, 0, 1, 0)))  # the true initial state of each block
        resp.append(G)
    if past:
        # 3. correction from the past, in place.
        _gemm(torch.cat(past, 2), torch.cat(resp, 2).transpose(1, 2).to(wd), out=Y)
    return Y.reshape(R, C * L)[:, :T].to(x.dtype)
