"""Benchmark runner: presets of sweeps, the measurement loop, the CLI, and ``run_gpu_suite``.

    python -m benchmarks                 # full CPU preset (+ the issue-2 CPU targets) -> benchmarks/results/
    python -m benchmarks --quick         # < 2 minutes on 2 cores
    python benchmarks/run.py --preset cuda --device cuda
    python -c "from benchmarks.run import run_gpu_suite; run_gpu_suite('out/')"   # on an H100/H200

Every row is one (case, provider): the median time, throughput, bandwidth against a device copy of the
same tensor, the speed-up of ssm_lfilter over that provider (``provider time / ssm_lfilter time``,
measured in the same run) and the max relative error against float64 scipy (or a float64 sequential
loop for time-varying kinds). Providers that cannot run report ``skipped`` with the reason.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
import traceback

if __package__ in (None, ""):  # `python benchmarks/run.py`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "benchmarks"

import torch

from benchmarks import providers as P
from benchmarks.timing import measure, time_cpu

def _print(*a, **kw):
    print(*a, **kw, flush=True)


RESULTS_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
# The day the run happens (a fixed default once stamped a later run with an earlier date).
DEFAULT_DATE = datetime.date.today().isoformat()


# ----------------------------------------------------------------------------------------------
# Presets
# ----------------------------------------------------------------------------------------------
def _pow2(lo, hi, step=1):
    return [2**e for e in range(lo, hi + 1, step)]


def preset_cases(preset: str, device: str = "cpu", shrink: int = 1) -> tuple[list[P.Case], dict]:
    """(cases, runner settings). Presets: tiny (tests), quick, full (CPU default), cuda."""
    C = P.Case
    cases: list[P.Case] = []
    modes3 = ("forward", "backward", "train")
    modes2 = ("forward", "train")
    if preset == "tiny":
        Ts, base, small, settings = [2**8, 2**9], 2**9, 2**8, dict(budget_s=0.02, max_call_s=1.0, min_runs=1, max_runs=3)
    elif preset == "quick":
        Ts, base, small, settings = _pow2(8, 14, 2), 2**14, 2**12, dict(budget_s=0.15, max_call_s=1.0, min_runs=2, max_runs=7)
    elif preset == "full":
        Ts, base, small, settings = _pow2(8, 20, 2), 2**16, 2**16, dict(budget_s=0.6, max_call_s=4.0, min_runs=3, max_runs=11)
    elif preset == "cuda":
        return _cuda_cases(device, shrink), dict(budget_s=0.02, max_call_s=1.5, min_runs=3, max_runs=3)
    else:
        raise ValueError(f"unknown preset {preset!r}")
    d = device
    if preset == "tiny":  # smoke test: every provider and kind once, two T points for the plots
        cases = [C("T", "lti", m, 4, T, 3, device=d) for m in ("forward", "train") for T in Ts]
        cases += [C("T", "lti", "backward", 4, Ts[0], 3, device=d),
                  C("sos", "sos", "train", 4, small, 2, device=d),
                  C("tv", "tv", "train", 4, small, 2, device=d),
                  C("first_order", "first_order", "train", 4, small, 1, device=d),
                  C("coeffs", "lti", "train", 4, small, 3, coeffs="per_batch", device=d)]
        return cases, settings
    if preset == "quick":  # the headline sweep plus one or two points of every other sweep
        cases = [C("T", "lti", m, 8, T, 3, device=d) for T in Ts for m in modes3]
        cases += [C("order", "lti", "forward", 8, small, n, device=d) for n in (1, 2, 4, 8)]
        for m in modes2:
            cases += [C("sos", "sos", m, 8, small, n, device=d) for n in (2, 8)]
            cases += [C("tv", "tv", m, 8, small, 2, device=d), C("first_order", "first_order", m, 8, small, 1, device=d)]
        cases += [C("dtype", "lti", "forward", 8, small, 2, dtype=dt, device=d) for dt in ("float32", "float64", "bfloat16")]
        cases += [C("coeffs", "lti", "train", 8, small, 3, coeffs="per_batch", device=d)]
        return _group_modes(cases), settings
    for m in modes3:  # headline sweep: 3rd-order LTI, every provider
        cases += [C("T", "lti", m, 8, T, 3, device=d) for T in Ts]
    for m in modes2:
        cases += [C("batch", "lti", m, B, small, 3, device=d) for B in (1, 4, 16, 64)]
        cases += [C("order", "lti", m, 8, base, n, device=d) for n in (1, 2, 4, 8)]
        cases += [C("sos", "sos", m, 8, base, n, device=d) for n in (1, 2, 4, 8)]
        cases += [C("tv", "tv", m, 8, T, 2, device=d) for T in Ts[: max(1, len(Ts) - 1)]]
        cases += [C("first_order", "first_order", m, 8, T, 1, device=d) for T in Ts]
        cases += [C("dtype", "lti", m, 8, small, 2, dtype=dt, device=d) for dt in ("float32", "float64", "bfloat16")]
        cases += [C("coeffs", "lti", m, 8, small, 3, coeffs="per_batch", device=d)]
    return _group_modes(cases), settings


def _group_modes(cases):
    """Stable reorder so that the modes of one shape run back to back (they share data and references)."""
    first: dict = {}
    for i, c in enumerate(cases):
        first.setdefault((c.sweep,) + _data_key(c), i)
    return sorted(cases, key=lambda c: first[(c.sweep,) + _data_key(c)])


def _cuda_cases(device: str, shrink: int = 1) -> list[P.Case]:
    """The GPU preset: bandwidth-target cases of issue 3 plus the torchaudio and loop comparisons.

    Sized to finish in about 3 minutes on one H100/H200 (most time goes to the sequential baselines
    and to Triton compilation). ``shrink`` divides every length (min 256): a plumbing test on CPU."""

    def C(*a, **kw):
        c = P.Case(*a, **kw)
        return c.with_(T=max(256, c.T // shrink)) if shrink > 1 else c

    d = device
    big = 32  # rows of the bandwidth cases: (32, 2**20) float32 = 128 MiB per array
    ours = ("ssm_lfilter", "copy")
    cases = []
    # the sequential baselines at short T first: their times predict (and skip) hopeless calls later
    cases.append(C("gpu_loop", "lti", "forward", 8, 2**12, 3, device=d,
                   providers=("ssm_lfilter", "loop_tdf2_jit", "loop_nn_rnn", "torchaudio")))
    cases.append(C("gpu_loop", "lti", "train", 8, 2**12, 3, coeffs="per_batch", device=d,
                   providers=("ssm_lfilter", "loop_tdf2_jit", "torchaudio")))
    # time against T over the full range
    for T in _pow2(8, 24, 4):
        cases.append(C("gpu_T", "lti", "forward", 8, T, 2, device=d, providers=("ssm_lfilter", "torchaudio", "copy")))
    # vs torchaudio at (8, 2**20), same device (up to 8 s per torchaudio call is allowed here)
    for m in ("forward", "train"):
        cases.append(C("gpu_torchaudio", "lti", m, 8, 2**20, 2, device=d, max_call_s=8.0,
                       providers=("ssm_lfilter", "torchaudio", "copy")))
    fb = ("forward", "backward")  # inner loop: both modes of a shape share its data and references
    cases += [C("gpu_first_order", "first_order", m, big, 2**20, 1, device=d,
                providers=ours + ("accelerated_scan", "torchlpc", "philtorch")) for m in fb]
    cases += [C("gpu_lti", "lti", m, big, 2**20, n, device=d, providers=ours) for n in (1, 2, 3, 4) for m in fb]
    cases += [C("gpu_sos8", "sos", m, big, 2**20, 8, device=d, providers=ours) for m in fb]
    cases += [C("gpu_tv2", "tv", m, 8, 2**20, 2, device=d, providers=ours + ("torchlpc", "philtorch")) for m in fb]
    cases += [C("gpu_long", "lti", m, 1, 2**24, 2, device=d, providers=ours) for m in fb]
    cases += [C("gpu_long", "first_order", m, 1, 2**24, 1, device=d, providers=ours) for m in fb]
    return cases


# ----------------------------------------------------------------------------------------------
# Measurement
# ----------------------------------------------------------------------------------------------
def _np(t) -> "object":
    import numpy as np

    if isinstance(t, torch.Tensor):
        return t.detach().to(device="cpu", dtype=torch.float64).numpy()
    return np.asarray(t, dtype=np.float64)


class _CopyRef:
    """Copy time per (shape, dtype, device): the bandwidth denominator of every row."""

    def __init__(self):
        self.cache = {}

    def ms(self, case: P.Case, data: P.Data, settings) -> float:
        key = (case.B, case.T, case.dtype, case.device)
        if key not in self.cache:
            x = data.tensor(data.x64)
            out = torch.empty_like(x)
            if case.device == "cpu":  # the best of many runs: a reference, robust to other processes' load
                tm = time_cpu(lambda: out.copy_(x), warmup=2, min_runs=20, max_runs=200, budget_s=0.1)
                self.cache[key] = min(tm.samples_ms)
            else:
                self.cache[key] = measure(lambda: out.copy_(x), case.device).median_ms
        return self.cache[key]


def run_cases(cases, providers=None, *, budget_s=0.5, max_call_s=4.0, min_runs=3, max_runs=11,
              log=_print) -> list[dict]:
    """Measure every (case, provider). Returns one dict per row (see :data:`report.COLUMNS`)."""
    settings = dict(budget_s=budget_s, max_call_s=max_call_s, min_runs=min_runs, max_runs=max_runs)
    names = list(providers or P.PROVIDERS)
    copyref = _CopyRef()
    last: dict = {}  # (provider, kind, mode, device) -> (cost, ms): predicts slow calls (any dtype)
    rows: list[dict] = []
    t_start = time.perf_counter()
    data = None
    for ci, case in enumerate(cases):
        if data is None or _data_key(data.case) != _data_key(case):  # modes of one shape share data
            data = None
            data = P.make_data(case)
        case_rows = []
        for name in (n for n in names if case.providers is None or n in case.providers):
            row = _base_row(case, name)
            key = (name, case.kind, case.mode, case.device)
            cost = _cost(name, case)
            try:
                impl = P.PROVIDERS[name](case, data)
                if case.mode != "forward" and not impl.grad:
                    raise P.Skip("forward only")
                limit = case.max_call_s or max_call_s
                if key in last and name not in ("ssm_lfilter", "copy"):  # never skip ours
                    c0, ms0 = last[key]
                    pred = ms0 * cost / c0 / 1e3
                    if pred > limit:
                        raise P.Skip(f"predicted {pred:.1f} s per call > limit {limit:g} s")
                fn, y, grads = _prepare(impl, case, data)
                _fill_accuracy(row, impl, case, data, y, grads)
                del y, grads
                # the accuracy call above was the first warm-up call
                tm = measure(fn, case.device, budget_s=budget_s, min_runs=min_runs, max_runs=max_runs, warmup=1)
                row.update(status="ok", time_ms=tm.median_ms, runs=tm.runs, spread=round(tm.spread, 3),
                           timing=tm.method, note=impl.note)
                if key not in last or last[key][0] <= cost:
                    last[key] = (cost, tm.median_ms)
                copy_ms = copyref.ms(case, data, settings)
                elem = torch.empty((), dtype=case.torch_dtype).element_size()
                row["msamples_per_s"] = case.numel / tm.median_ms / 1e3
                row["gb_per_s"] = P.bytes_moved(case) / tm.median_ms / 1e6
                row["copy_frac"] = row["gb_per_s"] / (2 * case.numel * elem / copy_ms / 1e6)
            except P.Skip as e:
                row.update(status="skipped", note=str(e))
            except Exception as e:  # noqa: BLE001 - a failing provider must not stop the suite
                msg = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200]
                row.update(status="error", note=msg)
                if os.environ.get("BENCH_TRACEBACK"):
                    traceback.print_exc()
            finally:
                fn = impl = None  # noqa: F841  (drop retained graphs before the next provider)
            case_rows.append(row)
        log(f"  [{ci + 1}/{len(cases)}] {case.describe()}  ({time.perf_counter() - t_start:.0f} s elapsed)")
        ssm = next((r for r in case_rows if r["provider"] == "ssm_lfilter" and r["status"] == "ok"), None)
        for r in case_rows:
            if ssm is not None and r["status"] == "ok" and r["provider"] != "copy":
                r["speedup"] = r["time_ms"] / ssm["time_ms"]
            log(_fmt_row(r))
        rows += case_rows
    return rows


def _cost(name: str, c: P.Case) -> float:
    """Work model used to predict a provider's time per call from its largest call so far."""
    if name in ("loop_tdf2_jit", "loop_nn_rnn") or (name == "torchaudio" and c.device != "cpu"):
        return float(c.T)  # sequential in time, vectorized over rows (and the loop is always 3rd order)
    return float(c.numel * (c.order + 1))


def _data_key(c: P.Case):
    return (c.kind, c.B, c.T, c.order, c.dtype, c.device, c.coeffs, c.design)


def _base_row(case: P.Case, name: str) -> dict:
    return dict(sweep=case.sweep, kind=case.kind, mode=case.mode, provider=name, device=case.device,
                dtype=case.dtype, B=case.B, T=case.T, order=case.order, coeffs=case.coeffs, design=case.design,
                time_ms=None, runs=None, spread=None, msamples_per_s=None, gb_per_s=None, copy_frac=None,
                speedup=None, rel_err=None, status="", timing="", note="")


def _prepare(impl: P.Impl, case: P.Case, data: P.Data):
    """The timed closure for the mode, plus one untimed output (y, grads) for the accuracy column."""
    if case.mode == "forward":
        def fn():
            with torch.no_grad():
                return impl.forward()

        return fn, fn(), None
    leaves = [t.requires_grad_(True) for t in impl.leaves]
    g = data.g
    y = impl.forward()
    grads = torch.autograd.grad(y, leaves, g, retain_graph=case.mode == "backward")
    if case.mode == "backward":
        y_keep = y

        def fn():
            return torch.autograd.grad(y_keep, leaves, g, retain_graph=True)
    else:
        def fn():
            return torch.autograd.grad(impl.forward(), leaves, g)
    return fn, y.detach(), grads


def _fill_accuracy(row, impl, case, data, y, grads):
    if impl.reference_only:
        return
    errs = []
    if case.mode in ("forward", "train"):
        errs.append(P.rel_err(_np(y), data.ref_y()))
    if grads is not None:
        errs.append(P.rel_err(_np(grads[0]), data.ref_dx()))
    row["rel_err"] = max(errs) if errs else None


def _fmt_row(r: dict) -> str:
    if r["status"] != "ok":
        return f"    {r['provider']:<17} {r['status']}: {r['note']}"
    sp = f"{r['speedup']:9.2f}x" if r.get("speedup") is not None else " " * 10
    err = f"{r['rel_err']:.1e}" if r.get("rel_err") is not None else "   -   "
    return (f"    {r['provider']:<17} {r['time_ms']:10.3f} ms  {r['msamples_per_s']:9.1f} MS/s  "
            f"{100 * r['copy_frac']:6.1f}% copy  ssm speedup {sp}  err {err}")


# ----------------------------------------------------------------------------------------------
# Environment, output
# ----------------------------------------------------------------------------------------------
def device_slug(device: str) -> str:
    if str(device).startswith("cuda"):
        name = torch.cuda.get_device_name(torch.device(device))
        return "cuda-" + "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    return f"cpu-{os.cpu_count()}core-{platform.machine()}"


def environment(device: str, preset: str, date: str) -> dict:
    env = {"date": date, "preset": preset, "device": device, "slug": device_slug(device),
           "platform": platform.platform(), "torch_threads": torch.get_num_threads(),
           "SSM_LFILTER_BACKEND": os.environ.get("SSM_LFILTER_BACKEND", "(unset: auto)"),
           "command": " ".join([os.path.basename(sys.executable)] + sys.argv)}
    if str(device).startswith("cuda"):
        p = torch.cuda.get_device_properties(torch.device(device))
        env["device_name"] = f"{p.name}, {p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs"
    else:
        env["device_name"] = f"{_cpu_model()}, {os.cpu_count()} cores ({platform.machine()})"
    try:
        import subprocess

        env["git"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                    cwd=os.path.dirname(os.path.abspath(__file__)), timeout=5).stdout.strip() or "(no commit)"
    except Exception:  # noqa: BLE001
        env["git"] = "(unknown)"
    env["versions"] = P.versions()
    return env


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def default_out_dir(device: str, date: str, preset: str) -> str:
    suffix = "" if preset in ("full", "cuda") else f"-{preset}"
    return os.path.join(RESULTS_ROOT, f"{device_slug(device)}-{date}{suffix}")


def run_suite(preset: str = "full", device: str = "cpu", out_dir: str | None = None, providers=None,
              sweeps=None, date: str | None = None, plots: bool = True, cpu_targets: bool | None = None,
              log=_print, shrink: int = 1) -> dict:
    """Run a preset, write results (CSV, markdown, PNGs, env.json) to ``out_dir``; return paths and rows."""
    from benchmarks import report

    date = date or DEFAULT_DATE
    cases, settings = preset_cases(preset, device, shrink)
    if sweeps:
        cases = [c for c in cases if c.sweep in sweeps]
    out_dir = out_dir or default_out_dir(device, date, preset)
    os.makedirs(out_dir, exist_ok=True)
    env = environment(device, preset, date)
    log(f"# ssm_lfilter benchmarks: preset {preset}, {env['device_name']}, {len(cases)} cases -> {out_dir}")
    log("# versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()))
    t0 = time.perf_counter()
    rows = run_cases(cases, providers, log=log, **settings)
    env["suite_seconds"] = round(time.perf_counter() - t0, 1)
    targets = None
    if cpu_targets is None:
        cpu_targets = device == "cpu" and preset in ("full", "quick")
    if cpu_targets:
        from benchmarks import cpu_targets as CT

        targets = CT.run_cpu_targets(out_dir, quick=preset != "full", log=log, env=env)
    paths = report.write_all(rows, env, out_dir, plots=plots, targets=targets)
    log(f"# done in {time.perf_counter() - t0:.0f} s; wrote " + ", ".join(sorted(os.path.basename(p) for p in paths)))
    return {"out_dir": out_dir, "rows": rows, "paths": paths, "env": env, "targets": targets}


def run_gpu_suite(out_dir: str, device: str = "cuda", date: str | None = None, plots: bool = True,
                  shrink: int = 1, sweeps=None, log=_print) -> dict:
    """The GPU preset (about 3 minutes on one H100/H200): copy bandwidth, ssm_lfilter forward/backward for
    first-order, LTI order 1-4, sosfilt 8 sections, time-varying order 2, one long sequence (T=2**24),
    torchaudio at (8, 2**20) and the loop baselines. Writes results.md/csv, env.json, plots and
    ``gpu_targets.md`` (the issue-3 target table) into ``out_dir``; returns them with the rows.
    ``device='cpu', shrink=4096`` runs the same plumbing on tiny sizes (tests)."""
    from benchmarks import report

    res = run_suite("cuda", device=device, out_dir=out_dir, date=date, plots=plots, cpu_targets=False,
                    shrink=shrink, sweeps=sweeps, log=log)
    res["gpu_targets"] = report.write_gpu_targets(res["rows"], res["env"], out_dir)
    res["paths"].append(os.path.join(out_dir, "gpu_targets.md"))
    log(res["gpu_targets"])
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sweeps, < 2 minutes on 2 cores")
    ap.add_argument("--preset", choices=["tiny", "quick", "full", "cuda"], help="default: full on CPU, cuda on CUDA")
    ap.add_argument("--device", default=None, help="cpu (default) or cuda")
    ap.add_argument("--providers", nargs="+", choices=list(P.PROVIDERS), help="subset of providers")
    ap.add_argument("--sweeps", nargs="+", help="subset of sweeps (T, batch, order, sos, tv, first_order, dtype, coeffs, gpu_*)")
    ap.add_argument("--out", default=None, help="output folder (default benchmarks/results/<device>-<date>[-preset])")
    ap.add_argument("--date", default=None, help=f"date stamp (default {DEFAULT_DATE})")
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument("--cpu-targets", action="store_true", help="only the issue-2 CPU targets")
    ap.add_argument("--no-cpu-targets", action="store_true", help="skip the CPU targets in full/quick runs")
    args = ap.parse_args(argv)
    device = args.device or "cpu"
    date = args.date or DEFAULT_DATE
    if args.cpu_targets:
        from benchmarks import cpu_targets as CT

        preset = "quick" if args.quick else "full"
        out = args.out or default_out_dir("cpu", date, preset)
        CT.run_cpu_targets(out, quick=args.quick, write=True, env=environment("cpu", preset, date))
        return 0
    preset = args.preset or ("quick" if args.quick else ("cuda" if device.startswith("cuda") else "full"))
    run_suite(preset, device=device, out_dir=args.out, providers=args.providers, sweeps=args.sweeps, date=date,
              plots=not args.no_plots, cpu_targets=False if args.no_cpu_targets else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
