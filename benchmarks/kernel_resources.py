"""Registers, spills, shared memory and instruction counts of the Triton kernels, compiled for a GPU on a
machine without one.

    python benchmarks/kernel_resources.py [--arch 90] [--out FILE.md] [--only LABEL_PREFIX ...]
    python benchmarks/kernel_resources.py --lines LABEL_PREFIX   # SASS instructions by source line
    python benchmarks/kernel_resources.py --lines LABEL_PREFIX --opcode F2F   # where one opcode comes from

Triton's wheel ships ``ptxas`` and ``cuobjdump``, so every kernel compiles to a cubin for any NVIDIA
architecture here, GPU or not. Each case runs a public launcher on ``meta`` tensors (GPU-sized shapes,
no data): the launcher picks its GPU configuration, the launch is captured instead of run, and the
captured kernel is compiled for ``sm_<arch>`` with the specializations Triton's JIT would give those
arguments at run time (16-byte aligned tensors, integers divisible by 16, integers equal to 1 as
constants). Reported per kernel: registers a thread, spilled bytes (``STACK``/``LOCAL``), shared
memory, the warps-per-SM limit the registers allow, and the SASS instruction count (all of them, and
the float64 arithmetic ones: ``DFMA``/``DMUL``/``DADD``, which issue at half the float32 rate on an
H100/H200). The counts are static: every branch once, loops once.

``later_tile_table`` adds what a single-pass LTI tile runs, with the power table and without, divided
by the samples a thread handles (the table is written by a launch of its own, so every tile runs the
same code; before, a row's first tile wrote it and this table compiled the kernels without that write).

This is what a kernel costs in registers and instructions, not how fast it runs: a register count that
spills, or that leaves a few warps per SM to hide memory latency, or an instruction count a sample near
the issue rate a copy's bandwidth allows (on an H100/H200 about 65 a sample at copy speed: 4 warp
instructions a cycle an SM against about 2 float32 samples a cycle an SM), is the first suspect when a
memory-bound kernel misses copy bandwidth, and it can be checked between GPU sessions. Times come only
from ``benchmarks/gpu_check.py`` on a GPU.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile

os.environ.pop("TRITON_INTERPRET", None)  # compile real kernels: Triton reads this at import

import torch  # noqa: E402
import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource, make_backend  # noqa: E402
from triton.runtime.jit import JITFunction, create_function_from_signature  # noqa: E402

_BIN = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")
_REGS_PER_SM = 65536  # sm_80 .. sm_90
_MAX_WARPS_PER_SM = 64


def capture(launch, skip: tuple[str, ...] = ("_power_table_kernel",)) -> list[tuple[JITFunction, tuple, dict]]:
    """Run ``launch()`` with every Triton kernel launch recorded instead of run. ``skip``: kernels left
    out, by default the single-pass LTI power table's own launch (one program a coefficient row,
    before the tiles' kernel): these tables are about the kernels that stream the signal."""
    calls = []
    original = JITFunction.run

    def record(self, *args, grid, warmup, **kwargs):
        if self.__name__ in skip:
            return
        calls.append((self, args, kwargs))

    JITFunction.run = record
    try:
        launch()
    finally:
        JITFunction.run = original
    return calls


def bind(fn: JITFunction, args: tuple, kwargs: dict, arch: int):
    """``(target, backend, (bound, specialization, options))``: Triton's own binder on these arguments for
    ``sm_<arch>``, the specializations its JIT gives them at run time (alignment, divisibility by 16,
    integers equal to 1) and so the key it caches a compile under."""
    target = GPUTarget("cuda", arch, 32)
    backend = make_backend(target)
    return target, backend, create_function_from_signature(fn.signature, fn.params, backend)(*args, **kwargs)


def _compile(fn: JITFunction, args: tuple, kwargs: dict, arch: int):
    """The kernel Triton's JIT would build for these arguments at run time, for ``sm_<arch>``."""
    target, backend, (bound, specialization, options) = bind(fn, args, kwargs, arch)
    options, signature, constexprs, attrs = fn._pack_args(backend, kwargs, bound, specialization, options)
    return triton.compile(ASTSource(fn, signature, constexprs, attrs), target=target, options=options.__dict__)


_FP64 = ("DFMA", "DMUL", "DADD")
_SASS_LINE = re.compile(r"^\s+/\*[0-9a-f]+\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*)")
_LINE_INFO = re.compile(r'//## File "([^"]+)", line (\d+)')


def compile_resources(fn: JITFunction, args: tuple, kwargs: dict, arch: int = 90) -> dict:
    """Compile one captured launch for ``sm_<arch>`` and read its resource usage and SASS from the cubin."""
    compiled = _compile(fn, args, kwargs, arch)
    num_warps = int(kwargs.get("num_warps", 4))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "k.cubin")
        with open(path, "wb") as f:
            f.write(compiled.asm["cubin"])
        usage = subprocess.run([os.path.join(_BIN, "cuobjdump"), "-res-usage", path],
                               capture_output=True, text=True, check=True).stdout
        sass = subprocess.run([os.path.join(_BIN, "cuobjdump"), "-sass", path],
                              capture_output=True, text=True, check=True).stdout
    m = re.search(r"REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)", usage)
    regs, stack, shared, local = map(int, m.groups())
    shared = max(shared, int(compiled.metadata.shared))
    opcodes = [m.group(1) for m in map(_SASS_LINE.match, sass.splitlines()) if m]
    threads = 32 * num_warps
    ctas = min(_REGS_PER_SM // max(regs * threads, 1), _MAX_WARPS_PER_SM // num_warps)
    const_names = {p.name for p in fn.params if p.is_constexpr}
    bound = dict(zip(fn.arg_names, args))
    bound.update(kwargs)
    consts = {k: bound[k] for k in fn.arg_names if k in const_names}
    return dict(kernel=fn.__name__, regs=regs, spill=stack + local, shared=shared, num_warps=num_warps,
                warps_per_sm=ctas * num_warps, consts=consts, instrs=len(opcodes),
                fp64=sum(op in _FP64 for op in opcodes))


def source_lines(fn: JITFunction, args: tuple, kwargs: dict, arch: int = 90) -> dict[str, dict[str, int]]:
    """Where a captured launch's SASS comes from: ``{"file.py:line": {opcode: count}}`` (static counts,
    ``nvdisasm -g`` line info: an inlined helper's instructions count at its own lines)."""
    compiled = _compile(fn, args, kwargs, arch)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "k.cubin")
        with open(path, "wb") as f:
            f.write(compiled.asm["cubin"])
        text = subprocess.run([os.path.join(_BIN, "nvdisasm"), "-g", "-c", path],
                              capture_output=True, text=True, check=True).stdout
    where, lines = "?", {}
    for line in text.splitlines():
        m = _LINE_INFO.search(line)
        if m:
            where = f"{os.path.basename(m.group(1))}:{m.group(2)}"
            continue
        m = _SASS_LINE.match(line)
        if m:
            ops = lines.setdefault(where, {})
            ops[m.group(1)] = ops.get(m.group(1), 0) + 1
    return lines


def lines_table(label: str, arch: int = 90, top: int = 30, opcode: str | None = None) -> str:
    """Markdown: the source lines with the most SASS instructions in each kernel of the first case whose
    label starts with ``label``: what to cut first. ``opcode``: instead every line with that opcode,
    with its count of it (where the F2F conversions, or the clock reads, come from)."""
    case = next(((lab, launch) for lab, launch in _cases() if lab.startswith(label)), None)
    if case is None:
        raise SystemExit(f"no case label starts with {label!r}")
    out = [f"# SASS by source line, compiled for sm_{arch}: {case[0]}", ""]
    for fn, args, kwargs in capture(case[1]):
        lines = source_lines(fn, args, kwargs, arch)
        total = sum(sum(ops.values()) for ops in lines.values())
        if opcode:
            hits = {where: ops[opcode] for where, ops in lines.items() if opcode in ops}
            out += [f"`{fn.__name__}`: {sum(hits.values())} {opcode} of {total} instructions (static)", "",
                    f"| line | {opcode} |", "|---|---|"]
            out += [f"| {where} | {n} |" for where, n in sorted(hits.items(), key=lambda kv: -kv[1])]
            out.append("")
            continue
        out += [f"`{fn.__name__}`: {total} instructions (static)", "", "| line | instructions | most frequent |",
                "|---|---|---|"]
        for where, ops in sorted(lines.items(), key=lambda kv: -sum(kv[1].values()))[:top]:
            common = ", ".join(f"{o} {n}" for o, n in sorted(ops.items(), key=lambda kv: -kv[1])[:5])
            out.append(f"| {where} | {sum(ops.values())} | {common} |")
        out.append("")
    return "\n".join(out)


def passes_cases(meta: dict) -> list:
    """The time-varying multi-pass kernels above order 4 (``passes ...``): forward and backward at orders
    8 and 16, on a few rows (8 x 2^18) and many (64 x 2^20), where the launcher's tile shapes differ."""
    import ssm_lfilter.kernels as K

    cases = []
    for R, logT in ((8, 18), (64, 20)):
        for N in (8, 16):
            def adjoint(R=R, T=1 << logT, N=N):
                return K.time_varying_adjoint(torch.empty(R, T, **meta), torch.empty(R, T, N, **meta),
                                              torch.empty(R, T, **meta))

            def forward(R=R, T=1 << logT, N=N):
                return K.time_varying(torch.empty(R, T, **meta), torch.empty(R, T, N, **meta))

            cases += [(f"passes time_varying_adjoint N={N} (du, da), {R} x 2^{logT}", adjoint),
                      (f"passes time_varying N={N}, {R} x 2^{logT}", forward)]
    return cases


def _cases():
    """(label, launch) pairs: the launchers on GPU-sized meta tensors, as the public API calls them."""
    from ssm_lfilter import kernels as K

    meta = dict(device="meta", dtype=torch.float32)

    def lti(R, T, N, M, monic=False, **kw):
        # raw coefficients (a0 first, divided in the kernel), as lfilter passes them
        return lambda: K.lti(torch.empty(R, T, **meta), torch.empty(1, M + 1, **meta),
                             torch.empty(1, N + (not monic), **meta), torch.empty(R, 0, **meta), monic=monic, **kw)

    def adjoint(R, T, N, M, monic=False, **kw):
        sig = [torch.empty(R, T, **meta) for _ in range(3)]
        return lambda: K.lti_adjoint(*sig, torch.empty(1, M + 1, **meta), torch.empty(1, N + (not monic), **meta), 0,
                                     True, M + 1, N, monic=monic, **kw)

    def clock():  # the clock stamps' buffer (kernels/_clock.py), resized by the launcher
        return torch.empty(0, dtype=torch.int64, device="meta")

    def tv_sos(R, T, S, inter=False, monic=False, **kw):
        # b and a as views of one sos tensor, as the glue passes them: raw, a0 first in a (monic: the
        # normalized sections, a from a1)
        sos = torch.empty(1, T, S, 6, **meta)
        sections = torch.empty(S, R, T, **meta) if inter else None
        return lambda: K.tv_sos(torch.empty(R, T, **meta), sos[..., :3], sos[..., 4:] if monic else sos[..., 3:],
                                sections=sections, monic=monic, **kw)

    def tv_sos_adjoint(R, T, S, dtype=torch.float32, monic=False, **kw):  # per-row sections, every gradient
        m = dict(device="meta", dtype=dtype)
        sos = torch.empty(R, T, S, 6, **m)
        return lambda: K.tv_sos_adjoint(torch.empty(R, T, **m), torch.empty(R, T, **m), sos[..., :3],
                                        sos[..., 4:] if monic else sos[..., 3:], monic=monic, **kw)

    cases = [(f"lti N={n} M={n}, 32 x 2^20", lti(32, 1 << 20, n, n)) for n in (1, 2, 3, 4)]
    cases += [
        ("lti N=2, 32 x 2^20, C=16", lti(32, 1 << 20, 2, 2, block_size=16)),
        # orders 3-4 in float32 take one warp a tile by default on a GPU and on these meta tensors
        # (kernels/_variants.py, one_warp_tiles): the rows above, spelled out here by their tiles
        ("one warp lti N=4 M=4 (C=64 x 32 lanes), 32 x 2^20", lti(32, 1 << 20, 4, 4, block_size=64, lanes=32)),
        ("one warp lti_adjoint N=4 M=4 (C=32 x 32 lanes), 32 x 2^20",
         adjoint(32, 1 << 20, 4, 4, block_size=32, lanes=32)),
        # ... and with fewer rows, whose look-back window widens (W = 128 at 8 rows or one): the reason
        # the one-warp default stops below 32 rows (kernels/_variants.py, one_warp_tiles)
        ("one warp lti N=3 M=3 (C=64 x 32 lanes), 8 x 2^20", lti(8, 1 << 20, 3, 3, block_size=64, lanes=32)),
        ("one warp lti N=4 M=4 (C=64 x 32 lanes), 8 x 2^20", lti(8, 1 << 20, 4, 4, block_size=64, lanes=32)),
        ("one warp lti N=4 M=4 (C=64 x 32 lanes), 1 x 2^24", lti(1, 1 << 24, 4, 4, block_size=64, lanes=32)),
        ("one warp lti_adjoint N=4 M=4 (C=32 x 32 lanes), 8 x 2^20",
         adjoint(8, 1 << 20, 4, 4, block_size=32, lanes=32)),
        ("lti N=2, 32 x 2^20, three-pass", lti(32, 1 << 20, 2, 2, single_pass=False)),
        # the persistent launch (opt-in): the next tile's load held in registers through the current one
        ("persistent lti N=2 M=2, 32 x 2^20", lti(32, 1 << 20, 2, 2, persistent=True)),
        ("persistent lti N=4 M=4, 32 x 2^20", lti(32, 1 << 20, 4, 4, persistent=True)),
        # lane loads (opt-in, kernels/_lane_tiles.py): no shared-memory layout change of the tile
        ("lane loads lti N=1 M=1, 32 x 2^20", lti(32, 1 << 20, 1, 1, lane_loads=True)),
        ("lane loads lti N=2 M=2, 32 x 2^20", lti(32, 1 << 20, 2, 2, lane_loads=True)),
        ("lane loads lti N=4 M=4, 32 x 2^20", lti(32, 1 << 20, 4, 4, lane_loads=True)),
        ("lane loads timed lti N=2 M=2, 32 x 2^20", lti(32, 1 << 20, 2, 2, lane_loads=True, clock=clock())),
        ("lane loads lti_adjoint N=2 M=2 (dx, db, da), 32 x 2^20", adjoint(32, 1 << 20, 2, 2, lane_loads=True)),
        ("lane loads lti_adjoint N=4 M=4 (dx, db, da), 32 x 2^20", adjoint(32, 1 << 20, 4, 4, lane_loads=True)),
        ("lane loads sos 8 biquads, 32 x 2^20", lambda: K.sos(
            torch.empty(32, 1 << 20, **meta), torch.empty(1, 8, 3, **meta), torch.empty(1, 8, 2, **meta),
            lane_loads=True)),
        # float32 lanes (opt-in, SSM_LFILTER_LANE_FLOAT32): the lanes' recurrences without float64
        ("lane float32 lti N=1 M=1, 32 x 2^20", lti(32, 1 << 20, 1, 1, lane_float32=True)),
        ("lane float32 lti N=2 M=2, 32 x 2^20", lti(32, 1 << 20, 2, 2, lane_float32=True)),
        ("lane float32 sos 8 biquads, 32 x 2^20", lambda: K.sos(
            torch.empty(32, 1 << 20, **meta), torch.empty(1, 8, 3, **meta), torch.empty(1, 8, 2, **meta),
            lane_float32=True)),
        ("lane float32 lti_adjoint N=1 M=1 (dx, db, da), 32 x 2^20", adjoint(32, 1 << 20, 1, 1, lane_float32=True)),
        ("lane float32 lti_adjoint N=2 M=2 (dx, db, da), 32 x 2^20", adjoint(32, 1 << 20, 2, 2, lane_float32=True)),
        ("lti_adjoint N=2 M=2 (dx, db, da), C=32, 32 x 2^20", adjoint(32, 1 << 20, 2, 2, block_size=32)),
        ("lane float32 lti_adjoint N=2 M=2 (dx, db, da), C=32, 32 x 2^20",
         adjoint(32, 1 << 20, 2, 2, lane_float32=True, block_size=32)),
        ("lane float32 sos_adjoint 8 biquads (dx, db, da), 32 x 2^20", lambda: K.sos_adjoint(
            torch.empty(32, 1 << 20, **meta), torch.empty(32, 1 << 20, **meta), torch.empty(1, 8, 3, **meta),
            torch.empty(1, 8, 2, **meta), True, 3, 2, lane_float32=True)),
        ("lane float32 one warp lti N=4 M=4 (C=64 x 32 lanes), 32 x 2^20",
         lti(32, 1 << 20, 4, 4, block_size=64, lanes=32, lane_float32=True)),
        ("lane float32 one warp lti_adjoint N=4 M=4 (C=32 x 32 lanes), 32 x 2^20",
         adjoint(32, 1 << 20, 4, 4, block_size=32, lanes=32, lane_float32=True)),
        ("lti N=2 M=2, C=64, 32 x 2^20", lti(32, 1 << 20, 2, 2, block_size=64)),
        ("sos 8 biquads, C=64, 32 x 2^20", lambda: K.sos(
            torch.empty(32, 1 << 20, **meta), torch.empty(1, 8, 3, **meta), torch.empty(1, 8, 2, **meta),
            block_size=64)),
        ("lane float32 lti N=2 M=2, C=64, 32 x 2^20", lti(32, 1 << 20, 2, 2, lane_float32=True, block_size=64)),
        ("lane float32 sos 8 biquads, C=64, 32 x 2^20", lambda: K.sos(
            torch.empty(32, 1 << 20, **meta), torch.empty(1, 8, 3, **meta), torch.empty(1, 8, 2, **meta),
            lane_float32=True, block_size=64)),
        # sosfilt's raw sections (monic=False, a0 first): the kernels divide by a0 in registers
        ("raw sos 8 biquads, C=64, 32 x 2^20", lambda: K.sos(
            torch.empty(32, 1 << 20, **meta), torch.empty(1, 8, 3, **meta), torch.empty(1, 8, 3, **meta),
            block_size=64, monic=False)),
        ("raw sos_adjoint 8 biquads (dx, db, da), 32 x 2^20", lambda: K.sos_adjoint(
            torch.empty(32, 1 << 20, **meta), torch.empty(32, 1 << 20, **meta), torch.empty(1, 8, 3, **meta),
            torch.empty(1, 8, 3, **meta), True, 3, 2, monic=False, sum_rows=True)),
        ("lane float32 raw sos_adjoint 8 biquads (dx, db, da), 32 x 2^20", lambda: K.sos_adjoint(
            torch.empty(32, 1 << 20, **meta), torch.empty(32, 1 << 20, **meta), torch.empty(1, 8, 3, **meta),
            torch.empty(1, 8, 3, **meta), True, 3, 2, monic=False, sum_rows=True, lane_float32=True)),
        ("lane float32 raw sos 8 biquads, C=64, 32 x 2^20", lambda: K.sos(
            torch.empty(32, 1 << 20, **meta), torch.empty(1, 8, 3, **meta), torch.empty(1, 8, 3, **meta),
            block_size=64, monic=False, lane_float32=True)),
        ("raw sos_adjoint 8 biquads uncapped (dx, db, da), 32 x 2^20", lambda: K.sos_adjoint(
            torch.empty(32, 1 << 20, **meta), torch.empty(32, 1 << 20, **meta), torch.empty(1, 8, 3, **meta),
            torch.empty(1, 8, 3, **meta), True, 3, 2, monic=False, sum_rows=True, register_cap=False)),
        # the clock stamps' diagnostic build (benchmarks/tile_timeline.py): the same registers, no spill
        ("timed lti N=2 M=2, 32 x 2^20", lti(32, 1 << 20, 2, 2, clock=clock())),
        ("timed lti_adjoint N=2 M=2 (dx, db, da), 32 x 2^20", adjoint(32, 1 << 20, 2, 2, clock=clock())),
        ("persistent sos 8 biquads, 32 x 2^20", lambda: K.sos(
            torch.empty(32, 1 << 20, **meta), torch.empty(1, 8, 3, **meta), torch.empty(1, 8, 2, **meta),
            persistent=True)),
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
        ("time_varying N=2, 8 x 2^20, C=8", lambda: K.time_varying(
            torch.empty(8, 1 << 20, **meta), torch.empty(8, 1 << 20, 2, **meta), block_size=8)),
        ("lane loads time_varying N=2, 8 x 2^20", lambda: K.time_varying(
            torch.empty(8, 1 << 20, **meta), torch.empty(8, 1 << 20, 2, **meta), lane_loads=True)),
        ("timed time_varying N=2, 8 x 2^20", lambda: K.time_varying(torch.empty(8, 1 << 20, **meta),
                                                                    torch.empty(8, 1 << 20, 2, **meta), clock=clock())),
        ("timed time_varying_adjoint N=2 (du, da), 8 x 2^20", lambda: K.time_varying_adjoint(
            torch.empty(8, 1 << 20, **meta), torch.empty(8, 1 << 20, 2, **meta), torch.empty(8, 1 << 20, **meta),
            clock=clock())),
        ("time_varying_adjoint N=2 (du, da), 8 x 2^20", lambda: K.time_varying_adjoint(
            torch.empty(8, 1 << 20, **meta), torch.empty(8, 1 << 20, 2, **meta), torch.empty(8, 1 << 20, **meta))),
        # float32 carries (accumulate_fp64=False), the default for float32 data at orders <= 2 until
        # 2026-11-29: the backward's register cap (128, 16 warps an SM) applies to this build only
        ("float32 carries time_varying N=2, 8 x 2^20", lambda: K.time_varying(
            torch.empty(8, 1 << 20, **meta), torch.empty(8, 1 << 20, 2, **meta), accumulate_fp64=False)),
        ("float32 carries time_varying_adjoint N=2 (du, da), 8 x 2^20", lambda: K.time_varying_adjoint(
            torch.empty(8, 1 << 20, **meta), torch.empty(8, 1 << 20, 2, **meta), torch.empty(8, 1 << 20, **meta),
            accumulate_fp64=False)),
        ("time_varying_adjoint N=2 (du, da), 8 x 2^20, C=8", lambda: K.time_varying_adjoint(
            torch.empty(8, 1 << 20, **meta), torch.empty(8, 1 << 20, 2, **meta), torch.empty(8, 1 << 20, **meta),
            block_size=8)),
        ("time_varying_adjoint N=4 (du, da), 8 x 2^20", lambda: K.time_varying_adjoint(
            torch.empty(8, 1 << 20, **meta), torch.empty(8, 1 << 20, 4, **meta), torch.empty(8, 1 << 20, **meta))),
        # the multi-pass kernels of orders above 4, forward and backward (minutes to compile at order 16:
        # not in the CI test)
        *passes_cases(meta),
        ("tv_sos 8 biquads, 8 x 2^20", tv_sos(8, 1 << 20, 8)),
        ("tv_sos 8 biquads, 8 x 2^20, C=8", tv_sos(8, 1 << 20, 8, block_size=8)),
        ("tv_sos one section (time_varying_lfilter, per-sample b), 8 x 2^20", lambda: K.tv_sos(
            torch.empty(8, 1 << 20, **meta), torch.empty(8, 1 << 20, 3, **meta)[:, :, None],
            torch.empty(8, 1 << 20, 3, **meta)[:, :, None], monic=False)),
        ("tv_sos one section with zi (time_varying_lfilter, head, ends), 8 x 2^20", lambda: K.tv_sos(
            torch.empty(8, 1 << 20, **meta), torch.empty(8, 1 << 20, 3, **meta)[:, :, None],
            torch.empty(8, 1 << 20, 3, **meta)[:, :, None], head=torch.empty(8, 1, 2, **meta),
            ends=torch.empty(1, 8, 2, **meta), monic=False)),
        ("tv_sos_adjoint one section with zi (time_varying_lfilter, head, ends), 8 x 2^20", lambda: K.tv_sos_adjoint(
            torch.empty(8, 1 << 20, **meta), torch.empty(8, 1 << 20, **meta), torch.empty(8, 1 << 20, 3, **meta)[:, :, None],
            torch.empty(8, 1 << 20, 3, **meta)[:, :, None], head=torch.empty(8, 1, 2, **meta),
            g_ends=torch.empty(1, 8, 2, **meta), monic=False)),
        ("tv_sos_adjoint one section (time_varying_lfilter, per-sample b), 8 x 2^20", lambda: K.tv_sos_adjoint(
            torch.empty(8, 1 << 20, **meta), torch.empty(8, 1 << 20, **meta), torch.empty(8, 1 << 20, 3, **meta)[:, :, None],
            torch.empty(8, 1 << 20, 3, **meta)[:, :, None], monic=False)),
        # normalized sections (monic): what the public functions passed before the kernels divided by a0
        ("normalized tv_sos one section (time_varying_lfilter, per-sample b), 8 x 2^20", lambda: K.tv_sos(
            torch.empty(8, 1 << 20, **meta), torch.empty(8, 1 << 20, 3, **meta)[:, :, None],
            torch.empty(8, 1 << 20, 2, **meta)[:, :, None])),
        ("normalized tv_sos_adjoint one section (time_varying_lfilter, per-sample b), 8 x 2^20",
         lambda: K.tv_sos_adjoint(torch.empty(8, 1 << 20, **meta), torch.empty(8, 1 << 20, **meta),
                                  torch.empty(8, 1 << 20, 3, **meta)[:, :, None],
                                  torch.empty(8, 1 << 20, 2, **meta)[:, :, None])),
        ("normalized tv_sos 8 biquads, 8 x 2^20", tv_sos(8, 1 << 20, 8, monic=True)),
        ("normalized tv_sos_adjoint 8 biquads (dx, db, da), 8 x 2^20", tv_sos_adjoint(8, 1 << 20, 8, monic=True)),
        ("tv_sos 8 biquads with zi (heads, ends), 8 x 2^20", tv_sos(8, 1 << 20, 8, head=torch.empty(8, 8, 2, **meta),
                                                                   ends=torch.empty(8, 8, 2, **meta))),
        ("tv_sos_adjoint 8 biquads (dx, db, da), 8 x 2^20", tv_sos_adjoint(8, 1 << 20, 8)),
        ("tv_sos_adjoint 2 biquads (dx, db, da), 8 x 2^20", tv_sos_adjoint(8, 1 << 20, 2)),
        ("tv_sos_adjoint 8 biquads with zi (dx, db, da, dzi), 8 x 2^20", tv_sos_adjoint(
            8, 1 << 20, 8, head=torch.empty(8, 8, 2, **meta), g_ends=torch.empty(8, 8, 2, **meta))),
        ("tv_sos_adjoint 8 biquads (dx, db, da) float64, 8 x 2^20", tv_sos_adjoint(8, 1 << 20, 8, torch.float64)),
        ("diagonal, 32 x 2^20", lambda: K.diagonal(torch.empty(32, 1 << 20, **meta), torch.empty(32, 1 << 20, **meta))),
        # the backward's three passes: conj(a) read shifted in place, da written by the last pass
        ("diagonal_adjoint (lam, da), 32 x 2^20", lambda: K.diagonal_adjoint(
            torch.empty(32, 1 << 20, **meta), torch.empty(32, 1 << 20, **meta), torch.empty(32, 1 << 20, **meta))),
        ("diagonal_adjoint constant a (lam, da), 32 x 2^20", lambda: K.diagonal_adjoint(
            torch.empty(32, 1, **meta), torch.empty(32, 1 << 20, **meta), torch.empty(32, 1 << 20, **meta))),
        ("diagonal_adjoint complex64 (lam, da), 32 x 2^20", lambda: K.diagonal_adjoint(
            *(torch.empty(32, 1 << 20, device="meta", dtype=torch.complex64) for _ in range(3)))),
    ]
    return cases


def report(arch: int = 90, only: list[str] | None = None, jobs: int = 1) -> str:
    lines = [f"# Kernel resources, compiled for sm_{arch} (no GPU needed)", "",
             f"Date {datetime.date.today()}, triton {triton.__version__}, torch {torch.__version__}; "
             "`python benchmarks/kernel_resources.py`. Registers a thread, spilled bytes, shared memory "
             "(bytes), the warps per SM the registers allow (65536 registers, 64 warps) and the static SASS "
             "instruction count, all and float64 arithmetic; compiled as the JIT specializes the arguments at "
             "run time.", "",
             "| case | kernel | warps | registers | spilled | shared | warps/SM | SASS | float64 | constexprs |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    return "\n".join(lines + _rows(_case_rows, _cases(), only, arch, jobs)) + "\n"


def _rows(case_rows, cases, only: list[str] | None, arch: int, jobs: int) -> list[str]:
    """``case_rows(label, arch)`` of every case whose label starts with one of ``only`` (or all), in the
    cases' order; with ``jobs > 1`` each case compiles in its own process (Triton's frontend and
    ptxas are single-threaded; forked, so a worker sees what the parent patched)."""
    labels = [label for label, _ in cases if not only or any(label.startswith(o) for o in only)]
    if jobs > 1 and len(labels) > 1:
        with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
            per_case = list(pool.map(case_rows, labels, [arch] * len(labels)))
    else:
        per_case = [case_rows(label, arch) for label in labels]
    return [row for rows in per_case for row in rows]


def _compiled_rows(cases, row, label: str, arch: int) -> list[str]:
    """The table rows of case ``label`` of ``cases()``: each kernel its launch captures, compiled, as
    ``row(label, resources, launch kwargs)``, printed as they come."""
    rows = []
    for fn, args, kwargs in capture(dict(cases())[label]):
        rows.append(row(label, compile_resources(fn, args, kwargs, arch), kwargs))
        print(rows[-1], file=sys.stderr, flush=True)
    return rows


def _resource_row(label: str, r: dict, kwargs: dict) -> str:
    consts = ", ".join(f"{k}={v}" for k, v in r["consts"].items() if not isinstance(v, bool) or v)
    return (f"| {label} | `{r['kernel']}` | {r['num_warps']} | {r['regs']} | {r['spill']} | "
            f"{r['shared']} | {r['warps_per_sm']} | {r['instrs']} | {r['fp64']} | {consts} |")


def _case_rows(label: str, arch: int) -> list[str]:
    """The table rows of one case: each kernel its launch captures, compiled."""
    return _compiled_rows(_cases, _resource_row, label, arch)


def _later_tile_cases():
    """(label, launch) pairs of the single-pass LTI kernels, each with the power table and without."""
    from ssm_lfilter import kernels as K

    meta = dict(device="meta", dtype=torch.float32)
    x, b8, a8 = torch.empty(32, 1 << 20, **meta), torch.empty(1, 8, 3, **meta), torch.empty(1, 8, 2, **meta)
    cases = []
    for n in (1, 2, 4):  # lane loads (opt-in, kernels/_lane_tiles.py), with the table
        cases.append((f"lane loads lti N=M={n}, 32 x 2^20", lambda n=n: K.lti(
            x, torch.empty(1, n + 1, **meta), torch.empty(1, n, **meta), torch.empty(32, 0, **meta), lane_loads=True)))
    cases.append(("lane loads sos 8 biquads, 32 x 2^20 (a section)", lambda: K.sos(x, b8, a8, lane_loads=True)))
    for n in (2, 4):
        cases.append((f"lane loads lti_adjoint N=M={n}, 32 x 2^20", lambda n=n: K.lti_adjoint(
            x, x, x, torch.empty(1, n + 1, **meta), torch.empty(1, n, **meta), 0, True, n + 1, n, lane_loads=True)))
    cases.append(("lane loads sos_adjoint 8 biquads, 32 x 2^20 (a section)", lambda: K.sos_adjoint(
        x, x, b8, a8, True, 3, 2, lane_loads=True)))
    for table in (False, True):
        tag = "table" if table else "no table"
        for n in (2, 3, 4):
            cases.append((f"lti N=M={n}, 32 x 2^20, {tag}", lambda n=n, t=table: K.lti(
                x, torch.empty(1, n + 1, **meta), torch.empty(1, n, **meta), torch.empty(32, 0, **meta), power_table=t)))
        cases.append((f"lti N=M=2, 1 x 2^24, {tag}", lambda t=table: K.lti(
            torch.empty(1, 1 << 24, **meta), torch.empty(1, 3, **meta), torch.empty(1, 2, **meta),
            torch.empty(1, 0, **meta), power_table=t)))
        for n in (2, 4):
            cases.append((f"lti_adjoint N=M={n}, 32 x 2^20, {tag}", lambda n=n, t=table: K.lti_adjoint(
                x, x, x, torch.empty(1, n + 1, **meta), torch.empty(1, n, **meta), 0, True, n + 1, n, power_table=t)))
        cases.append((f"sos 8 biquads, 32 x 2^20 (a section), {tag}", lambda t=table: K.sos(x, b8, a8, power_table=t)))
        cases.append((f"sos_adjoint 8 biquads, 32 x 2^20 (a section), {tag}", lambda t=table: K.sos_adjoint(
            x, x, b8, a8, True, 3, 2, power_table=t)))
    return cases


def later_tile_table(arch: int = 90, only: list[str] | None = None, jobs: int = 1) -> str:
    """Markdown: what a single-pass LTI tile runs, with the power table and without, per sample a
    thread handles (``BLOCK * C / threads``; a cascade: per section)."""
    lines = [f"# A tile's instructions, compiled for sm_{arch} (no GPU needed)", "",
             f"Date {datetime.date.today()}, triton {triton.__version__}; `python benchmarks/kernel_resources.py "
             "--later-tiles`: the single-pass LTI kernels with the power table (written by a launch of its "
             "own) and without, static SASS instructions divided by the samples a thread handles (a "
             "cascade: one section's). float64 arithmetic issues at half the float32 rate.", "",
             "| case | kernel | registers | spilled | warps/SM | SASS a sample | float64 a sample |",
             "|---|---|---|---|---|---|---|"]
    return "\n".join(lines + _rows(_later_case_rows, _later_tile_cases(), only, arch, jobs)) + "\n"


def _per_sample_row(label: str, r: dict, kwargs: dict) -> str:
    per_thread = r["consts"]["BLOCK"] * r["consts"]["C"] / (32 * r["num_warps"])
    return (f"| {label} | `{r['kernel']}` | {r['regs']} | {r['spill']} | {r['warps_per_sm']} | "
            f"{r['instrs'] / per_thread:.1f} | {r['fp64'] / per_thread:.1f} |")


def _later_case_rows(label: str, arch: int) -> list[str]:
    """The ``later_tile_table`` rows of one case."""
    return _compiled_rows(_later_tile_cases, _per_sample_row, label, arch)


def _sweep_cases():
    """(label, launch) pairs of the default launches over row counts and lengths (which set tiles,
    look-back windows and register caps), orders 1-4 and float32/float64: the LTI forward (with and
    without a head) and backward, the time-varying forward and backward, the 8-biquad cascade and its
    backward."""
    import importlib
    import itertools

    from ssm_lfilter import kernels as K

    tva = importlib.import_module("ssm_lfilter.kernels.time_varying_adjoint")

    def m(*shape, dt):
        return torch.empty(*shape, device="meta", dtype=dt)

    shapes = ((1, 1 << 24), (8, 1 << 20), (16, 1 << 20), (64, 1 << 16), (512, 8192), (4096, 2048), (32, 3000))
    cases = []
    for (R, T), dt in itertools.product(shapes, (torch.float32, torch.float64)):
        tag = f"{R} x {T}, {str(dt).replace('torch.', '')}"
        for N in (1, 2, 3, 4):
            cases += [
                (f"lti N={N}, {tag}", lambda R=R, T=T, N=N, dt=dt: K.lti(
                    m(R, T, dt=dt), m(1, N + 1, dt=dt), m(1, N, dt=dt), m(R, 0, dt=dt))),
                (f"lti N={N} with zi, {tag}", lambda R=R, T=T, N=N, dt=dt: K.lti(
                    m(R, T, dt=dt), m(1, N + 1, dt=dt), m(1, N, dt=dt), m(R, N, dt=dt))),
                (f"lti_adjoint N={N}, {tag}", lambda R=R, T=T, N=N, dt=dt: K.lti_adjoint(
                    m(R, T, dt=dt), m(R, T, dt=dt), m(R, T, dt=dt), m(1, N + 1, dt=dt), m(1, N, dt=dt), 0, True,
                    N + 1, N)),
                (f"time_varying N={N}, {tag}", lambda R=R, T=T, N=N, dt=dt: K.time_varying(
                    m(R, T, dt=dt), m(R, T, N, dt=dt))),
                (f"time_varying_adjoint N={N}, {tag}", lambda R=R, T=T, N=N, dt=dt: tva.time_varying_adjoint(
                    m(R, T, dt=dt), m(R, T, N, dt=dt), m(R, T, dt=dt)))]
        cases += [(f"sos 8 biquads, {tag}", lambda R=R, T=T, dt=dt: K.sos(
                       m(R, T, dt=dt), m(1, 8, 3, dt=dt), m(1, 8, 2, dt=dt))),
                  (f"sos_adjoint 8 biquads, {tag}", lambda R=R, T=T, dt=dt: K.sos_adjoint(
                       m(R, T, dt=dt), m(R, T, dt=dt), m(1, 8, 3, dt=dt), m(1, 8, 2, dt=dt), True, 3, 2))]
    return cases


def _spill_row(label: str, r: dict, kwargs: dict) -> str:
    return f"| {label} | `{r['kernel']}` | {r['regs']} | {r['spill']} | {kwargs.get('maxnreg', '')} | {kwargs.get('W', '')} |"


def _sweep_rows(label: str, arch: int) -> list[str]:
    """The sweep's rows of one case: every kernel it launches, compiled."""
    return _compiled_rows(_sweep_cases, _spill_row, label, arch)


def sweep_table(arch: int = 90, only: list[str] | None = None, jobs: int = 1) -> str:
    """Markdown: the builds of ``_sweep_cases`` that spill, and how many were compiled."""
    rows = _rows(_sweep_rows, _sweep_cases(), only, arch, jobs)
    spilled = [r for r in rows if r.split("|")[4].strip() != "0"]
    lines = [f"# Spills over row counts, lengths, orders and dtypes, compiled for sm_{arch}", "",
             f"Date {datetime.date.today()}, triton {triton.__version__}; `python benchmarks/kernel_resources.py "
             f"--sweep`: {len(rows)} builds of the default launches, {len(spilled)} spill.", "",
             "| case | kernel | registers | spilled | register cap | look-back window |", "|---|---|---|---|---|---|"]
    return "\n".join(lines + spilled) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", type=int, default=90, help="NVIDIA compute capability x10 (90: H100/H200)")
    p.add_argument("--out", help="write the markdown table here (default: stdout)")
    p.add_argument("--only", nargs="*", help="cases whose label starts with one of these (default: all)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="cases compiled at once, one process each (default: the CPU count)")
    p.add_argument("--lines", metavar="LABEL",
                   help="instead: the source lines with the most SASS instructions, for the first case whose "
                        "label starts with LABEL")
    p.add_argument("--opcode", metavar="OP", help="with --lines: every source line with this SASS opcode instead")
    p.add_argument("--later-tiles", action="store_true",
                   help="instead: what a single-pass LTI tile other than a row's first runs, with the power "
                        "table and without")
    p.add_argument("--sweep", action="store_true",
                   help="instead: the default launches over row counts, lengths, orders and dtypes, listing "
                        "the builds that spill")
    args = p.parse_args(argv)
    if args.sweep:
        text = sweep_table(args.arch, args.only, args.jobs)
    elif args.lines:
        text = lines_table(args.lines, args.arch, opcode=args.opcode)
    elif args.later_tiles:
        text = later_tile_table(args.arch, args.only, args.jobs)
    else:
        text = report(args.arch, args.only, args.jobs)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
