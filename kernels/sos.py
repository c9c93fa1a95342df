"""Launcher for a cascade of filters (second-order sections) in one pass over memory.

``sos(x [R,T], b [Rb,S,M+1], a [Ra,S,N], head=[R,S,K], ends=[S,R,KT]) -> y [R,T]``: section ``s`` is
the direct form I of ``lti.py`` with ``b[:, s]``, ``a[:, s]`` (``a`` normalized) and its own head
``head[:, s]`` (its initial state, e.g. ``sosfilt``'s ``zi``; none: from rest), applied to the
previous section's output; ``ends`` (optional) receives every section's last ``KT`` outputs. Where the single-pass kernel applies (``1 <= N <= 4``, ``M <= N``, a power-of-two
chunk, ``single_pass`` not off), every section runs inside one launch: a program loads its tile once,
runs the sections one after another on registers (each with its own look-back buffers and flags), and
stores the tile once, so the cascade reads ``x`` once and writes ``y`` once whatever the number of
sections. A later section's FIR halo is the previous section's true start state (hence ``M <= N``).
Otherwise each section is one ``lti`` launch. CUDA tensors, or CPU tensors under ``TRITON_INTERPRET=1``;
real dtypes (float16/bfloat16 computed in float32, rounded once at the end).

``sos_adjoint``: the cascade's backward (``dx``, every section's coefficient gradients and heads'
gradients, with the gradients of the ends added) in two launches, the forward kernel storing every
section's input, then ``lti_adjoint.py``'s kernel with all sections, last first.
"""
from __future__ import annotations

import torch

from .._checks import to_dtype
from .._raw_coefficients import a_grad_width, normalized
from ._variants import cascade_lane_length as _cascade_lane_length
from ._variants import single_pass as _single_pass
from .lti import _tile_log, lti
from .lti_adjoint import _DEFAULT_C as _ADJOINT_C
from .lti_adjoint import _launch
from .lti_single_pass import lti_single_pass

__all__ = ["sos", "sos_adjoint", "sos_adjoint_applies"]


def sos(x: torch.Tensor, b: torch.Tensor, a: torch.Tensor, *, head: torch.Tensor | None = None,
        ends: torch.Tensor | None = None, block_size: int | None = None,
        single_pass: bool | None = None, lanes: int | None = None,
        window_tiles: int | None = None, power_table: bool | None = None,
        persistent: bool | None = None, lane_loads: bool | None = None,
        lane_float32: bool | None = None, monic: bool = True) -> torch.Tensor:
    """The cascade ``y [R, T]`` (see the module docstring). ``head [R, S, K]``: each section's head,
    as ``lti``'s (``y_s[n] += head[:, s, n]`` for ``n < K``: a section's initial state, e.g.
    ``sosfilt``'s ``zi``). ``ends [S, R, KT]`` (contiguous, ``KT <= T``): receives every section's last
    ``KT`` outputs. ``block_size``, ``lanes``, ``window_tiles``, ``power_table``, ``persistent``, ``lane_loads`` and ``lane_float32`` as for ``lti`` (``block_size``
    by default: ``_variants.cascade_lane_length``, 64 for a float32 cascade from rest on a GPU); ``single_pass``
    selects the fused one-launch kernel (default: the ``lti`` family's, see ``_variants.py``) or one
    ``lti`` call per section. ``monic=False``: every section's ``a`` row starts with its leading
    coefficient, ``a [Ra, S, N+1]`` (``sosfilt``'s raw sections): the fused kernel divides by it in
    registers (no division launched before it), one ``lti`` call a section divides first."""
    if x.dim() != 2 or b.dim() != 3 or a.dim() != 3 or b.shape[1] != a.shape[1] or (not monic and a.shape[2] < 1):
        raise ValueError(f"sos: expected x [R, T], b [Rb, S, M+1], a [Ra, S, {'N' if monic else 'N+1'}] with one S, "
                         f"got {tuple(x.shape)}, {tuple(b.shape)} and {tuple(a.shape)}")
    R, T = x.shape
    S, M, N = b.shape[1], b.shape[2] - 1, a.shape[2] - (0 if monic else 1)
    if M < 0:
        raise ValueError(f"sos: expected at least one numerator tap, got b {tuple(b.shape)}")
    if b.shape[0] not in (1, R) or a.shape[0] not in (1, R):
        raise ValueError(f"sos: expected coefficient rows 1 or R={R}, got b {tuple(b.shape)}, a {tuple(a.shape)}")
    for name, t in (("x", x), ("b", b), ("a", a)):
        if t.is_complex() or not t.is_floating_point():
            raise TypeError(f"sos: expected a real floating `{name}`, got {t.dtype}")
    if len({x.device, b.device, a.device}) != 1:
        raise ValueError(f"sos: expected x, b, a on one device, got {x.device}, {b.device}, {a.device}")
    head = x.new_zeros(R, S, 0) if head is None else head
    if head.dim() != 3 or head.shape[:2] != (R, S):
        raise ValueError(f"sos: expected head [R={R}, S={S}, K], got {tuple(head.shape)}")
    KT = 0 if ends is None else ends.shape[-1]
    if ends is not None and (ends.shape != (S, R, KT) or KT > T or not ends.is_contiguous()):
        raise ValueError(f"sos: expected contiguous ends [S={S}, R={R}, KT <= {T}], got {tuple(ends.shape)}")
    out_dtype = x.dtype
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    head = head.to(x.dtype)
    C = (int(block_size) if block_size is not None
         else _cascade_lane_length(S, x.dtype, x.device.type, head.shape[-1] > 0 or KT > 0))
    if S == 0 or R == 0 or T == 0:
        return x.clone().to(out_dtype)
    if 1 <= N <= 4 and M <= N and _tile_log(C, M, N) and _single_pass(single_pass, "lti"):
        y = torch.empty(R, T, dtype=x.dtype, device=x.device)
        lti_single_pass(x, b, a, head, y, C, lanes=lanes, window_tiles=window_tiles, ends=ends if KT else None,
                        power_table=power_table, persistent=persistent, lane_loads=lane_loads,
                        lane_float32=lane_float32, monic=monic)
        return y.to(out_dtype)
    if not monic:
        b, a = normalized(b, a)
    y = x
    for s in range(S):
        y = lti(y, b[:, s], a[:, s], head[:, s], block_size=block_size, single_pass=single_pass,
                lanes=lanes, window_tiles=window_tiles, power_table=power_table, persistent=persistent,
                lane_loads=lane_loads, lane_float32=lane_float32)
        if KT:
            ends[s] = y[:, T - KT:]
    return y.to(out_dtype)


def sos_adjoint_applies(b: torch.Tensor, a: torch.Tensor, single_pass: bool | None = None,
                        monic: bool = True) -> bool:
    """Whether ``sos_adjoint`` runs for sections ``b [Rb, S, M+1]``, ``a [Ra, S, N]`` (``monic=False``:
    ``[Ra, S, N+1]``, ``a0`` first): real, ``1 <= N <= 4``, ``M <= N`` (a section's FIR halo is the
    adjoint's state), single pass on."""
    M, N = b.shape[-1] - 1, a.shape[-1] - (0 if monic else 1)
    return (not (b.is_complex() or a.is_complex()) and 1 <= N <= 4 and 0 <= M <= N
            and _single_pass(single_pass, "lti"))


def sos_adjoint(g: torch.Tensor, x: torch.Tensor, b: torch.Tensor, a: torch.Tensor, need_x: bool, n_b: int,
                n_a: int, *, head: torch.Tensor | None = None, g_ends: torch.Tensor | None = None,
                block_size: int | None = None, lanes: int | None = None, window_tiles: int | None = None,
                power_table: bool | None = None, lane_loads: bool | None = None,
                lane_float32: bool | None = None, monic: bool = True, sum_rows: bool = False,
                register_cap: bool | int | None = None):
    """The backward of ``y = sos(x, b, a, head=head, ends=..., monic=monic)`` for the output gradient
    ``g`` and the gradient ``g_ends [S, R, KT]`` of every section's last ``KT`` outputs (None: none):
    ``(dx [R, T] or None, db [R, S, n_b], da [R, S, n_a], dhead [R, S, K])`` per row, or with ``sum_rows``
    (sections shared by the rows) ``db`` and ``da`` summed over the rows, ``[1, S, ...]``.
    ``monic=False``: ``a [Ra, S, N+1]`` starts every section with its leading coefficient, both launches
    divide by it in registers, and ``db``, ``da`` are the raw coefficients' gradients, ``da`` with
    ``a0``'s first (``n_a + 1`` columns when ``n_a > 0``, which then needs ``n_b = M + 1``): every tile
    adds its share (``lti_adjoint._store_raw_sums``), so nothing but one sum over the tiles (and rows)
    follows the kernels. Two launches:

    1. the forward cascade again (``lti_single_pass`` with ``sections``), storing every section's input
       and the output: ``[S+1, R, T]``, so nothing of the forward is kept alive between the passes;
    2. every section's adjoint, last section first, in one launch (``_lti_adjoint_kernel`` with ``S``
       sections): each section's ``dx`` stays in registers as the output gradient of the section
       before, its coefficient sums read the stored input and output tiles once.

    About ``2S + 5`` passes over ``T`` samples (``S = 8``: 21), where one adjoint launch a section after
    recomputing its input took ``6S - 2`` (46). Both launches use lanes of ``block_size`` samples
    (default 16, as ``lti_adjoint``): compiled for sm_90 with 8 biquads, the recompute takes 106
    registers a thread at 16 (254 at the forward's 32) and the adjoint 225 (114 at 8; ``gpu_check.py``
    times both). ``lanes``, ``window_tiles``: the adjoint launch's (tests force small ones);
    ``power_table``, ``lane_loads``, ``lane_float32``: both launches', as for ``lti_single_pass``;
    ``register_cap``: the adjoint launch's (``lti_adjoint.max_registers``; None: its default, an int: that
    ``maxnreg``, False: none)."""
    if x.dim() != 2 or g.shape != x.shape or b.dim() != 3 or a.dim() != 3 or b.shape[1] != a.shape[1]:
        raise ValueError(f"sos_adjoint: expected g, x [R, T], b [Rb, S, M+1], a [Ra, S, N] with one S, got "
                         f"{tuple(g.shape)}, {tuple(x.shape)}, {tuple(b.shape)} and {tuple(a.shape)}")
    if not sos_adjoint_applies(b, a, True, monic):
        raise ValueError(f"sos_adjoint: expected real sections with 1 <= N <= 4 and M <= N, got b {tuple(b.shape)}, "
                         f"a {tuple(a.shape)}{'' if monic else ' (a0 first: monic=False)'}")
    R, T = x.shape
    S, M, N = b.shape[1], b.shape[2] - 1, a.shape[2] - (0 if monic else 1)
    if not (0 <= n_b <= M + 1 and 0 <= n_a <= N):
        raise ValueError(f"sos_adjoint: expected 0 <= n_b <= {M + 1} and 0 <= n_a <= {N}, got {n_b} and {n_a}")
    if not monic and n_a and n_b != M + 1:
        raise ValueError(f"sos_adjoint: expected n_b = {M + 1} with monic=False and n_a > 0 (a0's gradient "
                         f"needs every db), got {n_b}")
    n_da = a_grad_width(n_a, monic)
    R_out = 1 if sum_rows else R
    out_dtype = g.dtype
    dt = torch.float32 if g.dtype in (torch.float16, torch.bfloat16) else g.dtype
    C = _ADJOINT_C if block_size is None else int(block_size)
    if not _tile_log(C, M, N):
        raise ValueError(f"sos_adjoint: block_size must be a power of two in [2, 64], got {C}")
    head = g.new_zeros(R, S, 0) if head is None else to_dtype(head, dt)
    K = head.shape[-1]
    KT = 0 if g_ends is None else g_ends.shape[-1]
    if head.shape[:2] != (R, S) or (KT and g_ends.shape != (S, R, KT)):
        raise ValueError(f"sos_adjoint: expected head [R={R}, S={S}, K] and g_ends [S, R, KT], got "
                         f"{tuple(head.shape)} and {None if g_ends is None else tuple(g_ends.shape)}")
    dhead = torch.zeros(R, S, K, dtype=dt, device=g.device)
    if R == 0 or T == 0 or S == 0:
        dx = g.to(dt).clone()
        return ((dx.to(out_dtype) if need_x else None), g.new_zeros(R_out, S, n_b), g.new_zeros(R_out, S, n_da),
                dhead.to(out_dtype))
    dx = torch.empty(R, T, dtype=dt, device=g.device)
    g = to_dtype(g, dt)
    g = g if g.stride(1) == 1 or T <= 1 else g.contiguous()
    stack = torch.empty(S + 1, R, T, dtype=dt, device=g.device)
    lti_single_pass(to_dtype(x, dt), b, a, head, stack[S], C, sections=stack[:S], power_table=power_table,
                    lane_loads=lane_loads, lane_float32=lane_float32, monic=monic)
    part = _launch(g, stack, stack[S], b, a, dx, dhead, n_b, n_a, need_x, K, C, lanes, window_tiles, True,
                   g_ends=g_ends.to(dt).contiguous() if KT else None, power_table=power_table,
                   lane_loads=lane_loads, lane_float32=lane_float32, monic=monic, register_cap=register_cap)
    # part [R, n_tiles, S, n_b + n_da]: a fixed-order (deterministic) reduction over the tiles (and rows)
    sums = part.sum((0, 1)).unsqueeze(0) if sum_rows else part.sum(1)
    # separate tensors (not two views of one): the op's outputs must not alias each other
    db, da = sums[..., :n_b].to(out_dtype, copy=True), sums[..., n_b:].to(out_dtype, copy=True)
    return (dx.to(out_dtype) if need_x else None), db, da, dhead.to(out_dtype)
