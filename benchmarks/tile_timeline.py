"""Where a single-pass tile's time goes: the clock stamps of ``kernels/_clock.py``, summarized.

The LTI forward and backward and the time-varying forward and backward (order 2) at the sizes the
issue's targets name.

A stage of ``benchmarks/gpu_check.py`` (``--timeline``). On an H200 the order-2 forward ran a tile in
about 8 us with 8 programs an SM (0.126 ms for 16384 tiles), half of copy speed with issue slots to
spare; the kernel-level tables cannot say whether that time is the tile's load, its lane
recurrences, the lane scan, the look-back (waiting for flags, its L2 round trips) or the release
fences. Each case here runs the kernel twice, plain and with ``clock=``, and reports:

- the two times side by side (the stamps' own cost: a reduction and a clock read at most of eleven
  points; compiled for sm_90 the LTI builds keep their registers a thread, the time-varying forward
  takes 114 against 95, so its occupancy differs from the plain build's and its phase shares are
  indicative; its backward 128 under the register cap, like the plain build, with an 8-byte spill);
- per phase, the median and 90th percentile of its cycles over the tiles and its share of the median
  tile (``PHASES``; cycles of the SM's clock, exact within a tile);
- the look-back's poll rounds (how often a tile found a flag of its window not yet raised);
- the tiles' wall time (global timer, ns) and how many were resident on an SM on average.

``summarize`` is plain torch on the stamp rows, so it is tested on CPU with made-up rows.
"""
from __future__ import annotations

import torch

from ssm_lfilter.kernels._clock import CYCLE_FIELDS, FIELDS

# (name, what it is): the phase between a cycle stamp and the next
PHASES = (
    ("load", "ticket taken to the input tile in registers"),
    ("zero-state pass", "every lane from rest (its end state)"),
    ("lane scan", "the lanes' end states combined across the tile (orders 3-4: under the power "
                  "table's powers)"),
    ("publish aggregate", "store, CTA barrier, release fence, flag"),
    ("look-back", "wait for the window's flags, load and fold it"),
    ("publish inclusive", "store, CTA barrier, release fence, flag"),
    ("output pass", "every lane re-run from its true start state"),
    ("rest", "forward: the output tile's store; backward: x and y tiles, dx and the lagged sums"),
)
_COL = {name: i for i, name in enumerate(FIELDS)}


def summarize(stamps: torch.Tensor, sm_count: int | None = None) -> dict:
    """Statistics of a launch's stamp rows (``[tiles, STAMPS]`` int64, any device).

    Returns ``phases``: ``[(name, median, p90, share)]`` (cycles; ``share``: the phase's median over the
    sum of the medians), ``tile_cycles`` and ``tile_ns`` (medians), ``polls`` ``(median, p90, fraction of
    tiles that polled again)``, ``resident`` (tiles resident on an SM on average: the tiles' summed
    wall time over the launch's span times the SMs that ran any; ``sm_count``, if given, is reported
    beside it) and ``span_ns``."""
    s = stamps.to("cpu", torch.int64)
    if s.dim() != 2 or s.shape[1] < len(FIELDS) or s.shape[0] == 0:
        raise ValueError(f"summarize: expected stamp rows [tiles >= 1, >= {len(FIELDS)}], got {tuple(s.shape)}")
    cyc = s[:, [_COL[f] for f in CYCLE_FIELDS]].double()
    d = cyc[:, 1:] - cyc[:, :-1]  # the phases, in cycles
    med = d.median(0).values
    p90 = d.quantile(0.9, 0)
    total = med.sum().clamp_min(1.0)
    phases = [(name, float(med[i]), float(p90[i]), float(med[i] / total)) for i, (name, _) in enumerate(PHASES)]
    ns0, ns1 = s[:, _COL["ns_start"]].double(), s[:, _COL["ns_end"]].double()
    polls = s[:, _COL["polls"]].double()
    span = float(ns1.max() - ns0.min())
    sms = int(s[:, _COL["sm"]].unique().numel())
    resident = float((ns1 - ns0).sum()) / max(span, 1.0) / max(sms, 1)
    return dict(phases=phases, tile_cycles=float((cyc[:, -1] - cyc[:, 0]).median()),
                tile_ns=float((ns1 - ns0).median()), polls=(float(polls.median()), float(polls.quantile(0.9)),
                                                            float((polls > 0).double().mean())),
                resident=resident, sms=sms, sm_count=sm_count, span_ns=span, tiles=int(s.shape[0]))


def summary_markdown(label: str, st: dict, ms_plain: float | None = None, ms_timed: float | None = None) -> str:
    """One case's summary as markdown (a heading line, facts, the phase table)."""
    times = ""
    if ms_plain is not None and ms_timed is not None:
        times = f"{ms_plain:.3f} ms plain, {ms_timed:.3f} ms with the stamps; "
    sm = f" of {st['sm_count']}" if st.get("sm_count") else ""
    lines = [f"**{label}**: {times}{st['tiles']} tiles on {st['sms']}{sm} SMs, {st['resident']:.1f} resident "
             f"an SM on average, a tile {st['tile_ns'] / 1e3:.2f} us ({st['tile_cycles']:.0f} cycles, medians); "
             f"look-back polls again in {100 * st['polls'][2]:.0f}% of tiles (median {st['polls'][0]:.0f}, "
             f"p90 {st['polls'][1]:.0f} rounds).", "",
             "| phase | median cycles | p90 cycles | share | what |", "|---|---|---|---|---|"]
    what = dict(PHASES)
    for name, med, p90, share in st["phases"]:
        lines.append(f"| {name} | {med:.0f} | {p90:.0f} | {100 * share:.0f}% | {what[name]} |")
    return "\n".join(lines)


def cases(device: str):
    """(label, make) of the default single-pass launches the issue's targets time: ``make()`` allocates
    the case's tensors and returns ``run(clock=None)`` (``gpu_check.py``'s compile workers call each
    once with a clock, so the timing process finds the stamped kernels compiled)."""
    from ssm_lfilter import kernels as K

    def coefficients(n):
        b = torch.full((1, n + 1), 0.1, device=device)
        a = torch.zeros(1, n, device=device)
        a[0, 0] = -0.5
        return b, a

    def forward(R, T, n):
        def make():
            x, head = torch.randn(R, T, device=device), torch.zeros(R, 0, device=device)
            b, a = coefficients(n)
            return lambda clock=None: K.lti(x, b, a, head, clock=clock)
        return make

    def adjoint(R, T, n):
        def make():
            g, x, y = (torch.randn(R, T, device=device) for _ in range(3))
            b, a = coefficients(n)
            return lambda clock=None: K.lti_adjoint(g, x, y, b, a, 0, True, n + 1, n, clock=clock)
        return make

    def tv(R, T, adjoint):
        def make():
            theta = 0.3 + 0.1 * torch.sin(torch.arange(T, device=device) / 1000.0)
            a = torch.stack([-1.8 * torch.cos(theta), torch.full_like(theta, 0.81)], -1)[None].expand(R, -1, -1)
            a = a.contiguous()
            u, g = torch.randn(R, T, device=device), torch.randn(R, T, device=device)
            if adjoint:
                z = K.time_varying(u, a)
                return lambda clock=None: K.time_varying_adjoint(g, a, z, clock=clock)
            return lambda clock=None: K.time_varying(u, a, clock=clock)
        return make

    return [
        ("lti forward, order 1, 32 x 2^20", forward(32, 1 << 20, 1)),
        ("lti forward, order 2, 32 x 2^20", forward(32, 1 << 20, 2)),
        ("lti forward, order 4, 32 x 2^20", forward(32, 1 << 20, 4)),
        ("lti forward, order 2, 1 x 2^24", forward(1, 1 << 24, 2)),
        ("lti_adjoint (dx, db, da), order 2, 32 x 2^20", adjoint(32, 1 << 20, 2)),
        ("lti_adjoint (dx, db, da), order 4, 32 x 2^20", adjoint(32, 1 << 20, 4)),
        ("time_varying forward, order 2, 8 x 2^20", tv(8, 1 << 20, False)),
        ("time_varying_adjoint (du, da), order 2, 8 x 2^20", tv(8, 1 << 20, True)),
    ]


def timeline_report(device: str = "cuda", only: list[str] | None = None) -> str:
    """Markdown: every case of ``cases`` timed plain and with stamps, and its stamps summarized."""
    from triton.testing import do_bench

    sm_count = torch.cuda.get_device_properties(device).multi_processor_count
    out = ["Cycle stamps at the phase boundaries of the single-pass kernels (`kernels/_clock.py`, "
           "`benchmarks/tile_timeline.py`); a case's phases are medians over its tiles.", ""]
    for label, make in cases(device):
        if only and not any(label.startswith(o) for o in only):
            continue
        run = make()
        clock = torch.empty(0, dtype=torch.int64, device=device)
        ms_plain = do_bench(lambda: run(), warmup=25, rep=100)
        ms_timed = do_bench(lambda: run(clock), warmup=25, rep=100)
        run(clock)  # the rows summarized: one more launch after the timing
        torch.cuda.synchronize(device)
        out += [summary_markdown(label, summarize(clock, sm_count), ms_plain, ms_timed), ""]
        del run, clock
    return "\n".join(out)


if __name__ == "__main__":
    print(timeline_report())
