"""Input and configuration checks shared by the layers: every error says "expected ..., got ..."."""
from __future__ import annotations

import torch


def check_positive_int(value, name: str, layer: str, minimum: int = 1) -> int:
    """Return ``value`` as an int, or raise if it is not an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{layer}: expected {name} to be an integer >= {minimum}, got {value!r}")
    return value


def check_channels(channels, layer: str) -> int | None:
    """``channels`` is None (one filter shared by every row) or a positive int (one filter per channel)."""
    if channels is None:
        return None
    return check_positive_int(channels, "channels", layer)


def check_radius(max_radius, layer: str) -> float:
    if not isinstance(max_radius, (int, float)) or not 0.0 < float(max_radius) < 1.0:
        raise ValueError(f"{layer}: expected max_radius in (0, 1), got {max_radius!r}")
    return float(max_radius)


def check_signal(x, channels: int | None, layer: str, min_dim: int = 1) -> torch.Tensor:
    """Check a signal ``(..., T)``, or ``(..., C, T)`` when the layer has ``channels`` filters."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{layer}: expected x to be a torch.Tensor, got {type(x).__name__}")
    if channels is not None:
        if x.dim() < 2 or x.shape[-2] != channels:
            raise ValueError(
                f"{layer}: expected x of shape (..., {channels}, T) (channels={channels}), "
                f"got {tuple(x.shape)}"
            )
    elif x.dim() < min_dim:
        raise ValueError(f"{layer}: expected x with at least {min_dim} dims, got {tuple(x.shape)}")
    return x


def check_state_shape(state, expected: tuple, layer: str, name: str = "state") -> None:
    if not isinstance(state, torch.Tensor):
        raise TypeError(f"{layer}: expected {name} to be a torch.Tensor, got {type(state).__name__}")
    if tuple(state.shape) != tuple(expected):
        raise ValueError(f"{layer}: expected {name} of shape {tuple(expected)}, got {tuple(state.shape)}")
