"""Launcher for a cascade of filters (second-order sections) in one pass over memory.

``sos(x [R,T], b [Rb,S,M+1], a [Ra,S,N]) -> y [R,T]``: section ``s`` is the direct form I of
``lti.py`` with ``b[:, s]`` and ``a[:, s]`` (``a`` normalized), applied to the previous section's
output, from rest. Where the single-pass kernel applies (``1 <= N <= 4``, ``M <= N``, a power-of-two
chunk, ``single_pass`` not off), every section runs inside one launch: a program loads its tile once,
runs the sections one after another on registers (each with its own look-back buffers and flags), and
stores the tile once, so the cascade reads ``x`` once and writes ``y`` once whatever the number of
sections. A later section's FIR halo is the previous section's true start state (hence ``M <= N``).
Otherwise each section is one ``lti`` launch. CUDA tensors, or CPU tensors under ``TRITON_INTERPRET=1``;
real dtypes (float16/bfloat16 computed in float32, rounded once at the end).
"""
from __future__ import annotations

import torch

from ._variants import single_pass as _single_pass
from .lti import _tile_log, lti
from .lti_single_pass import lti_single_pass

__all__ = ["sos"]


def sos(x: torch.Tensor, b: torch.Tensor, a: torch.Tensor, *, block_size: int | None = None,
        single_pass: bool | None = None, lanes: int | None = None,
        window_tiles: int | None = None) -> torch.Tensor:
    """The cascade ``y [R, T]`` (see the module docstring). ``block_size``, ``lanes`` and
    ``window_tiles`` as for ``lti``; ``single_pass`` selects the fused one-launch kernel (default:
    the ``lti`` family's, see ``_variants.py``) or one ``lti`` call per section."""
    if x.dim() != 2 or b.dim() != 3 or a.dim() != 3 or b.shape[1] != a.shape[1]:
        raise ValueError(f"sos: expected x [R, T], b [Rb, S, M+1], a [Ra, S, N] with one S, got "
                         f"{tuple(x.shape)}, {tuple(b.shape)} and {tuple(a.shape)}")
    R, T = x.shape
    S, M, N = b.shape[1], b.shape[2] - 1, a.shape[2]
    if M < 0:
        raise ValueError(f"sos: expected at least one numerator tap, got b {tuple(b.shape)}")
    if b.shape[0] not in (1, R) or a.shape[0] not in (1, R):
        raise ValueError(f"sos: expected coefficient rows 1 or R={R}, got b {tuple(b.shape)}, a {tuple(a.shape)}")
    for name, t in (("x", x), ("b", b), ("a", a)):
        if t.is_complex() or not t.is_floating_point():
            raise TypeError(f"sos: expected a real floating `{name}`, got {t.dtype}")
    if len({x.device, b.device, a.device}) != 1:
        raise ValueError(f"sos: expected x, b, a on one device, got {x.device}, {b.device}, {a.device}")
    out_dtype = x.dtype
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    C = int(block_size) if block_size is not None else 32
    if S == 0 or R == 0 or T == 0:
        return x.clone().to(out_dtype)
    if 1 <= N <= 4 and M <= N and _tile_log(C, M, N) and _single_pass(single_pass, "lti"):
        y = torch.empty(R, T, dtype=x.dtype, device=x.device)
        lti_single_pass(x, b, a, x.new_zeros(R, 0), y, C, lanes=lanes, window_tiles=window_tiles)
        return y.to(out_dtype)
    y = x
    for s in range(S):
        y = lti(y, b[:, s], a[:, s], x.new_zeros(R, 0), block_size=block_size, single_pass=single_pass,
                lanes=lanes, window_tiles=window_tiles)
    return y.to(out_dtype)
