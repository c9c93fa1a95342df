"""Where the host's time goes in a public call, and what the calls take without the host.

Two stages of ``benchmarks/gpu_check.py`` (``--host``), for the GPU run after the one that found the
public functions host-bound (``results/cuda-nvidia-h200-2026-11-27-host/``: 0.23 ms of host time a
``lfilter`` call, 2.0 ms a forward + backward call, against 0.12 ms and 0.57 ms of GPU time):

- ``host_profile``: ``torch.profiler`` over forward + backward calls of ``lfilter`` on a tiny signal
  (the GPU idles, so every microsecond is the host's), sorted by self CPU time, and the kernel
  launches a call makes;
- ``graph_table``: the public functions timed as plain calls and as CUDA graph replays side by side
  (a replay launches the recorded kernels without running any Python), forward and forward +
  backward (``torch.cuda.make_graphed_callables``).

Both take a device so the plumbing runs on CPU in tests (where the graph rows report that CUDA graphs
need a GPU).
"""
from __future__ import annotations

import time

import torch

import ssm_lfilter as sl


def host_profile(device: str = "cuda", calls: int = 20, rows: int = 25) -> str:
    """Markdown: the profiler's table of ``calls`` forward + backward ``lfilter`` calls on (1, 256)."""
    from torch.profiler import ProfilerActivity, profile

    x = torch.randn(1, 256, device=device, requires_grad=True)
    b = torch.tensor([0.2, 0.4, 0.2], device=device, requires_grad=True)
    a = torch.tensor([1.0, -0.6, 0.3], device=device, requires_grad=True)

    def step():
        torch.autograd.grad(sl.lfilter(b, a, x).sum(), (x, b, a))

    for _ in range(3):
        step()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    _sync(device)
    t0 = time.perf_counter()
    with profile(activities=activities) as prof:
        for _ in range(calls):
            step()
        _sync(device)
    wall = (time.perf_counter() - t0) / calls * 1e3
    events = prof.key_averages()
    launches = sum(e.count for e in events if e.key in ("cudaLaunchKernel", "cuLaunchKernel", "cuLaunchKernelEx"))
    table = events.table(sort_by="self_cpu_time_total", row_limit=rows)
    return (f"{calls} forward + backward `lfilter` calls on (1, 256), x, b and a requiring grad: "
            f"{wall:.3f} ms a call under the profiler, {launches / calls:.0f} kernel launches a call.\n\n"
            f"```\n{table}\n```")


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _cases(device: str, R: int, T: int):
    x = torch.randn(R, T, device=device)
    b2 = torch.tensor([0.2, 0.4, 0.2], device=device)
    a2 = torch.tensor([1.0, -0.6, 0.3], device=device)
    sos = torch.tensor([[0.2, 0.4, 0.2, 1.0, -0.6, 0.3]], device=device).repeat(8, 1)
    at = torch.stack([torch.ones(T, device=device), torch.full((T,), -0.5, device=device),
                      torch.full((T,), 0.2, device=device)], -1)
    return {
        "lfilter biquad": (lambda x, b=b2, a=a2: sl.lfilter(b, a, x), x),
        "sosfilt 8 sections": (lambda x, s=sos: sl.sosfilt(s, x), x),
        "time_varying_lfilter order 2": (lambda x, b=b2, a=at: sl.time_varying_lfilter(b, a, x), x),
        "linear_recurrence": (lambda x, a=torch.full((R, 1), 0.9, device=device): sl.linear_recurrence(a, x), x),
    }


def graph_table(device: str = "cuda", R: int = 32, T: int = 1 << 20, bench=None) -> str:
    """Markdown: each public call plain and as a CUDA graph replay, forward and forward + backward
    (gradient with respect to x), with the plain / replay ratio. ``bench(fn) -> ms``."""
    if bench is None:
        from triton.testing import do_bench

        def bench(fn):
            return do_bench(fn, return_mode="median")

    rows = [f"| case ({R} x {T}) | plain ms | graph replay ms | plain / replay |", "|---|---|---|---|"]
    for name, (fn, x) in _cases(device, R, T).items():
        for mode in ("forward", "forward + backward (x)"):
            try:
                if mode == "forward":
                    plain = bench(lambda: fn(x))
                    replay = bench(_graphed_forward(fn, x))
                else:
                    xg = x.clone().requires_grad_()
                    gy = torch.randn_like(x)
                    plain = bench(lambda: torch.autograd.grad(fn(xg), xg, gy))
                    graphed = torch.cuda.make_graphed_callables(fn, (xg,))
                    replay = bench(lambda: torch.autograd.grad(graphed(xg), xg, gy))
                rows.append(f"| {name}, {mode} | {plain:.3f} | {replay:.3f} | {plain / replay:.2f}x |")
            except Exception as err:  # noqa: BLE001 - a case that cannot be captured is a result
                rows.append(f"| {name}, {mode} | failed: {type(err).__name__}: {str(err)[:120]} | | |")
    return "\n".join(rows)


def _graphed_forward(fn, x):
    """``fn(x)`` captured in a CUDA graph (after a warm-up on a side stream, as CUDA graphs require);
    returns the replay."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):
            fn(x)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn(x)
    return graph.replay
