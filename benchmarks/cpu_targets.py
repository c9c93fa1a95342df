"""The issue-2 CPU targets, measured side by side in one run.

    python -m benchmarks --cpu-targets          # or: python benchmarks/cpu_targets.py [--quick]

1. **Forward**: float32 ``ssm_lfilter.lfilter`` on ``x (8, 2**20)`` against ``scipy.signal.lfilter`` in
   float64, for ``butter(2, 0.2)`` and ``cheby1(8, 1, 0.2)``. Target: throughput ratio
   (scipy time / ssm time) >= 0.5, aim >= 1.
2. **Train step**: forward + backward w.r.t. ``x`` and per-batch coefficients, B=8, T=2**14, 3rd order,
   against the TorchScript transposed-direct-form-II loop (:class:`benchmarks.loop_rnn.TDF2Loop`).
   Target: loop time / ssm time >= 300, aim 1000.
3. **Accuracy** against float64 scipy on the same float32-rounded coefficients: orders <= 2 and SOS
   cascades with poles up to radius 0.99 within 1e-4 relative; every order no worse than a sequential
   float32 recurrence (scipy with float32 inputs).

Both sides of every ratio are timed interleaved (A, B, A, B, ...) in the same process, so that load from
other processes hits both alike; the ratio of the medians is reported.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "benchmarks"

import numpy as np
import torch


def _print(*a, **kw):
    print(*a, **kw, flush=True)


def _interleaved(fns: dict, runs: dict, warmup: int = 2):
    """Median ms of each fn, timed in rounds: each round runs every fn ``runs[name] // rounds`` times."""
    for f in fns.values():
        for _ in range(warmup):
            f()
    samples = {k: [] for k in fns}
    rounds = min(runs.values())
    per = {k: max(1, runs[k] // rounds) for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            for _ in range(per[k]):
                t0 = time.perf_counter()
                f()
                samples[k].append((time.perf_counter() - t0) * 1e3)
    return {k: statistics.median(v) for k, v in samples.items()}, samples


def _rel(out, ref) -> float:
    out = np.asarray(out, dtype=np.float64)
    if not np.isfinite(out).all():
        return float("inf")
    return float(np.max(np.abs(out - ref)) / np.max(np.abs(ref)))


def _ssm():
    try:
        import ssm_lfilter as sl
    except Exception as e:  # noqa: BLE001
        return None, f"ssm_lfilter import failed: {e}"
    missing = [n for n in ("lfilter", "sosfilt") if not hasattr(sl, n)]
    if missing:
        return None, f"ssm_lfilter has no {', '.join(missing)} in this checkout"
    return sl, ""


def _biquad(r, theta):
    a = np.array([1.0, -2 * r * np.cos(theta), r * r])
    return np.array([a.sum(), 0.0, 0.0]), a  # unit DC gain


def forward_target(sl, T, log, runs=7, warmup=2):
    import scipy.signal as ss

    out = []
    rng = np.random.default_rng(0)
    x32 = torch.from_numpy(rng.standard_normal((8, T)).astype(np.float32))
    x64 = x32.double().numpy()
    for name, (b, a) in [("butter(2, 0.2)", ss.butter(2, 0.2)), ("cheby1(8, 1, 0.2)", ss.cheby1(8, 1, 0.2))]:
        b32, a32 = torch.tensor(b, dtype=torch.float32), torch.tensor(a, dtype=torch.float32)
        b64, a64 = b32.double().numpy(), a32.double().numpy()
        ref = ss.lfilter(b64, a64, x64, axis=-1)
        rec = {"filter": name, "x": [8, T], "ours": "float32 ssm_lfilter.lfilter", "scipy": "float64 scipy.signal.lfilter"}
        if sl is None:
            rec["status"] = "ssm_lfilter unavailable"
            out.append(rec)
            continue
        with torch.no_grad():
            y = sl.lfilter(b32, a32, x32)
            rec["rel_err_ours"] = _rel(y.numpy(), ref)
            med, _ = _interleaved({"ssm": lambda: sl.lfilter(b32, a32, x32),
                                   "scipy": lambda: ss.lfilter(b64, a64, x64, axis=-1)}, {"ssm": runs, "scipy": runs}, warmup)
        rec.update(ssm_ms=med["ssm"], scipy_ms=med["scipy"], ratio=med["scipy"] / med["ssm"],
                   status="PASS" if med["scipy"] / med["ssm"] >= 0.5 else "FAIL",
                   aim_met=med["scipy"] / med["ssm"] >= 1.0)
        log(f"  forward {name:<18} ssm {med['ssm']:8.1f} ms  scipy(f64) {med['scipy']:8.1f} ms  "
            f"ratio {rec['ratio']:.2f}x  (target >= 0.5, aim >= 1)  err {rec['rel_err_ours']:.1e}  {rec['status']}")
        out.append(rec)
    return out


def train_target(sl, T, log, runs=3, warmup=2):
    import scipy.signal as ss

    from benchmarks.loop_rnn import TDF2Loop, pack_tdf2_coeffs

    B = 8
    rng = np.random.default_rng(1)
    ba = [ss.butter(3, w) for w in np.linspace(0.1, 0.4, B)]
    b0 = torch.tensor(np.stack([b for b, _ in ba]), dtype=torch.float32)
    a0 = torch.tensor(np.stack([a for _, a in ba]), dtype=torch.float32)
    x0 = torch.from_numpy(rng.standard_normal((B, T)).astype(np.float32))
    g = torch.from_numpy(rng.standard_normal((B, T)).astype(np.float32))
    rec = {"case": f"B={B}, T={T}, 3rd order, per-batch coefficients, float32, forward + backward w.r.t. x, b, a"}
    loop = TDF2Loop()
    xl = x0.clone().requires_grad_()
    cl = pack_tdf2_coeffs(b0, a0).clone().requires_grad_()

    def loop_step():
        return torch.autograd.grad(loop(xl, cl), [xl, cl], g)

    if sl is None:
        rec["status"] = "ssm_lfilter unavailable"
        return rec
    xs, bs, as_ = (t.clone().requires_grad_() for t in (x0, b0, a0))

    def ssm_step():
        return torch.autograd.grad(sl.lfilter(bs, as_, xs), [xs, bs, as_], g)

    gl, gs = loop_step(), ssm_step()
    rec["grad_diff_x"] = _rel(gs[0].numpy(), gl[0].double().numpy())
    rec["grad_diff_b"] = _rel(gs[1].numpy(), gl[1][:, :4].double().numpy())
    rec["grad_diff_a"] = _rel(gs[2][:, 1:].numpy(), gl[1][:, 4:].double().numpy())
    med, _ = _interleaved({"loop": loop_step, "ssm": ssm_step}, {"loop": runs, "ssm": 5 * runs}, warmup)
    ratio = med["loop"] / med["ssm"]
    rec.update(loop_ms=med["loop"], ssm_ms=med["ssm"], ratio=ratio, status="PASS" if ratio >= 300 else "FAIL",
               aim_met=ratio >= 1000)
    log(f"  train   loop(TorchScript TDF-II) {med['loop']:9.1f} ms  ssm {med['ssm']:8.2f} ms  ratio {ratio:.0f}x "
        f"(target >= 300, aim 1000)  grad diff vs loop x {rec['grad_diff_x']:.1e} b {rec['grad_diff_b']:.1e} "
        f"a {rec['grad_diff_a']:.1e}  {rec['status']}")
    return rec


def accuracy_target(sl, T, log):
    import scipy.signal as ss

    rng = np.random.default_rng(2)
    x32 = rng.standard_normal((4, T)).astype(np.float32)
    x64 = x32.astype(np.float64)
    cases = [("order 1, pole 0.99", "lti", (np.array([0.01]), np.array([1.0, -0.99])), "le2"),
             ("biquad r=0.9, theta=0.1pi", "lti", _biquad(0.9, 0.1 * np.pi), "le2"),
             ("biquad r=0.99, theta=0.02pi", "lti", _biquad(0.99, 0.02 * np.pi), "le2"),
             ("biquad r=0.99, theta=0.5pi", "lti", _biquad(0.99, 0.5 * np.pi), "le2"),
             ("butter(2, 0.01)", "lti", ss.butter(2, 0.01), "le2"),
             ("sos 4 sections r=0.9..0.99", "sos",
              np.stack([np.concatenate(_biquad(r, th)) for r, th in
                        [(0.9, 0.3), (0.95, 0.2), (0.98, 0.1), (0.99, 0.05)]]), "le2"),
             ("sos butter(8, 0.05)", "sos", ss.butter(8, 0.05, output="sos"), "le2")]
    cases += [(f"{d}({n}{', 1' if d == 'cheby1' else ''}, 0.2) direct form", "lti",
               getattr(ss, d)(n, 1, 0.2) if d == "cheby1" else ss.butter(n, 0.2), "seq")
              for d, n in [("butter", 3), ("butter", 4), ("cheby1", 4), ("butter", 6), ("cheby1", 6),
                           ("butter", 8), ("cheby1", 8)]]
    out = []
    for name, kind, coef, crit in cases:
        if kind == "lti":
            b32, a32 = (np.asarray(c, dtype=np.float32) for c in coef)
            ref = ss.lfilter(b32.astype(np.float64), a32.astype(np.float64), x64, axis=-1)
            seq = ss.lfilter(b32, a32, x32, axis=-1)
        else:
            sos32 = np.asarray(coef, dtype=np.float32)
            ref = ss.sosfilt(sos32.astype(np.float64), x64, axis=-1)
            seq = ss.sosfilt(sos32, x32, axis=-1)
        assert seq.dtype == np.float32
        rec = {"case": name, "kind": kind, "T": T, "seq_f32_err": _rel(seq, ref),
               "criterion": "<= 1e-4" if crit == "le2" else "<= sequential float32"}
        if sl is None:
            rec["status"] = "ssm_lfilter unavailable"
        else:
            with torch.no_grad():
                if kind == "lti":
                    y = sl.lfilter(torch.from_numpy(b32), torch.from_numpy(a32), torch.from_numpy(x32))
                else:
                    y = sl.sosfilt(torch.from_numpy(sos32), torch.from_numpy(x32))
            rec["ssm_err"] = e = _rel(y.numpy(), ref)
            rec["ratio_to_seq"] = e / rec["seq_f32_err"] if rec["seq_f32_err"] > 0 else float("inf")
            ok = e <= 1e-4 if crit == "le2" else e <= rec["seq_f32_err"]
            rec["status"] = "PASS" if ok else "FAIL"
        out.append(rec)
        log(f"  accuracy {name:<32} ssm {rec.get('ssm_err', float('nan')):.1e}  seq f32 {rec['seq_f32_err']:.1e}  "
            f"({rec['criterion']})  {rec['status']}")
    return out


def to_markdown(res: dict) -> str:
    L = [f"Measured in one run on {res['machine']}, {res['date']}; every ratio compares two timings taken "
         f"interleaved in the same process. torch threads: {res['threads']}."
         + (" **QUICK MODE: reduced sizes, not the target sizes.**" if res["quick"] else ""), "",
         "| forward target | x | ssm_lfilter f32 ms | scipy f64 ms | throughput ratio | target | max rel err | status |",
         "|---|---|---|---|---|---|---|---|"]
    for r in res["forward"]:
        if "ratio" in r:
            L.append(f"| {r['filter']} | ({r['x'][0]}, {r['x'][1]}) | {r['ssm_ms']:.1f} | {r['scipy_ms']:.1f} | "
                     f"{r['ratio']:.2f}x | >= 0.5x (aim 1x) | {r['rel_err_ours']:.1e} | {r['status']} |")
        else:
            L.append(f"| {r['filter']} | ({r['x'][0]}, {r['x'][1]}) | | | | >= 0.5x | | {r['status']} |")
    t = res["train"]
    L += ["", "| train-step target | loop (TorchScript TDF-II) ms | ssm_lfilter ms | speedup | target | status |",
          "|---|---|---|---|---|---|"]
    if "ratio" in t:
        L.append(f"| {t['case']} | {t['loop_ms']:.0f} | {t['ssm_ms']:.2f} | {t['ratio']:.0f}x | >= 300x (aim 1000x) | "
                 f"{t['status']} |")
        L.append("")
        L.append(f"Gradient agreement with the loop (max rel diff): dx {t['grad_diff_x']:.1e}, db {t['grad_diff_b']:.1e}, "
                 f"da {t['grad_diff_a']:.1e}.")
    else:
        L.append(f"| {t['case']} | | | | >= 300x | {t['status']} |")
    L += ["", f"| accuracy target (float32, T={res['accuracy'][0]['T']}) | ssm_lfilter err | sequential f32 err (scipy f32) "
          "| criterion | status |", "|---|---|---|---|---|"]
    for r in res["accuracy"]:
        e = f"{r['ssm_err']:.1e}" if "ssm_err" in r else ""
        L.append(f"| {r['case']} | {e} | {r['seq_f32_err']:.1e} | {r['criterion']} | {r['status']} |")
    L += ["", "Errors: max |y - ref| / max |ref| against float64 scipy on the same float32-rounded coefficients."]
    return "\n".join(L)


def run_cpu_targets(out_dir=None, quick=False, write=True, log=_print, env=None) -> dict:
    """Run the three targets; write cpu_targets.md/.json into ``out_dir``. ``quick``: False (target sizes),
    True (reduced sizes, labelled as such) or "tiny" (smoke tests)."""
    import platform

    from benchmarks.run import DEFAULT_DATE, _cpu_model

    sl, why = _ssm()
    if sl is None:
        log(f"# CPU targets: {why}")
    if quick == "tiny":  # smoke tests
        T_fwd, T_train, T_acc = 2**10, 2**8, 2**10
    elif quick:
        T_fwd, T_train, T_acc = 2**16, 2**12, 2**14
    else:
        T_fwd, T_train, T_acc = 2**20, 2**14, 2**18
    log(f"# CPU targets ({'quick, reduced sizes' if quick else 'full sizes'})")
    res = {"machine": f"{_cpu_model()}, {os.cpu_count()} cores ({platform.machine()})",
           "date": (env or {}).get("date", DEFAULT_DATE), "threads": torch.get_num_threads(), "quick": bool(quick),
           "ssm_lfilter": why or "ok"}
    runs = 1 if quick == "tiny" else (3 if quick else None)
    warmup = 1 if quick == "tiny" else 2
    res["forward"] = forward_target(sl, T_fwd, log, runs=runs or 7, warmup=warmup)
    res["train"] = train_target(sl, T_train, log, runs=runs or 3, warmup=warmup)
    res["accuracy"] = accuracy_target(sl, T_acc, log)
    res["markdown"] = to_markdown(res)
    res["paths"] = []
    if write and out_dir:
        os.makedirs(out_dir, exist_ok=True)
        p_md, p_js = os.path.join(out_dir, "cpu_targets.md"), os.path.join(out_dir, "cpu_targets.json")
        with open(p_md, "w") as f:
            f.write("# CPU targets (issue 2)\n\n" + res["markdown"] + "\n")
        with open(p_js, "w") as f:
            json.dump({k: v for k, v in res.items() if k not in ("markdown", "paths")}, f, indent=2, default=str)
        res["paths"] = [p_md, p_js]
        log(f"# wrote {p_md}")
    return res


if __name__ == "__main__":
    import argparse

    from benchmarks.run import DEFAULT_DATE, default_out_dir

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    run_cpu_targets(a.out or default_out_dir("cpu", DEFAULT_DATE, "quick" if a.quick else "full"), quick=a.quick)
