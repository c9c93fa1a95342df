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
Accumulation is in the input precision, or float64 for float32 inputs of order N >= 3 (see
``time_varying``: float32 carries of high-order direct forms lose digits by cancellation). Program ids and offsets are int64.
"""
from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ._tile_io import tile_io as _tile_io

from .lti import _from_bits, _to_bits

__all__ = ["time_varying"]

MAX_ORDER = 16


@triton.jit
def tv_chunk_transfer_kernel(
    u_ptr, a_ptr, Phi_ptr, E_ptr,
    N, L, NCS, n_chunks,
    stride_ur, stride_ut, stride_ar, stride_at, stride_an,
    ACC: tl.constexpr, BC: tl.constexpr, NS: tl.constexpr,
):
    """Pass 1: for chunk ``g = r * NCS + c`` (``c < NCS``, all full chunks of length ``L``):
    ``E[g, k] = y_c[L-1-k]`` from rest and ``Phi[g, k, j]`` = the same entry for the homogeneous
    response to the unit initial state ``y[-1-j] = 1``. Layouts: ``E [R*NCS, N]``, ``Phi [R*NCS, N, N]``."""
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
    p_a = a_ptr + o_r * stride_ar + o_t0 * stride_at
    m_a = m_g[:, None] & m_s[None, :]
    for n in range(L):
        # Slot s holds y[n-1-k] with k = (n-1-s) mod N: load a[n, k] in slot order.
        o_k = (n - 1 - o_s + N) % N
        b_a = tl.load(p_a[:, None] + o_k[None, :] * stride_an, mask=m_a, other=0.).to(ACC)
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
def tv_chunk_output_kernel(
    u_ptr, a_ptr, y_ptr, S_ptr,
    N, T, L, NC, NCS, n_chunks,
    stride_ur, stride_ut, stride_ar, stride_at, stride_an, stride_yr, stride_yt,
    HAS_CARRY: tl.constexpr, ACC: tl.constexpr, BC: tl.constexpr, NS: tl.constexpr,
):
    """Pass 3: chunk ``g = r * NC + c`` runs ``y[n] = u[n] - sum_k a[n,k-1] y[n-k]`` for its (up to)
    ``L`` steps, starting from the true state ``S[r, c-1]`` (rest for ``c = 0``), and writes ``y``."""
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
    p_a = a_ptr + o_r * stride_ar + o_t0 * stride_at
    p_y = y_ptr + o_r * stride_yr + o_t0 * stride_yt
    for n in range(L):
        m_t = m_g & (o_t0 + n < T)
        o_k = (n - 1 - o_s + N) % N
        b_a = tl.load(p_a[:, None] + o_k[None, :] * stride_an, mask=m_a & m_t[:, None], other=0.).to(ACC)
        b_u = tl.load(p_u, mask=m_t, other=0.).to(ACC)
        b_yn = b_u - tl.sum(b_a * b_y, axis=1)
        tl.store(p_y, b_yn.to(y_ptr.dtype.element_ty), mask=m_t)
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
    N, L, NCS, n_chunks,
    stride_ur, stride_ut, stride_ar, stride_at, stride_an,
    ACC: tl.constexpr, BC: tl.constexpr, NS: tl.constexpr, LOG: tl.constexpr,
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
    p_a = a_ptr + o_r * stride_ar + o_t0 * stride_at
    m_a = m_g[:, None] & m_s[None, :]
    m_wa = m_g[:, None, None] & m_s[None, None, :]
    for i in range(L // W):
        n0 = i * W
        # step n0 + w, slot s: a[n0 + w, (n0 + w - 1 - s) mod N] (the rotated order of the ring)
        o_k = (n0 + o_w[:, None] - 1 - o_s[None, :] + N) % N
        b_at = tl.load(p_a[:, None, None] + o_w[None, :, None] * stride_at + o_k[None, :, :] * stride_an,
                       mask=m_wa, other=0.)
        b_ut = tl.load(p_u[:, None] + o_w[None, :] * stride_ut, mask=m_g[:, None], other=0.)
        p_a += W * stride_at
        p_u += W * stride_ut
        b_H, b_E = _tv_transfer_cols(_to_bits(b_ut, LOG, BC), _tv_bits_a(b_at, LOG, BC, NS), b_H, b_E,
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
    u_ptr, a_ptr, y_ptr, S_ptr,
    N, T, L, NC, NCS, n_chunks,
    stride_ur, stride_ut, stride_ar, stride_at, stride_an, stride_yr, stride_yt,
    HAS_CARRY: tl.constexpr, ACC: tl.constexpr, BC: tl.constexpr, NS: tl.constexpr, LOG: tl.constexpr,
):
    """Pass 3 with coalesced [BC, W] / [BC, W, NS] tiles (``W = 2^LOG`` divides ``L``); same contract
    and results as ``tv_chunk_output_kernel``."""
    W: tl.constexpr = 1 << LOG
    i_p = tl.program_id(0).to(tl.int64)
    o_g = i_p * BC + tl.arange(0, BC)
    m_g = o_g < n_chunks
    o_r = o_g // NC
    o_c = o_g % NC
    o_t0 = o_c * L
    o_s = tl.arange(0, NS)
    o_w = tl.arange(0, W)
    m_s = o_s < N
    m_a = m_g[:, None] & m_s[None, :]
    if HAS_CARRY:
        p_S = S_ptr + (o_r[:, None] * NCS + o_c[:, None] - 1) * N + (N - 1 - o_s[None, :])
        b_y = tl.load(p_S, mask=m_a & (o_c[:, None] > 0), other=0.)
    else:
        b_y = tl.zeros([BC, NS], dtype=ACC)
    p_u = u_ptr + o_r * stride_ur + o_t0 * stride_ut
    p_a = a_ptr + o_r * stride_ar + o_t0 * stride_at
    p_y = y_ptr + o_r * stride_yr + o_t0 * stride_yt
    for i in range(L // W):
        n0 = i * W
        m_t = m_g[:, None] & (o_t0[:, None] + n0 + o_w[None, :] < T)  # [BC, W]
        o_k = (n0 + o_w[:, None] - 1 - o_s[None, :] + N) % N
        b_at = tl.load(p_a[:, None, None] + o_w[None, :, None] * stride_at + o_k[None, :, :] * stride_an,
                       mask=m_t[:, :, None] & m_s[None, None, :], other=0.)
        b_ut = tl.load(p_u[:, None] + o_w[None, :] * stride_ut, mask=m_t, other=0.)
        b_yt, b_y = _tv_output_cols(_to_bits(b_ut, LOG, BC), _tv_bits_a(b_at, LOG, BC, NS), b_y, o_s, n0, N,
                                    ACC, y_ptr.dtype.element_ty, LOG)
        tl.store(p_y[:, None] + o_w[None, :] * stride_yt, _from_bits(b_yt, LOG, BC), mask=m_t)
        p_a += W * stride_at
        p_u += W * stride_ut
        p_y += W * stride_yt


def _pow2_floor(x: int) -> int:
    return 1 << (max(1, x).bit_length() - 1)


def _batch(n_items: int, max_per_program: int, interpret: bool) -> int:
    """Items (chunks, groups, rows) per program, a power of two. On a GPU: up to ``max_per_program``
    (so a small-N tile still fills a few warps) while keeping >= ~512 programs for the SMs. Under the
    interpreter, which pays per program and per op rather than per element: as wide as allowed."""
    if interpret:
        return max(1, min(64, triton.next_power_of_2(n_items)))
    return max(1, min(_pow2_floor(max_per_program), _pow2_floor(n_items // 512)))


def _tile_log(L: int, NS: int) -> int:
    """log2 of the sub-tile width W of the coalesced passes: the largest power of two dividing ``L``,
    at most 32 (16 for N > 8, to bound the [BC, W, NS] tile of ``a``); 0 (looped kernels) if W < 2."""
    W = min(L & -L, 32 if NS <= 8 else 16)
    return W.bit_length() - 1 if W >= 2 else 0


def time_varying(u: torch.Tensor, a: torch.Tensor, *, block_size: int | None = None,
                 accumulate_fp64: bool | None = None, coalesced: bool | None = None) -> torch.Tensor:
    """Time-varying all-pole filter ``y[n] = u[n] - sum_{k=1..N} a[n, k-1] y[n-k]`` from rest.

    Args:
        u: ``[R, T]``, any strides.
        a: ``[Ra, T, N]`` with ``Ra`` in {1, R} (a shared row is broadcast by stride 0), ``N <= 16``,
            coefficients indexed by output time, ``a0 = 1`` implicit. ``N = 0`` returns ``u``.
        block_size: chunk length in time steps (any positive int; tests use tiny ones to cross many
            chunk boundaries). Default: about ``sqrt(R T / 4)``, clamped to [16, 512].
        accumulate_fp64: run the recurrence and the chunk scan in float64 for float32 inputs. Default
            (None): for orders N >= 3 only. Products of direct-form companion matrices of higher
            orders have large entries, and float32 chunk carries then lose digits by cancellation
            (measured: order 16, chunks of 3, relative error 5e-2 in float32 against 1.6e-4
            sequential); biquads are fine in float32.
        coalesced: run passes 1 and 3 over coalesced [chunks, W] sub-tiles (``W`` the largest power
            of two <= 32 dividing the chunk length; looped kernels when ``W < 2``). False: the looped
            kernels (one time step per iteration); None (default) reads ``SSM_LFILTER_TILE_IO`` (on
            unless "0"). Same results (bitwise under the interpreter).

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

    y = torch.empty(R, T, dtype=dtype, device=u.device)
    if R == 0 or T == 0:
        return y
    u = u.to(dtype)
    if N == 0:
        return y.copy_(u)
    a = a.to(dtype).expand(R, T, N)

    L = block_size if block_size is not None else min(512, max(16, _pow2_floor(math.isqrt(R * T // 4))))
    L = min(L, T)
    NC = triton.cdiv(T, L)
    NCS = NC - 1  # chunks whose end state is needed (all but the last of each row, all full)
    NS = max(2, triton.next_power_of_2(N))
    dev = u.device
    # Kernels only run on CPU tensors under TRITON_INTERPRET=1; there, tile shapes trade differently.
    interpret = dev.type == "cpu"
    if accumulate_fp64 is None:
        accumulate_fp64 = N >= 3
    acc_dtype = torch.float64 if (accumulate_fp64 or dtype == torch.float64) else torch.float32
    ACC = tl.float64 if acc_dtype == torch.float64 else tl.float32
    a_strides = (a.stride(0), a.stride(1), a.stride(2))
    u_strides = (u.stride(0), u.stride(1))

    LOG = _tile_log(L, NS) if _tile_io(coalesced) else 0
    # coalesced passes: also keep the [BC, W, NS] tile of a at <= 8K elements per program on a GPU
    bc_cap = max(1, 8192 // ((1 << LOG) * NS)) if LOG and not interpret else 1 << 30

    S = y  # placeholder pointer when every row is a single chunk (never read)
    if NCS > 0:
        # Pass 1: ~1K elements of the [BC, N, N] lane tile per program, while keeping >= ~512 programs.
        n1 = R * NCS
        BC1 = _batch(n1, min(1024 // (NS * NS), bc_cap), interpret)
        Phi = torch.empty(n1, N, N, dtype=acc_dtype, device=dev)
        E = torch.empty(n1, N, dtype=acc_dtype, device=dev)
        kernel1, extra = (tv_chunk_transfer_tile_kernel, dict(LOG=LOG)) if LOG else (tv_chunk_transfer_kernel, {})
        kernel1[(triton.cdiv(n1, BC1),)](
            u, a, Phi, E, N, L, NCS, n1, *u_strides, *a_strides,
            ACC=ACC, BC=BC1, NS=NS, num_warps=max(1, min(4, BC1 * NS * NS // 256)), **extra,
        )
        # Pass 2: groups of G chunks, so that both sequential chains are ~sqrt(NCS) long.
        G = max(1, math.isqrt(NCS - 1) + 1) if NCS > 1 else 1
        NG = triton.cdiv(NCS, G)
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
            tv_group_transfer_kernel[(triton.cdiv(n2a, BQ),)](
                Phi, E, P, F, N, NCS, G, NGS, n2a, BQ=BQ, NS=NS,
                num_warps=max(1, min(4, BQ * NS * NS * NS // 512)),
            )
            BR2 = _batch(R, 1024 // (NS * NS), interpret)
            tv_group_scan_kernel[(triton.cdiv(R, BR2),)](P, F, SG, R, N, NGS, BR=BR2, NS=NS, num_warps=w2)
        BQ = _batch(n2, 1024 // (NS * NS), interpret)
        tv_chunk_state_kernel[(triton.cdiv(n2, BQ),)](
            Phi, E, SG, S, N, NCS, G, NGS, n2, HAS_GROUPS=NGS > 0, BQ=BQ, NS=NS, num_warps=w2,
        )
    # Pass 3: every (row, chunk) re-run from its true initial state.
    n3 = R * NC
    BC3 = _batch(n3, min(1024 // NS, bc_cap), interpret)
    kernel3, extra = (tv_chunk_output_tile_kernel, dict(LOG=LOG)) if LOG else (tv_chunk_output_kernel, {})
    kernel3[(triton.cdiv(n3, BC3),)](
        u, a, y, S, N, T, L, NC, NCS, n3, *u_strides, *a_strides, y.stride(0), y.stride(1),
        HAS_CARRY=NCS > 0, ACC=ACC, BC=BC3, NS=NS, num_warps=max(1, min(4, BC3 * NS // 256)), **extra,
    )
    return y
