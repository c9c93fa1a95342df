"""Compile, on a machine without a GPU, the kernels a GPU session launches first, into a Triton cache
the GPU machine reads instead of compiling them.

    # here, with the GPU machine's Triton (3.6.0 on the H100/H200 machines), a minute or two a kernel:
    env -u TRITON_INTERPRET PYTHONPATH=. /tmp/t36/bin/python benchmarks/prebuild_cache.py build \\
        --out .triton-cache-sm90 [--families public sos lti lti_adjoint sos_adjoint tv tv_adjoint] [--jobs 2]
    # on the GPU machine, before anything imports Triton (benchmarks/gpu_session.sh does it):
    python benchmarks/prebuild_cache.py install .triton-cache-sm90   # prints whether it applies
    export TRITON_CACHE_DIR=$PWD/.triton-cache-sm90
    python benchmarks/prebuild_cache.py report .triton-cache-sm90    # afterwards: what was compiled there

Why: a GPU session's device time is 15 minutes, and the last leases spent 139 s of it compiling the
variant table's kernels and ran out of time in the GPU test tier on cold compiles. Triton keys a
compile on its own sources and build, the kernel's source and specialization, the options and the
ptxas version, never on a path or a device, so a kernel compiled here for ``sm_90`` by the same
Triton wheel is the kernel the GPU machine would build; the launches are the variant table's,
captured on ``meta`` tensors as ``benchmarks/compile_times.py --variants`` captures them (the
launchers see the GPU's choices there: ``kernels/_variants.py``), each distinct key compiled once.

A kernel's key holds its source and the line it starts on, so any edit to a file of ``kernels/``
above or in a kernel makes its prebuilt entry miss: rebuild from the tree that will run.

What travels: each kernel's metadata and cubin (the intermediate IR is dropped, about 1 MB a kernel
of the 1.1), and each cache group file, whose absolute paths are written as ``@CACHE@/...`` and
filled in by ``install``. Triton reads a group only when every path in it exists, so a kernel whose
key differs on the GPU machine (another Triton build, another ptxas) is compiled there as before:
the prebuilt cache can save time, never change a result. ``manifest.json`` names the Triton version,
a hash of Triton's own cache key and the commit; ``install`` compares them and says so, and
``report`` counts the kernels the GPU machine compiled itself (a miss) against the prebuilt ones.
The folder goes to the GPU machine through the device tool's ``carry`` (64 MiB at most, about 80 KB
a kernel here).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "benchmarks"

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLACEHOLDER = "@CACHE@"
KEEP = (".json", ".cubin")  # metadata and binary: what Triton loads on a cache hit
DEFAULT_FAMILIES = ["public", "sos", "lti", "lti_adjoint", "sos_adjoint", "tv", "tv_adjoint"]  # gpu_session.sh, part 1


def _triton_fingerprint() -> dict:
    import triton
    from triton.runtime.cache import triton_key

    return {"triton": triton.__version__, "triton_key_sha256": hashlib.sha256(triton_key().encode()).hexdigest()}


def _launches(families: list[str], only: list[str] | None, arch: int) -> list:
    """``[(variant label, kernel, args, kwargs, JIT key)]``, each JIT key once, in the table's order."""
    from benchmarks import compile_times as CT
    from benchmarks import kernel_resources as KR
    from benchmarks.variant_cases import variant_cases

    out, seen = [], set()
    for _, name, _, variants in variant_cases("meta", families):
        for var, fn in variants.items():
            label = f"{name} / {var}"
            if only and not label.startswith(tuple(only)):
                continue
            for kern, args, kwargs in KR.capture(fn, skip=()):
                key = CT._jit_key(kern, args, kwargs, arch)
                if key not in seen:
                    seen.add(key)
                    out.append((label, kern, args, kwargs, key))
    return out


def _worker(cache: str, families: list[str], only: list[str] | None, arch: int, index: int, count: int) -> None:
    """Compile launches ``index, index + count, ...`` into ``cache`` (this process's TRITON_CACHE_DIR)."""
    from benchmarks import kernel_resources as KR

    for i, (label, kern, args, kwargs, _) in enumerate(_launches(families, only, arch)):
        if i % count == index:
            t0 = time.perf_counter()
            KR._compile(kern, args, kwargs, arch)
            print(f"{time.perf_counter() - t0:7.1f} s  {kern.__name__:32s} {label}", flush=True)


def _strip(cache: str) -> int:
    """Drop the intermediate IR and write every group's paths relative to ``@CACHE@``; the kernels kept."""
    kernels = 0
    for entry in sorted(os.listdir(cache)):
        d = os.path.join(cache, entry)
        if not os.path.isdir(d):
            continue
        for f in os.listdir(d):
            if not f.startswith("__grp__") and not f.endswith(KEEP):
                os.remove(os.path.join(d, f))
        for f in os.listdir(d):
            if f.startswith("__grp__"):
                path = os.path.join(d, f)
                with open(path) as fh:
                    children = json.load(fh)["child_paths"]
                kept = {c: f"{PLACEHOLDER}/{entry}/{c}" for c in children if c.endswith(KEEP)}
                with open(path, "w") as fh:
                    json.dump({"child_paths": kept}, fh)
                kernels += any(c.endswith(".cubin") for c in kept)
    return kernels


def build(out: str, families: list[str], only: list[str] | None = None, arch: int = 90, jobs: int = 2) -> dict:
    """Compile the launches into ``out`` with ``jobs`` processes, strip it and write its manifest."""
    out = os.path.abspath(out)
    os.makedirs(out, exist_ok=True)
    env = dict(os.environ, TRITON_CACHE_DIR=out, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("TRITON_INTERPRET", None)
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "_worker", out, str(arch), str(i), str(jobs),
                               "--families", *families] + (["--only", *only] if only else []), env=env, cwd=ROOT)
             for i in range(jobs)]
    if any(p.wait() != 0 for p in procs):
        raise RuntimeError("prebuild_cache: a compile worker failed (its output is above)")
    kernels = _strip(out)
    rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    manifest = {**_triton_fingerprint(), "arch": arch, "families": families, "only": only, "commit": rev,
                "kernels": kernels, "built": time.strftime("%Y-%m-%d %H:%M"),
                "seconds": round(time.perf_counter() - t0)}
    with open(os.path.join(out, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=2)
    return manifest


def install(cache: str) -> bool:
    """Fill in the groups' paths for where ``cache`` is now; True when this machine's Triton is the one
    it was built with (else it says why nothing will hit, and leaves the folder as it was)."""
    cache = os.path.abspath(cache)
    with open(os.path.join(cache, "manifest.json")) as fh:
        manifest = json.load(fh)
    here = _triton_fingerprint()
    if {k: manifest[k] for k in here} != here:
        print(f"prebuilt cache {cache}: built with triton {manifest['triton']} (key {manifest['triton_key_sha256'][:12]}), "
              f"this machine has {here['triton']} (key {here['triton_key_sha256'][:12]}): its kernels will not hit")
        return False
    for entry in os.listdir(cache):
        d = os.path.join(cache, entry)
        for f in os.listdir(d) if os.path.isdir(d) else ():
            if f.startswith("__grp__"):
                path = os.path.join(d, f)
                with open(path) as fh:
                    text = fh.read()
                with open(path, "w") as fh:
                    fh.write(text.replace(PLACEHOLDER, cache))
    with open(os.path.join(cache, "installed.stamp"), "w") as fh:
        fh.write(str(time.time()))
    print(f"prebuilt cache {cache}: {manifest['kernels']} kernels for sm_{manifest['arch']} from commit "
          f"{manifest['commit']} ({', '.join(manifest['families'])}), triton {here['triton']} as built")
    return True


def report(cache: str) -> str:
    """One line: kernels in the cache that this machine compiled itself since ``install`` (misses, or
    launches the build never captured) against the prebuilt ones."""
    cache = os.path.abspath(cache)
    with open(os.path.join(cache, "manifest.json")) as fh:
        manifest = json.load(fh)
    stamp = os.path.join(cache, "installed.stamp")
    since = os.path.getmtime(stamp) if os.path.exists(stamp) else float("inf")
    compiled_here = 0
    for entry in os.listdir(cache):
        d = os.path.join(cache, entry)
        if os.path.isdir(d) and any(f.endswith(".ttir") and os.path.getmtime(os.path.join(d, f)) >= since
                                    for f in os.listdir(d)):
            compiled_here += 1
    return (f"prebuilt cache: {manifest['kernels']} kernels prebuilt; {compiled_here} compiled on this machine "
            f"since install (keys the build did not have)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="compile the launches into a cache folder")
    b.add_argument("--out", required=True)
    b.add_argument("--families", nargs="+", default=DEFAULT_FAMILIES)
    b.add_argument("--only", nargs="+", help="variant labels ('case / variant') starting with these")
    b.add_argument("--arch", type=int, default=90)
    b.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    w = sub.add_parser("_worker")
    w.add_argument("cache")
    w.add_argument("arch", type=int)
    w.add_argument("index", type=int)
    w.add_argument("count", type=int)
    w.add_argument("--families", nargs="+", required=True)
    w.add_argument("--only", nargs="+")
    for name in ("install", "report"):
        sub.add_parser(name).add_argument("cache")
    args = ap.parse_args(argv)
    if args.cmd == "build":
        print(json.dumps(build(args.out, args.families, args.only, args.arch, args.jobs), indent=2))
    elif args.cmd == "_worker":
        _worker(args.cache, args.families, args.only, args.arch, args.index, args.count)
    elif args.cmd == "install":
        return 0 if install(args.cache) else 3
    else:
        print(report(args.cache))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
