"""Short signals solved whole: a recursive filter over ``T`` samples is one unit lower-triangular
system ``(I + A) y = u`` with ``A``'s ``k``-th subdiagonal holding the ``k``-th denominator
coefficient (constant for LTI filters, per output time for time-varying ones). Forward substitution
is the recurrence itself; LAPACK runs it for all rows at once, where the blockwise engine pays a
fixed cost (block responses, carry scans, Python loops over block positions) that dominates short
calls on CPU."""
from __future__ import annotations

import torch

__all__ = ["direct_fits", "unit_lower_band", "solve_unit_lower"]


def direct_fits(T: int, R: int, Ra: int) -> bool:
    """Whether ``R`` rows of ``T`` samples with ``Ra`` distinct filters are short enough to solve
    whole. Timed on the project's CPU machine (order-3 ``lfilter``, forward and forward + backward):
    solved whole, 2-2.7x faster than blockwise up to T = 512 (R <= 8) and T = 256 (R = 64); even at
    T = 1024, R = 1, and 2.2x slower at T = 1024, R = 8, where building and solving the 8 MB matrix
    costs more than the blocks. So: T <= 512, the matrices within 8 MB, ~2M multiply-adds."""
    return T <= 512 and Ra * T * T <= 1 << 20 and R * T * T <= 1 << 22


def unit_lower_band(a: torch.Tensor, T: int) -> torch.Tensor:
    """``(Ra, T, T)``: ones on the diagonal and coefficient ``k`` on subdiagonal ``-k``, from ``a (Ra, N)``
    (constant) or ``a (Ra, T, N)`` (``a[:, n, k-1]`` at row ``n``, indexed by output time)."""
    Ra, N = a.shape[0], a.shape[-1]
    band = torch.zeros(Ra, T, T, dtype=a.dtype, device=a.device)
    band.diagonal(dim1=1, dim2=2).fill_(1.0)
    for k in range(1, min(N, T - 1) + 1):
        d = a[:, k:, k - 1] if a.dim() == 3 else a[:, k - 1 : k].expand(Ra, T - k)
        band.diagonal(-k, dim1=1, dim2=2).copy_(d)
    return band


def solve_unit_lower(band: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``y (R, T)`` with ``band[r or 0] @ y[r] = u[r]``; ``band (1 or R, T, T)``."""
    if band.shape[0] == 1:  # one filter: every row is a right-hand side of one solve
        return torch.linalg.solve_triangular(band[0], u.T, upper=False, unitriangular=True).T
    return torch.linalg.solve_triangular(band, u[:, :, None], upper=False, unitriangular=True)[..., 0]
