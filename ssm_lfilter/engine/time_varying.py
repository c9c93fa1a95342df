"""Blockwise time-varying all-pole filtering in vectorized torch.

``y[n] = u[n] - sum_{k=1..N} a[n, k-1] y[n-k]``, three passes over blocks of ``L`` samples:

1. every block, in parallel: its zero-state end state ``e[c]`` and its transfer matrix ``Phi[c]``
   (how its end state depends on its initial state: the product of its companion matrices);
2. ``scan_varying`` combines ``S[c] = Phi[c] S[c-1] + e[c]`` over blocks;
3. every block is re-run from its true initial state ``S[c-1]``, writing ``y``.

Passes 1 and 3 loop over the ``L`` positions of a block, each step ``N`` multiply-adds over whole
(rows, blocks) planes: the Python loop count is ``L``, independent of the signal length. Passes 1
and 2 run in float64 (complex128): the transfers of a direct form's companion matrices cancel when
applied to a nearly collinear state (poles near the unit circle at low angles), and in float32 the
carries lost 1.5e-2 relative where a sequential float32 recurrence loses 4e-5. Pass 3 runs in the
data's precision from the true states rounded once; re-running (instead of adding ``G S``
correction factors) then keeps the error at the level of a sequential recurrence or below
(``tests/test_engine_paths.py``, hard mode).
"""
from __future__ import annotations

import cmath

import torch
import torch.nn.functional as F

from ._solve import direct_fits, solve_unit_lower, unit_lower_band
from .scan import scan_varying

__all__ = ["allpole_tv", "block_size"]


def block_size(T: int, order: int) -> int:
    """Blocks of at least the order; longer signals take longer blocks so the scan's ``N^3`` work
    per block stays small next to the ``N^2`` work per sample of pass 1."""
    L = 16
    while L < 256 and (T // L) > 1024:
        L *= 2
    return max(L, order, 1)


def _blocks(t: torch.Tensor, L: int, C: int) -> torch.Tensor:
    """``(R, T, ...)`` -> ``(L, R, C, ...)``: block position first, so each step reads one slab."""
    T = t.shape[1]
    pad = [0, 0] * (t.dim() - 2) + [0, C * L - T]
    t = F.pad(t, pad).view(t.shape[0], C, L, *t.shape[2:])
    return t.movedim(2, 0).contiguous()


def all_finite(*tensors: torch.Tensor) -> bool:
    """Whether every entry is finite: the sum of the tensors' sums is NaN or infinite if any entry is
    (a huge finite sum that overflows only costs the exact path). On CPU each sum is read back as a
    Python number (a (1, 4096) signal and two coefficient rows: 12 us, where adding the sums as
    tensors and testing the total took 38); elsewhere one read-back for all."""
    present = [t for t in tensors if t.numel()]
    if all(t.device.type == "cpu" for t in present):
        return cmath.isfinite(sum(t.sum().item() for t in present))
    return bool(torch.isfinite(sum(t.sum() for t in present)))


# Above this peak block transfer (the largest row sum of |Phi|) float64 data takes a refinement step:
# the carries of direct forms with clustered poles cancel (held constant over 3000 samples,
# cheby1(8, 1, 0.2): 7.1e-5 relative, refined 9.0e-10; butter(4, 0.05): 1.1e-9, refined 7.6e-14;
# butter(2, 0.001), peak 32: 4.6e-10; scipy's loop 1.1e-11, 2.3e-13 and 2.1e-13). A resonance at
# radius 0.95 has a peak of 3, at 0.99 near angle 0.05 of 25. Where the first pass is off by O(1)
# (butter(4, 0.005)) a step cannot help: time_varying_sosfilt is the well-conditioned form
# (README, "Numerics").
REFINE_MIN_TRANSFER = 16.0


def allpole_tv(u: torch.Tensor, a: torch.Tensor, L: int | None = None) -> torch.Tensor:
    """``u (R, T)``, ``a (Ra, T, N)`` with ``Ra`` 1 or ``R``. Returns ``y (R, T)`` in ``u``'s dtype."""
    y, peak = _allpole_tv(u, a, L)
    # (finite results only: inf - inf in the residual would turn scipy's infinities into NaN)
    if peak > REFINE_MIN_TRANSFER and u.dtype in (torch.float64, torch.complex128) and all_finite(y):
        # one step of iterative refinement on the recurrence's own residual
        # r[n] = y[n] + sum_k a[n, k-1] y[n-k] - u[n]
        r = y - u
        for k in range(1, min(a.shape[2], u.shape[1] - 1) + 1):
            r[:, k:].addcmul_(a[:, k:, k - 1].to(y.dtype), y[:, :-k])
        y = y - _allpole_tv(r, a, L)[0]
    return y


def _allpole_tv(u: torch.Tensor, a: torch.Tensor, L: int | None) -> tuple[torch.Tensor, float]:
    """``allpole_tv`` without refinement; also the peak block transfer (0 without a scan), read back
    only for float64 data."""
    R, T = u.shape
    Ra, _, N = a.shape
    if N == 0 or T == 0:
        return u.clone(), 0.0
    if L is None and u.device.type == "cpu" and direct_fits(T, R, Ra) and all_finite(u, a):
        # A short signal solved whole (engine/_solve.py), in float64: subdiagonal k holds a[n, k-1]
        # at row n. Finite data only: a NaN or Inf reaches later samples through the matrix's zeros
        # as 0 * inf, which the blocks below keep out as scipy does.
        wd = torch.complex128 if (u.is_complex() or a.is_complex()) else torch.float64
        return solve_unit_lower(unit_lower_band(a.to(wd), T), u.to(wd)).to(u.dtype), 0.0
    L = max(L or block_size(T, N), N)
    C = -(-T // L)
    Ub = _blocks(u, L, C)  # (L, R, C)
    # (L, N, Ra, C): the coefficient of lag k at step t is one contiguous slab, so a step is N
    # multiply-adds over whole (rows, blocks) planes; reductions over a last dim of N elements
    # (the window form this replaced) cost several times more a step on CPU.
    Ab = _blocks(a.to(u.dtype), L, C).permute(0, 3, 1, 2).contiguous()

    S_prev, peak = None, 0.0
    if C > 1:
        # Passes 1 and 2 in float64 (complex128): in float32 the blocks' transfers and the scan
        # over hundreds of blocks lost 1.5e-2 relative with poles drifting near radius 0.9995
        # (a sequential float32 recurrence: 4e-5). The carried states are rounded once.
        hi = torch.complex128 if u.is_complex() else torch.float64
        Uh, Ah = Ub.to(hi), Ab.to(hi)
        # Pass 1: zero-state run of every block (window ws[k] = y[t-1-k]), and the N experiments
        # whose only nonzero past output is y[-1-j] (we[k][j], one plane per experiment).
        ws = [Uh.new_zeros(R, C) for _ in range(N)]
        we = [Uh.new_zeros(N, Ra, C) for _ in range(N)]
        for k in range(N):
            we[k][k] = 1.0
        for t in range(L):
            A = Ah[t]
            y = torch.addcmul(Uh[t], A[0], ws[0], value=-1)
            ye = A[0] * we[0]
            for k in range(1, N):
                y.addcmul_(A[k], ws[k], value=-1)
                ye.addcmul_(A[k], we[k])
            ws = [y] + ws[:-1]
            we = [ye.neg_()] + we[:-1]
        E = torch.stack(ws, -1)  # (R, C, N): end state (y[L-1], ..., y[L-N]) of each block from rest
        # (Ra, C, N, N): [i, j] entry i per unit y[-1-j]; contiguous, for the scan's batched products
        Phi = torch.stack(we, 0).permute(2, 3, 0, 1).contiguous()
        if u.dtype in (torch.float64, torch.complex128):
            peak = Phi.abs().sum(-1).max().item()

        # Pass 2: true end states, then each block's true initial state.
        S = scan_varying(Phi, E)
        S_prev = F.pad(S[:, :-1], (0, 0, 1, 0)).to(u.dtype)

    # Pass 3: re-run every block from its true initial state.
    ws = [u.new_zeros(R, C)] * N if S_prev is None else list(S_prev.unbind(-1))
    out = torch.empty(L, R, C, dtype=u.dtype, device=u.device)
    for t in range(L):
        A, y = Ab[t], out[t]
        torch.addcmul(Ub[t], A[0], ws[0], value=-1, out=y)
        for k in range(1, N):
            y.addcmul_(A[k], ws[k], value=-1)
        ws = [y] + ws[:-1]
    return out.movedim(0, 2).reshape(R, C * L)[:, :T], peak
