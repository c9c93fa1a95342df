"""Registers, spills and shared memory of the Triton kernels, compiled for a GPU on a machine without one.

    python benchmarks/kernel_resources.py [--arch 90] [--out FILE.md] [--only LABEL_PREFIX ...]

Triton's wheel ships ``ptxas`` and ``cuobjdump``, so every kernel compiles to a cubin for any NVIDIA
architecture here, GPU or not. Each case runs a public launcher on ``meta`` tensors (GPU-sized shapes,
no data): the launcher picks its GPU configuration, the launch is captured instead of run, and the
captured kernel is compiled for ``sm_<arch>``. Reported per kernel: registers a thread, spilled bytes
(``STACK``/``LOCAL``), shared memory, and the warps-per-SM limit the registers allow.

This is what a kernel costs in registers, not how fast it runs: a register count that spills, or that
leaves a few warps per SM to hide memory latency, is the first suspect when a memory-bound kernel
misses copy bandwidth, and it can be checked between GPU sessions. Times come only from
``benchmarks/gpu_check.py`` on a GPU.
"""
from __future__ import annotations

import argparse
import datetime
import os
import re
import subprocess
import sys
import tempfile

os.environ.pop("TRITON_INTERPRET", None)  # compile real kernels: Triton reads this at import

import torch  # noqa: E402
import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402
from triton.runtime.jit import JITFunction  # noqa: E402

_BIN = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")
_PTR = {torch.float32: "*fp32", torch.float64: "*fp64", torch.float16: "*fp16", torch.bfloat16: "*bf16",
        torch.int32: "*i32", torch.int64: "*i64"}
_REGS_PER_SM = 65536  # sm_80 .. sm_90
_MAX_WARPS_PER_SM = 64


def capture(launch) -> list[tuple[JITFunction, tuple, dict]]:
    """Run ``launch()`` with every Triton kernel launch recorded instead of run."""
    calls = []
    original = JITFunction.run

    def record(self, *args, grid, warmup, **kwargs):
        calls.append((self, args, kwargs))

    JITFunction.run = record
    try:
        launch()
    finally:
        JITFunction.run = original
    return calls


def _signature(fn: JITFunction, args: tuple, kwargs: dict) -> tuple[dict, dict, int]:
    bound = dict(zip(fn.arg_names, args))
    bound.update({k: v for k, v in kwargs.items() if k in fn.arg_names})
    const_names = {p.name for p in fn.params if p.is_constexpr}
    sig, consts = {}, {}
    for i, name in enumerate(fn.arg_names):
        v = bound[name]
        if name in const_names:
            sig[name] = "constexpr"
            consts[(i,)] = v
        elif isinstance(v, torch.Tensor):
            sig[name] = _PTR[v.dtype]
        elif isinstance(v, bool):
            sig[name] = "i1"
        elif isinstance(v, int):
            sig[name] = "i32" if -2**31 <= v < 2**31 else "i64"
        elif isinstance(v, float):
            sig[name] = "fp32"
        else:
            raise TypeError(f"{fn.__name__}: cannot type argument {name}={v!r}")
    return sig, consts, int(kwargs.get("num_warps", 4))


def compile_resources(fn: JITFunction, args: tuple, kwargs: dict, arch: int = 90) -> dict:
    """Compile one captured launch for ``sm_<arch>`` and read its resource usage from the cubin."""
    sig, consts, num_warps = _signature(fn, args, kwargs)
    compiled = triton.compile(ASTSource(fn, sig, constexprs=consts), target=GPUTarget("cuda", arch, 32),
                              options=dict(num_warps=num_warps))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "k.cubin")
        with open(path, "wb") as f:
            f.write(compiled.asm["cubin"])
        usage = subprocess.run([os.path.join(_BIN, "cuobjdump"), "-res-usage", path],
                               capture_output=True, text=True, check=True).stdout
    m = re.search(r"REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)", usage)
    regs, stack, shared, local = map(int, m.groups())
    shared = max(shared, int(compiled.metadata.shared))
    threads = 32 * num_warps
    ctas = min(_REGS_PER_SM // max(regs * threads, 1), _MAX_WARPS_PER_SM // num_warps)
    consts = {fn.arg_names[k[0]]: v for k, v in sorted(consts.items())}
    return dict(kernel=fn.__name__, regs=regs, spill=stack + local, shared=shared, num_warps=num_warps,
                warps_per_sm=ctas * num_warps, consts=consts)


def _cases():
    """(label, launch) pairs: the launchers on GPU-sized meta tensors, as the public API calls them."""
    from ssm_lfilter import kernels as K

    meta = dict(device="meta", dtype=torch.float32)

    def lti(R, T, N, M, **kw):
        return lambda: K.lti(torch.empty(R, T, **meta), torch.empty(1, M + 1, **meta),
                             torch.empty(1, N, **meta), torch.empty(R, 0, **meta), **kw)

    def adjoint(R, T, N, M):
        sig = [torch.empty(R, T, **meta) for _ in range(3)]
        return lambda: K.lti_adjoint(*sig, torch.empty(1, M + 1, **meta), torch.empty(1, N, **meta), 0, True, M + 1, N)

    def tv_sos(R, T, S, inter=False, **kw):
        sos = torch.empty(1, T, S, 6, **meta)  # b and a as views of one normalized sos tensor, as the glue passes
        sections = torch.empty(S, R, T, **meta) if inter else None
        return lambda: K.tv_sos(torch.empty(R, T, **meta), sos[..., :3], sos[..., 4:], sections=sections, **kw)

    def tv_sos_adjoint(R, T, S, dtype=torch.float32, **kw):  # per-row sections, every gradient
        m = dict(device="meta", dtype=dtype)
        sos = torch.empty(R, T, S, 6, **m)
        return lambda: K.tv_sos_adjoint(torch.empty(R, T, **m), torch.empty(R, T, **m), sos[..., :3], sos[..., 4:],
                                        **kw)

    cases = [(f"lti N={n} M={n}, 32 x 2^20", lti(32, 1 << 20, n, n)) for n in (1, 2, 3, 4)]
    cases += [
        ("lti N=2, 32 x 2^20, C=16", lti(32, 1 << 20, 2, 2, block_size=16)),
        ("lti N=2, 32 x 2^20, three-pass", lti(32, 1 << 20, 2, 2, single_pass=False)),
        ("lti N=8 M=8, 32 x 2^20", lti(32, 1 << 20, 8, 8)),
        ("lti N=16 M=16, 32 x 2^20", lti(32, 1 << 20, 16, 16)),
        ("lti N=16 M=0 (all-pole), 32 x 2^20", lti(32, 1 << 20, 16, 0)),
        ("lti N=32 M=32, 32 x 2^20", lti(32, 1 << 20, 32, 32)),
        ("sos 8 biquads, 32 x 2^20", lambda: K.sos(torch.empty(32, 1 << 20, **meta), torch.empty(1, 8, 3, **meta),
                                                    torch.empty(1, 8, 2, **meta))),
        ("sos 8 biquads with zi (heads, ends), 32 x 2^20", lambda: K.sos(
            torch.empty(32, 1 << 20, **meta), torch.empty(1, 8, 3, **meta), torch.empty(1, 8, 2, **meta),
            head=torch.empty(32, 8, 2, **meta), ends=torch.empty(8, 32, 2, **meta))),
        ("lti_adjoint N=2 M=2 (dx, db, da), 32 x 2^20", adjoint(32, 1 << 20, 2, 2)),
        ("lti_adjoint N=4 M=4 (dx, db, da), 32 x 2^20", adjoint(32, 1 << 20, 4, 4)),
        ("sos_adjoint 8 biquads (dx, db, da), 32 x 2^20", lambda: K.sos_adjoint(
            torch.empty(32, 1 << 20, **meta), torch.empty(32, 1 << 20, **meta), torch.empty(1, 8, 3, **meta),
            torch.empty(1, 8, 2, **meta), True, 3, 2)),
        ("sos_adjoint 8 biquads with zi (dx, db, da, dzi), 32 x 2^20", lambda: K.sos_adjoint(
            torch.empty(32, 1 << 20, **meta), torch.empty(32, 1 << 20, **meta), torch.empty(1, 8, 3, **meta),
            torch.empty(1, 8, 2, **meta), True, 3, 2, head=torch.empty(32, 8, 2, **meta),
            g_ends=torch.empty(8, 32, 2, **meta))),
        ("lti_coef_grads 3+2 lags, 32 x 2^20", lambda: K.lti_coef_grads(
            torch.empty(32, 1 << 20, **meta), torch.empty(32, 1 << 20, **meta), torch.empty(32, 1 << 20, **meta), 3, 2)),
        ("time_varying N=2, 8 x 2^20", lambda: K.time_varying(torch.empty(8, 1 << 20, **meta),
                                                              torch.empty(8, 1 << 20, 2, **meta))),
        ("time_varying_adjoint N=2 (du, da), 8 x 2^20", lambda: K.time_varying_adjoint(
            torch.empty(8, 1 << 20, **meta), torch.empty(8, 1 << 20, 2, **meta), torch.empty(8, 1 << 20, **meta))),
        ("time_varying_adjoint N=4 (du, da), 8 x 2^20", lambda: K.time_varying_adjoint(
            torch.empty(8, 1 << 20, **meta), torch.empty(8, 1 << 20, 4, **meta), torch.empty(8, 1 << 20, **meta))),
        ("tv_sos 8 biquads, 8 x 2^20", tv_sos(8, 1 << 20, 8)),
        ("tv_sos 8 biquads, 8 x 2^20, C=8", tv_sos(8, 1 << 20, 8, block_size=8)),
        ("tv_sos one section (time_varying_lfilter, per-sample b), 8 x 2^20", lambda: K.tv_sos(
            torch.empty(8, 1 << 20, **meta), torch.empty(1, 1 << 20, 3, **meta)[:, :, None],
            torch.empty(1, 1 << 20, 2, **meta)[:, :, None])),
        ("tv_sos 8 biquads with zi (heads, ends), 8 x 2^20", tv_sos(8, 1 << 20, 8, head=torch.empty(8, 8, 2, **meta),
                                                                   ends=torch.empty(8, 8, 2, **meta))),
        ("tv_sos_adjoint 8 biquads (dx, db, da), 8 x 2^20", tv_sos_adjoint(8, 1 << 20, 8)),
        ("tv_sos_adjoint 8 biquads with zi (dx, db, da, dzi), 8 x 2^20", tv_sos_adjoint(
            8, 1 << 20, 8, head=torch.empty(8, 8, 2, **meta), g_ends=torch.empty(8, 8, 2, **meta))),
        ("tv_sos_adjoint 8 biquads (dx, db, da), 8 x 2^20, C=8", tv_sos_adjoint(8, 1 << 20, 8, block_size=8)),
        ("tv_sos_adjoint 8 biquads (dx, db, da) float64, 8 x 2^20", tv_sos_adjoint(8, 1 << 20, 8, torch.float64)),
        ("diagonal, 32 x 2^20", lambda: K.diagonal(torch.empty(32, 1 << 20, **meta), torch.empty(32, 1 << 20, **meta))),
    ]
    return cases


def report(arch: int = 90, only: list[str] | None = None) -> str:
    lines = [f"# Kernel resources, compiled for sm_{arch} (no GPU needed)", "",
             f"Date {datetime.date.today()}, triton {triton.__version__}, torch {torch.__version__}; "
             "`python benchmarks/kernel_resources.py`. Registers a thread, spilled bytes, shared memory "
             "(bytes) and the warps per SM the registers allow (65536 registers, 64 warps).", "",
             "| case | kernel | warps | registers | spilled | shared | warps/SM | constexprs |",
             "|---|---|---|---|---|---|---|---|"]
    for label, launch in _cases():
        if only and not any(label.startswith(o) for o in only):
            continue
        for fn, args, kwargs in capture(launch):
            r = compile_resources(fn, args, kwargs, arch)
            consts = ", ".join(f"{k}={v}" for k, v in r["consts"].items() if not isinstance(v, bool) or v)
            lines.append(f"| {label} | `{r['kernel']}` | {r['num_warps']} | {r['regs']} | {r['spill']} | "
                         f"{r['shared']} | {r['warps_per_sm']} | {consts} |")
            print(lines[-1], file=sys.stderr, flush=True)
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", type=int, default=90, help="NVIDIA compute capability x10 (90: H100/H200)")
    p.add_argument("--out", help="write the markdown table here (default: stdout)")
    p.add_argument("--only", nargs="*", help="cases whose label starts with one of these (default: all)")
    args = p.parse_args(argv)
    text = report(args.arch, args.only)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
