"""Launcher for the backward of the time-varying all-pole filter (orders 1 <= N <= 16), fused.

For ``z = time_varying(u, a)`` (``z[n] = u[n] - sum_k a[n, k-1] z[n-k]``) and the output gradient
``g``, the backward is

    v[n]       = g[n] - sum_{k=1..N} a[n+k, k-1] v[n+k]     (du = v: the same recurrence, reversed)
    da[n, k-1] = -v[n] z[n-k]

The composed backward (``ssm_lfilter.ops``) flips ``g``, builds the skewed coefficients
``a[n+k, k-1]`` as a new ``[T, N]`` tensor, runs the filter, flips ``v`` back and builds ``N`` delayed
copies of ``z`` for ``da``: about 29 passes over ``T`` samples at ``N = 2`` where the backward needs 7
(read ``g``, ``a``, ``z``, write ``du``, ``da``), and at order 16 three more ``[R, T, 16]`` tensors
(the skewed ``a``, the delayed ``z`` and their product) beyond the ``da`` it returns. Here:

- Orders 1 <= N <= 4 with a power-of-two chunk (the single-pass default): the single-pass kernel of
  ``time_varying.py`` runs with ``ADJOINT``, in one launch: it reads ``g`` and writes ``v`` at reversed
  addresses, loads its ``a`` tile skewed (lag ``k`` from ``k`` steps later), and forms ``da`` from the
  ``v`` tile in registers and a skewed tile of ``z``.
- Every other order up to 16 (and the single pass switched off): the multi-pass kernels of
  ``time_varying.py`` (chunk maps, the scan over chunks, every chunk re-run) in reversed time:
  ``g``, ``v`` and ``z`` addressed from their last sample with negated time strides, ``a`` through
  skewed strides (``_adjoint_strides``, no copy), and the last pass writes ``da`` from each stored
  ``v`` and the ``z`` it loads.

Either way the same operations run in the same order as the composed path on the same kernels (the
skew only moves where a coefficient is read from), so the two agree to the last bit.

CUDA tensors, or CPU tensors under ``TRITON_INTERPRET=1``; real dtypes. Deterministic (the
single pass's look-back uses only integer atomics; the passes none).
"""
from __future__ import annotations

import torch

from .._checks import to_dtype
from ._lookback import check_tiles
from .time_varying import MAX_ORDER, run_passes

__all__ = ["time_varying_adjoint", "tv_adjoint_applies"]


def tv_adjoint_applies(a: torch.Tensor) -> bool:
    """Whether ``time_varying_adjoint`` runs for coefficients ``a [Ra, T, N]``: real, ``1 <= N <= 16``."""
    return not a.is_complex() and 1 <= a.shape[-1] <= MAX_ORDER


def time_varying_adjoint(g: torch.Tensor, a: torch.Tensor, z: torch.Tensor, need_a: bool = True, *,
                         block_size: int | None = None, accumulate_fp64: bool | None = None,
                         single_pass: bool | None = None, coalesced: bool | None = None,
                         lanes: int | None = None, window_tiles: int | None = None,
                         clock: torch.Tensor | None = None, register_cap: bool | None = None):
    """``(du [R, T], da [R, T, N] or None)``: the backward of ``z = time_varying(u, a)`` for the output
    gradient ``g``, per row (the caller sums ``da`` over rows where ``a`` has one). ``g, z [R, T]``,
    ``a [Ra, T, N]`` with ``tv_adjoint_applies(a)``; ``need_a=False`` skips ``da``. ``block_size``,
    ``accumulate_fp64``, ``single_pass``, ``coalesced``, ``lanes``, ``window_tiles``, ``clock``: as for
    ``time_varying`` (the single pass where it would run there, else the passes; ``clock`` only with the
    single pass). ``register_cap``: whether a single-pass launch takes the register cap of
    ``time_varying.adjoint_max_registers`` (None: ``SSM_LFILTER_REGISTER_CAP``, on unless "0")."""
    if g.dim() != 2 or a.dim() != 3 or z.shape != g.shape:
        raise ValueError(f"time_varying_adjoint: expected g [R, T], a [Ra, T, N], z [R, T], got "
                         f"{tuple(g.shape)}, {tuple(a.shape)} and {tuple(z.shape)}")
    R, T = g.shape
    Ra, Ta, N = a.shape
    if Ra not in (1, R) or Ta != T:
        raise ValueError(f"time_varying_adjoint: a {tuple(a.shape)} does not match [1 or R, T, N] for g {tuple(g.shape)}")
    if not tv_adjoint_applies(a):
        raise ValueError(f"time_varying_adjoint: expected real a with 1 <= N <= {MAX_ORDER}, got a {tuple(a.shape)} "
                         f"{a.dtype}")
    if block_size is not None and block_size < 1:
        raise ValueError(f"time_varying_adjoint: block_size must be positive, got {block_size}")
    check_tiles("time_varying_adjoint", lanes, window_tiles)
    dtype = torch.promote_types(g.dtype, a.dtype)
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"time_varying_adjoint: expected float32 or float64, got {dtype}")
    du = torch.empty(R, T, dtype=dtype, device=g.device)
    # every element is written by the kernels (tests/test_outputs_written.py): no zero-fill pass
    da = torch.empty(R, T, N, dtype=dtype, device=g.device) if need_a else None
    if R == 0 or T == 0:
        return du, da
    g, z = to_dtype(g, dtype), to_dtype(z, dtype)
    z = z if z.stride(1) == 1 or T <= 1 else z.contiguous()  # the single pass adds int32 in-tile offsets to z
    a = to_dtype(a, dtype).expand(R, T, N)
    # the forward's dispatch, accumulation and chunk lengths, so the two agree to the last bit
    run_passes("time_varying_adjoint", g, a, du, block_size, accumulate_fp64, single_pass, coalesced, lanes,
               window_tiles, clock, register_cap, z=z, da=da)
    return du, da
