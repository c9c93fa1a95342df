"""Timing that synchronizes properly.

* CUDA: ``triton.testing.do_bench`` (median, it synchronizes and flushes the L2 cache between runs).
  Calls that take longer than ``slow_s`` (the sequential baselines) are timed instead as the median of
  3 CUDA-event-timed runs after one warm-up (one run if the warm-up took over ``very_slow_s``), since
  do_bench would run them dozens of times.
* CPU: two warm-up calls (the TorchScript loop is only optimized from its second call on; the runner's
  untimed accuracy call counts as the first), then the median of several ``time.perf_counter`` runs.
  The number of runs adapts to the cost of one call so that a measurement takes about ``budget_s``.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field


@dataclass
class Timing:
    median_ms: float
    runs: int
    method: str
    samples_ms: list = field(default_factory=list)

    @property
    def spread(self) -> float:
        """(max - min) / median over the runs, a noise indicator."""
        if len(self.samples_ms) < 2 or self.median_ms <= 0:
            return 0.0
        return (max(self.samples_ms) - min(self.samples_ms)) / self.median_ms


def _sync(device: str):
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def time_cpu(fn, *, warmup: int = 2, min_runs: int = 3, max_runs: int = 15, budget_s: float = 1.0) -> Timing:
    for _ in range(max(0, warmup - 1)):  # TorchScript's profiling executor optimizes on the 2nd call
        fn()
    t0 = time.perf_counter()
    fn()  # the last warm-up call, timed to size the number of runs
    first = time.perf_counter() - t0
    runs = int(min(max_runs, max(min_runs, budget_s / max(first, 1e-6))))
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    return Timing(statistics.median(samples), runs, "cpu-median", samples)


def time_cuda(fn, *, warmup_ms: float = 25, rep_ms: float = 100, slow_s: float = 0.2, very_slow_s: float = 3.0) -> Timing:
    import torch

    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()  # compilation, autotuning, allocator warm-up
    torch.cuda.synchronize()
    warm = time.perf_counter() - t0

    def event_ms():
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        torch.cuda.synchronize()
        return s.elapsed_time(e)

    if warm > very_slow_s:  # a sequential baseline: one timed run after the warm-up
        ms = event_ms()
        return Timing(ms, 1, "cuda-event-single", [ms])
    first = event_ms()
    if first > slow_s * 1e3:
        samples = [first, event_ms(), event_ms()]
        return Timing(statistics.median(samples), 3, "cuda-events-median", samples)
    from triton.testing import do_bench

    ms = do_bench(fn, warmup=warmup_ms, rep=rep_ms, return_mode="median")
    return Timing(float(ms), -1, "triton.do_bench-median", [])


def measure(fn, device: str, *, budget_s: float = 1.0, min_runs: int = 3, max_runs: int = 15, warmup: int = 2) -> Timing:
    """Median time of ``fn()`` in milliseconds on ``device`` ('cpu' or 'cuda...')."""
    if str(device).startswith("cuda"):
        return time_cuda(fn)
    return time_cpu(fn, budget_s=budget_s, min_runs=min_runs, max_runs=max_runs, warmup=warmup)
