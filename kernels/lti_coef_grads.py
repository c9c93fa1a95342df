"""Triton kernel for the LTI filter's coefficient gradients: every lagged dot product in one pass.

With ``v`` the adjoint (``dL/du``), ``x`` the input and ``y`` the output of the direct form I
(``a`` normalized), the gradients before the ``a0`` chain rule are

    db[r, k] =  sum_n v[r, n] x[r, n-k]      k = 0..M
    da[r, k] = -sum_n v[r, n] y[r, n-k-1]    k = 0..N-1

(``x`` and ``y`` zero at negative times). The torch path computes one ``vecdot`` per lag, which
reads ``v`` and a shifted copy of ``x`` or ``y`` once per lag (and may materialize the product).
Here one program loads a block of ``BT`` samples of ``v``, ``x`` and ``y`` and forms every lag's
partial sum at once: the shifted reads of ``x`` and ``y`` come from L1/L2, so ``v``, ``x`` and ``y``
cross DRAM once. Partial sums are float64, stored per (row, block); the launcher adds them with
``torch.sum`` in a fixed order: deterministic, no float atomics. Program ids and offsets are int64.

Shapes: ``v, x, y [R, T]`` (any strides, float32/float64; float16/bfloat16 are read as float32),
returns ``(db [R, n_b], da [R, n_a])`` in ``v``'s dtype (real dtypes only). CUDA tensors, or CPU
tensors under ``TRITON_INTERPRET=1``.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from ._host import cdiv, next_pow2

__all__ = ["lti_coef_grads"]


@triton.jit
def _lagged_block_sums(b_v, p_z, o_t, m_t, s_zt, T, LAG0: tl.constexpr, NK: tl.constexpr, KP: tl.constexpr,
                       REVERSE: tl.constexpr):
    """``sum_n v[n] z[n - LAG0 - k]`` over the block, for k < NK (a [KP] float64 vector);
    ``z[n + LAG0 + k]`` when ``REVERSE`` (the filter ran backwards in time)."""
    o_k = tl.arange(0, KP)
    if REVERSE:
        i_n = o_t[:, None] + LAG0 + o_k[None, :]
        m = m_t[:, None] & (i_n < T) & (o_k[None, :] < NK)
    else:
        i_n = o_t[:, None] - LAG0 - o_k[None, :]
        m = m_t[:, None] & (i_n >= 0) & (o_k[None, :] < NK)
    b_z = tl.load(p_z + i_n * s_zt, mask=m, other=0.0).to(tl.float64)
    return tl.sum(b_v[:, None] * b_z, axis=0)


@triton.jit
def _lti_coef_grads_kernel(
    v, x, y, part, T, NB,
    s_vr, s_vt, s_xr, s_xt, s_yr, s_yt,
    NBK: tl.constexpr, NAK: tl.constexpr, KPB: tl.constexpr, KPA: tl.constexpr, BT: tl.constexpr,
    REVERSE: tl.constexpr,
):
    # part[r, blk, :NBK] = block sums of v x[n-k]; part[r, blk, NBK:] = block sums of v y[n-1-k]
    i_p = tl.program_id(0).to(tl.int64)
    i_r = i_p // NB
    i_b = i_p % NB
    o_t = i_b * BT + tl.arange(0, BT).to(tl.int64)
    m_t = o_t < T
    b_v = tl.load(v + i_r * s_vr + o_t * s_vt, mask=m_t, other=0.0).to(tl.float64)
    p_out = part + (i_r * NB + i_b) * (NBK + NAK)
    if NBK > 0:
        o_k = tl.arange(0, KPB)
        tl.store(p_out + o_k, _lagged_block_sums(b_v, x + i_r * s_xr, o_t, m_t, s_xt, T, 0, NBK, KPB, REVERSE),
                 mask=o_k < NBK)
    if NAK > 0:
        o_k = tl.arange(0, KPA)
        tl.store(p_out + NBK + o_k, _lagged_block_sums(b_v, y + i_r * s_yr, o_t, m_t, s_yt, T, 1, NAK, KPA, REVERSE),
                 mask=o_k < NAK)


def lti_coef_grads(v: torch.Tensor, x: torch.Tensor, y: torch.Tensor, n_b: int, n_a: int, *,
                   reverse: bool = False, block: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(db [R, n_b], da [R, n_a])`` per row (see the module docstring; ``da`` carries the minus
    sign). ``reverse``: the filter ran backwards in time, so the lags look ahead: ``x[n+k]``,
    ``y[n+1+k]``. ``block``: samples per program (a power of two; default 2048, tests use small ones)."""
    if v.dim() != 2 or x.shape != v.shape or y.shape != v.shape:
        raise ValueError(f"lti_coef_grads: expected v, x, y of one shape [R, T], got {tuple(v.shape)}, "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
    if n_b < 0 or n_a < 0:
        raise ValueError(f"lti_coef_grads: expected n_b, n_a >= 0, got {n_b} and {n_a}")
    for name, t in (("v", v), ("x", x), ("y", y)):
        if not t.is_floating_point():
            raise TypeError(f"lti_coef_grads: expected a real floating `{name}`, got {t.dtype}")
    if not (v.device == x.device == y.device):
        raise ValueError(f"lti_coef_grads: expected v, x, y on one device, got {v.device}, {x.device}, {y.device}")
    R, T = v.shape
    out_dtype = v.dtype
    BT = block if block is not None else min(2048, max(16, next_pow2(T)))
    if BT < 1 or BT & (BT - 1):
        raise ValueError(f"lti_coef_grads: expected block to be a power of two, got {BT}")
    NB = cdiv(T, BT)
    if R == 0 or T == 0 or n_b + n_a == 0:
        return v.new_zeros(R, n_b), v.new_zeros(R, n_a)
    part = torch.empty(R, NB, n_b + n_a, dtype=torch.float64, device=v.device)
    KPB = next_pow2(max(n_b, 1))
    KPA = next_pow2(max(n_a, 1))
    num_warps = max(1, min(8, BT * max(KPB, KPA) // 1024))
    _lti_coef_grads_kernel[(R * NB,)](
        v, x, y, part, T, NB,
        v.stride(0), v.stride(1), x.stride(0), x.stride(1), y.stride(0), y.stride(1),
        NBK=n_b, NAK=n_a, KPB=KPB, KPA=KPA, BT=BT, REVERSE=bool(reverse), num_warps=num_warps)
    sums = part.sum(1)  # a fixed-order reduction over blocks
    return sums[:, :n_b].to(out_dtype), (-sums[:, n_b:]).to(out_dtype)
