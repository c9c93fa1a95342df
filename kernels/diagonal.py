"""Triton kernels for the first-order diagonal recurrence (the ``ssm_lfilter::diag`` op) and its
adjoint (``ssm_lfilter::diag_adjoint``).

    h[t] = a[t] * h[t-1] + u[t],   h[-1] = 0          (reverse: h[t] = a[t] * h[t+1] + u[t], h[T] = 0)

``a [Ra, Ta]`` (``Ra`` in {1, R}, ``Ta`` in {1, T}), ``u [R, T]``, real or complex, on CUDA (or on CPU
under ``TRITON_INTERPRET=1``). The time axis is cut into chunks of ``CHUNK`` steps; a tile is
``BR`` rows by one chunk (short rows are stacked so a program still holds a few thousand elements), so
one long row spreads over every SM and many short rows fill the GPU.

Inside a tile, ``tl.associative_scan`` with the affine combine ``(a1, b1) . (a2, b2) = (a1 a2, a2 b1 +
b2)`` (``(a1, b1)`` earlier) gives every element's prefix map ``h_t = A_t h_start + B_t`` from the
state before the tile; the last column is the tile's aggregate ``(A_last, B_last)``. Scans go through
a fixed tree: deterministic. (Not ``tl.reduce``: the combine is not commutative, and ``tl.reduce``
gave wrong chunk summaries on an H200 with Triton 3.6.) The kernels differ in how a tile learns its
``h_start``:

Single pass (opt-in: ``single_pass=True`` or ``SSM_LFILTER_SINGLE_PASS=1``; not the default because on
an H200 it ran at 8% of copy bandwidth where the multi-pass kernels reach 47-50%, and one
configuration (a row of 2^30 elements) failed to compile in Triton 3.6's scan lowering; see
``_variants.py``):
``diag_single_pass_kernel`` reads ``a`` and ``u`` once and writes ``h`` once, in one launch, with the
fixed-window look-back of ``_lookback.py``. A program takes a ticket ``t`` and works on chunk
``c = t // n_rowblocks``, row block ``t % n_rowblocks`` (all row blocks of a chunk get consecutive
tickets, so every row advances together and waits are short). It scans its tile, publishes the
aggregate (before waiting for anything, so its successors never wait on its waits), then folds the
aggregates of chunks ``c-W+1 .. c-1`` (a ``[BR, W]`` tile, one fixed scan: bitwise deterministic),
waits for the inclusive state of the anchor chunk ``c-W`` (zero state when ``c < W``), publishes its
own inclusive state ``S_c = A_last S_{c-1} + B_last`` and writes ``h = B_t + A_t S_{c-1}``. The
serial chain has ``NC / W`` links; only integer atomics (ticket and flags, one ``torch.zeros`` int32
buffer per call) are used.

Multi-pass (the default): three launches, reading ``a`` and ``u`` twice:

1. ``diag_chunk_summary_kernel``: the aggregate of every tile;
2. ``diag_chunk_scan_kernel``: per block of rows, an inclusive scan of those maps over the chunks gives
   the true state at the end of every chunk;
3. ``diag_chunk_apply_kernel``: each chunk is scanned again and corrected, ``h = B_t + A_t h_start``.

Adjoint (backward): ``lam[t] = g[t] + conj(a[t+1]) lam[t+1]`` on ``g = dL/dh`` (forward op;
``conj(a[t-1]) lam[t-1]`` for reverse), the recurrence run the other way in time with ``a`` read at
the previous scan position in place (``_adjoint_a``: no shifted copy), and ``da[t] = lam[t]
conj(h_prev[t])`` (``h_prev[t] = h[t-1]``, or ``h[t+1]`` for reverse; zero at the boundary) written by
the same kernel's epilogue (``_store_da``) from the ``lam`` tile in registers. For a constant ``a``
(``Ta == 1``) ``da`` is a sum over time: every tile writes its per-row partial sum and torch adds them
in a fixed order (deterministic, no float atomics). With the multi-pass default the three passes do
this (``ADJOINT``; pass 3 with ``HAS_DA``): ``g`` and ``a`` read twice, ``h`` once, ``lam`` and ``da``
written once. Until 2026-11-28 the default composed the forward's kernels with torch instead (a
shifted, conjugated copy of ``a``, then ``da`` from ``lam`` read back): on an H200 2.2x faster than
the opt-in single pass ``diag_adjoint_kernel``, which reads everything once, and about 10 passes
over the signal where these take 7.

Complex tensors travel as interleaved (re, im) pairs (``torch.view_as_real``) and are multiplied in
registers. ``reverse`` flips the time index (``t = T - 1 - p``, ``p`` = position in scan order)
instead of using ``associative_scan(reverse=True)``, which was wrong in some Triton versions. Program
ids, tickets and offsets are int64.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .._checks import to_dtype
from ._lookback import publish, take_ticket, wait_flags
from ._lookback import window as _default_window
from ._variants import single_pass as _single_pass
from ._host import cdiv, next_pow2

__all__ = ["diagonal", "diagonal_adjoint"]

# Elements per program. The multi-pass kernels read every tile twice and keep ~2K elements per
# program; the single pass has no second read, so larger tiles amortize the look-back (one fold and
# one wait per tile). Complex tiles carry twice the registers per element.
MULTI_PASS_ELEMS = 2048
SINGLE_PASS_ELEMS = 4096
SINGLE_PASS_ELEMS_COMPLEX = 2048
# The ticket counter sits alone in the first 128 bytes of the flag buffer, away from the polled flags.
_FLAG_BASE = 32
@triton.jit
def _affine_combine(a1, b1, a2, b2):
    # (a1, b1) is the earlier segment: h -> a2 (a1 h + b1) + b2.
    return a1 * a2, a2 * b1 + b2


@triton.jit
def _affine_combine_complex(ar1, ai1, br1, bi1, ar2, ai2, br2, bi2):
    # The same combine with complex a and b held as (re, im) pairs.
    ar = ar2 * ar1 - ai2 * ai1
    ai = ar2 * ai1 + ai2 * ar1
    br = ar2 * br1 - ai2 * bi1 + br2
    bi = ar2 * bi1 + ai2 * br1 + bi2
    return ar, ai, br, bi


@triton.jit
def _last_column(x, BT: tl.constexpr):
    """``x[:, BT-1]`` of a [BR, BT] tile (a masked sum: Triton has no register column slice)."""
    return tl.sum(tl.where(tl.arange(0, BT)[None, :] == BT - 1, x, 0.), axis=1)


@triton.jit
def _diag_tile_offsets(i_rb, i_c, R, T, CHUNK, stride_ar, stride_at, stride_ur, stride_ut,
                       REVERSE: tl.constexpr, BR: tl.constexpr, BT: tl.constexpr):
    """Offsets and mask of the [BR rows, BT steps] tile of chunk ``i_c`` (int64 throughout)."""
    o_r = i_rb * BR + tl.arange(0, BR)
    o_i = tl.arange(0, BT)
    # p is the position in scan order; reverse scans walk time backwards, so loads stay contiguous
    # (descending) and the forward combine is used everywhere.
    o_p = i_c * CHUNK + o_i
    if REVERSE:
        o_t = T - 1 - o_p
    else:
        o_t = o_p
    m_r = o_r < R
    mask = m_r[:, None] & (o_i[None, :] < CHUNK) & (o_p[None, :] < T)
    p_a = o_r[:, None] * stride_ar + o_t[None, :] * stride_at
    p_u = o_r[:, None] * stride_ur + o_t[None, :] * stride_ut
    return o_r, m_r, mask, p_a, p_u, o_t


@triton.jit
def _adjoint_a(p_a, mask, o_t, T, stride_at, REVERSE: tl.constexpr):
    """The adjoint reads ``a`` at the previous scan position (time ``t + 1`` in a reversed scan, ``t - 1``
    otherwise) in place, no shifted copy: its pointer tile and mask (off at the first position, which
    loads the identity: its coefficient would multiply the zero start state)."""
    if REVERSE:
        return p_a + stride_at, mask & (o_t + 1 < T)
    else:
        return p_a - stride_at, mask & (o_t >= 1)


@triton.jit
def _next_time(o_t, mask, T, REVERSE: tl.constexpr):
    """The time of the next scan position (``t - 1`` in a reversed scan, ``t + 1`` otherwise), where the
    adjoint reads the forward's ``h`` as ``h_prev``, and the tile's mask there (off past the row's end,
    where ``h_prev`` is zero)."""
    if REVERSE:
        return o_t - 1, mask & (o_t >= 1)
    else:
        return o_t + 1, mask & (o_t + 1 < T)


@triton.jit
def _store_da(b_lr, b_li, p_hn, m_next, da_ptr, p_d, mask, i_c, R, o_r, m_r,
              IS_COMPLEX: tl.constexpr, DA_SUM: tl.constexpr):
    """The adjoint's epilogue: ``da = lam conj(h_prev)``, ``h_prev`` loaded from ``p_hn`` (the next scan
    position's ``h``, zero where ``m_next`` is off: the boundary and padding). Stored at ``da_ptr + p_d``
    under ``mask``, or, with ``DA_SUM`` (``a`` constant in time), each row's sum over the tile at
    ``da [NC, R]`` (chunk-major; complex interleaved), which the launcher adds in a fixed order."""
    if IS_COMPLEX:
        b_hr = tl.load(p_hn, mask=m_next, other=0.)
        b_hi = tl.load(p_hn + 1, mask=m_next, other=0.)
        b_dr = b_lr * b_hr + b_li * b_hi
        b_di = b_li * b_hr - b_lr * b_hi
        if DA_SUM:
            p_s = (i_c * R + o_r) * 2
            tl.store(da_ptr + p_s, tl.sum(b_dr, axis=1), mask=m_r)
            tl.store(da_ptr + p_s + 1, tl.sum(b_di, axis=1), mask=m_r)
        else:
            tl.store(da_ptr + p_d, b_dr, mask=mask)
            tl.store(da_ptr + p_d + 1, b_di, mask=mask)
    else:
        b_d = b_lr * tl.load(p_hn, mask=m_next, other=0.)
        if DA_SUM:
            tl.store(da_ptr + i_c * R + o_r, tl.sum(b_d, axis=1), mask=m_r)
        else:
            tl.store(da_ptr + p_d, b_d, mask=mask)


@triton.jit
def _store_maps(A_ptr, B_ptr, o_s, b_Ar, b_Ai, b_Br, b_Bi, m, IS_COMPLEX: tl.constexpr):
    """Stores chunk maps ``(A, B)`` at element offsets ``o_s`` of the buffers ``A``/``B`` (complex:
    interleaved (re, im); real data: ``b_Ai``/``b_Bi`` not read). Shared by the multi-pass summaries
    ([R, NC]) and the single pass's published aggregates ([NC, R])."""
    if IS_COMPLEX:
        p_s = o_s * 2
        tl.store(A_ptr + p_s, b_Ar, mask=m)
        tl.store(A_ptr + p_s + 1, b_Ai, mask=m)
        tl.store(B_ptr + p_s, b_Br, mask=m)
        tl.store(B_ptr + p_s + 1, b_Bi, mask=m)
    else:
        tl.store(A_ptr + o_s, b_Ar, mask=m)
        tl.store(B_ptr + o_s, b_Br, mask=m)


@triton.jit
def _load_scan(p_a, p_u, m_a, m_u, CONJ_A: tl.constexpr, IS_COMPLEX: tl.constexpr):
    """Load a tile of ``a`` (``conj(a)`` for ``CONJ_A``) and ``u`` and scan it: every element's prefix
    map ``h -> A_t h + B_t`` from the state before the tile, as ``(A_re, A_im, B_re, B_im)`` (real
    data: ``(A, A, B, B)``). Masked-off elements are the identity map (a = 1, u = 0), so the last
    column is the aggregate of the valid part. Shared by every diagonal kernel."""
    if IS_COMPLEX:
        b_ar = tl.load(p_a, mask=m_a, other=1.)
        b_ai = tl.load(p_a + 1, mask=m_a, other=0.)
        if CONJ_A:
            b_ai = -b_ai
        b_ur = tl.load(p_u, mask=m_u, other=0.)
        b_ui = tl.load(p_u + 1, mask=m_u, other=0.)
        b_ar, b_ai, b_br, b_bi = tl.associative_scan((b_ar, b_ai, b_ur, b_ui), 1, _affine_combine_complex)
    else:
        b_ar = tl.load(p_a, mask=m_a, other=1.)
        b_u = tl.load(p_u, mask=m_u, other=0.)
        b_ar, b_br = tl.associative_scan((b_ar, b_u), 1, _affine_combine)
        b_ai = b_ar
        b_bi = b_br
    return b_ar, b_ai, b_br, b_bi


@triton.jit
def _carry_in(b_ar, b_ai, b_br, b_bi, b_sr, b_si, IS_COMPLEX: tl.constexpr):
    """``h = B_t + A_t s`` for a per-row start state ``s`` (real data: ``(h, h)``; ``b_si`` unused)."""
    if IS_COMPLEX:
        b_hr, b_hi = (b_br + b_ar * b_sr[:, None] - b_ai * b_si[:, None],
                      b_bi + b_ar * b_si[:, None] + b_ai * b_sr[:, None])
    else:
        b_hr = b_br + b_ar * b_sr[:, None]
        b_hi = b_hr
    return b_hr, b_hi


@triton.jit
def diag_chunk_summary_kernel(
    a_ptr, u_ptr, A_ptr, E_ptr,
    R, T, NC, CHUNK,
    stride_ar, stride_at, stride_ur, stride_ut,
    REVERSE: tl.constexpr, IS_COMPLEX: tl.constexpr, BR: tl.constexpr, BT: tl.constexpr,
    ADJOINT: tl.constexpr = False,
):
    """Pass 1: ``A[r, c] = prod a`` and ``E[r, c]`` = zero-state end value of chunk ``c``.

    ``A``/``E``: contiguous [R, NC] (real) or [R, NC, 2] (complex, interleaved). ``ADJOINT``: the
    coefficients are ``conj(a)`` at the previous scan position (``_adjoint_a``)."""
    i_p = tl.program_id(0).to(tl.int64)
    i_rb = i_p // NC
    i_c = i_p % NC
    o_r, m_r, mask, p_a, p_u, o_t = _diag_tile_offsets(i_rb, i_c, R, T, CHUNK, stride_ar, stride_at,
                                                       stride_ur, stride_ut, REVERSE, BR, BT)
    m_a = mask
    if ADJOINT:
        p_a, m_a = _adjoint_a(p_a, mask, o_t, T, stride_at, REVERSE)
    b_ar, b_ai, b_br, b_bi = _load_scan(a_ptr + p_a, u_ptr + p_u, m_a, mask, ADJOINT, IS_COMPLEX)
    if IS_COMPLEX:
        _store_maps(A_ptr, E_ptr, o_r * NC + i_c, _last_column(b_ar, BT), _last_column(b_ai, BT),
                    _last_column(b_br, BT), _last_column(b_bi, BT), m_r, True)
    else:
        b_A = _last_column(b_ar, BT)
        b_E = _last_column(b_br, BT)
        _store_maps(A_ptr, E_ptr, o_r * NC + i_c, b_A, b_A, b_E, b_E, m_r, False)


@triton.jit
def diag_chunk_scan_kernel(
    A_ptr, E_ptr, H_ptr, R, NC,
    IS_COMPLEX: tl.constexpr, BR: tl.constexpr, BC: tl.constexpr,
):
    """Pass 2: ``H[r, c]`` = true state at the end of chunk ``c`` (inclusive scan over chunks).

    One program per block of ``BR`` rows walks the chunks in tiles of ``BC``, carrying the state
    between tiles; the chunk count is ``T / CHUNK``, so this pass is short."""
    i_rb = tl.program_id(0).to(tl.int64)
    o_r = i_rb * BR + tl.arange(0, BR)
    m_r = o_r < R
    o_j = tl.arange(0, BC)
    b_hr = tl.zeros([BR], dtype=E_ptr.dtype.element_ty)
    b_hi = tl.zeros([BR], dtype=E_ptr.dtype.element_ty)
    for i_c0 in range(0, NC, BC):
        o_c = i_c0 + o_j
        mask = m_r[:, None] & (o_c[None, :] < NC)
        if IS_COMPLEX:
            p_s = (o_r[:, None] * NC + o_c[None, :]) * 2
            b_ar = tl.load(A_ptr + p_s, mask=mask, other=1.)
            b_ai = tl.load(A_ptr + p_s + 1, mask=mask, other=0.)
            b_er = tl.load(E_ptr + p_s, mask=mask, other=0.)
            b_ei = tl.load(E_ptr + p_s + 1, mask=mask, other=0.)
            b_ar, b_ai, b_er, b_ei = tl.associative_scan((b_ar, b_ai, b_er, b_ei), 1, _affine_combine_complex)
            b_or = b_er + b_ar * b_hr[:, None] - b_ai * b_hi[:, None]
            b_oi = b_ei + b_ar * b_hi[:, None] + b_ai * b_hr[:, None]
            tl.store(H_ptr + p_s, b_or, mask=mask)
            tl.store(H_ptr + p_s + 1, b_oi, mask=mask)
            # Identity padding makes the last column the state after the last valid chunk.
            b_hr = tl.sum(tl.where(o_j[None, :] == BC - 1, b_or, 0.), axis=1)
            b_hi = tl.sum(tl.where(o_j[None, :] == BC - 1, b_oi, 0.), axis=1)
        else:
            p_s = o_r[:, None] * NC + o_c[None, :]
            b_a = tl.load(A_ptr + p_s, mask=mask, other=1.)
            b_e = tl.load(E_ptr + p_s, mask=mask, other=0.)
            b_a, b_e = tl.associative_scan((b_a, b_e), 1, _affine_combine)
            b_o = b_e + b_a * b_hr[:, None]
            tl.store(H_ptr + p_s, b_o, mask=mask)
            b_hr = tl.sum(tl.where(o_j[None, :] == BC - 1, b_o, 0.), axis=1)


@triton.jit
def diag_chunk_apply_kernel(
    a_ptr, u_ptr, h_ptr, H_ptr, hp_ptr, da_ptr,
    R, T, NC, CHUNK,
    stride_ar, stride_at, stride_ur, stride_ut, stride_hr, stride_ht, stride_pr, stride_pt, stride_dr, stride_dt,
    REVERSE: tl.constexpr, IS_COMPLEX: tl.constexpr, HAS_CARRY: tl.constexpr,
    BR: tl.constexpr, BT: tl.constexpr, ADJOINT: tl.constexpr = False, HAS_DA: tl.constexpr = False,
    DA_SUM: tl.constexpr = False,
):
    """Pass 3: scan chunk ``c`` again and start it from ``H[r, c-1]``: ``h = B_t + A_t H[r, c-1]``.

    With ``HAS_CARRY=False`` (a single chunk per row) every chunk starts from rest. ``ADJOINT``: the
    coefficients as in pass 1, and with ``HAS_DA`` the epilogue ``_store_da`` writes
    ``da = h conj(h_prev)`` (``h`` being ``lam``) from the forward's ``h_prev`` at ``hp_ptr``."""
    i_p = tl.program_id(0).to(tl.int64)
    i_rb = i_p // NC
    i_c = i_p % NC
    o_r, m_r, mask, p_a, p_u, o_t = _diag_tile_offsets(i_rb, i_c, R, T, CHUNK, stride_ar, stride_at,
                                                       stride_ur, stride_ut, REVERSE, BR, BT)
    p_h = o_r[:, None] * stride_hr + o_t[None, :] * stride_ht
    m_in = m_r & (i_c > 0)
    m_a = mask
    if ADJOINT:
        p_a, m_a = _adjoint_a(p_a, mask, o_t, T, stride_at, REVERSE)
    b_ar, b_ai, b_hr, b_hi = _load_scan(a_ptr + p_a, u_ptr + p_u, m_a, mask, ADJOINT, IS_COMPLEX)
    if HAS_CARRY:
        if IS_COMPLEX:
            p_s = (o_r * NC + i_c - 1) * 2
            b_sr = tl.load(H_ptr + p_s, mask=m_in, other=0.)
            b_si = tl.load(H_ptr + p_s + 1, mask=m_in, other=0.)
        else:
            b_sr = tl.load(H_ptr + o_r * NC + i_c - 1, mask=m_in, other=0.)
            b_si = b_sr
        b_hr, b_hi = _carry_in(b_ar, b_ai, b_hr, b_hi, b_sr, b_si, IS_COMPLEX)
    tl.store(h_ptr + p_h, b_hr, mask=mask)
    if IS_COMPLEX:
        tl.store(h_ptr + p_h + 1, b_hi, mask=mask)
    if HAS_DA:
        o_tn, m_next = _next_time(o_t, mask, T, REVERSE)
        _store_da(b_hr, b_hi, hp_ptr + o_r[:, None] * stride_pr + o_tn[None, :] * stride_pt, m_next, da_ptr,
                  o_r[:, None] * stride_dr + o_t[None, :] * stride_dt, mask, i_c, R, o_r, m_r, IS_COMPLEX, DA_SUM)


# ------------------------------------------------------------------------------------- single pass
@triton.jit
def _lookback_state(
    agg_a_ptr, agg_b_ptr, inc_ptr, p_fagg, p_finc,
    b_Ar, b_Ai, b_Br, b_Bi, i_t, i_c, i_rb, R, N_RB, o_r, m_r,
    IS_COMPLEX: tl.constexpr, W: tl.constexpr,
):
    """The true state before chunk ``i_c`` for each row of the tile (``(s_r, s_i)``; ``s_i`` is
    meaningless for real data), given the tile's aggregate ``(A, B)`` = ``(b_Ar + i b_Ai, b_Br + i b_Bi)``.

    ``agg_a``/``agg_b``/``inc``: [NC, R] (real) or [NC, R, 2] (complex, interleaved): chunk-major, so
    a window of aggregates is a load of contiguous rows. Flags: one per tile (ticket), ``p_fagg`` for
    aggregates and ``p_finc`` for inclusive states. Also publishes this tile's inclusive state."""
    # 1. Publish the aggregate before waiting for anything: the next W-1 tiles fold it in, and none of
    #    them must wait on this tile's own waits (that would make the chain one link per tile).
    _store_maps(agg_a_ptr, agg_b_ptr, i_c * R + o_r, b_Ar, b_Ai, b_Br, b_Bi, m_r, IS_COMPLEX)
    publish(p_fagg + i_t)

    # 2. Fold the aggregates of chunks c-W+1 .. c-1 in one fixed scan (column j <-> chunk c-W+j).
    #    Column 0 (the anchor) and chunks before 0 are identity maps, so the tree and thus the bits do
    #    not depend on which tiles happened to be ready.
    o_j = tl.arange(0, W)
    o_k = i_c - W + o_j
    o_kc = tl.maximum(o_k, 0)  # masked lanes still form in-range addresses
    m_k = (o_j > 0) & (o_k >= 0)
    wait_flags(p_fagg + o_kc * N_RB + i_rb, m_k)
    m_w = m_r[:, None] & m_k[None, :]
    # 3. The anchor: the inclusive state of chunk c-W, the one serial link (zero state before chunk 0).
    i_k = i_c - W
    m_a = m_r & (i_k >= 0)
    if IS_COMPLEX:
        p_w = (o_kc[None, :] * R + o_r[:, None]) * 2
        # .cg: the data behind a flag is read from L2, never from a stale L1 line.
        b_far = tl.load(agg_a_ptr + p_w, mask=m_w, other=1., cache_modifier=".cg")
        b_fai = tl.load(agg_a_ptr + p_w + 1, mask=m_w, other=0., cache_modifier=".cg")
        b_fbr = tl.load(agg_b_ptr + p_w, mask=m_w, other=0., cache_modifier=".cg")
        b_fbi = tl.load(agg_b_ptr + p_w + 1, mask=m_w, other=0., cache_modifier=".cg")
        b_far, b_fai, b_fbr, b_fbi = tl.associative_scan((b_far, b_fai, b_fbr, b_fbi), 1, _affine_combine_complex)
        b_far = _last_column(b_far, W)
        b_fai = _last_column(b_fai, W)
        b_fbr = _last_column(b_fbr, W)
        b_fbi = _last_column(b_fbi, W)
        wait_flags(p_finc + o_kc * N_RB + i_rb, (o_j == 0) & (o_k >= 0))
        p_i = (tl.maximum(i_k, 0) * R + o_r) * 2
        b_ir = tl.load(inc_ptr + p_i, mask=m_a, other=0., cache_modifier=".cg")
        b_ii = tl.load(inc_ptr + p_i + 1, mask=m_a, other=0., cache_modifier=".cg")
        b_sr = b_fbr + b_far * b_ir - b_fai * b_ii
        b_si = b_fbi + b_far * b_ii + b_fai * b_ir
        # 4. This tile's inclusive state, for the tile W chunks later.
        p_s = (i_c * R + o_r) * 2
        tl.store(inc_ptr + p_s, b_Br + b_Ar * b_sr - b_Ai * b_si, mask=m_r)
        tl.store(inc_ptr + p_s + 1, b_Bi + b_Ar * b_si + b_Ai * b_sr, mask=m_r)
    else:
        p_w = o_kc[None, :] * R + o_r[:, None]
        b_fa = tl.load(agg_a_ptr + p_w, mask=m_w, other=1., cache_modifier=".cg")
        b_fb = tl.load(agg_b_ptr + p_w, mask=m_w, other=0., cache_modifier=".cg")
        b_fa, b_fb = tl.associative_scan((b_fa, b_fb), 1, _affine_combine)
        b_fa = _last_column(b_fa, W)
        b_fb = _last_column(b_fb, W)
        wait_flags(p_finc + o_kc * N_RB + i_rb, (o_j == 0) & (o_k >= 0))
        b_i = tl.load(inc_ptr + tl.maximum(i_k, 0) * R + o_r, mask=m_a, other=0., cache_modifier=".cg")
        b_sr = b_fb + b_fa * b_i
        b_si = b_sr
        tl.store(inc_ptr + i_c * R + o_r, b_Br + b_Ar * b_sr, mask=m_r)
    publish(p_finc + i_t)
    return b_sr, b_si


@triton.jit
def _take_tile(flag_ptr, NC, N_RB, HAS_CARRY: tl.constexpr, FLAG_BASE: tl.constexpr):
    """This program's tile (ticket ``i_t``, chunk ``i_c``, row block ``i_rb``) and the bases of the
    aggregate and inclusive-state flags (layout: see ``diag_single_pass_kernel``)."""
    if HAS_CARRY:
        # Tickets, not program ids: a tile only waits for tiles of smaller tickets, which have started.
        i_t = take_ticket(flag_ptr)
    else:
        i_t = tl.program_id(0).to(tl.int64)
    # Chunk-major: the row blocks of one chunk take consecutive tickets, so all rows advance together.
    i_c = i_t // N_RB
    i_rb = i_t % N_RB
    p_fagg = flag_ptr + FLAG_BASE
    p_finc = p_fagg + NC * N_RB
    return i_t, i_c, i_rb, p_fagg, p_finc


@triton.jit
def _scan_tile(
    p_a, p_u, p_h, m_a, m_u, agg_a_ptr, agg_b_ptr, inc_ptr, p_fagg, p_finc, i_t, i_c, i_rb, R, N_RB,
    o_r, m_r,
    CONJ_A: tl.constexpr, IS_COMPLEX: tl.constexpr, HAS_CARRY: tl.constexpr, W: tl.constexpr,
    BT: tl.constexpr,
):
    """The tile's states ``h[p] = a[p] h[p-1] + u[p]``, stored to the pointer tile ``p_h`` under
    ``m_u`` and returned as ``(re, im)`` (real data: ``(h, h)``). ``a`` (``conj(a)`` for ``CONJ_A``)
    and ``u`` load from ``p_a``/``p_u`` under ``m_a``/``m_u`` (complex: all interleaved); masked-off
    elements are the identity map (a = 1, u = 0), so the last column is the aggregate of the valid
    part. The in-tile scan runs from a zero state, then, with ``HAS_CARRY``, the look-back's true
    start state is carried in. One helper because the single-pass forward kernel (``a``, ``u`` ->
    ``h``) and the adjoint (shifted ``conj(a)``, ``g`` -> ``lam``) run this same recurrence."""
    b_ar, b_ai, b_hr, b_hi = _load_scan(p_a, p_u, m_a, m_u, CONJ_A, IS_COMPLEX)
    if HAS_CARRY:
        if IS_COMPLEX:
            b_Ar, b_Ai = _last_column(b_ar, BT), _last_column(b_ai, BT)
            b_Br, b_Bi = _last_column(b_hr, BT), _last_column(b_hi, BT)
        else:
            b_Ar = _last_column(b_ar, BT)
            b_Br = _last_column(b_hr, BT)
            b_Ai, b_Bi = b_Ar, b_Br
        b_sr, b_si = _lookback_state(agg_a_ptr, agg_b_ptr, inc_ptr, p_fagg, p_finc, b_Ar, b_Ai, b_Br, b_Bi,
                                     i_t, i_c, i_rb, R, N_RB, o_r, m_r, IS_COMPLEX, W)
        b_hr, b_hi = _carry_in(b_ar, b_ai, b_hr, b_hi, b_sr, b_si, IS_COMPLEX)
    tl.store(p_h, b_hr, mask=m_u)
    if IS_COMPLEX:
        tl.store(p_h + 1, b_hi, mask=m_u)
    return b_hr, b_hi


@triton.jit
def diag_single_pass_kernel(
    a_ptr, u_ptr, h_ptr, agg_a_ptr, agg_b_ptr, inc_ptr, flag_ptr,
    R, T, NC, N_RB, CHUNK,
    stride_ar, stride_at, stride_ur, stride_ut, stride_hr, stride_ht,
    REVERSE: tl.constexpr, IS_COMPLEX: tl.constexpr, HAS_CARRY: tl.constexpr,
    FLAG_BASE: tl.constexpr, W: tl.constexpr, BR: tl.constexpr, BT: tl.constexpr,
):
    """One pass: scan the tile once, get its start state from the look-back, write ``h``.

    ``flag_ptr``: int32 zeros, the ticket counter at 0, the aggregate flags of the ``NC * N_RB``
    tiles from ``FLAG_BASE``, then their inclusive-state flags. ``HAS_CARRY=False`` (one chunk per
    row): no look-back at all."""
    i_t, i_c, i_rb, p_fagg, p_finc = _take_tile(flag_ptr, NC, N_RB, HAS_CARRY, FLAG_BASE)
    o_r, m_r, mask, p_a, p_u, o_t = _diag_tile_offsets(i_rb, i_c, R, T, CHUNK, stride_ar, stride_at,
                                                       stride_ur, stride_ut, REVERSE, BR, BT)
    p_h = o_r[:, None] * stride_hr + o_t[None, :] * stride_ht
    _scan_tile(a_ptr + p_a, u_ptr + p_u, h_ptr + p_h, mask, mask, agg_a_ptr, agg_b_ptr, inc_ptr, p_fagg,
               p_finc, i_t, i_c, i_rb, R, N_RB, o_r, m_r, False, IS_COMPLEX, HAS_CARRY, W, BT)


# ------------------------------------------------------------------------------------------ adjoint
@triton.jit
def diag_adjoint_kernel(
    a_ptr, g_ptr, h_ptr, lam_ptr, da_ptr, agg_a_ptr, agg_b_ptr, inc_ptr, flag_ptr,
    R, T, NC, N_RB, CHUNK,
    stride_ar, stride_at, stride_gr, stride_gt, stride_hr, stride_ht, stride_lr, stride_lt,
    stride_dr, stride_dt,
    REVERSE: tl.constexpr, IS_COMPLEX: tl.constexpr, HAS_CARRY: tl.constexpr, HAS_DA: tl.constexpr,
    DA_SUM: tl.constexpr, FLAG_BASE: tl.constexpr, W: tl.constexpr, BR: tl.constexpr, BT: tl.constexpr,
):
    """The adjoint in one pass: ``lam = g + conj(a_shifted) lam_prev`` and ``da = lam conj(h_prev)``.

    ``REVERSE`` is the direction of the *adjoint* scan (``not reverse`` of the forward op). In scan
    order ``p`` (time ``t(p)``), the coefficient of element ``p`` is ``conj(a[t(p-1)])`` (identity at
    ``p = 0``, where the incoming state is zero anyway) and ``h_prev`` is ``h[t(p+1)]`` (zero at the
    last position). ``DA_SUM``: ``a`` is constant in time, so write each row's sum over the tile to
    ``da [NC, R]`` (chunk-major; complex interleaved) instead of ``da [R, T]``."""
    i_t, i_c, i_rb, p_fagg, p_finc = _take_tile(flag_ptr, NC, N_RB, HAS_CARRY, FLAG_BASE)
    o_r = i_rb * BR + tl.arange(0, BR)
    o_i = tl.arange(0, BT)
    o_p = i_c * CHUNK + o_i
    if REVERSE:
        o_t = T - 1 - o_p
        o_tp = o_t + 1  # time of scan position p-1
    else:
        o_t = o_p
        o_tp = o_t - 1
    m_r = o_r < R
    mask = m_r[:, None] & (o_i[None, :] < CHUNK) & (o_p[None, :] < T)
    m_prev = mask & (o_p[None, :] >= 1)
    # The shifted coefficient is read in place (stride 0 for a constant a): no shifted copy of a.
    p_a = o_r[:, None] * stride_ar + o_tp[None, :] * stride_at
    p_g = o_r[:, None] * stride_gr + o_t[None, :] * stride_gt
    p_l = o_r[:, None] * stride_lr + o_t[None, :] * stride_lt
    # lam: the forward recurrence with the shifted conj(a) for a and g for u (real data: b_lr = b_li)
    b_lr, b_li = _scan_tile(a_ptr + p_a, g_ptr + p_g, lam_ptr + p_l, m_prev, mask, agg_a_ptr, agg_b_ptr,
                            inc_ptr, p_fagg, p_finc, i_t, i_c, i_rb, R, N_RB, o_r, m_r,
                            True, IS_COMPLEX, HAS_CARRY, W, BT)
    if HAS_DA:
        o_tn, m_next = _next_time(o_t, mask, T, REVERSE)
        p_h = o_r[:, None] * stride_hr + o_tn[None, :] * stride_ht
        _store_da(b_lr, b_li, h_ptr + p_h, m_next, da_ptr, o_r[:, None] * stride_dr + o_t[None, :] * stride_dt,
                  mask, i_c, R, o_r, m_r, IS_COMPLEX, DA_SUM)


_SUPPORTED = (torch.float32, torch.float64, torch.complex64, torch.complex128)


def _real_view(x: torch.Tensor) -> torch.Tensor:
    """Complex tensors as their (re, im) float view; strides then count real elements."""
    if x.is_complex():
        return torch.view_as_real(x.resolve_conj().resolve_neg())
    return x


def _check_a(name: str, a: torch.Tensor, R: int, T: int) -> None:
    Ra, Ta = a.shape
    if Ra not in (1, R) or Ta not in (1, T):
        raise ValueError(f"{name}: expected a [1 or {R}, 1 or {T}] (broadcast against [{R}, {T}]), "
                         f"got {tuple(a.shape)}")


def _check_options(name: str, dtype: torch.dtype, block_size: int | None, window: int | None,
                   tile_elems: int | None) -> None:
    if dtype not in _SUPPORTED:
        raise TypeError(f"{name}: expected float32, float64, complex64 or complex128, got {dtype}")
    if block_size is not None and block_size < 1:
        raise ValueError(f"{name}: expected a positive block_size, got {block_size}")
    if window is not None and (window < 2 or window & (window - 1)):
        raise ValueError(f"{name}: expected window to be a power of two >= 2, got {window}")
    if tile_elems is not None and tile_elems < 1:
        raise ValueError(f"{name}: expected a positive tile_elems, got {tile_elems}")


def _tiles(R: int, T: int, block_size: int | None, elems: int, tile_elems: int | None = None):
    """Tile geometry: chunk length, its padded power of two, chunk count, rows per tile, row blocks
    and warps. Short rows are stacked so that a program still holds about ``elems`` elements."""
    elems = tile_elems if tile_elems is not None else elems
    CHUNK = block_size if block_size is not None else min(elems, next_pow2(T))
    CHUNK = min(CHUNK, T)
    BT = max(2, next_pow2(CHUNK))
    NC = cdiv(T, CHUNK)
    BR = max(1, min(next_pow2(R), elems // BT))
    n_rb = cdiv(R, BR)
    num_warps = max(1, min(8, BR * BT // 256))
    return CHUNK, BT, NC, BR, n_rb, num_warps


def _single_pass_buffers(R: int, NC: int, n_rb: int, real_dtype: torch.dtype, is_complex: bool, device,
                         window: int | None):
    """Aggregates, inclusive states ([NC, R], chunk-major), flags and the window of one call."""
    part = (2,) if is_complex else ()
    agg_a = torch.empty(NC, R, *part, dtype=real_dtype, device=device)
    agg_b = torch.empty_like(agg_a)
    inc = torch.empty_like(agg_a)
    # Zeros: every flag down and the ticket counter at 0 (a fresh buffer per call, no reset kernel).
    flags = torch.zeros(_FLAG_BASE + 2 * NC * n_rb, dtype=torch.int32, device=device)
    W = window if window is not None else _default_window(NC, n_rb)
    return agg_a, agg_b, inc, flags, W


def diagonal(a: torch.Tensor, u: torch.Tensor, reverse: bool = False, *, block_size: int | None = None,
             single_pass: bool | None = None, window: int | None = None,
             tile_elems: int | None = None) -> torch.Tensor:
    """First-order diagonal recurrence ``h[t] = a[t] h[t-1] + u[t]`` from ``h[-1] = 0``.

    Args:
        a: ``[Ra, Ta]`` with ``Ra`` in {1, R} and ``Ta`` in {1, T} (broadcast by stride 0, never copied).
        u: ``[R, T]``; any strides.
        reverse: run backwards in time, ``h[t] = a[t] h[t+1] + u[t]`` from ``h[T] = 0``.
        block_size: chunk length in time steps (any positive int; tests use tiny ones to cross many
            chunk boundaries). Default: ``min(4096, next_power_of_2(T))`` for the single pass (2048 for
            complex), ``min(2048, next_power_of_2(T))`` for the multi-pass kernels.
        single_pass: the single-pass look-back kernel (True) or the three-pass kernels (False); None
            reads ``SSM_LFILTER_SINGLE_PASS`` (default off for this family, see ``_variants.py``). Same
            results up to rounding.
        window: look-back window W of the single pass (a power of two >= 2; tests force small ones to
            cross many window links). Default: ``_lookback.window``.
        tile_elems: elements per program (rows are stacked into a tile up to this size; tests force
            small ones to get several row blocks). Default: ``SINGLE_PASS_ELEMS`` (``..._COMPLEX``)
            or ``MULTI_PASS_ELEMS``.

    Returns:
        ``h [R, T]`` contiguous, dtype ``promote_types(a.dtype, u.dtype)`` (float32, float64, complex64
        or complex128), accumulated in that precision. CUDA tensors, or CPU tensors under
        ``TRITON_INTERPRET=1``.
    """
    if a.dim() != 2 or u.dim() != 2:
        raise ValueError(f"diagonal: expected a [Ra, Ta] and u [R, T], got {tuple(a.shape)} and {tuple(u.shape)}")
    R, T = u.shape
    _check_a("diagonal", a, R, T)
    if a.device != u.device:
        raise ValueError(f"diagonal: expected a and u on one device, got {a.device} and {u.device}")
    dtype = torch.promote_types(a.dtype, u.dtype)
    _check_options("diagonal", dtype, block_size, window, tile_elems)

    h = torch.empty(R, T, dtype=dtype, device=u.device)
    if R == 0 or T == 0:
        return h
    # Cast before expanding so that a broadcast `a` is never materialized.
    a_v = _real_view(to_dtype(a, dtype).expand(R, T))
    u_v = _real_view(to_dtype(u, dtype))
    h_v = _real_view(h)
    is_complex = dtype.is_complex
    real_dtype = h_v.dtype
    strides = (a_v.stride(0), a_v.stride(1), u_v.stride(0), u_v.stride(1))

    if _single_pass(single_pass, "diagonal"):
        elems = SINGLE_PASS_ELEMS_COMPLEX if is_complex else SINGLE_PASS_ELEMS
        CHUNK, BT, NC, BR, n_rb, num_warps = _tiles(R, T, block_size, elems, tile_elems)
        agg_a, agg_b, inc, flags, W = _single_pass_buffers(R, NC, n_rb, real_dtype, is_complex, u.device, window)
        diag_single_pass_kernel[(n_rb * NC,)](
            a_v, u_v, h_v, agg_a, agg_b, inc, flags, R, T, NC, n_rb, CHUNK,
            *strides, h_v.stride(0), h_v.stride(1),
            REVERSE=bool(reverse), IS_COMPLEX=is_complex, HAS_CARRY=NC > 1, FLAG_BASE=_FLAG_BASE, W=W,
            BR=BR, BT=BT, num_warps=num_warps,
        )
        return h

    _multi_pass(a_v, u_v, h_v, T, bool(reverse), block_size, tile_elems)
    return h


def _multi_pass(a_v, u_v, h_v, T: int, reverse: bool, block_size, tile_elems, adjoint: bool = False,
                hp_v=None, da_v=None, da_sum: bool = False) -> None:
    """The three passes into ``h_v`` (real views, ``[R, T]`` or ``[R, T, 2]``; ``a_v`` expanded to
    ``[R, T]``). ``adjoint`` (``diagonal_adjoint``): ``conj(a)`` read at the previous scan position in
    place, and with ``da_v`` the last pass also writes ``da = h conj(h_prev)`` from ``hp_v`` (the
    forward's ``h``): ``da_v [R, T]``, or with ``da_sum`` (``a`` constant in time) ``[NC, R]`` partial
    sums over the chunks."""
    R = u_v.shape[0]
    is_complex = h_v.dim() == 3
    strides = (a_v.stride(0), a_v.stride(1), u_v.stride(0), u_v.stride(1))
    CHUNK, BT, NC, BR, n_rb, num_warps = _tiles(R, T, block_size, MULTI_PASS_ELEMS, tile_elems)
    grid = (n_rb * NC,)
    H = h_v  # placeholder pointer when there is a single chunk (never read)
    if NC > 1:
        part = (2,) if is_complex else ()
        A = torch.empty(R, NC, *part, dtype=h_v.dtype, device=h_v.device)
        E = torch.empty_like(A)
        H = torch.empty_like(A)
        diag_chunk_summary_kernel[grid](
            a_v, u_v, A, E, R, T, NC, CHUNK, *strides,
            REVERSE=reverse, IS_COMPLEX=is_complex, BR=BR, BT=BT, ADJOINT=adjoint, num_warps=num_warps,
        )
        BC = min(1024, next_pow2(NC))
        BR2 = max(1, min(next_pow2(R), 1024 // BC))
        diag_chunk_scan_kernel[(cdiv(R, BR2),)](
            A, E, H, R, NC, IS_COMPLEX=is_complex, BR=BR2, BC=BC,
            num_warps=max(1, min(8, BR2 * BC // 256)),
        )
    has_da = da_v is not None
    hp = hp_v if has_da else h_v  # placeholder pointers when no da is written
    dd = da_v if has_da else h_v
    diag_chunk_apply_kernel[grid](
        a_v, u_v, h_v, H, hp, dd, R, T, NC, CHUNK, *strides, h_v.stride(0), h_v.stride(1),
        hp.stride(0), hp.stride(1), dd.stride(0), dd.stride(1),
        REVERSE=reverse, IS_COMPLEX=is_complex, HAS_CARRY=NC > 1, BR=BR, BT=BT, ADJOINT=adjoint,
        HAS_DA=has_da, DA_SUM=has_da and da_sum, num_warps=num_warps,
    )


def _reduce_da(da: torch.Tensor, Ra: int) -> torch.Tensor:
    """Sum a per-row ``da`` over rows when ``a`` was one row shared by all (torch: a fixed order)."""
    return da.sum(0, keepdim=True) if Ra == 1 and da.shape[0] != 1 else da


def diagonal_adjoint(a: torch.Tensor, h: torch.Tensor, g: torch.Tensor, reverse: bool = False, *,
                     need_da: bool = True, block_size: int | None = None, single_pass: bool | None = None,
                     window: int | None = None, tile_elems: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The adjoint of :func:`diagonal`: ``(lam, da)`` for the output gradient ``g = dL/dh``.

    ``lam[t] = g[t] + conj(a[t+1]) lam[t+1]`` from ``lam[T] = 0`` (``reverse``: ``conj(a[t-1])
    lam[t-1]`` from ``lam[-1] = 0``) is ``dL/du``, and ``da[t] = lam[t] conj(h_prev[t])`` with
    ``h_prev[t] = h[t-1]`` (``reverse``: ``h[t+1]``), zero at the boundary, is ``dL/da``: summed over
    time when ``Ta == 1`` and over rows when ``Ra == 1`` (deterministic, fixed order).

    Args:
        a: ``[Ra, Ta]`` as for :func:`diagonal`.
        h: ``[R, T]``, the forward output; g: ``[R, T]``; any strides.
        reverse: the direction of the forward recurrence.
        need_da: False skips ``h`` and ``da`` (then ``da`` is an empty tensor).
        block_size, single_pass, window, tile_elems: as for :func:`diagonal`; ``single_pass=False`` (the
            default for this family) runs the adjoint through the three passes, ``da`` from the last.

    Returns:
        ``lam [R, T]`` contiguous and ``da`` shaped like ``a`` (or ``[0]``), dtype
        ``promote_types(a, h, g)``.
    """
    if a.dim() != 2 or h.dim() != 2 or g.dim() != 2:
        raise ValueError(f"diagonal_adjoint: expected a [Ra, Ta], h [R, T] and g [R, T], got "
                         f"{tuple(a.shape)}, {tuple(h.shape)} and {tuple(g.shape)}")
    if h.shape != g.shape:
        raise ValueError(f"diagonal_adjoint: expected h and g of one shape, got {tuple(h.shape)} and {tuple(g.shape)}")
    R, T = g.shape
    Ra, Ta = a.shape
    _check_a("diagonal_adjoint", a, R, T)
    if not (a.device == h.device == g.device):
        raise ValueError(f"diagonal_adjoint: expected a, h and g on one device, got {a.device}, {h.device} and {g.device}")
    dtype = torch.promote_types(torch.promote_types(a.dtype, h.dtype), g.dtype)
    _check_options("diagonal_adjoint", dtype, block_size, window, tile_elems)
    da_empty = torch.zeros(0, dtype=dtype, device=g.device)

    if R == 0 or T == 0:
        lam = torch.empty(R, T, dtype=dtype, device=g.device)
        return lam, (torch.zeros(a.shape, dtype=dtype, device=g.device) if need_da else da_empty)

    multi = not _single_pass(single_pass, "diagonal")
    lam = torch.empty(R, T, dtype=dtype, device=g.device)
    a_v = _real_view(to_dtype(a, dtype).expand(R, T))
    g_v = _real_view(to_dtype(g, dtype))
    h_v = _real_view(to_dtype(h, dtype))
    lam_v = _real_view(lam)
    is_complex = dtype.is_complex
    real_dtype = lam_v.dtype
    elems = MULTI_PASS_ELEMS if multi else (SINGLE_PASS_ELEMS_COMPLEX if is_complex else SINGLE_PASS_ELEMS)
    CHUNK, BT, NC, BR, n_rb, num_warps = _tiles(R, T, block_size, elems, tile_elems)
    da_sum = need_da and Ta == 1
    if not need_da:
        da_v = None
    elif da_sum:
        da_v = torch.empty(NC, R, *((2,) if is_complex else ()), dtype=real_dtype, device=g.device)
    else:
        da_v = _real_view(torch.empty(R, T, dtype=dtype, device=g.device))
    if multi:
        # the three passes run the adjoint recurrence with conj(a) read shifted in place, and the last
        # one writes da from the lam tile in registers: no shifted copy of a, no second read of lam
        _multi_pass(a_v, g_v, lam_v, T, not reverse, block_size, tile_elems, adjoint=True, hp_v=h_v, da_v=da_v,
                    da_sum=da_sum)
    else:
        agg_a, agg_b, inc, flags, W = _single_pass_buffers(R, NC, n_rb, real_dtype, is_complex, g.device, window)
        dd = da_v if need_da else lam_v  # placeholder pointer (never written)
        diag_adjoint_kernel[(n_rb * NC,)](
            a_v, g_v, h_v, lam_v, dd, agg_a, agg_b, inc, flags, R, T, NC, n_rb, CHUNK,
            a_v.stride(0), a_v.stride(1), g_v.stride(0), g_v.stride(1), h_v.stride(0), h_v.stride(1),
            lam_v.stride(0), lam_v.stride(1), dd.stride(0), dd.stride(1),
            REVERSE=not reverse, IS_COMPLEX=is_complex, HAS_CARRY=NC > 1, HAS_DA=need_da, DA_SUM=da_sum,
            FLAG_BASE=_FLAG_BASE, W=W, BR=BR, BT=BT, num_warps=num_warps,
        )
    if not need_da:
        return lam, da_empty
    da = torch.view_as_complex(da_v) if is_complex else da_v
    if da_sum:
        da = da.sum(0)[:, None]  # per-tile partial sums [NC, R], added in a fixed order
    return lam, _reduce_da(da, Ra)
