"""Parallel prefix scans over block carries: the one scan engine every path shares.

Every blockwise path ends with a first-order recurrence over blocks, ``S[c] = M[c] S[c-1] + e[c]``
(``S[-1] = 0``), where ``S`` is a block's end state. These functions solve it with a doubling
(Hillis-Steele) scan: ``log2(C)`` vectorized steps instead of a loop over the ``C`` blocks.
"""
from __future__ import annotations

import torch


def _shifted(t: torch.Tensor, d: int, dim: int) -> torch.Tensor:
    """``t`` delayed by ``d`` along ``dim`` with zeros in front: ``out[c] = t[c-d]``."""
    head = torch.zeros_like(t.narrow(dim, 0, d))
    return torch.cat([head, t.narrow(dim, 0, t.shape[dim] - d)], dim)


def scan_constant(M: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """Inclusive scan ``S[c] = M S[c-1] + e[c]`` with one transfer matrix for every block.

    ``M (Ra, N, N)`` with ``Ra`` 1 or ``R``; ``e (R, C, N)``. Returns ``S (R, C, N)``.
    After the step with stride ``d``, ``S[c]`` holds the sum over the window ``c-2d < j <= c`` of
    ``M^(c-j) e[j]``; ``M^d`` is squared alongside. The powers decay for a stable filter, so nothing
    grows; an unstable filter overflows here as it does in any direct evaluation.
    """
    C = e.shape[1]
    S = e
    P = M
    d = 1
    while d < C:
        # (Ra, N, N) x (R, C, N): written as a broadcast multiply-sum, measured faster than small matmuls.
        S = S + (P[:, None, :, :] * _shifted(S, d, 1)[:, :, None, :]).sum(-1)
        d *= 2
        if d < C:
            P = P @ P
    return S


def scan_varying(M: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """Inclusive scan ``S[c] = M[c] S[c-1] + e[c]`` with a transfer matrix per block.

    ``M (Ra, C, N, N)`` with ``Ra`` 1 or ``R``; ``e (R, C, N)``. Returns ``S (R, C, N)``.
    Pairs ``(M, e)`` combine as affine maps: ``(M2, e2) o (M1, e1) = (M2 M1, M2 e1 + e2)``.
    """
    C = e.shape[1]
    S, P = e, M
    d = 1
    while d < C:
        S = S + (P * _shifted(S, d, 1)[:, :, None, :]).sum(-1)
        d *= 2
        if d < C:
            # Blocks before the start act as the identity map: their shifted-in product is I.
            eye = torch.eye(P.shape[-1], dtype=P.dtype, device=P.device).expand(P.shape[0], d // 2, -1, -1)
            prev = torch.cat([eye, P[:, : C - d // 2]], 1)
            P = P @ prev
    return S


def scan_scalar(m: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """Inclusive scan ``S[..., c] = m[..., c] S[..., c-1] + e[..., c]`` along the last dim, elementwise.

    ``m`` broadcasts against ``e``; real or complex.
    """
    C = e.shape[-1]
    S, P = e, m.expand_as(e) if m.shape != e.shape else m
    d = 1
    while d < C:
        S = S + P * _shifted(S, d, -1)
        d *= 2
        if d < C:
            one = torch.ones_like(P[..., : d // 2])
            P = P * torch.cat([one, P[..., : C - d // 2]], -1)
    return S
