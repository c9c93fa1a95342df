"""Triton kernels for the first-order diagonal recurrence (the ``ssm_lfilter::diag`` op).

    h[t] = a[t] * h[t-1] + u[t],   h[-1] = 0          (reverse: h[t] = a[t] * h[t+1] + u[t], h[T] = 0)

``a [Ra, Ta]`` (``Ra`` in {1, R}, ``Ta`` in {1, T}), ``u [R, T]``, real or complex, on CUDA (or on CPU
under ``TRITON_INTERPRET=1``). The time axis is cut into chunks of ``CHUNK`` steps and solved in three
passes, so one long row spreads over every SM and many short rows fill the GPU:

1. ``diag_chunk_summary_kernel``: per (rows, chunk) tile, fold the chunk into its affine map
   ``h_end = A_c h_start + E_c`` (``A_c`` = product of the chunk's ``a``, ``E_c`` = zero-state end value);
2. ``diag_chunk_scan_kernel``: per block of rows, an inclusive scan of those maps over the chunks gives
   the true state at the end of every chunk;
3. ``diag_chunk_apply_kernel``: each chunk is scanned again and corrected from its true initial state,
   ``h = B_t + A_t h_start``, then written once.

Every scan is the affine combine ``(a1, b1) . (a2, b2) = (a1 a2, a2 b1 + b2)`` (``(a1, b1)`` earlier),
through ``tl.associative_scan`` in a fixed tree: deterministic, no atomics. (Not ``tl.reduce``: the
combine is not commutative, and ``tl.reduce`` gave wrong chunk summaries on an H200 with Triton 3.6.) Complex
tensors travel as interleaved (re, im) pairs (``torch.view_as_real``) and are multiplied in registers.
``reverse`` flips the time index (``t = T - 1 - p``) instead of using ``associative_scan(reverse=True)``,
which was wrong in some Triton versions. Program ids and offsets are int64.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

__all__ = ["diagonal"]


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
def diag_chunk_summary_kernel(
    a_ptr, u_ptr, A_ptr, E_ptr,
    R, T, NC, CHUNK,
    stride_ar, stride_at, stride_ur, stride_ut,
    REVERSE: tl.constexpr, IS_COMPLEX: tl.constexpr, BR: tl.constexpr, BT: tl.constexpr,
):
    """Pass 1: ``A[r, c] = prod a`` and ``E[r, c]`` = zero-state end value of chunk ``c``.

    ``A``/``E``: contiguous [R, NC] (real) or [R, NC, 2] (complex, interleaved)."""
    i_p = tl.program_id(0).to(tl.int64)
    i_rb = i_p // NC
    i_c = i_p % NC
    o_r, m_r, mask, p_a, p_u, o_t = _diag_tile_offsets(i_rb, i_c, R, T, CHUNK, stride_ar, stride_at,
                                                       stride_ur, stride_ut, REVERSE, BR, BT)
    # Padding is the identity map (a = 1, u = 0), so it leaves the reduction unchanged.
    if IS_COMPLEX:
        b_ar = tl.load(a_ptr + p_a, mask=mask, other=1.)
        b_ai = tl.load(a_ptr + p_a + 1, mask=mask, other=0.)
        b_ur = tl.load(u_ptr + p_u, mask=mask, other=0.)
        b_ui = tl.load(u_ptr + p_u + 1, mask=mask, other=0.)
        b_ar, b_ai, b_ur, b_ui = tl.associative_scan((b_ar, b_ai, b_ur, b_ui), 1, _affine_combine_complex)
        b_Ar = _last_column(b_ar, BT)
        b_Ai = _last_column(b_ai, BT)
        b_Er = _last_column(b_ur, BT)
        b_Ei = _last_column(b_ui, BT)
        p_s = (o_r * NC + i_c) * 2
        tl.store(A_ptr + p_s, b_Ar, mask=m_r)
        tl.store(A_ptr + p_s + 1, b_Ai, mask=m_r)
        tl.store(E_ptr + p_s, b_Er, mask=m_r)
        tl.store(E_ptr + p_s + 1, b_Ei, mask=m_r)
    else:
        b_a = tl.load(a_ptr + p_a, mask=mask, other=1.)
        b_u = tl.load(u_ptr + p_u, mask=mask, other=0.)
        b_a, b_u = tl.associative_scan((b_a, b_u), 1, _affine_combine)
        b_A = _last_column(b_a, BT)
        b_E = _last_column(b_u, BT)
        p_s = o_r * NC + i_c
        tl.store(A_ptr + p_s, b_A, mask=m_r)
        tl.store(E_ptr + p_s, b_E, mask=m_r)


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
    a_ptr, u_ptr, h_ptr, H_ptr,
    R, T, NC, CHUNK,
    stride_ar, stride_at, stride_ur, stride_ut, stride_hr, stride_ht,
    REVERSE: tl.constexpr, IS_COMPLEX: tl.constexpr, HAS_CARRY: tl.constexpr,
    BR: tl.constexpr, BT: tl.constexpr,
):
    """Pass 3: scan chunk ``c`` again and start it from ``H[r, c-1]``: ``h = B_t + A_t H[r, c-1]``.

    With ``HAS_CARRY=False`` (a single chunk per row) every chunk starts from rest."""
    i_p = tl.program_id(0).to(tl.int64)
    i_rb = i_p // NC
    i_c = i_p % NC
    o_r, m_r, mask, p_a, p_u, o_t = _diag_tile_offsets(i_rb, i_c, R, T, CHUNK, stride_ar, stride_at,
                                                       stride_ur, stride_ut, REVERSE, BR, BT)
    p_h = o_r[:, None] * stride_hr + o_t[None, :] * stride_ht
    m_in = m_r & (i_c > 0)
    if IS_COMPLEX:
        b_ar = tl.load(a_ptr + p_a, mask=mask, other=1.)
        b_ai = tl.load(a_ptr + p_a + 1, mask=mask, other=0.)
        b_ur = tl.load(u_ptr + p_u, mask=mask, other=0.)
        b_ui = tl.load(u_ptr + p_u + 1, mask=mask, other=0.)
        b_ar, b_ai, b_hr, b_hi = tl.associative_scan((b_ar, b_ai, b_ur, b_ui), 1, _affine_combine_complex)
        if HAS_CARRY:
            p_s = (o_r * NC + i_c - 1) * 2
            b_sr = tl.load(H_ptr + p_s, mask=m_in, other=0.)
            b_si = tl.load(H_ptr + p_s + 1, mask=m_in, other=0.)
            b_hr, b_hi = (b_hr + b_ar * b_sr[:, None] - b_ai * b_si[:, None],
                          b_hi + b_ar * b_si[:, None] + b_ai * b_sr[:, None])
        tl.store(h_ptr + p_h, b_hr, mask=mask)
        tl.store(h_ptr + p_h + 1, b_hi, mask=mask)
    else:
        b_a = tl.load(a_ptr + p_a, mask=mask, other=1.)
        b_u = tl.load(u_ptr + p_u, mask=mask, other=0.)
        b_a, b_h = tl.associative_scan((b_a, b_u), 1, _affine_combine)
        if HAS_CARRY:
            b_s = tl.load(H_ptr + o_r * NC + i_c - 1, mask=m_in, other=0.)
            b_h = b_h + b_a * b_s[:, None]
        tl.store(h_ptr + p_h, b_h, mask=mask)


_SUPPORTED = (torch.float32, torch.float64, torch.complex64, torch.complex128)


def _real_view(x: torch.Tensor) -> torch.Tensor:
    """Complex tensors as their (re, im) float view; strides then count real elements."""
    if x.is_complex():
        return torch.view_as_real(x.resolve_conj().resolve_neg())
    return x


def diagonal(a: torch.Tensor, u: torch.Tensor, reverse: bool = False, *, block_size: int | None = None) -> torch.Tensor:
    """First-order diagonal recurrence ``h[t] = a[t] h[t-1] + u[t]`` from ``h[-1] = 0``.

    Args:
        a: ``[Ra, Ta]`` with ``Ra`` in {1, R} and ``Ta`` in {1, T} (broadcast by stride 0, never copied).
        u: ``[R, T]``; any strides.
        reverse: run backwards in time, ``h[t] = a[t] h[t+1] + u[t]`` from ``h[T] = 0``.
        block_size: chunk length in time steps (any positive int; tests use tiny ones to cross many
            chunk boundaries). Default: ``min(2048, next_power_of_2(T))``.

    Returns:
        ``h [R, T]`` contiguous, dtype ``promote_types(a.dtype, u.dtype)`` (float32, float64, complex64
        or complex128), accumulated in that precision. CUDA tensors, or CPU tensors under
        ``TRITON_INTERPRET=1``.
    """
    if a.dim() != 2 or u.dim() != 2:
        raise ValueError(f"diagonal: expected a [Ra, Ta] and u [R, T], got {tuple(a.shape)} and {tuple(u.shape)}")
    R, T = u.shape
    Ra, Ta = a.shape
    if Ra not in (1, R) or Ta not in (1, T):
        raise ValueError(f"diagonal: a {tuple(a.shape)} does not broadcast as [1 or R, 1 or T] against u {tuple(u.shape)}")
    if a.device != u.device:
        raise ValueError(f"diagonal: a is on {a.device} but u is on {u.device}")
    dtype = torch.promote_types(a.dtype, u.dtype)
    if dtype not in _SUPPORTED:
        raise TypeError(f"diagonal: unsupported dtype {dtype}; expected float32, float64, complex64 or complex128")
    if block_size is not None and block_size < 1:
        raise ValueError(f"diagonal: block_size must be positive, got {block_size}")

    h = torch.empty(R, T, dtype=dtype, device=u.device)
    if R == 0 or T == 0:
        return h
    # Cast before expanding so that a broadcast `a` is never materialized.
    a_v = _real_view(a.to(dtype).expand(R, T))
    u_v = _real_view(u.to(dtype))
    h_v = _real_view(h)
    is_complex = dtype.is_complex
    real_dtype = h_v.dtype

    CHUNK = block_size if block_size is not None else min(2048, triton.next_power_of_2(T))
    CHUNK = min(CHUNK, T)
    BT = max(2, triton.next_power_of_2(CHUNK))
    NC = triton.cdiv(T, CHUNK)
    # Short rows: stack rows in one tile so that a program still holds ~2K elements.
    BR = max(1, min(triton.next_power_of_2(R), 2048 // BT))
    n_rb = triton.cdiv(R, BR)
    num_warps = max(1, min(8, BR * BT // 256))
    grid = (n_rb * NC,)
    strides = (a_v.stride(0), a_v.stride(1), u_v.stride(0), u_v.stride(1))

    H = h_v  # placeholder pointer when there is a single chunk (never read)
    if NC > 1:
        part = (2,) if is_complex else ()
        A = torch.empty(R, NC, *part, dtype=real_dtype, device=u.device)
        E = torch.empty_like(A)
        H = torch.empty_like(A)
        diag_chunk_summary_kernel[grid](
            a_v, u_v, A, E, R, T, NC, CHUNK, *strides,
            REVERSE=bool(reverse), IS_COMPLEX=is_complex, BR=BR, BT=BT, num_warps=num_warps,
        )
        BC = min(1024, triton.next_power_of_2(NC))
        BR2 = max(1, min(triton.next_power_of_2(R), 1024 // BC))
        diag_chunk_scan_kernel[(triton.cdiv(R, BR2),)](
            A, E, H, R, NC, IS_COMPLEX=is_complex, BR=BR2, BC=BC,
            num_warps=max(1, min(8, BR2 * BC // 256)),
        )
    diag_chunk_apply_kernel[grid](
        a_v, u_v, h_v, H, R, T, NC, CHUNK, *strides, h_v.stride(0), h_v.stride(1),
        REVERSE=bool(reverse), IS_COMPLEX=is_complex, HAS_CARRY=NC > 1, BR=BR, BT=BT, num_warps=num_warps,
    )
    return h
