"""A cascade of time-varying filters (``time_varying_sosfilt``) in one launch, one pass over the signal.

Section ``s`` of the cascade, on its input ``w_s`` (``w_0 = x``, zero before time 0)::

    u[n]       = sum_{k=0..M} b[n, s, k] w_s[n-k]  (+ head[s, n] for n < K)
    w_{s+1}[n] = u[n] - sum_{k=1..N} a[n, s, k-1] w_{s+1}[n-k]

The optional head is a section's initial state in input form (``time_varying_sosfilt``'s ``zi``: what
the history adds to the first samples); ``ends`` receives every section's last outputs.

``x [R, T]``, ``b [Rb, T, S, M+1]``, ``a [Ra, T, S, N]`` (normalized, ``Rb, Ra`` in {1, R}, any
strides), ``1 <= N <= 4``, ``M <= min(N, 3)``; returns ``y = w_S``. With ``S = 1`` it is
``time_varying_lfilter`` with a per-sample ``b``, the FIR fused into the recurrence. CUDA tensors, or
CPU tensors under ``TRITON_INTERPRET=1``; float32/float64.

Unnormalized sections (``monic=False``, what the public functions pass): ``a [Ra, T, S, N+1]`` with
every step's leading coefficient ``a0`` first, ``b`` not divided by it, both views of the caller's
raw coefficients (``time_varying_sosfilt``'s ``sos[..., :3]`` and ``sos[..., 3:]``). Each step's
``1 / a0`` (one correctly rounded division) scales its FIR output and its recurrence taps in
registers, so ``a0 w_{s+1}[n] = sum_k b[n, k] w_s[n-k] - sum_{k>=1} a[n, k] w_{s+1}[n-k]``. Normalized
copies made in torch moved more memory than the kernel itself: at order 2 from rest with per-row
coefficients (``b`` and ``a`` three taps a sample), the two divisions read and wrote 12 arrays of the
signal's length where the kernel moves 8, and their chain rule added 16 torch operations over
coefficient-sized tensors to the backward (``tests/test_memory_passes.py`` now holds the public
functions to none). With ``a0 = 1`` the bits are those of
the normalized call (the reciprocal and the products are exact). The backward runs on ``v~ = v / a0``
(``_tv_sos_adjoint_kernel``), which makes the raw coefficients' gradients, ``a0``'s included, products
of one tile in registers as before.

``tv_sos``: one program owns a tile of ``BLOCK`` lanes of ``L`` steps of one row (ticket order, as
``time_varying.py``'s single pass) and loads the signal tile once. Then, section after section, with
the tile in registers: the section's coefficient tiles are loaded (coalesced within a section's
columns), the FIR part runs lane by lane from its halo, and the time-varying single pass of
``time_varying.py`` (``_sp_section``: zero-state maps, lane scan, the fixed-window look-back on this
section's own buffers, re-run from the true start states) turns the tile into the section's output,
the next section's input. The output tile is stored once. A later section's FIR halo needs no
memory: the inputs before a lane, ``w_{s+1}[t0-1], ..., w_{s+1}[t0-M]``, are the previous section's
true start state of that lane (hence ``M <= N``), which ``_sp_section`` returns.

Memory: the signal is read once and written once whatever the number of sections (section by
section, a torch FIR over the history and the all-pole kernel moved it about 8 times a section);
the coefficients (``(M+1+N) S`` numbers a sample) are read once. Section outputs are rounded to the
signal's dtype between sections, as separate calls would store them.

``tv_sos_adjoint``: the backward in two launches, the forward storing every section's signal
(``sections=``), then ``_tv_sos_adjoint_kernel`` (every section's adjoint, coefficient gradients and
transposed FIR, last section first; see its docstring). Deterministic: only integer atomics (ticket,
flags), every float reduction in a fixed order.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .._checks import to_dtype
from ._bits import from_bits, to_bits
from ._host import cdiv, next_pow2, register_cap_option
from ._lookback import check_tiles, take_ticket
from .lti import _fir_step
from ._lookback import window as _window
from ._variants import register_cap as _register_cap
from ._variants import single_pass as _single_pass
from .time_varying import _sp_coefficient_grads, _sp_leaf_a, _sp_section, accumulation, single_pass_chunk

__all__ = ["tv_sos", "tv_sos_adjoint", "tv_sos_applies"]


@triton.jit
def _fir_cols(wt, bt, w1, w2, w3, M: tl.constexpr, KBB: tl.constexpr, ACC: tl.constexpr, LOG: tl.constexpr):
    """``u[n] = sum_k b[n, k] w[n-k]`` over the ``2^LOG`` steps of the bit-shaped tiles ``wt`` and
    ``bt`` (a leaf: one step's ``2^KBB`` taps), from the halo ``(w1, w2, w3) = (w[n0-1], w[n0-2],
    w[n0-3])``. Returns the bit-shaped ``u`` tile (ACC) and the halo after the steps. Terms are added
    in the order of ``k``, as the torch FIR of the unfused path adds them."""
    if LOG == 0:
        c0, c1, c2, c3 = _sp_leaf_a(bt, KBB, ACC)
        # the LTI kernels' FIR step (M <= 3: its fifth tap and register are never read)
        ut, w1, w2, w3, _ = _fir_step(wt.to(ACC), c0, c1, c2, c3, c3, w1, w2, w3, w3, M)
    else:
        w_lo, w_hi = tl.split(wt)
        b_lo, b_hi = tl.split(bt)
        u_lo, w1, w2, w3 = _fir_cols(w_lo, b_lo, w1, w2, w3, M, KBB, ACC, LOG - 1)
        u_hi, w1, w2, w3 = _fir_cols(w_hi, b_hi, w1, w2, w3, M, KBB, ACC, LOG - 1)
        ut = tl.join(u_lo, u_hi)
    return ut, w1, w2, w3


@triton.jit
def _halo_tap(p_row, i_t0, k: tl.constexpr, s_xt, T, M: tl.constexpr, ACC: tl.constexpr, BLOCK: tl.constexpr):
    """``x[t0-k]`` of every lane (zero before time 0, and for taps beyond M)."""
    if k <= M:
        v = tl.load(p_row + (i_t0 - k) * s_xt, mask=(i_t0 >= k) & (i_t0 - k < T), other=0.).to(ACC)
    else:
        v = tl.zeros([BLOCK], dtype=ACC)
    return v


@triton.jit
def _coefficient_tile(p, i_tile, T, s_t: tl.constexpr, s_k: tl.constexpr, K, KS: tl.constexpr, LOG: tl.constexpr,
                      BLOCK: tl.constexpr, ADJOINT: tl.constexpr = False, LAG0: tl.constexpr = 0, b_r=None,
                      SCALE: tl.constexpr = False):
    """One section's ``[BLOCK, L * 2^KS]`` coefficient tile (column ``n * 2^KS + k``: step n, tap k;
    zero for ``k >= K`` and past the row's end), bit-shaped on ``LOG + KS`` bits. ``ADJOINT``: processing
    step ``p`` is time ``T-1-p`` and tap ``k`` (lag ``k + LAG0``) is read ``k + LAG0`` steps later, the
    coefficient that multiplies ``v[n + lag]`` in the transposed recurrence (zero past the end).
    ``SCALE``: every step's taps multiplied by that step's ``b_r [BLOCK, L]`` (``_reciprocal_tile``), in
    ``b_r``'s dtype. Offsets are int32 in the tile from one scalar base, made here so nothing of the
    shape [BLOCK, L] stays alive across the section's look-back."""
    L: tl.constexpr = 1 << LOG
    KP: tl.constexpr = 1 << KS
    o_q = tl.arange(0, L * KP)
    o_s = (tl.arange(0, BLOCK) * L)[:, None] + (o_q // KP)[None, :]  # step in the tile
    o_k = (o_q % KP)[None, :]
    m = (o_s < T - i_tile) & (o_k < K)
    if ADJOINT:
        # time T-1-(i_tile+o_s) + o_k + LAG0, which must not pass T-1
        t = tl.load(p + (T - 1 - i_tile + LAG0) * s_t + (o_k - o_s) * s_t + o_k * s_k,
                    mask=m & (i_tile + o_s >= o_k + LAG0), other=0.)
    else:
        t = tl.load(p + i_tile * s_t + o_s * s_t + o_k * s_k, mask=m, other=0.)
    if SCALE:
        t = t.to(b_r.dtype) * tl.reshape(tl.broadcast_to(b_r[:, :, None], [BLOCK, L, KP]), [BLOCK, L * KP])
    return to_bits(t, LOG + KS, BLOCK)


@triton.jit
def _reciprocal_tile(p_a0, m, ACC: tl.constexpr):
    """``1 / a0`` at the tile of pointers ``p_a0`` behind the mask ``m`` (masked steps: 1), in ``ACC``,
    correctly rounded: ``/`` on float32 lowers to an approximate division on NVIDIA GPUs. A leading
    coefficient of 1 gives 1 exactly, so a monic filter passed unnormalized runs the same bits as
    the normalized one."""
    b_d = tl.load(p_a0, mask=m, other=1.).to(ACC)
    if ACC == tl.float32:
        b_r = tl.math.div_rn(tl.full(b_d.shape, 1.0, tl.float32), b_d)
    else:
        b_r = 1.0 / b_d
    return b_r


@triton.jit
def _section(j, b_ut, b_at, agg, inc, flags, R, i_r, i_c, n_tiles, o_l,
             N: tl.constexpr, NP: tl.constexpr, KB: tl.constexpr, LOG: tl.constexpr, BLOCK: tl.constexpr,
             W: tl.constexpr, ACC: tl.constexpr, Y_DTYPE: tl.constexpr):
    """``_sp_section`` on the look-back buffers of the ``j``-th section pass of a launch (the layout
    ``_lookback`` allocates: ``agg [S, R, n_tiles, 20]``, ``inc [S, R, n_tiles, 4]``, per pass the
    aggregate then the inclusive flags ``(R, n_tiles)``)."""
    i_buf = j * R + i_r
    return _sp_section(b_ut, b_at, agg + i_buf * n_tiles * 20, inc + i_buf * n_tiles * 4,
                       flags + (2 * j * R + i_r) * n_tiles, flags + ((2 * j + 1) * R + i_r) * n_tiles,
                       i_c, o_l, N, NP, KB, LOG, BLOCK, W, ACC, Y_DTYPE)


@triton.jit
def _tv_sos_kernel(
    x, b, a, y, agg, inc, flags, inter, head, ends,
    R, T, n_tiles, K, KT,
    s_xr, s_xt, s_br, s_bs, s_ar, s_as, s_yr, s_is, s_hr, s_hs,
    s_bt: tl.constexpr, s_bk: tl.constexpr, s_at: tl.constexpr, s_ak: tl.constexpr,
    S: tl.constexpr, M: tl.constexpr, N: tl.constexpr, NP: tl.constexpr, KB: tl.constexpr,
    KBB: tl.constexpr, LOG: tl.constexpr, BLOCK: tl.constexpr, W: tl.constexpr, ACC: tl.constexpr,
    STORE_INTER: tl.constexpr, HAS_HEAD: tl.constexpr = False, STORE_ENDS: tl.constexpr = False,
    MONIC: tl.constexpr = True,
):
    """One program per tile (see the module docstring). ``agg [S, R, n_tiles, 20]`` and
    ``inc [S, R, n_tiles, 4]`` (ACC): each section's look-back buffers; ``flags`` int32 zeros: per
    section aggregate then inclusive flags ``(R, n_tiles)``, then the ticket counter. Not ``MONIC``:
    ``a`` holds ``N + 1`` taps, the first the leading coefficient ``a0``, and every step's FIR output
    and recurrence taps are scaled by its ``1 / a0`` in registers (module docstring)."""
    L: tl.constexpr = 1 << LOG
    Y_DTYPE: tl.constexpr = y.dtype.element_ty
    i_tk = take_ticket(flags + 2 * S * R * n_tiles)
    i_c = i_tk // R  # tiles of all rows advance together
    i_r = i_tk % R
    o_l = tl.arange(0, BLOCK)
    i_t0 = (i_c * BLOCK + o_l) * L  # first step of every lane (int64)
    i_tile = i_c * (BLOCK * L)
    o_y = (o_l * L)[:, None] + tl.arange(0, L)[None, :]  # int32 offsets in the tile
    m_y = o_y < T - i_tile
    p_x = x + i_r * s_xr
    b_wt = to_bits(tl.load(p_x + (i_tile + o_y) * s_xt, mask=m_y, other=0.).to(Y_DTYPE), LOG, BLOCK)
    # section 0's FIR halo comes from x; a later section's is the previous section's true start state
    w1 = _halo_tap(p_x, i_t0, 1, s_xt, T, M, ACC, BLOCK)
    w2 = _halo_tap(p_x, i_t0, 2, s_xt, T, M, ACC, BLOCK)
    w3 = _halo_tap(p_x, i_t0, 3, s_xt, T, M, ACC, BLOCK)
    for i_s in range(S):
        if STORE_INTER:
            tl.store(inter + i_s * s_is + i_r * T + i_tile + o_y, from_bits(b_wt, LOG, BLOCK), mask=m_y)
        b_bt = _coefficient_tile(b + i_r * s_br + i_s * s_bs, i_tile, T, s_bt, s_bk, M + 1, KBB, LOG, BLOCK)
        b_ut, _, _, _ = _fir_cols(b_wt, b_bt, w1, w2, w3, M, KBB, ACC, LOG)
        p_a = a + i_r * s_ar + i_s * s_as
        if not MONIC:
            b_r = _reciprocal_tile(p_a + (i_tile + o_y) * s_at, m_y, ACC)
            b_ut = b_ut * to_bits(b_r, LOG, BLOCK)
            b_at = _coefficient_tile(p_a + s_ak, i_tile, T, s_at, s_ak, N, KB, LOG, BLOCK, b_r=b_r, SCALE=True)
        else:
            b_at = _coefficient_tile(p_a, i_tile, T, s_at, s_ak, N, KB, LOG, BLOCK)
        if HAS_HEAD:
            if i_tile < K:  # the section's head (its initial state) enters its first K steps
                b_ut = to_bits(from_bits(b_ut, LOG, BLOCK) + tl.load(
                    head + i_r * s_hr + i_s * s_hs + o_y, mask=o_y < K, other=0.).to(ACC), LOG, BLOCK)
        b_wt, s1, s2, s3, _ = _section(i_s, b_ut, b_at, agg, inc, flags, R, i_r, i_c, n_tiles, o_l,
                                       N, NP, KB, LOG, BLOCK, W, ACC, Y_DTYPE)
        if STORE_ENDS:
            if i_tile + BLOCK * L > T - KT:  # the row's last KT steps: the last tile or two
                i_e = i_tile + o_y - (T - KT)
                tl.store(ends + (i_s * R + i_r) * KT + i_e, from_bits(b_wt, LOG, BLOCK), mask=(i_e >= 0) & m_y)
        # the halo as the next section would read it from memory: rounded to the signal's dtype
        w1 = s1.to(Y_DTYPE).to(ACC)
        w2 = s2.to(Y_DTYPE).to(ACC)
        w3 = s3.to(Y_DTYPE).to(ACC)
    tl.store(y + i_r * s_yr + i_tile + o_y, from_bits(b_wt, LOG, BLOCK), mask=m_y)


@triton.jit
def _tv_sos_adjoint_kernel(
    g, w, b, a, dx, db, da, agg, inc, flags, g_ends, vh,
    R, T, n_tiles, K, KT,
    s_gr, s_gt, s_br, s_bs, s_ar, s_as, s_ws, s_dbr, s_dbs, s_dar, s_das, s_vr, s_vs,
    s_bt: tl.constexpr, s_bk: tl.constexpr, s_at: tl.constexpr, s_ak: tl.constexpr,
    s_dbt: tl.constexpr, s_dat: tl.constexpr,
    S: tl.constexpr, M: tl.constexpr, N: tl.constexpr, NP: tl.constexpr, KB: tl.constexpr,
    KBB: tl.constexpr, LOG: tl.constexpr, BLOCK: tl.constexpr, W: tl.constexpr, ACC: tl.constexpr,
    NEED_B: tl.constexpr, NEED_A: tl.constexpr, HAS_ENDS: tl.constexpr = False, HAS_VH: tl.constexpr = False,
    MONIC: tl.constexpr = True,
):
    """The cascade's backward, one program per tile of processing steps (time reversed: step ``p``
    is time ``T-1-p``), sections last first. For section ``s`` the tile holds the output gradient
    ``g_s``; ``time_varying.py``'s section pass with skewed coefficients turns it into
    ``v = dL/du_s`` (``v[n] = g_s[n] - sum_k a[n+k, s, k-1] v[n+k]``); the epilogue writes
    ``da[n, s, k-1] = -v[n] w_{s+1}[n-k]`` and ``db[n, s, k] = v[n] w_s[n-k]`` from the stored section
    signals ``w [S+1, R, T]`` (contiguous rows); the transposed FIR
    ``g_{s-1}[n] = sum_k b[n+k, s, k] v[n+k]`` (its halo: ``v`` before the lane in processing order, the
    section pass's true start state of the lane) stays in registers. ``dx = g_{-1}`` is stored once.

    Not ``MONIC`` (``a`` with its leading taps ``a0``, unnormalized ``b``): the section pass runs on
    ``v~ = v / a0[n]``, ``v~[n] = (g_s[n] - sum_k a[n+k, s, k] v~[n+k]) / a0[n]``, its input and taps
    scaled by the step's ``1 / a0`` as in the forward. Then ``db[n, s, k] = v~[n] w_s[n-k]`` and, over
    the ``N + 1`` taps from lag 0, ``da[n, s, k] = -v~[n] w_{s+1}[n-k]`` are the gradients of the
    unnormalized coefficients (``a0``'s included), and the transposed FIR of ``v~`` with ``b`` is the
    normalized one of ``v``. A head's gradient is ``v = a0 v~``."""
    L: tl.constexpr = 1 << LOG
    NS: tl.constexpr = 1 << KB
    MS: tl.constexpr = 1 << KBB
    Y_DTYPE: tl.constexpr = dx.dtype.element_ty
    i_tk = take_ticket(flags + 2 * S * R * n_tiles)
    i_c = i_tk // R
    i_r = i_tk % R
    o_l = tl.arange(0, BLOCK)
    i_tile = i_c * (BLOCK * L)
    o_y = (o_l * L)[:, None] + tl.arange(0, L)[None, :]  # int32 steps in the tile
    m_y = o_y < T - i_tile
    # processing step i_tile + o_y is time T-1-i_tile-o_y: a reversed tile, never copied
    b_gt = to_bits(tl.load(g + i_r * s_gr + (T - 1 - i_tile) * s_gt - o_y * s_gt, mask=m_y, other=0.).to(Y_DTYPE),
                   LOG, BLOCK)
    for i_q in range(S):
        i_s = S - 1 - i_q
        if HAS_ENDS:
            if i_tile < KT:  # the gradient of the section's last KT outputs (the final states')
                b_gt = to_bits(from_bits(b_gt, LOG, BLOCK) + tl.load(
                    g_ends + (i_s * R + i_r) * KT + (KT - 1 - o_y), mask=(o_y < KT) & m_y, other=0.
                ).to(Y_DTYPE), LOG, BLOCK)
        p_a = a + i_r * s_ar + i_s * s_as
        if MONIC:
            b_at = _coefficient_tile(p_a, i_tile, T, s_at, s_ak, N, KB, LOG, BLOCK, True, 1)
        else:
            # the step's 1 / a0, at the processing step's own time (not skewed)
            b_r = _reciprocal_tile(p_a + (T - 1 - i_tile) * s_at - o_y * s_at, m_y, ACC)
            b_at = _coefficient_tile(p_a + s_ak, i_tile, T, s_at, s_ak, N, KB, LOG, BLOCK, True, 1, b_r, True)
            b_gt = b_gt.to(ACC) * to_bits(b_r, LOG, BLOCK)
        b_vt, s1, s2, s3, _ = _section(i_q, b_gt, b_at, agg, inc, flags, R, i_r, i_c, n_tiles, o_l,
                                       N, NP, KB, LOG, BLOCK, W, ACC, Y_DTYPE)
        if HAS_VH:
            if i_tile + BLOCK * L > T - K:  # v at the first K times: the gradient of the section's head
                i_n = T - 1 - i_tile - o_y
                b_vh = from_bits(b_vt, LOG, BLOCK)
                if not MONIC:  # v = a0 v~ (reloaded here: only a row's first K steps need it)
                    b_vh = b_vh * tl.load(p_a + i_n * s_at, mask=(i_n < K) & m_y, other=1.).to(ACC)
                tl.store(vh + i_r * s_vr + i_s * s_vs + i_n, b_vh, mask=(i_n < K) & m_y)
        if NEED_A or NEED_B:
            b_v = from_bits(b_vt, LOG, BLOCK)
            if NEED_A:
                p_da = da + i_r * s_dar + i_s * s_das
                if not MONIC:
                    # a0's gradient (lag 0) on its own: one [BLOCK, L * 4] tile of lags 0..2 at order 2
                    # spilled 104 bytes (sm_90, 8 biquads) where two tiles of 1 and 2 lags spill none
                    _sp_coefficient_grads(w + (i_s + 1) * s_ws + i_r * T, p_da, b_v, i_tile, T, 1, s_dat, 1, 1, 1, L,
                                          BLOCK, ACC, 0, True)
                    p_da += 1  # da is contiguous: unit tap stride
                _sp_coefficient_grads(w + (i_s + 1) * s_ws + i_r * T, p_da, b_v, i_tile, T, 1, s_dat, 1, N, NS, L,
                                      BLOCK, ACC, 1, True)  # lags 1..N
            if NEED_B:
                _sp_coefficient_grads(w + i_s * s_ws + i_r * T, db + i_r * s_dbr + i_s * s_dbs, b_v, i_tile, T,
                                      1, s_dbt, 1, M + 1, MS, L, BLOCK, ACC, 0, False)
        b_bt = _coefficient_tile(b + i_r * s_br + i_s * s_bs, i_tile, T, s_bt, s_bk, M + 1, KBB, LOG, BLOCK, True, 0)
        # the halo as the composed path would read v from memory: rounded to the signal's dtype
        b_gt, _, _, _ = _fir_cols(b_vt, b_bt, s1.to(Y_DTYPE).to(ACC), s2.to(Y_DTYPE).to(ACC),
                                  s3.to(Y_DTYPE).to(ACC), M, KBB, ACC, LOG)
        b_gt = b_gt.to(Y_DTYPE)
    tl.store(dx + i_r * T + (T - 1 - i_tile) - o_y, from_bits(b_gt, LOG, BLOCK), mask=m_y)


def tv_sos_applies(b: torch.Tensor, a: torch.Tensor, single_pass: bool | None = None, monic: bool = True) -> bool:
    """Whether the fused kernels run for sections ``b [Rb, T, S, M+1]``, ``a [Ra, T, S, N]`` (not
    ``monic``: ``[Ra, T, S, N+1]``, the leading coefficients first): real, ``1 <= N <= 4``,
    ``M <= min(N, 3)``, the time-varying single pass not switched off."""
    M, N = b.shape[-1] - 1, a.shape[-1] - (0 if monic else 1)
    return (not (b.is_complex() or a.is_complex()) and 1 <= N <= 4 and 0 <= M <= min(N, 3)
            and _single_pass(single_pass, "time_varying"))


def _check(op: str, x: torch.Tensor, b: torch.Tensor, a: torch.Tensor, block_size, lanes, window_tiles,
           monic: bool = True):
    """Argument checks shared by both launchers; returns ``(dtype, L)``."""
    if x.dim() != 2 or b.dim() != 4 or a.dim() != 4 or b.shape[1:3] != a.shape[1:3] or b.shape[1] != x.shape[1]:
        raise ValueError(f"{op}: expected x [R, T], b [Rb, T, S, M+1], a [Ra, T, S, N] with one T and S, got "
                         f"{tuple(x.shape)}, {tuple(b.shape)} and {tuple(a.shape)}")
    R, T = x.shape
    if b.shape[0] not in (1, R) or a.shape[0] not in (1, R):
        raise ValueError(f"{op}: expected coefficient rows 1 or R={R}, got b {tuple(b.shape)}, a {tuple(a.shape)}")
    if not tv_sos_applies(b, a, True, monic):
        taps = "N" if monic else "N+1 (a0 first)"
        raise ValueError(f"{op}: expected real sections with 1 <= N <= 4 and M <= min(N, 3), a with {taps} taps, "
                         f"got b {tuple(b.shape)}, a {tuple(a.shape)}")
    if len({x.device, b.device, a.device}) != 1:
        raise ValueError(f"{op}: expected x, b, a on one device, got {x.device}, {b.device}, {a.device}")
    dtype = torch.promote_types(torch.promote_types(x.dtype, b.dtype), a.dtype)
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{op}: expected float32 or float64, got {dtype}")
    check_tiles(op, lanes, window_tiles)
    L = single_pass_chunk(_orders(b, a, monic)[2], T, block_size)
    if not L:
        raise ValueError(f"{op}: block_size must be a power of two <= 64, got {block_size}")
    return dtype, L


def _lookback(R: int, T: int, S: int, L: int, lanes, window_tiles, acc_dtype, device):
    """``(BLOCK, n_tiles, W, agg, inc, flags)`` of a launch with ``S`` sections' look-back buffers."""
    interpret = device.type == "cpu"
    # as the time-varying single pass: 128 lanes on a GPU, 8 under the interpreter (Python scans)
    BLOCK = lanes if lanes is not None else min(8 if interpret else 128, max(2, next_pow2(cdiv(T, L))))
    n_tiles = cdiv(cdiv(T, L), BLOCK)
    W = window_tiles if window_tiles is not None else _window(n_tiles, R, cap=4 if interpret else 128)
    agg = torch.empty(S, R, n_tiles, 20, dtype=acc_dtype, device=device)
    inc = torch.empty(S, R, n_tiles, 4, dtype=acc_dtype, device=device)
    flags = torch.zeros(2 * S * R * n_tiles + 1, dtype=torch.int32, device=device)
    return BLOCK, n_tiles, W, agg, inc, flags


def _orders(b: torch.Tensor, a: torch.Tensor, monic: bool = True):
    """``(S, M, N, NP, KB, KBB)``: a tile columns per step ``2^KB`` (N padded), b's ``2^KBB``."""
    S, M, N = b.shape[2], b.shape[3] - 1, a.shape[3] - (0 if monic else 1)
    KB = 0 if N == 1 else (1 if N == 2 else 2)
    KBB = 0 if M == 0 else (1 if M == 1 else 2)
    return S, M, N, 1 << KB, KB, KBB


def _row_stride(t: torch.Tensor) -> int:
    return t.stride(0) if t.shape[0] > 1 else 0  # a shared row is read by every row


def _heads(head, R: int, S: int, T: int, dtype, device):
    """``head [R, S, K]`` (None: no head) as the kernels read it: unit stride along K, K <= T."""
    if head is None or head.shape[-1] == 0:
        return None
    if head.dim() != 3 or head.shape[:2] != (R, S):
        raise ValueError(f"tv_sos: expected head [R={R}, S={S}, K], got {tuple(head.shape)}")
    head = head[..., :T].to(device=device, dtype=dtype)
    return head if head.stride(2) == 1 else head.contiguous()


def recompute_max_registers(S: int, N: int, L: int, BLOCK: int, dtype: torch.dtype, plain: bool,
                            requested: bool | None = None) -> int | None:
    """The register cap (``maxnreg``) of the backward's recompute launch (the forward storing every
    section's input), or None. Compiled for sm_90, a cascade of 2 or more biquads (float32, 8-step
    lanes, 128 lanes, no head) took 236 registers a thread, 2 four-warp programs an SM; capped at 128
    it keeps every value in registers (S = 2 and 8, M = 1 and 2; 1824 static instructions against
    1736 at S = 8) and 4 fit (``benchmarks/results/sm90-compile-2026-11-28/``). With the float64
    carries (the default since 2026-11-29) the unnormalized cascade's 4-step lanes take 168 uncapped
    (12 warps an SM) and 128 capped, without a spill (triton 3.6.0, S = 2 and 8). One section takes
    70 uncapped, so it gets none. ``plain``: no head; ``SSM_LFILTER_REGISTER_CAP`` or ``requested``
    False: none."""
    if not (_register_cap(requested) and plain and S >= 2 and N == 2 and L in (4, 8) and BLOCK == 128
            and dtype == torch.float32):
        return None
    return 128


def _forward(x, b, a, y, sections, L, lanes, window_tiles, head=None, ends=None, register_cap=None, monic=True):
    """Launch the forward kernel into ``y`` (and ``sections``, ``ends``); arguments checked, in ``y``'s
    dtype, ``head`` from ``_heads``. ``register_cap``: whether the backward's recompute (``sections``
    stored) takes ``recompute_max_registers``' cap. ``monic``: as for ``tv_sos``."""
    R, T = x.shape
    S, M, N, NP, KB, KBB = _orders(b, a, monic)
    acc_dtype, ACC = accumulation(N, y.dtype, None)
    BLOCK, n_tiles, W, agg, inc, flags = _lookback(R, T, S, L, lanes, window_tiles, acc_dtype, x.device)
    K, KT = (0 if head is None else head.shape[2]), (0 if ends is None else ends.shape[2])
    cap = None
    if sections is not None:
        cap = recompute_max_registers(S, N, L, BLOCK, y.dtype, K == 0 and KT == 0, register_cap)
    _tv_sos_kernel[(R * n_tiles,)](
        x, b, a, y, agg, inc, flags, sections if sections is not None else y, head if K else y,
        ends if KT else y,
        R, T, n_tiles, K, KT,
        x.stride(0), x.stride(1), _row_stride(b), b.stride(2), _row_stride(a), a.stride(2), y.stride(0), R * T,
        head.stride(0) if K else 0, head.stride(1) if K else 0,
        b.stride(1), b.stride(3), a.stride(1), a.stride(3),
        S=S, M=M, N=N, NP=NP, KB=KB, KBB=KBB, LOG=L.bit_length() - 1, BLOCK=BLOCK, W=W, ACC=ACC,
        STORE_INTER=sections is not None, HAS_HEAD=K > 0, STORE_ENDS=KT > 0, MONIC=monic,
        num_warps=max(1, min(4, BLOCK // 32)), **register_cap_option(cap))
    return y


def tv_sos(x: torch.Tensor, b: torch.Tensor, a: torch.Tensor, *, head: torch.Tensor | None = None,
           ends: torch.Tensor | None = None, block_size: int | None = None,
           lanes: int | None = None, window_tiles: int | None = None,
           sections: torch.Tensor | None = None, monic: bool = True) -> torch.Tensor:
    """The cascade's output ``y [R, T]`` (see the module docstring) in one launch.

    ``head [R, S, K]``: added to section ``s``'s FIR output at its first ``K`` steps (its initial
    state: ``time_varying_sosfilt``'s ``zi`` in this form). ``ends [S, R, KT]`` (contiguous, the output
    dtype, ``KT <= T``): receives every section's last ``KT`` outputs.

    ``block_size``: steps per lane (a power of two <= 64; default as the time-varying single pass,
    16 for N <= 2). ``lanes``, ``window_tiles``: tile width and look-back window (tests force small
    ones so short signals cross many tiles). ``sections [S, R, T]`` (contiguous, the output dtype):
    also receives every section's input.

    ``monic=False``: ``a [Ra, T, S, N+1]`` holds every section's leading coefficients ``a0`` first and
    ``b`` is not divided by them: section ``s`` runs ``a0[n] w_{s+1}[n] = sum_k b[n, k] w_s[n-k] -
    sum_{k>=1} a[n, k] w_{s+1}[n-k]`` (plus its head, which stays in normalized form: added after the
    division). The kernel divides in registers (one correctly rounded reciprocal a step and section),
    so callers pass views of their raw coefficients instead of normalized copies; with ``a0 = 1`` the
    bits are those of the normalized call."""
    dtype, L = _check("tv_sos", x, b, a, block_size, lanes, window_tiles, monic)
    R, T = x.shape
    S = b.shape[2]
    if block_size is None and not monic and head is not None and head.shape[-1]:
        # compiled for sm_90 by triton 3.6.0, 8 unnormalized biquads with heads and ends spilled 64 bytes
        # a thread at 16-step lanes and none at 8 (triton 3.7.1: none at 16)
        L = min(L, 8)
    if sections is not None and (sections.shape != (S, R, T) or not sections.is_contiguous()
                                 or sections.dtype != dtype):
        raise ValueError(f"tv_sos: expected contiguous sections {(S, R, T)} {dtype}, got "
                         f"{tuple(sections.shape)} {sections.dtype}")
    KT = 0 if ends is None else ends.shape[-1]
    if ends is not None and (ends.shape != (S, R, KT) or KT > T or not ends.is_contiguous() or ends.dtype != dtype):
        raise ValueError(f"tv_sos: expected contiguous ends [S={S}, R={R}, KT <= {T}] {dtype}, got "
                         f"{tuple(ends.shape)} {ends.dtype}")
    y = torch.empty(R, T, dtype=dtype, device=x.device)
    if R == 0 or T == 0:
        return y
    if S == 0:
        return y.copy_(x)
    return _forward(to_dtype(x, dtype), to_dtype(b, dtype), to_dtype(a, dtype), y, sections, L, lanes, window_tiles,
                    _heads(head, R, S, T, dtype, x.device), ends if KT else None, monic=monic)


def tv_sos_adjoint(g: torch.Tensor, x: torch.Tensor, b: torch.Tensor, a: torch.Tensor, need_x: bool = True,
                   need_b: bool = True, need_a: bool = True, *, head: torch.Tensor | None = None,
                   g_ends: torch.Tensor | None = None, block_size: int | None = None,
                   lanes: int | None = None, window_tiles: int | None = None, register_cap: bool | None = None,
                   monic: bool = True):
    """The backward of ``y = tv_sos(x, b, a, head=head, ends=...)`` for the output gradient ``g [R, T]``
    and the gradient ``g_ends [S, R, KT]`` of every section's last ``KT`` outputs (None: none):
    ``(dx [R, T], db [R, T, S, M+1], da [R, T, S, N], dhead [R, S, K])`` per row (``None`` where not
    needed; the caller sums the coefficient gradients over rows of shared sections), in two launches:

    1. the forward kernel storing every section's input and the output, ``[S+1, R, T]`` (nothing of
       the forward is kept alive between the passes);
    2. ``_tv_sos_adjoint_kernel``: every section's adjoint, last first, with its coefficient
       gradients, each section's input gradient kept in registers as the next one's output gradient.

    Memory: ``g`` read once, the section signals written once and read twice, the coefficients read
    twice and their gradients written once, ``dx`` written once; the composed backward (one
    ``tv_adjoint`` launch and a torch FIR adjoint a section) moved each section's signals about 20
    times. ``block_size`` (default 8 steps a lane in float32 from rest, else 4, at most the
    forward's: see ``benchmarks/kernel_resources.py``), ``lanes``, ``window_tiles``: as for ``tv_sos``
    (both launches). ``register_cap``: whether the recompute launch takes ``recompute_max_registers``'
    cap (None: ``SSM_LFILTER_REGISTER_CAP``, on unless "0"). ``monic=False``: ``b`` and ``a`` unnormalized
    as for ``tv_sos``; ``db`` and ``da [R, T, S, N+1]`` are then the gradients of those, ``a0``'s in
    ``da[..., 0]``, formed in the kernel (``_tv_sos_adjoint_kernel``)."""
    dtype, L = _check("tv_sos_adjoint", x, b, a, block_size, lanes, window_tiles, monic)
    if g.shape != x.shape or g.device != x.device:
        raise ValueError(f"tv_sos_adjoint: expected g like x {tuple(x.shape)} on {x.device}, got "
                         f"{tuple(g.shape)} on {g.device}")
    R, T = x.shape
    S, M, N, NP, KB, KBB = _orders(b, a, monic)
    dtype = torch.promote_types(dtype, g.dtype)
    K = 0 if head is None else head.shape[-1]
    KT = 0 if g_ends is None else g_ends.shape[-1]
    if block_size is None:
        # sm_90, 8 biquads: 8-step lanes spilled 8 bytes a thread with float32 carries (16: 1168; the
        # float64 carries, default since 2026-11-29, spill nothing at 8); float64, heads
        # with ends (96 bytes at 8), and unnormalized cascades of 2 or more sections (96 bytes at 8,
        # for 2, 4 and 8 biquads) take 4 and spill nothing; one unnormalized section (time_varying_lfilter)
        # keeps 8 without a spill
        L = min(L, 8 if dtype == torch.float32 and not (K or KT) and (monic or S == 1) else 4)
    dx = torch.empty(R, T, dtype=dtype, device=x.device)
    db = torch.empty(R, T, S, M + 1, dtype=dtype, device=x.device) if need_b else None
    da = torch.empty(R, T, S, a.shape[3], dtype=dtype, device=x.device) if need_a else None
    dhead = torch.zeros(R, S, K, dtype=dtype, device=x.device)
    if KT and g_ends.shape != (S, R, KT):
        raise ValueError(f"tv_sos_adjoint: expected g_ends [S={S}, R={R}, KT], got {tuple(g_ends.shape)}")
    if R == 0 or T == 0 or S == 0:
        dx.copy_(g)
        return (dx if need_x else None), db, da, dhead
    g, x, b, a = (to_dtype(g, dtype), to_dtype(x, dtype), to_dtype(b, dtype), to_dtype(a, dtype))
    head = _heads(head, R, S, T, dtype, x.device)
    w = torch.empty(S + 1, R, T, dtype=dtype, device=x.device)
    _forward(x, b, a, w[S], w[:S], L, lanes, window_tiles, head, register_cap=register_cap, monic=monic)
    acc_dtype, ACC = accumulation(N, dtype, None)
    BLOCK, n_tiles, W, agg, inc, flags = _lookback(R, T, S, L, lanes, window_tiles, acc_dtype, x.device)
    db_, da_ = (db if need_b else dx[:, :, None, None]), (da if need_a else dx[:, :, None, None])
    g_ends = g_ends.to(dtype).contiguous() if KT else None
    KH = min(K, T)  # head entries past the signal's end have no effect (their gradient stays 0)
    _tv_sos_adjoint_kernel[(R * n_tiles,)](
        g, w, b, a, dx, db_, da_, agg, inc, flags, g_ends if KT else g, dhead,
        R, T, n_tiles, KH, KT,
        g.stride(0), g.stride(1), _row_stride(b), b.stride(2), _row_stride(a), a.stride(2), R * T,
        db_.stride(0), db_.stride(2), da_.stride(0), da_.stride(2), dhead.stride(0), dhead.stride(1),
        b.stride(1), b.stride(3), a.stride(1), a.stride(3), db_.stride(1), da_.stride(1),
        S=S, M=M, N=N, NP=NP, KB=KB, KBB=KBB, LOG=L.bit_length() - 1, BLOCK=BLOCK, W=W, ACC=ACC,
        NEED_B=need_b, NEED_A=need_a, HAS_ENDS=KT > 0, HAS_VH=KH > 0, MONIC=monic,
        num_warps=max(1, min(4, BLOCK // 32)))
    if not monic and need_a and KH:
        # a head enters after the division (w[n] = (fir[n] - sum_k a[n, k] w[n-k]) / a0[n] + head[n]), so
        # a0's gradient at the first KH steps is -v~[n] (w[n] - head[n]), not the kernel's -v~[n] w[n]
        v_t = dhead[..., :KH] / a[:, :KH, :, 0].transpose(1, 2)  # v~ = v / a0, (R, S, KH)
        da[:, :KH, :, 0] += (v_t * head[..., :KH]).transpose(1, 2)
    return (dx if need_x else None), db, da, dhead
