"""Frequency responses of the layers, evaluated on a grid of normalized frequencies.

The layers hold coefficients with leading channel dims ``(C, ...)``; scipy's ``freqz`` layout puts the
coefficient axis first instead, so the layers evaluate their polynomials here, batched, differentiably.
"""
from __future__ import annotations

import math

import torch

from .._checks import exact_tensor, is_int_like


def frequency_grid(worN, device=None, dtype=torch.float64) -> torch.Tensor:
    """``worN`` int: ``worN`` frequencies in ``[0, pi)`` (scipy's ``whole=False`` grid);
    a tensor/sequence: those frequencies in rad/sample. Returns ``w (W,)``."""
    if isinstance(worN, bool):
        raise TypeError(f"expected worN to be an int or a 1-D tensor of frequencies, got {worN!r}")
    if is_int_like(worN):  # numpy and 0-d tensor integers too, as in freqz
        worN = int(worN)
        if worN < 1:
            raise ValueError(f"expected worN >= 1, got {worN}")
        return torch.arange(worN, device=device, dtype=dtype) * (math.pi / worN)
    w = exact_tensor(worN).to(device)
    if w.dim() != 1 or w.is_complex():
        raise ValueError(f"expected worN to be an int or a 1-D real tensor, got shape {tuple(w.shape)}")
    return w.to(dtype)


def polynomial_response(coeffs: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``sum_k coeffs[..., k] exp(-j w k)``: ``coeffs (..., K+1)``, ``w (W,)`` -> ``(..., W)`` complex."""
    k = torch.arange(coeffs.shape[-1], device=w.device, dtype=w.dtype)
    basis = torch.polar(torch.ones_like(w[:, None] * k), -w[:, None] * k)  # (W, K+1)
    ctype = torch.promote_types(basis.dtype, coeffs.dtype)
    return coeffs.to(ctype) @ basis.to(ctype).transpose(0, 1)


def rational_response(b: torch.Tensor, a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``B(e^{jw}) / A(e^{jw})`` with ``b (..., M+1)``, ``a (..., N+1)`` -> ``(..., W)``."""
    return polynomial_response(b, w) / polynomial_response(a, w)


def sos_response(sos: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Product of the section responses: ``sos (..., S, 6)`` -> ``(..., W)``."""
    return rational_response(sos[..., :3], sos[..., 3:], w).prod(dim=-2)
