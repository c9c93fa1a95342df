"""Wall time of a cold compile, for a GPU on a machine without one, of each kernel a launch captures.

    env -u TRITON_INTERPRET PYTHONPATH=. python benchmarks/compile_times.py --only "lti N=2 M=2" "passes"

The cases are ``kernel_resources.py``'s (its ``passes ...`` ones included): the launchers on GPU-sized meta
tensors, compiled with Triton's own binder for ``sm_<arch>``, in one process, with a fresh Triton cache
so nothing is read back. A lent GPU's lease is a few minutes, and a table of variants is as many
compiles: these seconds say what its compile stage costs (``gpu_check.py``'s workers share it out).
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def tensor_memory_ops(ttir: str) -> int:
    """Loads, stores and atomics through a tensor of pointers in a kernel's Triton IR (after inlining):
    Triton's coalescing pass, most of a big kernel's compile, costs more than linearly in them."""
    return sum(1 for line in ttir.splitlines() if re.search(r"\btt\.(load|store|atomic_\w+)\b", line)
               and re.search(r"tensor<[^>]*!tt\.ptr", line))


def compile_times(labels: list[str], arch: int = 90) -> list[tuple[str, str, float, int]]:
    """``(case label, kernel, seconds, tensor memory ops)`` for each kernel of each case whose label
    starts with one of ``labels``."""
    from benchmarks import kernel_resources as KR

    rows = []
    for label, launch in KR._cases():
        if not any(label.startswith(p) for p in labels):
            continue
        for fn, args, kwargs in KR.capture(launch, skip=()):
            t0 = time.perf_counter()
            compiled = KR._compile(fn, args, kwargs, arch)
            rows.append((label, fn.__name__, time.perf_counter() - t0, tensor_memory_ops(compiled.asm["ttir"])))
            print(f"{rows[-1][2]:7.1f} s  {fn.__name__:36s} {label}", file=sys.stderr, flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", required=True, help="cases whose label starts with one of these")
    ap.add_argument("--arch", type=int, default=90, help="NVIDIA compute capability x10 (90: H100/H200)")
    args = ap.parse_args(argv)
    os.environ["TRITON_CACHE_DIR"] = tempfile.mkdtemp()  # cold: every kernel compiled, none read back
    rows = compile_times(args.only, args.arch)
    print("| case | kernel | compile s | tensor memory ops |\n|---|---|---|---|")
    for label, kernel, s, mem in rows:
        print(f"| {label} | `{kernel}` | {s:.1f} | {mem} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
