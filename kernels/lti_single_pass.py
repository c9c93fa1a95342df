"""Single-pass Triton kernel for the LTI direct form I, orders N, M <= 4 (the default for those orders).

Same contract as ``lti.py`` (``y[r,n] = sum_k b[k] x[n-k] + head[n] - sum_k a[k-1] y[n-k]``), one
launch, ``x`` read once and ``y`` written once. A program owns a tile of ``BLOCK`` consecutive chunks
of ``C`` samples of one row (``BLOCK`` lanes, one chunk each):

1. load the (BLOCK, C) tile (coalesced; one int64 base and int32 offsets, masks only on a row's last
   tile) and run every lane from a zero state in float64 registers (float32 with ``lane_float32``:
   the carries below stay float64): the lane's zero-state end state ``e_j`` (its last N outputs);
2. every lane's chunk maps its start state ``s`` to ``P s + e_j`` with the same ``P = A^C`` (the
   companion matrix's C-th power, squared in registers from the coefficients). Orders 3-4 scan
   vectors, not maps: ``V_j = sum_{i<=j} P^(j-i) e_i`` (``_power_scan``); orders 1-2 scan the small
   affine maps (``tl.associative_scan``), which took fewer registers there;
3. publish the tile's ``V_last`` (its zero-state end state), get the true state ``S`` before the tile
   through the deterministic fixed-window look-back of ``_lookback.py`` (``_window_state``: every
   full tile has the same transfer ``P^BLOCK``, so the window is a sum of powers applied to the
   published vectors) and publish this tile's true end state ``P^BLOCK S + V_last``;
4. lane j's true start state is its left neighbour's true end state, ``P^j S + V_{j-1}``; re-run every lane from it (no correction
   factors: nothing cancels, the state stays float64) and store the (BLOCK, C) output tile.

The powers of ``A`` these steps apply depend only on the coefficients: a small launch before the
kernel computes them once a coefficient row into a power table that every tile loads
(``power_table_setup``), instead of every tile squaring them in registers.

Why: compiled for sm_90 (``benchmarks/kernel_resources.py``), the scan of 4 x 4 affine maps took
230 registers a thread at order 4 (the power scan about 208), and the window fold of whole maps loaded
20 float64 a window tile and spilled at order 4 (now 4, no spill).

Only integer atomics (ticket, flags); the float results are bitwise deterministic.
"""
from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from ._affine import _combine2, _combine4, apply_affine, scan_affine
from ._clock import prepare_clock, stamp, stamp_end, stamp_start, stamp_tile, stamp_value
from ._lookback import check_tiles, publish, take_ticket, wait_flags, window
from ._bits import from_bits as _from_bits
from ._bits import to_bits as _to_bits
from ._lane_tiles import load_lanes, store_lanes
from .lti import _fir_coefficients, _input_halo, _lti_cols, _pole_taps
from ._host import cdiv, next_pow2, register_cap_option, vector_log2
from ._variants import lane_float32 as _use_lane_float32
from ._variants import lane_loads as _use_lane_loads
from ._variants import persistent as _use_persistent
from ._variants import power_table as _use_power_table
from ._variants import register_cap as _use_register_cap

__all__ = ["lti_single_pass"]


@triton.jit
def _coefficient(p_a, k: tl.constexpr, s_ak, N: tl.constexpr, inv_a0):
    """``a[k] / a0`` (float64 scalar, as ``a[k] * inv_a0``), zero beyond the order. ``inv_a0`` is 1.0
    for normalized coefficients (the product then folds away) or ``1 / a0`` (``_leading``)."""
    if k < N:
        v = tl.load(p_a + k * s_ak).to(tl.float64) * inv_a0
    else:
        v = 0.0
    return v


@triton.jit
def _leading(p_a, p_ar, s_ak, A0: tl.constexpr):
    """A section's pole pointers (per lane and scalar) past its leading coefficient, and ``1 / a0``
    as float64 (``A0``: the row starts with ``a0``), or 1.0 (normalized rows). One division a tile:
    every coefficient is then scaled by a product (a float64 division is a dozen instructions, and
    every thread of the tile runs this scalar work; the product's rounding differs from a division's
    by at most an ulp of float64)."""
    if A0:
        inv_a0 = 1.0 / tl.load(p_ar).to(tl.float64)
        p_a += s_ak
        p_ar += s_ak
    else:
        inv_a0 = 1.0
    return p_a, p_ar, inv_a0


@triton.jit
def _monic4(v1, v2, v3, v4, inv_a0, A0: tl.constexpr):
    """Four taps divided by ``a0`` (``A0``; times ``inv_a0``), else as they are."""
    if A0:
        v1, v2, v3, v4 = v1 * inv_a0, v2 * inv_a0, v3 * inv_a0, v4 * inv_a0
    return v1, v2, v3, v4


@triton.jit
def _monic5(v0, v1, v2, v3, v4, inv_a0, A0: tl.constexpr):
    """Five taps divided by ``a0`` (``A0``; times ``inv_a0``), else as they are."""
    if A0:
        v0 = v0 * inv_a0
    v1, v2, v3, v4 = _monic4(v1, v2, v3, v4, inv_a0, A0)
    return v0, v1, v2, v3, v4


@triton.jit
def _lanes4(v1, v2, v3, v4, LANE_F32: tl.constexpr):
    """Four per-lane values (taps, halo) in the lanes' dtype: rounded once to float32 with
    ``LANE_F32``, else as they are (float64)."""
    if LANE_F32:
        v1, v2, v3, v4 = v1.to(tl.float32), v2.to(tl.float32), v3.to(tl.float32), v4.to(tl.float32)
    return v1, v2, v3, v4


@triton.jit
def _lanes5(v0, v1, v2, v3, v4, LANE_F32: tl.constexpr):
    """Five per-lane taps in the lanes' dtype (``_lanes4``)."""
    if LANE_F32:
        v0 = v0.to(tl.float32)
    v1, v2, v3, v4 = _lanes4(v1, v2, v3, v4, LANE_F32)
    return v0, v1, v2, v3, v4


@triton.jit
def _square(q11, q12, q13, q14, q21, q22, q23, q24, q31, q32, q33, q34, q41, q42, q43, q44, NP: tl.constexpr):
    """``Q @ Q`` on the leading NP x NP block (scalars or blocks)."""
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
def _companion_power(p_a, s_ak, N: tl.constexpr, NP: tl.constexpr, LOG: tl.constexpr, inv_a0):
    """``P = A^(2^LOG)`` for the companion matrix ``A`` of ``y[n] = -a1 y[n-1] - ... - a4 y[n-4]``
    (``a_k`` divided by ``a0``, see ``_coefficient``), in float64 scalar registers (no cross-thread
    work), by LOG squarings: a short dependency chain."""
    q11 = -_coefficient(p_a, 0, s_ak, N, inv_a0)
    q12 = -_coefficient(p_a, 1, s_ak, N, inv_a0)
    q13 = -_coefficient(p_a, 2, s_ak, N, inv_a0)
    q14 = -_coefficient(p_a, 3, s_ak, N, inv_a0)
    q21, q22, q23, q24 = 1.0, 0.0, 0.0, 0.0
    q31, q32, q33, q34 = 0.0, 1.0, 0.0, 0.0
    q41, q42, q43, q44 = 0.0, 0.0, 1.0, 0.0
    for _ in tl.static_range(LOG):
        q11, q12, q13, q14, q21, q22, q23, q24, q31, q32, q33, q34, q41, q42, q43, q44 = _square(
            q11, q12, q13, q14, q21, q22, q23, q24, q31, q32, q33, q34, q41, q42, q43, q44, NP)
    return q11, q12, q13, q14, q21, q22, q23, q24, q31, q32, q33, q34, q41, q42, q43, q44


@triton.jit
def _power_by_bits(p11, p12, p13, p14, p21, p22, p23, p24, p31, p32, p33, p34, p41, p42, p43, p44,
                   u1, u2, u3, u4, o_j, p_pw, NP: tl.constexpr, LOG_J: tl.constexpr, USE_TABLE: tl.constexpr):
    """``P^j u`` for element ``j = o_j`` of a block of vectors (``j < 2^LOG_J``): the uniform powers
    ``P^(2^k)`` are applied where bit ``k`` of ``j`` is set, squared in registers from ``P``, or with
    ``USE_TABLE`` loaded from a power table at ``p_pw`` (16 apart; ``P`` unused)."""
    for k in tl.static_range(LOG_J):
        if USE_TABLE:
            p11, p12, p13, p14, p21, p22, p23, p24, p31, p32, p33, p34, p41, p42, p43, p44 = _load_matrix(
                p_pw + k * 16, NP)
        t1, t2, t3, t4 = apply_affine(p11, p12, p13, p14, p21, p22, p23, p24, p31, p32, p33, p34,
                                      p41, p42, p43, p44, 0.0, 0.0, 0.0, 0.0, u1, u2, u3, u4, NP)
        bit = ((o_j >> k) & 1) == 1
        u1 = tl.where(bit, t1, u1)
        u2 = tl.where(bit, t2, u2)
        u3 = tl.where(bit, t3, u3)
        u4 = tl.where(bit, t4, u4)
        if not USE_TABLE:
            p11, p12, p13, p14, p21, p22, p23, p24, p31, p32, p33, p34, p41, p42, p43, p44 = _square(
                p11, p12, p13, p14, p21, p22, p23, p24, p31, p32, p33, p34, p41, p42, p43, p44, NP)
    return u1, u2, u3, u4


@triton.jit
def _store_matrix(p, q11, q12, q13, q14, q21, q22, q23, q24, q31, q32, q33, q34, q41, q42, q43, q44,
                  NP: tl.constexpr):
    """The leading NP x NP block of a 4 x 4 matrix (float64 scalars), row-major at ``p`` (16 apart a
    matrix)."""
    tl.store(p, q11)
    if NP >= 2:
        tl.store(p + 1, q12)
        tl.store(p + 4, q21)
        tl.store(p + 5, q22)
    if NP >= 4:
        tl.store(p + 2, q13)
        tl.store(p + 3, q14)
        tl.store(p + 6, q23)
        tl.store(p + 7, q24)
        tl.store(p + 8, q31)
        tl.store(p + 9, q32)
        tl.store(p + 10, q33)
        tl.store(p + 11, q34)
        tl.store(p + 12, q41)
        tl.store(p + 13, q42)
        tl.store(p + 14, q43)
        tl.store(p + 15, q44)


@triton.jit
def _load_entry(p, k: tl.constexpr, NP: tl.constexpr, n: tl.constexpr):
    """Entry ``k`` (row-major) of a stored matrix, 0.0 outside the leading ``n x n`` block (``n = NP``);
    from L2 (``.cg``): another program stored it, and L1 is not coherent across SMs."""
    if (k // 4 < n) and (k % 4 < n):
        v = tl.load(p + k, cache_modifier=".cg")
    else:
        v = 0.0
    return v


@triton.jit
def _load_matrix(p, NP: tl.constexpr):
    """The matrix ``_store_matrix`` stored at ``p`` (its leading NP x NP block)."""
    return (_load_entry(p, 0, NP, NP), _load_entry(p, 1, NP, NP), _load_entry(p, 2, NP, NP),
            _load_entry(p, 3, NP, NP), _load_entry(p, 4, NP, NP), _load_entry(p, 5, NP, NP),
            _load_entry(p, 6, NP, NP), _load_entry(p, 7, NP, NP), _load_entry(p, 8, NP, NP),
            _load_entry(p, 9, NP, NP), _load_entry(p, 10, NP, NP), _load_entry(p, 11, NP, NP),
            _load_entry(p, 12, NP, NP), _load_entry(p, 13, NP, NP), _load_entry(p, 14, NP, NP),
            _load_entry(p, 15, NP, NP))


@triton.jit
def _power_table_kernel(a, pw, s_ar, s_as, s_ak, s_ps, s_pr, N: tl.constexpr, NP: tl.constexpr, LOG: tl.constexpr,
                        LOG_BLOCK: tl.constexpr, LOG_W: tl.constexpr, A0: tl.constexpr = False):
    """One program a (section, coefficient row): the powers every tile of its rows needs (see
    ``power_table_setup``), by the squarings the kernel would otherwise repeat in every tile:
    ``P^(2^k)`` for ``k < LOG_BLOCK`` (``P = A^C``, a lane's transfer), then ``L^(2^k)`` for
    ``k <= LOG_W`` (``L = P^BLOCK``, a tile's). The same jit helpers in the same order as the
    in-register path, so the bits are the same. ``A0``: rows start with their leading coefficient."""
    i_s = tl.program_id(0).to(tl.int64)
    i_r = tl.program_id(1).to(tl.int64)
    _, p_ar, inv_a0 = _leading(a + i_r * s_ar + i_s * s_as, a + i_r * s_ar + i_s * s_as, s_ak, A0)
    p11, p12, p13, p14, p21, p22, p23, p24, p31, p32, p33, p34, p41, p42, p43, p44 = _companion_power(
        p_ar, s_ak, N, NP, LOG, inv_a0)
    p_pw = pw + i_s * s_ps + i_r * s_pr
    for k in tl.static_range(LOG_BLOCK + LOG_W + 1):  # one past the window's: L itself when W = 1
        _store_matrix(p_pw + k * 16, p11, p12, p13, p14, p21, p22, p23, p24, p31, p32, p33, p34,
                      p41, p42, p43, p44, NP)
        if k < LOG_BLOCK + LOG_W:
            p11, p12, p13, p14, p21, p22, p23, p24, p31, p32, p33, p34, p41, p42, p43, p44 = _square(
                p11, p12, p13, p14, p21, p22, p23, p24, p31, p32, p33, p34, p41, p42, p43, p44, NP)


@triton.jit
def _shift_lanes(v, d, o_l):
    """``v`` of lane ``j - d``, zero for the first ``d`` lanes."""
    return tl.where(o_l >= d, tl.gather(v, tl.maximum(o_l - d, 0), 0), 0.0)


@triton.jit
def _power_scan(e1, e2, e3, e4, p11, p12, p13, p14, p21, p22, p23, p24, p31, p32, p33, p34,
                p41, p42, p43, p44, o_l, p_pw, NP: tl.constexpr, LOG_BLOCK: tl.constexpr, USE_TABLE: tl.constexpr):
    """``V_j = sum_{i <= j} P^(j-i) e_i`` over the lanes: every lane's chunk has the same transfer
    ``P``, so the scan carries vectors, not maps (Kogge-Stone: ``V_j += P^d V_{j-d}`` for
    ``d = 1, 2, 4, ...``, the uniform ``P^d`` squared in registers, or with ``USE_TABLE`` loaded from
    the power table at ``p_pw``; a fixed order, deterministic). Returns ``V`` and ``P^BLOCK``, the
    transfer of a whole tile."""
    for k in tl.static_range(LOG_BLOCK):
        if USE_TABLE:
            p11, p12, p13, p14, p21, p22, p23, p24, p31, p32, p33, p34, p41, p42, p43, p44 = _load_matrix(
                p_pw + k * 16, NP)
        g1 = _shift_lanes(e1, 1 << k, o_l)
        g2 = g1
        g3 = g1
        g4 = g1
        if NP >= 2:
            g2 = _shift_lanes(e2, 1 << k, o_l)
        if NP >= 4:
            g3 = _shift_lanes(e3, 1 << k, o_l)
            g4 = _shift_lanes(e4, 1 << k, o_l)
        e1, e2, e3, e4 = apply_affine(p11, p12, p13, p14, p21, p22, p23, p24, p31, p32, p33, p34,
                                      p41, p42, p43, p44, e1, e2, e3, e4, g1, g2, g3, g4, NP)
        if not USE_TABLE:
            p11, p12, p13, p14, p21, p22, p23, p24, p31, p32, p33, p34, p41, p42, p43, p44 = _square(
                p11, p12, p13, p14, p21, p22, p23, p24, p31, p32, p33, p34, p41, p42, p43, p44, NP)
    if USE_TABLE:  # P^BLOCK: the table's entry after the lane powers
        p11, p12, p13, p14, p21, p22, p23, p24, p31, p32, p33, p34, p41, p42, p43, p44 = _load_matrix(
            p_pw + LOG_BLOCK * 16, NP)
    return e1, e2, e3, e4, p11, p12, p13, p14, p21, p22, p23, p24, p31, p32, p33, p34, p41, p42, p43, p44


@triton.jit
def _window_state(p_agg, p_inc, p_fa, p_fi, i_c, p11, p12, p13, p14, p21, p22, p23, p24,
                  p31, p32, p33, p34, p41, p42, p43, p44, p_lw, USE_TABLE: tl.constexpr, NP: tl.constexpr,
                  W: tl.constexpr, LOG_W: tl.constexpr):
    """The true state before tile ``c`` of one row, from the fixed window of ``_lookback.py``:

        S_{c-1} = sum_{j < W-1} P^j e_{c-1-j} + P^(W-1) inc_{c-W},   P = the transfer of a tile

    ``e`` = a tile's zero-state end state (every full tile of an LTI filter has the same transfer
    ``P``, so only ``e`` is published), ``inc`` = a tile's true end state, zero before tile 0. Element
    ``j`` of a ``[W]`` block applies ``P^j`` by the bits of ``j``, then a fixed-order sum: NP loads a
    window tile instead of a whole map, no scan of matrices, and bitwise deterministic. ``USE_TABLE``:
    the powers ``P^(2^k)`` are loaded from the row's power table at ``p_lw`` (``power_table_setup``) instead
    of squared from ``P`` here. Also returns the polls the wait for the window's flags repeated."""
    o_w = tl.arange(0, W)
    i_k = i_c - 1 - o_w  # the tile of element j (the anchor c-W for the last one)
    m_k = i_k >= 0
    anchor = o_w == W - 1
    n_poll = wait_flags(tl.where(anchor, p_fi, p_fa) + i_k, m_k)
    p_s = tl.where(anchor, p_inc, p_agg) + i_k * 4
    u1 = tl.load(p_s, mask=m_k, other=0.0, cache_modifier=".cg")
    u2 = tl.zeros_like(u1)
    u3 = tl.zeros_like(u1)
    u4 = tl.zeros_like(u1)
    if NP >= 2:
        u2 = tl.load(p_s + 1, mask=m_k, other=0.0, cache_modifier=".cg")
    if NP >= 4:
        u3 = tl.load(p_s + 2, mask=m_k, other=0.0, cache_modifier=".cg")
        u4 = tl.load(p_s + 3, mask=m_k, other=0.0, cache_modifier=".cg")
    # with USE_TABLE the powers come from the row's power table at p_lw (written before the launch)
    u1, u2, u3, u4 = _power_by_bits(p11, p12, p13, p14, p21, p22, p23, p24, p31, p32, p33, p34,
                                    p41, p42, p43, p44, u1, u2, u3, u4, o_w, p_lw, NP, LOG_W, USE_TABLE)
    return tl.sum(u1, 0), tl.sum(u2, 0), tl.sum(u3, 0), tl.sum(u4, 0), n_poll


@triton.jit
def _store_at(p, x, o, I):
    """Store element ``I`` of the 1-D block ``x`` at ``p`` (only the thread holding it writes): how a
    single lane's value leaves registers without a cross-warp reduction."""
    tl.store(p + o * 0, x, mask=o == I)


@triton.jit
def _store_state_at(p, v1, v2, v3, v4, o, I):
    """Element ``I`` of a block of 4-states, as 4 float64 at ``p``."""
    _store_at(p, v1, o, I)
    _store_at(p + 1, v2, o, I)
    _store_at(p + 2, v3, o, I)
    _store_at(p + 3, v4, o, I)


@triton.jit
def _section_pass(
    b_xt, b_ht, b_b0, b_b1, b_b2, b_b3, b_b4, b_x1, b_x2, b_x3, b_x4, b_a1, b_a2, b_a3, b_a4,
    p_a, p_ar, s_ak, inv_a0, agg, inc, p_fa, p_fi, p_pw, i_row, i_c, n_tiles, o_l, m_1, clk, i_tk,
    C: tl.constexpr, LOG: tl.constexpr, M: tl.constexpr, N: tl.constexpr, NP: tl.constexpr,
    HAS_HEAD: tl.constexpr, BLOCK: tl.constexpr, LOG_BLOCK: tl.constexpr, W: tl.constexpr,
    LOG_W: tl.constexpr, USE_TABLE: tl.constexpr, Y_DTYPE: tl.constexpr, FLIP: tl.constexpr,
    TIMED: tl.constexpr = False,
):
    """Steps 1-4 of the module docstring for one filter (one section) on a bit-shaped tile already
    in registers (``FLIP``: its columns in reverse step order, see ``_tile_ptrs``).
    ``p_ar``, ``s_ak``, ``inv_a0``: the section's poles ``a1..aN`` and ``1 / a0`` (1.0 when normalized).
    ``agg``/``inc``/``p_fa``/``p_fi``: this section's look-back buffers and flags.
    ``p_pw``: this section's power table (``power_table_setup``; ``USE_TABLE``), written by a launch
    before this one. ``TIMED``: stamp ticket ``i_tk``'s row of ``clk`` at each step's end (``_clock.py``).
    The lanes' recurrences (step 1 and the re-run) run in the taps' dtype: float64, or float32 where
    the caller rounded the taps and the halo ``b_x*`` (``_lanes4``, ``LANE_F32``); the lane scan, the
    look-back and the start states stay float64.
    Returns the bit-shaped output tile and every lane's true start state (y[t0-1], ..., y[t0-4]), in
    the lanes' dtype."""
    b_0 = tl.zeros([BLOCK], dtype=tl.float64)
    o_n = tl.arange(0, NP)
    b_ring = tl.zeros([BLOCK, NP], dtype=tl.float64)  # unused for N <= 4
    b_z = b_0.to(b_b0.dtype)  # a lane's zero state, in the lanes' dtype

    # ---- 1. every lane from a zero state: its end state e_j (float64 from here on)
    _, _, _, _, _, b_e1, b_e2, b_e3, b_e4, _ = _lti_cols(
        b_xt, b_ht, b_b0, b_b1, b_b2, b_b3, b_b4, b_a1, b_a2, b_a3, b_a4,
        b_x1, b_x2, b_x3, b_x4, b_z, b_z, b_z, b_z, b_ring, p_a, s_ak, m_1, o_n,
        0, LOG, M, N, NP, HAS_HEAD, Y_DTYPE, FLIP)
    b_e1, b_e2, b_e3, b_e4 = b_e1.to(tl.float64), b_e2.to(tl.float64), b_e3.to(tl.float64), b_e4.to(tl.float64)
    if TIMED:
        stamp(clk, i_tk, 4, b_e1, o_l)

    # ---- 2. lane scan: lane j's chunk maps its start state s to P s + e_j, with the same P = A^C
    # (the companion matrix's C-th power) for every lane and tile of the row. Orders 3-4 scan vectors
    # under powers of P (_power_scan); orders 1-2 scan the small maps themselves, which compiled to
    # fewer registers there (benchmarks/kernel_resources.py, sm_90: 128 against 167 at order 2).
    if NP == 4 and USE_TABLE:  # the lane scan's powers from the table too (written before the launch)
        p11, p12, p13, p14, p21, p22, p23, p24, p31, p32, p33, p34, p41, p42, p43, p44 = (
            0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)  # unused
    else:
        p11, p12, p13, p14, p21, p22, p23, p24, p31, p32, p33, p34, p41, p42, p43, p44 = _companion_power(
            p_ar, s_ak, N, NP, LOG, inv_a0)
    if NP == 4:
        (v1, v2, v3, v4, l11, l12, l13, l14, l21, l22, l23, l24, l31, l32, l33, l34, l41, l42, l43, l44
         ) = _power_scan(b_e1, b_e2, b_e3, b_e4, p11, p12, p13, p14, p21, p22, p23, p24, p31, p32, p33, p34,
                         p41, p42, p43, p44, o_l, p_pw, NP, LOG_BLOCK, USE_TABLE)
        # step 3 needs lane j's true end state P^(j+1) S + V_j for the last lane only, P^BLOCK S + V_last:
        # it applies the tile transfer to every lane's V and stores only the last lane's result
        q11, q12, q13, q14, q21, q22, q23, q24, q31, q32, q33, q34, q41, q42, q43, q44 = (
            l11, l12, l13, l14, l21, l22, l23, l24, l31, l32, l33, l34, l41, l42, l43, l44)
    else:
        (q11, q12, q13, q14, q21, q22, q23, q24, q31, q32, q33, q34, q41, q42, q43, q44,
         v1, v2, v3, v4) = scan_affine(
            b_0 + p11, b_0 + p12, b_0 + p13, b_0 + p14, b_0 + p21, b_0 + p22, b_0 + p23, b_0 + p24,
            b_0 + p31, b_0 + p32, b_0 + p33, b_0 + p34, b_0 + p41, b_0 + p42, b_0 + p43, b_0 + p44,
            b_e1, b_e2, b_e3, b_e4, NP, 0)
        if USE_TABLE:  # the window loads the tile transfer's powers from the table instead
            l11, l12, l13, l14, l21, l22, l23, l24, l31, l32, l33, l34, l41, l42, l43, l44 = (
                q11, q12, q13, q14, q21, q22, q23, q24, q31, q32, q33, q34, q41, q42, q43, q44)
        else:
            l11, l12, l13, l14, l21, l22, l23, l24, l31, l32, l33, l34, l41, l42, l43, l44 = _companion_power(
                p_ar, s_ak, N, NP, LOG + LOG_BLOCK, inv_a0)

    # ---- 3. publish this tile's zero-state end state (the last lane's V) first, then look back for
    # the true state S before the tile (the window needs the tile transfer P^BLOCK), then publish this
    # tile's true end state. agg and inc hold 4 float64 a tile.
    if TIMED:
        stamp(clk, i_tk, 5, v1, o_l)
    p_ag = agg + (i_row * n_tiles + i_c) * 4
    _store_state_at(p_ag, v1, v2, v3, v4, o_l, BLOCK - 1)
    publish(p_fa + i_c)
    if TIMED:
        stamp(clk, i_tk, 6, v1, o_l)
    s1, s2, s3, s4, n_poll = _window_state(
        agg + i_row * n_tiles * 4, inc + i_row * n_tiles * 4, p_fa, p_fi, i_c, l11, l12, l13, l14, l21, l22, l23,
        l24, l31, l32, l33, l34, l41, l42, l43, l44, p_pw + LOG_BLOCK * 16, USE_TABLE, NP, W, LOG_W)
    if TIMED:
        stamp(clk, i_tk, 7, b_0 + s1, o_l)
        stamp_value(clk, i_tk, 12, n_poll, o_l)
    # orders 1-2: every lane's true end state (step 4 shifts them); orders 3-4: right for the last lane
    t1, t2, t3, t4 = apply_affine(q11, q12, q13, q14, q21, q22, q23, q24, q31, q32, q33, q34,
                                  q41, q42, q43, q44, v1, v2, v3, v4, s1, s2, s3, s4, NP)
    p_ic = inc + (i_row * n_tiles + i_c) * 4
    _store_state_at(p_ic, t1, t2, t3, t4, o_l, BLOCK - 1)
    publish(p_fi + i_c)
    if TIMED:
        stamp(clk, i_tk, 8, t1, o_l)

    # ---- 4. lane j's true start state (P^j S + V_{j-1}: its left neighbour's true end state); re-run
    if NP == 4:
        if not USE_TABLE:  # (with the table, P^j S takes the powers P^(2^k) from it)
            # P recomputed rather than kept alive through the look-back (that spilled at order 4)
            p11, p12, p13, p14, p21, p22, p23, p24, p31, p32, p33, p34, p41, p42, p43, p44 = _companion_power(
                p_ar, s_ak, N, NP, LOG, inv_a0)
        b_s1, b_s2, b_s3, b_s4 = _power_by_bits(p11, p12, p13, p14, p21, p22, p23, p24, p31, p32, p33, p34,
                                                p41, p42, p43, p44, b_0 + s1, b_0 + s2, b_0 + s3, b_0 + s4,
                                                o_l, p_pw, NP, LOG_BLOCK, USE_TABLE)
        b_s1 += _shift_lanes(v1, 1, o_l)
        b_s2 += _shift_lanes(v2, 1, o_l)
        b_s3 += _shift_lanes(v3, 1, o_l)
        b_s4 += _shift_lanes(v4, 1, o_l)
    else:
        i_prev = tl.maximum(o_l - 1, 0)
        b_s1 = tl.where(o_l == 0, s1, tl.gather(t1, i_prev, 0))
        b_s2 = tl.where(o_l == 0, s2, tl.gather(t2, i_prev, 0))
        b_s3 = tl.where(o_l == 0, s3, tl.gather(t3, i_prev, 0))
        b_s4 = tl.where(o_l == 0, s4, tl.gather(t4, i_prev, 0))
    # the re-run in the lanes' dtype from the float64 start states (float32 lanes: rounded once)
    b_s1, b_s2, b_s3, b_s4 = b_s1.to(b_z.dtype), b_s2.to(b_z.dtype), b_s3.to(b_z.dtype), b_s4.to(b_z.dtype)
    b_yt, _, _, _, _, b_r1, _, _, _, _ = _lti_cols(
        b_xt, b_ht, b_b0, b_b1, b_b2, b_b3, b_b4, b_a1, b_a2, b_a3, b_a4,
        b_x1, b_x2, b_x3, b_x4, b_s1, b_s2, b_s3, b_s4, b_ring, p_a, s_ak, m_1, o_n,
        0, LOG, M, N, NP, HAS_HEAD, Y_DTYPE, FLIP)
    if TIMED:  # b_r1: every lane's last output, the end of its re-run
        stamp(clk, i_tk, 9, b_r1, o_l)
    return b_yt, b_s1, b_s2, b_s3, b_s4


@triton.jit
def _tile_ptrs(p_row, i_tile, T, o_n, REVERSE: tl.constexpr):
    """Pointers of a ``(BLOCK, C)`` tile of a unit-stride row (``o_n = lane * C + column``): processing
    steps ``i_tile + o_n``. ``REVERSE``: the steps run backwards from ``T - 1`` (a reversed signal is
    never copied), and each lane's C addresses are laid out ascending, so column ``c`` holds the lane's
    step ``C - 1 - c`` (``_tile_steps``) and the walkers take the columns in that order (``FLIP``). As
    an ascending run (a base plus the column index) the loads and stores vectorize; descending
    addresses compiled to a scalar load and a 64-bit address a sample (sm_90, the adjoint: 48 loads and
    173 address instructions a thread a tile)."""
    if REVERSE:
        B: tl.constexpr = o_n.shape[0]
        C: tl.constexpr = o_n.shape[1]
        p = p_row + (T - i_tile - C - tl.arange(0, B)[:, None] * C) + tl.arange(0, C)[None, :]
    else:
        p = p_row + i_tile + o_n
    return p


@triton.jit
def _tile_steps(o_n, REVERSE: tl.constexpr):
    """The processing step (less the tile's first) of each element of a ``_tile_ptrs`` tile."""
    if REVERSE:
        B: tl.constexpr = o_n.shape[0]
        C: tl.constexpr = o_n.shape[1]
        o_m = tl.arange(0, B)[:, None] * C + (C - 1 - tl.arange(0, C)[None, :])
    else:
        o_m = o_n
    return o_m


@triton.jit
def _load_tile(p_row, i_tile, T, o_n, REVERSE: tl.constexpr):
    """The ``(BLOCK, C)`` tile of processing steps ``i_tile + o_n`` of a unit-stride row ``p_row``, in
    ``_tile_ptrs``' layout; masked (zero past the row's end) only on a row's last tile."""
    p = _tile_ptrs(p_row, i_tile, T, o_n, REVERSE)
    n_left = T - i_tile
    if n_left >= o_n.shape[0] * o_n.shape[1]:
        t = tl.load(p)
    else:
        t = tl.load(p, mask=_tile_steps(o_n, REVERSE) < n_left, other=0.0)
    return t


@triton.jit
def _store_tile(p_row, i_tile, T, t, o_n, REVERSE: tl.constexpr):
    """Store a tile where ``_load_tile`` loads it (masked on a row's last tile only)."""
    p = _tile_ptrs(p_row, i_tile, T, o_n, REVERSE)
    n_left = T - i_tile
    if n_left >= o_n.shape[0] * o_n.shape[1]:
        tl.store(p, t)
    else:
        tl.store(p, t, mask=_tile_steps(o_n, REVERSE) < n_left)


@triton.jit
def _load_tile_bits(p_row, i_tile, T, o_n, DTYPE: tl.constexpr, LOG: tl.constexpr, V: tl.constexpr,
                    REVERSE: tl.constexpr, LANE_LOADS: tl.constexpr):
    """The bit-shaped ``(BLOCK, C)`` tile ``_load_tile`` loads, as ``DTYPE``: coalesced, or with
    ``LANE_LOADS`` lane by lane in vectors of ``2^V`` (``_lane_tiles.py``)."""
    if LANE_LOADS:
        t = load_lanes(p_row, i_tile, T, DTYPE, 0, LOG, V, o_n.shape[1], o_n.shape[0], REVERSE)
    else:
        t = _to_bits(_load_tile(p_row, i_tile, T, o_n, REVERSE).to(DTYPE), LOG, o_n.shape[0])
    return t


@triton.jit
def _store_tile_bits(p_row, i_tile, T, t, o_n, LOG: tl.constexpr, V: tl.constexpr, REVERSE: tl.constexpr,
                     LANE_LOADS: tl.constexpr):
    """Store the bit-shaped tile ``t`` where ``_load_tile_bits`` loads it, in the same layout."""
    if LANE_LOADS:
        store_lanes(p_row, i_tile, T, t, 0, LOG, V, o_n.shape[1], o_n.shape[0], REVERSE)
    else:
        _store_tile(p_row, i_tile, T, _from_bits(t, LOG, o_n.shape[0]), o_n, REVERSE)


@triton.jit
def _row_tile(p_t, i_tk, R, T, s_r, o_n, REVERSE: tl.constexpr):
    """The ``(BLOCK, C)`` tile of ticket ``i_tk`` (tile ``i_tk // R`` of row ``i_tk % R``) of a
    unit-stride ``[R, T]`` tensor ``p_t``."""
    return _load_tile(p_t + (i_tk % R) * s_r, (i_tk // R) * o_n.shape[0] * o_n.shape[1], T, o_n, REVERSE)


@triton.jit
def _forward_tile(
    x, b, a, head, y, agg, inc, flags, inter, ends, pw, clk, i_tk, o_n,
    T, K, R, n_tiles, KT,
    s_xr, s_xt, s_br, s_bs, s_bk, s_ar, s_as, s_ak, s_hr, s_hs, s_yr, s_is, s_ps, s_pr,
    S: tl.constexpr, C: tl.constexpr, LOG: tl.constexpr, M: tl.constexpr, N: tl.constexpr,
    NP: tl.constexpr, HAS_HEAD: tl.constexpr, BLOCK: tl.constexpr, LOG_BLOCK: tl.constexpr, W: tl.constexpr,
    LOG_W: tl.constexpr, REVERSE: tl.constexpr, STORE_INTER: tl.constexpr, STORE_ENDS: tl.constexpr,
    USE_TABLE: tl.constexpr, TIMED: tl.constexpr, LANE_LOADS: tl.constexpr, V: tl.constexpr, A0: tl.constexpr,
    LANE_F32: tl.constexpr,
):
    """Everything a program does for the tile of ticket ``i_tk`` (``o_n``: the ``(BLOCK, C)`` offsets
    ``lane * C + column``): its input tile's load, every section's steps 1-4, then the output tile's
    store. ``TIMED``: ticket ``i_tk``'s row of ``clk`` gets its stamps (``_clock.py``; one section).
    ``LANE_LOADS``: the tile is loaded and stored lane by lane in vectors of ``2^V`` (``_lane_tiles.py``).
    ``A0``: every section's ``a`` row starts with its leading coefficient ``a0``, and the taps are
    divided by it in registers (``_leading``). ``LANE_F32``: the lanes' recurrences run in float32
    (``_section_pass``)."""
    i_c = i_tk // R  # tiles of all rows advance together
    o_l = tl.arange(0, BLOCK)
    if LANE_LOADS:
        b_xt = load_lanes(x + (i_tk % R) * s_xr, i_c * BLOCK * C, T, y.dtype.element_ty, 0, LOG, V, C, BLOCK,
                          REVERSE)
        if TIMED:
            stamp_start(clk, i_tk, o_l)
            stamp_tile(clk, i_tk, 3, _from_bits(b_xt, LOG, BLOCK), o_l)
    else:
        b_xr = _row_tile(x, i_tk, R, T, s_xr, o_n, REVERSE)
        if TIMED:
            stamp_start(clk, i_tk, o_l)
            stamp_tile(clk, i_tk, 3, b_xr, o_l)
        b_xt = _to_bits(b_xr.to(y.dtype.element_ty), LOG, BLOCK)
    i_r = i_tk % R + 0 * o_l.to(tl.int64)  # per lane (all equal), as the shared jit helpers expect
    i_row = i_tk % R
    i_t0 = (i_c * BLOCK + o_l.to(tl.int64)) * C
    m_g = i_t0 < T
    m_1 = o_l >= 0
    p_x = x + i_r * s_xr

    # the tile stays in registers through every section. Rows have unit time stride (the launcher
    # sees to it), so a tile is one int64 base and int32 offsets below BLOCK * C, and only a row's
    # last tile needs masks: compiled for sm_90, a [BLOCK, C] block of int64 indices and masks kept
    # ~100 more registers a thread alive through the whole pass.
    i_tile = i_c * BLOCK * C  # first step of the tile
    o_m = _tile_steps(o_n, REVERSE)  # each element's step (columns reversed when REVERSE)
    n_left = T - i_tile
    if HAS_HEAD:
        # head[n] enters at processing step n (also when REVERSE); zero from K on
        b_ht = _to_bits(tl.load(head + i_row * s_hr + i_tile + o_m, mask=o_m < K - i_tile, other=0.0), LOG, BLOCK)
    else:
        b_ht = b_xt  # never read
    # section 0's FIR halo comes from x; a later section's input is the previous section's output, so
    # its halo (inputs before the lane) is the previous section's true start state of the lane (M <= N)
    b_h1, b_h2, b_h3, b_h4 = _input_halo(p_x, i_t0, s_xt, m_g, T, M, BLOCK, REVERSE)
    # (a later section's halo comes out of _section_pass in the lanes' dtype)
    b_h1, b_h2, b_h3, b_h4 = _lanes4(b_h1, b_h2, b_h3, b_h4, LANE_F32)
    for i_s in range(S):
        if STORE_INTER:
            _store_tile_bits(inter + (i_s + 0 * i_row) * s_is + i_row * T, i_tile, T, b_xt, o_n, LOG, V, REVERSE,
                             LANE_LOADS)
        if HAS_HEAD and S > 1:
            # this section's head (zero from K on: only a row's first tile reads memory)
            b_ht = _to_bits(tl.load(head + i_row * s_hr + i_s * s_hs + i_tile + o_m, mask=o_m < K - i_tile,
                                    other=0.0), LOG, BLOCK)
        p_b = b + i_r * s_br + i_s * s_bs
        p_a, p_ar, b_ia0 = _leading(a + i_r * s_ar + i_s * s_as, a + i_row * s_ar + i_s * s_as, s_ak, A0)
        b_b0, b_b1, b_b2, b_b3, b_b4 = _fir_coefficients(p_b, s_bk, m_1, M, BLOCK)
        b_b0, b_b1, b_b2, b_b3, b_b4 = _monic5(b_b0, b_b1, b_b2, b_b3, b_b4, b_ia0, A0)
        b_a1, b_a2, b_a3, b_a4 = _pole_taps(p_a, s_ak, m_1, N, BLOCK)
        b_a1, b_a2, b_a3, b_a4 = _monic4(b_a1, b_a2, b_a3, b_a4, b_ia0, A0)
        # the taps in the lanes' dtype, rounded once after the division (the powers use the float64 ones)
        b_b0, b_b1, b_b2, b_b3, b_b4 = _lanes5(b_b0, b_b1, b_b2, b_b3, b_b4, LANE_F32)
        b_a1, b_a2, b_a3, b_a4 = _lanes4(b_a1, b_a2, b_a3, b_a4, LANE_F32)
        p_fa = flags + ((2 * i_s) * R + i_row) * n_tiles  # this section's aggregate flags of this row
        p_fi = flags + ((2 * i_s + 1) * R + i_row) * n_tiles  # and its inclusive flags
        b_xt, b_h1, b_h2, b_h3, b_h4 = _section_pass(
            b_xt, b_ht, b_b0, b_b1, b_b2, b_b3, b_b4, b_h1, b_h2, b_h3, b_h4, b_a1, b_a2, b_a3, b_a4,
            p_a, p_ar, s_ak, b_ia0, agg + i_s * R * n_tiles * 4, inc + i_s * R * n_tiles * 4,
            p_fa, p_fi, pw + i_s * s_ps + i_row * s_pr, i_row, i_c, n_tiles, o_l, m_1, clk, i_tk,
            C, LOG, M, N, NP, HAS_HEAD, BLOCK, LOG_BLOCK, W, LOG_W, USE_TABLE, y.dtype.element_ty, REVERSE,
            TIMED)
        if STORE_ENDS:
            if i_tile + BLOCK * C > T - KT:  # the row's last KT steps: the last tile or two
                i_e = i_tile + o_m - (T - KT)
                tl.store(ends + (i_s * R + i_row) * KT + i_e, _from_bits(b_xt, LOG, BLOCK),
                         mask=(i_e >= 0) & (o_m < n_left))
    _store_tile_bits(y + i_row * s_yr, i_tile, T, b_xt, o_n, LOG, V, REVERSE, LANE_LOADS)
    if TIMED:
        stamp_end(clk, i_tk, o_l)


@triton.jit
def _lti_single_pass_kernel(
    x, b, a, head, y, agg, inc, flags, inter, ends, pw, clk,
    T, K, R, n_tiles, KT,
    s_xr, s_xt, s_br, s_bs, s_bk, s_ar, s_as, s_ak, s_hr, s_hs, s_yr, s_is, s_ps, s_pr,
    S: tl.constexpr, C: tl.constexpr, LOG: tl.constexpr, M: tl.constexpr, N: tl.constexpr,
    NP: tl.constexpr, HAS_HEAD: tl.constexpr, BLOCK: tl.constexpr, LOG_BLOCK: tl.constexpr, W: tl.constexpr,
    LOG_W: tl.constexpr, REVERSE: tl.constexpr, STORE_INTER: tl.constexpr, STORE_ENDS: tl.constexpr,
    USE_TABLE: tl.constexpr, PERSISTENT: tl.constexpr, TIMED: tl.constexpr, LANE_LOADS: tl.constexpr = False,
    V: tl.constexpr = 2, A0: tl.constexpr = False, LANE_F32: tl.constexpr = False,
):
    # S filters in cascade (S = 1: one LTI filter; S > 1: second-order sections, M <= N, each with its
    # own head, s_hs apart: a section's initial state, e.g. sosfilt's zi).
    # STORE_INTER: also store every section's input tile in inter[s] (rows of T, sections s_is apart),
    # for the cascade's backward (kernels/sos.py, sos_adjoint). STORE_ENDS: every section's last KT
    # outputs in ends[s, r, :] (the cascade's final states are formed from them).
    # flags: [per section: agg flags (R, n_tiles) | inclusive flags (R, n_tiles)] then the ticket counter
    # PERSISTENT: fewer programs than tiles, each taking tickets until none is left; it takes its next
    # ticket and touches that tile before it works on the current one (see lti_single_pass).
    # TIMED: a row of clock stamps a ticket in clk (kernels/_clock.py).
    # A0: a's rows [a0, a1, ..., aN] unnormalized, divided by a0 in registers (lfilter's raw coefficients:
    # no division launched before the kernel).
    # LANE_LOADS: each thread loads and stores its own lane's run in vectors of 2^V elements
    # (kernels/_lane_tiles.py) instead of the coalesced tile and its layout change through shared memory.
    p_ticket = flags + 2 * S * R * n_tiles
    o_n = tl.arange(0, BLOCK)[:, None] * C + tl.arange(0, C)[None, :]
    i_tk = take_ticket(p_ticket)
    if PERSISTENT:
        n_total = R * n_tiles
        o_l = tl.arange(0, BLOCK)
        while i_tk < n_total:
            i_nx = take_ticket(p_ticket)
            # one sample of every lane of the next tile (a valid tile past the last ticket too): at C = 32
            # a thread's 128-byte line, fetched while this tile works, so the next tile's load finds its
            # lines in cache. One register a thread, where holding the next tile took 36 (sm_90, order 2)
            i_nt = tl.minimum(i_nx, n_total - 1)
            i_n0 = (i_nt // R) * BLOCK * C + o_l * C
            i_n0 = tl.minimum(i_n0, T - 1)
            if REVERSE:
                i_n0 = T - 1 - i_n0
            p_touch = x + (i_nt % R) * s_xr + i_n0
            b_touch = tl.load(p_touch)
            _forward_tile(x, b, a, head, y, agg, inc, flags, inter, ends, pw, clk, i_tk, o_n, T, K, R, n_tiles,
                          KT, s_xr, s_xt, s_br, s_bs, s_bk, s_ar, s_as, s_ak, s_hr, s_hs, s_yr, s_is, s_ps, s_pr,
                          S, C, LOG, M, N, NP, HAS_HEAD, BLOCK, LOG_BLOCK, W, LOG_W, REVERSE, STORE_INTER,
                          STORE_ENDS, USE_TABLE, TIMED, LANE_LOADS, V, A0, LANE_F32)
            # keeps the touch alive to here without waiting for it earlier: a store that never happens
            # (no ticket is negative; the compiler cannot know), after every other memory access of the tile
            tl.store(p_touch, b_touch, mask=i_nx < 0)
            i_tk = i_nx
    else:
        _forward_tile(x, b, a, head, y, agg, inc, flags, inter, ends, pw, clk, i_tk, o_n, T, K, R, n_tiles,
                      KT, s_xr, s_xt, s_br, s_bs, s_bk, s_ar, s_as, s_ak, s_hr, s_hs, s_yr, s_is, s_ps, s_pr,
                      S, C, LOG, M, N, NP, HAS_HEAD, BLOCK, LOG_BLOCK, W, LOG_W, REVERSE, STORE_INTER,
                      STORE_ENDS, USE_TABLE, TIMED, LANE_LOADS, V, A0, LANE_F32)


@functools.lru_cache(maxsize=256)
def _tile_geometry(R: int, T: int, S: int, C: int, lanes: int | None, window_tiles: int | None,
                   cpu: bool) -> tuple[int, int, int, int, int]:
    """``(BLOCK, n_tiles, W, n_state, n_flags)`` of ``lookback_setup``: a pure function of the shape,
    kept per shape (its Python took about 0.02 ms of the launcher's host time a call on the H200
    machine's host, results/cuda-nvidia-h200-2026-11-28-host-fused/run3-host-profile.txt)."""
    n_chunks = cdiv(T, C)
    # GPU: 64 lanes (2 warps, 2048 samples a tile; on an H200 64 lanes beat 128 by up to 22% at order 2).
    # The interpreter runs tl.associative_scan in Python, so there a tile has at most 8 lanes (which
    # also makes short test signals cross many tiles).
    cap = 8 if cpu else 64
    BLOCK = lanes if lanes is not None else min(cap, max(2, next_pow2(n_chunks)))
    n_tiles = cdiv(n_chunks, BLOCK)
    # Measured on an H200 (2026-11-27, benchmarks/results/cuda-nvidia-h200-2026-11-27-fused-backward):
    # 4x the time-varying kernel's window, i.e. budget 1024 and floor 8, ran LTI order 1-2 at 32 x 2^20
    # 8-11% faster, 4096 x 4096 2.1x faster, order 4 within 6%, one row of 2^24 the same (W = 128).
    W = window_tiles if window_tiles is not None else window(n_tiles, R, budget=1024, floor=8)
    return BLOCK, n_tiles, W, S * R * n_tiles * 4, 2 * S * R * n_tiles + 1


def lookback_setup(R: int, T: int, S: int, C: int, lanes: int | None, window_tiles: int | None, device):
    """Tiles and look-back buffers of a single-pass LTI launch (forward or adjoint) of ``S`` sections:
    ``(BLOCK lanes a tile, n_tiles a row, window W, agg, inc, flags)``: ``agg`` and ``inc`` hold
    ``S * R * n_tiles * 4`` float64 each (section, row, tile, state), flat, since the kernels address
    them from their first element; ``flags`` int32, zeroed: per section aggregate then inclusive flags
    ``(R, n_tiles)``, then the ticket counter. The states share one allocation and the flags take a
    ``torch.zeros`` of their own: on this project's CPU machine the call took 4.4 us of host time
    against 9.6 us for one allocation cut into shaped views (six view ops)."""
    BLOCK, n_tiles, W, n_state, n_flags = _tile_geometry(R, T, S, C, lanes, window_tiles, device.type == "cpu")
    agg = torch.empty(2 * n_state, dtype=torch.float64, device=device)
    flags = torch.zeros(n_flags, dtype=torch.int32, device=device)
    return BLOCK, n_tiles, W, agg, agg[n_state:], flags


_PROGRAMS_PER_SM = 8  # of a persistent launch


def persistent_max_registers(NP: int, num_warps: int, table: bool = True) -> int | None:
    """The register cap (``maxnreg``) of a persistent launch: what lets its ``_PROGRAMS_PER_SM`` programs
    an SM all be resident (65536 registers an SM), at orders 1-2 and biquad cascades only. ptxas gave
    the order-2 loop 158 registers a thread (6 programs an SM, 2 of the 8 waiting for a slot); capped
    at 128 it keeps every value in registers (sm_90, ``benchmarks/kernel_resources.py``: order 2 128
    and no spill, 1752 static instructions against 1744; the 8-biquad cascade 128 and no spill against
    168). Order 4 spilled 120 bytes at 128, so it keeps its 168. Order 2 and the cascades without the
    power table (``table`` False: rows under 4 tiles, ``SSM_LFILTER_POWER_TABLE=0``) spilled 48 and 72
    bytes at 128, so they go uncapped too. None: no cap."""
    if NP > 2 or (NP == 2 and not table):
        return None
    return min(255, 65536 // (_PROGRAMS_PER_SM * 32 * num_warps))


def forward_max_registers(S: int, NP: int, C: int, BLOCK: int, dtype: torch.dtype, plain: bool,
                          requested: bool | None = None, table: bool = True, W: int = 32,
                          lane_loads: bool = False) -> int | None:
    """The register cap (``maxnreg``) of a one-program-a-tile launch, or None. Compiled for sm_90, the
    forward of one filter of order 3 or 4 (float32, 32-sample lanes, 64 lanes, no head, forward in
    time) took 168 registers a thread, 6 programs an SM; capped at 144 it keeps every value in
    registers (order 4: 3696 static instructions against 3664) and 7 fit (at 128 it spilled 40 bytes;
    ``benchmarks/results/sm90-compile-2026-11-28/``). Only that verified shape (``plain``: no head,
    not reversed, no section or end stores; ``table``: the powers loaded from the power table) gets it
    (``SSM_LFILTER_REGISTER_CAP`` or ``requested`` False: none). Without the table (rows under 4 tiles,
    ``SSM_LFILTER_POWER_TABLE=0``) the tile squares the powers itself, and capped at 144 it spilled
    120 bytes at order 3 and 128 at order 4; with a look-back window ``W`` over 32 tiles (fewer than 32
    rows) it spilled 8 bytes at W = 64 and 112-128 at W = 128.

    With ``lane_loads`` (``_lane_tiles.py``) orders 1-2 take 128 where it was verified (triton 3.6.0 and
    3.7.1): uncapped, order 1 took 96-105 registers and spilled 8 bytes at 32 x 2^20, order 2 took 152
    (12 warps an SM) at 32 x 2^20; capped, order 1 spilled nothing at 1 to 4096 rows, order 2 nothing
    with the power table at W = 32 and 64 (32 and 16 rows), but 24 bytes at W = 128 (8 rows; 121
    registers uncapped) and 32-40 without the table (4096 x 4096; 120 uncapped), which go uncapped."""
    if not (_use_register_cap(requested) and plain and S == 1 and C == 32 and BLOCK == 64
            and dtype == torch.float32):
        return None
    if lane_loads and (NP == 1 or (NP == 2 and table and W in (32, 64))):
        return 128
    if not (table and W <= 32 and NP == 4):
        return None
    return 144


@functools.lru_cache(maxsize=None)
def persistent_programs(device: torch.device) -> int:
    """Programs of a persistent launch: 8 an SM on a GPU (the single-pass forward's occupancy at orders
    1-2, 16 warps of 2-warp programs; more would only wait for a slot), 2 under the interpreter, which
    runs programs one after another (the first takes every ticket; the second finds none left)."""
    if device.type != "cuda":
        return 2
    return _PROGRAMS_PER_SM * torch.cuda.get_device_properties(device).multi_processor_count


def power_table_setup(a: torch.Tensor, S: int, NP: int, C: int, n_tiles: int, BLOCK: int, W: int,
                      requested: bool | None = None, monic: bool = True) -> tuple[torch.Tensor | None, int, int]:
    """The power table of a single-pass LTI launch (forward or adjoint), written by a launch of its
    own (``_power_table_kernel``, one program a section and coefficient row), or ``(None, 0, 0)``.

    Every tile of a row used to square the companion matrix in registers, in every thread, for the
    powers its lane scan, look-back window and lane start states apply: at order 4 (C = 32, 64 lanes,
    W = 32) about 1,000 float64 operations a thread a tile after its look-back, more than its lanes'
    own recurrences (compiled for sm_90: 72 float64 instructions a sample, 108 instructions in all).
    They depend only on the coefficients, so they are computed once: ``P^(2^k)`` (``k < log2 BLOCK``,
    ``P = A^C``) and ``L^(2^k)`` (``k <= log2 W``, ``L = P^BLOCK``). Shared coefficients share one
    table. The launch precedes the kernel's on the stream, so every tile may load the table at once.

    A row's first tile used to write the table, and at orders 3-4 every later tile waited, before its
    lane scan, for a flag of the tile ``W`` before it (a chain back to the first tile). Its ~200 stores
    made Triton's coalescing pass take 87 of the order-4 kernel's 96 s of compile for sm_90 here
    (``benchmarks/compile_times.py``); the launch of its own compiles in about a second and the tiles'
    kernel no longer carries the stores or the wait.

    ``a [Ra, S, N]``: ``Ra`` tables (1 or R); ``monic=False``: ``a [Ra, S, N+1]``, ``a0`` first. Used for orders ``N >= 2`` on rows of at least 4 tiles,
    unless ``requested`` (or ``SSM_LFILTER_POWER_TABLE=0``) turns it off. Returns the table
    ``[S, Ra, log2 BLOCK + log2 W + 1, 16]`` float64 and its section and row strides (0 for shared
    coefficients)."""
    if not (_use_power_table(requested) and NP >= 2 and n_tiles >= 4):
        return None, 0, 0
    n_mat = (BLOCK.bit_length() - 1) + W.bit_length()  # log2 BLOCK + log2 W + 1
    pw = torch.empty(S, a.shape[0], n_mat, 16, dtype=torch.float64, device=a.device)
    fill_power_table(a, pw, NP, C, BLOCK, W, monic)
    return pw, pw.stride(0), pw.stride(1) if a.shape[0] > 1 else 0


def fill_power_table(a: torch.Tensor, pw: torch.Tensor, NP: int, C: int, BLOCK: int, W: int, monic: bool = True) -> None:
    """Write the table ``pw [S, Ra, n, 16]`` of ``power_table_setup`` for ``a [Ra, S, N]`` (``monic=False``:
    ``[Ra, S, N+1]``, ``a0`` first)."""
    S, Ra = pw.shape[0], pw.shape[1]
    _power_table_kernel[(S, Ra)](
        a, pw, a.stride(0) if Ra > 1 else 0, a.stride(1), a.stride(2), pw.stride(0), pw.stride(1) if Ra > 1 else 0,
        N=a.shape[2] - (0 if monic else 1), NP=NP, LOG=C.bit_length() - 1, LOG_BLOCK=BLOCK.bit_length() - 1,
        LOG_W=W.bit_length() - 1, A0=not monic, num_warps=1)


def lti_single_pass(x: torch.Tensor, b: torch.Tensor, a: torch.Tensor, head: torch.Tensor, y: torch.Tensor,
                    C: int, *, lanes: int | None = None, window_tiles: int | None = None,
                    reverse: bool = False, sections: torch.Tensor | None = None,
                    ends: torch.Tensor | None = None, power_table: bool | None = None,
                    persistent: bool | None = None, clock: torch.Tensor | None = None,
                    register_cap: bool | None = None, lane_loads: bool | None = None,
                    monic: bool = True, lane_float32: bool | None = None) -> torch.Tensor:
    """Fill ``y [R, T]`` (allocated by ``lti``, which also checked every argument) in one launch.

    ``b [Rb, M+1]``, ``a [Ra, N]``, or a cascade of S filters: ``b [Rb, S, M+1]``, ``a [Ra, S, N]``
    (then ``M <= N``, and ``head [R, S, K]``: each section's own). ``C``: samples per lane, a power of two in [2, 64];
    ``1 <= N <= 4``, ``M <= 4``. ``lanes`` (chunks per tile, a power of two) and ``window_tiles``
    (look-back window) default to sizes for the GPU; tests force small ones so short signals cross
    many tiles and window links. ``reverse``: run backwards in time (x and y read and written at
    ``T-1-n``; ``head[n]`` still enters at the n-th step), with no copy of the reversed signal.
    ``sections [S, R, T]`` (contiguous): also receives every section's input (the cascade's backward).
    ``ends [S, R, KT]`` (contiguous, ``KT <= T``, not with ``reverse``): receives every section's last
    ``KT`` outputs. ``power_table``: False computes the companion matrix powers in every tile instead
    of loading them from the table of ``power_table_setup`` (None: its default). ``persistent``: launch
    fewer programs than tiles (``persistent_programs``), each taking tickets in a loop: it takes its
    next ticket and loads one sample of every lane of that tile before it works on the current one, so
    that the ticket's atomic and the next tile's DRAM latency overlap the current tile's look-back; the
    same results bit for bit (None: ``SSM_LFILTER_PERSISTENT``, off unless "1"). ``clock``: an int64
    CUDA tensor, resized to ``[tiles, _clock.STAMPS]`` and filled with every tile's clock stamps (one
    filter; a diagnostic, ``kernels/_clock.py``), row ``i`` for the tile of ticket ``i`` (tile
    ``i // R`` of row ``i % R``). ``register_cap``: whether a one-program-a-tile launch takes
    ``forward_max_registers``' cap (None: ``SSM_LFILTER_REGISTER_CAP``, on unless "0"). ``lane_loads``:
    every thread loads and stores its own lane's run in 16-byte vectors (``_lane_tiles.py``) instead of
    the coalesced tile and its layout change through shared memory; the same results bit for bit
    (None: ``SSM_LFILTER_LANE_LOADS``, off unless "1"). ``monic=False``: every ``a`` row (section) starts
    with its leading coefficient, ``a [Ra, N+1]`` or ``[Ra, S, N+1]``, and the kernel divides ``b`` and
    ``a`` by it in registers. ``lane_float32``: on float32 data, the lanes' recurrences run in float32
    (the scan, look-back and start states in float64; None: ``SSM_LFILTER_LANE_FLOAT32``, off unless
    "1"); float64 data always runs float64 lanes."""
    check_tiles("lti", lanes, window_tiles)
    if b.dim() == 2:
        b, a = b.unsqueeze(1), a.unsqueeze(1)
    R, T = x.shape
    S, M, N, K = b.shape[1], b.shape[2] - 1, a.shape[2] - (0 if monic else 1), head.shape[-1]
    if head.dim() == 2:  # one filter's head: the cascade layout with one section
        head = head.unsqueeze(1)
    # the kernel addresses a tile from one base with int32 offsets: unit time stride
    if y.stride(1) != 1:
        raise ValueError(f"lti: expected an output with unit time stride, got strides {y.stride()}")
    x = x if x.stride(1) == 1 or T <= 1 else x.contiguous()
    head = head if head.stride(-1) == 1 or K <= 1 else head.contiguous()
    NP = 1 if N == 1 else (2 if N == 2 else 4)
    LOG = C.bit_length() - 1
    BLOCK, n_tiles, W, agg, inc, flags = lookback_setup(R, T, S, C, lanes, window_tiles, x.device)
    has_head = K > 0
    s_hr = head.stride(0) if has_head and head.shape[0] > 1 else 0
    s_hs = head.stride(1) if has_head and S > 1 else 0
    store_inter = sections is not None
    KT = ends.shape[2] if ends is not None else 0
    if KT and (reverse or ends.shape != (S, R, KT) or not ends.is_contiguous() or KT > T):
        raise ValueError(f"lti_single_pass: expected contiguous ends [S={S}, R={R}, KT <= {T}] without reverse, "
                         f"got {tuple(ends.shape)}")
    pw, s_ps, s_pr = power_table_setup(a, S, NP, C, n_tiles, BLOCK, W, power_table, monic)
    timed = prepare_clock(clock, R * n_tiles, S, "lti_single_pass")
    persist = _use_persistent(persistent)
    grid = min(R * n_tiles, persistent_programs(x.device)) if persist else R * n_tiles
    num_warps = max(1, min(4, BLOCK // 32))
    plain = not (has_head or reverse or store_inter or KT)
    lanes_io = _use_lane_loads(lane_loads)
    lane_f32 = _use_lane_float32(lane_float32) and y.dtype == torch.float32
    cap = (persistent_max_registers(NP, num_warps, pw is not None) if persist
           else forward_max_registers(S, NP, C, BLOCK, y.dtype, plain, register_cap, pw is not None, W, lanes_io))
    _lti_single_pass_kernel[(grid,)](
        x, b, a, head if has_head else x, y, agg, inc, flags, sections if store_inter else y,
        ends if KT else y, agg if pw is None else pw, clock if timed else flags,
        T, K, R, n_tiles, KT,
        x.stride(0), x.stride(1), b.stride(0) if b.shape[0] > 1 else 0, b.stride(1), b.stride(2),
        a.stride(0) if a.shape[0] > 1 else 0, a.stride(1), a.stride(2), s_hr, s_hs, y.stride(0),
        R * T if store_inter else 0, s_ps, s_pr,
        S=S, C=C, LOG=LOG, M=M, N=N, NP=NP, HAS_HEAD=has_head, BLOCK=BLOCK,
        LOG_BLOCK=BLOCK.bit_length() - 1, W=W, LOG_W=W.bit_length() - 1, REVERSE=bool(reverse),
        STORE_INTER=store_inter, STORE_ENDS=KT > 0, USE_TABLE=pw is not None, PERSISTENT=persist, TIMED=timed,
        LANE_LOADS=lanes_io, V=vector_log2(max(x.element_size(), y.element_size())), A0=not monic,
        LANE_F32=lane_f32,
        num_warps=num_warps, **register_cap_option(cap))
    return y
