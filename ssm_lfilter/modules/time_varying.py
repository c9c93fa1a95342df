"""Time-varying biquad cascades whose coefficients come from the caller or from a conditioning signal."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ..filtering import time_varying_sosfilt
from . import _parametrize as P
from ._checks import check_channels, check_positive_int, check_radius, check_signal, check_state_shape
from ._interpolate import interpolate_frames
from ._response import frequency_grid, sos_response

__all__ = ["TimeVaryingState", "TimeVaryingSOSFilter", "ConditionedSOSFilter"]


class TimeVaryingState(NamedTuple):
    """Streaming state of a time-varying layer.

    ``zi (n_sections, ..., 4)``: per section ``[x[-1], x[-2], y[-1], y[-2]]``.
    ``frame (..., n_sections, 6)``: the last control frame, the start of the next interpolation ramp
    (``None`` for sample-rate coefficients).
    """

    zi: torch.Tensor
    frame: torch.Tensor | None


def _as_state(state, layer: str) -> "TimeVaryingState | None":
    """``state`` as a ``TimeVaryingState`` (a plain ``(zi, frame)`` pair is accepted), else a TypeError."""
    if state is None or isinstance(state, TimeVaryingState):
        return state
    if isinstance(state, tuple) and len(state) == 2:
        return TimeVaryingState(*state)
    raise TypeError(f"{layer}: expected state to be a TimeVaryingState (zi, frame) from return_state=True, "
                    f"got {type(state).__name__}")


class TimeVaryingSOSFilter(nn.Module):
    r"""Cascade of biquads with coefficients that change over time, given per call (no parameters).

    ``forward(x, sos)`` filters ``x (..., T)`` with ``sos (..., F, n_sections, 6)`` (scipy layout per
    frame, normalized by ``a0`` per sample); ``sos`` batch dims broadcast against ``x.shape[:-1]``.

    * ``hop_length=None``: sample-rate coefficients, ``F == T``.
    * ``hop_length=H``: frame-rate control, ``F * H == T``; each hop ramps linearly from the previous
      frame to its own (see ``_interpolate``), so frames set at a control rate (DDSP-style) give smooth
      sample-rate coefficients. Chunked streaming matches one call when chunks hold whole frames.

    Shapes: ``x (B, C, T)`` with ``sos (B, C, F, S, 6)`` or ``(B, 1, F, S, 6)``, or any ``(..., T)``.
    Runs on the device of ``x`` and ``sos``.

    >>> import torch
    >>> layer = TimeVaryingSOSFilter(1, hop_length=64)
    >>> sos = torch.tensor([1.0, 0.0, 0.0, 1.0, -0.5, 0.1]).expand(2, 4, 1, 6)
    >>> layer(torch.randn(2, 256), sos).shape
    torch.Size([2, 256])
    """

    def __init__(self, n_sections: int, hop_length: int | None = None):
        super().__init__()
        self.n_sections = check_positive_int(n_sections, "n_sections", "TimeVaryingSOSFilter")
        self.hop_length = None if hop_length is None else check_positive_int(
            hop_length, "hop_length", "TimeVaryingSOSFilter")

    def _check_sos(self, x: torch.Tensor, sos: torch.Tensor) -> None:
        name = type(self).__name__
        if not isinstance(sos, torch.Tensor):
            raise TypeError(f"{name}: expected sos to be a torch.Tensor, got {type(sos).__name__}")
        if sos.dim() < 3 or tuple(sos.shape[-2:]) != (self.n_sections, 6):
            raise ValueError(f"{name}: expected sos of shape (..., F, {self.n_sections}, 6), got {tuple(sos.shape)}")
        frames, T = sos.shape[-3], x.shape[-1]
        hop = self.hop_length or 1
        if frames * hop != T:
            what = "F == T" if self.hop_length is None else f"F * hop_length ({hop}) == T"
            raise ValueError(f"{name}: expected {what} for x with T={T}, got sos with F={frames} frames")

    def forward(self, x: torch.Tensor, sos: torch.Tensor, state: TimeVaryingState | None = None,
                return_state: bool = False):
        """``x (..., T)``, ``sos (..., F, n_sections, 6)`` -> ``y (broadcast batch, T)``, or
        ``(y, TimeVaryingState)`` with ``return_state``."""
        check_signal(x, None, type(self).__name__)
        self._check_sos(x, sos)
        state = _as_state(state, type(self).__name__)
        previous = None if state is None else state.frame
        coeffs = sos if self.hop_length is None else interpolate_frames(sos, self.hop_length, previous)
        if state is None and not return_state:
            return time_varying_sosfilt(coeffs, x)
        batch = torch.broadcast_shapes(x.shape[:-1], sos.shape[:-3])
        expected = (self.n_sections, *batch, 4)
        if state is None:
            zi = x.new_zeros(expected, dtype=torch.promote_types(x.dtype, sos.dtype))
        else:
            zi = state.zi
            check_state_shape(zi, expected, type(self).__name__, name="state.zi")
        y, zf = time_varying_sosfilt(coeffs, x, zi=zi)
        if not return_state:
            return y
        frame = None
        if self.hop_length is not None:
            frame = sos[..., -1, :, :] if sos.shape[-3] > 0 else previous
        return y, TimeVaryingState(zf, frame)

    def frequency_response(self, worN=512, sos: torch.Tensor | None = None):
        """Frozen-time response of each frame: ``sos (..., F, S, 6)`` -> ``(w (W,), h (..., F, W))``."""
        if sos is None:
            raise ValueError(f"{type(self).__name__}.frequency_response: expected sos (..., F, S, 6), got None")
        w = frequency_grid(worN, device=sos.device, dtype=sos.dtype if sos.is_floating_point() else torch.float64)
        return w, sos_response(sos, w)

    def extra_repr(self) -> str:
        return f"n_sections={self.n_sections}, hop_length={self.hop_length}"


class ConditionedSOSFilter(nn.Module):
    r"""Time-varying biquad cascade driven by a frame-rate conditioning signal (learnable mapping).

    A pointwise network (``Conv1d`` of kernel 1, optionally with one ``tanh`` hidden layer) maps
    ``cond (B, D, F)`` to per-frame polar parameters of every section: pole radius
    ``max_radius * sigmoid(.)`` and angle (so every frame is stable), and a free numerator. The
    coefficients are interpolated to sample rate (hop ``hop_length``) and applied with
    ``time_varying_sosfilt``.

    Args:
        cond_channels: ``D``, features of the conditioning signal.
        n_sections: biquads in the cascade.
        hop_length: samples per conditioning frame; ``T == F * hop_length``.
        channels: ``None``: one filter per batch item, shared by every channel of ``x``;
            ``C``: one filter per channel of ``x (B, C, T)``.
        hidden_channels: width of the hidden layer, ``None`` for a linear map.

    Shapes: ``x (B, T)`` or ``(B, C, T)`` (``(B, C, T)`` with ``channels``), ``cond (B, D, F)`` ->
    ``y`` shaped like ``x``.

    >>> import torch
    >>> layer = ConditionedSOSFilter(3, n_sections=2, hop_length=32)
    >>> layer(torch.randn(4, 2, 320), torch.randn(4, 3, 10)).shape
    torch.Size([4, 2, 320])
    """

    def __init__(self, cond_channels: int, n_sections: int, hop_length: int, channels: int | None = None,
                 hidden_channels: int | None = None, max_radius: float = 0.999):
        super().__init__()
        name = "ConditionedSOSFilter"
        self.cond_channels = check_positive_int(cond_channels, "cond_channels", name)
        self.n_sections = check_positive_int(n_sections, "n_sections", name)
        self.hop_length = check_positive_int(hop_length, "hop_length", name)
        self.channels = check_channels(channels, name)
        self.hidden_channels = None if hidden_channels is None else check_positive_int(
            hidden_channels, "hidden_channels", name)
        self.max_radius = check_radius(max_radius, name)
        self.n_filters = channels or 1
        n_out = self.n_filters * n_sections * 5
        if hidden_channels is None:
            last = nn.Conv1d(cond_channels, n_out, 1)
            self.net = last
        else:
            last = nn.Conv1d(hidden_channels, n_out, 1)
            self.net = nn.Sequential(nn.Conv1d(cond_channels, hidden_channels, 1), nn.Tanh(), last)
        # Start near a fixed, mildly resonant cascade: small weights, biases set to that cascade.
        with torch.no_grad():
            last.weight.mul_(0.1)
            bias = torch.zeros(self.n_filters, n_sections, 5)
            bias[..., 0] = P.logit(0.8)
            bias[..., 1] = (torch.arange(n_sections) + 0.5) * (torch.pi / n_sections)
            bias[..., 2] = 1.0
            last.bias.copy_(bias.flatten())
        self.filter = TimeVaryingSOSFilter(n_sections, hop_length)

    def frames_to_sos(self, cond: torch.Tensor) -> torch.Tensor:
        """``cond (B, D, F)`` -> per-frame ``sos (B, n_filters, F, n_sections, 6)``."""
        self._check_cond(cond)
        if cond.shape[2]:
            p = self.net(cond)  # (B, n_filters * S * 5, F)
        else:  # a chunk of no frames (Conv1d rejects an empty length)
            p = cond.new_zeros(cond.shape[0], self.n_filters * self.n_sections * 5, 0)
        p = p.unflatten(1, (self.n_filters, self.n_sections, 5)).permute(0, 1, 4, 2, 3)
        a1, a2 = P.polar_to_denominator(p[..., 0], p[..., 1], self.max_radius)
        return torch.cat([p[..., 2:5], torch.ones_like(a1)[..., None], a1[..., None], a2[..., None]], dim=-1)

    def _check_cond(self, cond) -> None:
        if not isinstance(cond, torch.Tensor):
            raise TypeError(f"ConditionedSOSFilter: expected cond to be a torch.Tensor (B, {self.cond_channels}, F), "
                            f"got {type(cond).__name__}")
        if cond.dim() != 3 or cond.shape[1] != self.cond_channels:
            raise ValueError(f"ConditionedSOSFilter: expected cond of shape (B, {self.cond_channels}, F), "
                             f"got {tuple(cond.shape)}")

    def _sos_for(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        if x.dim() not in (2, 3):
            raise ValueError(f"ConditionedSOSFilter: expected x of shape (B, T) or (B, C, T), got {tuple(x.shape)}")
        if self.channels is not None:
            # (B, C, T) only: a (B, T) signal whose B happened to equal C read as channels once,
            # and ran every row through the first filter
            if x.dim() != 3:
                raise ValueError(f"ConditionedSOSFilter: expected x of shape (B, {self.channels}, T) "
                                 f"(channels={self.channels}), got {tuple(x.shape)}")
            check_signal(x, self.channels, "ConditionedSOSFilter")
        self._check_cond(cond)
        if cond.shape[0] != x.shape[0]:
            raise ValueError(f"ConditionedSOSFilter: expected cond batch {x.shape[0]} (that of x), got {cond.shape[0]}")
        sos = self.frames_to_sos(cond)
        return sos[:, 0] if x.dim() == 2 else sos

    def forward(self, x: torch.Tensor, cond: torch.Tensor, state: TimeVaryingState | None = None,
                return_state: bool = False):
        """``x (B, [C,] T)``, ``cond (B, D, F)`` -> ``y`` like ``x``, or ``(y, TimeVaryingState)``."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"ConditionedSOSFilter: expected x to be a torch.Tensor, got {type(x).__name__}")
        state = _as_state(state, "ConditionedSOSFilter")
        return self.filter(x, self._sos_for(x, cond), state=state, return_state=return_state)

    def frequency_response(self, worN=512, cond: torch.Tensor | None = None):
        """Frozen-time response per frame: ``cond (B, D, F)`` -> ``(w, h (B, n_filters, F, W))``."""
        if cond is None:
            raise ValueError("ConditionedSOSFilter.frequency_response: expected cond (B, D, F), got None")
        sos = self.frames_to_sos(cond)
        w = frequency_grid(worN, device=sos.device, dtype=sos.dtype)
        return w, sos_response(sos, w)

    def extra_repr(self) -> str:
        return (f"cond_channels={self.cond_channels}, n_sections={self.n_sections}, hop_length={self.hop_length}, "
                f"channels={self.channels}, hidden_channels={self.hidden_channels}, max_radius={self.max_radius}")
