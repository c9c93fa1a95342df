"""Accuracy of direct forms with clustered poles on the torch engine, against extended precision.

    python benchmarks/clustered_poles.py [--T 5000] [--out DIR]   # DIR/clustered_poles.md

For each design: the peak homogeneous response over a block (``|G|``, the engine's conditioning
test, ``engine/lti.py``), then the largest error relative to the signal's peak, against the same
loop in ``np.longdouble`` (``reference.lfilter_extended``), of ``ssm_lfilter.lfilter`` and of
scipy's ``lfilter`` (sequential) and ``tf2sos`` + ``sosfilt`` in float64; and in float32 (float32
coefficients and data, against extended precision on those rounded coefficients) of
``ssm_lfilter.lfilter`` and of scipy's float32 ``lfilter``. The package is whichever ``import
ssm_lfilter`` finds (``PYTHONPATH=other-checkout`` measures another tree). CPU, the torch engine.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time

import numpy as np
import scipy.signal as ss
import torch

import ssm_lfilter as sl
from ssm_lfilter.engine import lti as engine
from ssm_lfilter.reference import lfilter_extended

# appended, not prepended: ``ssm_lfilter`` above is whichever tree the environment names
sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.report import print_and_write  # noqa: E402

DESIGNS = {
    "butter(2, 0.001)": lambda: ss.butter(2, 0.001),
    "butter(3, 0.01)": lambda: ss.butter(3, 0.01),
    "butter(4, 0.005)": lambda: ss.butter(4, 0.005),
    "butter(4, 0.05)": lambda: ss.butter(4, 0.05),
    "butter(5, 0.01)": lambda: ss.butter(5, 0.01),
    "butter(6, 0.02)": lambda: ss.butter(6, 0.02),
    "butter(8, 0.05)": lambda: ss.butter(8, 0.05),
    "butter(8, 0.2)": lambda: ss.butter(8, 0.2),
    "cheby1(8, 1, 0.2)": lambda: ss.cheby1(8, 1, 0.2),
    "cheby1(12, 1, 0.3)": lambda: ss.cheby1(12, 1, 0.3),
    "ellip(6, 1, 40, 0.3)": lambda: ss.ellip(6, 1, 40, 0.3),
    "comb, delay 65, gain 0.9": lambda: ([1.0], np.r_[1.0, np.zeros(64), -0.9]),
}


def _rel(y, ref) -> float:
    return float(np.abs(np.asarray(y, np.float64) - ref).max() / np.abs(ref).max())


def _ours(b, a, x, exact):
    """``ssm_lfilter.lfilter``'s error, or the exception's name where it raised (an older tree)."""
    try:
        return _rel(sl.lfilter(torch.tensor(b), torch.tensor(a), torch.tensor(x)).numpy(), exact)
    except Exception as e:  # noqa: BLE001 - reported in the table
        return type(e).__name__


def _fmt(v) -> str:
    return v if isinstance(v, str) else f"{v:.1e}"


def _peak(a) -> float:
    a = np.asarray(a, np.float64)
    at = torch.tensor(a[1:] / a[0])[None]
    G = engine._responses(torch.ones(1, 1, dtype=torch.float64), at, engine.block_size(1 << 20, at.shape[1]))[2]
    return G.abs().sum(-1).max().item()


def run(T: int) -> list[dict]:
    torch.set_num_threads(1)
    x = np.random.default_rng(0).standard_normal(T)
    x32 = x.astype(np.float32)
    rows = []
    for name, design in DESIGNS.items():
        b, a = (np.asarray(c, np.float64) for c in design())
        exact = lfilter_extended(b, a, x)
        b32, a32 = b.astype(np.float32), a.astype(np.float32)
        exact32 = lfilter_extended(b32.astype(np.float64), a32.astype(np.float64), x32.astype(np.float64))
        stable32 = np.abs(np.roots(a32.astype(np.float64))).max() < 1 if len(a32) > 1 else True
        with np.errstate(all="ignore"):
            rows.append({
                "design": name, "peak": _peak(a),
                "ours64": _ours(b, a, x, exact),
                "scipy64": _rel(ss.lfilter(b, a, x), exact),
                "sos64": _rel(ss.sosfilt(ss.tf2sos(b, a), x), exact) if len(a) > 1 else float("nan"),
                # nan where the float32-rounded filter is unstable (a pole on or outside the circle)
                "ours32": _ours(b32, a32, x32, exact32) if stable32 else float("nan"),
                "scipy32": _rel(ss.lfilter(b32, a32, x32), exact32) if stable32 else float("nan"),
            })
    return rows


def markdown(rows: list[dict], T: int) -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=os.path.dirname(sl.__file__)).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True,
                               cwd=os.path.dirname(sl.__file__)).stdout.strip()
    except OSError:
        commit, dirty = "?", ""
    head = (f"# Clustered poles: accuracy against extended precision\n\n{platform.machine()}, "
            f"{time.strftime('%Y-%m-%d')}, `ssm_lfilter` from `{os.path.dirname(sl.__file__)}` at "
            f"{commit}{' + changes' if dirty else ''}; one signal of {T} samples of white noise. Errors: "
            "max |y - exact| / max |exact|, exact = the TDF-II loop in `np.longdouble` on the same "
            "(float64, or float32-rounded) coefficients. `|G|`: the peak homogeneous response over a "
            "block, the engine's conditioning test. nan: the float32-rounded filter is unstable.\n\n")
    lines = ["| design | \\|G\\| | ssm_lfilter f64 | scipy lfilter f64 | scipy tf2sos+sosfilt f64 | "
             "ssm_lfilter f32 | scipy lfilter f32 |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['design']} | {r['peak']:.2g} | {_fmt(r['ours64'])} | {_fmt(r['scipy64'])} | "
                     f"{_fmt(r['sos64'])} | {_fmt(r['ours32'])} | {_fmt(r['scipy32'])} |")
    return head + "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--T", type=int, default=5000)
    ap.add_argument("--out", help="write clustered_poles.md here")
    args = ap.parse_args(argv)
    print_and_write(markdown(run(args.T), args.T), args.out, "clustered_poles.md")


if __name__ == "__main__":
    main()
