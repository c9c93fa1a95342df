"""gpu_check.py's kernel variant table, each family compiled and timed in its own process.

A single-pass kernel that never finishes on a GPU (a look-back that waits on a tile no program will
publish) blocks its process for good, and a cold compile of many variants can outlast a lease. The
H200 run of 2026-11-28 lost its whole table to one of the two, with no line saying which, because the
table was one process that printed at the end. So here:

- ``warm``: worker processes compile (run once) the variants first, in parallel, each printing when
  it starts and ends every variant; a worker past the stage's budget is stopped and the variant it was
  on is named.
- ``run``: one process a family, under a deadline, printing a JSON line before each variant
  (``start``), after it (``row``: the first call's seconds, compile included, and the median time) and
  after each case (``diff``, against its "three-pass tiles" reference). A family past its deadline is
  stopped; its rows so far are kept and the variant it was on is reported as not finished.

``time_family`` takes ``bench`` and ``sync`` so the tests run it on CPU under the interpreter.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks import _child  # noqa: E402 - after the path above
from benchmarks.variant_cases import BUILDERS, variant_cases  # noqa: E402

HEADER = ["| case | variant | ms | GB/s | % of copy | max rel diff vs three-pass tiles | first call s | graph replay ms |",
          "|---|---|---|---|---|---|---|---|"]


def copy_gbs() -> float:
    """Bandwidth of a 256 MiB device-to-device copy (read + write), GB/s."""
    import torch
    from triton.testing import do_bench

    src = torch.empty(2**28, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    return 2 * src.numel() / do_bench(lambda: dst.copy_(src), return_mode="median") / 1e6


def _graph_bench(fn) -> float:
    """``fn``'s median time as a CUDA graph replay (``triton.testing.do_bench_cudagraph``): its kernels
    without the host's time between them. On the H200 of 2026-11-28 a launcher's own host time (0.14 to
    0.17 ms a call) was the floor of every row near it, and varied about 2x between the stages of one
    lease (``results/cuda-nvidia-h200-2026-11-28-host-fused``)."""
    from triton.testing import do_bench_cudagraph

    # rep 5 ms: the graph holds about 5 ms of calls unrolled, each with its own outputs in the graph's
    # memory pool (a 32 x 2^20 row set is 128 MiB a call)
    return do_bench_cudagraph(fn, rep=5, return_mode="median")


def time_family(family: str, dev: str = "cuda", shrink: int = 1, rows: int | None = None, bench=None,
                sync=None, emit=print, graph_bench=None) -> None:
    """Run and time every variant of one family's cases, emitting JSON lines as it goes: each variant
    timed as plain calls (``bench``), then, on CUDA, as a CUDA graph replay (``graph_bench``, a record
    of its own after the row, so a variant that cannot be captured keeps its row). The ``public``
    family (autograd through the public functions) is not captured."""
    import torch

    if bench is None:
        from triton.testing import do_bench

        def bench(fn):
            return do_bench(fn, return_mode="median")
    if graph_bench is None and dev != "cpu" and family != "public":
        graph_bench = _graph_bench
    sync = sync or torch.cuda.synchronize

    def say(**record):
        emit(json.dumps(record))

    for _, name, nbytes, variants in variant_cases(dev, [family], shrink, rows):
        outs = {}
        for var, fn in variants.items():
            say(start=[name, var])
            t0 = time.perf_counter()
            try:
                y = fn()
                sync()
                first = time.perf_counter() - t0
                ms = bench(fn)
            except Exception as err:  # noqa: BLE001 - a kernel that fails to compile or run is a result
                say(family=family, name=name, var=var, error=f"{type(err).__name__}: {str(err)[:150]}")
                continue
            outs[var] = y
            say(family=family, name=name, var=var, nbytes=nbytes, ms=ms, first_s=first)
            if graph_bench is not None:
                try:
                    say(name=name, var=var, graph_ms=graph_bench(fn))
                except Exception as err:  # noqa: BLE001 - a variant that cannot be captured keeps its row
                    say(name=name, var=var, graph_error=f"{type(err).__name__}: {str(err)[:100]}")
        ref = outs.get("three-pass tiles")
        for var, y in outs.items():
            diff = float("nan") if ref is None else ((y - ref).abs().max() / ref.abs().max()).item()
            say(name=name, var=var, diff=diff)


def parse(lines: list[str]) -> list[dict]:
    """The JSON records of a family's output (other lines, warnings say, are skipped)."""
    out = []
    for ln in lines:
        try:
            rec = json.loads(ln)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def table(records: list[dict], copy: float, stopped: dict[str, float] | None = None) -> tuple[list[str], dict, dict]:
    """Table rows from the records, and per family: whether the single-pass variant matched its
    three-pass reference (``matched``) and also ran faster (``verdict``). ``stopped``: the families
    whose process was stopped, with the seconds it had run."""
    stopped = stopped or {}
    rows, diffs, results, order, started, graphs = [], {}, {}, [], {}, {}
    for rec in records:
        if "start" in rec:
            started[tuple(rec["start"])] = True
        elif "graph_ms" in rec:
            graphs[(rec["name"], rec["var"])] = f"{rec['graph_ms']:.3f}"
        elif "graph_error" in rec:
            graphs[(rec["name"], rec["var"])] = "not captured"
        elif "diff" in rec:
            diffs[(rec["name"], rec["var"])] = rec["diff"]
        elif "var" in rec:
            key = (rec["name"], rec["var"])
            results[key] = rec
            order.append(key)
    for key in started:  # begun but never ended: the process was stopped on it
        if key not in results:
            results[key] = {"name": key[0], "var": key[1], "unfinished": True}
            order.append(key)
    family_of = {}
    for key in order:
        rec = results[key]
        family_of[rec["name"]] = rec.get("family", family_of.get(rec["name"]))
        if "error" in rec:
            rows.append(f"| {rec['name']} | {rec['var']} | failed: {rec['error']} ||||||")
        elif rec.get("unfinished"):
            rows.append(f"| {rec['name']} | {rec['var']} | not finished: its process was stopped (a kernel that "
                        f"never returned, or compiles past the family's budget) or exited (the family's last row) ||||||")
        else:
            d = diffs.get(key, float("nan"))
            gbs = rec["nbytes"] / rec["ms"] / 1e6
            rows.append(f"| {rec['name']} | {rec['var']} | {rec['ms']:.3f} | {gbs:.0f} | {gbs / copy:.0%} | {d:.1e} | "
                        f"{rec['first_s']:.1f} | {graphs.get(key, '')} |")
    verdict, matched = {}, {}
    for name in dict.fromkeys(k[0] for k in order):
        sp, tp = results.get((name, "single-pass")), results.get((name, "three-pass tiles"))
        if sp is None or tp is None:
            continue
        fam = sp.get("family") or tp.get("family") or family_of.get(name)
        d = diffs.get((name, "single-pass"), float("nan"))
        ok = "ms" in sp and "ms" in tp and d < 1e-4
        matched[fam] = matched.get(fam, True) and ok
        verdict[fam] = verdict.get(fam, True) and ok and sp["ms"] < tp["ms"]
    for fam, s in stopped.items():
        rows.append(f"| ({fam}) | | stopped after {s:.0f} s ||||||")
    return rows, verdict, matched


def run(families: list[str] | None, budget_s: float, family_budget_s: float, copy: float, on_update=None,
        child_args: tuple[str, ...] = ()) -> tuple[str, dict, dict]:
    """The table: one child process a family, each under ``min(family_budget_s, what is left)``.
    ``child_args``: more options for each child (``--dev cpu --shrink N --rows R`` in the tests)."""
    t0 = time.time()
    records, stopped, untimed = [], {}, []
    # in the order given (the first the budget reaches first), else the table's
    for fam in (list(dict.fromkeys(families)) if families else list(BUILDERS)):
        left = budget_s - (time.time() - t0)
        if left < 5:
            untimed.append(fam)
            continue
        t1 = time.time()
        out, was_stopped, rc = _child.run([sys.executable, os.path.abspath(__file__), "--family", fam, *child_args],
                                          min(family_budget_s, left))
        if was_stopped:  # what it printed before it was stopped is kept
            stopped[fam] = time.time() - t1
        recs = parse(out.splitlines())
        if not was_stopped and rc != 0:  # it crashed: its last line (a traceback's) says why
            tail = (out.strip().splitlines() or ["(no output)"])[-1]
            recs.append({"family": fam, "name": f"({fam})", "var": "", "error": f"exit {rc}: {tail[:200]}"})
        records += recs
        if on_update is not None:
            on_update(HEADER + table(records, copy, stopped)[0])
    rows, verdict, matched = table(records, copy, stopped)
    rows += [f"| ({fam}) | | not timed: the stage's {budget_s:.0f} s ran out ||||||" for fam in untimed]
    note = (f"\nCopy: {copy:.0f} GB/s (a 256 MiB device-to-device copy, read + write). First call: the first "
            "run of a variant in its family's process, compile (or Triton's cache) included. Graph replay: the "
            "same call captured in a CUDA graph and replayed (`do_bench_cudagraph`), the GPU's time without the "
            "host's (empty: not captured, or the `public` family).")
    return "\n".join(HEADER + rows) + "\n" + note, verdict, matched


def warm_part(part: int, parts: int, families: list[str] | None, timeline: bool, dev: str = "cuda", shrink: int = 1,
              rows: int | None = None) -> None:
    """Compile (run once) every ``parts``-th variant, starting at ``part``, so that the family
    processes find Triton's on-disk cache filled; a line before and after each."""
    import torch

    items = [(name, var, fn) for _, name, _, variants in variant_cases(dev, families, shrink, rows)
             for var, fn in variants.items()]
    if timeline:
        from benchmarks import tile_timeline

        items += [(label, "stamped", lambda make=make: make()(torch.empty(0, dtype=torch.int64, device="cuda")))
                  for label, make in tile_timeline.cases("cuda")]
    for name, var, fn in items[part::parts]:
        print(json.dumps({"warm_start": [name, var]}), flush=True)
        t0 = time.perf_counter()
        try:
            fn()
            if dev != "cpu":
                torch.cuda.synchronize()
            print(json.dumps({"warm_done": [name, var], "s": time.perf_counter() - t0}), flush=True)
        except Exception as err:  # noqa: BLE001 - the family processes report failures
            print(json.dumps({"warm_done": [name, var], "error": f"{type(err).__name__}: {str(err)[:200]}"}),
                  flush=True)


def warm(workers: int, budget_s: float, families: list[str] | None = None, timeline: bool = False,
         child_args: tuple[str, ...] = ()) -> str:
    """``warm_part`` in ``workers`` processes at once (nothing is timed). Returns a summary: the
    slowest variants, failures, and what each stopped worker was still on."""
    t0 = time.time()
    only = (["--families", *families] if families else []) + (["--timeline"] if timeline else []) + list(child_args)
    procs = [_child.start([sys.executable, os.path.abspath(__file__), "--warm-part", f"{k}/{workers}", *only])
             for k in range(workers)]
    done, errors, stuck = [], [], []
    for proc in procs:
        out, _ = _child.finish(proc, max(1.0, budget_s - (time.time() - t0)))
        open_items = {}
        for rec in parse(out.splitlines()):
            if "warm_start" in rec:
                open_items[tuple(rec["warm_start"])] = True
            elif "warm_done" in rec:
                open_items.pop(tuple(rec["warm_done"]), None)
                if "error" in rec:
                    errors.append(f"{' / '.join(rec['warm_done'])}: {rec['error']}")
                else:
                    done.append((rec["s"], " / ".join(rec["warm_done"])))
        stuck += [" / ".join(k) for k in open_items]
    slowest = ", ".join(f"{name} {s:.0f} s" for s, name in sorted(done, reverse=True)[:5])
    lines = [f"{workers} compile workers, {time.time() - t0:.0f} s; {len(done)} variants compiled and run once"
             + (f", the slowest: {slowest}" if slowest else "")]
    lines += [f"- stopped while on (a kernel that never returned, or a compile past the budget): {s}" for s in stuck]
    lines += [f"- failed: {e}" for e in errors[:8]]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", choices=list(BUILDERS), help="time this family (one process of run())")
    ap.add_argument("--warm-part", help="K/N: one compile worker of warm()")
    ap.add_argument("--families", nargs="*", default=None, choices=list(BUILDERS))
    ap.add_argument("--timeline", action="store_true")
    ap.add_argument("--dev", default="cuda", help="cpu runs the kernels under the interpreter (tests)")
    ap.add_argument("--shrink", type=int, default=1, help="lengths divided by this")
    ap.add_argument("--rows", type=int, default=None, help="at most this many rows")
    args = ap.parse_args(argv)
    if args.family:
        cpu = args.dev == "cpu"
        time_family(args.family, args.dev, args.shrink, args.rows, bench=(lambda fn: 1.0) if cpu else None,
                    sync=(lambda: None) if cpu else None, emit=lambda line: print(line, flush=True))
    elif args.warm_part:
        part, parts = map(int, args.warm_part.split("/"))
        warm_part(part, parts, args.families, args.timeline, args.dev, args.shrink, args.rows)
    else:
        ap.error("--family or --warm-part")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
