"""Triton kernels for the time-varying all-pole filter (the ``ssm_lfilter::tv`` op).

    y[n] = u[n] - sum_{k=1..N} a[n, k-1] * y[n-k],   y[n] = 0 for n < 0

``u [R, T]``, ``a [Ra, T, N]`` (``Ra`` in {1, R}), real float32/float64, ``N <= 16``, on CUDA (or on CPU
under ``TRITON_INTERPRET=1``). The state is the last N outputs ``s[n] = (y[n], ..., y[n-N+1])`` and
each step multiplies it by a companion matrix. Time is cut into chunks of ``L`` steps:

1. ``tv_chunk_transfer_kernel`` (parallel over all (row, chunk) pairs but the last chunk of each row):
   the chunk's zero-state end state ``e_c`` and its transfer matrix ``Phi_c`` (the product of its
   companion matrices), by running the recurrence on N+1 lanes at once: the forced response and the
   N homogeneous responses to unit initial states. O(L N^2) per chunk.
2. The scan ``S_c = Phi_c S_{c-1} + e_c`` over chunks (matrix-affine combine), done as a two-level
   blocked scan so that one long row is not a long sequential chain:
   ``tv_group_transfer_kernel`` folds groups of ``G ~ sqrt(#chunks)`` chunk maps into one map per group,
   ``tv_group_scan_kernel`` walks the groups of each row sequentially (a short chain), and
   ``tv_chunk_state_kernel`` walks each group's chunks from the group's true initial state.
3. ``tv_chunk_output_kernel``: every chunk re-runs the recurrence from its true initial state and writes y.

The past outputs live in a ring buffer of N slots (``y[n]`` in slot ``n mod N``) instead of a shifted
register tile (Triton has no register shift); the coefficient vector is loaded in the matching rotated
order instead. All sums are in-register reductions in a fixed order: deterministic, no atomics.
Accumulation is in float64, for float32 inputs too unless ``accumulate_fp64=False`` (see
``time_varying``: float32 carries of direct forms lose digits by cancellation). Program ids and offsets are int64.

Single pass (orders 1 <= N <= 4, the default there; ``single_pass=False`` or
``SSM_LFILTER_SINGLE_PASS=0`` selects the passes above). The passes above read u and a twice and
launch five kernels; at low orders the filter is memory-bound, so ``tv_single_pass_kernel`` reads the
signal once and writes y once, in one launch. A program takes a ticket and owns tile ``c = ticket // R``
of row ``ticket % R`` (tiles of all rows advance together): ``BLOCK`` lanes, lane j being the chunk
``c * BLOCK + j`` of ``L = 2^LOG`` steps.

1. Load the tile once, coalesced (u ``[BLOCK, L]``, a ``[BLOCK, L * NS]`` with N padded to
   ``NS = 2^KB`` in {1, 2, 4}); split it into per-step columns at trace time, as the coalesced passes
   do. Every lane runs its chunk from a zero state in scalar registers (the state ``y1 = y[n], ...,
   yN``: at these orders an unrolled register shift beats the ring buffer) and also runs the N
   homogeneous responses: its chunk's map ``s -> Q s + v`` (transfer matrix Q, zero-state end state v).
2. ``tl.associative_scan`` over the lanes of the maps (``_affine.scan_affine``: 2-, 6- or 20-tuples of
   scalars, N = 3 zero-padded to 4): lane j gets the map from the tile's start state to its end state;
   the last lane's map is the tile aggregate.
3. Store the aggregate and raise its flag before waiting for anything; then the deterministic
   fixed-window look-back of ``_lookback.py``: fold the aggregates of tiles c-W+1 .. c-1 (one more scan,
   a fixed tree), apply the fold to the inclusive state of tile c-W (zero state if c < W): the true
   state S before the tile. Store and flag the tile's inclusive state.
4. Lane j's true start state is lane j-1's true end state ``Q_{j-1} S + v_{j-1}`` (``tl.gather`` shifts
   the lanes by one; lane 0 takes S). Re-run every lane from it on the registers still holding the tile,
   and store the y tile.

Only integer atomics (ticket, flags); the floating-point results do not depend on timing. Tile
aggregates and states are kept in the accumulation precision.
"""
from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from .._checks import to_dtype
from ._affine import apply_affine, scan_affine
from ._bits import from_bits, to_bits
from ._lane_tiles import load_lanes, store_lanes
from ._clock import prepare_clock, stamp, stamp_end, stamp_start, stamp_tile, stamp_value
from ._lookback import check_tiles, publish, take_ticket, wait_flags
from ._lookback import window as _window
from ._variants import lane_loads as _use_lane_loads
from ._variants import register_cap as _register_cap
from ._variants import single_pass as _single_pass
from ._variants import tile_io as _tile_io
from ._host import cdiv, next_pow2, register_cap_option, vector_log2


__all__ = ["time_varying"]

MAX_ORDER = 16


@triton.jit
def tv_chunk_transfer_kernel(
    u_ptr, a_ptr, Phi_ptr, E_ptr,
    N, L, NCS, n_chunks, a_off,
    stride_ur, stride_ut, stride_ar, stride_at, stride_an,
    ACC: tl.constexpr, BC: tl.constexpr, NS: tl.constexpr, SKEW: tl.constexpr = False,
):
    """Pass 1: for chunk ``g = r * NCS + c`` (``c < NCS``, all full chunks of length ``L``):
    ``E[g, k] = y_c[L-1-k]`` from rest and ``Phi[g, k, j]`` = the same entry for the homogeneous
    response to the unit initial state ``y[-1-j] = 1``. Layouts: ``E [R*NCS, N]``, ``Phi [R*NCS, N, N]``.
    ``a[n, k]`` is read at ``a_ptr + a_off + n * stride_at + k * stride_an``; ``SKEW`` (the adjoint's
    skewed coefficients, ``_adjoint_strides``) masks lag ``k`` at steps ``n <= k``, where that address
    lies past the end of the row (the coefficient meets the zero state there)."""
    i_p = tl.program_id(0).to(tl.int64)
    o_g = i_p * BC + tl.arange(0, BC)
    m_g = o_g < n_chunks
    o_r = o_g // NCS
    o_t0 = (o_g % NCS) * L
    o_s = tl.arange(0, NS)  # ring slots
    o_j = tl.arange(0, NS)  # homogeneous lanes: unit initial state y[-1-j] = 1
    m_s = o_s < N
    # y[-1-j] sits in slot (-1-j) mod N = N-1-j.
    b_H = tl.where((o_s[:, None] == N - 1 - o_j[None, :]) & (o_j[None, :] < N), 1., 0.)
    b_H = tl.broadcast_to(b_H[None, :, :], [BC, NS, NS]).to(ACC)
    b_E = tl.zeros([BC, NS], dtype=ACC)
    p_u = u_ptr + o_r * stride_ur + o_t0 * stride_ut
    p_a = a_ptr + a_off + o_r * stride_ar + o_t0 * stride_at
    m_a = m_g[:, None] & m_s[None, :]
    for n in range(L):
        # Slot s holds y[n-1-k] with k = (n-1-s) mod N: load a[n, k] in slot order.
        o_k = (n - 1 - o_s + N) % N
        m_ak = m_a & (o_t0[:, None] + n > o_k[None, :]) if SKEW else m_a
        b_a = tl.load(p_a[:, None] + o_k[None, :] * stride_an, mask=m_ak, other=0.).to(ACC)
        b_u = tl.load(p_u, mask=m_g, other=0.).to(ACC)
        # Advance the 64-bit pointers rather than forming n * stride (int32) offsets.
        p_a += stride_at
        p_u += stride_ut
        b_hn = -tl.sum(b_a[:, :, None] * b_H, axis=1)
        b_en = b_u - tl.sum(b_a * b_E, axis=1)
        m_w = o_s == n % N
        b_H = tl.where(m_w[None, :, None], b_hn[:, None, :], b_H)
        b_E = tl.where(m_w[None, :], b_en[:, None], b_E)
    # After L steps, state entry k = y[L-1-k] is in slot s with k = (L-1-s) mod N.
    o_k = (L - 1 - o_s + N) % N
    p_E = E_ptr + o_g[:, None] * N + o_k[None, :]
    tl.store(p_E, b_E, mask=m_a)
    p_Phi = Phi_ptr + o_g[:, None, None] * N * N + o_k[None, :, None] * N + o_j[None, None, :]
    tl.store(p_Phi, b_H, mask=m_a[:, :, None] & (o_j[None, None, :] < N))


@triton.jit
def tv_group_transfer_kernel(
    Phi_ptr, E_ptr, P_ptr, F_ptr,
    N, NCS, G, NGS, n_groups,
    BQ: tl.constexpr, NS: tl.constexpr,
):
    """Pass 2a: fold the ``G`` chunk maps of group ``q = i % NGS`` of row ``i // NGS`` (full groups
    only; ``BQ`` groups per program) into ``P = Phi_last ... Phi_first`` and ``F``, the group's
    zero-state end state. Layouts: ``P [R*NGS, N, N]``, ``F [R*NGS, N]``."""
    i_p = tl.program_id(0).to(tl.int64)
    o_q = i_p * BQ + tl.arange(0, BQ)
    m_q = o_q < n_groups
    o_i = tl.arange(0, NS)
    o_j = tl.arange(0, NS)
    m_ij = (o_i[:, None] < N) & (o_j[None, :] < N)
    m_qi = m_q[:, None] & (o_i[None, :] < N)
    m_qij = m_q[:, None, None] & m_ij[None, :, :]
    b_P = tl.where((o_i[:, None] == o_j[None, :]) & m_ij, 1., 0.).to(E_ptr.dtype.element_ty)
    b_P = tl.broadcast_to(b_P[None, :, :], [BQ, NS, NS])
    b_F = tl.zeros([BQ, NS], dtype=E_ptr.dtype.element_ty)
    o_g = (o_q // NGS) * NCS + (o_q % NGS) * G  # first chunk of each group
    for i in range(G):
        p_phi = Phi_ptr + (o_g + i)[:, None, None] * N * N + o_i[None, :, None] * N + o_j[None, None, :]
        b_phi = tl.load(p_phi, mask=m_qij, other=0.)
        b_e = tl.load(E_ptr + (o_g + i)[:, None] * N + o_i[None, :], mask=m_qi, other=0.)
        # (Phi, e) after (P, F) = (Phi P, Phi F + e).
        b_P = tl.sum(b_phi[:, :, :, None] * b_P[:, None, :, :], axis=2)
        b_F = tl.sum(b_phi * b_F[:, None, :], axis=2) + b_e
    tl.store(P_ptr + o_q[:, None, None] * N * N + o_i[None, :, None] * N + o_j[None, None, :], b_P, mask=m_qij)
    tl.store(F_ptr + o_q[:, None] * N + o_i[None, :], b_F, mask=m_qi)


@triton.jit
def tv_group_scan_kernel(
    P_ptr, F_ptr, SG_ptr,
    R, N, NGS,
    BR: tl.constexpr, NS: tl.constexpr,
):
    """Pass 2b: per row (``BR`` rows per program), ``SG[q] = P_q SG[q-1] + F_q`` from rest: the true
    state after group ``q``. A sequential chain of ``NGS ~ sqrt(#chunks)`` small mat-vecs.
    Layout: ``SG [R*NGS, N]``."""
    i_p = tl.program_id(0).to(tl.int64)
    o_r = i_p * BR + tl.arange(0, BR)
    m_r = o_r < R
    o_i = tl.arange(0, NS)
    o_j = tl.arange(0, NS)
    m_ij = (o_i[:, None] < N) & (o_j[None, :] < N)
    m_ri = m_r[:, None] & (o_i[None, :] < N)
    m_rij = m_r[:, None, None] & m_ij[None, :, :]
    b_s = tl.zeros([BR, NS], dtype=F_ptr.dtype.element_ty)
    for q in range(NGS):
        o_q = o_r * NGS + q
        b_P = tl.load(P_ptr + o_q[:, None, None] * N * N + o_i[None, :, None] * N + o_j[None, None, :],
                      mask=m_rij, other=0.)
        b_f = tl.load(F_ptr + o_q[:, None] * N + o_i[None, :], mask=m_ri, other=0.)
        b_s = tl.sum(b_P * b_s[:, None, :], axis=2) + b_f
        tl.store(SG_ptr + o_q[:, None] * N + o_i[None, :], b_s, mask=m_ri)


@triton.jit
def tv_chunk_state_kernel(
    Phi_ptr, E_ptr, SG_ptr, S_ptr,
    N, NCS, G, NGS, n_groups,
    HAS_GROUPS: tl.constexpr, BQ: tl.constexpr, NS: tl.constexpr,
):
    """Pass 2c: per (row, group) pair ``i`` (``BQ`` per program; ``NG = NGS + 1`` groups per row),
    ``S[c] = Phi_c S[c-1] + e_c`` from the group's true initial state ``SG[q-1]`` (rest for ``q = 0``):
    the true state after every chunk. Layout: ``S [R*NCS, N]``."""
    NG = NGS + 1
    i_p = tl.program_id(0).to(tl.int64)
    o_q = i_p * BQ + tl.arange(0, BQ)
    m_q = o_q < n_groups
    o_r = o_q // NG
    o_qr = o_q % NG
    o_i = tl.arange(0, NS)
    o_j = tl.arange(0, NS)
    m_ij = (o_i[:, None] < N) & (o_j[None, :] < N)
    m_qi = m_q[:, None] & (o_i[None, :] < N)
    if HAS_GROUPS:
        p_sg = SG_ptr + (o_r * NGS + o_qr - 1)[:, None] * N + o_i[None, :]
        b_s = tl.load(p_sg, mask=m_qi & (o_qr[:, None] > 0), other=0.)
    else:
        b_s = tl.zeros([BQ, NS], dtype=E_ptr.dtype.element_ty)
    o_c0 = o_qr * G  # first chunk of the group within its row; the last group may be short
    o_g0 = o_r * NCS + o_c0
    for i in range(G):
        m_c = m_q & (o_c0 + i < NCS)
        p_phi = Phi_ptr + (o_g0 + i)[:, None, None] * N * N + o_i[None, :, None] * N + o_j[None, None, :]
        b_phi = tl.load(p_phi, mask=m_c[:, None, None] & m_ij[None, :, :], other=0.)
        b_e = tl.load(E_ptr + (o_g0 + i)[:, None] * N + o_i[None, :], mask=m_c[:, None] & m_qi, other=0.)
        b_s = tl.sum(b_phi * b_s[:, None, :], axis=2) + b_e
        tl.store(S_ptr + (o_g0 + i)[:, None] * N + o_i[None, :], b_s, mask=m_c[:, None] & m_qi)


@triton.jit
def _output_chunks(u_ptr, a_ptr, y_ptr, S_ptr, N, L, NC, NCS, n_chunks, a_off,
                   stride_ur, stride_ut, stride_ar, stride_at, stride_yr, stride_yt,
                   HAS_CARRY: tl.constexpr, ACC: tl.constexpr, BC: tl.constexpr, NS: tl.constexpr):
    """Pass 3's chunks of this program (chunk ``g = r * NC + c``): the chunk mask, the first step,
    the ring slots, their mask and the (chunk, slot) mask, the true start state ``S[r, c-1]`` in ring order (rest for
    ``c = 0`` or without ``HAS_CARRY``), and the row pointers of u, a and y at the chunk's start."""
    i_p = tl.program_id(0).to(tl.int64)
    o_g = i_p * BC + tl.arange(0, BC)
    m_g = o_g < n_chunks
    o_r = o_g // NC
    o_c = o_g % NC
    o_t0 = o_c * L
    o_s = tl.arange(0, NS)
    m_s = o_s < N
    m_a = m_g[:, None] & m_s[None, :]
    if HAS_CARRY:
        # State entry k = y[-1-k] goes to slot (-1-k) mod N = N-1-k.
        p_S = S_ptr + (o_r[:, None] * NCS + o_c[:, None] - 1) * N + (N - 1 - o_s[None, :])
        b_y = tl.load(p_S, mask=m_a & (o_c[:, None] > 0), other=0.)
    else:
        b_y = tl.zeros([BC, NS], dtype=ACC)
    p_u = u_ptr + o_r * stride_ur + o_t0 * stride_ut
    p_a = a_ptr + a_off + o_r * stride_ar + o_t0 * stride_at
    p_y = y_ptr + o_r * stride_yr + o_t0 * stride_yt
    return m_g, o_r, o_t0, o_s, m_s, m_a, b_y, p_u, p_a, p_y


@triton.jit
def _da_rows(z_ptr, da_ptr, o_r, o_t0, stride_zr, stride_zt, stride_dr, stride_dt):
    """Pass 3's row pointers of ``z`` and ``da`` at each chunk's start (``DA``)."""
    return z_ptr + o_r * stride_zr + o_t0 * stride_zt, da_ptr + o_r * stride_dr + o_t0 * stride_dt


@triton.jit
def tv_chunk_output_kernel(
    u_ptr, a_ptr, y_ptr, S_ptr, z_ptr, da_ptr,
    N, T, L, NC, NCS, n_chunks, a_off,
    stride_ur, stride_ut, stride_ar, stride_at, stride_an, stride_yr, stride_yt,
    stride_zr, stride_zt, stride_dr, stride_dt, stride_dk,
    HAS_CARRY: tl.constexpr, ACC: tl.constexpr, BC: tl.constexpr, NS: tl.constexpr,
    SKEW: tl.constexpr = False, DA: tl.constexpr = False,
):
    """Pass 3: chunk ``g = r * NC + c`` runs ``y[n] = u[n] - sum_k a[n,k-1] y[n-k]`` for its (up to)
    ``L`` steps, starting from the true state ``S[r, c-1]`` (rest for ``c = 0``), and writes ``y``.
    ``SKEW``: ``a`` addressed as in pass 1. ``DA`` (the adjoint, ``y`` being ``v``): also writes
    ``da[n, k-1] = -(y[n] z[n+k])`` (``z[n+k]`` zero past ``T-1``) for ``k = 1..N``, at
    ``da_ptr + n * stride_dt + (k-1) * stride_dk`` (the adjoint's ``n + k`` is the forward's ``n - k``)."""
    m_g, o_r, o_t0, o_s, m_s, m_a, b_y, p_u, p_a, p_y = _output_chunks(
        u_ptr, a_ptr, y_ptr, S_ptr, N, L, NC, NCS, n_chunks, a_off, stride_ur, stride_ut, stride_ar, stride_at,
        stride_yr, stride_yt, HAS_CARRY, ACC, BC, NS)
    if DA:
        p_z, p_d = _da_rows(z_ptr, da_ptr, o_r, o_t0, stride_zr, stride_zt, stride_dr, stride_dt)
    for n in range(L):
        m_t = m_g & (o_t0 + n < T)
        o_k = (n - 1 - o_s + N) % N
        m_ak = m_a & m_t[:, None]
        if SKEW:
            m_ak = m_ak & (o_t0[:, None] + n > o_k[None, :])
        b_a = tl.load(p_a[:, None] + o_k[None, :] * stride_an, mask=m_ak, other=0.).to(ACC)
        b_u = tl.load(p_u, mask=m_t, other=0.).to(ACC)
        b_yn = b_u - tl.sum(b_a * b_y, axis=1)
        b_yo = b_yn.to(y_ptr.dtype.element_ty)
        tl.store(p_y, b_yo, mask=m_t)
        if DA:
            # lag k = o_s + 1 in slot s (the slots are plain lags here, not the ring's order)
            m_z = m_t[:, None] & m_s[None, :] & (o_t0[:, None] + n + 1 + o_s[None, :] < T)
            b_z = tl.load(p_z[:, None] + (1 + o_s[None, :]) * stride_zt, mask=m_z, other=0.).to(y_ptr.dtype.element_ty)
            tl.store(p_d[:, None] + o_s[None, :] * stride_dk, -(b_yo[:, None] * b_z), mask=m_t[:, None] & m_s[None, :])
            p_z += stride_zt
            p_d += stride_dt
        p_a += stride_at
        p_u += stride_ut
        p_y += stride_yt
        b_y = tl.where((o_s == n % N)[None, :], b_yn[:, None], b_y)


# ---------------------------------------------------------------------------------------------------
# Coalesced variants of passes 1 and 3. The kernels above step every lane (chunk) through time, so the
# lanes of a program touch addresses L steps apart at every step. These step through the chunk in
# sub-tiles of W = 2^LOG steps: a program loads its [BC, W] tile of u and its [BC, W, NS] tile of a
# (rows of W*N contiguous elements), splits them into W columns at trace time (reshape + one permute
# to put the step's bits last, most significant last, then recursive tl.split), runs the same
# recurrence, with the same operations in the same order, over the columns, and (pass 3) joins the
# outputs back and stores a [BC, W] tile. Requires W | L (the launcher picks W).
# ---------------------------------------------------------------------------------------------------


@triton.jit
def _tv_bits_a(t, LOG: tl.constexpr, BC: tl.constexpr, NS: tl.constexpr):
    # [BC, 2^LOG, NS] -> [BC, NS, 2, ..., 2], the step's least significant bit first, its most
    # significant bit last (tl.split then gives the first and the second half of the steps).
    if LOG == 1:
        r = tl.permute(t, (0, 2, 1))
    elif LOG == 2:
        r = tl.permute(tl.reshape(t, [BC, 2, 2, NS]), (0, 3, 2, 1))
    elif LOG == 3:
        r = tl.permute(tl.reshape(t, [BC, 2, 2, 2, NS]), (0, 4, 3, 2, 1))
    elif LOG == 4:
        r = tl.permute(tl.reshape(t, [BC, 2, 2, 2, 2, NS]), (0, 5, 4, 3, 2, 1))
    else:
        tl.static_assert(LOG == 5)
        r = tl.permute(tl.reshape(t, [BC, 2, 2, 2, 2, 2, NS]), (0, 6, 5, 4, 3, 2, 1))
    return r


@triton.jit
def _tv_transfer_cols(ut, at, b_H, b_E, o_s, n0, N, ACC: tl.constexpr, LOG: tl.constexpr):
    # Steps n0, n0 + 1, ... (2^LOG of them) of tv_chunk_transfer_kernel's loop, on bit-shaped tiles.
    if LOG == 0:
        b_a = at.to(ACC)
        b_u = ut.to(ACC)
        b_hn = -tl.sum(b_a[:, :, None] * b_H, axis=1)
        b_en = b_u - tl.sum(b_a * b_E, axis=1)
        m_w = o_s == n0 % N
        b_H = tl.where(m_w[None, :, None], b_hn[:, None, :], b_H)
        b_E = tl.where(m_w[None, :], b_en[:, None], b_E)
    else:
        u_lo, u_hi = tl.split(ut)
        a_lo, a_hi = tl.split(at)
        b_H, b_E = _tv_transfer_cols(u_lo, a_lo, b_H, b_E, o_s, n0, N, ACC, LOG - 1)
        b_H, b_E = _tv_transfer_cols(u_hi, a_hi, b_H, b_E, o_s, n0 + (1 << (LOG - 1)), N, ACC, LOG - 1)
    return b_H, b_E


@triton.jit
def tv_chunk_transfer_tile_kernel(
    u_ptr, a_ptr, Phi_ptr, E_ptr,
    N, L, NCS, n_chunks, a_off,
    stride_ur, stride_ut, stride_ar, stride_at, stride_an,
    ACC: tl.constexpr, BC: tl.constexpr, NS: tl.constexpr, LOG: tl.constexpr, SKEW: tl.constexpr = False,
):
    """Pass 1 with coalesced [BC, W] / [BC, W, NS] tiles (``W = 2^LOG`` divides ``L``); same contract
    and results as ``tv_chunk_transfer_kernel``."""
    W: tl.constexpr = 1 << LOG
    i_p = tl.program_id(0).to(tl.int64)
    o_g = i_p * BC + tl.arange(0, BC)
    m_g = o_g < n_chunks
    o_r = o_g // NCS
    o_t0 = (o_g % NCS) * L
    o_s = tl.arange(0, NS)
    o_j = tl.arange(0, NS)
    o_w = tl.arange(0, W)
    m_s = o_s < N
    b_H = tl.where((o_s[:, None] == N - 1 - o_j[None, :]) & (o_j[None, :] < N), 1., 0.)
    b_H = tl.broadcast_to(b_H[None, :, :], [BC, NS, NS]).to(ACC)
    b_E = tl.zeros([BC, NS], dtype=ACC)
    p_u = u_ptr + o_r * stride_ur + o_t0 * stride_ut
    p_a = a_ptr + a_off + o_r * stride_ar + o_t0 * stride_at
    m_a = m_g[:, None] & m_s[None, :]
    m_wa = m_g[:, None, None] & m_s[None, None, :]
    for i in range(L // W):
        n0 = i * W
        # step n0 + w, slot s: a[n0 + w, (n0 + w - 1 - s) mod N] (the rotated order of the ring)
        o_k = (n0 + o_w[:, None] - 1 - o_s[None, :] + N) % N
        m_wak = m_wa & (o_t0[:, None, None] + n0 + o_w[None, :, None] > o_k[None, :, :]) if SKEW else m_wa
        b_at = tl.load(p_a[:, None, None] + o_w[None, :, None] * stride_at + o_k[None, :, :] * stride_an,
                       mask=m_wak, other=0.)
        b_ut = tl.load(p_u[:, None] + o_w[None, :] * stride_ut, mask=m_g[:, None], other=0.)
        p_a += W * stride_at
        p_u += W * stride_ut
        b_H, b_E = _tv_transfer_cols(to_bits(b_ut, LOG, BC), _tv_bits_a(b_at, LOG, BC, NS), b_H, b_E,
                                     o_s, n0, N, ACC, LOG)
    o_k = (L - 1 - o_s + N) % N
    p_E = E_ptr + o_g[:, None] * N + o_k[None, :]
    tl.store(p_E, b_E, mask=m_a)
    p_Phi = Phi_ptr + o_g[:, None, None] * N * N + o_k[None, :, None] * N + o_j[None, None, :]
    tl.store(p_Phi, b_H, mask=m_a[:, :, None] & (o_j[None, None, :] < N))


@triton.jit
def _tv_output_cols(ut, at, b_y, o_s, n0, N, ACC: tl.constexpr, Y_DTYPE: tl.constexpr, LOG: tl.constexpr):
    # Steps n0, n0 + 1, ... of tv_chunk_output_kernel's loop; returns the bit-shaped y tile.
    if LOG == 0:
        b_a = at.to(ACC)
        b_u = ut.to(ACC)
        b_yn = b_u - tl.sum(b_a * b_y, axis=1)
        b_y = tl.where((o_s == n0 % N)[None, :], b_yn[:, None], b_y)
        b_yt = b_yn.to(Y_DTYPE)
    else:
        u_lo, u_hi = tl.split(ut)
        a_lo, a_hi = tl.split(at)
        y_lo, b_y = _tv_output_cols(u_lo, a_lo, b_y, o_s, n0, N, ACC, Y_DTYPE, LOG - 1)
        y_hi, b_y = _tv_output_cols(u_hi, a_hi, b_y, o_s, n0 + (1 << (LOG - 1)), N, ACC, Y_DTYPE, LOG - 1)
        b_yt = tl.join(y_lo, y_hi)
    return b_yt, b_y


@triton.jit
def tv_chunk_output_tile_kernel(
    u_ptr, a_ptr, y_ptr, S_ptr, z_ptr, da_ptr,
    N, T, L, NC, NCS, n_chunks, a_off,
    stride_ur, stride_ut, stride_ar, stride_at, stride_an, stride_yr, stride_yt,
    stride_zr, stride_zt, stride_dr, stride_dt, stride_dk,
    HAS_CARRY: tl.constexpr, ACC: tl.constexpr, BC: tl.constexpr, NS: tl.constexpr, LOG: tl.constexpr,
    SKEW: tl.constexpr = False, DA: tl.constexpr = False,
):
    """Pass 3 with coalesced [BC, W] / [BC, W, NS] tiles (``W = 2^LOG`` divides ``L``); same contract
    and results as ``tv_chunk_output_kernel`` (``da`` as a [BC, W, NS] tile from the stored ``y`` tile)."""
    W: tl.constexpr = 1 << LOG
    m_g, o_r, o_t0, o_s, m_s, m_a, b_y, p_u, p_a, p_y = _output_chunks(
        u_ptr, a_ptr, y_ptr, S_ptr, N, L, NC, NCS, n_chunks, a_off, stride_ur, stride_ut, stride_ar, stride_at,
        stride_yr, stride_yt, HAS_CARRY, ACC, BC, NS)
    if DA:
        p_z, p_d = _da_rows(z_ptr, da_ptr, o_r, o_t0, stride_zr, stride_zt, stride_dr, stride_dt)
    o_w = tl.arange(0, W)
    for i in range(L // W):
        n0 = i * W
        m_t = m_g[:, None] & (o_t0[:, None] + n0 + o_w[None, :] < T)  # [BC, W]
        o_k = (n0 + o_w[:, None] - 1 - o_s[None, :] + N) % N
        m_at = m_t[:, :, None] & m_s[None, None, :]
        if SKEW:
            m_at = m_at & (o_t0[:, None, None] + n0 + o_w[None, :, None] > o_k[None, :, :])
        b_at = tl.load(p_a[:, None, None] + o_w[None, :, None] * stride_at + o_k[None, :, :] * stride_an,
                       mask=m_at, other=0.)
        b_ut = tl.load(p_u[:, None] + o_w[None, :] * stride_ut, mask=m_t, other=0.)
        b_yt, b_y = _tv_output_cols(to_bits(b_ut, LOG, BC), _tv_bits_a(b_at, LOG, BC, NS), b_y, o_s, n0, N,
                                    ACC, y_ptr.dtype.element_ty, LOG)
        b_yo = from_bits(b_yt, LOG, BC)
        tl.store(p_y[:, None] + o_w[None, :] * stride_yt, b_yo, mask=m_t)
        if DA:
            # lag k = o_s + 1 in slot s; z[n + k] zero past T - 1
            o_zt = n0 + o_w[None, :, None] + 1 + o_s[None, None, :]
            m_z = m_t[:, :, None] & m_s[None, None, :] & (o_t0[:, None, None] + o_zt < T)
            b_z = tl.load(p_z[:, None, None] + o_zt * stride_zt, mask=m_z, other=0.).to(y_ptr.dtype.element_ty)
            tl.store(p_d[:, None, None] + (n0 + o_w[None, :, None]) * stride_dt + o_s[None, None, :] * stride_dk,
                     -(b_yo[:, :, None] * b_z), mask=m_t[:, :, None] & m_s[None, None, :])
        p_a += W * stride_at
        p_u += W * stride_ut
        p_y += W * stride_yt


# ---------------------------------------------------------------------------------------------------
# Single-pass variant (orders 1 <= N <= 4): one launch, u and a read once, y written once. See the
# module docstring, section "Single pass". The state lives in N scalar registers per lane (y1 = y[n],
# y2 = y[n-1], ...), not in a ring tile: at these orders the unrolled register shift is cheaper than
# the ring's masked selects and reductions. Maps of the carry algebra are 16 + 4 scalars (``_affine``);
# NP = 1, 2 or 4 is the used block (N = 3 is computed on its 3 x 3 block and zero-padded to 4).
# ---------------------------------------------------------------------------------------------------


@triton.jit
def _sp_leaf_a(at, KB: tl.constexpr, ACC: tl.constexpr):
    # this step's coefficients a[n, 0..3] from the [B, 2, ..., 2] (KB twos) leaf (k >= N never read)
    if KB == 0:
        b_a1 = at.to(ACC)
        b_a2 = b_a1
        b_a3 = b_a1
        b_a4 = b_a1
    elif KB == 1:
        b_a1, b_a2 = tl.split(at)
        b_a1 = b_a1.to(ACC)
        b_a2 = b_a2.to(ACC)
        b_a3 = b_a1
        b_a4 = b_a1
    else:
        tl.static_assert(KB == 2)
        a_lo, a_hi = tl.split(at)  # k in {0, 1} and k in {2, 3}
        b_a1, b_a2 = tl.split(a_lo)
        b_a3, b_a4 = tl.split(a_hi)
        b_a1 = b_a1.to(ACC)
        b_a2 = b_a2.to(ACC)
        b_a3 = b_a3.to(ACC)
        b_a4 = b_a4.to(ACC)
    return b_a1, b_a2, b_a3, b_a4


@triton.jit
def _sp_step(b_u, b_a1, b_a2, b_a3, b_a4, s1, s2, s3, s4, N: tl.constexpr, FORCED: tl.constexpr):
    # One step y[n] = u[n] - sum_k a[n, k-1] y[n-k] on the shift state (s1, ..., sN) = (y[n-1], ...,
    # y[n-N]); returns the shifted state (y[n], ..., y[n-N+1]). Entries past N stay as they are (zero:
    # N = 3 pads to 4). One helper for the forced response and every homogeneous column, so they all
    # run the same operations in the same order. FORCED False: a homogeneous response (u = 0, b_u
    # unused), whose first term is -(a1 s1) with no subtraction from a zero input.
    if FORCED:
        b_n = b_u - b_a1 * s1
    else:
        b_n = -(b_a1 * s1)
    if N >= 2:
        b_n -= b_a2 * s2
    if N >= 3:
        b_n -= b_a3 * s3
    if N >= 4:
        b_n -= b_a4 * s4
        s4 = s3
    if N >= 3:
        s3 = s2
    if N >= 2:
        s2 = s1
    return b_n, s2, s3, s4


@triton.jit
def _sp_local(ut, at,
              e1, e2, e3, e4, h11, h12, h13, h14, h21, h22, h23, h24, h31, h32, h33, h34, h41, h42, h43, h44,
              N: tl.constexpr, KB: tl.constexpr, ACC: tl.constexpr, LOG: tl.constexpr):
    # Runs the 2^LOG steps of the bit-shaped tiles ut / at from the given registers: the forced
    # response (e) and the N homogeneous responses (column j of h starts as the unit state e_j), so
    # after the chunk, s -> h s + e is the chunk's map from its start state to its end state.
    if LOG == 0:
        b_a1, b_a2, b_a3, b_a4 = _sp_leaf_a(at, KB, ACC)
        b_u = ut.to(ACC)
        # one step of the forced response, then of each homogeneous one (columns past N stay put)
        e1, e2, e3, e4 = _sp_step(b_u, b_a1, b_a2, b_a3, b_a4, e1, e2, e3, e4, N, True)
        h11, h21, h31, h41 = _sp_step(b_u, b_a1, b_a2, b_a3, b_a4, h11, h21, h31, h41, N, False)
        if N >= 2:
            h12, h22, h32, h42 = _sp_step(b_u, b_a1, b_a2, b_a3, b_a4, h12, h22, h32, h42, N, False)
        if N >= 3:
            h13, h23, h33, h43 = _sp_step(b_u, b_a1, b_a2, b_a3, b_a4, h13, h23, h33, h43, N, False)
        if N >= 4:
            h14, h24, h34, h44 = _sp_step(b_u, b_a1, b_a2, b_a3, b_a4, h14, h24, h34, h44, N, False)
    else:
        u_lo, u_hi = tl.split(ut)
        a_lo, a_hi = tl.split(at)
        (e1, e2, e3, e4, h11, h12, h13, h14, h21, h22, h23, h24, h31, h32, h33, h34,
         h41, h42, h43, h44) = _sp_local(
            u_lo, a_lo, e1, e2, e3, e4, h11, h12, h13, h14, h21, h22, h23, h24, h31, h32, h33, h34,
            h41, h42, h43, h44, N, KB, ACC, LOG - 1)
        (e1, e2, e3, e4, h11, h12, h13, h14, h21, h22, h23, h24, h31, h32, h33, h34,
         h41, h42, h43, h44) = _sp_local(
            u_hi, a_hi, e1, e2, e3, e4, h11, h12, h13, h14, h21, h22, h23, h24, h31, h32, h33, h34,
            h41, h42, h43, h44, N, KB, ACC, LOG - 1)
    return e1, e2, e3, e4, h11, h12, h13, h14, h21, h22, h23, h24, h31, h32, h33, h34, h41, h42, h43, h44


@triton.jit
def _sp_output(ut, at, y1, y2, y3, y4, N: tl.constexpr, KB: tl.constexpr, ACC: tl.constexpr,
               Y_DTYPE: tl.constexpr, LOG: tl.constexpr):
    # Runs the 2^LOG steps from the state (y1, ..., yN); returns the bit-shaped output tile.
    if LOG == 0:
        b_a1, b_a2, b_a3, b_a4 = _sp_leaf_a(at, KB, ACC)
        y1, y2, y3, y4 = _sp_step(ut.to(ACC), b_a1, b_a2, b_a3, b_a4, y1, y2, y3, y4, N, True)
        b_yt = y1.to(Y_DTYPE)
    else:
        u_lo, u_hi = tl.split(ut)
        a_lo, a_hi = tl.split(at)
        y_lo, y1, y2, y3, y4 = _sp_output(u_lo, a_lo, y1, y2, y3, y4, N, KB, ACC, Y_DTYPE, LOG - 1)
        y_hi, y1, y2, y3, y4 = _sp_output(u_hi, a_hi, y1, y2, y3, y4, N, KB, ACC, Y_DTYPE, LOG - 1)
        b_yt = tl.join(y_lo, y_hi)
    return b_yt, y1, y2, y3, y4


@triton.jit
def _sp_store_map(p, q11, q12, q13, q14, q21, q22, q23, q24, q31, q32, q33, q34, q41, q42, q43, q44,
                  v1, v2, v3, v4, m, NP: tl.constexpr):
    # record layout: q row-major (16), then v (4); only the leading NP x NP block and NP entries
    tl.store(p, q11, mask=m)
    tl.store(p + 16, v1, mask=m)
    if NP >= 2:
        tl.store(p + 1, q12, mask=m)
        tl.store(p + 4, q21, mask=m)
        tl.store(p + 5, q22, mask=m)
        tl.store(p + 17, v2, mask=m)
    if NP >= 4:
        tl.store(p + 2, q13, mask=m)
        tl.store(p + 3, q14, mask=m)
        tl.store(p + 6, q23, mask=m)
        tl.store(p + 7, q24, mask=m)
        tl.store(p + 8, q31, mask=m)
        tl.store(p + 9, q32, mask=m)
        tl.store(p + 10, q33, mask=m)
        tl.store(p + 11, q34, mask=m)
        tl.store(p + 12, q41, mask=m)
        tl.store(p + 13, q42, mask=m)
        tl.store(p + 14, q43, mask=m)
        tl.store(p + 15, q44, mask=m)
        tl.store(p + 18, v3, mask=m)
        tl.store(p + 19, v4, mask=m)


@triton.jit
def _sp_load_map(p, m, b_0, NP: tl.constexpr):
    # The map records behind the block of pointers p (.cg: from L2, not a possibly stale L1 line
    # written before the flag was raised); the identity map where m is False and outside the NP block.
    q11 = tl.load(p, mask=m, other=1.0, cache_modifier=".cg")
    v1 = tl.load(p + 16, mask=m, other=0.0, cache_modifier=".cg")
    q12 = b_0
    q13 = b_0
    q14 = b_0
    q21 = b_0
    q22 = b_0 + 1.0
    q23 = b_0
    q24 = b_0
    q31 = b_0
    q32 = b_0
    q33 = b_0 + 1.0
    q34 = b_0
    q41 = b_0
    q42 = b_0
    q43 = b_0
    q44 = b_0 + 1.0
    v2 = b_0
    v3 = b_0
    v4 = b_0
    if NP >= 2:
        q12 = tl.load(p + 1, mask=m, other=0.0, cache_modifier=".cg")
        q21 = tl.load(p + 4, mask=m, other=0.0, cache_modifier=".cg")
        q22 = tl.load(p + 5, mask=m, other=1.0, cache_modifier=".cg")
        v2 = tl.load(p + 17, mask=m, other=0.0, cache_modifier=".cg")
    if NP >= 4:
        q13 = tl.load(p + 2, mask=m, other=0.0, cache_modifier=".cg")
        q14 = tl.load(p + 3, mask=m, other=0.0, cache_modifier=".cg")
        q23 = tl.load(p + 6, mask=m, other=0.0, cache_modifier=".cg")
        q24 = tl.load(p + 7, mask=m, other=0.0, cache_modifier=".cg")
        q31 = tl.load(p + 8, mask=m, other=0.0, cache_modifier=".cg")
        q32 = tl.load(p + 9, mask=m, other=0.0, cache_modifier=".cg")
        q33 = tl.load(p + 10, mask=m, other=1.0, cache_modifier=".cg")
        q34 = tl.load(p + 11, mask=m, other=0.0, cache_modifier=".cg")
        q41 = tl.load(p + 12, mask=m, other=0.0, cache_modifier=".cg")
        q42 = tl.load(p + 13, mask=m, other=0.0, cache_modifier=".cg")
        q43 = tl.load(p + 14, mask=m, other=0.0, cache_modifier=".cg")
        q44 = tl.load(p + 15, mask=m, other=1.0, cache_modifier=".cg")
        v3 = tl.load(p + 18, mask=m, other=0.0, cache_modifier=".cg")
        v4 = tl.load(p + 19, mask=m, other=0.0, cache_modifier=".cg")
    return q11, q12, q13, q14, q21, q22, q23, q24, q31, q32, q33, q34, q41, q42, q43, q44, v1, v2, v3, v4


@triton.jit
def _sp_time(i_p, T, ADJOINT: tl.constexpr):
    """The memory time of processing step ``i_p``: reversed in the adjoint."""
    if ADJOINT:
        r = T - 1 - i_p
    else:
        r = i_p
    return r


@triton.jit
def _sp_coefficient_grads(p_z, p_da, b_v, i_y0, T, s_zt, s_dt, s_dn,
                          N: tl.constexpr, NS: tl.constexpr, L: tl.constexpr, BLOCK: tl.constexpr,
                          ACC: tl.constexpr, LAG0: tl.constexpr = 1, NEG: tl.constexpr = True):
    """``da[n, j] = -v[n] z[n-j-LAG0]`` (``j < N``) for the tile of processing steps ``i_y0 + s``
    (``n = T-1-i_y0-s``): ``v`` [BLOCK, L] in registers, ``z`` read skewed like the coefficients, ``da``
    stored in ``a``'s [T, N] layout (coalesced); ``z`` is zero before time 0. ``LAG0 = 1``, ``NEG``:
    the all-pole gradient (lags 1..N); ``LAG0 = 0``, not ``NEG``: an FIR's ``db[n, k] = v[n] w[n-k]``
    (the time-varying cascade). Offsets are int32 in the tile from one int64 base, recomputed here:
    the int64 [BLOCK, L * NS] step indices of the ``a`` load kept alive to this point made the kernel
    spill at order 4 (sm_90)."""
    o_q = tl.arange(0, L * NS)
    o_k = (o_q % NS)[None, :]
    o_s = (tl.arange(0, BLOCK) * L)[:, None] + (o_q // NS)[None, :]  # step in the tile
    i_n0 = T - 1 - i_y0  # memory time of the tile's first step
    m = (o_s < T - i_y0) & (o_k < N)
    b_z = tl.load(p_z + (i_n0 - LAG0) * s_zt - (o_s + o_k) * s_zt, mask=m & (i_n0 - o_s >= o_k + LAG0), other=0.)
    b_vk = tl.reshape(tl.broadcast_to(b_v[:, :, None], [BLOCK, L, NS]), [BLOCK, L * NS])
    if NEG:
        b_da = -(b_vk.to(ACC) * b_z.to(ACC))
    else:
        b_da = b_vk.to(ACC) * b_z.to(ACC)
    tl.store(p_da + i_n0 * s_dt - o_s * s_dt + o_k * s_dn, b_da.to(p_da.dtype.element_ty), mask=m)


@triton.jit
def _sp_section(b_ut, b_at, p_agg, p_inc, p_fa, p_fi, i_c, o_l,
                N: tl.constexpr, NP: tl.constexpr, KB: tl.constexpr, LOG: tl.constexpr, BLOCK: tl.constexpr,
                W: tl.constexpr, ACC: tl.constexpr, Y_DTYPE: tl.constexpr, clk=None, i_tk=None,
                TIMED: tl.constexpr = False):
    """Steps 1-4 of the single pass (module docstring) for one filter on a tile already in registers:
    ``b_ut`` / ``b_at`` bit-shaped input and coefficient tiles of tile ``i_c`` of one row; ``p_agg``
    (map records) and ``p_inc`` (states) that row's look-back buffers, ``p_fa`` / ``p_fi`` its aggregate
    and inclusive flags. Returns the bit-shaped output tile and every lane's true start state
    (``y[t0-1], ..., y[t0-4]``, which a cascade's next section uses as its FIR halo). ``TIMED``: stamp
    ticket ``i_tk``'s row of ``clk`` at each step's end (``_clock.py``)."""
    # every lane from a zero state: its forced end state e and its transfer matrix h
    b_0 = tl.zeros([BLOCK], dtype=ACC)
    b_1 = b_0 + 1.0
    h22 = b_0
    h33 = b_0
    h44 = b_0
    if N >= 2:
        h22 = b_1
    if N >= 3:
        h33 = b_1
    if N >= 4:
        h44 = b_1
    (e1, e2, e3, e4, h11, h12, h13, h14, h21, h22, h23, h24, h31, h32, h33, h34,
     h41, h42, h43, h44) = _sp_local(
        b_ut, b_at, b_0, b_0, b_0, b_0, b_1, b_0, b_0, b_0, b_0, h22, b_0, b_0, b_0, b_0, h33, b_0,
        b_0, b_0, b_0, h44, N, KB, ACC, LOG)
    if TIMED:
        stamp(clk, i_tk, 4, e1, o_l)

    # ---- 2. lane scan: lane j gets the map from the tile's start state to its own end state
    (q11, q12, q13, q14, q21, q22, q23, q24, q31, q32, q33, q34, q41, q42, q43, q44,
     v1, v2, v3, v4) = scan_affine(h11, h12, h13, h14, h21, h22, h23, h24, h31, h32, h33, h34,
                                   h41, h42, h43, h44, e1, e2, e3, e4, NP, 0)

    # ---- 3. publish the tile aggregate (the last lane's map) before waiting for anything, so the
    # tiles behind this one never wait on this tile's own wait
    if TIMED:
        stamp(clk, i_tk, 5, v1, o_l)
    m_last = o_l == BLOCK - 1
    _sp_store_map(p_agg + i_c * 20 + 0 * o_l, q11, q12, q13, q14, q21, q22,
                  q23, q24, q31, q32, q33, q34, q41, q42, q43, q44, v1, v2, v3, v4, m_last, NP)
    publish(p_fa + i_c)
    if TIMED:
        stamp(clk, i_tk, 6, v1, o_l)

    # fold the aggregates of tiles c-W+1 .. c-1 in a fixed tree (slot 0 and tiles before 0: identity) ...
    o_w = tl.arange(0, W)
    i_w = i_c - W + o_w  # slot 0 is the anchor tile c-W
    m_w = (o_w >= 1) & (i_w >= 0)
    n_poll = wait_flags(p_fa + i_w, m_w)
    w_0 = tl.zeros([W], dtype=ACC)
    (f11, f12, f13, f14, f21, f22, f23, f24, f31, f32, f33, f34, f41, f42, f43, f44,
     g1, g2, g3, g4) = _sp_load_map(p_agg + i_w * 20, m_w, w_0, NP)
    (f11, f12, f13, f14, f21, f22, f23, f24, f31, f32, f33, f34, f41, f42, f43, f44,
     g1, g2, g3, g4) = scan_affine(f11, f12, f13, f14, f21, f22, f23, f24, f31, f32, f33, f34,
                                   f41, f42, f43, f44, g1, g2, g3, g4, NP, 0)
    # ... then apply the fold to the inclusive state of the anchor tile c-W (zero before the signal).
    # Applying it on every slot and picking the last one costs NP reductions instead of NP*NP + NP.
    m_an = (o_w == 0) & (i_w >= 0)
    n_poll += wait_flags(p_fi + i_w, m_an)
    i_an = i_c - W
    p_an = p_inc + i_an * 4
    m_a = i_an >= 0
    s1 = tl.load(p_an, mask=m_a, other=0., cache_modifier=".cg")
    s2 = tl.load(p_an + 1, mask=m_a & (NP >= 2), other=0., cache_modifier=".cg")
    s3 = tl.load(p_an + 2, mask=m_a & (NP >= 4), other=0., cache_modifier=".cg")
    s4 = tl.load(p_an + 3, mask=m_a & (NP >= 4), other=0., cache_modifier=".cg")
    t1, t2, t3, t4 = apply_affine(f11, f12, f13, f14, f21, f22, f23, f24, f31, f32, f33, f34,
                                  f41, f42, f43, f44, g1, g2, g3, g4, s1, s2, s3, s4, NP)
    # the true state before this tile: the last slot (a masked sum is exact; registers cannot be indexed)
    m_lw = o_w == W - 1
    s1 = tl.sum(tl.where(m_lw, t1, 0.), axis=0)
    s2 = tl.sum(tl.where(m_lw, t2, 0.), axis=0)
    s3 = tl.sum(tl.where(m_lw, t3, 0.), axis=0)
    s4 = tl.sum(tl.where(m_lw, t4, 0.), axis=0)
    if TIMED:
        stamp(clk, i_tk, 7, b_0 + s1, o_l)
        stamp_value(clk, i_tk, 12, n_poll, o_l)

    # every lane's true end state; the last lane's is this tile's inclusive state: publish it
    b_s1, b_s2, b_s3, b_s4 = apply_affine(q11, q12, q13, q14, q21, q22, q23, q24, q31, q32, q33, q34,
                                          q41, q42, q43, q44, v1, v2, v3, v4, s1, s2, s3, s4, NP)
    p_ic = p_inc + i_c * 4 + 0 * o_l
    tl.store(p_ic, b_s1, mask=m_last)
    if NP >= 2:
        tl.store(p_ic + 1, b_s2, mask=m_last)
    if NP >= 4:
        tl.store(p_ic + 2, b_s3, mask=m_last)
        tl.store(p_ic + 3, b_s4, mask=m_last)
    publish(p_fi + i_c)
    if TIMED:
        stamp(clk, i_tk, 8, b_s1, o_l)

    # ---- 4. lane j starts from lane j-1's true end state (lane 0 from the tile's); re-run, store y
    o_prev = tl.maximum(o_l - 1, 0)
    b_s1 = tl.where(o_l == 0, s1, tl.gather(b_s1, o_prev, 0))
    if NP >= 2:
        b_s2 = tl.where(o_l == 0, s2, tl.gather(b_s2, o_prev, 0))
    if NP >= 4:
        b_s3 = tl.where(o_l == 0, s3, tl.gather(b_s3, o_prev, 0))
        b_s4 = tl.where(o_l == 0, s4, tl.gather(b_s4, o_prev, 0))
    b_yt, b_r1, _, _, _ = _sp_output(b_ut, b_at, b_s1, b_s2, b_s3, b_s4, N, KB, ACC, Y_DTYPE, LOG)
    if TIMED:  # b_r1: every lane's last output, the end of its re-run
        stamp(clk, i_tk, 9, b_r1, o_l)
    return b_yt, b_s1, b_s2, b_s3, b_s4


@triton.jit
def tv_single_pass_kernel(
    u_ptr, a_ptr, y_ptr, agg_ptr, inc_ptr, flags_ptr, z_ptr, da_ptr, clk,
    R, T, n_tiles,
    stride_ur, stride_ut, stride_ar, stride_at, stride_an, stride_yr, stride_yt,
    stride_zr, stride_zt, stride_dr, stride_dt, stride_dn,
    N: tl.constexpr, NP: tl.constexpr, KB: tl.constexpr, LOG: tl.constexpr, BLOCK: tl.constexpr,
    W: tl.constexpr, ACC: tl.constexpr, ADJOINT: tl.constexpr, DA: tl.constexpr, TIMED: tl.constexpr = False,
    LANE_LOADS: tl.constexpr = False, V: tl.constexpr = 2,
):
    """One program per tile of ``BLOCK`` chunks (lanes) of ``L = 2^LOG`` steps of one row, in ticket
    order (tile ``c = ticket // R``, row ``ticket % R``: the rows advance together). Layouts:
    ``agg [R, n_tiles, 20]`` (map records: q row-major, then v), ``inc [R, n_tiles, 4]`` (states),
    ``flags [2 R n_tiles + 1]`` int32 zeros: aggregate flags, inclusive flags, the ticket counter.

    ``ADJOINT``: the backward of ``z = tv(., a)`` for the output gradient ``u``, in the same pass
    (see ``time_varying_adjoint``): processing step ``p`` is memory time ``n = T-1-p``; the
    coefficient of lag ``k`` at step ``p`` is ``a[n+k, k-1]`` (a skewed load of the ``a`` tile); ``y``
    receives ``v = du`` and ``da[n, k-1] = -v[n] z[n-k]`` is formed from the tile in registers.
    ``TIMED``: a row of clock stamps a ticket in ``clk`` (``_clock.py``). ``LANE_LOADS`` (the forward,
    unit-stride ``u`` and ``y``, ``a`` rows of ``T * N`` contiguous coefficients, ``N`` 1 or 2):
    every thread loads its lane's ``u`` and ``a`` runs and stores its ``y`` run in vectors of ``2^V``
    elements (``_lane_tiles.py``) instead of the coalesced tiles, their 64-bit element addresses and
    their layout change through shared memory."""
    L: tl.constexpr = 1 << LOG
    NS: tl.constexpr = 1 << KB  # coefficient columns per step in the a tile (N padded to 1, 2, 4)
    i_tk = take_ticket(flags_ptr + 2 * R * n_tiles)
    i_c = i_tk // R
    i_r = i_tk % R
    p_fa = flags_ptr + i_r * n_tiles  # this row's aggregate flags
    p_fi = flags_ptr + (R + i_r) * n_tiles  # this row's inclusive flags
    o_l = tl.arange(0, BLOCK)
    o_t0 = (i_c * BLOCK + o_l) * L  # first step of every lane (int64)

    if LANE_LOADS:
        # ---- 1. the tile lane by lane: u's run [L] and a's [L * NS] (element n * NS + k) in one thread
        i_l0 = i_c * (BLOCK * L)
        b_ut = load_lanes(u_ptr + i_r * stride_ur, i_l0, T, u_ptr.dtype.element_ty, 0, LOG, V, L, BLOCK, False)
        if TIMED:
            stamp_start(clk, i_tk, o_l)
        b_at = load_lanes(a_ptr + i_r * stride_ar, i_l0 * NS, T * NS, a_ptr.dtype.element_ty, 0, LOG + KB, V,
                          L * NS, BLOCK, False)
        if TIMED:
            stamp_tile(clk, i_tk, 3, from_bits(b_ut, LOG, BLOCK), o_l)
    else:
        # ---- 1. the tile, loaded once and coalesced: u [BLOCK, L], a [BLOCK, L * NS] (column n * NS + k)
        o_n = tl.arange(0, L)
        o_tn = o_t0[:, None] + o_n[None, :]
        m_n = o_tn < T
        b_u = tl.load(u_ptr + i_r * stride_ur + _sp_time(o_tn, T, ADJOINT) * stride_ut, mask=m_n, other=0.)
        if TIMED:
            stamp_start(clk, i_tk, o_l)
        o_q = tl.arange(0, L * NS)
        o_k = o_q % NS
        o_ta = o_t0[:, None] + (o_q // NS)[None, :]
        if ADJOINT:
            # lag k = o_k + 1 at step p reads a[n + k, k - 1] (n = T-1-p); zero where n + k > T - 1
            b_at = tl.load(a_ptr + i_r * stride_ar + (T - o_ta + o_k[None, :]) * stride_at + o_k[None, :] * stride_an,
                           mask=(o_ta < T) & (o_k < N)[None, :] & (o_ta > o_k[None, :]), other=0.)
        else:
            b_at = tl.load(a_ptr + i_r * stride_ar + o_ta * stride_at + o_k[None, :] * stride_an,
                           mask=(o_ta < T) & (o_k < N)[None, :], other=0.)
        # column n * NS + k: its KB low bits are k, its LOG high bits the step, so the first LOG splits
        # walk the steps and each leaf is one step's [BLOCK, 2, ..., 2] (KB twos) coefficients
        if TIMED:  # the u tile in registers (its a tile's loads were issued with it)
            stamp_tile(clk, i_tk, 3, b_u, o_l)
        b_ut = to_bits(b_u, LOG, BLOCK)
        b_at = to_bits(b_at, LOG + KB, BLOCK)
    # (steps past T are zero-input, zero-coefficient steps: they only move states no one reads)

    b_yt, _, _, _, _ = _sp_section(b_ut, b_at, agg_ptr + i_r * n_tiles * 20, inc_ptr + i_r * n_tiles * 4, p_fa,
                                   p_fi, i_c, o_l, N, NP, KB, LOG, BLOCK, W, ACC, y_ptr.dtype.element_ty, clk,
                                   i_tk, TIMED)
    # Store offsets recomputed here from a scalar tile base and int32 in-tile offsets (y is the
    # launcher's contiguous tensor: in-tile offsets < BLOCK * L): keeping the int64 [BLOCK, L] offsets
    # of the loads alive across the look-back cost ~2 registers per step.
    i_y0 = i_c * (BLOCK * L)
    o_y = (o_l * L)[:, None] + tl.arange(0, L)[None, :]
    if LANE_LOADS:
        store_lanes(y_ptr + i_r * stride_yr, i_y0, T, b_yt, 0, LOG, V, L, BLOCK, False)
    elif ADJOINT:
        b_y = from_bits(b_yt, LOG, BLOCK)
        # processing step i_y0 + o_y is memory time T-1-i_y0-o_y: a reversed tile, never copied
        tl.store(y_ptr + i_r * stride_yr + (T - 1 - i_y0) * stride_yt - o_y * stride_yt, b_y, mask=o_y < T - i_y0)
        if DA:
            _sp_coefficient_grads(z_ptr + i_r * stride_zr, da_ptr + i_r * stride_dr, b_y, i_y0, T,
                                  stride_zt, stride_dt, stride_dn, N, NS, L, BLOCK, ACC)
    else:
        tl.store(y_ptr + i_r * stride_yr + i_y0 * stride_yt + o_y * stride_yt, from_bits(b_yt, LOG, BLOCK),
                 mask=o_y < T - i_y0)
    if TIMED:
        stamp_end(clk, i_tk, o_l)


def _pow2_floor(x: int) -> int:
    return 1 << (max(1, x).bit_length() - 1)


def _batch(n_items: int, max_per_program: int, interpret: bool) -> int:
    """Items (chunks, groups, rows) per program, a power of two. On a GPU: up to ``max_per_program``
    (so a small-N tile still fills a few warps) while keeping >= ~512 programs for the SMs. Under the
    interpreter, which pays per program and per op rather than per element: as wide as allowed."""
    if interpret:
        return max(1, min(64, next_pow2(n_items)))
    return max(1, min(_pow2_floor(max_per_program), _pow2_floor(n_items // 512)))


def _tile_log(L: int, NS: int) -> int:
    """log2 of the sub-tile width W of the coalesced passes: the largest power of two dividing ``L``,
    at most 32 (16 for N > 4, to bound the [BC, W, NS] tile of ``a``: compiled for sm_90, order 8 on
    32-step sub-tiles spilled in both passes); 0 (looped kernels) if W < 2."""
    W = min(L & -L, 32 if NS <= 4 else 16)
    return W.bit_length() - 1 if W >= 2 else 0


def single_pass_chunk(N: int, T: int, block_size: int | None) -> int:
    """The single pass's chunk length (a power of two <= 64), or 0 where it cannot run ``block_size``.
    Default 16 steps (8 for N >= 3): ptxas for sm_90 (triton 3.7.1, 128 lanes, W = 128) reports 128
    registers at N = 2, L = 16 but 210 at L = 32; N = 4 in float64 spills at L = 16."""
    L = block_size if block_size is not None else min(16 if N <= 2 else 8, next_pow2(max(T, 1)))
    return L if L <= 64 and L & (L - 1) == 0 else 0


def accumulation(N: int, dtype: torch.dtype, accumulate_fp64: bool | None):
    """``(acc_dtype, ACC)``: float64 unless told otherwise (``accumulate_fp64=False`` gives float32
    data float32 carries; see ``time_varying``)."""
    if accumulate_fp64 is None:
        accumulate_fp64 = True
    acc_dtype = torch.float64 if (accumulate_fp64 or dtype == torch.float64) else torch.float32
    return acc_dtype, (tl.float64 if acc_dtype == torch.float64 else tl.float32)


def adjoint_max_registers(N: int, acc_dtype: torch.dtype, L: int, BLOCK: int, requested: bool | None = None):
    """The register cap (``maxnreg``) of a single-pass backward launch, or None. Compiled for sm_90 the
    order-2 backward (float32, 16-step lanes, 4-warp programs of 128 lanes) took 203 registers a
    thread, 2 programs an SM; capped at 128 it keeps every value in registers (3400 static
    instructions against 3184) and 4 fit (``benchmarks/results/sm90-compile-2026-11-28/``). Only that
    verified shape gets it (``SSM_LFILTER_REGISTER_CAP`` or ``requested`` False: none)."""
    if not (_register_cap(requested) and N == 2 and acc_dtype == torch.float32 and L == 16 and BLOCK == 128):
        return None
    return 128


def _time_varying_single_pass(u, a, y, L, lanes, window_tiles, ACC, acc_dtype, interpret, adjoint=False, z=None,
                              da=None, clock=None, register_cap=None, lane_loads=None):
    """Launch ``tv_single_pass_kernel`` (``1 <= N <= 4``, ``L`` a power of two <= 64) into ``y``.
    ``u [R, T]`` and ``a [R, T, N]`` (possibly stride-0 rows) are already in the output dtype.
    ``adjoint``: the backward (``time_varying_adjoint``), with ``z [R, T]`` and ``da [R, T, N]`` for the
    coefficient gradients (``da`` None: none). ``clock``: every tile's clock stamps (``_clock.py``).
    ``register_cap``: whether a backward launch takes ``adjoint_max_registers`` (None: the default).
    ``lane_loads``: a forward launch with unit-stride ``u`` and ``y`` and rows of contiguous ``a``
    (``N`` 1 or 2) loads and stores lane by lane (``_lane_tiles.py``; None:
    ``SSM_LFILTER_LANE_LOADS``, off unless "1"); the same bits."""
    R, T = u.shape
    N = a.shape[2]
    KB = 0 if N == 1 else (1 if N == 2 else 2)  # a tile columns per step: N padded to 2^KB
    n_chunks = cdiv(T, L)
    # Under the interpreter every lane-scan element costs a Python-level combine: narrow tiles.
    BLOCK = lanes if lanes is not None else min(8 if interpret else 128, max(2, next_pow2(n_chunks)))
    n_tiles = cdiv(n_chunks, BLOCK)
    W = window_tiles if window_tiles is not None else _window(n_tiles, R, cap=4 if interpret else 128)
    agg = torch.empty(R, n_tiles, 20, dtype=acc_dtype, device=u.device)
    inc = torch.empty(R, n_tiles, 4, dtype=acc_dtype, device=u.device)
    flags = torch.zeros(2 * R * n_tiles + 1, dtype=torch.int32, device=u.device)
    zz = z if z is not None else y  # never read without da
    dd = da if da is not None else y[:, :, None]
    timed = prepare_clock(clock, R * n_tiles, 1, "time_varying")
    cap = adjoint_max_registers(N, acc_dtype, L, BLOCK, register_cap) if adjoint else None
    # orders 1-2 only: at order 4 (float64 accumulation, 255 registers) a row of 2^24 spilled 96 bytes
    lanes_io = (_use_lane_loads(lane_loads) and not adjoint and N <= 2 and u.stride(1) == 1
                and y.stride(1) == 1 and a.stride(1) == N and (N == 1 or a.stride(2) == 1))
    tv_single_pass_kernel[(R * n_tiles,)](
        u, a, y, agg, inc, flags, zz, dd, clock if timed else flags, R, T, n_tiles,
        u.stride(0), u.stride(1), a.stride(0), a.stride(1), a.stride(2), y.stride(0), y.stride(1),
        zz.stride(0), zz.stride(1), dd.stride(0), dd.stride(1), dd.stride(2),
        N=N, NP=1 << KB, KB=KB, LOG=L.bit_length() - 1, BLOCK=BLOCK, W=W, ACC=ACC, ADJOINT=adjoint, DA=da is not None,
        TIMED=timed, LANE_LOADS=lanes_io, V=vector_log2(y.element_size()),
        num_warps=max(1, min(4, BLOCK // 32)), **register_cap_option(cap),
    )
    return y


def _adjoint_strides(a: torch.Tensor) -> tuple[int, tuple[int, int, int]]:
    """``(a_off, strides)`` that make the passes read the adjoint's skewed, reversed coefficients
    ``a'[m, k-1] = a[T-1-m+k, k-1]`` (step ``m`` of the reversed time, lag ``k``) straight from
    ``a [R, T, N]``: ``a + a_off + m * s_t' + (k-1) * s_k'`` with ``s_t' = -s_t``, ``s_k' = s_t + s_k`` and
    ``a_off = T s_t``. Lag ``k`` at steps ``m < k`` would lie past the row's end: the kernels' ``SKEW``
    masks it (it meets the zero state there). No flipped or skewed copy of ``a`` is made."""
    T = a.shape[1]
    s_r, s_t, s_k = a.stride()
    return T * s_t, (s_r, -s_t, s_t + s_k)


def _time_varying_multi_pass(u, a, y, block_size, coalesced, ACC, acc_dtype, interpret, z=None, da=None):
    """The passes of the module docstring (``1 <= N <= 16``) into ``y``; ``u [R, T]`` and ``a [R, T, N]``
    (possibly stride-0 rows or time) already in the output dtype. With ``z [R, T]``, the adjoint
    (``time_varying_adjoint``): ``u`` is the output gradient ``g`` and ``y`` receives ``v`` of
    ``v[n] = g[n] - sum_k a[n+k, k-1] v[n+k]``, run as the same passes in reversed time (``g``, ``y``
    and ``z`` addressed from their last sample with negated time strides, ``a`` skewed by
    ``_adjoint_strides``); ``da [R, T, N]`` (or None) receives ``-v[n] z[n-k]``. Same chunk length and
    operations as the forward on the flipped signal and skewed coefficients, so the composed backward
    agrees to the last bit."""
    R, T = u.shape
    N = a.shape[2]
    dev = u.device
    adjoint = z is not None
    a_off, a_strides = _adjoint_strides(a) if adjoint else (0, (a.stride(0), a.stride(1), a.stride(2)))
    u_strides = (u.stride(0), -u.stride(1) if adjoint else u.stride(1))
    y_strides = (y.stride(0), -y.stride(1) if adjoint else y.stride(1))
    out = y
    if adjoint:  # from the last sample, with the negated time strides above
        u, y = u[:, T - 1:], y[:, T - 1:]
    has_da = da is not None
    zz = z[:, T - 1:] if adjoint else y
    dd = da[:, T - 1:] if has_da else y[:, :, None]
    z_strides = (z.stride(0), -z.stride(1)) if adjoint else (0, 0)
    d_strides = (da.stride(0), -da.stride(1), da.stride(2)) if has_da else (0, 0, 0)

    L = block_size if block_size is not None else min(512, max(16, _pow2_floor(math.isqrt(R * T // 4))))
    L = min(L, T)
    NC = cdiv(T, L)
    NCS = NC - 1  # chunks whose end state is needed (all but the last of each row, all full)
    NS = max(2, next_pow2(N))

    LOG = _tile_log(L, NS) if _tile_io(coalesced) else 0
    # pass 3 of the adjoint also holds [BC, W, NS] tiles of z and da: 8-step sub-tiles (the sub-tile width
    # does not change the results; see pass 3 for the tile sizes)
    LOG3 = min(LOG, 3) if has_da else LOG
    # coalesced passes: also keep the [BC, W, NS] tile of a at <= 8K elements per program on a GPU
    bc_cap = max(1, 8192 // ((1 << LOG) * NS)) if LOG and not interpret else 1 << 30

    S = y  # placeholder pointer when every row is a single chunk (never read)
    if NCS > 0:
        # Pass 1: ~1K elements of the [BC, N, N] lane tile per program, while keeping >= ~512 programs.
        n1 = R * NCS
        BC1 = _batch(n1, min(1024 // (NS * NS), bc_cap), interpret)
        Phi = torch.empty(n1, N, N, dtype=acc_dtype, device=dev)
        E = torch.empty(n1, N, dtype=acc_dtype, device=dev)
        # Above order 4 the adjoint's skewed tile of a takes 8-step sub-tiles, as pass 3 does with da:
        # compiled for sm_90, 16-step ones spilled 32 bytes (order 8, 64 x 2^20) and 8 (order 16,
        # 8 x 2^18); 8-step ones keep 124-206 registers and no spill. The width does not change the bits.
        LOG1 = min(LOG, 3) if adjoint and NS >= 8 else LOG
        kernel1, extra = (tv_chunk_transfer_tile_kernel, dict(LOG=LOG1)) if LOG1 else (tv_chunk_transfer_kernel, {})
        kernel1[(cdiv(n1, BC1),)](
            u, a, Phi, E, N, L, NCS, n1, a_off, *u_strides, *a_strides,
            ACC=ACC, BC=BC1, NS=NS, SKEW=adjoint, num_warps=max(1, min(4, BC1 * NS * NS // 256)), **extra,
        )
        # Pass 2: groups of G chunks, so that both sequential chains are ~sqrt(NCS) long.
        G = max(1, math.isqrt(NCS - 1) + 1) if NCS > 1 else 1
        NG = cdiv(NCS, G)
        NGS = NG - 1  # groups whose end state is needed (all full)
        S = torch.empty(n1, N, dtype=acc_dtype, device=dev)
        SG = S  # placeholder pointer when there is one group per row
        n2 = R * NG
        w2 = max(1, min(4, NS * NS // 128))
        if NGS > 0:
            n2a = R * NGS
            P = torch.empty(n2a, N, N, dtype=acc_dtype, device=dev)
            F = torch.empty(n2a, N, dtype=acc_dtype, device=dev)
            SG = torch.empty(n2a, N, dtype=acc_dtype, device=dev)
            BQ = _batch(n2a, 2048 // (NS * NS * NS), interpret)
            tv_group_transfer_kernel[(cdiv(n2a, BQ),)](
                Phi, E, P, F, N, NCS, G, NGS, n2a, BQ=BQ, NS=NS,
                num_warps=max(1, min(4, BQ * NS * NS * NS // 512)),
            )
            BR2 = _batch(R, 1024 // (NS * NS), interpret)
            tv_group_scan_kernel[(cdiv(R, BR2),)](P, F, SG, R, N, NGS, BR=BR2, NS=NS, num_warps=w2)
        BQ = _batch(n2, 1024 // (NS * NS), interpret)
        tv_chunk_state_kernel[(cdiv(n2, BQ),)](
            Phi, E, SG, S, N, NCS, G, NGS, n2, HAS_GROUPS=NGS > 0, BQ=BQ, NS=NS, num_warps=w2,
        )
    # Pass 3: every (row, chunk) re-run from its true initial state.
    n3 = R * NC
    if LOG3 and (has_da or NS >= 8):
        # Above order 4 (and with da) the [BC, W, NS] tiles take at most 4 warps of 1024 elements (512 with
        # da, at least 2 warps): compiled for sm_90 at 8 x 2^18 and 64 x 2^20, orders 8 and 16, every value
        # stays in registers, where the tiles of up to 8192 elements on 1-2 warps below spilled up to
        # 3.9 KB a thread (benchmarks/results/sm90-compile-2026-11-28/).
        per_warp = 512 if has_da else 1024
        BC3 = _batch(n3, min(1024 // NS, max(1, 4 * per_warp // ((1 << LOG3) * NS))), interpret)
        warps3 = max(2 if has_da else 1, min(4, BC3 * (1 << LOG3) * NS // per_warp))
    else:
        BC3 = _batch(n3, min(1024 // NS, bc_cap), interpret)
        warps3 = max(1, min(4, BC3 * NS // 256))
    kernel3, extra = (tv_chunk_output_tile_kernel, dict(LOG=LOG3)) if LOG3 else (tv_chunk_output_kernel, {})
    kernel3[(cdiv(n3, BC3),)](
        u, a, y, S, zz, dd, N, T, L, NC, NCS, n3, a_off, *u_strides, *a_strides, *y_strides, *z_strides, *d_strides,
        HAS_CARRY=NCS > 0, ACC=ACC, BC=BC3, NS=NS, SKEW=adjoint, DA=has_da,
        num_warps=warps3, **extra,
    )
    return out


def run_passes(op, u, a, y, block_size, accumulate_fp64, single_pass, coalesced, lanes, window_tiles, clock,
               register_cap=None, z=None, da=None, lane_loads=None):
    """Fill ``y [R, T]`` from ``u [R, T]`` and ``a [R, T, N]`` (``1 <= N <= 16``, already in ``y``'s dtype,
    possibly stride-0 rows or time) with the single pass where it runs (``1 <= N <= 4``, a power-of-two
    chunk, not switched off), else the passes: the forward, or with ``z`` the adjoint (``da``: its
    coefficient gradients, or None). The one dispatch of both directions; ``op`` names the caller in
    errors. Arguments as for ``time_varying`` and ``time_varying_adjoint``."""
    N, T = a.shape[2], u.shape[1]
    # Kernels only run on CPU tensors under TRITON_INTERPRET=1; there, tile shapes trade differently.
    interpret = u.device.type == "cpu"
    acc_dtype, ACC = accumulation(N, y.dtype, accumulate_fp64)
    L = single_pass_chunk(N, T, block_size) if N <= 4 and _single_pass(single_pass, "time_varying") else 0
    if L:
        return _time_varying_single_pass(u, a, y, L, lanes, window_tiles, ACC, acc_dtype, interpret,
                                         adjoint=z is not None, z=z, da=da, clock=clock, register_cap=register_cap,
                                         lane_loads=lane_loads)
    if clock is not None:
        raise ValueError(f"{op}: expected a filter the single-pass kernel runs with clock (1 <= N <= 4, "
                         f"a power-of-two chunk <= 64), got N={N}, block_size={block_size}")
    return _time_varying_multi_pass(u, a, y, block_size, coalesced, ACC, acc_dtype, interpret, z=z, da=da)


def time_varying(u: torch.Tensor, a: torch.Tensor, *, block_size: int | None = None,
                 accumulate_fp64: bool | None = None, coalesced: bool | None = None,
                 single_pass: bool | None = None, lanes: int | None = None,
                 window_tiles: int | None = None, clock: torch.Tensor | None = None,
                 lane_loads: bool | None = None) -> torch.Tensor:
    """Time-varying all-pole filter ``y[n] = u[n] - sum_{k=1..N} a[n, k-1] y[n-k]`` from rest.

    Args:
        u: ``[R, T]``, any strides.
        a: ``[Ra, T, N]`` with ``Ra`` in {1, R} (a shared row is broadcast by stride 0), ``N <= 16``,
            coefficients indexed by output time, ``a0 = 1`` implicit. ``N = 0`` returns ``u``.
        block_size: chunk length in time steps (any positive int; tests use tiny ones to cross many
            chunk boundaries). Default: about ``sqrt(R T / 4)``, clamped to [16, 512] (multi-pass;
            the single-pass default is below).
        accumulate_fp64: run the recurrence and the chunk scan in float64 for float32 inputs
            (default, None: yes; False: float32). Products of direct-form companion matrices have
            large entries, and float32 chunk carries lose digits by cancellation: order 16, chunks
            of 3, 5e-2 relative against 1.6e-4 for a sequential float32 loop; a biquad with poles
            near radius 0.999 at angles near 0.02 rad over 4096 samples, 7.4e-3 against 5.2e-5
            (float64 carries: 3e-8; ``tests/test_kernels_time_varying.py``). Biquads took float32
            carries by default until 2026-11-29.
        coalesced: run passes 1 and 3 over coalesced [chunks, W] sub-tiles (``W`` the largest power
            of two <= 32 dividing the chunk length, <= 16 above order 4; looped kernels when ``W < 2``). False: the looped
            kernels (one time step per iteration); None (default) reads ``SSM_LFILTER_TILE_IO`` (on
            unless "0"). Same results (bitwise under the interpreter).
        single_pass: for orders 1 <= N <= 4, run the single-pass kernel (``tv_single_pass_kernel``:
            one launch, u and a read once) when the chunk length is a power of two <= 64 (default
            chunk length for it: 16 for N <= 2, 8 above, at most ``next_pow2(T)``); other chunk
            lengths and orders run the multi-pass kernels. False: always the multi-pass kernels;
            None (default) reads ``SSM_LFILTER_SINGLE_PASS`` (on unless "0").
        lanes: single-pass tile width in chunks (a power of two >= 2; default 128 on a GPU, 8 under
            the interpreter, at most the chunks of a row rounded up). window_tiles: its look-back
            window (a power of two; default ``_lookback.window``, at most 4 under the interpreter).
            Both exist so tests can cross many tiles and window links on short signals.
        clock: the single pass's clock stamps, a row a tile (an int64 CUDA tensor, resized; a
            diagnostic, ``_clock.py``; a ValueError where the single pass does not run).
        lane_loads: the single pass loads ``u`` and ``a`` and stores ``y`` lane by lane
            (``_lane_tiles.py``) where ``a``'s rows are contiguous and ``N`` is 1 or 2; the same
            bits. None (default) reads ``SSM_LFILTER_LANE_LOADS`` (off unless "1").

    Returns:
        ``y [R, T]`` contiguous, dtype ``promote_types(u.dtype, a.dtype)`` (float32 or float64),
        accumulated in that precision or higher (``accumulate_fp64``). Complex dtypes raise ``TypeError`` (the ops layer routes them to
        the torch engine). CUDA tensors, or CPU tensors under ``TRITON_INTERPRET=1``.
    """
    if u.dim() != 2 or a.dim() != 3:
        raise ValueError(f"time_varying: expected u [R, T] and a [Ra, T, N], got {tuple(u.shape)} and {tuple(a.shape)}")
    R, T = u.shape
    Ra, Ta, N = a.shape
    if Ra not in (1, R) or Ta != T:
        raise ValueError(f"time_varying: a {tuple(a.shape)} does not match [1 or R, T, N] for u {tuple(u.shape)}")
    if a.device != u.device:
        raise ValueError(f"time_varying: a is on {a.device} but u is on {u.device}")
    dtype = torch.promote_types(u.dtype, a.dtype)
    if dtype.is_complex:
        raise TypeError(f"time_varying: the Triton kernel is real-only, got {dtype}; use the torch engine for complex filters")
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"time_varying: unsupported dtype {dtype}; expected float32 or float64")
    if N > MAX_ORDER:
        raise ValueError(f"time_varying: order N={N} exceeds the kernel's maximum {MAX_ORDER}")
    if block_size is not None and block_size < 1:
        raise ValueError(f"time_varying: block_size must be positive, got {block_size}")
    check_tiles("time_varying", lanes, window_tiles)

    y = torch.empty(R, T, dtype=dtype, device=u.device)
    if R == 0 or T == 0:
        return y
    u = to_dtype(u, dtype)
    if N == 0:
        return y.copy_(u)
    a = to_dtype(a, dtype).expand(R, T, N)

    return run_passes("time_varying", u, a, y, block_size, accumulate_fp64, single_pass, coalesced, lanes,
                      window_tiles, clock, lane_loads=lane_loads)


def time_varying_applies(a: torch.Tensor) -> bool:
    """Whether ``time_varying`` runs these coefficients (real, order ``N <= MAX_ORDER``); the ops run
    the others on the torch engine (under ``SSM_LFILTER_BACKEND=auto``)."""
    return not a.is_complex() and a.shape[-1] <= MAX_ORDER
