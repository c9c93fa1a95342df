"""benchmarks/prebuild_cache.py: a Triton cache built here for sm_90 and moved elsewhere is read back
as a cache hit by the compile a GPU machine's JIT would run (nothing recompiled), and a cache built
by another Triton says it will not hit. No GPU needed: the kernels are compiled, never run."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "prebuild_cache.py")
ONLY = "diag real 32x1048576 / single-pass"  # one small kernel, a few seconds to compile


def _env(cache: str | None = None) -> dict:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("TRITON_INTERPRET", None)
    if cache:
        env["TRITON_CACHE_DIR"] = cache
    return env


def _files(cache: str) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), cache) for d, _, fs in os.walk(cache) for f in fs)


# The compile Triton's JIT runs for the captured launch, in a fresh process on the given cache; it
# prints the kernel files' suffixes that exist afterwards.
_RECOMPILE = f"""
import os, sys
sys.path.insert(0, {ROOT!r})
from benchmarks import prebuild_cache as P, kernel_resources as KR
for _, kern, args, kwargs, _ in P._launches(["diag"], [{ONLY!r}], 90):
    KR._compile(kern, args, kwargs, 90)
"""


def test_build_move_install_hit(tmp_path):
    built = str(tmp_path / "built")
    subprocess.run([sys.executable, SCRIPT, "build", "--out", built, "--families", "diag", "--only", ONLY,
                    "--jobs", "1"], check=True, env=_env(), cwd=ROOT, timeout=600, capture_output=True)
    manifest = json.load(open(os.path.join(built, "manifest.json")))
    assert manifest["kernels"] >= 1 and manifest["arch"] == 90
    files = _files(built)
    assert any(f.endswith(".cubin") for f in files) and not any(f.endswith((".ttir", ".ptx", ".llir")) for f in files)
    groups = [f for f in files if os.path.basename(f).startswith("__grp__")]
    assert groups and all("@CACHE@/" in open(os.path.join(built, g)).read() for g in groups)

    moved = str(tmp_path / "elsewhere" / "cache")  # as on the GPU machine: another absolute path
    shutil.copytree(built, moved)
    out = subprocess.run([sys.executable, SCRIPT, "install", moved], check=True, env=_env(), cwd=ROOT,
                         capture_output=True, text=True, timeout=120).stdout
    assert "as built" in out, out
    before = _files(moved)
    subprocess.run([sys.executable, "-c", _RECOMPILE], check=True, env=_env(moved), cwd=ROOT, timeout=600)
    # a hit loads the metadata and cubin; a miss would have written the kernel's IR beside them
    new = sorted(set(_files(moved)) - set(before))
    assert not new, new
    rep = subprocess.run([sys.executable, SCRIPT, "report", moved], check=True, env=_env(), cwd=ROOT,
                         capture_output=True, text=True, timeout=120).stdout
    assert f"{manifest['kernels']} kernels prebuilt; 0 compiled on this machine" in rep, rep

    # without install the paths are placeholders: Triton finds no group and compiles anew
    raw = str(tmp_path / "not-installed")
    shutil.copytree(built, raw)
    subprocess.run([sys.executable, "-c", _RECOMPILE], check=True, env=_env(raw), cwd=ROOT, timeout=600)
    assert any(f.endswith(".ttir") for f in _files(raw))


def test_install_refuses_another_triton(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "manifest.json").write_text(json.dumps({"triton": "0.0.0", "triton_key_sha256": "0" * 64, "kernels": 1,
                                                     "arch": 90, "commit": "x", "families": ["diag"]}))
    res = subprocess.run([sys.executable, SCRIPT, "install", str(cache)], env=_env(), cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 3 and "will not hit" in res.stdout, res.stdout
    assert not (cache / "installed.stamp").exists()
