"""Single-pass chunk carries: tickets, flags and a deterministic, fixed-window look-back.

A single-pass scan kernel reads its tile of the signal once: it solves the tile from a zero state,
publishes the tile's aggregate (its zero-state end state), waits for the true state before the tile,
publishes the tile's inclusive state, and writes its output from registers. Memory traffic is one read
of the input and one write of the output, as for a copy.

Order: every program takes a ticket from an int32 counter and works on the tile the ticket names, so
tiles start in ticket order. A program only waits for tiles of smaller tickets, whose programs have
started already, so nothing deadlocks whatever order the hardware schedules programs in.

Determinism: the classic decoupled look-back folds in whichever predecessor is ready first, so its
floating-point result depends on timing. Here the window is fixed: the state before tile ``c`` is

    S_{c-1} = fold(agg_{c-W+1}, ..., agg_{c-1}) applied to inc_{c-W}

(``inc`` = inclusive state, ``agg`` = aggregate), always combined in the same tree. The bits never
depend on timing, and the serial chain has ``n_tiles / W`` links instead of ``n_tiles``.

Only integer atomics are used (the ticket and the flags): no float atomics anywhere. Flags are
release-stored after a CTA barrier and acquire-polled; the data behind a flag is loaded with
``.cg`` (L2, not a possibly stale L1 line). A spin gives up after ``_MAX_SPIN`` polls instead of
hanging the GPU; that can only happen if the scheduling argument above were broken, and its wrong
results would then fail the tests rather than hang them.
"""
import triton
import triton.language as tl

_MAX_SPIN = tl.constexpr(1 << 20)


@triton.jit
def take_ticket(p_counter):
    """The index of this program in start order (int64)."""
    return tl.atomic_add(p_counter, 1).to(tl.int64)


@triton.jit
def publish(p_flag):
    """Raise one flag once this program's stores before it are visible GPU-wide."""
    tl.debug_barrier()  # every thread of the CTA has issued its stores (release is cumulative)
    tl.atomic_xchg(p_flag, 1, sem="release")


@triton.jit
def wait_flags(p_flags, mask):
    """Spin until every flag in ``p_flags`` (a block of pointers) under ``mask`` is raised; returns the
    polls it repeated (0: all raised at the first; callers that ignore it compile without the count)."""
    f = tl.atomic_add(p_flags, 0, mask=mask, sem="acquire")
    ready = tl.min(tl.where(mask, f, 1), axis=0)
    n_spin = 0
    while (ready == 0) & (n_spin < _MAX_SPIN):
        f = tl.atomic_add(p_flags, 0, mask=mask, sem="acquire")
        ready = tl.min(tl.where(mask, f, 1), axis=0)
        n_spin += 1
    tl.debug_barrier()  # the acquiring threads' view is shared with the whole CTA
    return n_spin


def check_tiles(op: str, lanes: int | None, window_tiles: int | None) -> None:
    """The single-pass launchers' test knobs: ``lanes`` a power of two >= 2, ``window_tiles`` one >= 1."""
    if lanes is not None and (lanes < 2 or lanes & (lanes - 1)):
        raise ValueError(f"{op}: lanes must be a power of two >= 2, got {lanes}")
    if window_tiles is not None and (window_tiles < 1 or window_tiles & (window_tiles - 1)):
        raise ValueError(f"{op}: window_tiles must be a power of two >= 1, got {window_tiles}")


def window(n_tiles: int, rows: int, cap: int = 128, budget: int = 256, floor: int = 2) -> int:
    """Look-back window W (a power of two): enough tiles per link that the serial chain keeps up with
    the tiles in flight, ``budget`` tiles shared by ``rows`` rows, at least ``floor``; wider windows
    cost every tile a longer fold. The defaults are the time-varying kernel's (8 rows: W = 32 beat
    W = 8 by 25% on an H200). The LTI kernels, whose fold loads 4 float64 a tile, take budget 1024
    and floor 8 (``lti_single_pass.lookback_setup``)."""
    want = max(floor, budget // max(rows, 1))
    w = 2
    while w < min(want, cap, n_tiles):
        w *= 2
    return w
