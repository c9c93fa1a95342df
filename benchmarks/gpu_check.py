"""One-call GPU check: the GPU test tier, kernel timings against a copy, and the GPU benchmark suite.

Run from the repository root on a CUDA machine (a lent H100/H200 gets one call of a few minutes):

    python -m pip install --no-build-isolation --no-deps -e .   # the same python, so kernels/
    python benchmarks/gpu_check.py --out OUT_DIR                  # is importable as ssm_lfilter.kernels

(A bare ``pip`` may belong to another interpreter, and ``PYTHONPATH=.`` then imports the source
``ssm_lfilter`` without its kernels: every CUDA call warns and runs the torch engine. The first
lent run here did exactly that; its numbers were discarded.)

It writes ``OUT_DIR/report.md`` (device, versions, date, the test tier's result, the kernel
bandwidth table and the suite's target table), ``OUT_DIR/gpu-tests.log`` and
``OUT_DIR/gpu_suite.tar.gz`` (the suite's CSV, markdown and plots). Each stage has a time budget, so a
slow stage is cut short and reported rather than losing the whole run.
"""
from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tarfile
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


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


def _test_tier(out_dir: str, budget_s: int) -> str:
    """``pytest -m gpu`` in a subprocess with a time limit; returns its closing line."""
    log = os.path.join(out_dir, "gpu-tests.log")
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "tests"]
    try:
        res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=budget_s)
        text, rc = res.stdout + res.stderr, res.returncode
    except subprocess.TimeoutExpired as err:
        text, rc = (err.stdout or b"").decode() if isinstance(err.stdout, bytes) else (err.stdout or ""), "timeout"
    with open(log, "w") as f:
        f.write(text)
    tail = [ln for ln in text.strip().splitlines() if ln.strip()][-1:] or ["(no output)"]
    return f"`{' '.join(cmd[2:])}` exit {rc}: {tail[0]}"


def _tile_io_comparison() -> tuple[str, bool]:
    """Per-lane vs coalesced-tile chunk passes of the LTI and time-varying kernels, side by side.
    Returns the table and whether the tile path compiled, matched and was faster on the LTI row."""
    import torch
    from triton.testing import do_bench

    from ssm_lfilter.kernels.lti import lti
    from ssm_lfilter.kernels.time_varying import time_varying

    dev = "cuda"
    rows = ["| case | per-lane ms | tile ms | tile GB/s | copy GB/s | max rel diff |", "|---|---|---|---|---|---|"]
    src = torch.empty(2**28, dtype=torch.uint8, device=dev)
    dst = torch.empty_like(src)
    copy = 2 * src.numel() / do_bench(lambda: dst.copy_(src), return_mode="median") / 1e6
    b = torch.tensor([[0.2, 0.4, 0.2]], device=dev)
    a = torch.tensor([[-1.2, 0.5]], device=dev)
    T = 1 << 24
    th = 0.3 + 0.1 * torch.sin(torch.arange(T, device=dev) / 1000.0)
    at = torch.stack([-2 * 0.9 * torch.cos(th), torch.full_like(th, 0.81)], -1)[None]
    cases = []
    for R, Tc in ((1, T), (4096, 4096)):
        x = torch.randn(R, Tc, device=dev)
        h = torch.zeros(R, 0, device=dev)
        cases.append((f"lti N=2 {R}x{Tc}", lambda co, x=x, h=h: lti(x, b, a, h, coalesced=co), 8 * x.numel()))
    u = torch.randn(1, T, device=dev)
    cases.append(("time_varying N=2 1x2^24", lambda co: time_varying(u, at, coalesced=co), 8 * T + 8 * T))
    tile_wins = None
    for name, fn, nbytes in cases:
        res = {}
        for co in (False, True):
            try:
                y = fn(co)
                res[co] = (do_bench(lambda: fn(co), return_mode="median"), y)
            except Exception as err:  # noqa: BLE001 - a kernel that fails to compile is a result
                res[co] = (float("nan"), None)
                rows.append(f"| {name} coalesced={co} | failed: {type(err).__name__}: {str(err)[:120]} |||||")
        (ms0, y0), (ms1, y1) = res[False], res[True]
        diff = float("nan") if y0 is None or y1 is None else ((y1 - y0).abs().max() / y0.abs().max()).item()
        rows.append(f"| {name} | {ms0:.3f} | {ms1:.3f} | {nbytes / ms1 / 1e6:.0f} | {copy:.0f} | {diff:.1e} |")
        if tile_wins is None:
            tile_wins = y1 is not None and diff < 1e-5 and ms1 < ms0
    return "\n".join(rows), bool(tile_wins)


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
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--test-budget", type=int, default=90, help="seconds for the GPU test tier")
    ap.add_argument("--sweeps", nargs="*", default=None, help="suite sweeps to run (default: all of the cuda preset)")
    ap.add_argument("--skip-suite", action="store_true")
    ap.add_argument("--bandwidth", action="store_true", help="also time the public functions against a copy")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    parts = ["# ssm_lfilter GPU check", "", _env(), ""]

    def save():  # after every stage, so a run cut short still leaves its report
        with open(os.path.join(args.out, "report.md"), "w") as f:
            f.write("\n".join(parts) + f"\n\nElapsed: {time.time() - t0:.0f} s\n")

    try:
        table, tile_wins = _tile_io_comparison()
    except Exception as err:  # noqa: BLE001
        table, tile_wins = f"failed: {type(err).__name__}: {err}", False
    # The rest of the run (the test tier's subprocess included) uses the faster working variant.
    os.environ["SSM_LFILTER_TILE_IO"] = "1" if tile_wins else "0"
    parts += ["## Chunk passes: per-lane vs coalesced tiles", "", table, "",
              f"The rest of this run uses SSM_LFILTER_TILE_IO={os.environ['SSM_LFILTER_TILE_IO']}.", ""]
    save()
    print("\n".join(parts[-5:]), flush=True)

    parts += ["## GPU test tier", "", _test_tier(args.out, args.test_budget), ""]
    save()
    print(parts[-2], flush=True)

    if args.bandwidth:
        try:
            parts += ["## Public functions against a copy", "", _bandwidth_table(), ""]
        except Exception as err:  # noqa: BLE001 - report the failure and go on to the suite
            parts += ["## Public functions against a copy", "", f"failed: {type(err).__name__}: {err}", ""]
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
