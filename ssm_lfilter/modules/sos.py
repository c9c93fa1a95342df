"""``SOSFilter``: a learnable cascade of biquads, stable by construction with ``parametrization='polar'``."""
from __future__ import annotations

import math

import torch
from torch import nn

from .._checks import exact_tensor
from ..filtering import sosfilt
from . import _parametrize as P
from ._checks import check_channels, check_positive_int, check_radius, check_signal, check_state_shape
from ._response import frequency_grid, sos_response

__all__ = ["SOSFilter"]

PARAMETRIZATIONS = ("polar", "coefficients")


class SOSFilter(nn.Module):
    r"""Learnable cascade of ``n_sections`` second-order sections, ``y = sosfilt(sos, x)``.

    Parametrizations (per section, each with a leading ``(C,)`` when ``channels=C``):
        * ``'polar'`` (default): poles ``r e^{+-j theta}`` with ``r = max_radius * sigmoid(radius_logit)``
          and ``theta = angle`` free, so every pole stays strictly inside the unit circle for every
          parameter value. The numerator ``(b0, b1, b2)`` (zeros and gain) is free.
          It holds complex-conjugate (or double real) pole pairs; distinct real poles need
          ``'coefficients'``.
        * ``'coefficients'``: free ``numerator (S, 3)`` and ``denominator (S, 2) = (a1, a2)``, ``a0 = 1``;
          no stability guarantee.

    Default initialisation: polar poles at radius 0.8 with angles spread over ``(0, pi)``; coefficient
    sections start as the identity. Use :meth:`from_sos` to start from a design.

    Shapes: ``x (..., T)`` or ``(..., C, T)`` -> same shape. Streaming state: scipy's ``zi``,
    ``(n_sections, ..., 2)``. Runs on any device the parameters are on.

    >>> import torch
    >>> layer = SOSFilter(2)
    >>> x = torch.randn(4, 1, 256)
    >>> layer(x).shape
    torch.Size([4, 1, 256])
    >>> bool((layer.poles().abs() < 1).all())
    True
    """

    def __init__(self, n_sections: int, channels: int | None = None, parametrization: str = "polar",
                 max_radius: float = 0.9999):
        super().__init__()
        self.n_sections = check_positive_int(n_sections, "n_sections", "SOSFilter")
        self.channels = check_channels(channels, "SOSFilter")
        if parametrization not in PARAMETRIZATIONS:
            raise ValueError(f"SOSFilter: expected parametrization in {PARAMETRIZATIONS}, got {parametrization!r}")
        self.parametrization = parametrization
        self.max_radius = check_radius(max_radius, "SOSFilter")
        lead = () if channels is None else (channels,)
        numerator = torch.zeros(*lead, n_sections, 3)
        numerator[..., 0] = 1.0
        self.numerator = nn.Parameter(numerator)
        if parametrization == "polar":
            radius = 0.8 * self.max_radius if self.max_radius > 0.8 else 0.5 * self.max_radius
            angle = (torch.arange(n_sections) + 0.5) * (math.pi / n_sections)
            self.radius_logit = nn.Parameter(torch.full((*lead, n_sections), P.logit(radius / self.max_radius)))
            self.angle = nn.Parameter(angle.expand(*lead, n_sections).clone())
        else:
            self.denominator = nn.Parameter(torch.zeros(*lead, n_sections, 2))

    @classmethod
    def from_sos(cls, sos, parametrization: str = "polar", max_radius: float = 0.9999,
                 dtype: torch.dtype | None = None) -> "SOSFilter":
        """Start from a design, e.g. ``scipy.signal.butter(4, 0.2, output='sos')``.

        ``sos (n_sections, 6)`` gives a shared filter; ``(C, n_sections, 6)`` one filter per channel.
        Sections are normalized by ``a0``. With ``'polar'`` every section must have complex-conjugate
        poles inside ``max_radius`` (``ValueError`` otherwise). Parameters get ``dtype`` (default: torch's
        default dtype); the conversion runs in float64 so ``dtype=torch.float64`` keeps the design exact.
        """
        sos = exact_tensor(sos).detach()  # a list in float64, as scipy designs it
        if sos.dim() not in (2, 3) or sos.shape[-1] != 6 or sos.shape[-2] < 1:
            raise ValueError(
                f"SOSFilter.from_sos: expected sos of shape (n_sections, 6) or (C, n_sections, 6), "
                f"got {tuple(sos.shape)}"
            )
        if sos.is_complex():
            raise TypeError("SOSFilter.from_sos: expected real sos, got a complex tensor")
        sos = sos.to(torch.float64)
        if bool((sos[..., 3] == 0).any()):
            raise ValueError("SOSFilter.from_sos: expected sos[..., 3] (a0) != 0, got 0")
        sos = sos / sos[..., 3:4]
        channels = sos.shape[0] if sos.dim() == 3 else None
        layer = cls(sos.shape[-2], channels=channels, parametrization=parametrization, max_radius=max_radius)
        if dtype is not None:
            layer = layer.to(dtype)
        dtype = layer.numerator.dtype
        with torch.no_grad():
            layer.numerator.copy_(sos[..., :3].to(dtype))
            if parametrization == "polar":
                logit, angle = P.denominator_to_polar(sos[..., 4], sos[..., 5], layer.max_radius)
                layer.radius_logit.copy_(logit.to(dtype))
                layer.angle.copy_(angle.to(dtype))
            else:
                layer.denominator.copy_(sos[..., 4:].to(dtype))
        return layer

    def denominators(self) -> torch.Tensor:
        """``(..., n_sections, 2)``: ``(a1, a2)`` of each section."""
        if self.parametrization == "polar":
            a1, a2 = P.polar_to_denominator(self.radius_logit, self.angle, self.max_radius)
            return torch.stack([a1, a2], dim=-1)
        return self.denominator

    @property
    def sos(self) -> torch.Tensor:
        """``(..., n_sections, 6)`` in scipy's layout ``[b0, b1, b2, 1, a1, a2]``, differentiable."""
        den = self.denominators()
        return torch.cat([self.numerator, torch.ones_like(den[..., :1]), den], dim=-1)

    def poles(self) -> torch.Tensor:
        """``(..., n_sections, 2)`` complex poles (roots of ``z**2 + a1 z + a2``)."""
        den = self.denominators()
        a1, a2 = den[..., 0].to(torch.complex128), den[..., 1].to(torch.complex128)
        root = torch.sqrt(a1 * a1 - 4 * a2)
        return torch.stack([(-a1 + root) / 2, (-a1 - root) / 2], dim=-1)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None, return_state: bool = False):
        """``x (..., T)`` (``(..., C, T)`` with channels) -> ``y``, or ``(y, state)`` with ``return_state``.

        ``state (n_sections, ..., 2)`` from a previous call continues the signal; ``None`` starts from rest.
        """
        check_signal(x, self.channels, "SOSFilter")
        sos = self.sos
        if state is None and not return_state:
            return sosfilt(sos, x)
        expected = (self.n_sections, *torch.broadcast_shapes(x.shape[:-1], sos.shape[:-2]), 2)
        if state is None:
            state = x.new_zeros(expected, dtype=torch.promote_types(x.dtype, sos.dtype))
        check_state_shape(state, expected, "SOSFilter")
        y, zf = sosfilt(sos, x, zi=state)
        return (y, zf) if return_state else y

    def frequency_response(self, worN=512):
        """``(w (W,), h (..., W))``, complex, differentiable; ``worN`` as in ``scipy.signal.sosfreqz``."""
        w = frequency_grid(worN, device=self.numerator.device, dtype=self.numerator.dtype)
        return w, sos_response(self.sos, w)

    def extra_repr(self) -> str:
        return (f"n_sections={self.n_sections}, channels={self.channels}, "
                f"parametrization={self.parametrization!r}, max_radius={self.max_radius}")
