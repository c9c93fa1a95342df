"""Parallel prefix scans over block carries: the one scan engine every path shares.

Every blockwise path ends with a first-order recurrence over blocks, ``S[c] = M[c] S[c-1] + e[c]``
(``S[-1] = 0``), where ``S`` is a block's end state. These functions solve it in a few vectorized
steps instead of a loop over the ``C`` blocks: with a constant transfer, blocked GEMMs with the
matrix of its powers (the signal's own blockwise scheme, one level up); with a transfer per block,
a doubling (Hillis-Steele) scan over few blocks, groups run a block a step over many.
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F


def _shifted(t: torch.Tensor, d: int, dim: int) -> torch.Tensor:
    """``t`` delayed by ``d`` along ``dim`` with zeros in front: ``out[c] = t[c-d]``."""
    head = torch.zeros_like(t.narrow(dim, 0, d))
    return torch.cat([head, t.narrow(dim, 0, t.shape[dim] - d)], dim)


# A level of ``scan_constant`` runs groups of ``G`` blocks at once, through a matrix of
# ``(G*N)^2`` entries that is materialized (about 1.6 ns an entry on the project's CPU machine:
# 14 us at 64 x 64, 105 us at 256 x 256), so groups stay narrow and long scans take more levels.
_LEVEL_WIDTH = 64
_LEVEL_ENTRIES = 1 << 14  # every filter's matrix together, when each row has its own
# Up to this many state entries a float32 level solves its groups (fewest operations); beyond, it
# multiplies them by a matrix of powers, since LAPACK's triangular solve does fewer multiply-adds a
# second than its GEMM (a scan of (8, 32768) float32 biquad blocks took about twice as long by
# solves in a one-off timing on the project's CPU machine).
_SOLVE_ENTRIES = 1 << 14


def _level_kind(R: int, C: int, N: int, dtype: torch.dtype) -> str:
    """``"solves"`` or ``"powers"``. float64 (complex128) always solves: the engine works in float64
    for the filters whose corrections amplify rounding (high-order direct forms, poles near the unit
    circle), and there the GEMM's sums of large powers cancel: the float32 ``lfilter`` of
    ``cheby1(8, 1, 0.2)`` as a direct form lost 2.1e-6 relative to float64 scipy with the powers
    (and with the Brent-Kung scan before them) against 1.6e-7 with the solves, the recurrence
    itself (``benchmarks/results/cpu-2core-x86_64-2026-11-29/``). float32 runs only well-conditioned
    filters here (``engine/lti.py``, ``_amplification``), whose powers decay within a few blocks."""
    if dtype in (torch.float64, torch.complex128) or R * C * N <= _SOLVE_ENTRIES:
        return "solves"
    return "powers"


def scan_constant(M: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """Inclusive scan ``S[c] = M S[c-1] + e[c]`` with one transfer matrix for every block.

    ``M (Ra, N, N)`` with ``Ra`` 1 or ``R``; ``e (R, C, N)``. Returns ``S (R, C, N)``.

    Blocked, as the signal is: every group of ``G`` blocks of every row is run from rest at once;
    the groups' end states obey the same recurrence with transfer ``M^G`` and are scanned the same
    way, recursively; then every group is completed from its true initial state. float64 scans and
    small ones (``_level_kind``) treat a group as one unit lower-triangular system with ``-M`` on its
    block subdiagonal, solved twice (from rest, then with ``M`` times the previous group's end added
    to its first block): LAPACK's forward substitution, the recurrence itself, nothing cancels.
    Large float32 ones multiply each group by the block-Toeplitz matrix of ``M^0 .. M^(G-1)`` and
    add ``M^(c+1)`` times the initial state, two GEMMs, with the powers formed in float64.

    About fifteen torch operations a level, where the Brent-Kung scan this replaced took
    ``2 log2(C)`` vectorized steps of several operations each, which dominated short signals on
    CPU (``benchmarks/results/cpu-2core-2026-11-29-carry-scan/``). An unstable filter overflows
    here as it does in any direct evaluation.
    """
    R, C, N = e.shape
    if C <= 1:
        return e.clone()
    width = _LEVEL_WIDTH
    if M.shape[0] > 1:  # a matrix per row: keep them all within _LEVEL_ENTRIES
        width = max(2 * N, min(width, math.isqrt(_LEVEL_ENTRIES // M.shape[0])))
    # a power of two, for the squarings; pairs of blocks once a state is wider than a level (N > 64)
    G = max(2, 1 << max((width // N).bit_length() - 1, 0))
    if _level_kind(R, C, N, e.dtype) == "solves":
        return _scan_by_solves(M.to(e.dtype), e, G)
    return _scan_by_powers(M.to(torch.complex128 if M.is_complex() else torch.float64), e, G)


def _groups(e: torch.Tensor, G: int) -> torch.Tensor:
    """``e (R, C, N)`` as ``(R, ceil(C/G), G, N)``, zero-padded, a new tensor."""
    R, C, N = e.shape
    Cg = -(-C // G)
    return (torch.cat([e, e.new_zeros(R, Cg * G - C, N)], 1) if Cg * G != C else e.clone()).view(R, Cg, G, N)


def gemm(A: torch.Tensor, B: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``A (R, C, i) @ B (Rf, i, j)`` with ``Rf`` 1 (one GEMM over all rows) or ``R`` (batched);
    accumulates into ``out`` in place when given. The engine's one batched product: the LTI blocks'
    Toeplitz GEMMs (``engine/lti.py``) and the scan levels here."""
    R, C, i = A.shape
    if B.shape[0] == 1:
        if out is None:
            return (A.reshape(R * C, i) @ B[0]).view(R, C, -1)
        out.view(R * C, -1).addmm_(A.reshape(R * C, i), B[0])
        return out
    if out is None:
        return torch.bmm(A, B)
    return out.baddbmm_(A, B)


def _scan_by_solves(M: torch.Tensor, e: torch.Tensor, G: int) -> torch.Tensor:
    R, C, N = e.shape
    if C <= G:
        return _solve(_chain(M, C), e.reshape(R, 1, C * N)).view(R, C, N)
    chain = _chain(M, G)
    ep = _groups(e, G)
    Cg = ep.shape[1]
    Z = _solve(chain, ep.view(R, Cg, G * N))  # every group from rest
    MG = M
    for _ in range(G.bit_length() - 1):
        MG = torch.bmm(MG, MG)
    ends = scan_constant(MG, Z[:, :, (G - 1) * N :])  # the groups' true end states
    ep[:, 1:, 0] += gemm(ends[:, :-1], M.transpose(1, 2))  # the true initial state enters
    return _solve(chain, ep.view(R, Cg, G * N)).view(R, Cg * G, N)[:, :C]


def _scan_by_powers(M: torch.Tensor, e: torch.Tensor, G: int) -> torch.Tensor:
    R, C, N = e.shape
    if C <= G:
        return gemm(e.reshape(R, 1, C * N), _toeplitz_powers(_powers(M, C), C).to(e.dtype)).view(R, C, N)
    P = _powers(M, G + 1)
    ep = _groups(e, G)
    Cg = ep.shape[1]
    S = gemm(ep.view(R, Cg, G * N), _toeplitz_powers(P, G).to(e.dtype))  # every group from rest
    ends = scan_constant(P[:, :, G * N :], S[:, :, (G - 1) * N :])  # the groups' true end states
    # Each group after the first adds M^(c+1) times its true initial state (the previous group's
    # end): V[k, (c, i)] = M^(c+1)[i, k].
    V = P[:, :, N:].reshape(-1, N, G, N).permute(0, 3, 2, 1).reshape(-1, N, G * N).to(e.dtype)
    S[:, 1:] += gemm(ends[:, :-1], V)
    return S.view(R, Cg * G, N)[:, :C]


@functools.lru_cache(maxsize=32)
def _subdiagonal(G: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``(G, G)``, ones just below the diagonal."""
    return torch.diag(torch.ones(G - 1, dtype=dtype), -1).to(device)


def _chain(M: torch.Tensor, G: int) -> torch.Tensor:
    """``(Ra, G*N, G*N)``: ``-M`` on the block subdiagonal, zero elsewhere. With a unit diagonal
    (which ``solve_triangular(unitriangular=True)`` assumes without reading it) this is the system
    ``S[c] - M S[c-1] = e[c]`` of ``G`` blocks."""
    Ra, N, _ = M.shape
    sub = _subdiagonal(G, M.dtype, M.device)
    return (sub[None, :, None, :, None] * M[:, None, :, None, :]).reshape(Ra, G * N, G * N).neg_()


def _solve(chain: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """``S (R, c, G*N)`` solving ``chain S[r, g] = e[r, g]`` for every row and group, ``e (R, c, G*N)``."""
    R, c, W = e.shape
    if chain.shape[0] == 1:  # one filter: every row and group is a right-hand side of one solve
        S = torch.linalg.solve_triangular(chain[0], e.reshape(R * c, W).T, upper=False, unitriangular=True)
        return S.T.reshape(R, c, W)
    S = torch.linalg.solve_triangular(chain, e.transpose(1, 2), upper=False, unitriangular=True)
    return S.transpose(1, 2)


def _powers(M: torch.Tensor, n: int) -> torch.Tensor:
    """``[M^0 | M^1 | ... | M^(n-1)]`` side by side, ``(Ra, N, n*N)``, by doubling: ``M^(2^j)`` times
    every power so far is the next ``2^j`` powers, one batched product (three operations a step)."""
    Ra, N, _ = M.shape
    out = torch.cat([_eye(N, M.dtype, M.device).expand(Ra, N, N), M], -1)
    Q = M
    while out.shape[2] < n * N:
        Q = torch.bmm(Q, Q)
        out = torch.cat([out, torch.bmm(Q, out[:, :, : n * N - out.shape[2]])], -1)
    return out


@functools.lru_cache(maxsize=16)
def _eye(N: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.eye(N, dtype=dtype, device=device)


def _toeplitz_powers(P: torch.Tensor, G: int) -> torch.Tensor:
    """``W (Ra, G*N, G*N)`` with ``W[(j, k), (c, i)] = M^(c-j)[i, k]`` for ``c >= j`` and 0 above, from
    ``P = [M^0 | M^1 | ...] (Ra, N, >= G*N)``: ``e_flat @ W`` is the scan of ``G`` blocks from rest."""
    idx, above = _toeplitz_index(G, P.shape[1], P.shape[2], P.device)
    return P.reshape(P.shape[0], -1)[:, idx].masked_fill_(above, 0)


@functools.lru_cache(maxsize=64)
def _toeplitz_index(G: int, N: int, width: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices of ``_toeplitz_powers``' gather (entry ``(j, k), (c, i)`` reads ``P[i, (c-j)*N + k]``,
    row-major over ``(N, width)``) and the mask of the entries above the diagonal (``c < j``)."""
    j = torch.arange(G).view(G, 1, 1, 1)
    k = torch.arange(N).view(1, N, 1, 1)
    c = torch.arange(G).view(1, 1, G, 1)
    i = torch.arange(N).view(1, 1, 1, N)
    above = (c < j).expand(G, N, G, N)
    idx = torch.where(above, 0, i * width + (c - j) * N + k)
    return idx.reshape(G * N, G * N).to(device), above.reshape(G * N, G * N).to(device)


# Up to this many blocks scan_varying doubles (fewer operations: 64 blocks of 4 x 4 transfers took
# 0.27 ms against 0.43 blocked); beyond, groups of _VARYING_GROUP blocks.
_VARYING_DOUBLING = 64
_VARYING_GROUP = 8


def scan_varying(M: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """Inclusive scan ``S[c] = M[c] S[c-1] + e[c]`` with a transfer matrix per block.

    ``M (Ra, C, N, N)`` with ``Ra`` 1 or ``R``; ``e (R, C, N)``. Returns ``S (R, C, N)``.

    Up to ``_VARYING_DOUBLING`` blocks, a doubling (Hillis-Steele) scan of affine maps,
    ``(M2, e2) o (M1, e1) = (M2 M1, M2 e1 + e2)``: fewest operations. Beyond, blocked as
    ``scan_constant`` is: every group of ``_VARYING_GROUP`` blocks runs from rest one block a step,
    vectorized over the groups (its states and the products of its transfers so far), the groups'
    ends are scanned the same way recursively, then every block adds its group's product times the
    group's true initial state. That is ``C N^3`` multiply-adds where doubling takes ``C log2(C) N^3``
    in batched products of tiny matrices: on the project's CPU machine, 1024 blocks of 16 x 16
    transfers took 9 ms against 97, 65536 blocks of 2 x 2 22 ms against 96.
    """
    C = e.shape[1]
    if C > _VARYING_DOUBLING:
        return _scan_varying_blocked(M, e, _VARYING_GROUP)
    S, P = e, M
    d = 1
    while d < C:
        S = S + torch.einsum("rcij,rcj->rci", P.expand(S.shape[0], -1, -1, -1), _shifted(S, d, 1))
        d *= 2
        if d < C:
            # Blocks before the start act as the identity map: their shifted-in product is I.
            eye = torch.eye(P.shape[-1], dtype=P.dtype, device=P.device).expand(P.shape[0], d // 2, -1, -1)
            prev = torch.cat([eye, P[:, : C - d // 2]], 1)
            P = P @ prev
    return S


def _scan_varying_blocked(M: torch.Tensor, e: torch.Tensor, G: int) -> torch.Tensor:
    Ra, C, N, _ = M.shape
    R = e.shape[0]
    Cg = -(-C // G)
    if Cg * G != C:  # pad with identity transfers and no input: the scan passes through them
        eye = _eye(N, M.dtype, M.device).expand(Ra, Cg * G - C, N, N)
        M, e = torch.cat([M, eye], 1), F.pad(e, (0, 0, 0, Cg * G - C))
    Mg, eg = M.reshape(Ra, Cg, G, N, N), e.reshape(R, Cg, G, N)
    s, P = eg[:, :, 0], Mg[:, :, 0]
    states, products = [s], [P]
    for j in range(1, G):  # every group from rest, a block a step
        s = torch.einsum("rgij,rgj->rgi", Mg[:, :, j].expand(R, -1, -1, -1), s) + eg[:, :, j]
        P = Mg[:, :, j] @ P
        states.append(s)
        products.append(P)
    ends = scan_varying(P, s)  # the groups' true end states
    start = F.pad(ends[:, :-1], (0, 0, 1, 0))  # each group's true initial state
    S = torch.stack(states, 2) + torch.einsum("rgjik,rgk->rgji", torch.stack(products, 2).expand(R, -1, -1, -1, -1), start)
    return S.reshape(R, Cg * G, N)[:, :C]


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
