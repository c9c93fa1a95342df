"""One-call GPU check: the GPU test tier, kernel timings against a copy, and the GPU benchmark suite.

Run from the repository root on a CUDA machine (a lent H100/H200 gets one call of a few minutes):

    python -m pip install --no-build-isolation --no-deps -e .   # the same python, so kernels/
    python benchmarks/gpu_check.py --out OUT_DIR                  # is importable as ssm_lfilter.kernels

(A bare ``pip`` may belong to another interpreter, and ``PYTHONPATH=.`` then imports the source
``ssm_lfilter`` without its kernels: every CUDA call warns and runs the torch engine. The first
lent run here did exactly that; its numbers were discarded.)

Stages, in this order, each written to the report as soon as it ends, each in processes of its own
under a time budget (a kernel that never returns, or a cold compile slower than its budget, costs
that stage alone, and the report names the variant it was on):

1. the compile workers (``--warm-workers`` processes, ``--warm-budget`` s): every variant of the
   table run once, so Triton's on-disk cache is full before anything is timed;
2. the kernel variant table (``benchmarks/variant_table.py``, one process a family, ``--family-budget``
   s each, ``--variants-budget`` s in all; ``--families`` picks them): single-pass vs three-pass
   kernels, the fused sos cascade vs per-section launches, the one-launch backwards of the LTI,
   time-varying and sos paths vs their compositions, the fused coefficient-gradient reduction vs
   per-lag torch, the high-order lane spread, the fused time-varying cascade, the cascade with
   initial states; each row with its first call's seconds (the compile, when the workers missed it);
3. with ``--timeline``, the single-pass kernels' phases from GPU clock stamps
   (``benchmarks/tile_timeline.py``);
4. the GPU test tier (``--test-budget`` s, ``--skip-tests``; in 8 processes where pytest-xdist is
   installed; ``pytest -v``, so ``gpu-tests.log`` names every test as it ends and a tier its budget
   stops reports each outcome's count so far);
5. with ``--bandwidth``, the public functions against a copy;
6. with ``--host``, a profile of a call's host time, that time layer by layer, and the public
   functions as CUDA graph replays (``benchmarks/host_time.py``); stages 3, 5 and 6 get
   ``--stage-budget`` s each;
7. the benchmark suite (about 110 s, ``--skip-suite``; ``--sweeps`` picks sweeps).

Give the device call the longest limit allowed (600 s) and keep the budgets' sum inside it.

It writes ``OUT_DIR/report.md`` (device, versions, date, the variant table, the test tier's result,
the kernel bandwidth table and the suite's target table), ``OUT_DIR/gpu-tests.log`` and
``OUT_DIR/gpu_suite.tar.gz`` (the suite's CSV, markdown and plots).
"""
from __future__ import annotations

import argparse
import datetime
import os
import re
import sys
import tarfile
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks import _child  # noqa: E402 - after the path above
from benchmarks.variant_cases import BUILDERS  # noqa: E402


def _env() -> str:
    import torch

    lines = [f"- date: {datetime.date.today().isoformat()}", f"- torch {torch.__version__}"]
    try:
        import triton

        lines.append(f"- triton {triton.__version__}")
    except ImportError:
        lines.append("- triton: not installed")
    try:
        import torchaudio

        lines.append(f"- torchaudio {torchaudio.__version__}")
    except Exception as err:  # noqa: BLE001 - any import failure is worth reporting, not fatal
        lines.append(f"- torchaudio: unavailable ({type(err).__name__})")
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        lines.append(f"- device: {p.name}, {p.multi_processor_count} SMs, {p.total_memory / 2**30:.0f} GiB")
    return "\n".join(lines)


_OUTCOME = re.compile(r"\b(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b")


def _outcome_counts(text: str) -> dict[str, int]:
    """Each outcome's count from ``pytest -v`` lines (one a test as it ends, ``[gwN] [ 5%] PASSED
    tests/...::test`` under xdist), so a tier stopped by its budget still says what ran and how."""
    counts: dict[str, int] = {}
    for line in text.splitlines():
        m = _OUTCOME.search(line)
        if m and "::" in line and not line.startswith(("FAILED ", "ERROR ")):  # not the summary's repeats
            counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    return counts


def _test_tier(out_dir: str, budget_s: int, tests=None, workers: int = 8) -> str:
    """``pytest -m gpu`` in a subprocess with a time limit; returns its closing line, and when the
    budget stopped it, each outcome's count so far. ``-v``: the log names every test as it ends (two
    leases stopped the tier with only dots to count); no pytest-benchmark (xdist disables it anyway,
    with a warning a worker)."""
    log = os.path.join(out_dir, "gpu-tests.log")
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-v", "-p", "no:cacheprovider", "-p", "no:benchmark",
           *(tests or ["tests"])]
    try:  # the tier is compile-bound: tests in parallel processes compile in parallel
        import xdist  # noqa: F401

        cmd[3:3] = ["-n", str(workers)]
    except ImportError:
        pass
    # its own process group, so a tier cut short leaves no worker running on the GPU during the suite
    text, stopped, rc = _child.run(cmd, budget_s, group=True)
    rc = "timeout" if stopped else rc
    with open(log, "w") as f:
        f.write(text)
    tail = [ln for ln in text.strip().splitlines() if ln.strip()][-1:] or ["(no output)"]
    so_far = ", ".join(f"{n} {k.lower()}" for k, n in sorted(_outcome_counts(text).items())) or "none ended"
    return f"`{' '.join(cmd[2:])}` exit {rc}: " + (f"stopped after {budget_s} s; so far {so_far}" if stopped else tail[0])


def _stage(name: str) -> str:
    """One in-process stage's markdown (run in a child process by ``_stage_in_child``)."""
    if name == "timeline":
        from benchmarks import tile_timeline

        return tile_timeline.timeline_report()
    if name == "bandwidth":
        return _bandwidth_table()
    from benchmarks import host_time

    return {"host_profile": host_time.host_profile, "host_layers": host_time.backward_breakdown,
            "host_graphs": host_time.graph_table}[name]()


_MARK = "----- stage output -----"


def _stage_in_child(name: str, budget_s: float) -> str:
    """``_stage(name)`` in its own process, stopped after ``budget_s``: a kernel that never returns
    costs that stage alone, and the stage's own lines printed so far come back with the note."""
    out, stopped, rc = _child.run([sys.executable, os.path.abspath(__file__), "--stage", name], budget_s)
    if stopped:
        return f"stopped after {budget_s:.0f} s (a kernel that never returned, or slower than its budget); its output:\n\n```\n{out[-3000:]}\n```"
    if _MARK in out:
        return out.split(_MARK, 1)[1].strip()
    return f"failed (exit {rc}):\n\n```\n{out[-3000:]}\n```"


def _bandwidth_table() -> str:
    """The kernels against a device-to-device copy of the same bytes, in one process."""
    import torch
    from triton.testing import do_bench

    import ssm_lfilter as sl

    dev = "cuda"
    rows = ["| case | time (ms) | GB/s | fraction of copy |", "|---|---|---|---|"]

    def copy_gbs(nbytes: int) -> float:
        src = torch.empty(nbytes // 4, device=dev)
        dst = torch.empty_like(src)
        ms = do_bench(lambda: dst.copy_(src), return_mode="median")
        return 2 * nbytes / ms / 1e6

    def case(name, fn, nbytes):
        ms = do_bench(fn, return_mode="median")
        gbs = nbytes / ms / 1e6
        ref = copy_gbs(nbytes // 2)  # a copy moves its bytes twice (read + write)
        rows.append(f"| {name} | {ms:.3f} | {gbs:.0f} | {gbs / ref:.0%} |")

    torch.manual_seed(0)
    T = 2**24
    x = torch.randn(1, T, device=dev)
    xb = torch.randn(4096, 4096, device=dev)
    b2 = torch.tensor([0.2, 0.4, 0.2], device=dev)
    a2 = torch.tensor([1.0, -0.6, 0.3], device=dev)
    case("lfilter biquad fwd, 1 x 2^24", lambda: sl.lfilter(b2, a2, x), 8 * T)
    case("lfilter biquad fwd, 4096 x 4096", lambda: sl.lfilter(b2, a2, xb), 8 * xb.numel())
    a1 = torch.full((1, 1), 0.99, device=dev)
    case("linear_recurrence fwd, 1 x 2^24", lambda: sl.linear_recurrence(a1, x), 8 * T)
    sos = torch.tensor([[0.2, 0.4, 0.2, 1.0, -0.6, 0.3]], device=dev).repeat(8, 1)
    case("sosfilt 8 sections fwd, 1 x 2^24", lambda: sl.sosfilt(sos, x), 8 * T)
    at = torch.stack([torch.ones(T, device=dev), -0.5 * torch.ones(T, device=dev), 0.2 * torch.ones(T, device=dev)], -1)
    case("time_varying_lfilter order 2 fwd, 1 x 2^24", lambda: sl.time_varying_lfilter(b2, at, x), 8 * T + 12 * T)
    xg = x.clone().requires_grad_()

    def fwd_bwd():
        sl.lfilter(b2, a2, xg).sum().backward()

    case("lfilter biquad fwd+bwd (x), 1 x 2^24", fwd_bwd, 8 * T + 8 * T)
    xc = torch.randn(32, 1 << 20, device=dev, requires_grad=True)
    bc, ac = b2.clone().requires_grad_(), a2.clone().requires_grad_()

    def fwd_bwd_coefficients():  # forward reads x, writes y; backward reads g, x, y, writes dx
        torch.autograd.grad(sl.lfilter(bc, ac, xc).sum(), (xc, bc, ac))

    case("lfilter biquad fwd+bwd (x, b, a), 32 x 2^20", fwd_bwd_coefficients, 24 * xc.numel())
    xs = torch.randn(32, 1 << 20, device=dev)
    for order in (1, 4):
        p = torch.tensor([0.9] * order, dtype=torch.float64)
        a_o = torch.tensor(__import__("numpy").poly(p.numpy())[1:], dtype=torch.float32, device=dev)
        a_o = torch.cat([torch.ones(1, device=dev), a_o])
        b_o = torch.full((order + 1,), 0.2, device=dev)
        case(f"lfilter order {order} fwd, 32 x 2^20", lambda b=b_o, a=a_o: sl.lfilter(b, a, xs), 8 * xs.numel())
    at8 = at.new_ones(1 << 20, 3)
    at8[:, 1], at8[:, 2] = -0.5, 0.2
    x8 = torch.randn(8, 1 << 20, device=dev)
    case("time_varying_lfilter order 2 fwd, 8 x 2^20", lambda: sl.time_varying_lfilter(b2, at8, x8),
         8 * x8.numel() + 12 * (1 << 20))
    bt8 = b2.repeat(1 << 20, 1)  # per-sample b: the FIR fused into the recurrence (one launch)
    case("time_varying_lfilter order 2 per-sample b fwd, 8 x 2^20", lambda: sl.time_varying_lfilter(bt8, at8, x8),
         8 * x8.numel() + 24 * (1 << 20))
    zi8 = sl.sosfilt_zi(sos)[:, None, :] * x[:, :1]  # (8 sections, 1 row, 2)
    case("sosfilt 8 sections with zi fwd, 1 x 2^24", lambda: sl.sosfilt(sos, x, zi=zi8), 8 * T)
    case("sosfiltfilt 8 sections, 1 x 2^24 (two passes)", lambda: sl.sosfiltfilt(sos, x), 16 * T)
    sos_tv = torch.tensor([0.2, 0.4, 0.2, 1.0, -0.6, 0.3], device=dev).repeat(1 << 20, 8, 1)  # (T, 8, 6)
    case("time_varying_sosfilt 8 sections fwd, 8 x 2^20", lambda: sl.time_varying_sosfilt(sos_tv, x8),
         8 * x8.numel() + 4 * sos_tv.numel())
    zi_tv = torch.zeros(8, 8, 4, device=dev)  # (sections, rows, [x[-1], x[-2], y[-1], y[-2]])
    case("time_varying_sosfilt 8 sections with zi fwd, 8 x 2^20",
         lambda: sl.time_varying_sosfilt(sos_tv, x8, zi=zi_tv), 8 * x8.numel() + 4 * sos_tv.numel())
    # Host time a call: tiny inputs, many calls and one synchronization, so the GPU never waits for
    # anything but the host (the floor under every public-function time above).
    import time

    from ssm_lfilter import ops

    tiny = torch.randn(1, 256, device=dev, requires_grad=True)
    bt, a_t = b2.clone().requires_grad_(), a2.clone().requires_grad_()
    for name, fn in (("lfilter fwd", lambda: sl.lfilter(b2, a2, tiny.detach())),
                     ("lfilter fwd+bwd (x, b, a)", lambda: torch.autograd.grad(sl.lfilter(bt, a_t, tiny).sum(),
                                                                              (tiny, bt, a_t))),
                     ("sosfilt 8 sections fwd", lambda: sl.sosfilt(sos, tiny.detach())),
                     ("time_varying_lfilter fwd", lambda: sl.time_varying_lfilter(b2, at8[:256], tiny.detach()))):
        for entries in (True, False):  # the eager entries against the registered ops, side by side
            ops.eager_entries = entries
            fn()
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(200):
                fn()
            torch.cuda.synchronize()
            path = "eager entries" if entries else "registered ops"
            rows.append(f"| host time a call ({path}): {name}, 1 x 256 | "
                        f"{(time.perf_counter() - t0) / 200 * 1e3:.3f} | | |")
        ops.eager_entries = True
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out")
    ap.add_argument("--test-budget", type=int, default=90, help="seconds for the GPU test tier")
    ap.add_argument("--sweeps", nargs="*", default=None, help="suite sweeps to run (default: all of the cuda preset)")
    ap.add_argument("--skip-suite", action="store_true")
    ap.add_argument("--skip-tests", action="store_true")
    ap.add_argument("--skip-variants", action="store_true", help="no kernel variant table")
    ap.add_argument("--families", nargs="*", default=None, choices=list(BUILDERS),
                    help="variant-table families to time, in this order (lti, sos, sos_zi, sos_adjoint, tv, "
                         "tv_adjoint, tv_sos, ...; default: all, in the table's order)")
    ap.add_argument("--host", action="store_true",
                    help="also profile a call's host time and time the public functions as CUDA graph replays")
    ap.add_argument("--tests", nargs="*", default=None, help="test files or ids for the GPU tier (default: tests)")
    ap.add_argument("--bandwidth", action="store_true", help="also time the public functions against a copy")
    ap.add_argument("--timeline", action="store_true",
                    help="also stamp the single-pass kernels' phases with the GPU clock (benchmarks/tile_timeline.py)")
    ap.add_argument("--warm-workers", type=int, default=8,
                    help="processes that compile the variant table's kernels in parallel first (0: none)")
    ap.add_argument("--warm-budget", type=int, default=150, help="seconds for the parallel compile stage")
    ap.add_argument("--variants-budget", type=int, default=240,
                    help="seconds for the variant table; families not begun by then are listed untimed")
    ap.add_argument("--family-budget", type=int, default=90,
                    help="seconds for one family of the variant table (its process is stopped after)")
    ap.add_argument("--stage-budget", type=int, default=90,
                    help="seconds for each of the timeline, bandwidth and host stages (each its own process)")
    ap.add_argument("--smoke", action="store_true",
                    help="CPU plumbing check (tests): the variant table shrunk, on CPU under the interpreter, "
                         "its copy bandwidth not measured (1 GB/s stands in)")
    ap.add_argument("--stage", default=None, help=argparse.SUPPRESS)  # one stage, in a child process
    args = ap.parse_args(argv)
    if args.stage is not None:
        text = _stage(args.stage)
        print(_MARK, text, sep="\n", flush=True)
        return 0
    if args.out is None:
        ap.error("--out is required")
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    parts = ["# ssm_lfilter GPU check", "", _env(), ""]

    def save(partial=()):  # after every stage (and case), so a run cut short still leaves its report
        with open(os.path.join(args.out, "report.md"), "w") as f:
            f.write("\n".join([*parts, *partial]) + f"\n\nElapsed: {time.time() - t0:.0f} s\n")

    from benchmarks import variant_table

    child_args = ("--dev", "cpu", "--shrink", str(2**14), "--rows", "2") if args.smoke else ()
    if args.warm_workers > 0 and not args.skip_variants:
        parts += ["Compiled first: " + variant_table.warm(args.warm_workers, args.warm_budget, args.families,
                                                          args.timeline and not args.smoke, child_args), ""]
        save()
    try:
        table, verdict, matched = (("(skipped)", {}, {}) if args.skip_variants else variant_table.run(
            args.families, args.variants_budget, args.family_budget, 1.0 if args.smoke else variant_table.copy_gbs(),
            child_args=child_args,
            on_update=lambda rows: save(["## Kernel variants side by side (so far)", "", *rows])))
    except Exception as err:  # noqa: BLE001
        table, verdict, matched = f"failed: {type(err).__name__}: {err}", {}, {}
    # The rest of the run (the test tier's subprocess included) keeps the per-family defaults
    # (kernels/_variants.py) unless a default-on single-pass family failed to compile or match.
    broken = [f for f in ("lti", "tv", "sos", "sos_zi", "tv_sos") if matched.get(f) is False]
    if broken:
        os.environ["SSM_LFILTER_SINGLE_PASS"] = "0"
    parts += ["## Kernel variants side by side", "", table, "",
              f"Single pass faster and matching, per family: {verdict}; matching: {matched}. The rest of "
              f"this run uses SSM_LFILTER_SINGLE_PASS={os.environ.get('SSM_LFILTER_SINGLE_PASS', '(unset: per-family defaults)')}.", ""]
    save()
    print("\n".join(parts[-5:]), flush=True)

    if args.timeline:
        parts += ["## Where a single-pass tile's time goes (clock stamps)", "",
                  _stage_in_child("timeline", args.stage_budget), ""]
        save()
        print(parts[-2], flush=True)

    if not args.skip_tests:
        parts += ["## GPU test tier", "", _test_tier(args.out, args.test_budget, args.tests), ""]
        save()
        print(parts[-2], flush=True)

    if args.bandwidth:
        parts += ["## Public functions against a copy", "", _stage_in_child("bandwidth", args.stage_budget), ""]
        save()

    if args.host:
        for title, name in (("Host time of a forward + backward call (torch.profiler)", "host_profile"),
                            ("Host time of a forward + backward call, layer by layer", "host_layers"),
                            ("Public functions, plain calls against CUDA graph replays", "host_graphs")):
            parts += [f"## {title}", "", _stage_in_child(name, args.stage_budget), ""]
            save()

    if not args.skip_suite:
        from benchmarks.run import run_gpu_suite

        suite_dir = os.path.join(tempfile.mkdtemp(), "gpu_suite")
        try:
            res = run_gpu_suite(suite_dir, sweeps=args.sweeps)
            parts += ["## Benchmark suite targets", "", res.get("gpu_targets", ""), ""]
            with open(os.path.join(suite_dir, "results.md")) as f:
                parts += ["## Benchmark suite results", "", f.read(), ""]
        except Exception as err:  # noqa: BLE001
            parts += ["## Benchmark suite", "", f"failed: {type(err).__name__}: {err}", ""]
        if os.path.isdir(suite_dir):
            with tarfile.open(os.path.join(args.out, "gpu_suite.tar.gz"), "w:gz") as tar:
                tar.add(suite_dir, arcname="gpu_suite")
        save()
    print("\n".join(parts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
