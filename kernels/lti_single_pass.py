"""Single-pass Triton kernel for the LTI direct form I, orders N, M <= 4 (the default for those orders).

Same contract as ``lti.py`` (``y[r,n] = sum_k b[k] x[n-k] + head[n] - sum_k a[k-1] y[n-k]``), one
launch, ``x`` read once and ``y`` written once. A program owns a tile of ``BLOCK`` consecutive chunks
of ``C`` samples of one row (``BLOCK`` lanes, one chunk each):

1. load the (BLOCK, C) tile (coalesced) and run every lane from a zero state in float64 registers:
   the lane's zero-state end state ``e_j`` (its last N outputs);
2. scan the lanes' affine maps ``s -> P s + e_j`` (``P = A^C``, the companion matrix's C-th power,
   computed in registers from the coefficients) with ``tl.associative_scan``: lane j gets the map from
   the tile's start state to its own end state; the last lane's map is the tile aggregate;
3. publish the aggregate, then get the true state before the tile through the deterministic
   fixed-window look-back of ``_lookback.py`` (fold the window's aggregates, apply them to the
   anchor tile's inclusive state) and publish this tile's inclusive state;
4. every lane's true start state is its left neighbour's true end state (``tl.gather`` shifts the
   lanes by one); re-run every lane from it (no correction factors: nothing cancels, the state stays
   float64) and store the (BLOCK, C) output tile.

Only integer atomics (ticket, flags); the float results are bitwise deterministic.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._affine import _combine2, _combine4, apply_affine, scan_affine
from ._lookback import publish, take_ticket, wait_flags, window
from ._bits import from_bits as _from_bits
from ._bits import to_bits as _to_bits
from .lti import _fir_coefficients, _input_halo, _lti_cols, _mem_t, _pole_taps

__all__ = ["lti_single_pass"]


@triton.jit
def _coefficient(p_a, k: tl.constexpr, s_ak, N: tl.constexpr):
    """``a[k]`` (float64 scalar), zero beyond the order."""
    if k < N:
        v = tl.load(p_a + k * s_ak).to(tl.float64)
    else:
        v = 0.0
    return v


@triton.jit
def _companion_power(p_a, s_ak, N: tl.constexpr, NP: tl.constexpr, LOG: tl.constexpr):
    """``P = A^(2^LOG)`` for the companion matrix ``A`` of ``y[n] = -a1 y[n-1] - ... - a4 y[n-4]``, in
    float64 scalar registers (no cross-thread work), by LOG squarings: a short dependency chain."""
    q11 = -_coefficient(p_a, 0, s_ak, N)
    q12 = -_coefficient(p_a, 1, s_ak, N)
    q13 = -_coefficient(p_a, 2, s_ak, N)
    q14 = -_coefficient(p_a, 3, s_ak, N)
    q21, q22, q23, q24 = 1.0, 0.0, 0.0, 0.0
    q31, q32, q33, q34 = 0.0, 1.0, 0.0, 0.0
    q41, q42, q43, q44 = 0.0, 0.0, 1.0, 0.0
    for _ in tl.static_range(LOG):
        if NP == 1:
            q11 = q11 * q11
        elif NP == 2:
            q11, q12, q21, q22, _, _ = _combine2(q11, q12, q21, q22, 0.0, 0.0, q11, q12, q21, q22, 0.0, 0.0)
        else:
            (q11, q12, q13, q14, q21, q22, q23, q24, q31, q32, q33, q34, q41, q42, q43, q44,
             _, _, _, _) = _combine4(
                q11, q12, q13, q14, q21, q22, q23, q24, q31, q32, q33, q34, q41, q42, q43, q44, 0.0, 0.0, 0.0, 0.0,
                q11, q12, q13, q14, q21, q22, q23, q24, q31, q32, q33, q34, q41, q42, q43, q44, 0.0, 0.0, 0.0, 0.0)
    return q11, q12, q13, q14, q21, q22, q23, q24, q31, q32, q33, q34, q41, q42, q43, q44


@triton.jit
def _store_at(p, x, o, I):
    """Store element ``I`` of the 1-D block ``x`` at ``p`` (only the thread holding it writes): how a
    single lane's value leaves registers without a cross-warp reduction."""
    tl.store(p + o * 0, x, mask=o == I)


@triton.jit
def _store_map_at(p, q11, q12, q13, q14, q21, q22, q23, q24, q31, q32, q33, q34, q41, q42, q43, q44,
                  v1, v2, v3, v4, o, I):
    """Element ``I`` of a block of affine maps, as 20 float64 at ``p``: v1..v4, then Q row-major."""
    _store_at(p, v1, o, I)
    _store_at(p + 1, v2, o, I)
    _store_at(p + 2, v3, o, I)
    _store_at(p + 3, v4, o, I)
    _store_at(p + 4, q11, o, I)
    _store_at(p + 5, q12, o, I)
    _store_at(p + 6, q13, o, I)
    _store_at(p + 7, q14, o, I)
    _store_at(p + 8, q21, o, I)
    _store_at(p + 9, q22, o, I)
    _store_at(p + 10, q23, o, I)
    _store_at(p + 11, q24, o, I)
    _store_at(p + 12, q31, o, I)
    _store_at(p + 13, q32, o, I)
    _store_at(p + 14, q33, o, I)
    _store_at(p + 15, q34, o, I)
    _store_at(p + 16, q41, o, I)
    _store_at(p + 17, q42, o, I)
    _store_at(p + 18, q43, o, I)
    _store_at(p + 19, q44, o, I)


@triton.jit
def _load_maps(p, m):
    """The maps stored by ``_store_map_at`` at the pointers ``p`` (a block), identity where ``~m``.
    Read from L2 (``.cg``): other SMs wrote them."""
    z = 0.0
    e = 1.0
    return (tl.load(p + 4, mask=m, other=e, cache_modifier=".cg"), tl.load(p + 5, mask=m, other=z, cache_modifier=".cg"),
            tl.load(p + 6, mask=m, other=z, cache_modifier=".cg"), tl.load(p + 7, mask=m, other=z, cache_modifier=".cg"),
            tl.load(p + 8, mask=m, other=z, cache_modifier=".cg"), tl.load(p + 9, mask=m, other=e, cache_modifier=".cg"),
            tl.load(p + 10, mask=m, other=z, cache_modifier=".cg"), tl.load(p + 11, mask=m, other=z, cache_modifier=".cg"),
            tl.load(p + 12, mask=m, other=z, cache_modifier=".cg"), tl.load(p + 13, mask=m, other=z, cache_modifier=".cg"),
            tl.load(p + 14, mask=m, other=e, cache_modifier=".cg"), tl.load(p + 15, mask=m, other=z, cache_modifier=".cg"),
            tl.load(p + 16, mask=m, other=z, cache_modifier=".cg"), tl.load(p + 17, mask=m, other=z, cache_modifier=".cg"),
            tl.load(p + 18, mask=m, other=z, cache_modifier=".cg"), tl.load(p + 19, mask=m, other=e, cache_modifier=".cg"),
            tl.load(p, mask=m, other=z, cache_modifier=".cg"), tl.load(p + 1, mask=m, other=z, cache_modifier=".cg"),
            tl.load(p + 2, mask=m, other=z, cache_modifier=".cg"), tl.load(p + 3, mask=m, other=z, cache_modifier=".cg"))


@triton.jit
def _section_pass(
    b_xt, b_ht, b_b0, b_b1, b_b2, b_b3, b_b4, b_x1, b_x2, b_x3, b_x4, b_a1, b_a2, b_a3, b_a4,
    p_a, p_ar, s_ak, agg, inc, p_fa, p_fi, i_row, i_c, n_tiles, o_l, m_1,
    C: tl.constexpr, LOG: tl.constexpr, M: tl.constexpr, N: tl.constexpr, NP: tl.constexpr,
    HAS_HEAD: tl.constexpr, BLOCK: tl.constexpr, W: tl.constexpr, Y_DTYPE: tl.constexpr,
):
    """Steps 1-4 of the module docstring for one filter (one section) on a bit-shaped tile already
    in registers. ``agg``/``inc``/``p_fa``/``p_fi``: this section's look-back buffers and flags.
    Returns the bit-shaped output tile and every lane's true start state (y[t0-1], ..., y[t0-4])."""
    b_0 = tl.zeros([BLOCK], dtype=tl.float64)
    o_n = tl.arange(0, NP)
    b_ring = tl.zeros([BLOCK, NP], dtype=tl.float64)  # unused for N <= 4

    # ---- 1. every lane from a zero state: its end state e_j
    _, _, _, _, _, b_e1, b_e2, b_e3, b_e4, _ = _lti_cols(
        b_xt, b_ht, b_b0, b_b1, b_b2, b_b3, b_b4, b_a1, b_a2, b_a3, b_a4,
        b_x1, b_x2, b_x3, b_x4, b_0, b_0, b_0, b_0, b_ring, p_a, s_ak, m_1, o_n,
        0, LOG, M, N, NP, HAS_HEAD, Y_DTYPE)

    # ---- 2. lane scan of s -> P s + e_j (P = A^C: the same for every lane and tile of the row)
    p11, p12, p13, p14, p21, p22, p23, p24, p31, p32, p33, p34, p41, p42, p43, p44 = _companion_power(
        p_ar, s_ak, N, NP, LOG)
    (q11, q12, q13, q14, q21, q22, q23, q24, q31, q32, q33, q34, q41, q42, q43, q44,
     v1, v2, v3, v4) = scan_affine(
        b_0 + p11, b_0 + p12, b_0 + p13, b_0 + p14, b_0 + p21, b_0 + p22, b_0 + p23, b_0 + p24,
        b_0 + p31, b_0 + p32, b_0 + p33, b_0 + p34, b_0 + p41, b_0 + p42, b_0 + p43, b_0 + p44,
        b_e1, b_e2, b_e3, b_e4, NP, 0)

    # ---- 3. publish the tile aggregate (the last lane's map) first, then look back.
    # agg[r, c] holds 24 float64: the aggregate map (v, then Q) and, in 20..23, the state before the tile.
    p_ag = agg + (i_row * n_tiles + i_c) * 24
    _store_map_at(p_ag, q11, q12, q13, q14, q21, q22, q23, q24, q31, q32, q33, q34, q41, q42, q43, q44,
                  v1, v2, v3, v4, o_l, BLOCK - 1)
    publish(p_fa + i_c)
    # Window: the aggregates of tiles c-W+1 .. c (this tile last; tiles before 0 are the identity),
    # scanned in a fixed tree and applied to the anchor tile c-W's inclusive state (zero before 0).
    o_w = tl.arange(0, W)
    i_k = i_c - W + 1 + o_w
    m_k = i_k >= 0
    wait_flags(p_fa + i_k, m_k & (o_w < W - 1))
    (f11, f12, f13, f14, f21, f22, f23, f24, f31, f32, f33, f34, f41, f42, f43, f44,
     u1, u2, u3, u4) = _load_maps(agg + (i_row * n_tiles + i_k) * 24, m_k)
    (f11, f12, f13, f14, f21, f22, f23, f24, f31, f32, f33, f34, f41, f42, f43, f44,
     u1, u2, u3, u4) = scan_affine(f11, f12, f13, f14, f21, f22, f23, f24, f31, f32, f33, f34,
                                   f41, f42, f43, f44, u1, u2, u3, u4, NP, 0)
    i_a = i_c - W
    o_1 = tl.arange(0, 1)
    wait_flags(p_fi + i_a + o_1, (o_1 >= 0) & (i_a >= 0))
    p_in = inc + (i_row * n_tiles + i_a) * 4
    m_a = i_a >= 0
    x1, x2, x3, x4 = apply_affine(
        f11, f12, f13, f14, f21, f22, f23, f24, f31, f32, f33, f34, f41, f42, f43, f44, u1, u2, u3, u4,
        tl.load(p_in, mask=m_a, other=0.0, cache_modifier=".cg"),
        tl.load(p_in + 1, mask=m_a, other=0.0, cache_modifier=".cg"),
        tl.load(p_in + 2, mask=m_a, other=0.0, cache_modifier=".cg"),
        tl.load(p_in + 3, mask=m_a, other=0.0, cache_modifier=".cg"), NP)
    # element W-1: this tile's inclusive state; element W-2: the state before this tile
    p_ic = inc + (i_row * n_tiles + i_c) * 4
    _store_at(p_ic, x1, o_w, W - 1)
    _store_at(p_ic + 1, x2, o_w, W - 1)
    _store_at(p_ic + 2, x3, o_w, W - 1)
    _store_at(p_ic + 3, x4, o_w, W - 1)
    _store_at(p_ag + 20, x1, o_w, W - 2)
    _store_at(p_ag + 21, x2, o_w, W - 2)
    _store_at(p_ag + 22, x3, o_w, W - 2)
    _store_at(p_ag + 23, x4, o_w, W - 2)
    publish(p_fi + i_c)  # its barrier also makes the state before the tile visible to this CTA
    s1 = tl.load(p_ag + 20)
    s2 = tl.load(p_ag + 21)
    s3 = tl.load(p_ag + 22)
    s4 = tl.load(p_ag + 23)

    # ---- 4. true start of lane j = true end of lane j-1; re-run
    b_s1, b_s2, b_s3, b_s4 = apply_affine(q11, q12, q13, q14, q21, q22, q23, q24, q31, q32, q33, q34,
                                          q41, q42, q43, q44, v1, v2, v3, v4, s1, s2, s3, s4, NP)
    i_prev = tl.maximum(o_l - 1, 0)
    b_s1 = tl.where(o_l == 0, s1, tl.gather(b_s1, i_prev, 0))
    b_s2 = tl.where(o_l == 0, s2, tl.gather(b_s2, i_prev, 0))
    b_s3 = tl.where(o_l == 0, s3, tl.gather(b_s3, i_prev, 0))
    b_s4 = tl.where(o_l == 0, s4, tl.gather(b_s4, i_prev, 0))
    b_yt, _, _, _, _, _, _, _, _, _ = _lti_cols(
        b_xt, b_ht, b_b0, b_b1, b_b2, b_b3, b_b4, b_a1, b_a2, b_a3, b_a4,
        b_x1, b_x2, b_x3, b_x4, b_s1, b_s2, b_s3, b_s4, b_ring, p_a, s_ak, m_1, o_n,
        0, LOG, M, N, NP, HAS_HEAD, Y_DTYPE)
    return b_yt, b_s1, b_s2, b_s3, b_s4


@triton.jit
def _lti_single_pass_kernel(
    x, b, a, head, y, agg, inc, flags,
    T, K, R, n_tiles,
    s_xr, s_xt, s_br, s_bs, s_bk, s_ar, s_as, s_ak, s_hr, s_ht, s_yr, s_yt,
    S: tl.constexpr, C: tl.constexpr, LOG: tl.constexpr, M: tl.constexpr, N: tl.constexpr,
    NP: tl.constexpr, HAS_HEAD: tl.constexpr, BLOCK: tl.constexpr, W: tl.constexpr, REVERSE: tl.constexpr,
):
    # S filters in cascade (S = 1: one LTI filter; S > 1: second-order sections, M <= N, no head).
    # flags: [per section: agg flags (R, n_tiles) | inclusive flags (R, n_tiles)] then the ticket counter
    i_tk = take_ticket(flags + 2 * S * R * n_tiles)
    i_c = i_tk // R  # tiles of all rows advance together
    o_l = tl.arange(0, BLOCK)
    i_r = i_tk % R + 0 * o_l.to(tl.int64)  # per lane (all equal), as the shared jit helpers expect
    i_row = i_tk % R
    i_t0 = (i_c * BLOCK + o_l.to(tl.int64)) * C
    m_g = i_t0 < T
    m_1 = o_l >= 0
    p_x = x + i_r * s_xr

    # the tile, once (coalesced); it stays in registers through every section
    o_t = tl.arange(0, C)
    i_n = i_t0[:, None] + o_t[None, :]
    m_n = m_g[:, None] & (i_n < T)
    # REVERSE: processing step n is memory index T-1-n for x and y (head stays in processing order)
    b_xt = _to_bits(tl.load(p_x[:, None] + _mem_t(i_n, T, REVERSE) * s_xt, mask=m_n, other=0.0).to(y.dtype.element_ty),
                    LOG, BLOCK)
    if HAS_HEAD:
        b_ht = _to_bits(tl.load(head + (i_r * s_hr)[:, None] + i_n * s_ht, mask=m_n & (i_n < K), other=0.0),
                        LOG, BLOCK)
    else:
        b_ht = b_xt  # never read
    # section 0's FIR halo comes from x; a later section's input is the previous section's output, so
    # its halo (inputs before the lane) is the previous section's true start state of the lane (M <= N)
    b_h1, b_h2, b_h3, b_h4 = _input_halo(p_x, i_t0, s_xt, m_g, T, M, BLOCK, REVERSE)
    for i_s in range(S):
        p_b = b + i_r * s_br + i_s * s_bs
        p_a = a + i_r * s_ar + i_s * s_as
        b_b0, b_b1, b_b2, b_b3, b_b4 = _fir_coefficients(p_b, s_bk, m_1, M, BLOCK)
        b_a1, b_a2, b_a3, b_a4 = _pole_taps(p_a, s_ak, m_1, N, BLOCK)
        p_fa = flags + ((2 * i_s) * R + i_row) * n_tiles  # this section's aggregate flags of this row
        p_fi = flags + ((2 * i_s + 1) * R + i_row) * n_tiles  # and its inclusive flags
        b_xt, b_h1, b_h2, b_h3, b_h4 = _section_pass(
            b_xt, b_ht, b_b0, b_b1, b_b2, b_b3, b_b4, b_h1, b_h2, b_h3, b_h4, b_a1, b_a2, b_a3, b_a4,
            p_a, a + i_row * s_ar + i_s * s_as, s_ak, agg + i_s * R * n_tiles * 24, inc + i_s * R * n_tiles * 4,
            p_fa, p_fi, i_row, i_c, n_tiles, o_l, m_1,
            C, LOG, M, N, NP, HAS_HEAD, BLOCK, W, y.dtype.element_ty)
    tl.store(y + (i_r * s_yr)[:, None] + _mem_t(i_n, T, REVERSE) * s_yt, _from_bits(b_xt, LOG, BLOCK), mask=m_n)


def lti_single_pass(x: torch.Tensor, b: torch.Tensor, a: torch.Tensor, head: torch.Tensor, y: torch.Tensor,
                    C: int, *, lanes: int | None = None, window_tiles: int | None = None,
                    reverse: bool = False) -> torch.Tensor:
    """Fill ``y [R, T]`` (allocated by ``lti``, which also checked every argument) in one launch.

    ``b [Rb, M+1]``, ``a [Ra, N]``, or a cascade of S filters: ``b [Rb, S, M+1]``, ``a [Ra, S, N]``
    (then ``M <= N`` and no head). ``C``: samples per lane, a power of two in [2, 64];
    ``1 <= N <= 4``, ``M <= 4``. ``lanes`` (chunks per tile, a power of two) and ``window_tiles``
    (look-back window) default to sizes for the GPU; tests force small ones so short signals cross
    many tiles and window links. ``reverse``: run backwards in time (x and y read and written at
    ``T-1-n``; ``head[n]`` still enters at the n-th step), with no copy of the reversed signal."""
    if b.dim() == 2:
        b, a = b[:, None, :], a[:, None, :]
    R, T = x.shape
    S, M, N, K = b.shape[1], b.shape[2] - 1, a.shape[2], head.shape[1]
    NP = 1 if N == 1 else (2 if N == 2 else 4)
    LOG = C.bit_length() - 1
    n_chunks = triton.cdiv(T, C)
    # GPU: 64 lanes (2 warps, 2048 samples a tile; on an H200 64 lanes beat 128 by up to 22% at order 2).
    # The interpreter runs tl.associative_scan in Python, so there a tile has at most 8 lanes (which
    # also makes short test signals cross many tiles).
    cap = 64 if x.is_cuda else 8
    BLOCK = lanes if lanes is not None else min(cap, max(2, triton.next_power_of_2(n_chunks)))
    n_tiles = triton.cdiv(n_chunks, BLOCK)
    W = window_tiles if window_tiles is not None else window(n_tiles, R)
    agg = torch.empty(S, R, n_tiles, 24, dtype=torch.float64, device=x.device)
    inc = torch.empty(S, R, n_tiles, 4, dtype=torch.float64, device=x.device)
    flags = torch.zeros(2 * S * R * n_tiles + 1, dtype=torch.int32, device=x.device)
    has_head = K > 0
    s_hr, s_ht = (head.stride(0), head.stride(1)) if has_head else (0, 0)
    _lti_single_pass_kernel[(R * n_tiles,)](
        x, b, a, head if has_head else x, y, agg, inc, flags,
        T, K, R, n_tiles,
        x.stride(0), x.stride(1), b.stride(0) if b.shape[0] > 1 else 0, b.stride(1), b.stride(2),
        a.stride(0) if a.shape[0] > 1 else 0, a.stride(1), a.stride(2), s_hr, s_ht, y.stride(0), y.stride(1),
        S=S, C=C, LOG=LOG, M=M, N=N, NP=NP, HAS_HEAD=has_head, BLOCK=BLOCK, W=W, REVERSE=bool(reverse),
        num_warps=max(1, min(4, BLOCK // 32)))
    return y
