"""``LFilter``: a learnable direct-form IIR filter ``b (M+1)`` / ``a (N+1)``, one per channel or shared."""
from __future__ import annotations

import torch
from torch import nn

from ..filtering import lfilter
from . import _parametrize as P
from ._checks import check_channels, check_positive_int, check_radius, check_signal, check_state_shape
from ._response import frequency_grid, rational_response

__all__ = ["LFilter"]


def _initial_coefficients(value, order: int, lead: tuple, name: str) -> torch.Tensor:
    """Identity ``[1, 0, ..., 0]`` when ``value`` is None, else ``value`` broadcast to ``lead + (order+1,)``."""
    if value is None:
        out = torch.zeros(*lead, order + 1)
        out[..., 0] = 1.0
        return out
    t = torch.as_tensor(value, dtype=torch.get_default_dtype()).detach().clone()
    if t.dim() == 0 or t.shape[-1] != order + 1:
        raise ValueError(f"LFilter: expected {name} with last dim {order + 1}, got shape {tuple(t.shape)}")
    try:
        return t.expand(*lead, order + 1).clone()
    except RuntimeError:
        raise ValueError(
            f"LFilter: expected {name} of shape (..., {order + 1}) broadcastable to {lead + (order + 1,)}, "
            f"got {tuple(t.shape)}"
        ) from None


class LFilter(nn.Module):
    r"""Learnable IIR filter in direct form, ``y = lfilter(b, a, x)``.

    Parameters ``b (M+1,)`` and ``a_tail (N,)`` (``a = [1, *a_tail]``; ``a0`` is fixed at 1 because it only
    rescales), each with a leading ``(C,)`` when ``channels=C``.

    Args:
        b_order: numerator order ``M >= 0``.
        a_order: denominator order ``N >= 0``.
        channels: ``None`` shares one filter across every row of ``x (..., T)``; ``C`` filters each channel
            of ``x (..., C, T)`` with its own coefficients.
        b, a: initial coefficients (``(M+1,)``/``(N+1,)`` or per channel ``(C, ·)``), normalized by
            ``a[..., 0]``. Default: the identity filter ``b = a = [1, 0, ...]``.
        max_radius: pole radius used by the stability guard.

    Stability guard (direct-form coefficients can become unstable during training; pick one):
        * penalty: add ``weight * layer.stability_penalty()`` to the loss. It is differentiable and 0
          exactly when every pole has radius ``< max_radius`` (Schur-Cohn reflection coefficients).
        * projection: call ``layer.project_()`` after each ``optimizer.step()``; it pulls roots beyond
          ``max_radius`` back onto that radius, keeping their angles.
        For stability by construction use :class:`SOSFilter` with ``parametrization='polar'``.

    Shapes: ``x (..., T)`` or ``(..., C, T)`` -> ``y`` of the same shape. Streaming state: ``zi`` in scipy's
    TDF-II layout, ``(..., max(M, N))``. Runs on any device the parameters are on.

    >>> import torch
    >>> layer = LFilter(2, 2, b=[0.2, 0.4, 0.2], a=[1.0, -0.5, 0.25])
    >>> x = torch.randn(3, 100)
    >>> y, state = layer(x[:, :60], return_state=True)
    >>> y2 = layer(x[:, 60:], state=state)
    >>> torch.allclose(torch.cat([y, y2], -1), layer(x), atol=1e-5)
    True
    """

    def __init__(self, b_order: int, a_order: int, channels: int | None = None, b=None, a=None,
                 max_radius: float = 0.999):
        super().__init__()
        self.b_order = check_positive_int(b_order, "b_order", "LFilter", minimum=0)
        self.a_order = check_positive_int(a_order, "a_order", "LFilter", minimum=0)
        self.channels = check_channels(channels, "LFilter")
        self.max_radius = check_radius(max_radius, "LFilter")
        lead = () if channels is None else (channels,)
        b0 = _initial_coefficients(b, b_order, lead, "b")
        a0 = _initial_coefficients(a, a_order, lead, "a")
        if bool((a0[..., 0] == 0).any()):
            raise ValueError("LFilter: expected a[..., 0] != 0 (it normalizes the filter), got 0")
        self.b = nn.Parameter(b0 / a0[..., :1])
        self.a_tail = nn.Parameter(a0[..., 1:] / a0[..., :1])

    @property
    def order(self) -> int:
        """Length ``K = max(M, N)`` of the streaming state."""
        return max(self.b_order, self.a_order)

    @property
    def a(self) -> torch.Tensor:
        """Denominator ``(..., N+1)`` with ``a[..., 0] = 1``."""
        return torch.cat([self.a_tail.new_ones(*self.a_tail.shape[:-1], 1), self.a_tail], dim=-1)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None, return_state: bool = False):
        """``x (..., T)`` (``(..., C, T)`` with channels) -> ``y``, or ``(y, state)`` with ``return_state``.

        ``state (..., K)`` from a previous call continues the signal; ``None`` starts from rest.
        """
        check_signal(x, self.channels, "LFilter")
        if state is None and not return_state:
            return lfilter(self.b, self.a, x)
        expected = (*torch.broadcast_shapes(x.shape[:-1], self.b.shape[:-1]), self.order)
        if state is None:
            state = x.new_zeros(expected, dtype=torch.promote_types(x.dtype, self.b.dtype))
        check_state_shape(state, expected, "LFilter")
        y, zf = lfilter(self.b, self.a, x, zi=state)
        return (y, zf) if return_state else y

    def frequency_response(self, worN=512):
        """``(w (W,), h (..., W))``, complex, differentiable; ``worN`` as in ``scipy.signal.freqz``."""
        w = frequency_grid(worN, device=self.b.device, dtype=self.b.dtype)
        return w, rational_response(self.b, self.a, w)

    def stability_penalty(self) -> torch.Tensor:
        """Differentiable scalar, 0 when every pole lies strictly inside ``max_radius``."""
        return P.stability_penalty(self.a, self.max_radius)

    @torch.no_grad()
    def project_(self) -> "LFilter":
        """Pull poles beyond ``max_radius`` onto it (in place); call after ``optimizer.step()``."""
        self.a_tail.copy_(P.project_denominator(self.a, self.max_radius)[..., 1:])
        return self

    def extra_repr(self) -> str:
        return (f"b_order={self.b_order}, a_order={self.a_order}, channels={self.channels}, "
                f"max_radius={self.max_radius}")
