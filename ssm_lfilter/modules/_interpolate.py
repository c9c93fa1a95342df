"""Frame-rate control signals to sample rate, causally, so that chunked streaming matches one call.

Frame ``f`` is the value reached at the last sample of its hop; samples inside the hop ramp linearly
from frame ``f-1``. Frame ``-1`` is the last frame of the previous chunk (carried in the streaming state)
or, at the very start, frame 0 itself. Interpolating biquad coefficients linearly keeps them stable: the
stable ``(a1, a2)`` region is a convex triangle.
"""
from __future__ import annotations

import torch


def interpolate_frames(frames: torch.Tensor, hop: int, previous: torch.Tensor | None = None,
                       dim: int = -3) -> torch.Tensor:
    """``frames (..., F, *feat)`` with the frame axis at ``dim`` -> ``(..., F * hop, *feat)``.

    ``previous`` has ``frames``' shape without ``dim`` (broadcastable); ``None`` holds frame 0.

    >>> import torch
    >>> interpolate_frames(torch.tensor([[1.0], [3.0]]), 2, dim=-2).flatten().tolist()
    [1.0, 1.0, 2.0, 3.0]
    """
    if previous is not None:
        # the leading (batch) dims of the two broadcast: a chunk's frames may have fewer than the
        # previous chunk's, as its coefficients may against x
        nd = dim if dim < 0 else dim - frames.dim()
        first = previous.unsqueeze(nd)
        one = list(frames.shape)
        one[nd] = 1
        shape = torch.broadcast_shapes(first.shape, tuple(one))
        frames = frames.expand(*shape[:nd], frames.shape[nd], *shape[nd:][1:])
        first = first.expand(shape)
    d = dim % frames.dim()
    n = frames.shape[d]
    if n == 0:
        return frames
    if previous is None:
        first = frames.narrow(d, 0, 1)
    prev = torch.cat([first.to(frames.dtype), frames.narrow(d, 0, n - 1)], dim=d)
    ramp = torch.arange(1, hop + 1, device=frames.device, dtype=frames.dtype) / hop
    ramp = ramp.view(hop, *([1] * (frames.dim() - d - 1)))
    out = prev.unsqueeze(d + 1) + (frames - prev).unsqueeze(d + 1) * ramp
    return out.flatten(d, d + 1)
