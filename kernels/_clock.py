"""Tile timelines: GPU clock stamps at the phase boundaries of the single-pass kernels.

A diagnostic, off unless asked for. A launch of ``lti_single_pass``, ``lti_adjoint`` or the
time-varying single pass (forward or backward) given ``clock=`` (an int64 CUDA tensor) compiles its
kernel with ``TIMED`` and every tile's program writes
one row of ``STAMPS`` int64 (``FIELDS``): the SM it ran on, the global timer (ns) when it started and
ended, the SM's cycle counter at each phase boundary, and how many rounds its look-back polled the
flags before they were all raised. ``benchmarks/tile_timeline.py`` turns the rows into a table.

Why: a single-pass tile moves 16 KB and runs about 45 instructions a sample (order 2, sm_90), yet on
an H200 a tile took about 8 us with 8 programs an SM, half of copy speed. Whether that time goes to
the tile's load, the lane recurrences, the lane scan, the look-back's flags and L2 round trips, or the
release fences decides what to change next; no counter of the kernel-level benchmarks can tell.

A stamp must not read the clock before the phase it closes is done. It is predicated on a test of a
value the phase produced (``p``: its bits are one NaN payload that no arithmetic produces, which
ptxas cannot rule out), so the read waits for that value like any instruction that uses it. The
first and last stamps wait for nothing: they mark where the program has got to. The SM's cycle
counter is per SM: differences within one tile are exact, across SMs meaningless; the global timer
(ns) orders tiles across SMs.

GPU only (the stamps are PTX; the interpreter cannot run inline assembly). Without ``clock`` the
kernels compile with ``TIMED=False`` and none of this is in them.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

# one row a tile (a ticket): 16 int64, one 128-byte line
STAMPS = 16
_STAMPS = tl.constexpr(STAMPS)
FIELDS = ("sm", "ns_start", "start", "loaded", "zero_state", "lane_scan", "aggregate", "look_back",
          "inclusive", "output_pass", "end", "ns_end", "polls")
# the cycle-counter stamps, in order: each phase is the difference of two neighbours
CYCLE_FIELDS = FIELDS[2:11]


@triton.jit
def _clock_after(v):
    """The SM's cycle counter (an int64 scalar), read once the float scalar ``v`` is ready."""
    # the read is predicated on v's bits being one NaN payload no arithmetic makes: the compiler
    # cannot prove the predicate false (it did for a 0/1 test: the read then moved ahead of the
    # value), so the test, which waits for v, stays before the read
    bits = v.to(tl.float32).to(tl.int32, bitcast=True)
    return tl.inline_asm_elementwise(
        "{ .reg .pred p; setp.eq.u32 p, $1, 0x7fc0c10c; @p mov.u64 $0, 0; @!p mov.u64 $0, %clock64; }",
        "=l,r", [bits], dtype=tl.int64, is_pure=False, pack=1)


@triton.jit
def _special(i, NAME: tl.constexpr):
    """A special register (``%smid``, ``%globaltimer`` or ``%clock64``) as an int64 shaped like the
    int64 ``i`` (a scalar: one read a thread), read where the program has got to, waiting for nothing."""
    if NAME == "smid":
        r = tl.inline_asm_elementwise("mov.u32 $0, %smid;", "=r,l", [i], dtype=tl.int32, is_pure=False,
                                      pack=1).to(tl.int64)
    elif NAME == "globaltimer":
        r = tl.inline_asm_elementwise("mov.u64 $0, %globaltimer;", "=l,l", [i], dtype=tl.int64,
                                      is_pure=False, pack=1)
    else:
        r = tl.inline_asm_elementwise("mov.u64 $0, %clock64;", "=l,l", [i], dtype=tl.int64, is_pure=False,
                                      pack=1)
    return r


@triton.jit
def stamp(clk, i_tk, K: tl.constexpr, v, o_l):
    """Field ``K`` of ticket ``i_tk``'s row: the cycle counter once every lane's value of the float lane
    block ``v`` (shaped like ``o_l``) is ready, written by the program's first thread. ``v`` is reduced
    to a scalar first (one cross-warp step): compiled for sm_90, a read a lane kept the LTI forward at
    158 registers a thread against 128, the reduced one at 128 (the time-varying kernels move either
    way: ``docs/kernels-single-pass.md``, "Tile timelines")."""
    stamp_value(clk, i_tk, K, _clock_after(tl.max(v.to(tl.float32), 0)), o_l)


@triton.jit
def stamp_tile(clk, i_tk, K: tl.constexpr, t, o_l):
    """Field ``K``: the cycle counter once every element of the 2-D tile ``t`` is ready (its sum:
    a reduction, where the tile's rows are spread over several threads each)."""
    stamp_value(clk, i_tk, K, _clock_after(tl.sum(tl.sum(t.to(tl.float32), 1), 0)), o_l)


@triton.jit
def stamp_value(clk, i_tk, K: tl.constexpr, v, o_l):
    """Field ``K`` of ticket ``i_tk``'s row: the int value ``v``, written by the first thread."""
    tl.store(clk + i_tk * _STAMPS + K + 0 * o_l, (v + 0 * o_l).to(tl.int64), mask=o_l == 0)


@triton.jit
def stamp_start(clk, i_tk, o_l):
    """The row's first fields: the SM, the global timer and the cycle counter, after the ticket's
    atomic in program order."""
    stamp_value(clk, i_tk, 0, _special(i_tk, "smid"), o_l)
    stamp_value(clk, i_tk, 1, _special(i_tk, "globaltimer"), o_l)
    stamp_value(clk, i_tk, 2, _special(i_tk, "clock"), o_l)


@triton.jit
def stamp_end(clk, i_tk, o_l):
    """The row's last fields, the cycle counter and the global timer, where the program has issued all
    its work (its last stores; a read that waited for one of the tile's values would keep that value
    alive through the tile: 116 registers a thread against 95 for the time-varying forward, sm_90)."""
    stamp_value(clk, i_tk, 10, _special(i_tk, "clock"), o_l)
    stamp_value(clk, i_tk, 11, _special(i_tk, "globaltimer"), o_l)


def prepare_clock(clock: torch.Tensor | None, tiles: int, sections: int, op: str) -> bool:
    """Check a launcher's ``clock`` and resize it to ``[tiles, STAMPS]`` (zeroed); True when timed."""
    if clock is None:
        return False
    if clock.device.type not in ("cuda", "meta") or clock.dtype != torch.int64:  # meta: compile checks
        raise ValueError(f"{op}: expected clock as an int64 CUDA tensor (the stamps read GPU clock "
                         f"registers), got {clock.dtype} on {clock.device}")
    if sections != 1:
        raise ValueError(f"{op}: expected one filter with clock (a row of stamps a tile), got {sections} sections")
    clock.resize_(tiles, STAMPS).zero_()
    return True
