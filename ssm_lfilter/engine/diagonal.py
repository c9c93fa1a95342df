"""Blockwise first-order (diagonal) linear recurrence in vectorized torch.

``h[t] = a[t] h[t-1] + u[t]`` (real or complex), in blocks of ``L``:

1. inside every block, a doubling scan over the ``L`` positions gives the zero-state response
   ``h_loc`` and the running products ``P[t] = a[t] ... a[block start]``;
2. ``scan_scalar`` carries block end values across blocks;
3. ``h = h_loc + P * (end value of the previous block)``.

There is no cancellation here (``P`` is a product of the decays), so float32 stays float32.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .scan import scan_scalar

__all__ = ["diagonal"]

BLOCK = 64


def _local_scan(a: torch.Tensor, u: torch.Tensor):
    """Doubling scan along the last dim of ``(h, P)`` pairs: returns ``h_loc``, ``P``."""
    L = u.shape[-1]
    h, P = u, a.expand_as(u) if a.shape != u.shape else a
    d = 1
    while d < L:
        h = h + P * F.pad(h[..., : L - d], (d, 0))
        P = P * torch.cat([torch.ones_like(P[..., :d]), P[..., : L - d]], -1)
        d *= 2
    return h, P


def diagonal(a: torch.Tensor, u: torch.Tensor, reverse: bool = False, L: int | None = None) -> torch.Tensor:
    """``a (Ra, Ta)`` with ``Ra`` in {1, R} and ``Ta`` in {1, T}; ``u (R, T)``. Returns ``h (R, T)``."""
    R, T = u.shape
    dt = torch.promote_types(a.dtype, u.dtype)
    a, u = a.to(dt), u.to(dt)
    if T == 0:
        return u.clone()
    if reverse:
        return diagonal(a.flip(-1), u.flip(-1), False, L).flip(-1)
    L = L or BLOCK
    C = -(-T // L)
    pad = C * L - T
    Ub = F.pad(u, (0, pad)).view(R, C, L)
    Ab = a.expand(a.shape[0], T) if a.shape[1] == 1 and T > 1 else a
    Ab = F.pad(Ab, (0, pad), value=1.0).view(a.shape[0], C, L)
    h, P = _local_scan(Ab, Ub)
    if C > 1:
        H = scan_scalar(P[..., -1], h[..., -1])  # true end value of every block
        H_prev = F.pad(H[:, :-1], (1, 0))
        h = h + P * H_prev[..., None]
    return h.reshape(R, C * L)[:, :T]
