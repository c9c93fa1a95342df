"""How the error of float32 lanes grows with the lane's length: a numpy model of the scheme.

``lane_float32`` (``docs/kernels-single-pass.md``, "Float32 lanes") runs each lane of ``C`` samples
in float32 from a float64 start state, while the lanes' zero-state end states are carried in float64.
This model does the same for a biquad in numpy (the lanes side by side, one float32 step a column;
the carry ``S_j = P S_{j-1} + e_j`` in float64), so the lane length can be swept in seconds on a CPU,
against float64 scipy on the same float32-rounded data and against scipy's sequential float32
``lfilter``. A model, not the kernel: ``tests/test_lane_float32.py`` checks the kernels themselves.

    python benchmarks/lane_precision.py            # the table in docs/kernels-single-pass.md
"""
from __future__ import annotations

import argparse

import numpy as np
import scipy.signal as ss


def biquad(r: float, theta: float) -> np.ndarray:
    return np.array([1.0, -2 * r * np.cos(theta), r * r])


def float32_lanes(b: np.ndarray, a: np.ndarray, x: np.ndarray, C: int) -> np.ndarray:
    """``lfilter(b, a, x)`` (order 2, ``a[0] = 1``) with lanes of ``C`` samples in float32 and their
    carries in float64; the first ``len(x) // C * C`` samples."""
    L = len(x) // C
    X = x[: L * C].reshape(L, C)
    hist = np.zeros((L, 2))  # each lane's input halo x[t0-1], x[t0-2]
    hist[1:, 0], hist[1:, 1] = X[:-1, -1], X[:-1, -2]
    bb, aa = b.astype(np.float32), a.astype(np.float32)

    def run(start):  # every lane from its start state (y[t0-1], y[t0-2]), in float32
        y1, y2 = start[:, 0].astype(np.float32), start[:, 1].astype(np.float32)
        x1, x2 = hist[:, 0].astype(np.float32), hist[:, 1].astype(np.float32)
        Y = np.empty((L, C), np.float32)
        for c in range(C):
            x0 = X[:, c].astype(np.float32)
            y0 = bb[0] * x0 + bb[1] * x1 + bb[2] * x2 - aa[1] * y1 - aa[2] * y2
            Y[:, c], y2, y1, x2, x1 = y0, y1, y0, x1, x0
        return Y, np.stack([y1, y2], 1).astype(np.float64)

    _, ends = run(np.zeros((L, 2)))  # zero-state end states e_j
    P = np.linalg.matrix_power(np.array([[-a[1], -a[2]], [1.0, 0.0]]), C)
    starts, s = np.zeros((L, 2)), np.zeros(2)
    for j in range(L):  # the carries, float64
        starts[j], s = s, P @ s + ends[j]
    return run(starts)[0].reshape(-1)


def table(n: int = 1 << 17, lanes=(16, 32, 64), seed: int = 1) -> str:
    """Markdown: relative errors (max |y - y64| / max |y64|) of the sequential float32 recurrence and
    of float32 lanes of each length, for hard biquads."""
    x = np.random.default_rng(seed).standard_normal(n).astype(np.float32)
    head = "| poles | sequential float32 | " + " | ".join(f"C = {C}" for C in lanes) + " |"
    rows = [head, "|" + "---|" * (len(lanes) + 2)]
    for r, th in ((0.999, 0.01), (0.999, 0.05), (0.999, 0.5), (0.99, 2.5)):
        b = np.array([1.0, 0.5, 0.2], np.float32).astype(np.float64)
        a = biquad(r, th).astype(np.float32).astype(np.float64)
        y64 = ss.lfilter(b, a, x.astype(np.float64))
        scale = np.abs(y64).max()
        seq = np.abs(ss.lfilter(b.astype(np.float32), a.astype(np.float32), x) - y64).max() / scale
        errs = []
        for C in lanes:
            y = float32_lanes(b, a, x.astype(np.float64), C)
            errs.append(np.abs(y - y64[: len(y)]).max() / scale)
        rows.append(f"| radius {r}, angle {th} | {seq:.1e} | " + " | ".join(f"{e:.1e}" for e in errs) + " |")
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=1 << 17)
    ap.add_argument("--lanes", type=int, nargs="+", default=[16, 32, 64])
    args = ap.parse_args(argv)
    print(table(args.samples, tuple(args.lanes)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
