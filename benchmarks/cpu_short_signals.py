"""Short and medium signals on the CPU engine, against scipy and against another checkout, in one run.

    python benchmarks/cpu_short_signals.py                       # this tree against scipy
    python benchmarks/cpu_short_signals.py --against ../old-tree # and against another checkout
    python benchmarks/cpu_short_signals.py --out DIR             # also write DIR/short_signals.md

A call on a few thousand samples costs the engine's fixed work (block responses, the carry scan,
the glue), not its per-sample work, so this table is where a change in the number of torch
operations a call shows. Each tree runs in a worker process of its own (two versions of the package
cannot share one interpreter); the parent asks the workers in turn, case by case and round by round
(A, B, scipy, A, B, scipy, ...), so load from other processes hits every column alike, and reports
the median of the rounds. scipy runs in float64 in the first worker, as the CPU targets do.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if __package__ in (None, ""):
    sys.path.insert(0, ROOT)

from benchmarks.report import print_and_write  # noqa: E402
from benchmarks.timing import time_cpu  # noqa: E402  (this tree's, before a worker puts another first)

# name -> (kind, rows, T, order or sections, mode[, dtype: float32 unless given])
CASES = {
    "lfilter biquad (1, 256)": ("lti", 1, 256, 2, "forward"),
    "lfilter biquad (1, 4096)": ("lti", 1, 4096, 2, "forward"),
    "lfilter biquad (16, 4096)": ("lti", 16, 4096, 2, "forward"),
    "lfilter biquad (1, 65536)": ("lti", 1, 65536, 2, "forward"),
    "lfilter order 4 (1, 4096)": ("lti", 1, 4096, 4, "forward"),
    "lfilter biquad (8, 2^20)": ("lti", 8, 1 << 20, 2, "forward"),
    "lfilter order 4 (8, 2^18)": ("lti", 8, 1 << 18, 4, "forward"),
    "lfilter order 8 (8, 2^18)": ("lti", 8, 1 << 18, 8, "forward"),
    "lfilter order 8 (1, 65536)": ("lti", 1, 65536, 8, "forward"),
    "lfilter biquad (8, 2^18) float64": ("lti", 8, 1 << 18, 2, "forward", "float64"),
    "lfilter order 8 (8, 2^18) float64": ("lti", 8, 1 << 18, 8, "forward", "float64"),
    "lfilter order 4 (1, 4096), forward + backward": ("lti", 1, 4096, 4, "train"),
    "lfilter biquad (1, 4096), forward + backward": ("lti", 1, 4096, 2, "train"),
    "lfilter biquad (16, 4096), forward + backward": ("lti", 16, 4096, 2, "train"),
    "sosfilt 4 biquads (1, 4096)": ("sos", 1, 4096, 4, "forward"),
    "sosfilt 4 biquads (16, 4096)": ("sos", 16, 4096, 4, "forward"),
    "sosfilt 4 biquads (1, 65536)": ("sos", 1, 65536, 4, "forward"),
    "sosfilt 8 biquads (1, 16384)": ("sos", 1, 16384, 8, "forward"),
    "sosfilt 4 biquads (8, 2^18)": ("sos", 8, 1 << 18, 4, "forward"),
    "sosfilt 4 biquads (1, 4096), forward + backward": ("sos", 1, 4096, 4, "train"),
    "time_varying_lfilter order 2 (1, 4096)": ("tv", 1, 4096, 2, "forward"),
    "time_varying_lfilter order 2 (8, 2^18)": ("tv", 8, 1 << 18, 2, "forward"),
    "time_varying_lfilter order 8 (8, 2^16)": ("tv", 8, 1 << 16, 8, "forward"),
    "time_varying_lfilter order 16 (1, 2^16)": ("tv", 1, 1 << 16, 16, "forward"),
    "time_varying_lfilter order 16 (8, 2^14)": ("tv", 8, 1 << 14, 16, "forward"),
    "time_varying_lfilter order 2 (8, 2^16), forward + backward": ("tv", 8, 1 << 16, 2, "train"),
}


# ------------------------------------------------------------------------------------------ worker
def _build(name: str, provider: str):
    """A zero-argument callable running ``name`` with ``provider`` ("ssm_lfilter" or "scipy")."""
    import numpy as np
    import scipy.signal as ss
    import torch

    kind, R, T, order, mode, *dtype = CASES[name]
    dt = getattr(torch, dtype[0] if dtype else "float32")
    g = np.random.default_rng(0)
    x64 = g.standard_normal((R, T))
    if kind == "lti":
        b, a = ss.butter(order, 0.2)
    elif kind == "sos":
        sos = ss.butter(2 * order, 0.2, output="sos")
    if provider == "scipy":
        if mode != "forward" or kind == "tv":  # scipy has no time-varying filter
            return None
        return (lambda: ss.lfilter(b, a, x64)) if kind == "lti" else (lambda: ss.sosfilt(sos, x64))
    import ssm_lfilter as sl

    x = torch.tensor(x64, dtype=dt)
    if kind == "tv":
        # order/2 resonators at radius 0.95 whose angles drift slowly, one set of coefficients per row
        t = torch.arange(T, dtype=torch.float64)
        a_t = torch.ones(R, T, 1, dtype=torch.float64)
        for k in range(order // 2):
            th = 0.2 + 0.6 * k + 0.1 * torch.sin(t / 300.0 + k)
            quad = torch.stack([torch.ones_like(th), -2 * 0.95 * torch.cos(th), torch.full_like(th, 0.95 ** 2)], -1)
            a_t = sum(torch.nn.functional.pad(a_t * quad[:, j:j + 1], (j, 2 - j)) for j in range(3))
        at, bt = a_t.float(), torch.tensor([0.5, 0.2, 0.1])
        if mode == "forward":
            return lambda: sl.time_varying_lfilter(bt, at, x)
        xr, ar = x.clone().requires_grad_(), at.clone().requires_grad_()
        return lambda: sl.time_varying_lfilter(bt, ar, xr).square().sum().backward()
    if kind == "lti":
        bt, at = torch.tensor(b, dtype=dt), torch.tensor(a, dtype=dt)
        if mode == "forward":
            return lambda: sl.lfilter(bt, at, x)
        xr, br, ar = x.clone().requires_grad_(), bt.clone().requires_grad_(), at.clone().requires_grad_()
        return lambda: sl.lfilter(br, ar, xr).square().sum().backward()
    st = torch.tensor(sos, dtype=torch.float32)
    if mode == "forward":
        return lambda: sl.sosfilt(st, x)
    xr, sr = x.clone().requires_grad_(), st.clone().requires_grad_()
    return lambda: sl.sosfilt(sr, xr).square().sum().backward()


def _worker(tree: str) -> None:
    sys.path.insert(0, tree)
    import torch

    import ssm_lfilter

    assert os.path.abspath(ssm_lfilter.__file__).startswith(os.path.abspath(tree)), ssm_lfilter.__file__
    torch.manual_seed(0)
    built = {}
    print(json.dumps({"ready": tree, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        key = (req["case"], req["provider"])
        if key not in built:
            built[key] = _build(*key)
        fn = built[key]
        # the median of as many calls as fit the budget (at least 3), after one warm-up call
        s = None if fn is None else time_cpu(fn, warmup=1, max_runs=1 << 30, budget_s=req["budget"]).median_ms / 1e3
        print(json.dumps({"s": s}), flush=True)


# ------------------------------------------------------------------------------------------ parent
class _Worker:
    def __init__(self, tree: str):
        env = dict(os.environ, PYTHONPATH=tree)
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", tree],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.hello = json.loads(self.proc.stdout.readline())

    def ask(self, case: str, provider: str, budget: float) -> float | None:
        self.proc.stdin.write(json.dumps({"case": case, "provider": provider, "budget": budget}) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())["s"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def _git_rev(tree: str) -> str:
    """The tree's commit, with "+ changes" when its work tree differs from it."""
    try:
        git = ["git", "-C", tree]
        rev = subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(git + ["status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, check=True).stdout.strip()
        return rev + (" + changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "?"


def run(trees: list[str], rounds: int = 5, budget: float = 0.1, cases: list[str] | None = None) -> str:
    """The table as markdown: per case, ms a call of each tree and of scipy, and the ratios."""
    workers = [_Worker(t) for t in trees]
    names = ["this tree" if i == 0 else f"tree {i}" for i in range(len(trees))]
    rows = []
    try:
        for case in cases or list(CASES):
            times = {n: [] for n in names + ["scipy"]}
            for _ in range(rounds):
                for n, w in zip(names, workers):
                    times[n].append(w.ask(case, "ssm_lfilter", budget))
                times["scipy"].append(workers[0].ask(case, "scipy", budget))
            med = {n: (None if v[0] is None else statistics.median(v)) for n, v in times.items()}
            rows.append((case, med))
            print(case, {n: (None if t is None else round(t * 1e3, 3)) for n, t in med.items()}, flush=True)
    finally:
        for w in workers:
            w.close()
    head = ["case"] + [f"{n} ms" for n in names] + ["scipy f64 ms", "this tree / scipy"]
    head += [f"this tree / {n}" for n in names[1:]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for case, med in rows:
        ours, sp = med[names[0]], med["scipy"]
        cells = [case] + [f"{med[n] * 1e3:.3f}" for n in names]
        cells += ["-" if sp is None else f"{sp * 1e3:.3f}", "-" if sp is None else f"{ours / sp:.1f}x"]
        cells += [f"{ours / med[n]:.2f}" for n in names[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    trees_txt = "; ".join(f"{n}: `{os.path.relpath(t, ROOT) if t != ROOT else '.'}` at {_git_rev(t)}"
                          for n, t in zip(names, trees))
    header = (f"# Short signals on the CPU engine\n\n{platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} cores, torch threads {workers[0].hello['threads']}, "
              f"{time.strftime('%Y-%m-%d')}; {trees_txt}. float32 `ssm_lfilter` (float64 where the case says so) against float64 scipy; "
              f"medians of {rounds} interleaved rounds of about {budget} s each. Times a call; the ratios "
              "divide this tree's time by the other column's (below 1: this tree is faster).\n\n")
    return header + "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--against", nargs="*", default=[], help="other checkouts to time beside this one")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--budget", type=float, default=0.1, help="seconds a case and column a round")
    ap.add_argument("--cases", nargs="*", help="case names (default: all)")
    ap.add_argument("--out", help="write short_signals.md here")
    args = ap.parse_args(argv)
    if args.worker:
        return _worker(args.worker)
    table = run([ROOT] + [os.path.abspath(t) for t in args.against], args.rounds, args.budget, args.cases)
    print_and_write(table, args.out, "short_signals.md")


if __name__ == "__main__":
    main()
