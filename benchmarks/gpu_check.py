"""One-call GPU check: the GPU test tier, kernel timings against a copy, and the GPU benchmark suite.

Run from the repository root on a CUDA machine (a lent H100/H200 gets one call of a few minutes):

    python -m pip install --no-build-isolation --no-deps -e .   # the same python, so kernels/
    python benchmarks/gpu_check.py --out OUT_DIR                  # is importable as ssm_lfilter.kernels

(A bare ``pip`` may belong to another interpreter, and ``PYTHONPATH=.`` then imports the source
``ssm_lfilter`` without its kernels: every CUDA call warns and runs the torch engine. The first
lent run here did exactly that; its numbers were discarded.)

Stages, each written to the report as soon as it ends: compiling the variant table's kernels in
``--warm-workers`` processes at once (Triton compiles serially in one process, and a cold table spent
most of its 3 minutes compiling), the kernel variant table (single-pass vs
three-pass kernels, the fused sos cascade vs per-section launches, the one-launch backwards of the LTI,
time-varying and sos paths vs their compositions, the fused coefficient-gradient reduction vs per-lag
torch, the high-order lane spread, the fused time-varying cascade and the cascade with initial states;
``--families`` times only the named ones), with ``--timeline`` the single-pass kernels' phases from GPU
clock stamps (``benchmarks/tile_timeline.py``), the GPU test tier (``--test-budget`` seconds, ``--skip-tests``; in 8
processes where pytest-xdist is installed), the optional public-function bandwidth table (``--bandwidth``) and the benchmark
suite (about 110 s, ``--skip-suite``); with ``--host``, a profile of a call's host time, that time layer by
layer, and the public functions as CUDA graph replays (``benchmarks/host_time.py``). Give the device call the longest limit allowed (600 s): a run
cut short keeps every stage it finished in the report.

It writes ``OUT_DIR/report.md`` (device, versions, date, the variant table, the test tier's result,
the kernel bandwidth table and the suite's target table), ``OUT_DIR/gpu-tests.log`` and
``OUT_DIR/gpu_suite.tar.gz`` (the suite's CSV, markdown and plots). Each stage has a time budget, so a
slow stage is cut short and reported rather than losing the whole run.
"""
from __future__ import annotations

import argparse
import datetime
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def _env() -> str:
    import torch

    lines = [f"- date: {datetime.date.today().isoformat()}", f"- torch {torch.__version__}"]
    try:
        import triton

        lines.append(f"- triton {triton.__version__}")
    except ImportError:
        lines.append("- triton: not installed")
    try:
        import torchaudio

        lines.append(f"- torchaudio {torchaudio.__version__}")
    except Exception as err:  # noqa: BLE001 - any import failure is worth reporting, not fatal
        lines.append(f"- torchaudio: unavailable ({type(err).__name__})")
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        lines.append(f"- device: {p.name}, {p.multi_processor_count} SMs, {p.total_memory / 2**30:.0f} GiB")
    return "\n".join(lines)


def _test_tier(out_dir: str, budget_s: int, tests=None) -> str:
    """``pytest -m gpu`` in a subprocess with a time limit; returns its closing line."""
    log = os.path.join(out_dir, "gpu-tests.log")
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", *(tests or ["tests"])]
    try:  # the tier is compile-bound: tests in parallel processes compile in parallel
        import xdist  # noqa: F401

        cmd[3:3] = ["-n", "8"]
    except ImportError:
        pass
    # its own process group, so a tier cut short leaves no worker running on the GPU during the suite
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        text, _ = proc.communicate(timeout=budget_s)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        text, rc = proc.communicate()[0], "timeout"
    with open(log, "w") as f:
        f.write(text)
    tail = [ln for ln in text.strip().splitlines() if ln.strip()][-1:] or ["(no output)"]
    return f"`{' '.join(cmd[2:])}` exit {rc}: {tail[0]}"


def _variant_cases(dev: str = "cuda") -> list:
    """The cases of the variant table: ``(family, name, bytes moved, {variant: fn})`` on fixed data
    (seed 0), built the same way in every process that warms or times them."""
    import importlib

    import torch
    import triton

    def launcher(module, name):  # a family whose kernels fail to import is reported, not fatal
        try:
            return getattr(importlib.import_module(f"ssm_lfilter.kernels.{module}"), name)
        except Exception as err:  # noqa: BLE001
            def failed(*args, **kwargs):
                raise RuntimeError(f"import failed: {type(err).__name__}: {err}")
            return failed

    lti = launcher("lti", "lti")
    window = launcher("_lookback", "window")
    diagonal = launcher("diagonal", "diagonal")
    time_varying = launcher("time_varying", "time_varying")
    torch.manual_seed(0)
    T = 1 << 24
    cases = []
    for R, Tc, order in ((32, 1 << 20, 1), (32, 1 << 20, 2), (32, 1 << 20, 4), (1, T, 2), (4096, 4096, 2)):
        x = torch.randn(R, Tc, device=dev)
        p = torch.tensor([0.9] * order, dtype=torch.float64)
        a = torch.tensor(__import__("numpy").poly(p.numpy())[1:], dtype=torch.float32, device=dev)[None]
        b = torch.full((1, order + 1), 0.2, device=dev)
        h = torch.zeros(R, 0, device=dev)
        cases.append(("lti", f"lti N=M={order} {R}x{Tc}", 8 * x.numel(), {
            "single-pass": lambda x=x, b=b, a=a, h=h: lti(x, b, a, h, single_pass=True),
            # candidates for the single-pass defaults, untimed so far: half-length lanes (C = 16 took
            # 95 registers a thread at order 2 against 128, benchmarks/kernel_resources.py) and a
            # window 4x wider (the window fold now loads 4 float64 a tile instead of 24)
            "single-pass C=16 x 128 lanes": lambda x=x, b=b, a=a, h=h: lti(x, b, a, h, single_pass=True,
                                                                            block_size=16, lanes=128),
            "single-pass window x4": lambda x=x, b=b, a=a, h=h, R=R: lti(
                x, b, a, h, single_pass=True, window_tiles=min(128, 4 * window(triton.cdiv(Tc, 2048), R))),
            "three-pass tiles": lambda x=x, b=b, a=a, h=h: lti(x, b, a, h, single_pass=False, coalesced=True),
            # 8 looping programs an SM, each fetching its next tile's lines before the current one's
            # work (docs/kernels-single-pass.md, "Persistent launch"); untimed so far
            "single-pass persistent": lambda x=x, b=b, a=a, h=h: lti(x, b, a, h, single_pass=True,
                                                                     persistent=True)}))
        if order <= 2:
            # 64-sample lanes: a tile's fixed work (lane scan, look-back, powers) over twice the samples,
            # compiled for sm_90 31 instructions a sample at order 2 against 46, but 198 registers
            # against 124 (10 warps an SM instead of 16); untimed so far
            cases[-1][3]["single-pass C=64"] = lambda x=x, b=b, a=a, h=h: lti(x, b, a, h, single_pass=True,
                                                                           block_size=64)
        if R == 1:
            # one row: every tile on one look-back chain of n_tiles / W links (W = 128 here, the window's
            # cap); at 1 x 2^24 (8192 tiles, 64 links) the H200 ran 0.215 ms, about 3.4 us a link, so
            # the chain may set the time. W = 512 makes it 16 links for 512 flags and states a tile's
            # window (8 a thread); untimed so far
            cases[-1][3]["single-pass window 512"] = lambda x=x, b=b, a=a, h=h: lti(x, b, a, h, single_pass=True,
                                                                                 window_tiles=512)
        if order >= 3:
            # capped at 144 registers a thread by default at orders 3-4 (168 uncapped: 7 programs an SM
            # against 6, no spill, sm_90); untimed so far
            cases[-1][3]["single-pass, no register cap"] = lambda x=x, b=b, a=a, h=h: lti(
                x, b, a, h, single_pass=True, register_cap=False)
        if order >= 2 and Tc >= 4 * 2048:
            # the companion matrix powers squared in every tile, as before the power table (untimed so
            # far; kernel_resources.py --later-tiles: order 4 from 108 to 73 instructions a sample)
            cases[-1][3]["single-pass, no power table"] = lambda x=x, b=b, a=a, h=h: lti(
                x, b, a, h, single_pass=True, power_table=False)
    # Orders above 4 run the looped three-pass chunk kernel. Its lanes are spread over several threads
    # where the per-step tiles are wide (kernels/lti.py, _chunk_grid: no spill on sm_90) against one
    # thread a lane (the earlier configuration, which spilled from order 16), untimed so far.
    lti_module = importlib.import_module("ssm_lfilter.kernels.lti")
    spread_grid = lti_module._chunk_grid

    def one_thread_a_lane(lanes, MP, NP, gpu):
        BLOCK = min(128, lti_module.next_pow2(lanes))
        return BLOCK, max(1, min(4, BLOCK // 32))

    def with_grid(grid, fn):
        lti_module._chunk_grid = grid
        try:
            return fn()
        finally:
            lti_module._chunk_grid = spread_grid

    for order in (16, 32):
        x = torch.randn(32, 1 << 18, device=dev)
        p = 0.9 * torch.exp(1j * torch.linspace(0.1, 3.0, order // 2, dtype=torch.float64))
        poly = __import__("numpy").poly(torch.cat([p, p.conj()]).numpy()).real[1:]
        a = torch.tensor(poly, dtype=torch.float32, device=dev)[None]
        b = torch.full((1, order + 1), 0.05, device=dev)
        h = torch.zeros(32, 0, device=dev)
        cases.append(("lti_high", f"lti N=M={order} 32x2^18", 8 * x.numel(), {
            "three-pass tiles": lambda x=x, b=b, a=a, h=h: lti(x, b, a, h),
            "three-pass, one thread a lane": lambda x=x, b=b, a=a, h=h: with_grid(
                one_thread_a_lane, lambda: lti(x, b, a, h))}))
    for R, Tc in ((32, 1 << 20), (1, T)):
        u = torch.randn(R, Tc, device=dev)
        ad = torch.rand(R, Tc, device=dev) * 0.1 + 0.899
        cases.append(("diag", f"diag real {R}x{Tc}", 12 * u.numel(), {
            "single-pass": lambda u=u, ad=ad: diagonal(ad, u, single_pass=True),
            "three-pass tiles": lambda u=u, ad=ad: diagonal(ad, u, single_pass=False)}))
    diagonal_adjoint = launcher("diagonal", "diagonal_adjoint")
    for R, Tc in ((32, 1 << 20), (1, T)):
        g = torch.randn(R, Tc, device=dev)
        ad = torch.rand(R, Tc, device=dev) * 0.1 + 0.899
        hd = torch.randn(R, Tc, device=dev)
        cases.append(("diag_adjoint", f"diag adjoint (lam, da) {R}x{Tc}", 20 * g.numel(), {
            "single-pass": lambda g=g, ad=ad, hd=hd: torch.cat(diagonal_adjoint(ad, hd, g, False, single_pass=True)),
            "three-pass tiles": lambda g=g, ad=ad, hd=hd: torch.cat(diagonal_adjoint(ad, hd, g, False, single_pass=False))}))
    sos_launcher = launcher("sos", "sos")
    import scipy.signal as ss

    so = ss.butter(16, 0.05, output="sos")
    b8 = torch.tensor(so[:, :3], dtype=torch.float32, device=dev)[None]
    a8 = torch.tensor(so[:, 4:], dtype=torch.float32, device=dev)[None]
    xs = torch.randn(32, 1 << 20, device=dev)
    h0 = torch.zeros(32, 0, device=dev)

    def per_section(single):
        y = xs
        for k in range(b8.shape[1]):
            y = lti(y, b8[:, k], a8[:, k], h0, single_pass=single)
        return y

    cases.append(("sos", "sos 8 sections 32x2^20", 8 * xs.numel(), {
        "single-pass": lambda: sos_launcher(xs, b8, a8),
        "single-pass, no power table": lambda: sos_launcher(xs, b8, a8, power_table=False),
        "single-pass persistent": lambda: sos_launcher(xs, b8, a8, persistent=True),
        "three-pass tiles": lambda: per_section(False),
        "single-pass per section": lambda: per_section(True)}))
    # with every section's initial state (sosfilt with zi, each pass of sosfiltfilt): the fused launch
    # with heads and ends against one lti launch a section with its head (what sosfilt ran before)
    h8 = 0.1 * torch.randn(32, 8, 2, device=dev)
    e8 = torch.empty(8, 32, 2, device=dev)

    def per_section_zi(single):
        y = xs
        for k in range(b8.shape[1]):
            y = lti(y, b8[:, k], a8[:, k], h8[:, k], single_pass=single)
        return y

    cases.append(("sos_zi", "sos 8 sections with zi 32x2^20", 8 * xs.numel(), {
        "single-pass": lambda: sos_launcher(xs, b8, a8, head=h8, ends=e8),
        "single-pass, no power table": lambda: sos_launcher(xs, b8, a8, head=h8, ends=e8, power_table=False),
        "three-pass tiles": lambda: per_section_zi(False),
        "single-pass per section": lambda: per_section_zi(True)}))
    sos_adjoint = launcher("sos", "sos_adjoint")
    lti_adjoint = launcher("lti_adjoint", "lti_adjoint")
    gs = torch.randn_like(xs)

    def sos_backward_per_section():  # the composition: recompute each input, one adjoint a section
        ins = [xs]
        for k in range(b8.shape[1] - 1):
            ins.append(lti(ins[-1], b8[:, k], a8[:, k], h0))
        outs = ins[1:] + [lti(ins[-1], b8[:, -1], a8[:, -1], h0)]
        g, parts = gs, []
        for k in reversed(range(b8.shape[1])):
            g, db, da, _ = lti_adjoint(g, ins[k], outs[k], b8[:, k], a8[:, k], 0, True, 3, 2)
            parts += [db.flatten(), da.flatten()]
        return torch.cat([g.flatten(), *parts])

    def sos_backward_fused(**kw):
        dx, db, da, _ = sos_adjoint(gs, xs, b8, a8, True, 3, 2, **kw)
        return torch.cat([dx.flatten(), *(t for k in reversed(range(b8.shape[1]))
                                          for t in (db[:, k].flatten(), da[:, k].flatten()))])

    # reads g, x, writes dx at the least (the recompute's stack moves S+1 more arrays twice)
    cases.append(("sos_adjoint", "sos backward 8 sections (dx, db, da) 32x2^20", 12 * xs.numel(), {
        "single-pass": sos_backward_fused,
        "single-pass, no power table": lambda: sos_backward_fused(power_table=False),
        "single-pass C=8": lambda: sos_backward_fused(block_size=8),
        "three-pass tiles": sos_backward_per_section}))
    coef_grads = launcher("lti_coef_grads", "lti_coef_grads")
    vg, xg, yg = (torch.randn(32, 1 << 20, device=dev) for _ in range(3))

    def lagged_vecdots():  # the torch path the fused reduction replaced (ops._lagged_dot)
        T_ = vg.shape[1]
        return torch.stack([torch.linalg.vecdot(xg[:, : T_ - k], vg[:, k:]) for k in range(3)]
                           + [-torch.linalg.vecdot(yg[:, : T_ - k], vg[:, k:]) for k in (1, 2)], 1)

    cases.append(("coef_grads", "LTI coefficient grads (3 + 2 lags) 32x2^20", 12 * vg.numel(), {
        "single-pass": lambda: torch.cat(coef_grads(vg, xg, yg, 3, 2), 1),
        "three-pass tiles": lagged_vecdots}))
    adjoint = launcher("lti_adjoint", "lti_adjoint")
    for R, Tc, order in ((32, 1 << 20, 2), (32, 1 << 20, 4), (1, T, 2)):
        # the whole LTI backward (dx, db, da): one launch against the composed ops (the adjoint v
        # written and read back for the FIR and the reductions); 4 arrays move at the least
        xa, ga = torch.randn(R, Tc, device=dev), torch.randn(R, Tc, device=dev)
        p = torch.tensor([0.9] * order, dtype=torch.float64)
        aa = torch.tensor(__import__("numpy").poly(p.numpy())[1:], dtype=torch.float32, device=dev)[None]
        ba = torch.full((1, order + 1), 0.2, device=dev)
        ya = lti(xa, ba, aa, xa.new_zeros(R, 0))

        def composed(g=ga, x=xa, y=ya, b=ba, a=aa):
            none = g.new_zeros(g.shape[0], 0)
            v = lti(g, g.new_ones(1, 1), a, none, reverse=True)
            dx = lti(v, b, a.new_zeros(1, 0), none, reverse=True)
            return torch.cat([dx.flatten(), *(t.flatten() for t in coef_grads(v, x, y, b.shape[1], a.shape[1]))])

        def fused(g=ga, x=xa, y=ya, b=ba, a=aa, **kw):
            dx, db, da, _ = adjoint(g, x, y, b, a, 0, True, b.shape[1], a.shape[1], **kw)
            return torch.cat([dx.flatten(), db.flatten(), da.flatten()])

        cases.append(("lti_adjoint", f"lti backward (dx, db, da) N=M={order} {R}x{Tc}", 16 * xa.numel(), {
            "single-pass": fused,
            "single-pass, no power table": lambda f=fused: f(power_table=False),
            # 32-sample lanes: 255 registers a thread at order 2 and a spill at order 4 (kernel_resources)
            "single-pass C=32": lambda f=fused: f(block_size=32),
            # 128 lanes (4-warp programs): 2048-sample tiles at the same registers a thread, so a
            # tile's fixed latency (look-back, fences) is spread over twice the samples (untimed)
            "single-pass 128 lanes": lambda f=fused: f(lanes=128),
            # order 4 launches capped at 128 registers (166 uncapped, sm_90); orders 1-2 take 128 anyway
            "single-pass, no register cap": lambda f=fused: f(register_cap=False),
            "three-pass tiles": composed}))
        if R == 1:  # one row: the look-back chain 4x shorter, as for the forward (untimed so far)
            cases[-1][3]["single-pass window 512"] = lambda f=fused: f(window_tiles=512)
    th = 0.3 + 0.1 * torch.sin(torch.arange(1 << 20, device=dev) / 1000.0)
    at = torch.stack([-2 * 0.9 * torch.cos(th), torch.full_like(th, 0.81)], -1)[None].expand(8, -1, -1).contiguous()
    u = torch.randn(8, 1 << 20, device=dev)
    cases.append(("tv", "time_varying N=2 8x2^20", (8 + 8) * u.numel(), {
        "single-pass": lambda: time_varying(u, at, single_pass=True),
        "three-pass tiles": lambda: time_varying(u, at, single_pass=False, coalesced=True)}))
    tv_adjoint = launcher("time_varying_adjoint", "time_varying_adjoint")
    zt = time_varying(u, at, single_pass=True)
    gt = torch.randn_like(u)

    def tv_composed(g, a, z):  # the composed backward the fused one replaced (flipped g, skewed copies)
        from ssm_lfilter.ops import _tv_adjoint_composed

        v, da = _tv_adjoint_composed(g, a, z, True)
        return torch.cat([v.flatten(), da.flatten()])

    def tv_fused(g, a, z, **kw):
        du, da = tv_adjoint(g, a, z, **kw)
        return torch.cat([du.flatten(), da.flatten()])

    # reads g, a (2), z; writes du, da (2): 7 arrays at the least
    cases.append(("tv_adjoint", "time_varying backward (du, da) N=2 8x2^20", 28 * u.numel(), {
        "single-pass": lambda: tv_fused(gt, at, zt),
        # the launch as it was before the register cap: 203 registers a thread, 8 warps an SM (sm_90)
        "single-pass, no register cap": lambda: tv_fused(gt, at, zt, register_cap=False),
        "three-pass tiles": lambda: tv_composed(gt, at, zt)}))
    # order 16 (LPC synthesis): per-row coefficients of 8 slowly drifting resonators a row; above order 4
    # the backward is the reversed passes, against the composition it replaced (flipped g, skewed
    # copies of a and of z, the forward passes)
    T16 = 1 << 18
    th16 = 0.2 + 0.3 * torch.arange(8, device=dev) + 0.05 * torch.sin(torch.arange(T16, device=dev)[:, None] / 500.0)
    c16 = torch.ones(T16, 1, device=dev)
    for i in range(8):
        quad = torch.stack([torch.ones_like(th16[:, i]), -2 * 0.95 * torch.cos(th16[:, i]),
                            torch.full_like(th16[:, i], 0.95 ** 2)], -1)
        c16 = sum(torch.nn.functional.pad(c16 * quad[:, j:j + 1], (j, 2 - j)) for j in range(3))
    a16 = c16[None, :, 1:].expand(8, -1, -1).contiguous()
    u16, g16 = torch.randn(8, T16, device=dev), torch.randn(8, T16, device=dev)
    z16 = time_varying(u16, a16)

    # reads g, z, a (16); writes du, da (16): 35 arrays of the signal's size at the least
    cases.append(("tv_adjoint", "time_varying backward (du, da) N=16 8x2^18", 4 * 35 * u16.numel(), {
        "fused passes": lambda: tv_fused(g16, a16, z16),
        "fused passes, looped": lambda: tv_fused(g16, a16, z16, coalesced=False),
        "three-pass tiles": lambda: tv_composed(g16, a16, z16)}))

    # time-varying cascade, 8 biquads a row, coefficients as time_varying_sosfilt passes them (views of
    # one normalized [R, T, S, 6] tensor): the fused launch against the per-section composition the
    # public function ran before (a torch FIR, then the all-pole kernel, a section at a time)
    tv_sos = launcher("tv_sos", "tv_sos")
    Ts = 1 << 20
    ths = 0.3 + 0.1 * torch.sin(torch.arange(Ts, device=dev)[:, None] / 1000.0 + torch.arange(8, device=dev))
    sos_t = torch.stack([torch.full_like(ths, 0.2), torch.full_like(ths, 0.4), torch.full_like(ths, 0.2),
                         torch.ones_like(ths), -2 * 0.9 * torch.cos(ths), torch.full_like(ths, 0.81)], -1)
    sos_t = sos_t[None].expand(8, -1, -1, -1).contiguous()  # per-row coefficients [8, T, 8, 6]
    bs, as_ = sos_t[..., :3], sos_t[..., 4:]
    xt = torch.randn(8, Ts, device=dev)

    def tv_per_section(single, bs=bs, as_=as_):
        w = xt
        for k in range(bs.shape[2]):
            bk = bs[:, :, k]
            u_ = bk[:, :, 0] * w
            for j in (1, 2):
                u_ = u_ + bk[:, :, j] * torch.cat([w.new_zeros(8, j), w[:, :-j]], 1)
            w = time_varying(u_, as_[:, :, k], single_pass=single)
        return w

    # the signal read and written once, each row's coefficients (24 bytes a section a step) read once
    cases.append(("tv_sos", "time_varying_sosfilt 8 sections 8x2^20", 8 * xt.numel() + sos_t.numel() * 4, {
        "single-pass": lambda: tv_sos(xt, bs, as_),
        "three-pass tiles": lambda: tv_per_section(False),
        "single-pass per section": lambda: tv_per_section(True),
        "single-pass C=8": lambda: tv_sos(xt, bs, as_, block_size=8)}))
    # one section: time_varying_lfilter with per-sample b from rest (the public function now runs it fused)
    b1, a1 = bs[:, :, :1], as_[:, :, :1]
    cases.append(("tv_sos", "time_varying_lfilter per-sample b, order 2, 8x2^20", 8 * xt.numel() + 20 * xt.numel(), {
        "single-pass": lambda: tv_sos(xt, b1, a1),
        "three-pass tiles": lambda: tv_per_section(False, b1, a1),
        "single-pass per section": lambda: tv_per_section(True, b1, a1)}))
    # the cascade's backward (two launches: the forward recomputing every section's input, then the
    # adjoints), its recompute capped at 128 registers (236 uncapped, sm_90) or not: a configuration
    # comparison (no three-pass reference, so no single-pass verdict); untimed so far
    tv_sos_adjoint = launcher("tv_sos", "tv_sos_adjoint")
    gs = torch.randn_like(xt)
    cases.append(("tv_sos_adjoint", "time_varying_sosfilt backward 8 sections 8x2^20",
                  4 * xt.numel() * (2 + 3 * 8) + 2 * sos_t.numel() * 4, {
                      "fused": lambda: tv_sos_adjoint(gs, xt, bs, as_)[0],
                      "fused, no register cap": lambda: tv_sos_adjoint(gs, xt, bs, as_, register_cap=False)[0]}))
    return cases


def _selected(cases: list, families: list[str] | None) -> list:
    """The variant cases of the given families (``--families``), or all."""
    return [c for c in cases if families is None or c[0] in families]


def _warm(part: int, parts: int, families: list[str] | None = None, timeline: bool = False) -> None:
    """Compile (run once) every ``parts``-th variant of the table, starting at ``part``: several such
    processes fill Triton's on-disk cache in parallel, so the timing process compiles nothing. Each
    variant compiles its own kernels serially in one process; a cold table took over 3 minutes.
    ``timeline``: also the clock-stamped kernels of ``benchmarks/tile_timeline.py``."""
    import torch

    items = [(name, var, fn) for _, name, _, variants in _selected(_variant_cases(), families)
             for var, fn in variants.items()]
    if timeline:
        from benchmarks import tile_timeline

        items += [(label, "stamped", lambda make=make: make()(torch.empty(0, dtype=torch.int64, device="cuda")))
                  for label, make in tile_timeline.cases("cuda")]
    for name, var, fn in items[part::parts]:
        try:
            fn()
            torch.cuda.synchronize()
        except Exception as err:  # noqa: BLE001 - the timing process reports failures
            print(f"warm {name} / {var}: {type(err).__name__}: {str(err)[:200]}", flush=True)


def _warm_in_parallel(workers: int, budget_s: int, families: list[str] | None = None, timeline: bool = False) -> str:
    """Run ``_warm`` in ``workers`` processes at once (the GPU is shared; nothing is timed)."""
    t0 = time.time()
    only = (["--families", *families] if families else []) + (["--timeline"] if timeline else [])
    procs = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--warm-part", f"{k}/{workers}", *only],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for k in range(workers)]
    notes = []
    for proc in procs:
        try:
            out, _ = proc.communicate(timeout=max(1.0, budget_s - (time.time() - t0)))
            notes += [ln for ln in out.splitlines() if ln.startswith("warm ")]
        except subprocess.TimeoutExpired:
            proc.kill()
            notes.append("warm: a worker ran past its budget and was stopped")
    return f"{workers} compile workers, {time.time() - t0:.0f} s" + "".join(f"; {n}" for n in notes[:5])


def _variant_comparison(families: list[str] | None = None) -> tuple[str, dict, dict]:
    """Every kernel variant side by side on the same data: the single-pass look-back kernels (and the
    fused sos cascade and coefficient-gradient reduction) against the three-pass kernels with coalesced
    tiles (and the per-section cascade, the per-lag torch reductions).
    Returns the table and, per family, whether the single-pass (or fused) variant compiled, matched the
    three-pass (or unfused) result and was faster, and whether it matched."""
    import torch
    from triton.testing import do_bench

    # the reference of each case is its "three-pass tiles" variant (for the backward: the composed ops)
    rows = ["| case | variant | ms | GB/s | % of copy | max rel diff vs three-pass tiles |", "|---|---|---|---|---|---|"]
    src = torch.empty(2**28, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    copy = 2 * src.numel() / do_bench(lambda: dst.copy_(src), return_mode="median") / 1e6
    del src, dst
    cases = _selected(_variant_cases(), families)
    verdict: dict = {}
    matched: dict = {}
    for family, name, nbytes, variants in cases:
        res = {}
        for var, fn in variants.items():
            try:
                y = fn()
                torch.cuda.synchronize()
                res[var] = (do_bench(fn, return_mode="median"), y)
            except Exception as err:  # noqa: BLE001 - a kernel that fails to compile is a result
                res[var] = (float("nan"), None)
                rows.append(f"| {name} | {var} | failed: {type(err).__name__}: {str(err)[:150]} ||||")
        ref = res.get("three-pass tiles", (0, None))[1]
        for var, (ms, y) in res.items():
            if y is None:
                continue
            diff = float("nan") if ref is None else ((y - ref).abs().max() / ref.abs().max()).item()
            rows.append(f"| {name} | {var} | {ms:.3f} | {nbytes / ms / 1e6:.0f} | {nbytes / ms / 1e6 / copy:.0%} | {diff:.1e} |")
        if "single-pass" not in variants:  # a configuration comparison, not a single-pass verdict
            continue
        sp, tp = res.get("single-pass", (0, None)), res.get("three-pass tiles", (0, None))
        ok = sp[1] is not None and tp[1] is not None and ((sp[1] - tp[1]).abs().max() / tp[1].abs().max()).item() < 1e-4
        verdict[family] = verdict.get(family, True) and ok and sp[0] < tp[0]
        matched[family] = matched.get(family, True) and ok
    rows.append(f"\nCopy: {copy:.0f} GB/s (a 256 MiB device-to-device copy, read + write).")
    return "\n".join(rows), verdict, matched


def _bandwidth_table() -> str:
    """The kernels against a device-to-device copy of the same bytes, in one process."""
    import torch
    from triton.testing import do_bench

    import ssm_lfilter as sl

    dev = "cuda"
    rows = ["| case | time (ms) | GB/s | fraction of copy |", "|---|---|---|---|"]

    def copy_gbs(nbytes: int) -> float:
        src = torch.empty(nbytes // 4, device=dev)
        dst = torch.empty_like(src)
        ms = do_bench(lambda: dst.copy_(src), return_mode="median")
        return 2 * nbytes / ms / 1e6

    def case(name, fn, nbytes):
        ms = do_bench(fn, return_mode="median")
        gbs = nbytes / ms / 1e6
        ref = copy_gbs(nbytes // 2)  # a copy moves its bytes twice (read + write)
        rows.append(f"| {name} | {ms:.3f} | {gbs:.0f} | {gbs / ref:.0%} |")

    torch.manual_seed(0)
    T = 2**24
    x = torch.randn(1, T, device=dev)
    xb = torch.randn(4096, 4096, device=dev)
    b2 = torch.tensor([0.2, 0.4, 0.2], device=dev)
    a2 = torch.tensor([1.0, -0.6, 0.3], device=dev)
    case("lfilter biquad fwd, 1 x 2^24", lambda: sl.lfilter(b2, a2, x), 8 * T)
    case("lfilter biquad fwd, 4096 x 4096", lambda: sl.lfilter(b2, a2, xb), 8 * xb.numel())
    a1 = torch.full((1, 1), 0.99, device=dev)
    case("linear_recurrence fwd, 1 x 2^24", lambda: sl.linear_recurrence(a1, x), 8 * T)
    sos = torch.tensor([[0.2, 0.4, 0.2, 1.0, -0.6, 0.3]], device=dev).repeat(8, 1)
    case("sosfilt 8 sections fwd, 1 x 2^24", lambda: sl.sosfilt(sos, x), 8 * T)
    at = torch.stack([torch.ones(T, device=dev), -0.5 * torch.ones(T, device=dev), 0.2 * torch.ones(T, device=dev)], -1)
    case("time_varying_lfilter order 2 fwd, 1 x 2^24", lambda: sl.time_varying_lfilter(b2, at, x), 8 * T + 12 * T)
    xg = x.clone().requires_grad_()

    def fwd_bwd():
        sl.lfilter(b2, a2, xg).sum().backward()

    case("lfilter biquad fwd+bwd (x), 1 x 2^24", fwd_bwd, 8 * T + 8 * T)
    xc = torch.randn(32, 1 << 20, device=dev, requires_grad=True)
    bc, ac = b2.clone().requires_grad_(), a2.clone().requires_grad_()

    def fwd_bwd_coefficients():  # forward reads x, writes y; backward reads g, x, y, writes dx
        torch.autograd.grad(sl.lfilter(bc, ac, xc).sum(), (xc, bc, ac))

    case("lfilter biquad fwd+bwd (x, b, a), 32 x 2^20", fwd_bwd_coefficients, 24 * xc.numel())
    xs = torch.randn(32, 1 << 20, device=dev)
    for order in (1, 4):
        p = torch.tensor([0.9] * order, dtype=torch.float64)
        a_o = torch.tensor(__import__("numpy").poly(p.numpy())[1:], dtype=torch.float32, device=dev)
        a_o = torch.cat([torch.ones(1, device=dev), a_o])
        b_o = torch.full((order + 1,), 0.2, device=dev)
        case(f"lfilter order {order} fwd, 32 x 2^20", lambda b=b_o, a=a_o: sl.lfilter(b, a, xs), 8 * xs.numel())
    at8 = at.new_ones(1 << 20, 3)
    at8[:, 1], at8[:, 2] = -0.5, 0.2
    x8 = torch.randn(8, 1 << 20, device=dev)
    case("time_varying_lfilter order 2 fwd, 8 x 2^20", lambda: sl.time_varying_lfilter(b2, at8, x8),
         8 * x8.numel() + 12 * (1 << 20))
    bt8 = b2.repeat(1 << 20, 1)  # per-sample b: the FIR fused into the recurrence (one launch)
    case("time_varying_lfilter order 2 per-sample b fwd, 8 x 2^20", lambda: sl.time_varying_lfilter(bt8, at8, x8),
         8 * x8.numel() + 24 * (1 << 20))
    zi8 = sl.sosfilt_zi(sos)[:, None, :] * x[:, :1]  # (8 sections, 1 row, 2)
    case("sosfilt 8 sections with zi fwd, 1 x 2^24", lambda: sl.sosfilt(sos, x, zi=zi8), 8 * T)
    case("sosfiltfilt 8 sections, 1 x 2^24 (two passes)", lambda: sl.sosfiltfilt(sos, x), 16 * T)
    sos_tv = torch.tensor([0.2, 0.4, 0.2, 1.0, -0.6, 0.3], device=dev).repeat(1 << 20, 8, 1)  # (T, 8, 6)
    case("time_varying_sosfilt 8 sections fwd, 8 x 2^20", lambda: sl.time_varying_sosfilt(sos_tv, x8),
         8 * x8.numel() + 4 * sos_tv.numel())
    zi_tv = torch.zeros(8, 8, 4, device=dev)  # (sections, rows, [x[-1], x[-2], y[-1], y[-2]])
    case("time_varying_sosfilt 8 sections with zi fwd, 8 x 2^20",
         lambda: sl.time_varying_sosfilt(sos_tv, x8, zi=zi_tv), 8 * x8.numel() + 4 * sos_tv.numel())
    # Host time a call: tiny inputs, many calls and one synchronization, so the GPU never waits for
    # anything but the host (the floor under every public-function time above).
    import time

    from ssm_lfilter import ops

    tiny = torch.randn(1, 256, device=dev, requires_grad=True)
    bt, a_t = b2.clone().requires_grad_(), a2.clone().requires_grad_()
    for name, fn in (("lfilter fwd", lambda: sl.lfilter(b2, a2, tiny.detach())),
                     ("lfilter fwd+bwd (x, b, a)", lambda: torch.autograd.grad(sl.lfilter(bt, a_t, tiny).sum(),
                                                                              (tiny, bt, a_t))),
                     ("sosfilt 8 sections fwd", lambda: sl.sosfilt(sos, tiny.detach())),
                     ("time_varying_lfilter fwd", lambda: sl.time_varying_lfilter(b2, at8[:256], tiny.detach()))):
        for entries in (True, False):  # the eager entries against the registered ops, side by side
            ops.eager_entries = entries
            fn()
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(200):
                fn()
            torch.cuda.synchronize()
            path = "eager entries" if entries else "registered ops"
            rows.append(f"| host time a call ({path}): {name}, 1 x 256 | "
                        f"{(time.perf_counter() - t0) / 200 * 1e3:.3f} | | |")
        ops.eager_entries = True
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out")
    ap.add_argument("--test-budget", type=int, default=90, help="seconds for the GPU test tier")
    ap.add_argument("--sweeps", nargs="*", default=None, help="suite sweeps to run (default: all of the cuda preset)")
    ap.add_argument("--skip-suite", action="store_true")
    ap.add_argument("--skip-tests", action="store_true")
    ap.add_argument("--skip-variants", action="store_true", help="no kernel variant table")
    ap.add_argument("--families", nargs="*", default=None,
                    help="variant-table families to time (lti, sos, sos_zi, sos_adjoint, tv, tv_adjoint, tv_sos, ...; "
                         "default: all)")
    ap.add_argument("--host", action="store_true",
                    help="also profile a call's host time and time the public functions as CUDA graph replays")
    ap.add_argument("--tests", nargs="*", default=None, help="test files or ids for the GPU tier (default: tests)")
    ap.add_argument("--bandwidth", action="store_true", help="also time the public functions against a copy")
    ap.add_argument("--timeline", action="store_true",
                    help="also stamp the single-pass kernels' phases with the GPU clock (benchmarks/tile_timeline.py)")
    ap.add_argument("--warm-workers", type=int, default=8,
                    help="processes that compile the variant table's kernels in parallel first (0: none)")
    ap.add_argument("--warm-part", default=None, help=argparse.SUPPRESS)  # K/N: one such process
    args = ap.parse_args(argv)
    if args.warm_part is not None:
        part, parts = map(int, args.warm_part.split("/"))
        _warm(part, parts, args.families, args.timeline)
        return 0
    if args.out is None:
        ap.error("--out is required")
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    parts = ["# ssm_lfilter GPU check", "", _env(), ""]

    def save():  # after every stage, so a run cut short still leaves its report
        with open(os.path.join(args.out, "report.md"), "w") as f:
            f.write("\n".join(parts) + f"\n\nElapsed: {time.time() - t0:.0f} s\n")

    if args.warm_workers > 0 and not args.skip_variants:
        parts += ["Compiled first: " + _warm_in_parallel(args.warm_workers, budget_s=240, families=args.families,
                                                         timeline=args.timeline), ""]
        save()
    try:
        table, verdict, matched = _variant_comparison(args.families) if not args.skip_variants else ("(skipped)", {}, {})
    except Exception as err:  # noqa: BLE001
        table, verdict, matched = f"failed: {type(err).__name__}: {err}", {}, {}
    # The rest of the run (the test tier's subprocess included) keeps the per-family defaults
    # (kernels/_variants.py) unless a default-on single-pass family failed to compile or match.
    broken = [f for f in ("lti", "tv", "sos", "sos_zi", "tv_sos") if matched.get(f) is False]
    if broken:
        os.environ["SSM_LFILTER_SINGLE_PASS"] = "0"
    parts += ["## Kernel variants side by side", "", table, "",
              f"Single pass faster and matching, per family: {verdict}; matching: {matched}. The rest of "
              f"this run uses SSM_LFILTER_SINGLE_PASS={os.environ.get('SSM_LFILTER_SINGLE_PASS', '(unset: per-family defaults)')}.", ""]
    save()
    print("\n".join(parts[-5:]), flush=True)

    if args.timeline:
        from benchmarks import tile_timeline

        try:
            parts += ["## Where a single-pass tile's time goes (clock stamps)", "", tile_timeline.timeline_report(), ""]
        except Exception as err:  # noqa: BLE001 - report the failure and go on
            parts += ["## Where a single-pass tile's time goes (clock stamps)", "", f"failed: {type(err).__name__}: {err}", ""]
        save()
        print(parts[-2], flush=True)

    if not args.skip_tests:
        parts += ["## GPU test tier", "", _test_tier(args.out, args.test_budget, args.tests), ""]
        save()
        print(parts[-2], flush=True)

    if args.bandwidth:
        try:
            parts += ["## Public functions against a copy", "", _bandwidth_table(), ""]
        except Exception as err:  # noqa: BLE001 - report the failure and go on to the suite
            parts += ["## Public functions against a copy", "", f"failed: {type(err).__name__}: {err}", ""]
        save()

    if args.host:
        from benchmarks import host_time

        for title, stage in (("Host time of a forward + backward call (torch.profiler)", host_time.host_profile),
                             ("Host time of a forward + backward call, layer by layer", host_time.backward_breakdown),
                             ("Public functions, plain calls against CUDA graph replays", host_time.graph_table)):
            try:
                parts += [f"## {title}", "", stage(), ""]
            except Exception as err:  # noqa: BLE001 - report the failure and go on
                parts += [f"## {title}", "", f"failed: {type(err).__name__}: {err}", ""]
            save()

    if not args.skip_suite:
        from benchmarks.run import run_gpu_suite

        suite_dir = os.path.join(tempfile.mkdtemp(), "gpu_suite")
        try:
            res = run_gpu_suite(suite_dir, sweeps=args.sweeps)
            parts += ["## Benchmark suite targets", "", res.get("gpu_targets", ""), ""]
            with open(os.path.join(suite_dir, "results.md")) as f:
                parts += ["## Benchmark suite results", "", f.read(), ""]
        except Exception as err:  # noqa: BLE001
            parts += ["## Benchmark suite", "", f"failed: {type(err).__name__}: {err}", ""]
        if os.path.isdir(suite_dir):
            with tarfile.open(os.path.join(args.out, "gpu_suite.tar.gz"), "w:gz") as tar:
                tar.add(suite_dir, arcname="gpu_suite")
        save()
    print("\n".join(parts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
