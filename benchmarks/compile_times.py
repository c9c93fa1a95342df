"""Wall time of a cold compile, for a GPU on a machine without one, of each kernel a launch captures.

    env -u TRITON_INTERPRET PYTHONPATH=. python benchmarks/compile_times.py --only "lti N=2 M=2" "passes"
    env -u TRITON_INTERPRET PYTHONPATH=. python benchmarks/compile_times.py --variants lti tv --workers 16

The cases are ``kernel_resources.py``'s (its ``passes ...`` ones included): the launchers on GPU-sized meta
tensors, compiled with Triton's own binder for ``sm_<arch>``, in one process, with a fresh Triton cache
so nothing is read back. A lent GPU's lease is a few minutes, and a table of variants is as many
compiles: these seconds say what its compile stage costs (``gpu_check.py``'s workers share it out).

``--variants FAMILY ...`` compiles what ``gpu_check.py``'s variant table of those families launches
(``benchmarks/variant_cases.py``, every variant run on GPU-sized meta tensors with its launches
captured), each distinct specialization once, and says how long the compile workers' stage
(``variant_table.warm``: ``--workers`` processes, each taking every ``workers``-th variant) takes
with those seconds: the figure to hold against ``gpu_session.sh``'s ``--warm-budget``.
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


def _jit_key(fn, args: tuple, kwargs: dict, arch: int) -> tuple:
    """What Triton's JIT caches a launch's compile under (its binder's specialization and options), so
    two launches with one key are one compile."""
    from benchmarks import kernel_resources as KR

    _, _, (_, specialization, options) = KR.bind(fn, args, kwargs, arch)
    return (fn.__name__, fn.cache_key, str(specialization), str(options))


def variant_compiles(families: list[str] | None, arch: int = 90) -> tuple[list[tuple[str, list]], dict]:
    """The variant table's launches, captured on meta tensors: ``[(variant label, [JIT keys])]`` in
    the table's order, and ``{JIT key: (kernel, seconds)}``, each distinct key compiled cold once."""
    from benchmarks import kernel_resources as KR
    from benchmarks.variant_cases import variant_cases

    items, seconds = [], {}
    for _, name, _, variants in variant_cases("meta", families):
        for var, fn in variants.items():
            keys = []
            for kern, args, kwargs in KR.capture(fn, skip=()):
                key = _jit_key(kern, args, kwargs, arch)
                keys.append(key)
                if key not in seconds:
                    t0 = time.perf_counter()
                    KR._compile(kern, args, kwargs, arch)
                    seconds[key] = (kern.__name__, time.perf_counter() - t0)
                    print(f"{seconds[key][1]:7.1f} s  {kern.__name__:36s} {name} / {var}", file=sys.stderr, flush=True)
            items.append((f"{name} / {var}", keys))
    return items, seconds


def warm_stage(items: list[tuple[str, list]], seconds: dict, workers: int) -> list[float]:
    """Each compile worker's seconds when worker ``k`` takes variants ``k, k + workers, ...`` in order
    (``variant_table.warm_part``) and compiles every kernel its variants launch that it has not built
    itself: an upper bound, since a kernel another worker has finished is read from the cache."""
    totals = []
    for k in range(workers):
        own: set = set()
        for _, keys in items[k::workers]:
            own.update(keys)
        totals.append(sum(seconds[key][1] for key in own))
    return totals


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--only", nargs="+", help="cases whose label starts with one of these")
    which.add_argument("--variants", nargs="+", metavar="FAMILY",
                       help="the variant table of these families (benchmarks/variant_cases.py BUILDERS)")
    ap.add_argument("--workers", type=int, default=16, help="with --variants: the compile workers to share out")
    ap.add_argument("--arch", type=int, default=90, help="NVIDIA compute capability x10 (90: H100/H200)")
    args = ap.parse_args(argv)
    os.environ["TRITON_CACHE_DIR"] = tempfile.mkdtemp()  # cold: every kernel compiled, none read back
    if args.variants:
        items, seconds = variant_compiles(args.variants, args.arch)
        stage = warm_stage(items, seconds, args.workers)
        print("| kernel | distinct compiles | compile s (sum) | slowest s |\n|---|---|---|---|")
        by_kernel: dict = {}
        for kernel, s in seconds.values():
            by_kernel.setdefault(kernel, []).append(s)
        for kernel, ss in sorted(by_kernel.items(), key=lambda kv: -sum(kv[1])):
            print(f"| `{kernel}` | {len(ss)} | {sum(ss):.1f} | {max(ss):.1f} |")
        launches = sum(len(keys) for _, keys in items)
        print(f"\n{len(items)} variants of {', '.join(args.variants)}: {launches} launches, {len(seconds)} distinct kernels, "
              f"{sum(s for _, s in seconds.values()):.0f} s of compile in one process. With {args.workers} "
              f"workers (each compiling its own variants' kernels): the slowest worker {max(stage):.0f} s, "
              f"the median {sorted(stage)[len(stage) // 2]:.0f} s.")
        return 0
    rows = compile_times(args.only, args.arch)
    print("| case | kernel | compile s | tensor memory ops |\n|---|---|---|---|")
    for label, kernel, s, mem in rows:
        print(f"| {label} | `{kernel}` | {s:.1f} | {mem} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
