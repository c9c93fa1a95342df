"""``ModalFilter``: a diagonal complex state-space layer (S4D/LRU-style) on ``linear_recurrence``."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..filtering import linear_recurrence
from . import _parametrize as P
from ._checks import check_positive_int, check_signal, check_state_shape
from ._response import frequency_grid

__all__ = ["ModalFilter"]


class ModalFilter(nn.Module):
    r"""Diagonal linear state-space layer with complex modes, stable by construction.

    For input ``x (..., C_in, T)`` and ``n_modes`` states ``h_k``::

        h_k[t] = lambda_k h_k[t-1] + sum_c B[k, c] x[c, t]
        y[o, t] = Re(sum_k C[o, k] h_k[t]) + sum_c D[o, c] x[c, t]

    with ``lambda_k = exp(-(exp(nu_k) + min_decay)) e^{j angle_k}``: ``|lambda_k| < 1`` for every parameter
    value (``min_decay > 0`` keeps that true where ``exp(nu)`` underflows). ``B``/``C`` are complex, stored as
    real and imaginary parameters (so DDP and optimizers see real tensors); ``D`` is a real skip term.

    Initialisation (LRU): radii uniform in ``[r_min, r_max]``, angles uniform in ``[0, max_phase]``,
    ``B`` scaled by ``sqrt(1 - |lambda|**2)`` so each state starts with unit-order variance.

    Args:
        in_channels: ``C_in``, channels of ``x``.
        n_modes: number of complex modes (states).
        out_channels: ``C_out`` (default ``in_channels``).
        skip: learn the direct term ``D`` (default True).

    Shapes: ``x (..., C_in, T)`` -> ``y (..., C_out, T)``; streaming state ``(..., n_modes)`` complex.
    Runs on any device the parameters are on.

    >>> import torch
    >>> layer = ModalFilter(2, 8)
    >>> x = torch.randn(3, 2, 500)
    >>> y, h = layer(x[..., :300], return_state=True)
    >>> y2 = layer(x[..., 300:], state=h)
    >>> torch.allclose(torch.cat([y, y2], -1), layer(x), atol=1e-4)
    True
    """

    def __init__(self, in_channels: int, n_modes: int, out_channels: int | None = None, *,
                 r_min: float = 0.9, r_max: float = 0.999, max_phase: float = math.pi,
                 min_decay: float = 1e-6, skip: bool = True):
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels", "ModalFilter")
        self.n_modes = check_positive_int(n_modes, "n_modes", "ModalFilter")
        out_channels = in_channels if out_channels is None else out_channels
        self.out_channels = check_positive_int(out_channels, "out_channels", "ModalFilter")
        if not 0.0 < r_min <= r_max < 1.0:
            raise ValueError(f"ModalFilter: expected 0 < r_min <= r_max < 1, got r_min={r_min}, r_max={r_max}")
        if not min_decay > 0.0:
            raise ValueError(f"ModalFilter: expected min_decay > 0, got {min_decay}")
        self.min_decay = float(min_decay)
        self.r_min, self.r_max, self.max_phase = float(r_min), float(r_max), float(max_phase)
        # Radii uniform on the ring r_min <= |lambda| <= r_max, as in LRU.
        u = torch.rand(n_modes)
        radius = torch.sqrt(u * (r_max**2 - r_min**2) + r_min**2)
        decay = torch.clamp(-torch.log(radius) - self.min_decay, min=1e-12)
        self.nu = nn.Parameter(torch.log(decay))
        self.angle = nn.Parameter(torch.rand(n_modes) * max_phase)
        gamma = torch.sqrt(1.0 - radius**2)[:, None]
        scale_b = gamma / math.sqrt(2 * in_channels)
        self.B_re = nn.Parameter(torch.randn(n_modes, in_channels) * scale_b)
        self.B_im = nn.Parameter(torch.randn(n_modes, in_channels) * scale_b)
        scale_c = 1.0 / math.sqrt(n_modes)
        self.C_re = nn.Parameter(torch.randn(out_channels, n_modes) * scale_c)
        self.C_im = nn.Parameter(torch.randn(out_channels, n_modes) * scale_c)
        self.skip = bool(skip)
        self.D = nn.Parameter(torch.randn(out_channels, in_channels) / math.sqrt(in_channels)) if skip else None

    def poles(self) -> torch.Tensor:
        """``(n_modes,)`` complex poles, all strictly inside the unit circle."""
        return P.modal_poles(self.nu, self.angle, self.min_decay)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None, return_state: bool = False):
        """``x (..., C_in, T)`` -> ``y (..., C_out, T)``, or ``(y, state)`` with ``return_state``.

        ``state (..., n_modes)`` complex, the last hidden state of a previous call; ``None`` starts from rest.
        """
        check_signal(x, self.in_channels, "ModalFilter")
        if x.is_complex():
            raise TypeError(f"ModalFilter: expected a real x, got {x.dtype}")
        lam = self.poles()
        B = torch.complex(self.B_re, self.B_im)
        C = torch.complex(self.C_re, self.C_im)
        u = torch.einsum("kc,...ct->...kt", B, x.to(B.dtype))
        if state is not None:
            check_state_shape(state, (*x.shape[:-2], self.n_modes), "ModalFilter")
            state = state.to(u.dtype)
        h = linear_recurrence(lam[:, None], u, h0=state)
        y = torch.einsum("ok,...kt->...ot", C, h).real
        if self.D is not None:
            y = y + torch.einsum("oc,...ct->...ot", self.D, x.to(self.D.dtype))
        if not return_state:
            return y
        if h.shape[-1] > 0:
            last = h[..., -1]
        else:
            last = state if state is not None else u.new_zeros(*x.shape[:-2], self.n_modes)
        return y, last

    def frequency_response(self, worN=512):
        """``(w (W,), h (C_out, C_in, W))``, complex, differentiable.

        The output keeps the real part of a complex filter, so each mode contributes
        ``(G(z) + conj-coefficient G(z)) / 2`` with ``G = C B / (1 - lambda z^-1)``.
        """
        w = frequency_grid(worN, device=self.nu.device, dtype=self.nu.dtype)
        lam = self.poles()
        B = torch.complex(self.B_re, self.B_im)
        C = torch.complex(self.C_re, self.C_im)
        zinv = torch.polar(torch.ones_like(w), -w)  # (W,)
        g = C[:, :, None] * B[None, :, :]  # (C_out, K, C_in)
        pos = 1.0 / (1.0 - lam[:, None] * zinv)  # (K, W)
        neg = 1.0 / (1.0 - lam.conj()[:, None] * zinv)
        h = 0.5 * (torch.einsum("okc,kw->ocw", g, pos) + torch.einsum("okc,kw->ocw", g.conj(), neg))
        if self.D is not None:
            h = h + self.D[:, :, None].to(h.dtype)
        return w, h

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, n_modes={self.n_modes}, out_channels={self.out_channels}, "
                f"r_min={self.r_min}, r_max={self.r_max}, skip={self.skip}")
