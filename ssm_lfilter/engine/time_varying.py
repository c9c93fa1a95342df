"""Blockwise time-varying all-pole filtering in vectorized torch.

``y[n] = u[n] - sum_{k=1..N} a[n, k-1] y[n-k]``, three passes over blocks of ``L`` samples:

1. every block, in parallel: its zero-state end state ``e[c]`` and its transfer matrix ``Phi[c]``
   (how its end state depends on its initial state: the product of its companion matrices);
2. ``scan_varying`` combines ``S[c] = Phi[c] S[c-1] + e[c]`` over blocks;
3. every block is re-run from its true initial state ``S[c-1]``, writing ``y``.

Passes 1 and 3 loop over the ``L`` positions of a block, each step vectorized over all blocks and
rows: the Python loop count is ``L``, independent of the signal length. Re-running (instead of
adding ``G S`` correction factors) keeps the float32 error at the level of a sequential recurrence.
"""
from __future__ import annotations

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
    """Whether every entry is finite, from one reduction: the sum of the tensors' sums is NaN or
    infinite if any entry is (a huge finite sum that overflows only costs the exact path)."""
    total = sum(t.sum() for t in tensors if t.numel())
    return not isinstance(total, torch.Tensor) or bool(torch.isfinite(total))


def allpole_tv(u: torch.Tensor, a: torch.Tensor, L: int | None = None) -> torch.Tensor:
    """``u (R, T)``, ``a (Ra, T, N)`` with ``Ra`` 1 or ``R``. Returns ``y (R, T)`` in ``u``'s dtype."""
    R, T = u.shape
    Ra, _, N = a.shape
    if N == 0 or T == 0:
        return u.clone()
    if L is None and u.device.type == "cpu" and direct_fits(T, R, Ra) and all_finite(u, a):
        # A short signal solved whole (engine/_solve.py), in float64: subdiagonal k holds a[n, k-1]
        # at row n. Finite data only: a NaN or Inf reaches later samples through the matrix's zeros
        # as 0 * inf, which the blocks below keep out as scipy does.
        wd = torch.complex128 if (u.is_complex() or a.is_complex()) else torch.float64
        return solve_unit_lower(unit_lower_band(a.to(wd), T), u.to(wd)).to(u.dtype)
    L = max(L or block_size(T, N), N)
    C = -(-T // L)
    Ub = _blocks(u, L, C)  # (L, R, C)
    Ab = _blocks(a.to(u.dtype), L, C).flip(-1)  # (L, Ra, C, N), reversed: multiplies [y[n-N], ..., y[n-1]]

    # Pass 1: zero-state run of every block, and the transfer of N unit initial states.
    win = torch.zeros(R, C, N, dtype=u.dtype, device=u.device)  # [y[n-N], ..., y[n-1]]
    # phi[..., j, :] = the same window for the experiment whose only nonzero past output is y[-1-j].
    phi = torch.zeros(Ra, C, N, N, dtype=u.dtype, device=u.device)
    phi[:, :, torch.arange(N), N - 1 - torch.arange(N)] = 1.0
    for t in range(L):
        y = Ub[t] - (Ab[t] * win).sum(-1)
        win = torch.cat([win[..., 1:], y[..., None]], -1)
        yp = -(Ab[t][:, :, None, :] * phi).sum(-1)
        phi = torch.cat([phi[..., 1:], yp[..., None]], -1)
    E = win.flip(-1)  # end state (y[L-1], ..., y[L-N]) of each block from rest
    Phi = phi.flip(-1).transpose(-1, -2)  # Phi[i, j]: end-state entry i per unit initial y[-1-j]

    # Pass 2: true end states, then each block's true initial state.
    S = scan_varying(Phi, E)
    S_prev = F.pad(S[:, :-1], (0, 0, 1, 0))

    # Pass 3: re-run every block from its true initial state.
    win = S_prev.flip(-1).contiguous()
    out = torch.empty(L, R, C, dtype=u.dtype, device=u.device)
    for t in range(L):
        y = Ub[t] - (Ab[t] * win).sum(-1)
        out[t] = y
        win = torch.cat([win[..., 1:], y[..., None]], -1)
    return out.movedim(0, 2).reshape(R, C * L)[:, :T]
