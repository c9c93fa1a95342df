"""Host-side integer helpers of the launchers. ``triton.cdiv`` and ``triton.next_power_of_2`` are
wrappers that also work inside kernels and cost about 3 us a call on the host (triton 3.7, measured
on this project's CPU machine); a launcher calls them several times a launch, on the host time that
every public call pays before its kernel starts."""
from __future__ import annotations

__all__ = ["cdiv", "next_pow2", "register_cap_option", "vector_log2"]


def cdiv(a: int, b: int) -> int:
    """``ceil(a / b)`` for ints, ``b > 0``."""
    return -(-a // b)


def next_pow2(v: int) -> int:
    """The smallest power of two ``>= v`` (1 for ``v <= 1``)."""
    return 1 if v <= 1 else 1 << (v - 1).bit_length()


def vector_log2(element_size: int) -> int:
    """``V`` of the lane loads (``_lane_tiles.py``): a 16-byte vector holds ``2^V`` elements of this size
    (2 for float32, 1 for float64)."""
    return (16 // element_size).bit_length() - 1


def register_cap_option(cap: int | None) -> dict:
    """The launch option of a register cap (``maxnreg``), or none: ``kernel[grid](..., **this)``."""
    return {} if cap is None else {"maxnreg": cap}
