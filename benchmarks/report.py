"""Write the results: CSV, markdown (with a header of device, versions and date), log-log PNG plots."""
from __future__ import annotations

import csv
import json
import math
import os
from collections import OrderedDict

COLUMNS = ["sweep", "kind", "mode", "provider", "device", "dtype", "B", "T", "order", "coeffs", "design",
           "time_ms", "runs", "spread", "msamples_per_s", "gb_per_s", "copy_frac", "speedup", "rel_err",
           "status", "timing", "note"]

AXES = ("T", "B", "order", "dtype")


def print_and_write(text: str, out_dir: str | None, name: str) -> None:
    """Print a table and, with ``out_dir``, write it there as ``name`` (the CPU scripts' ``--out``)."""
    print(text)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, name), "w") as f:
            f.write(text)

DEFINITIONS = """\
- **time**: median wall time of one call (CPU: after a warm-up, median of several runs;
  CUDA: `triton.testing.do_bench` median, or the median of 3 CUDA-event-timed runs for calls over 0.2 s).
- **mode**: `forward` (no autograd), `backward` (the backward pass alone, gradients w.r.t. the signal and
  the coefficients, from a retained graph), `train` (forward + that backward).
- **ssm speedup**: provider time / ssm_lfilter time for the same case, both measured in this run
  (> 1: ssm_lfilter is faster). A ratio measured in one run on the hardware named above.
- **% copy**: achieved bandwidth under the minimal-traffic model (see `benchmarks/providers.py:bytes_moved`)
  divided by the bandwidth of `y.copy_(x)` on a tensor of the same shape, measured in this run.
- **max rel err**: max |out - ref| / max |ref| against float64 scipy on the same dtype-rounded coefficients
  (the output y in forward, dL/dx in backward, the larger of the two in train). For `tv` and
  `first_order`, the reference is a float64 sequential loop on the first 8192 samples (y) or the
  last 8192 samples (dL/dx, the adjoint runs backwards in time). scipy itself runs in float64.
"""


def _fmt(v, kind="g"):
    if v is None or v == "":
        return ""
    if isinstance(v, float):
        if math.isinf(v) or math.isnan(v):
            return str(v)
        if kind == "ms":
            return f"{v:.3g}" if v < 100 else f"{v:.0f}"
        if kind == "x":
            return f"{v:.3g}x" if v < 1000 else f"{v:.0f}x"
        if kind == "%":
            return f"{100 * v:.2g}%"
        if kind == "e":
            return f"{v:.1e}"
        return f"{v:.3g}"
    return str(v)


def write_csv(rows, path):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in COLUMNS})
    return path


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _axis(rows):
    """The parameter that varies within a group of rows (T, B, order or dtype), or None."""
    for a in AXES:
        if len({r[a] for r in rows}) > 1:
            return a
    return None


def _groups(rows):
    g = OrderedDict()
    for r in rows:
        g.setdefault((r["sweep"], r["mode"]), []).append(r)
    return g


def header_md(env) -> str:
    v = env.get("versions", {})
    lines = [f"# ssm_lfilter benchmarks: {env['slug']}, {env['date']}", "",
             f"- **device**: {env['device_name']} (`{env['device']}`), torch threads: {env['torch_threads']}",
             f"- **date**: {env['date']}; preset `{env['preset']}`; git `{env.get('git', '')}`; "
             f"SSM_LFILTER_BACKEND={env.get('SSM_LFILTER_BACKEND')}",
             f"- **platform**: {env.get('platform', '')}",
             f"- **command**: `{env.get('command', '')}`"
             + (f"; suite took {env['suite_seconds']} s" if "suite_seconds" in env else ""),
             "- **versions**: " + ", ".join(f"{k} {val}" for k, val in v.items()), ""]
    return "\n".join(lines)


def headline_md(rows) -> str:
    """Per mode and provider of the headline sweep (`T`, or `gpu_T`): the largest T at which both the
    provider and ssm_lfilter ran, with both times and the speed-up (one run, same machine)."""
    sel = [r for r in rows if r["sweep"] in ("T", "gpu_T")]
    if not sel:
        return ""
    r0 = sel[0]
    out = [f"{r0['kind']} order {r0['order']}, B={r0['B']}, {r0['dtype']}, {r0['coeffs']} coefficients. "
           "Each line: the largest T at which both ran.", "",
           "| mode | provider | T | provider ms | ssm_lfilter ms | ssm speedup | provider max rel err | ssm max rel err |",
           "|---|---|---|---|---|---|---|---|"]
    for mode in ("forward", "backward", "train"):
        ssm = {r["T"]: r for r in sel if r["mode"] == mode and r["provider"] == "ssm_lfilter" and r["status"] == "ok"}
        provs = OrderedDict.fromkeys(r["provider"] for r in sel if r["mode"] == mode and r["provider"] != "ssm_lfilter")
        if not ssm:
            continue
        T = max(ssm)
        out.append(f"| {mode} | `ssm_lfilter` | {T} | | {_fmt(ssm[T]['time_ms'], 'ms')} | 1x | | {_fmt(ssm[T]['rel_err'], 'e')} |")
        for p in provs:
            ok = [r for r in sel if r["mode"] == mode and r["provider"] == p and r["status"] == "ok" and r["T"] in ssm]
            if not ok or p == "copy":
                continue
            r = max(ok, key=lambda r: r["T"])
            s = ssm[r["T"]]
            out.append(f"| {mode} | `{p}` | {r['T']} | {_fmt(r['time_ms'], 'ms')} | {_fmt(s['time_ms'], 'ms')} | "
                       f"{_fmt(r['speedup'], 'x')} | {_fmt(r['rel_err'], 'e')} | {_fmt(s['rel_err'], 'e')} |")
    return "\n".join(out)


def table_md(rows, axis=None, show_case=False) -> str:
    """Rows that ran (or failed) as a table; providers skipped for the whole group summarized below it."""
    skipped = OrderedDict()
    ran = {r["provider"] for r in rows if r["status"] != "skipped"}
    for r in rows:
        if r["status"] == "skipped" and r["provider"] not in ran:
            skipped.setdefault(r["provider"], r["note"])
    rows = [r for r in rows if r["provider"] in ran]
    cols = ([axis] if axis else []) + (["case"] if show_case else []) + [
        "provider", "time ms", "MS/s", "% copy", "ssm speedup", "max rel err", "note"]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        if axis:
            cells.append(str(r[axis]))
        if show_case:
            cells.append(f"{r['kind']} o{r['order']} {r['mode']} ({r['B']}, {r['T']}) {r['dtype']}")
        if r["status"] == "ok":
            cells += [f"`{r['provider']}`", _fmt(r["time_ms"], "ms"), _fmt(r["msamples_per_s"]),
                      _fmt(r["copy_frac"], "%"), _fmt(r["speedup"], "x"), _fmt(r["rel_err"], "e"), r["note"]]
        else:
            cells += [f"`{r['provider']}`", "", "", "", "", "", f"{r['status']}: {r['note']}"]
        out.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    if skipped:
        out += ["", "Skipped: " + "; ".join(f"`{p}` ({why})" for p, why in skipped.items()) + "."]
    return "\n".join(out)


def write_markdown(rows, env, path, targets=None, plot_files=()):
    parts = [header_md(env), "## Definitions", "", DEFINITIONS]
    head = headline_md(rows)
    if head:
        parts += ["## Headline", "", head, ""]
    if targets:
        parts += ["## CPU targets (issue 2)", "", targets.get("markdown", ""), ""]
    for (sweep, mode), grp in _groups(rows).items():
        axis = _axis(grp)
        r0 = grp[0]
        fixed = ", ".join(f"{a}={r0[a]}" for a in ("kind", "order", "B", "T", "dtype", "coeffs", "design") if a != axis)
        parts += [f"## Sweep `{sweep}`, {mode} ({fixed})", ""]
        show_case = axis is None and len({(r["kind"], r["order"], r["B"], r["T"]) for r in grp}) > 1
        parts += [table_md(grp, axis=axis, show_case=show_case), ""]
    if plot_files:
        parts += ["## Plots", ""] + [f"![{os.path.basename(p)}](plots/{os.path.basename(p)})" for p in plot_files] + [""]
    with open(path, "w") as f:
        f.write("\n".join(parts))
    return path


_COLORS = {"ssm_lfilter": "C0", "loop_tdf2_jit": "C1", "loop_nn_rnn": "C2", "torchaudio": "C3", "scipy": "C4",
           "philtorch": "C5", "torchlpc": "C6", "accelerated_scan": "C8", "copy": "C7"}


def write_plots(rows, env, plot_dir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(plot_dir, exist_ok=True)
    files = []
    for (sweep, mode), grp in _groups(rows).items():
        axis = _axis(grp)
        if axis not in ("T", "B", "order"):
            continue
        ok = [r for r in grp if r["status"] == "ok"]
        provs = list(OrderedDict.fromkeys(r["provider"] for r in ok))
        if not provs:
            continue
        r0 = grp[0]
        title = f"{sweep} {mode}: {r0['kind']} order {r0['order'] if axis != 'order' else 'N'}, " \
                f"B={r0['B'] if axis != 'B' else 'var'}, {r0['dtype']} ({env['slug']}, {env['date']})"
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for p in provs:
            pts = sorted((r[axis], r["time_ms"]) for r in ok if r["provider"] == p)
            ax.plot([a for a, _ in pts], [t for _, t in pts], marker="o", label=p, lw=2.5 if p == "ssm_lfilter" else 1.2,
                    color=_COLORS.get(p), ls="--" if p == "copy" else "-")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(axis)
        ax.set_ylabel("median time per call (ms)")
        ax.set_title(title, fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fn = os.path.join(plot_dir, f"time_{sweep}_{mode}.png")
        fig.tight_layout()
        fig.savefig(fn, dpi=110)
        plt.close(fig)
        files.append(fn)
        sp = [r for r in ok if r.get("speedup") is not None and r["provider"] != "ssm_lfilter"]
        if sp:
            fig, ax = plt.subplots(figsize=(7, 4.5))
            for p in OrderedDict.fromkeys(r["provider"] for r in sp):
                pts = sorted((r[axis], r["speedup"]) for r in sp if r["provider"] == p)
                ax.plot([a for a, _ in pts], [s for _, s in pts], "o-", label=f"vs {p}", color=_COLORS.get(p))
            ax.axhline(1.0, color="k", lw=0.8, ls="--")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel(axis)
            ax.set_ylabel("speedup of ssm_lfilter (provider time / ssm time)")
            ax.set_title(title, fontsize=9)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
            fn = os.path.join(plot_dir, f"speedup_{sweep}_{mode}.png")
            fig.tight_layout()
            fig.savefig(fn, dpi=110)
            plt.close(fig)
            files.append(fn)
    return files


def write_all(rows, env, out_dir, plots=True, targets=None):
    os.makedirs(out_dir, exist_ok=True)
    paths = [write_csv(rows, os.path.join(out_dir, "results.csv"))]
    with open(os.path.join(out_dir, "env.json"), "w") as f:
        json.dump(env, f, indent=2, default=str)
    paths.append(os.path.join(out_dir, "env.json"))
    plot_files = []
    if plots:
        try:
            plot_files = write_plots(rows, env, os.path.join(out_dir, "plots"))
        except ImportError as e:  # e.g. no matplotlib on a bare GPU machine: keep the tables
            print(f"# plots skipped: {e}")
    paths += plot_files
    paths.append(write_markdown(rows, env, os.path.join(out_dir, "results.md"), targets=targets, plot_files=plot_files))
    if targets and targets.get("paths"):
        paths += targets["paths"]
    return paths


# issue-3 targets: (label, sweep, kind, mode, provider compared, metric, threshold)
GPU_TARGETS = [
    ("first-order, forward", "gpu_first_order", "first_order", "forward", None, "copy_frac", 0.80),
    ("first-order, backward", "gpu_first_order", "first_order", "backward", None, "copy_frac", 0.60),
    ("LTI order <= 4, forward", "gpu_lti", "lti", "forward", None, "copy_frac", 0.80),
    ("LTI order <= 4, backward", "gpu_lti", "lti", "backward", None, "copy_frac", 0.60),
    ("sosfilt 8 sections, forward", "gpu_sos8", "sos", "forward", None, "copy_frac", 0.50),
    ("sosfilt 8 sections, backward", "gpu_sos8", "sos", "backward", None, "copy_frac", None),
    ("time-varying order 2, forward", "gpu_tv2", "tv", "forward", None, "copy_frac", 0.50),
    ("time-varying order 2, backward", "gpu_tv2", "tv", "backward", None, "copy_frac", None),
    ("one long sequence, forward", "gpu_long", None, "forward", None, "copy_frac", 0.50),
    ("one long sequence, backward", "gpu_long", None, "backward", None, "copy_frac", None),
    ("vs torchaudio lfilter (8, 2**20), forward", "gpu_torchaudio", "lti", "forward", "torchaudio", "speedup", 100.0),
    ("vs torchaudio lfilter (8, 2**20), train", "gpu_torchaudio", "lti", "train", "torchaudio", "speedup", None),
    ("vs TorchScript TDF-II loop (8, 2**12), forward", "gpu_loop", "lti", "forward", "loop_tdf2_jit", "speedup", None),
    ("vs TorchScript TDF-II loop (8, 2**12), train", "gpu_loop", "lti", "train", "loop_tdf2_jit", "speedup", None),
    ("vs nn.RNN (8, 2**12), forward", "gpu_loop", "lti", "forward", "loop_nn_rnn", "speedup", None),
]


def gpu_targets_md(rows, env) -> str:
    """The issue-3 target table: ssm_lfilter bandwidth as a fraction of the copy's, and speed-ups."""
    L = [f"# GPU targets (issue 3): {env['slug']}, {env['date']}", "",
         f"{env['device_name']}; versions: " + ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items()),
         "", "Bandwidth = minimal traffic / time, as a fraction of `y.copy_(x)` on the same shape in the same run. "
         "Speed-ups = provider time / ssm_lfilter time in the same run.", "",
         "| target | case | ssm_lfilter ms | metric | value | target | status |", "|---|---|---|---|---|---|---|"]
    for label, sweep, kind, mode, prov, metric, thr in GPU_TARGETS:
        sel = [r for r in rows if r["sweep"] == sweep and r["mode"] == mode and (kind is None or r["kind"] == kind)]
        want = prov or "ssm_lfilter"
        hits = [r for r in sel if r["provider"] == want]
        if not hits:
            continue
        for r in hits:
            ssm = next((s for s in sel if s["provider"] == "ssm_lfilter" and s["kind"] == r["kind"]
                        and s["order"] == r["order"] and s["B"] == r["B"] and s["T"] == r["T"]), None)
            case = f"{r['kind']} order {r['order']}, ({r['B']}, {r['T']}) {r['dtype']}"
            v = r.get(metric) if r["status"] == "ok" else None
            ms = _fmt(ssm["time_ms"], "ms") if ssm and ssm["status"] == "ok" else (ssm["status"] if ssm else "")
            if v is None:
                val, st = f"{r['status']}: {r['note']}"[:90], "n/a"
            else:
                val = _fmt(v, "%" if metric == "copy_frac" else "x")
                st = "" if thr is None else ("PASS" if v >= thr else "FAIL")
            tgt = "" if thr is None else (f">= {thr:.0%}" if metric == "copy_frac" else f">= {thr:g}x")
            L.append(f"| {label} | {case} | {ms} | {'% of copy BW' if metric == 'copy_frac' else 'speed-up vs ' + want} "
                     f"| {val} | {tgt} | {st} |")
    return "\n".join(L) + "\n"


def write_gpu_targets(rows, env, out_dir) -> str:
    md = gpu_targets_md(rows, env)
    with open(os.path.join(out_dir, "gpu_targets.md"), "w") as f:
        f.write(md)
    return md


def load_rows(path):
    """results.csv back into typed rows (ints and floats where they were)."""
    rows = read_csv(path)
    for r in rows:
        for k in ("B", "T", "order", "runs"):
            r[k] = int(r[k]) if r.get(k) not in (None, "") else None
        for k in ("time_ms", "spread", "msamples_per_s", "gb_per_s", "copy_frac", "speedup", "rel_err"):
            r[k] = float(r[k]) if r.get(k) not in (None, "") else None
    return rows


def readme_section(out_dir, rel_to) -> str:
    """The README's results section, generated from a committed results folder."""
    env = json.load(open(os.path.join(out_dir, "env.json")))
    rows = load_rows(os.path.join(out_dir, "results.csv"))
    rel = os.path.relpath(out_dir, rel_to)
    L = [f"Committed run: [`{rel}/`]({rel}/results.md) on **{env['device_name']}**, {env['date']}, "
         f"torch {env['versions'].get('torch')}, torch threads {env['torch_threads']} "
         f"(preset `{env['preset']}`, {env.get('suite_seconds', '?')} s). "
         "**Every speed-up below is a ratio of two timings measured in that one run on that machine**; "
         "the 2 cores may be shared with other processes, so absolute times carry noise; read the ratios. "
         "Regenerate this section with `python -m benchmarks.report <results dir>`.", ""]
    ct = os.path.join(out_dir, "cpu_targets.md")
    if os.path.exists(ct):
        body = open(ct).read().split("\n", 2)[-1].strip()
        L += ["### CPU targets (issue 2)", "", body, ""]
    head = headline_md(rows)
    if head:
        L += ["### Headline sweep (3rd-order LTI)", "", head, ""]
    pl = [f for f in ("time_T_train.png", "speedup_T_train.png", "time_T_forward.png", "speedup_T_forward.png")
          if os.path.exists(os.path.join(out_dir, "plots", f))]
    if pl:
        L += [" ".join(f"![{f}]({rel}/plots/{f})" for f in pl), ""]
    return "\n".join(L)


def update_readme(out_dir, readme=None):
    readme = readme or os.path.join(os.path.dirname(os.path.abspath(__file__)), "README.md")
    text = open(readme).read()
    start, end = "<!-- HEADLINE -->", "<!-- /HEADLINE -->"
    section = readme_section(out_dir, os.path.dirname(os.path.abspath(readme)))
    if start in text:
        pre = text.split(start)[0]
        post = text.split(end)[1] if end in text else "\n"
        text = pre + start + "\n" + section + "\n" + end + post
    else:
        text += "\n" + start + "\n" + section + "\n" + end + "\n"
    with open(readme, "w") as f:
        f.write(text)
    return readme


if __name__ == "__main__":  # python -m benchmarks.report <results dir>: refresh README's results section
    import sys

    print(update_readme(sys.argv[1]))
