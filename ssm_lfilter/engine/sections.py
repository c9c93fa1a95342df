"""High-order direct forms realised internally as second-order sections (the torch engine).

A blockwise scan carries a direct form's state as its last ``N`` outputs. For poles clustered near
the unit circle that basis is very non-normal: the block transfer of ``butter(4, 0.005)`` has
entries near 1e4 and its powers norms near 1e10, so the carries cancel catastrophically (float64
results off by 1e2 to 1e38 relative beyond one block, where scipy's sequential loop loses 5e-10),
and ``cheby1(12, 1, 0.3)`` lost 1.7e-4. A cascade of biquads (scipy's advice for high orders, and
the design notes') keeps every stage's state well scaled:

- ``allpole_sections``: the denominator's roots, found in float64 as the eigenvalues of its
  companion matrix (LAPACK returns a conjugate pair as adjacent entries), paired into real biquads
  (an odd order's last real root with a zero root). No gradient flows through them: the op's
  backward needs only ``x``, ``y`` and the adjoint, which is filtered the same way.
- ``refine``: the sections' product is the denominator up to one rounding of its coefficients,
  which the clustered poles amplify (``butter(5, 0.01)``: 1.2e-7 relative, like scipy's own
  ``tf2sos`` + ``sosfilt`` at 3.4e-8). One step of iterative refinement on the direct form's own
  residual ``r = A y - (B x + head)`` (an FIR, exact up to roundings of ``y``'s size) brings float64
  results to scipy's level (1.6e-9 there); ``engine/lti.py`` takes it for float64 data.
"""
from __future__ import annotations

import torch

__all__ = ["allpole_sections", "refine"]

# a conjugate pair must rebuild real coefficients to this relative accuracy, else no sections
_PAIR_TOL = 1e-9


def allpole_sections(a: torch.Tensor) -> torch.Tensor | None:
    """``a (Ra, N)`` real (the normalized denominator's ``a_1 .. a_N``) as ``(Ra, ceil(N/2), 2)``
    biquad denominators ``(a_1, a_2)`` whose product is ``1 + sum_k a_k z^-k`` up to rounding, in
    float64. ``None`` if the roots did not pair into real sections (not seen; the caller keeps the
    direct form then)."""
    Ra, N = a.shape
    a = a.to(torch.float64)
    comp = a.new_zeros(Ra, N, N)
    comp[:, 0] = -a
    comp[:, 1:, :-1] = torch.eye(N - 1, dtype=a.dtype, device=a.device)
    r = torch.linalg.eigvals(comp)  # (Ra, N) complex128
    # conjugate pairs first (a stable sort keeps each pair adjacent), then the real roots
    order = torch.sort((r.imag == 0).to(torch.int8), dim=1, stable=True).indices
    r = torch.gather(r, 1, order)
    if N % 2:
        r = torch.cat([r, r.new_zeros(Ra, 1)], 1)
    r1, r2 = r[:, 0::2], r[:, 1::2]
    s, p = -(r1 + r2), r1 * r2
    scale = 1.0 + r1.abs() * (1.0 + r2.abs()) + r2.abs()
    if float(((s.imag.abs() + p.imag.abs()) / scale).max()) > _PAIR_TOL:
        return None
    # poles nearest the unit circle last, as scipy's zpk2sos orders them: the loudest resonances
    # are not amplified again by the stages after them
    by_radius = torch.maximum(r1.abs(), r2.abs()).argsort(dim=1)
    return torch.gather(torch.stack([s.real, p.real], -1), 1, by_radius[..., None].expand(-1, -1, 2))


def refine(x: torch.Tensor, b: torch.Tensor, a: torch.Tensor, head: torch.Tensor, y: torch.Tensor,
           allpole) -> torch.Tensor:
    """One step of iterative refinement of ``y`` for ``A y = B x + head`` (``x, y (R, T)`` in the
    work precision, ``b (Rb, M+1)``, ``a (Ra, N)``, ``head (R, K)``): ``y - allpole(r)`` with the
    residual ``r = A y - B x - head``, where ``allpole(r)`` solves ``A d = r`` approximately (the
    same realisation that gave ``y``)."""
    from .lti import fir  # engine/lti.py imports this module

    R, T = y.shape
    K = min(head.shape[1], T)
    ones = a.new_ones(a.shape[0], 1)
    r = fir(torch.cat([ones, a], 1).to(y.dtype), y)
    r -= fir(b.to(y.dtype), x)
    if K:
        r[:, :K] -= head[:, :K].to(y.dtype)
    return y - allpole(r)
