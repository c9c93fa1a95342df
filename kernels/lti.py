"""Triton kernels for the LTI direct-form-I filter (the ``ssm_lfilter::lti`` op).

Recurrence, per row ``r`` (``a`` normalized, the implicit ``a0 = 1`` omitted)::

    y[r,n] = sum_{k=0..M} b[r,k] x[r,n-k] + head[r,n]·[n<K] - sum_{k=1..N} a[r,k-1] y[r,n-k]

with ``x`` and ``y`` zero at negative times.

Shapes: ``x [R,T]``, ``b [Rb,M+1]``, ``a [Ra,N]``, ``head [R,K]``, ``Rb, Ra ∈ {1, R}``; returns
``y [R,T]`` in ``x``'s dtype. ``N = 0`` is a pure FIR, ``M = 0`` a pure gain, ``K`` may be 0 or exceed
``T``. Any strides. Real dtypes only: float32, float64 (float16/bfloat16 are computed in float32 and
cast back); complex raises ``TypeError`` (the ops layer routes complex to the torch engine).

Devices: CUDA tensors, or CPU tensors under ``TRITON_INTERPRET=1`` (set before this module is imported).

Algorithm (blockwise, O(N + M) work per sample, parallel along time and rows; see docs/kernels.md):

1. ``_lti_chunk_kernel`` (state pass): time is cut into chunks of ``C = block_size`` samples; one
   lane per (row, chunk) runs the recurrence over its chunk from a zero state, in float64 registers,
   with the FIR part fused (the ``M``-sample input halo before the chunk is read from ``x``). It
   writes the chunk's end state ``e_c`` (its last ``N`` outputs).
2. ``_lti_carry_kernel`` (carry scan): ``S_c = P S_{c-1} + e_c`` with the constant transfer
   ``P = A^C`` (companion matrix ``A``, computed in float64 on the host). The scan is hierarchical:
   segments of ``scan_block`` chunks are reduced, the segment totals are scanned recursively with
   ``P^scan_block``, then each segment is re-scanned from its true start state. No O(N^3) work per
   sample: only N x N mat-vecs per chunk.
3. ``_lti_chunk_kernel`` (output pass): every lane re-runs its chunk from its true initial state
   ``S_{c-1}`` and writes ``y``. Re-running (instead of adding correction factors ``G S``) keeps
   float32 direct forms of high order accurate: nothing cancels, and the state stays float64.

No atomics, fixed launch configurations: results are deterministic. Offsets are int64.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .._raw_coefficients import normalized
from ._bits import from_bits as _from_bits
from ._bits import to_bits as _to_bits
from ._variants import one_warp_tiles as _one_warp_tiles
from ._variants import tile_variants as _tile_variants
from ._variants import single_pass as _single_pass
from ._variants import tile_io as _tile_io
from ._host import cdiv, next_pow2

__all__ = ["lti"]

# Orders up to this use shift registers (one register per tap); above, a ring buffer tile.
_SMALL_ORDER = tl.constexpr(4)


@triton.jit
def _ld_tap(p, k: tl.constexpr, s, mask, HAS: tl.constexpr, BLOCK: tl.constexpr):
    # One coefficient per lane, or zero when the tap does not exist (keeps the register count fixed).
    if HAS:
        v = tl.load(p + k * s, mask=mask, other=0.0).to(tl.float64)
    else:
        v = tl.zeros([BLOCK], dtype=tl.float64)
    return v


@triton.jit
def _fir_coefficients(p_b, s_bk, m_b, M: tl.constexpr, BLOCK: tl.constexpr):
    """FIR taps b0..b4 (zero beyond M), float64 per lane."""
    return (_ld_tap(p_b, 0, s_bk, m_b, True, BLOCK), _ld_tap(p_b, 1, s_bk, m_b, M >= 1, BLOCK),
            _ld_tap(p_b, 2, s_bk, m_b, M >= 2, BLOCK), _ld_tap(p_b, 3, s_bk, m_b, M >= 3, BLOCK),
            _ld_tap(p_b, 4, s_bk, m_b, M >= 4, BLOCK))


@triton.jit
def _mem_t(i_n, T, REVERSE: tl.constexpr):
    """The memory index of processing step ``i_n``: the same, or ``T - 1 - i_n`` when the filter runs
    backwards in time (``REVERSE``), so a reversed signal is never copied."""
    if REVERSE:
        r = T - 1 - i_n
    else:
        r = i_n
    return r


@triton.jit
def _input_halo(p_x, i_t0, s_xt, m_g, T, M: tl.constexpr, BLOCK: tl.constexpr, REVERSE: tl.constexpr):
    """The M-sample input halo x[t0-1..t0-4] (processing steps) before each lane's chunk (zero before
    the first step)."""
    return (_ld_tap(p_x + _mem_t(i_t0 - 1, T, REVERSE) * s_xt, 0, 0, m_g & (i_t0 >= 1), M >= 1, BLOCK),
            _ld_tap(p_x + _mem_t(i_t0 - 2, T, REVERSE) * s_xt, 0, 0, m_g & (i_t0 >= 2), M >= 2, BLOCK),
            _ld_tap(p_x + _mem_t(i_t0 - 3, T, REVERSE) * s_xt, 0, 0, m_g & (i_t0 >= 3), M >= 3, BLOCK),
            _ld_tap(p_x + _mem_t(i_t0 - 4, T, REVERSE) * s_xt, 0, 0, m_g & (i_t0 >= 4), M >= 4, BLOCK))


@triton.jit
def _fir_taps(p_b, s_bk, p_x, i_t0, s_xt, m_b, m_g, M: tl.constexpr, BLOCK: tl.constexpr):
    """``_fir_coefficients`` and ``_input_halo`` together (forward in time)."""
    b_b0, b_b1, b_b2, b_b3, b_b4 = _fir_coefficients(p_b, s_bk, m_b, M, BLOCK)
    b_x1, b_x2, b_x3, b_x4 = _input_halo(p_x, i_t0, s_xt, m_g, 0, M, BLOCK, False)
    return b_b0, b_b1, b_b2, b_b3, b_b4, b_x1, b_x2, b_x3, b_x4


@triton.jit
def _pole_taps(p_a, s_ak, m_a, N: tl.constexpr, BLOCK: tl.constexpr):
    """Denominator taps a1..a4 (zero beyond N), float64 per lane."""
    return (_ld_tap(p_a, 0, s_ak, m_a, N >= 1, BLOCK), _ld_tap(p_a, 1, s_ak, m_a, N >= 2, BLOCK),
            _ld_tap(p_a, 2, s_ak, m_a, N >= 3, BLOCK), _ld_tap(p_a, 3, s_ak, m_a, N >= 4, BLOCK))


@triton.jit
def _fir_step(b_x0, b_b0, b_b1, b_b2, b_b3, b_b4, b_x1, b_x2, b_x3, b_x4, M: tl.constexpr):
    """One FIR output sum_k b_k x[n-k] (float64) and the shifted input history."""
    b_u = b_b0 * b_x0
    if M >= 1:
        b_u += b_b1 * b_x1
    if M >= 2:
        b_u += b_b2 * b_x2
    if M >= 3:
        b_u += b_b3 * b_x3
    if M >= 4:
        b_u += b_b4 * b_x4
    return b_u, b_x0, b_x1, b_x2, b_x3


@triton.jit
def _allpole_step(b_u, b_a1, b_a2, b_a3, b_a4, b_y1, b_y2, b_y3, b_y4, N: tl.constexpr):
    """One step y[n] = u[n] - sum_k a_k y[n-k] on the shift registers y[n-1..n-4]; returns the new
    registers (the first is y[n]). Oldest lag first: y[n-1] enters last, so one FMA (not N)
    separates y[n] from y[n-1] on the sequential critical path."""
    b_yn = b_u
    if N >= 4:
        b_yn -= b_a4 * b_y4
    if N >= 3:
        b_yn -= b_a3 * b_y3
    if N >= 2:
        b_yn -= b_a2 * b_y2
    if N >= 1:
        b_yn -= b_a1 * b_y1
    return b_yn, b_y1, b_y2, b_y3


@triton.jit
def _store_end_state(p_s, b_y1, b_y2, b_y3, b_y4, b_ring, o_n, m_g,
                     C: tl.constexpr, N: tl.constexpr, NP: tl.constexpr):
    """The chunk's end state st[j] = y[end - 1 - j], j < N, from the shift registers or the ring."""
    if N <= _SMALL_ORDER:
        tl.store(p_s, b_y1, mask=m_g)
        if N >= 2:
            tl.store(p_s + 1, b_y2, mask=m_g)
        if N >= 3:
            tl.store(p_s + 2, b_y3, mask=m_g)
        if N >= 4:
            tl.store(p_s + 3, b_y4, mask=m_g)
    else:
        i_j = (C - 1 - o_n) & (NP - 1)
        tl.store(p_s[:, None] + i_j[None, :], b_ring, mask=m_g[:, None] & (i_j < N)[None, :])


@triton.jit
def _lanes(n_lanes, lanes_per_row, C, BLOCK: tl.constexpr):
    """This program's lanes: one lane = one (row, chunk) pair, consecutive chunks across programs
    (int64): the lane mask, row, chunk and first sample of each lane."""
    i_p = tl.program_id(0).to(tl.int64)
    i_g = i_p * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
    i_c = i_g % lanes_per_row
    return i_g < n_lanes, i_g // lanes_per_row, i_c, i_c * C


@triton.jit
def _start_state(st_in, i_r, i_c, n_in, m_g, IN_OFF: tl.constexpr, HAS_INIT: tl.constexpr,
                 N: tl.constexpr, NP: tl.constexpr, BLOCK: tl.constexpr):
    """The float64 all-pole state before each lane's chunk: the shift registers y[t0-1..t0-4]
    (N <= 4) and the ring tile (N > 4; slot NP-1-j holds y[t0-1-j], local time -1-j). Zero without
    ``HAS_INIT``, else ``st_in[r, c + IN_OFF, j] = y[t0-1-j]`` (zero where that chunk is < 0). Only
    the representation the order uses is read; the other one stays zero."""
    b_y1 = tl.zeros([BLOCK], dtype=tl.float64)
    b_y2 = tl.zeros([BLOCK], dtype=tl.float64)
    b_y3 = tl.zeros([BLOCK], dtype=tl.float64)
    b_y4 = tl.zeros([BLOCK], dtype=tl.float64)
    o_n = tl.arange(0, NP)
    b_ring = tl.zeros([BLOCK, NP], dtype=tl.float64)
    if HAS_INIT:
        m_s = m_g & (i_c + IN_OFF >= 0)
        p_s = st_in + (i_r * n_in + i_c + IN_OFF) * NP
        if N <= _SMALL_ORDER:
            b_y1 = _ld_tap(p_s, 0, 1, m_s, N >= 1, BLOCK)
            b_y2 = _ld_tap(p_s, 1, 1, m_s, N >= 2, BLOCK)
            b_y3 = _ld_tap(p_s, 2, 1, m_s, N >= 3, BLOCK)
            b_y4 = _ld_tap(p_s, 3, 1, m_s, N >= 4, BLOCK)
        else:
            b_ring = tl.load(p_s[:, None] + (NP - 1 - o_n)[None, :], mask=m_s[:, None],
                             other=0.0).to(tl.float64)
    return b_y1, b_y2, b_y3, b_y4, b_ring


@triton.jit
def _lti_chunk_kernel(
    x, b, a, head, y, st_in, st_out,
    T, K, n_lanes, lanes_per_row, n_in, n_out,
    s_xr, s_xt, s_br, s_bk, s_ar, s_ak, s_hr, s_ht, s_yr, s_yt,
    C: tl.constexpr, M: tl.constexpr, N: tl.constexpr, MP: tl.constexpr, NP: tl.constexpr,
    HAS_X: tl.constexpr, HAS_HEAD: tl.constexpr, HAS_INIT: tl.constexpr, IN_OFF: tl.constexpr, STORE_END: tl.constexpr,
    OUTPUT: tl.constexpr, BLOCK: tl.constexpr,
):
    # One lane = one (row, chunk) pair; lanes of a program are consecutive chunks, usually of one row,
    # so a long single row spreads over the whole grid and many short rows share programs.
    # States are rows of NP float64, st[r, c, j] = y[(end of chunk c) - 1 - j], zero beyond N.
    # HAS_INIT (else a zero state): start from st_in[r, c + IN_OFF] (zero where that index is < 0).
    # STORE_END: store the end state in st_out[r, c]. OUTPUT: store y.
    # HAS_X=False runs the homogeneous recurrence (no input): used to build A^C from unit states.
    m_g, i_r, i_c, i_t0 = _lanes(n_lanes, lanes_per_row, C, BLOCK)
    p_x = x + i_r * s_xr
    p_b = b + i_r * s_br  # s_br = 0 when b is shared by all rows
    p_a = a + i_r * s_ar

    # ---- FIR taps. Small M: coefficients and input history in registers (x is read once per step).
    if M <= _SMALL_ORDER:
        b_b0, b_b1, b_b2, b_b3, b_b4, b_x1, b_x2, b_x3, b_x4 = _fir_taps(p_b, s_bk, p_x, i_t0, s_xt, m_g, m_g,
                                                                         M, BLOCK)
    else:
        # Large M: a (BLOCK, MP) tile of taps; each step gathers x[n-k], k < MP (cache hits).
        o_m = tl.arange(0, MP)
        b_bt = tl.load(p_b[:, None] + o_m[None, :] * s_bk, mask=m_g[:, None] & (o_m[None, :] <= M),
                       other=0.0).to(tl.float64)

    # ---- all-pole state, float64. Small N: shift registers y[n-1..n-4]. Large N: a (BLOCK, NP) ring
    # buffer, slot (tau mod NP) holding y at chunk-local time tau; registers cannot be indexed
    # dynamically, so the coefficients are read rotated instead.
    b_a1, b_a2, b_a3, b_a4 = _pole_taps(p_a, s_ak, m_g, N, BLOCK)
    o_n = tl.arange(0, NP)
    b_y1, b_y2, b_y3, b_y4, b_ring = _start_state(st_in, i_r, i_c, n_in, m_g, IN_OFF, HAS_INIT, N, NP, BLOCK)

    for t in range(C):
        i_n = i_t0 + t
        m_n = m_g & (i_n < T)
        # FIR part, fused
        if not HAS_X:
            b_u = tl.zeros([BLOCK], dtype=tl.float64)
        elif M <= _SMALL_ORDER:
            b_x0 = tl.load(p_x + i_n * s_xt, mask=m_n, other=0.0).to(tl.float64)
            b_u, b_x1, b_x2, b_x3, b_x4 = _fir_step(b_x0, b_b0, b_b1, b_b2, b_b3, b_b4,
                                                          b_x1, b_x2, b_x3, b_x4, M)
        else:
            i_nk = i_n[:, None] - o_m[None, :]
            b_xt = tl.load(p_x[:, None] + i_nk * s_xt,
                           mask=m_n[:, None] & (o_m[None, :] <= M) & (i_nk >= 0), other=0.0)
            b_u = tl.sum(b_bt * b_xt.to(tl.float64), axis=1)
        if HAS_HEAD:
            b_u += tl.load(head + i_r * s_hr + i_n * s_ht, mask=m_n & (i_n < K), other=0.0).to(tl.float64)
        # all-pole part
        if N <= _SMALL_ORDER:
            b_y1, b_y2, b_y3, b_y4 = _allpole_step(b_u, b_a1, b_a2, b_a3, b_a4, b_y1, b_y2, b_y3, b_y4, N)
            b_yn = b_y1
        else:
            # slot s holds y[t - k] with k = ((t - s - 1) mod NP) + 1, which multiplies a[k-1]
            i_k = (t - o_n - 1) & (NP - 1)
            b_ar = tl.load(p_a[:, None] + i_k[None, :] * s_ak, mask=m_g[:, None] & (i_k < N)[None, :],
                           other=0.0).to(tl.float64)
            b_yn = b_u - tl.sum(b_ar * b_ring, axis=1)
            b_ring = tl.where((o_n == (t & (NP - 1)))[None, :], b_yn[:, None], b_ring)
        if OUTPUT:
            tl.store(y + i_r * s_yr + i_n * s_yt, b_yn.to(y.dtype.element_ty), mask=m_n)

    if STORE_END:
        # end state: st_out[r, c, j] = y[t0 + C - 1 - j]; entries j >= N stay zero (buffer is zeroed)
        p_s = st_out + (i_r * n_out + i_c) * NP
        _store_end_state(p_s, b_y1, b_y2, b_y3, b_y4, b_ring, o_n, m_g, C, N, NP)


# ---------------------------------------------------------------------------------------------------
# Coalesced chunk pass. The old kernel above gives one lane one chunk and steps t through it, so at
# every step the lanes of a warp touch addresses C elements apart (one memory transaction per lane).
# Here a program loads its (BLOCK, C) tile of consecutive chunks as one contiguous 2-D block
# (coalesced, vectorized), splits it into its C columns at trace time (reshape to (BLOCK, 2, ..., 2),
# one permute so the last dim is the column's most significant bit, then recursive tl.split), runs the
# same recurrence over the columns (identical operations in identical order: results are bitwise
# equal under the interpreter), joins the output columns back in the mirrored order and stores the
# (BLOCK, C) tile coalesced. C must be a power of two in [2, 64]; FIR orders M <= 4 (the launcher
# also keeps N <= 4: see _tile_log).
# ---------------------------------------------------------------------------------------------------


@triton.jit
def _lti_cols(
    xt, ht, b_b0, b_b1, b_b2, b_b3, b_b4, b_a1, b_a2, b_a3, b_a4,
    b_x1, b_x2, b_x3, b_x4, b_y1, b_y2, b_y3, b_y4, b_ring, p_a, s_ak, m_g, o_n,
    T0: tl.constexpr, LOG: tl.constexpr, M: tl.constexpr, N: tl.constexpr, NP: tl.constexpr,
    HAS_HEAD: tl.constexpr, Y_DTYPE: tl.constexpr, FLIP: tl.constexpr = False,
):
    # Runs the 2^LOG columns of the bit-shaped tiles xt / ht (chunk-local times T0, T0 + 1, ...) and
    # returns the bit-shaped output tile (Y_DTYPE) and the new registers. Same arithmetic, in the same
    # order, as the loop body of _lti_chunk_kernel. FLIP: the columns hold the steps in reverse order
    # (a REVERSE tile of lti_single_pass._tile_ptrs), so each split's second half runs first and the
    # output keeps the input's column order.
    if LOG == 0:
        # the lanes run in the taps' dtype: float64, or float32 where a launcher casts them
        # (lti_single_pass's lane_float32)
        b_x0 = xt.to(b_b0.dtype)
        b_u, b_x1, b_x2, b_x3, b_x4 = _fir_step(b_x0, b_b0, b_b1, b_b2, b_b3, b_b4,
                                                      b_x1, b_x2, b_x3, b_x4, M)
        if HAS_HEAD:
            b_u += ht.to(b_b0.dtype)
        if N <= _SMALL_ORDER:
            b_y1, b_y2, b_y3, b_y4 = _allpole_step(b_u, b_a1, b_a2, b_a3, b_a4, b_y1, b_y2, b_y3, b_y4, N)
            b_yn = b_y1
        else:
            i_k = (T0 - o_n - 1) & (NP - 1)
            b_ar = tl.load(p_a[:, None] + i_k[None, :] * s_ak, mask=m_g[:, None] & (i_k < N)[None, :],
                           other=0.0).to(tl.float64)
            b_yn = b_u - tl.sum(b_ar * b_ring, axis=1)
            b_ring = tl.where((o_n == (T0 & (NP - 1)))[None, :], b_yn[:, None], b_ring)
        b_yt = b_yn.to(Y_DTYPE)
    else:
        x_a, x_b = tl.split(xt)  # the first and the second half of the columns
        h_a, h_b = tl.split(ht)
        if FLIP:  # the second half holds the earlier steps: it runs first
            x_a, x_b, h_a, h_b = x_b, x_a, h_b, h_a
        y_a, b_x1, b_x2, b_x3, b_x4, b_y1, b_y2, b_y3, b_y4, b_ring = _lti_cols(
            x_a, h_a, b_b0, b_b1, b_b2, b_b3, b_b4, b_a1, b_a2, b_a3, b_a4,
            b_x1, b_x2, b_x3, b_x4, b_y1, b_y2, b_y3, b_y4, b_ring, p_a, s_ak, m_g, o_n,
            T0, LOG - 1, M, N, NP, HAS_HEAD, Y_DTYPE, FLIP)
        y_b, b_x1, b_x2, b_x3, b_x4, b_y1, b_y2, b_y3, b_y4, b_ring = _lti_cols(
            x_b, h_b, b_b0, b_b1, b_b2, b_b3, b_b4, b_a1, b_a2, b_a3, b_a4,
            b_x1, b_x2, b_x3, b_x4, b_y1, b_y2, b_y3, b_y4, b_ring, p_a, s_ak, m_g, o_n,
            T0 + (1 << (LOG - 1)), LOG - 1, M, N, NP, HAS_HEAD, Y_DTYPE, FLIP)
        if FLIP:
            y_a, y_b = y_b, y_a
        b_yt = tl.join(y_a, y_b)
    return b_yt, b_x1, b_x2, b_x3, b_x4, b_y1, b_y2, b_y3, b_y4, b_ring


@triton.jit
def _lti_tile_kernel(
    x, b, a, head, y, st_in, st_out,
    T, K, n_lanes, lanes_per_row, n_in, n_out,
    s_xr, s_xt, s_br, s_bk, s_ar, s_ak, s_hr, s_ht, s_yr, s_yt,
    C: tl.constexpr, LOG: tl.constexpr, M: tl.constexpr, N: tl.constexpr, NP: tl.constexpr,
    HAS_HEAD: tl.constexpr, HAS_INIT: tl.constexpr, IN_OFF: tl.constexpr, STORE_END: tl.constexpr,
    OUTPUT: tl.constexpr, BLOCK: tl.constexpr,
):
    # Same contract as _lti_chunk_kernel with HAS_X=True (C = 2^LOG, M <= 4), coalesced tiles.
    m_g, i_r, i_c, i_t0 = _lanes(n_lanes, lanes_per_row, C, BLOCK)
    p_x = x + i_r * s_xr
    p_b = b + i_r * s_br
    p_a = a + i_r * s_ar

    b_b0, b_b1, b_b2, b_b3, b_b4, b_x1, b_x2, b_x3, b_x4 = _fir_taps(p_b, s_bk, p_x, i_t0, s_xt, m_g, m_g, M, BLOCK)

    b_a1, b_a2, b_a3, b_a4 = _pole_taps(p_a, s_ak, m_g, N, BLOCK)
    o_n = tl.arange(0, NP)
    b_y1, b_y2, b_y3, b_y4, b_ring = _start_state(st_in, i_r, i_c, n_in, m_g, IN_OFF, HAS_INIT, N, NP, BLOCK)

    # the (BLOCK, C) tiles of consecutive chunks: one contiguous block of memory per program
    o_t = tl.arange(0, C)
    i_n = i_t0[:, None] + o_t[None, :]
    m_n = m_g[:, None] & (i_n < T)
    b_xt = tl.load(p_x[:, None] + i_n * s_xt, mask=m_n, other=0.0)
    if HAS_HEAD:
        b_ht = tl.load(head + (i_r * s_hr)[:, None] + i_n * s_ht, mask=m_n & (i_n < K), other=0.0)
    else:
        b_ht = b_xt  # never read
    b_yt, b_x1, b_x2, b_x3, b_x4, b_y1, b_y2, b_y3, b_y4, b_ring = _lti_cols(
        _to_bits(b_xt, LOG, BLOCK), _to_bits(b_ht, LOG, BLOCK), b_b0, b_b1, b_b2, b_b3, b_b4,
        b_a1, b_a2, b_a3, b_a4, b_x1, b_x2, b_x3, b_x4, b_y1, b_y2, b_y3, b_y4, b_ring, p_a, s_ak, m_g,
        o_n, 0, LOG, M, N, NP, HAS_HEAD, y.dtype.element_ty)
    if OUTPUT:
        tl.store(y + (i_r * s_yr)[:, None] + i_n * s_yt, _from_bits(b_yt, LOG, BLOCK), mask=m_n)

    if STORE_END:
        p_s = st_out + (i_r * n_out + i_c) * NP
        _store_end_state(p_s, b_y1, b_y2, b_y3, b_y4, b_ring, o_n, m_g, C, N, NP)


@triton.jit
def _lti_carry_kernel(
    e, P, tot, n, nseg, n_seq, s_pr,
    S: tl.constexpr, NP: tl.constexpr, BQ: tl.constexpr, REDUCE: tl.constexpr, HAS_INIT: tl.constexpr,
):
    # Sequences q = (row, segment); each scans s_i = P s_{i-1} + e_i over the <= S items
    # e[row, seg*S + i] (rows of NP float64, zero-padded beyond N).
    # REDUCE: store only the segment's end state (from zero) in tot[q].
    # else: start from tot[q-1] (the true state before the segment; zero for seg 0) when HAS_INIT,
    # and overwrite e with the prefix states.
    # The loop is unrolled so the compiler can issue all S loads up front (they do not depend on s).
    i_p = tl.program_id(0).to(tl.int64)
    i_q = i_p * BQ + tl.arange(0, BQ).to(tl.int64)
    m_q = i_q < n_seq
    i_r = i_q // nseg
    i_s = i_q % nseg
    o_n = tl.arange(0, NP)
    b_P = tl.load(P + i_r[:, None, None] * s_pr + o_n[None, :, None] * NP + o_n[None, None, :],
                  mask=m_q[:, None, None], other=0.0)
    b_s = tl.zeros([BQ, NP], dtype=tl.float64)
    if HAS_INIT:
        b_s = tl.load(tot + (i_q - 1)[:, None] * NP + o_n[None, :], mask=(m_q & (i_s > 0))[:, None],
                      other=0.0)
    for k in tl.static_range(S):
        i_i = i_s * S + k
        m_k = m_q & (i_i < n)
        p_e = e + (i_r * n + i_i)[:, None] * NP + o_n[None, :]
        b_e = tl.load(p_e, mask=m_k[:, None], other=0.0)
        b_s = tl.where(m_k[:, None], tl.sum(b_P * b_s[:, None, :], axis=2) + b_e, b_s)
        if not REDUCE:
            tl.store(p_e, b_s, mask=m_k[:, None])
    if REDUCE:
        tl.store(tot + i_q[:, None] * NP + o_n[None, :], b_s, mask=m_q[:, None])


def _companion_power(a: torch.Tensor, C: int, NP: int) -> torch.Tensor:
    """``P = A^C`` ([Ra, NP, NP] float64, zero-padded beyond N) for the companion matrix of each row of
    ``a``. Column j is the end state after C homogeneous steps from the unit state e_j, computed by the
    chunk kernel itself (a float64 recurrence). Repeated squaring is not used here: for high-order
    direct forms the intermediate powers are large (|A^16| ~ 5e4 for cheby1(8, 1, 0.2)) and squaring
    loses up to 1e-4 relative accuracy in float64, where the recurrence keeps about 1e-11."""
    Ra, N = a.shape
    eye = torch.eye(NP, dtype=torch.float64, device=a.device).expand(Ra, NP, NP).contiguous()
    cols = torch.zeros(Ra, NP, NP, dtype=torch.float64, device=a.device)
    lanes = Ra * NP
    BLOCK, nw = _chunk_grid(lanes, 1, NP, a.device.type != "cpu")
    _lti_chunk_kernel[(cdiv(lanes, BLOCK),)](
        eye, a, a, eye, eye, eye, cols, 0, 0, lanes, NP, NP, NP,
        0, 0, 0, 0, a.stride(0), a.stride(1), 0, 0, 0, 0,
        C=C, M=0, N=N, MP=1, NP=NP, HAS_X=False, HAS_HEAD=False, HAS_INIT=True, IN_OFF=0,
        STORE_END=True, OUTPUT=False, BLOCK=BLOCK, num_warps=nw)
    return cols.transpose(1, 2).contiguous()  # cols[r, j] = A^C e_j


# Transfers A^L for L up to this many steps come from the float64 recurrence; longer ones by squaring.
_REC_MAX_STEPS = 2048


def _carry_scan(e: torch.Tensor, P: torch.Tensor, L: int, a: torch.Tensor, S: int) -> None:
    """In place: ``e[r, i] <- s_i = P_r s_{i-1} + e[r, i]``, ``s_{-1} = 0``, with ``P = A^L``.
    ``e [R, n, NP]`` and ``P [Ra, NP, NP]`` are contiguous float64. Hierarchical: reduce segments of
    ``S`` items, scan the segment totals recursively with ``A^(L S)``, re-scan each segment from its
    true start."""
    R, n, NP = e.shape
    nseg = cdiv(n, S)
    s_pr = NP * NP if P.shape[0] > 1 else 0
    # GPU: keep the (BQ, NP, NP) transfer tile in registers. Interpreter (CPU): few, large programs.
    # (Not `e.is_cuda`: benchmarks/kernel_resources.py launches on meta tensors to see the GPU choice.)
    BQ = max(1, min(32, 1024 // (NP * NP))) if e.device.type != "cpu" else 64
    n_seq = R * nseg
    grid = (cdiv(n_seq, BQ),)
    nw = 1 if BQ * NP * NP <= 256 else 4
    if nseg == 1:
        _lti_carry_kernel[grid](e, P, e, n, nseg, n_seq, s_pr, S=S, NP=NP, BQ=BQ, REDUCE=False,
                                HAS_INIT=False, num_warps=nw)
        return
    tot = torch.zeros(R, nseg, NP, dtype=torch.float64, device=e.device)
    _lti_carry_kernel[grid](e, P, tot, n, nseg, n_seq, s_pr, S=S, NP=NP, BQ=BQ, REDUCE=True,
                            HAS_INIT=False, num_warps=nw)
    # A^(L S): from the recurrence while that is short; beyond, squaring is accurate enough, since by
    # then the powers of a stable filter's transfer have decayed (see docs/kernels.md for the limits).
    if L * S <= _REC_MAX_STEPS:
        P_next = _companion_power(a, L * S, NP)
    else:
        P_next = torch.linalg.matrix_power(P, S).contiguous()
    _carry_scan(tot, P_next, L * S, a, S)
    _lti_carry_kernel[grid](e, P, tot, n, nseg, n_seq, s_pr, S=S, NP=NP, BQ=BQ, REDUCE=False,
                            HAS_INIT=True, num_warps=nw)


def _chunk_grid(lanes: int, MP: int, NP: int, gpu: bool) -> tuple[int, int]:
    """Lanes a program and warps of the chunk passes. A lane's per-step tiles (FIR taps and gathered
    inputs [MP], the ring and rotated poles [NP], float64) sit in its threads' registers: with one
    thread a lane they spilled on sm_90 from order 16 (N = M = 16: 255 registers and 432-536 bytes a
    thread; N = M = 32: 2.5 KB), so on a GPU tiles wider than 16 spread a lane over several threads:
    1024 // width lanes on 4 warps took 112-142 registers and no spill (benchmarks/kernel_resources.py).
    Timed on an H200 (32 x 2^18): the spread lanes ran order 32 (width 64) 1.3x faster than one thread
    a lane but order 16 (width 32) 1.3x slower despite the spill, so only tiles wider than 32 spread.
    The interpreter (``gpu`` False) pays per program, so it keeps up to 128 lanes a program."""
    width = max(MP, NP)
    if not gpu or width <= 32:
        BLOCK = min(128, next_pow2(lanes))
        return BLOCK, max(1, min(4, BLOCK // 32))
    BLOCK = min(max(1, 1024 // width), next_pow2(lanes))
    return BLOCK, 4


def _check_dtype(name: str, t: torch.Tensor) -> None:
    if t.is_complex():
        raise TypeError(f"ssm_lfilter.kernels.lti: complex dtype {t.dtype} of `{name}` is not supported by "
                        "the Triton kernel (use the torch engine for complex filters)")
    if not t.is_floating_point():
        raise TypeError(f"ssm_lfilter.kernels.lti: `{name}` must be a floating tensor, got {t.dtype}")


def _tile_log(C: int, M: int, N: int) -> int:
    """log2(C) when the coalesced tile kernel is used (C a power of two in [2, 64], M, N <= 4), else 0.
    The tile kernel also runs the ring buffer of N > 4 (tested), but unrolled over the C columns it
    compiles to ~10x the code (N = 8, C = 32: 24 s, 850 kB of PTX for sm_90), so large N keeps the
    looped kernel."""
    if M > 4 or N > 4 or C < 2 or C > 64 or C & (C - 1):
        return 0
    return C.bit_length() - 1


_lti_single_pass = None  # lti_single_pass.lti_single_pass, imported at its first use (a circular import)


def lti(x: torch.Tensor, b: torch.Tensor, a: torch.Tensor, head: torch.Tensor, *,
        block_size: int | None = None, scan_block: int | None = None, coalesced: bool | None = None,
        single_pass: bool | None = None, lanes: int | None = None, window_tiles: int | None = None,
        reverse: bool = False, power_table: bool | None = None, persistent: bool | None = None,
        clock: torch.Tensor | None = None, register_cap: bool | None = None,
        lane_loads: bool | None = None, monic: bool = True, lane_float32: bool | None = None) -> torch.Tensor:
    """LTI direct form I with fused FIR, ``y [R,T]`` (see the module docstring for the recurrence).

    ``monic=False``: ``a [Ra, N+1]`` starts with its leading coefficient ``a0`` and the filter is
    ``(b / a0, a[1:] / a0)``: the single-pass kernel divides in registers (no division launched before
    it, the host time of ``lfilter``'s call), the other paths divide here first.

    ``block_size``: samples per sequential chunk (the carry unit), default 32 for orders <= 8,
    ``4 * next_pow2(N)`` above. ``scan_block``: chunks per segment of the hierarchical carry scan
    (default 16). Both exist so tests can cross many boundaries on short signals.
    ``coalesced``: run the chunk passes with coalesced (BLOCK, C) tile loads and stores
    (``_lti_tile_kernel``) where it applies (``C`` a power of two in [2, 64], ``M, N <= 4``); False runs
    the per-lane strided kernel; None (default) reads ``SSM_LFILTER_TILE_IO`` (on unless "0").
    Both give the same results (bitwise under the interpreter).
    ``single_pass``: for ``1 <= N <= 4``, ``M <= 4`` and such a ``C``, run the one-launch look-back
    kernel (``lti_single_pass.py``: x read once) instead of the three passes; None (default) reads
    ``SSM_LFILTER_SINGLE_PASS`` (on unless "0"). ``lanes``/``window_tiles``: its tile width in chunks
    and look-back window, for tests; ``power_table``: whether it loads the companion matrix powers from
    a table a launch before the kernel writes (``lti_single_pass.power_table_setup``; None: the default, on);
    ``persistent``: whether it runs a few looping programs an SM that load their next tile ahead
    (``lti_single_pass``; None: the default, off); ``clock``: every single-pass tile's clock stamps
    (an int64 CUDA tensor, resized; a diagnostic, ``_clock.py``; a ValueError where the single pass
    does not run); ``register_cap``: whether the single pass takes its register cap where one is verified
    (``lti_single_pass.forward_max_registers``; None: the default, on); ``lane_loads``: whether it
    loads and stores every lane's run from the thread that runs it (``_lane_tiles.py``; None: the
    default, off); ``lane_float32``: whether its lanes' recurrences run in float32 on float32 data
    (``lti_single_pass``; None: the default, off).
    ``reverse``: the same filter run backwards in time, ``flip(lti(flip(x)))`` with ``head`` still in
    processing order (``head[n]`` enters at time ``T-1-n``). No flipped copy: the single-pass kernel
    reads and writes reversed indices, the three-pass kernels get ``x`` and ``y`` from their last
    sample with negated time strides.
    """
    if not (x.is_floating_point() and b.is_floating_point() and a.is_floating_point() and head.is_floating_point()):
        for name, t in (("x", x), ("b", b), ("a", a), ("head", head)):  # (complex is not floating point)
            _check_dtype(name, t)
    if x.dim() != 2 or b.dim() != 2 or a.dim() != 2 or head.dim() != 2:
        raise ValueError("lti expects x [R,T], b [Rb,M+1], a [Ra,N], head [R,K]")
    R, T = x.shape
    if not monic and a.shape[1] < 1:
        raise ValueError(f"lti: expected a [Ra, N+1] with its leading coefficient first (monic=False), "
                         f"got {tuple(a.shape)}")
    M, N, K = b.shape[1] - 1, a.shape[1] - (0 if monic else 1), head.shape[1]
    if M < 0:
        raise ValueError("b needs at least one tap")
    if b.shape[0] not in (1, R) or a.shape[0] not in (1, R) or (K > 0 and head.shape[0] != R):
        raise ValueError(f"coefficient rows must be 1 or R={R}: b {tuple(b.shape)}, a {tuple(a.shape)}, "
                         f"head {tuple(head.shape)}")
    if not x.device == b.device == a.device == head.device:
        raise ValueError(f"lti: all tensors must be on one device, got {({t.device for t in (x, b, a, head)})}")
    out_dtype = x.dtype
    if x.dtype in (torch.float16, torch.bfloat16):
        # the interpreter gets half-precision arithmetic wrong; compute in float32 and cast back
        x = x.float()
    y = torch.empty(R, T, dtype=x.dtype, device=x.device)
    if R == 0 or T == 0:
        return y.to(out_dtype)

    NP = next_pow2(max(N, 1))
    MP = next_pow2(M + 1)
    C = int(block_size) if block_size is not None else (32 if NP <= 8 else 4 * NP)
    sp_lanes = lanes
    if (block_size is None and lanes is None and window_tiles is None and 3 <= N <= 4
            and _one_warp_tiles(N, x.dtype, x.device.type, R, _tile_variants(lane_loads, power_table, persistent))):
        # orders 3-4: one warp a tile, 32 lanes of 64 samples (the same 2048-sample tile; _variants.py)
        C, sp_lanes = 64, 32
    S = int(scan_block) if scan_block is not None else 16
    if C < 1 or S < 2:
        raise ValueError(f"block_size must be >= 1 and scan_block >= 2, got {C}, {S}")
    single = N > 0 and _tile_log(C, M, N) and _single_pass(single_pass, "lti")
    if not monic and not (single and N <= 2):
        # only the single pass at orders 1-2 divides in registers: at order 4 that took 204 -> 228
        # registers a thread (sm_90; 10 -> 8 warps an SM for a kernel that is issue-bound)
        (b, a), monic = normalized(b, a), True
    if single:
        global _lti_single_pass
        if _lti_single_pass is None:
            from .lti_single_pass import lti_single_pass as _lti_single_pass  # it imports this module's helpers
        _lti_single_pass(x, b, a, head, y, C, lanes=sp_lanes, window_tiles=window_tiles, reverse=reverse,
                         power_table=power_table, persistent=persistent, clock=clock, register_cap=register_cap,
                         lane_loads=lane_loads, monic=monic, lane_float32=lane_float32)
        return y if y.dtype == out_dtype else y.to(out_dtype)
    if clock is not None:
        raise ValueError(f"lti: expected a filter the single-pass kernel runs with clock (1 <= N <= 4, M <= 4), "
                         f"got N={N}, M={M}")
    n_chunks = cdiv(T, C)
    n_st = n_chunks - 1 if N > 0 else 0

    s_br = b.stride(0) if b.shape[0] > 1 else 0
    s_ar = a.stride(0) if a.shape[0] > 1 else 0
    has_head = K > 0
    head_arg = head if has_head else x
    s_hr, s_ht = (head.stride(0), head.stride(1)) if has_head else (0, 0)
    a_arg = a if N > 0 else b  # a [Ra, 0] may have no storage; never read when N == 0
    common = dict(C=C, M=M, N=N, NP=NP, HAS_HEAD=has_head)
    strides = (x.stride(0), x.stride(1), s_br, b.stride(1), s_ar, a.stride(1) if N > 0 else 0,
               s_hr, s_ht, y.stride(0), y.stride(1))

    x_arg, y_arg = x, y
    if reverse:
        # The same kernels on the reversed signal without flipped copies: x and y are passed from
        # their last sample with negated time strides (every access goes through the strides).
        x_arg, y_arg = x[:, T - 1:], y[:, T - 1:]
        strides = (x.stride(0), -x.stride(1), *strides[2:8], y.stride(0), -y.stride(1))
        head_arg = head if has_head else x_arg

    # the chunk states of the three passes (allocated only here: the single pass has its own buffers)
    st = torch.zeros(R, max(n_st, 1), NP, dtype=torch.float64, device=x.device)
    LOG = _tile_log(C, M, N) if _tile_io(coalesced) else 0
    if LOG:
        kernel, extra = _lti_tile_kernel, dict(LOG=LOG)
    else:
        kernel, extra = _lti_chunk_kernel, dict(HAS_X=True, MP=MP)

    if n_st > 0:
        # pass 1: zero-state end states of chunks 0..n_chunks-2
        lanes = R * n_st
        BLOCK, nw = _chunk_grid(lanes, MP, NP, x.device.type != "cpu")
        kernel[(cdiv(lanes, BLOCK),)](
            x_arg, b, a_arg, head_arg, y_arg, st, st, T, K, lanes, n_st, 0, n_st, *strides,
            HAS_INIT=False, IN_OFF=0, STORE_END=True, OUTPUT=False, BLOCK=BLOCK,
            num_warps=nw, **common, **extra)
        # pass 2: true chunk end states, S_c = A^C S_{c-1} + e_c
        _carry_scan(st, _companion_power(a, C, NP), C, a, S)

    # pass 3: every chunk re-run from its true initial state S_{c-1}
    lanes = R * n_chunks
    BLOCK, nw = _chunk_grid(lanes, MP, NP, x.device.type != "cpu")
    kernel[(cdiv(lanes, BLOCK),)](
        x_arg, b, a_arg, head_arg, y_arg, st, st, T, K, lanes, n_chunks, n_st, 0, *strides,
        HAS_INIT=n_st > 0, IN_OFF=-1, STORE_END=False, OUTPUT=True, BLOCK=BLOCK,
        num_warps=nw, **common, **extra)
    return y.to(out_dtype)
