"""A single-pass tile moved between memory and the bit-shaped registers lane by lane.

``_load_tile`` loads a ``(BLOCK, C)`` tile as one coalesced block: consecutive threads take
consecutive 16-byte pieces of a lane's run, so the lane recurrences' layout (a lane's whole run in
one thread, ``_bits.py``) is reached through shared memory (sm_90, the order-2 forward: 24 of its
36 barriers and about 300 instructions a thread a tile, a fifth of the kernel's). Here every thread loads its own
lane's run as 16-byte vectors (``2^V`` elements), one ``[BLOCK, 2^V]`` load a piece, and the pieces
are joined into the bit-shaped tile in registers; a store splits it the same way. The lines a warp
touches are the same; each load instruction uses half of each 32-byte sector it reads, the other half
by the next one (from L1).
"""
import triton
import triton.language as tl

from ._bits import from_bits, to_bits


@triton.jit
def _piece_ptrs(p_row, i_tile, T, COL: tl.constexpr, LOG: tl.constexpr, C: tl.constexpr, BLOCK: tl.constexpr,
                REVERSE: tl.constexpr):
    """Pointers and steps (less the tile's first) of columns ``COL .. COL + 2^LOG`` of every lane, in
    ``_tile_ptrs``' layout (``REVERSE``: a lane's columns ascend in memory and hold its steps backwards)."""
    o_l = tl.arange(0, BLOCK)[:, None]
    o_c = COL + tl.arange(0, 1 << LOG)[None, :]
    if REVERSE:
        p = p_row + (T - i_tile - C - o_l * C) + o_c
        o_m = o_l * C + (C - 1 - o_c)
    else:
        p = p_row + i_tile + o_l * C + o_c
        o_m = o_l * C + o_c
    return p, o_m


@triton.jit
def load_lanes(p_row, i_tile, T, DTYPE: tl.constexpr, COL: tl.constexpr, LOG: tl.constexpr, V: tl.constexpr,
               C: tl.constexpr, BLOCK: tl.constexpr, REVERSE: tl.constexpr):
    """Columns ``COL .. COL + 2^LOG`` of the tile at ``i_tile`` of a unit-stride row, bit-shaped
    (``to_bits``), as ``DTYPE``; zero past the row's end (masked on a row's last tile only)."""
    if LOG <= V:
        p, o_m = _piece_ptrs(p_row, i_tile, T, COL, LOG, C, BLOCK, REVERSE)
        n_left = T - i_tile
        if n_left >= BLOCK * C:
            t = tl.load(p)
        else:
            t = tl.load(p, mask=o_m < n_left, other=0.0)
        r = to_bits(t.to(DTYPE), LOG, BLOCK)
    else:
        lo = load_lanes(p_row, i_tile, T, DTYPE, COL, LOG - 1, V, C, BLOCK, REVERSE)
        hi = load_lanes(p_row, i_tile, T, DTYPE, COL + (1 << (LOG - 1)), LOG - 1, V, C, BLOCK, REVERSE)
        r = tl.join(lo, hi)
    return r


@triton.jit
def store_lanes(p_row, i_tile, T, t, COL: tl.constexpr, LOG: tl.constexpr, V: tl.constexpr, C: tl.constexpr,
                BLOCK: tl.constexpr, REVERSE: tl.constexpr):
    """Store the bit-shaped tile ``t`` where ``load_lanes`` loads it (masked on a row's last tile only)."""
    if LOG <= V:
        p, o_m = _piece_ptrs(p_row, i_tile, T, COL, LOG, C, BLOCK, REVERSE)
        n_left = T - i_tile
        if n_left >= BLOCK * C:
            tl.store(p, from_bits(t, LOG, BLOCK))
        else:
            tl.store(p, from_bits(t, LOG, BLOCK), mask=o_m < n_left)
    else:
        lo, hi = tl.split(t)
        store_lanes(p_row, i_tile, T, lo, COL, LOG - 1, V, C, BLOCK, REVERSE)
        store_lanes(p_row, i_tile, T, hi, COL + (1 << (LOG - 1)), LOG - 1, V, C, BLOCK, REVERSE)
