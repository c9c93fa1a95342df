"""Where the host's time goes in a public call, and what the calls take without the host.

Two stages of ``benchmarks/gpu_check.py`` (``--host``), for the GPU run after the one that found the
public functions host-bound (``results/cuda-nvidia-h200-2026-11-27-host/``: 0.23 ms of host time a
``lfilter`` call, 2.0 ms a forward + backward call, against 0.12 ms and 0.57 ms of GPU time):

- ``host_profile``: ``torch.profiler`` over forward + backward calls of ``lfilter`` on a tiny signal
  (the GPU idles, so every microsecond is the host's), sorted by self CPU time, and the kernel
  launches a call makes;
- ``backward_breakdown``: that call layer by layer (forward, backward alone, the op's fused backward
  on this thread and on another, the launcher, the launch), which says where the backward's host
  time goes; on CPU, ``python -m benchmarks.host_time --stub-launches`` (with ``TRITON_INTERPRET=1
  SSM_LFILTER_BACKEND=triton``) times the same rows with every Triton launch stubbed out: the glue's
  own host time;
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


def _noop_launcher():
    """A Triton launch of a kernel that does nothing (one pointer, one integer), the floor under every
    launcher's host time on this machine. Built on first use: Triton reads ``TRITON_INTERPRET`` when a
    kernel is defined."""
    import triton
    import triton.language as tl

    @triton.jit
    def _noop_kernel(p, n, BLOCK: tl.constexpr):
        o = tl.arange(0, BLOCK)
        tl.store(p + o, o.to(tl.float32), mask=o < n)  # n = 0: stores nothing

    return lambda p: _noop_kernel[(1,)](p, 0, BLOCK=32)


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


def backward_breakdown(device: str = "cuda", calls: int = 100) -> str:
    """Markdown: where a forward + backward ``lfilter`` call's host time goes, layer by layer, on a
    tiny biquad (1, 256) so that the GPU always waits for the host. Each row is the median of 5
    batches of ``calls`` calls, each batch ending in one synchronization; the differences between rows are the layers:

    - the forward without and with a graph (x, b, a requiring grad), and the whole call; the same
      with an initial state ``zi`` (streaming: the final state's torch operations come on top);
    - the backward alone (``torch.autograd.grad`` on one retained graph): the autograd engine, which
      on CUDA runs a backward on its own device thread, the glue's nodes and the LTI op's backward;
    - the op's fused backward (``ops.lti_adjoint``, with the raw coefficients as ``lfilter`` calls it)
      called directly, on this thread and on another Python thread (as the engine's device thread
      calls it), the kernel launcher alone (``kernels.lti_adjoint_sums``) and its launch (``_launch``:
      buffers and the Triton launch);
    - the forward op (``ops.lti`` with the raw coefficients), its launcher (``kernels.lti``) and the
      single-pass launch (``lti_single_pass``: buffers and the Triton launch);
    - for scale, one ``torch.zeros`` of the look-back flags' size (an allocation and a fill launch),
      and one Triton launch of a kernel that does nothing.

    Run 2 on an H200 found 2.0 ms a forward + backward call against 0.23 ms a forward; on this
    project's CPU machine, with the kernel launches stubbed out, the same call takes about 0.75 ms.
    This table says which layer holds the rest."""
    import importlib
    import threading

    from ssm_lfilter import ops
    from ssm_lfilter.kernels import lti as kernel_forward
    from ssm_lfilter.kernels import lti_adjoint_sums as kernel_adjoint
    from ssm_lfilter.kernels.lti_single_pass import lti_single_pass

    launcher = importlib.import_module("ssm_lfilter.kernels.lti_adjoint")
    x = torch.randn(1, 256, device=device, requires_grad=True)
    b = torch.tensor([0.2, 0.4, 0.2], device=device, requires_grad=True)
    a = torch.tensor([1.0, -0.6, 0.3], device=device, requires_grad=True)
    xd, br, ar = x.detach(), b.detach()[None], a.detach()[None]  # raw: a0 first, as lfilter passes them
    y, g = torch.randn_like(xd), torch.randn_like(xd)  # values do not matter to the host
    graph = sl.lfilter(b, a, x).sum()
    C = launcher._default_c(1, 2, 2)
    dx, vh, head = torch.empty_like(xd), xd.new_zeros(1, 0), xd.new_zeros(1, 0)
    zi = torch.tensor([[0.1, -0.2]], device=device)
    zi_g = zi.clone().requires_grad_()
    noop = _noop_launcher()

    def timed(fn) -> float:
        """The median of 5 batches of ``calls`` calls (shared machines are noisy), after a warm-up."""
        for _ in range(5):
            fn()
        batches = []
        for _ in range(5):
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            _sync(device)
            batches.append((time.perf_counter() - t0) / calls * 1e3)
        return sorted(batches)[2]

    def on_thread(fn):
        def run():
            out = []
            worker = threading.Thread(target=lambda: out.append(timed(fn)))
            worker.start()
            worker.join()
            return out[0]
        return run

    def op_backward():
        with torch.no_grad():
            ops.lti_adjoint(g, xd, y, br, ar, 0, False, True, 3, 2, False, False)

    def kernel_only():
        kernel_adjoint(g, xd, y, br, ar, 0, True, 3, 2, reverse=False, monic=False)

    def launch_only():
        launcher._launch(g, xd, y, br[:, None], ar[:, None], dx, vh, 3, 2, True, 0, C, None, None, True, monic=False)

    def op_forward():
        with torch.no_grad():
            ops.lti(xd, br, ar, head, False, False)

    def forward_launch_only():
        lti_single_pass(xd, br, ar, head, y, 32, monic=False)

    rows = [
        ("`lfilter` forward, no graph", lambda: timed(lambda: sl.lfilter(b.detach(), a.detach(), xd))),
        ("`lfilter` forward, building the graph (x, b, a)", lambda: timed(lambda: sl.lfilter(b, a, x))),
        ("`lfilter` forward + backward (x, b, a)",
         lambda: timed(lambda: torch.autograd.grad(sl.lfilter(b, a, x).sum(), (x, b, a)))),
        # streaming (a block and its state): the final state's torch operations come on top
        ("`lfilter` with `zi` forward, no graph", lambda: timed(lambda: sl.lfilter(b.detach(), a.detach(), xd, zi=zi))),
        ("`lfilter` with `zi` forward + backward (x, b, a, zi)",
         lambda: timed(lambda: torch.autograd.grad(sum(t.sum() for t in sl.lfilter(b, a, x, zi=zi_g)), (x, b, a, zi_g)))),
        ("backward alone (`torch.autograd.grad`, one retained graph)",
         lambda: timed(lambda: torch.autograd.grad(graph, (x, b, a), retain_graph=True))),
        ("`ops.lti_adjoint` (the op's fused backward), this thread", lambda: timed(op_backward)),
        ("`ops.lti_adjoint`, another Python thread", on_thread(op_backward)),
        ("`kernels.lti_adjoint_sums` (the launcher), this thread", lambda: timed(kernel_only)),
        ("`lti_adjoint._launch` (buffers + Triton launch), this thread", lambda: timed(launch_only)),
        ("`ops.lti` forward (raw coefficients, as `lfilter` calls it)", lambda: timed(op_forward)),
        ("`kernels.lti` (the forward launcher)", lambda: timed(lambda: kernel_forward(xd, br, ar, head, monic=False))),
        ("`lti_single_pass` (buffers + Triton launch)", lambda: timed(forward_launch_only)),
        ("`torch.zeros` of 1025 int32 (one allocation, one fill launch)",
         lambda: timed(lambda: torch.zeros(1025, dtype=torch.int32, device=device))),
        ("a Triton launch of a kernel that does nothing", lambda: timed(lambda: noop(y))),
    ]
    out = [f"Tiny biquad (1 x 256): host time a call, the median of 5 batches of {calls} calls with one synchronization each.", "",
           "| layer | ms a call |", "|---|---|"]
    for name, run in rows:
        try:
            out.append(f"| {name} | {run():.4f} |")
        except Exception as err:  # noqa: BLE001 - a row that fails is a result
            out.append(f"| {name} | failed: {type(err).__name__}: {str(err)[:120]} |")
    return "\n".join(out)


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


def stub_launches() -> None:
    """Make every Triton launch under the interpreter return at once (outputs stay uninitialized):
    what remains of a call is the host's own work around its launches, the glue this module times on
    CPU. Needs ``TRITON_INTERPRET=1``; for measurements only."""
    from triton.runtime.interpreter import InterpretedFunction

    InterpretedFunction.run = lambda self, *args, **kwargs: None


def main(argv=None) -> int:
    import argparse
    import os

    ap = argparse.ArgumentParser(description="Host time of a forward + backward lfilter call, layer by layer.")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--stub-launches", action="store_true",
                    help="CPU: run the Triton launchers with every launch stubbed out (TRITON_INTERPRET=1 and "
                         "SSM_LFILTER_BACKEND=triton must be set), so the rows are the glue's host time alone")
    args = ap.parse_args(argv)
    if args.stub_launches:
        if os.environ.get("TRITON_INTERPRET") != "1" or os.environ.get("SSM_LFILTER_BACKEND") != "triton":
            ap.error("--stub-launches: expected TRITON_INTERPRET=1 and SSM_LFILTER_BACKEND=triton in the environment")
        stub_launches()
    print(backward_breakdown(args.device, args.calls))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
