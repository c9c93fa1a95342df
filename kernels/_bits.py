"""Bit-shaped tiles: a [B, 2^LOG] tile as [B, 2, ..., 2] (LOG twos), so that a recursion over
``tl.split`` on the last dim walks its columns in order at trace time.

Dim 1 is the column's least significant bit, the last dim its most significant one: ``tl.split`` on
the last dim gives the first and the second half of the columns, and ``tl.join`` of the two halves is
the inverse. The reversal of the bit dims is its own inverse, so ``from_bits`` uses the same permute.
One pair for every caller (the LTI chunk pass, the time-varying kernels): LOG = 0 (one column, a
[B] tile) up to LOG = 8 (the time-varying single pass splits its a tile on LOG + KB bits).
"""
import triton
import triton.language as tl


@triton.jit
def to_bits(t, LOG: tl.constexpr, B: tl.constexpr):
    # [B, 2^LOG] -> [B, 2, ..., 2] (LOG twos); LOG = 0 gives [B], LOG = 1 the tile itself
    if LOG == 0:
        r = tl.reshape(t, [B])
    elif LOG == 1:
        r = t
    elif LOG == 2:
        r = tl.permute(tl.reshape(t, [B, 2, 2]), (0, 2, 1))
    elif LOG == 3:
        r = tl.permute(tl.reshape(t, [B, 2, 2, 2]), (0, 3, 2, 1))
    elif LOG == 4:
        r = tl.permute(tl.reshape(t, [B, 2, 2, 2, 2]), (0, 4, 3, 2, 1))
    elif LOG == 5:
        r = tl.permute(tl.reshape(t, [B, 2, 2, 2, 2, 2]), (0, 5, 4, 3, 2, 1))
    elif LOG == 6:
        r = tl.permute(tl.reshape(t, [B, 2, 2, 2, 2, 2, 2]), (0, 6, 5, 4, 3, 2, 1))
    elif LOG == 7:
        r = tl.permute(tl.reshape(t, [B, 2, 2, 2, 2, 2, 2, 2]), (0, 7, 6, 5, 4, 3, 2, 1))
    else:
        tl.static_assert(LOG == 8)
        r = tl.permute(tl.reshape(t, [B, 2, 2, 2, 2, 2, 2, 2, 2]), (0, 8, 7, 6, 5, 4, 3, 2, 1))
    return r


@triton.jit
def from_bits(t, LOG: tl.constexpr, B: tl.constexpr):
    # inverse of to_bits: [B, 2, ..., 2] (LOG twos; [B] for LOG = 0) -> [B, 2^LOG]
    if LOG == 0:
        r = tl.reshape(t, [B, 1])
    elif LOG == 1:
        r = t
    elif LOG == 2:
        r = tl.reshape(tl.permute(t, (0, 2, 1)), [B, 4])
    elif LOG == 3:
        r = tl.reshape(tl.permute(t, (0, 3, 2, 1)), [B, 8])
    elif LOG == 4:
        r = tl.reshape(tl.permute(t, (0, 4, 3, 2, 1)), [B, 16])
    elif LOG == 5:
        r = tl.reshape(tl.permute(t, (0, 5, 4, 3, 2, 1)), [B, 32])
    elif LOG == 6:
        r = tl.reshape(tl.permute(t, (0, 6, 5, 4, 3, 2, 1)), [B, 64])
    elif LOG == 7:
        r = tl.reshape(tl.permute(t, (0, 7, 6, 5, 4, 3, 2, 1)), [B, 128])
    else:
        tl.static_assert(LOG == 8)
        r = tl.reshape(tl.permute(t, (0, 8, 7, 6, 5, 4, 3, 2, 1)), [B, 256])
    return r
