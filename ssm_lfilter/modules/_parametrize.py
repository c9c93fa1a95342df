"""Maps from unconstrained parameters to stable filter coefficients, their inverses, and guards.

- Polar biquad poles: ``r = max_radius * sigmoid(radius_logit)``, ``theta`` free, giving
  ``a1 = -2 r cos(theta)``, ``a2 = r**2``. Scaling by ``max_radius < 1`` keeps the poles strictly inside
  the unit circle even where the sigmoid rounds to 1.0 (float32 does for logits above ~17).
- Modal poles: ``lambda = exp(-(exp(nu) + min_decay) + j theta)``; ``min_decay > 0`` keeps ``|lambda| < 1``
  where ``exp(nu)`` underflows to 0.
- Direct-form guards for ``LFilter``: a differentiable penalty from reflection coefficients (zero
  exactly when every pole lies inside ``max_radius``) and a projection that pulls roots inward.
"""
from __future__ import annotations

import math

import torch


def polar_to_denominator(radius_logit: torch.Tensor, angle: torch.Tensor, max_radius: float):
    """``(...)`` logits and angles -> ``(a1, a2)`` each ``(...)``: poles ``r e^{+-j theta}``, ``r < max_radius``."""
    r = max_radius * torch.sigmoid(radius_logit)
    return -2.0 * r * torch.cos(angle), r * r


def denominator_to_polar(a1: torch.Tensor, a2: torch.Tensor, max_radius: float, what: str = "sos"):
    """Inverse of :func:`polar_to_denominator` for complex-conjugate (or double real) pole pairs.

    Raises ``ValueError`` for distinct real poles, which the polar form cannot hold, and for poles at or
    beyond ``max_radius``.
    """
    a1 = a1.detach().to(torch.float64)
    a2 = a2.detach().to(torch.float64)
    disc = a1 * a1 - 4.0 * a2
    real_pair = disc > 1e-9 * torch.clamp(a1 * a1, min=1.0)
    if bool(real_pair.any()):
        idx = tuple(int(i) for i in torch.nonzero(real_pair)[0])
        raise ValueError(
            f"expected complex-conjugate pole pairs in every section of {what} for parametrization='polar', "
            f"got distinct real poles at index {idx} (a1={float(a1[idx]):.6g}, a2={float(a2[idx]):.6g}); "
            "use parametrization='coefficients' for such sections"
        )
    r = torch.sqrt(torch.clamp(a2, min=0.0))
    if bool((r >= max_radius).any()):
        raise ValueError(
            f"expected pole radii < max_radius={max_radius} in {what}, got {float(r.max()):.6g}; "
            "pass a larger max_radius (still < 1)"
        )
    r = torch.clamp(r, min=1e-12)
    angle = torch.acos(torch.clamp(-a1 / (2.0 * r), -1.0, 1.0))
    ratio = r / max_radius
    return torch.log(ratio) - torch.log1p(-ratio), angle


def modal_poles(nu: torch.Tensor, angle: torch.Tensor, min_decay: float) -> torch.Tensor:
    """Complex poles ``exp(-(exp(nu) + min_decay)) e^{j angle}``, strictly inside the unit circle."""
    radius = torch.exp(-(torch.exp(nu) + min_decay))
    return torch.polar(radius, angle)


def reflection_coefficients(a: torch.Tensor) -> torch.Tensor:
    """Step-down (Schur-Cohn) recursion: ``a (..., N+1)`` monic -> ``k (..., N)``.

    The poles lie strictly inside the unit circle iff every ``|k| < 1``. Denominators ``1 - k**2`` are kept
    away from 0 so the recursion stays finite (and differentiable) for unstable polynomials too.
    """
    cur = a[..., 1:] / a[..., :1]
    ks = []
    for m in range(cur.shape[-1], 0, -1):
        k = cur[..., m - 1]
        ks.append(k)
        if m == 1:
            break
        denom = 1.0 - k * k
        denom = torch.where(denom.abs() < 1e-6, torch.full_like(denom, 1e-6), denom)
        head = cur[..., : m - 1]
        cur = (head - k[..., None] * head.flip(-1)) / denom[..., None]
    if not ks:
        return a.new_zeros(*a.shape[:-1], 0)
    return torch.stack(ks[::-1], dim=-1)


def stability_penalty(a: torch.Tensor, max_radius: float) -> torch.Tensor:
    """Scalar penalty, 0 exactly when every root of ``a (..., N+1)`` has radius < ``max_radius``.

    Scaling ``a_i`` by ``max_radius**-i`` maps poles at radius ``max_radius`` onto the unit circle.
    """
    # in float64 (differentiably): in float32 the step-down recursion rounded a stable order-4
    # denominator's reflection coefficients past 1 (a penalty of 2e-6 right after project_())
    a64 = a.to(torch.float64)
    scale = max_radius ** -torch.arange(a.shape[-1], device=a.device, dtype=torch.float64)
    k = reflection_coefficients(a64 * scale)
    return torch.relu(k.abs() - 1.0).square().sum().to(a.dtype)


def _roots(a64: torch.Tensor) -> torch.Tensor:
    """Roots of monic ``a64 (..., N+1)`` (float64) via the companion matrix."""
    n = a64.shape[-1] - 1
    comp = torch.zeros(*a64.shape[:-1], n, n, dtype=torch.float64, device=a64.device)
    comp[..., 0, :] = -a64[..., 1:]
    if n > 1:
        idx = torch.arange(n - 1, device=a64.device)
        comp[..., idx + 1, idx] = 1.0
    return torch.linalg.eigvals(comp)


def _poly(roots: torch.Tensor) -> torch.Tensor:
    """Monic real polynomial ``prod (1 - p_i z^-1)`` from conjugate-closed ``roots (..., N)``."""
    poly = torch.ones(*roots.shape[:-1], 1, dtype=roots.dtype, device=roots.device)
    for i in range(roots.shape[-1]):
        p = roots[..., i : i + 1]
        poly = torch.cat([poly, torch.zeros_like(p)], -1) - p * torch.cat([torch.zeros_like(p), poly], -1)
    return poly.real


def project_denominator(a: torch.Tensor, max_radius: float) -> torch.Tensor:
    """Roots of ``a (..., N+1)`` with radius above ``max_radius`` are pulled in onto it (angle kept).

    Returns the monic real polynomial ``(..., N+1)`` in ``a.dtype``, not differentiable. Repeated roots are
    ill-conditioned, so rounding to float32 can push them back out by ~sqrt(eps): the target radius is
    lowered until the rounded polynomial's roots really lie within ``max_radius``.
    """
    if a.shape[-1] == 1:
        return torch.ones_like(a)
    a64 = a.detach().to(torch.float64)
    monic = a64 / a64[..., :1]
    roots = _roots(monic)
    radius = roots.abs()
    # each filter its own target (one lowered for a filter whose rounding pushed its roots out must
    # not move another's); a filter with no root beyond max_radius is returned as it was
    target = torch.full(radius.shape[:-1], max_radius, dtype=torch.float64, device=a.device)
    for _ in range(20):
        moved = torch.where(radius > target[..., None], roots * (target[..., None] / radius), roots)
        out = _poly(moved).to(a.dtype)
        worst = _roots(out.to(torch.float64)).abs().amax(-1)
        if not bool((worst > max_radius).any()):
            break
        target = torch.where(worst > max_radius, target - (worst - max_radius + 1e-7), target)
    inside = (radius <= max_radius).all(-1, keepdim=True)
    return torch.where(inside, monic.to(a.dtype), out)


def logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)
