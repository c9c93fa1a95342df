"""Single-pass Triton kernel for the whole backward of the LTI filter (orders N, M <= 4): one launch
reads the output gradient ``g``, ``x`` and ``y`` once and writes ``dx`` once.

For ``y = lti(x, b, a, head, reverse)`` the adjoint runs the other way in time. In its processing
steps ``p`` (the forward's memory order reversed)::

    v[p]  = g[p] - sum_{k=1..N} a[k-1] v[p-k]          the adjoint state (dL/du, u the FIR output)
    dx[p] = sum_{k=0..M} b[k] v[p-k]                   an FIR of v
    db[k] = sum_p v[p] x[p+k]          (k <= M)        lagged dot products: x and y at later
    da[k] = -sum_p v[p] y[p+1+k]       (k < N)         processing steps (earlier forward times)
    dhead[n] = v[T-1-n]                (n < K)         the head entered at the forward's step n

The composed backward (``ssm_lfilter.ops._adjoint_composed``) writes ``v``, reads it back for the FIR
and again with ``x`` and ``y`` for the reductions: 7 passes over ``T`` samples where this kernel takes
4 (read ``g``, ``x``, ``y``, write ``dx``), the least the backward can move.

How: steps 1-4 of ``lti_single_pass.py`` run the all-pole part (``b = [1]``) on a tile of ``g``, which
leaves the tile of ``v`` and every lane's true start state ``v[t0-1..t0-4]`` in registers. That start
state is the FIR's input halo (when ``M > N`` the poles are padded with zeros to order ``M`` so the
state holds ``M`` samples of ``v``). One walk over the tile's columns (``_adjoint_cols``) then forms
``dx`` and, per lane, the float64 sums ``x[q] v[q-k]`` and ``y[q] v[q-1-k]``: the lagged products
regrouped by the later index, so ``x`` and ``y`` are read as tiles aligned with ``g`` (coalesced, no
shifted re-reads). Each tile stores its sums; the launcher adds the tiles with ``torch.sum`` in a
fixed order. ``v`` is rounded to ``g``'s dtype where the composed path stores it, so both give the
same values up to the FIR halo (float64 here, rounded there).

The kernel also runs a cascade (``S`` sections, ``kernels/sos.py: sos_adjoint``): the sections' adjoints
last first in one launch, each section's ``dx`` tile staying in registers as the output gradient of
the section before, each with its own look-back buffers and flags, ``x``/``y`` tiles read from the
stack of section inputs.

Registers (``benchmarks/kernel_resources.py``, sm_90): the ``x`` and ``y`` tiles and nine float64 sums
stay alive through the walk, so lanes of 32 samples took 255 registers a thread and spilled at order
4; lanes of 16 samples (1024-sample tiles) take 124-166 registers at orders 1-4 with no spill.

Only integer atomics (the look-back's ticket and flags): bitwise deterministic.
CUDA tensors, or CPU tensors under ``TRITON_INTERPRET=1``; real dtypes.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .._raw_coefficients import a_grad_width
from ._bits import from_bits as _from_bits
from ._bits import to_bits as _to_bits
from ._lane_tiles import load_lanes
from ._clock import prepare_clock, stamp_end, stamp_start, stamp_tile
from ._host import register_cap_option, vector_log2
from ._lookback import check_tiles, take_ticket
from ._variants import lane_float32 as _use_lane_float32
from ._variants import lane_loads as _use_lane_loads
from ._variants import register_cap as _register_cap
from ._variants import one_warp_tiles as _one_warp_tiles
from ._variants import tile_variants as _tile_variants
from ._variants import single_pass as _single_pass
from .lti import _fir_coefficients, _fir_step, _pole_taps, _tile_log
from .lti_single_pass import (_lanes4, _lanes5, _leading, _load_tile, _load_tile_bits, _monic4, _monic5, _section_pass,
                              _store_tile_bits, _tile_steps, lookback_setup, power_table_setup)

__all__ = ["lti_adjoint", "lti_adjoint_sums", "fused_adjoint_applies"]

_DEFAULT_C = 16  # samples per lane: 1024-sample tiles (see the registers note in the docstring)


def _default_c(R: int, M: int, N: int) -> int:
    """Samples per lane. 16 (1024-sample tiles) as a rule; one row of order <= 2 takes 32: timed on an
    H200 at 1 x 2^24, order 2, 32-sample lanes ran 1.28x faster (half the tiles on the one look-back
    chain) while at 32 x 2^20 they ran 1.39x slower (255 registers a thread)."""
    return 32 if R == 1 and max(M, N) <= 2 else _DEFAULT_C


@triton.jit
def _accumulate(s1, s2, s3, s4, z, h1, h2, h3, h4, NK: tl.constexpr):
    """``s_k += z * h_k`` for the first ``NK`` of the four sums."""
    if NK >= 1:
        s1 += z * h1
    if NK >= 2:
        s2 += z * h2
    if NK >= 3:
        s3 += z * h3
    if NK >= 4:
        s4 += z * h4
    return s1, s2, s3, s4


@triton.jit
def _adjoint_cols(vt, xt, yt, b_b0, b_b1, b_b2, b_b3, b_b4, h1, h2, h3, h4,
                  sb0, sb1, sb2, sb3, sb4, sa1, sa2, sa3, sa4,
                  LOG: tl.constexpr, M: tl.constexpr, NB: tl.constexpr, NA: tl.constexpr, DX_DTYPE: tl.constexpr,
                  FLIP: tl.constexpr):
    """Walk the 2^LOG columns of the bit-shaped tiles of ``v``, ``x`` and ``y`` in order (as ``_lti_cols``)
    with the last four ``v`` of each lane in ``h1..h4`` (``v[q-1..q-4]``, the lane's start state at
    first). Per column ``q``: ``dx[q] = sum_k b_k v[q-k]``, and per lane the float64 sums
    ``sb_k += x[q] v[q-k]`` and ``sa_k += y[q] v[q-k]`` (``sum_p v[p] x[p+k]`` regrouped by the later
    index, so ``x`` and ``y`` are read as aligned tiles, once). Returns the bit-shaped ``dx`` tile,
    the history and the sums. ``FLIP``: the columns hold the steps in reverse order (``_tile_ptrs``):
    each split's second half first, the output in the input's column order. The walk runs in the taps'
    dtype (float64, or float32 with the kernel's ``LANE_F32``: then the sums are a lane's in float32,
    added over the tile in float64)."""
    if LOG == 0:
        v0 = vt.to(b_b0.dtype)
        x0 = xt.to(b_b0.dtype)
        y0 = yt.to(b_b0.dtype)
        if NB >= 1:
            sb0 += x0 * v0
        sb1, sb2, sb3, sb4 = _accumulate(sb1, sb2, sb3, sb4, x0, h1, h2, h3, h4, NB - 1)
        sa1, sa2, sa3, sa4 = _accumulate(sa1, sa2, sa3, sa4, y0, h1, h2, h3, h4, NA)
        d, h1, h2, h3, h4 = _fir_step(v0, b_b0, b_b1, b_b2, b_b3, b_b4, h1, h2, h3, h4, M)
        dt = d.to(DX_DTYPE)
    else:
        v_a, v_b = tl.split(vt)  # the first and the second half of the columns
        x_a, x_b = tl.split(xt)
        y_a, y_b = tl.split(yt)
        if FLIP:  # the second half holds the earlier steps: it runs first
            v_a, v_b, x_a, x_b, y_a, y_b = v_b, v_a, x_b, x_a, y_b, y_a
        d_a, h1, h2, h3, h4, sb0, sb1, sb2, sb3, sb4, sa1, sa2, sa3, sa4 = _adjoint_cols(
            v_a, x_a, y_a, b_b0, b_b1, b_b2, b_b3, b_b4, h1, h2, h3, h4,
            sb0, sb1, sb2, sb3, sb4, sa1, sa2, sa3, sa4, LOG - 1, M, NB, NA, DX_DTYPE, FLIP)
        d_b, h1, h2, h3, h4, sb0, sb1, sb2, sb3, sb4, sa1, sa2, sa3, sa4 = _adjoint_cols(
            v_b, x_b, y_b, b_b0, b_b1, b_b2, b_b3, b_b4, h1, h2, h3, h4,
            sb0, sb1, sb2, sb3, sb4, sa1, sa2, sa3, sa4, LOG - 1, M, NB, NA, DX_DTYPE, FLIP)
        if FLIP:
            d_a, d_b = d_b, d_a
        dt = tl.join(d_a, d_b)
    return dt, h1, h2, h3, h4, sb0, sb1, sb2, sb3, sb4, sa1, sa2, sa3, sa4


@triton.jit
def _store_tile_sum(p, s, K: tl.constexpr, NK: tl.constexpr, SIGN: tl.constexpr):
    """Lane sums ``s`` of lag ``K`` added over the tile in float64 (fixed order, ``_tap_sum``), stored at
    ``p + K`` when ``K < NK``."""
    _store_if(p, SIGN * _tap_sum(s, K, NK), K, NK)


@triton.jit
def _tap_sum(s, K: tl.constexpr, NK: tl.constexpr):
    """The tile's sum of lag ``K``'s lane sums ``s`` in float64 (fixed order), 0.0 when ``K >= NK``."""
    if K < NK:
        v = tl.sum(s.to(tl.float64), 0)
    else:
        v = 0.0
    return v


@triton.jit
def _tap(p, K: tl.constexpr, s_k, NK: tl.constexpr):
    """Coefficient ``K`` of a row (float64 scalar), 0.0 when ``K >= NK``."""
    if K < NK:
        v = tl.load(p + K * s_k).to(tl.float64)
    else:
        v = 0.0
    return v


@triton.jit
def _store_if(p, v, K: tl.constexpr, NK: tl.constexpr):
    """``p[K] = v`` when ``K < NK``."""
    if K < NK:
        tl.store(p + K, v)


@triton.jit
def _store_raw_sums(p, sb0, sb1, sb2, sb3, sb4, sa1, sa2, sa3, sa4, p_b, s_bk, p_a, s_ak, inv_a0,
                    NB: tl.constexpr, NA: tl.constexpr):
    """The tile's share of the gradients of the raw coefficients (``A0``), stored at ``p``:
    ``[db_0..db_{NB-1}, da_0, da_1..da_NA]`` (``da_0`` and on only when ``NA > 0``). The filter ran
    ``(b / a0, a[1:] / a0)``; its gradients ``gb``, ``ga`` (the sums) map to the raw ones as
    ``db = gb / a0``, ``da_k = ga_k / a0`` and ``da_0 = -(sum db b + sum da_k a_k) / a0``: linear in the
    sums, so every tile adds its share and the tiles' fixed-order sum is the row's gradient. ``da_0``
    needs every ``db`` (the launcher sees ``NB = M + 1``). ``p_b``, ``p_a``: the row's raw ``b`` and its
    ``a1..aN`` (past ``a0``); ``inv_a0 = 1 / a0``."""
    d0 = _tap_sum(sb0, 0, NB) * inv_a0
    d1 = _tap_sum(sb1, 1, NB) * inv_a0
    d2 = _tap_sum(sb2, 2, NB) * inv_a0
    d3 = _tap_sum(sb3, 3, NB) * inv_a0
    d4 = _tap_sum(sb4, 4, NB) * inv_a0
    e1 = -_tap_sum(sa1, 0, NA) * inv_a0
    e2 = -_tap_sum(sa2, 1, NA) * inv_a0
    e3 = -_tap_sum(sa3, 2, NA) * inv_a0
    e4 = -_tap_sum(sa4, 3, NA) * inv_a0
    _store_if(p, d0, 0, NB)
    _store_if(p, d1, 1, NB)
    _store_if(p, d2, 2, NB)
    _store_if(p, d3, 3, NB)
    _store_if(p, d4, 4, NB)
    if NA > 0:
        e0 = (d0 * _tap(p_b, 0, s_bk, NB) + d1 * _tap(p_b, 1, s_bk, NB) + d2 * _tap(p_b, 2, s_bk, NB)
              + d3 * _tap(p_b, 3, s_bk, NB) + d4 * _tap(p_b, 4, s_bk, NB)
              + e1 * _tap(p_a, 0, s_ak, NA) + e2 * _tap(p_a, 1, s_ak, NA) + e3 * _tap(p_a, 2, s_ak, NA)
              + e4 * _tap(p_a, 3, s_ak, NA))
        tl.store(p + NB, -e0 * inv_a0)
        _store_if(p + NB + 1, e1, 0, NA)
        _store_if(p + NB + 1, e2, 1, NA)
        _store_if(p + NB + 1, e3, 2, NA)
        _store_if(p + NB + 1, e4, 3, NA)


@triton.jit
def _lti_adjoint_kernel(
    g, x, y, b, a, dx, vh, part, agg, inc, flags, g_ends, pw, clk,
    T, K, R, n_tiles, KT,
    s_gr, s_xs, s_xr, s_yr, s_bs, s_br, s_bk, s_as, s_ar, s_ak, s_dr, s_vr, s_vs, s_ps, s_pr,
    S: tl.constexpr, C: tl.constexpr, LOG: tl.constexpr, M: tl.constexpr, N: tl.constexpr, NP: tl.constexpr,
    NB: tl.constexpr, NA: tl.constexpr, HAS_DX: tl.constexpr, HAS_VH: tl.constexpr, HAS_ENDS: tl.constexpr,
    BLOCK: tl.constexpr, LOG_BLOCK: tl.constexpr, W: tl.constexpr, LOG_W: tl.constexpr, REVERSE: tl.constexpr,
    USE_TABLE: tl.constexpr, TIMED: tl.constexpr, LANE_LOADS: tl.constexpr = False, V: tl.constexpr = 2,
    A0: tl.constexpr = False, LANE_F32: tl.constexpr = False,
):
    # TIMED: a row of clock stamps a ticket in clk (kernels/_clock.py; one filter).
    # A0: b and a unnormalized, a's rows [a0, a1..aN]: the kernel divides by a0 in registers and part
    # receives the raw coefficients' gradients (_store_raw_sums), NB + NA + 1 a tile (NA > 0).
    # LANE_LOADS: the g, x, y tiles loaded and dx stored lane by lane in vectors of 2^V elements
    # (kernels/_lane_tiles.py) instead of coalesced tiles whose layout changes through shared memory.
    # S filters in cascade, their adjoints run last section first (S = 1: one LTI filter, x and y its
    # input and output; S > 1: x is the [S+1, R, T] stack of section inputs and the output, y unused;
    # each section's dhead s_vs apart). HAS_ENDS: g_ends [S, R, KT] is the gradient of every section's
    # last KT outputs (the cascade's final states), added to that section's output gradient.
    # flags: [per section: aggregate flags (R, n_tiles) | inclusive flags] | the ticket counter
    # LANE_F32: the lanes' recurrences (v's, as the forward's) and the walk (dx and the lane sums) run in
    # float32; the lane scan, the look-back, the start states and the sums over the tile stay float64.
    i_tk = take_ticket(flags + 2 * S * R * n_tiles)
    i_c = i_tk // R  # tiles of all rows advance together
    i_row = i_tk % R
    o_l = tl.arange(0, BLOCK)
    i_r = i_row + 0 * o_l.to(tl.int64)  # per lane (all equal), as the shared jit helpers expect
    m_1 = o_l >= 0
    i_tile = i_c * BLOCK * C  # the tile's first processing step
    o_n = tl.arange(0, BLOCK)[:, None] * C + tl.arange(0, C)[None, :]
    o_m = _tile_steps(o_n, REVERSE)  # each element's step (columns reversed when REVERSE)
    n_left = T - i_tile
    b_0 = tl.zeros([BLOCK], dtype=tl.float64)
    if LANE_F32:
        b_l = tl.zeros([BLOCK], dtype=tl.float32)  # zeros in the lanes' dtype
    else:
        b_l = b_0

    # ---- the tile of g (one int64 base, int32 offsets, masks only on a row's last tile); through the
    # cascade it becomes each section's dx, the output gradient of the section before
    if LANE_LOADS:
        b_gt = load_lanes(g + i_row * s_gr, i_tile, T, dx.dtype.element_ty, 0, LOG, V, C, BLOCK, REVERSE)
        if TIMED:
            stamp_start(clk, i_tk, o_l)
            stamp_tile(clk, i_tk, 3, _from_bits(b_gt, LOG, BLOCK), o_l)
    else:
        b_gr = _load_tile(g + i_row * s_gr, i_tile, T, o_n, REVERSE)
        if TIMED:
            stamp_start(clk, i_tk, o_l)
            stamp_tile(clk, i_tk, 3, b_gr, o_l)
        b_gt = _to_bits(b_gr.to(dx.dtype.element_ty), LOG, BLOCK)
    for j in range(S):
        i_s = S - 1 - j
        i_s64 = i_s + 0 * i_row  # int64: section offsets in the [S+1, R, T] stack may pass 2^31
        if HAS_ENDS:
            if i_tile < KT:  # processing step p is time T-1-p: the last KT times lead the first tile
                b_gt = _to_bits(_from_bits(b_gt, LOG, BLOCK) + tl.load(
                    g_ends + (i_s * R + i_row) * KT + (KT - 1 - o_m), mask=(o_m < KT) & (o_m < n_left),
                    other=0.0).to(dx.dtype.element_ty), LOG, BLOCK)
        # ---- v: the all-pole adjoint (b = [1]) with its carries; every lane's true start state v[t0-1..]
        p_a, p_ar, b_ia0 = _leading(a + i_r * s_ar + i_s * s_as, a + i_row * s_ar + i_s * s_as, s_ak, A0)
        b_a1, b_a2, b_a3, b_a4 = _pole_taps(p_a, s_ak, m_1, N, BLOCK)
        b_a1, b_a2, b_a3, b_a4 = _monic4(b_a1, b_a2, b_a3, b_a4, b_ia0, A0)
        b_a1, b_a2, b_a3, b_a4 = _lanes4(b_a1, b_a2, b_a3, b_a4, LANE_F32)
        b_vt, b_s1, b_s2, b_s3, b_s4 = _section_pass(
            b_gt, b_gt, b_l + 1.0, b_l, b_l, b_l, b_l, b_l, b_l, b_l, b_l, b_a1, b_a2, b_a3, b_a4,
            p_a, p_ar, s_ak, b_ia0,
            agg + j * R * n_tiles * 4, inc + j * R * n_tiles * 4,
            flags + (2 * j * R + i_row) * n_tiles, flags + ((2 * j + 1) * R + i_row) * n_tiles,
            pw + i_s * s_ps + i_row * s_pr, i_row, i_c, n_tiles, o_l, m_1, clk, i_tk, C, LOG, 0, N, NP, False,
            BLOCK, LOG_BLOCK, W, LOG_W, USE_TABLE, dx.dtype.element_ty, REVERSE, TIMED)

        # ---- one walk over the columns: dx = FIR(v) (the lanes' start states are its input halo) and
        # the lagged sums against aligned tiles of the section's input and output. v past the row's end
        # (last tile) is zeroed, so an overflow there cannot reach the sums as inf * 0.
        if n_left < BLOCK * C:
            b_vt = _to_bits(tl.where(o_m < n_left, _from_bits(b_vt, LOG, BLOCK), 0.0), LOG, BLOCK)
        b_b0, b_b1, b_b2, b_b3, b_b4 = _fir_coefficients(b + i_r * s_br + i_s * s_bs, s_bk, m_1, M, BLOCK)
        b_b0, b_b1, b_b2, b_b3, b_b4 = _monic5(b_b0, b_b1, b_b2, b_b3, b_b4, b_ia0, A0)
        b_b0, b_b1, b_b2, b_b3, b_b4 = _lanes5(b_b0, b_b1, b_b2, b_b3, b_b4, LANE_F32)
        if NB > 0:
            p_xs = x + i_s64 * s_xs + i_row * s_xr
            b_xt = _load_tile_bits(p_xs, i_tile, T, o_n, x.dtype.element_ty, LOG, V, REVERSE, LANE_LOADS)
        else:
            b_xt = b_vt  # never read
        if NA > 0:
            if S == 1:
                p_ys = y + i_row * s_yr
            else:
                p_ys = x + (i_s64 + 1) * s_xs + i_row * s_xr
            b_yt = _load_tile_bits(p_ys, i_tile, T, o_n, x.dtype.element_ty, LOG, V, REVERSE, LANE_LOADS)
        else:
            b_yt = b_vt  # never read
        b_gt, _, _, _, _, sb0, sb1, sb2, sb3, sb4, sa1, sa2, sa3, sa4 = _adjoint_cols(
            b_vt, b_xt, b_yt, b_b0, b_b1, b_b2, b_b3, b_b4, b_s1, b_s2, b_s3, b_s4,
            b_l, b_l, b_l, b_l, b_l, b_l, b_l, b_l, b_l, LOG, M, NB, NA, dx.dtype.element_ty, REVERSE)
        if A0:
            if NA > 0:
                p_part = part + ((i_row * n_tiles + i_c) * S + i_s) * (NB + NA + 1)
            else:
                p_part = part + ((i_row * n_tiles + i_c) * S + i_s) * NB
            _store_raw_sums(p_part, sb0, sb1, sb2, sb3, sb4, sa1, sa2, sa3, sa4,
                            b + i_row * s_br + i_s * s_bs, s_bk, p_ar, s_ak, b_ia0, NB, NA)
        else:
            p_part = part + ((i_row * n_tiles + i_c) * S + i_s) * (NB + NA)
            _store_tile_sum(p_part, sb0, 0, NB, 1.0)
            _store_tile_sum(p_part, sb1, 1, NB, 1.0)
            _store_tile_sum(p_part, sb2, 2, NB, 1.0)
            _store_tile_sum(p_part, sb3, 3, NB, 1.0)
            _store_tile_sum(p_part, sb4, 4, NB, 1.0)
            _store_tile_sum(p_part + NB, sa1, 0, NA, -1.0)
            _store_tile_sum(p_part + NB, sa2, 1, NA, -1.0)
            _store_tile_sum(p_part + NB, sa3, 2, NA, -1.0)
            _store_tile_sum(p_part + NB, sa4, 3, NA, -1.0)
        # ---- dhead[n] = v at step T-1-n (the forward's step n), n < K: only a row's last tiles
        if HAS_VH:
            tl.store(vh + i_row * s_vr + i_s * s_vs + (n_left - 1 - o_m), _from_bits(b_vt, LOG, BLOCK),
                     mask=(o_m < n_left) & (n_left - 1 - o_m < K))
    if HAS_DX:
        _store_tile_bits(dx + i_row * s_dr, i_tile, T, b_gt, o_n, LOG, V, REVERSE, LANE_LOADS)
    if TIMED:
        stamp_end(clk, i_tk, o_l)


def max_registers(S: int, NP: int, C: int, BLOCK: int, dtype: torch.dtype, requested: bool | int | None = None,
                  table: bool = True, W: int = 32, monic: bool = True, lane_f32: bool = False):
    """The register cap (``maxnreg``) of a launch, or None. Compiled for sm_90, the order-4 backward of one
    filter (float32, 16-sample lanes, 64 lanes) took 166 registers a thread, 6 programs an SM; capped
    at 128 it keeps every value in registers (4216 static instructions against 4128) and 8 fit
    (``benchmarks/results/sm90-compile-2026-11-28/``). Only that verified shape with the power table
    (``table``) gets it (orders 1-2 take 128 uncapped; ``SSM_LFILTER_REGISTER_CAP`` or ``requested``
    False: none): without the table (rows under 4 tiles, ``SSM_LFILTER_POWER_TABLE=0``) it spilled 32
    bytes at 128, and with a look-back window ``W`` over 32 tiles (fewer than 32 rows) 24 at W = 64 and
    24-48 at W = 128. These counts are triton 3.7.1's: under 3.6.0 (the lent GPU machines') the cap
    of 128 spills 24 bytes at that shape and 136 none (7 programs an SM), so ``requested`` may also be a
    cap of its own (an int, any launch: the variant table times 136 beside 128 and none).

    The backward of ``sosfilt``'s raw biquad cascade (``S > 1``, order 2, ``monic=False``: ``a0`` divided
    in registers, float32 with float64 lanes, 16-sample lanes, 64 lanes, W <= 32) took 175 registers
    a thread uncapped, 10 warps an SM where the normalized build's 156 allow 12; capped at 168 it
    keeps every value in registers with the same 2272 static instructions and 12 warps (sm_90,
    triton 3.6.0, ``benchmarks/kernel_resources.py``)."""
    if not isinstance(requested, bool) and isinstance(requested, int):
        return requested
    if (_register_cap(requested) and S > 1 and not monic and not lane_f32 and NP == 2 and C == 16
            and BLOCK == 64 and W <= 32 and dtype == torch.float32):
        return 168
    if not (_register_cap(requested) and table and W <= 32 and S == 1 and NP == 4 and C == 16 and BLOCK == 64
            and dtype == torch.float32):
        return None
    return 128


def _launch(g, x, y, b, a, dx, vh, n_b, n_a, need_x, K, C, lanes, window_tiles, reverse, g_ends=None,
            power_table=None, clock=None, register_cap=None, lane_loads=None, monic=True, lane_float32=None):
    """One launch of ``_lti_adjoint_kernel`` for ``S = b.shape[1]`` sections (``b [Rb, S, M+1]``,
    ``a [Ra, S, N]``, ``N >= M``; ``S > 1``: ``x`` is the ``[S+1, R, T]`` stack of section inputs and
    output, ``y`` unused; ``vh [R, K]`` or ``[R, S, K]`` receives the heads' gradients). ``g_ends
    [S, R, KT]``: gradients of every section's last ``KT`` outputs (``reverse`` only). Returns the
    per-row, per-tile coefficient sums ``[R, n_tiles, S, n_b + n_a]`` (float64; the caller sums the tiles).
    ``monic=False``: ``a [Ra, S, N+1]`` with ``a0`` first; the kernel divides by it and the sums are
    the raw coefficients' gradients, ``n_b + n_a + 1`` columns (``a0``'s after ``b``'s) when ``n_a > 0``,
    which then needs ``n_b = M + 1``."""
    R, T = g.shape
    S, M, N = b.shape[1], b.shape[2] - 1, a.shape[2] - (0 if monic else 1)
    width = n_b + a_grad_width(n_a, monic)
    NP = 1 if N == 1 else (2 if N == 2 else 4)
    BLOCK, n_tiles, W, agg, inc, flags = lookback_setup(R, T, S, C, lanes, window_tiles, g.device)
    part = torch.empty(R, n_tiles, S, width, dtype=torch.float64, device=g.device)
    x_sections = x.dim() == 3
    KT = g_ends.shape[2] if g_ends is not None else 0
    if KT and (not reverse or g_ends.shape != (S, R, KT) or not g_ends.is_contiguous()):
        raise ValueError(f"lti_adjoint: expected contiguous g_ends [S={S}, R={R}, KT] with reverse, got "
                         f"{tuple(g_ends.shape)}")
    pw, s_ps, s_pr = power_table_setup(a, S, NP, C, n_tiles, BLOCK, W, power_table, monic)
    timed = prepare_clock(clock, R * n_tiles, S, "lti_adjoint")
    lane_f32 = _use_lane_float32(lane_float32) and dx.dtype == torch.float32
    cap = max_registers(S, NP, C, BLOCK, dx.dtype, register_cap, pw is not None, W, monic, lane_f32)
    _lti_adjoint_kernel[(R * n_tiles,)](
        g, x, y, b, a, dx, vh, part, agg, inc, flags, g_ends if KT else g, agg if pw is None else pw,
        clock if timed else flags,
        T, K, R, n_tiles, KT,
        g.stride(0), x.stride(0) if x_sections else 0, x.stride(-2), y.stride(0),
        b.stride(1), b.stride(0) if b.shape[0] > 1 else 0, b.stride(2),
        a.stride(1), a.stride(0) if a.shape[0] > 1 else 0, a.stride(2), dx.stride(0), vh.stride(0) if K else 0,
        vh.stride(1) if K and vh.dim() == 3 else 0, s_ps, s_pr,
        S=S, C=C, LOG=C.bit_length() - 1, M=M, N=N, NP=NP, NB=n_b, NA=n_a, HAS_DX=bool(need_x), HAS_VH=K > 0,
        HAS_ENDS=KT > 0,
        BLOCK=BLOCK, LOG_BLOCK=BLOCK.bit_length() - 1, W=W, LOG_W=W.bit_length() - 1,
        REVERSE=reverse, USE_TABLE=pw is not None, TIMED=timed, LANE_LOADS=_use_lane_loads(lane_loads),
        V=vector_log2(dx.element_size()), A0=not monic,
        LANE_F32=lane_f32, num_warps=max(1, min(4, BLOCK // 32)),
        **register_cap_option(cap))
    return part


def fused_adjoint_applies(b: torch.Tensor, a: torch.Tensor, block_size: int | None = None,
                          single_pass: bool | None = None, monic: bool = True) -> bool:
    """Whether ``lti_adjoint`` runs for a filter ``b [Rb, M+1]``, ``a [Ra, N]`` (``monic=False``:
    ``[Ra, N+1]``, ``a0`` first): real, ``N, M <= 4`` with ``max(N, M) >= 1`` (a pure FIR runs the
    adjoint with zero poles: its state is the FIR halo), a tile-shaped chunk, and the single-pass
    kernels not switched off."""
    M, N = b.shape[-1] - 1, a.shape[-1] - (0 if monic else 1)
    C = _DEFAULT_C if block_size is None else int(block_size)
    return (not (b.is_complex() or a.is_complex()) and 0 <= N <= 4 and 0 <= M <= 4 and max(N, M) >= 1
            and bool(_tile_log(C, M, N)) and _single_pass(single_pass, "lti"))


def lti_adjoint_sums(g: torch.Tensor, x: torch.Tensor, y: torch.Tensor, b: torch.Tensor, a: torch.Tensor, K: int,
                     need_x: bool, n_b: int, n_a: int, *, reverse: bool = False, monic: bool = True,
                     sum_rows: bool = False, block_size: int | None = None, lanes: int | None = None,
                     window_tiles: int | None = None, power_table: bool | None = None,
                     clock: torch.Tensor | None = None, register_cap: bool | int | None = None,
                     lane_loads: bool | None = None, lane_float32: bool | None = None):
    """The backward of ``y = lti(x, b, a, head, reverse, monic)`` (``head`` of length ``K``) for the output
    gradient ``g``, in one launch and one reduction: ``(dx [R, T] or None, dcoef, dhead [R, K])``.
    ``dcoef [R, n_b + n_a]`` holds the coefficient gradients of every row, ``b``'s first ``n_b`` lags then
    ``a``'s first ``n_a`` (0 skips a coefficient's gradient), or their sum over rows, ``[1, ...]``, with
    ``sum_rows`` (``b`` and ``a`` shared by the rows). ``monic=False``: ``a [Ra, N+1]`` starts with its
    leading coefficient ``a0``, the kernel divides by it in registers, and ``dcoef`` holds the raw
    coefficients' gradients, ``a``'s with ``a0``'s first: ``n_b + n_a + 1`` columns when ``n_a > 0``
    (which needs ``n_b = M + 1``). Every tile adds its share of them (linear in its sums, see
    ``_store_raw_sums``), so nothing but one fixed-order sum over the tiles runs after the kernel: the
    division, its backward and the sum over rows used to take a dozen small launches, more host time
    than the kernel's GPU time on an H200. ``need_x=False`` skips ``dx``. ``g, x, y [R, T]``; ``b, a``
    as for ``lti`` (``Rb, Ra`` in {1, R}), with ``fused_adjoint_applies(b, a, monic=monic)``.
    ``block_size``, ``lanes``, ``window_tiles``, ``power_table``: as for ``lti_single_pass`` (tests force
    small ones); ``clock``: as for ``lti_single_pass``, every tile's clock stamps (a diagnostic,
    ``kernels/_clock.py``); ``register_cap``: whether the launch takes ``max_registers``'s cap (None:
    ``SSM_LFILTER_REGISTER_CAP``, on unless "0"), or an int: that cap (``maxnreg``) for this launch.
    ``lane_loads``: the ``g``, ``x``, ``y`` tiles loaded and ``dx`` stored lane by lane
    (``_lane_tiles.py``; None: ``SSM_LFILTER_LANE_LOADS``, off unless "1"); the same bits.
    ``lane_float32``: on float32 data, the lanes' recurrences and the walk's products and lane sums in
    float32 (the carries and the sums over a tile in float64; None: ``SSM_LFILTER_LANE_FLOAT32``, off
    unless "1")."""
    if g.dim() != 2 or x.shape != g.shape or y.shape != g.shape:
        raise ValueError(f"lti_adjoint: expected g, x, y of one shape [R, T], got {tuple(g.shape)}, "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
    R, T = g.shape
    M, N = b.shape[1] - 1, a.shape[1] - (0 if monic else 1)
    C = _default_c(R, M, N) if block_size is None else int(block_size)
    dt = torch.float32 if g.dtype in (torch.float16, torch.bfloat16) else g.dtype
    if (block_size is None and lanes is None and window_tiles is None and max(N, M) >= 3
            and _one_warp_tiles(max(N, M), dt, g.device.type, R, _tile_variants(lane_loads, power_table))):
        # orders 3-4: one warp a tile, 32 lanes of 32 samples (the same 1024-sample tile; _variants.py;
        # sm_90: 238 registers, no spill)
        C, lanes = 32, 32
    if not fused_adjoint_applies(b, a, C, True, monic):
        raise ValueError(f"lti_adjoint: expected real b [Rb, M+1], a [Ra, {'N' if monic else 'N+1'}] with N, M <= 4, "
                         f"max(N, M) >= 1 and a power-of-two block_size in [2, 64], got {tuple(b.shape)}, "
                         f"{tuple(a.shape)}, {C}")
    if not (0 <= n_b <= M + 1 and 0 <= n_a <= N):
        raise ValueError(f"lti_adjoint: expected 0 <= n_b <= {M + 1} and 0 <= n_a <= {N}, got {n_b} and {n_a}")
    if not monic and n_a and n_b != M + 1:
        raise ValueError(f"lti_adjoint: expected n_b = {M + 1} with monic=False and n_a > 0 (a0's gradient "
                         f"needs every db), got {n_b}")
    check_tiles("lti_adjoint", lanes, window_tiles)
    out_dtype = g.dtype
    # rows with unit time stride: a tile is one int64 base and int32 offsets (as the forward kernel)
    if not g.dtype == x.dtype == y.dtype == dt:
        g, x, y = g.to(dt), x.to(dt), y.to(dt)
    if T > 1 and not g.stride(1) == x.stride(1) == y.stride(1) == 1:
        g, x, y = g.contiguous(), x.contiguous(), y.contiguous()
    # the FIR halo is the all-pole state: give it at least M samples (zero poles beyond N)
    NS = max(N, M)
    a_s = a if NS == N else torch.cat([a, a.new_zeros(a.shape[0], NS - N)], 1)
    dx = torch.empty(R, T if need_x else 0, dtype=dt, device=g.device)
    vh = torch.zeros(R, K, dtype=dt, device=g.device) if K else g.new_empty(R, 0)
    width = n_b + a_grad_width(n_a, monic)
    if R == 0 or T == 0:
        return (dx.to(out_dtype) if need_x else None), g.new_zeros(1 if sum_rows else R, width), vh.to(out_dtype)
    part = _launch(g, x, y, b.unsqueeze(1), a_s.unsqueeze(1), dx if need_x else g, vh, n_b, n_a, need_x, K, C, lanes,
                   window_tiles, not reverse, power_table=power_table, clock=clock, register_cap=register_cap,
                   lane_loads=lane_loads, monic=monic, lane_float32=lane_float32)
    # part [R, n_tiles, 1, width]: one fixed-order (deterministic) sum over the tiles, and the rows
    dcoef = part.sum((0, 1)) if sum_rows else part.sum(1)[:, 0]
    if out_dtype != dt:  # (a .to that changes nothing still costs host time: a backward call's floor)
        dx, vh = dx.to(out_dtype), vh.to(out_dtype)
    return (dx if need_x else None), dcoef.to(out_dtype), vh


def lti_adjoint(g: torch.Tensor, x: torch.Tensor, y: torch.Tensor, b: torch.Tensor, a: torch.Tensor, K: int,
                need_x: bool, n_b: int, n_a: int, **kw):
    """``lti_adjoint_sums`` with the coefficient gradients split: ``(dx [R, T] or None, db [R, n_b],
    da [R, n_a (+ 1 with monic=False)], dhead [R, K])`` (``[1, ...]`` with ``sum_rows``), ``db`` and ``da``
    views of one tensor. Keywords as for ``lti_adjoint_sums``."""
    dx, dcoef, vh = lti_adjoint_sums(g, x, y, b, a, K, need_x, n_b, n_a, **kw)
    return dx, dcoef[:, :n_b], dcoef[:, n_b:], vh
