"""The cases of ``gpu_check.py``'s kernel variant table, one builder a family.

A case is ``(family, name, bytes moved, {variant: fn})`` on fixed data (seed 0 a family), built the
same way in every process that compiles or times it. Building a case launches no kernel: inputs that
come from a kernel (a forward's output for a backward case) are computed on first use and kept
(``_once``). When the table built every family eagerly, each of 16 compile workers and the timing
process compiled an order-4 LTI forward (96 s cold for sm_90 at that commit) before their own work,
and the H200 run of 2026-11-28 lost its whole lease. Each family also builds in its own scope, so no
variant's closure sees another family's tensors.

``shrink`` divides every length (and the 4096-row batch) so that the same plumbing runs on CPU under
the Triton interpreter in the tests.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch


def _launcher(module: str, name: str):
    """A kernel launcher; one whose module fails to import raises when called, so its family's rows
    report the failure instead of the whole table failing."""
    try:
        return getattr(importlib.import_module(f"ssm_lfilter.kernels.{module}"), name)
    except Exception as err:  # noqa: BLE001
        why = f"import failed: {type(err).__name__}: {err}"  # (err itself is unbound after the block)

        def failed(*args, **kwargs):
            raise RuntimeError(why)
        return failed


def _once(fn: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor]:
    """``fn()`` computed on the first call and kept: a kernel's output other variants read."""
    memo: list = []

    def get():
        if not memo:
            memo.append(fn())
        return memo[0]
    return get


@dataclass(frozen=True)
class Sizes:
    dev: str = "cuda"
    shrink: int = 1  # lengths divided by this
    rows: int | None = None  # at most this many rows (the interpreter runs one program at a time)

    def t(self, n: int) -> int:
        """A length, shrunk (at least 64 samples)."""
        return max(64, n // self.shrink)

    def r(self, n: int) -> int:
        """A batch: the 4096 short rows shrunk like a length, every batch capped at ``rows``."""
        n = n if n <= 32 else max(4, n // self.shrink)
        return n if self.rows is None else min(n, self.rows)

    def tag(self, R: int, T: int) -> str:
        return f"{R}x{T}"


def _poles_poly(poles, dev) -> torch.Tensor:
    """Denominator coefficients (without the leading 1) of real or conjugate-paired poles, [1, N]."""
    return torch.tensor(np.poly(np.asarray(poles)).real[1:], dtype=torch.float32, device=dev)[None]


def _raw(a: torch.Tensor) -> torch.Tensor:
    """Normalized poles ``a [1, N]`` as ``lfilter`` passes them to the kernels: ``a0 = 2`` first, the
    rest scaled by it (the same filter with ``b`` times 2)."""
    return torch.cat([a.new_ones(1, 1), a], 1) * 2.0


def lti_cases(s: Sizes) -> list:
    import triton

    lti, window = _launcher("lti", "lti"), _launcher("_lookback", "window")
    torch.manual_seed(0)
    cases = []
    for R, Tc, order in ((s.r(32), s.t(1 << 20), 1), (s.r(32), s.t(1 << 20), 2), (s.r(32), s.t(1 << 20), 4),
                         (1, s.t(1 << 24), 2), (s.r(4096), s.t(4096), 2)):
        x = torch.randn(R, Tc, device=s.dev)
        a = _poles_poly([0.9] * order, s.dev)
        b = torch.full((1, order + 1), 0.2, device=s.dev)
        h = torch.zeros(R, 0, device=s.dev)
        variants = {
            "single-pass": lambda x=x, b=b, a=a, h=h: lti(x, b, a, h, single_pass=True),
            # candidates for the single-pass defaults: half-length lanes (C = 16 took 95 registers a
            # thread at order 2 against 128, benchmarks/kernel_resources.py) and a window 4x wider
            # (the window fold loads 4 float64 a tile instead of 24)
            "single-pass C=16 x 128 lanes": lambda x=x, b=b, a=a, h=h: lti(x, b, a, h, single_pass=True,
                                                                            block_size=16, lanes=128),
            "single-pass window x4": lambda x=x, b=b, a=a, h=h, R=R, Tc=Tc: lti(
                x, b, a, h, single_pass=True, window_tiles=min(128, 4 * window(triton.cdiv(Tc, 2048), R))),
            "three-pass tiles": lambda x=x, b=b, a=a, h=h: lti(x, b, a, h, single_pass=False, coalesced=True),
            # 8 looping programs an SM, each fetching its next tile's lines before the current one's
            # work (docs/kernels-single-pass.md, "Persistent launch")
            "single-pass persistent": lambda x=x, b=b, a=a, h=h: lti(x, b, a, h, single_pass=True, persistent=True),
            # each thread loads and stores its own lane's run in 16-byte vectors, no layout change of
            # the tile through shared memory (kernels/_lane_tiles.py; sm_90 per sample of a tile:
            # order 1 25 instructions against 32, order 2 38.5 against 44.5, order 4 65.5 against 71.5)
            "single-pass lane loads": lambda x=x, b=b, a=a, h=h: lti(x, b, a, h, single_pass=True, lane_loads=True)}
        if order == 4:
            # answered on an H200 (results/cuda-nvidia-h200-2026-11-28: none faster at order 4), and
            # each a cold compile of 25-35 s without the power table that the compile workers'
            # budget cannot hold
            for name in ("single-pass C=16 x 128 lanes", "single-pass window x4", "single-pass persistent",
                         "single-pass lane loads"):
                del variants[name]
        # float32 lanes (kernels/_variants.py, lane_float32): the lanes' recurrences without float64
        # conversions or arithmetic; sm_90 at order 2: 94 registers against 126 (20 warps an SM
        # against 16), float64 instructions 254 against 478 of 1504 against 1568. With 64-sample
        # lanes 142 registers (the float64 lanes took 198)
        variants["single-pass float32 lanes"] = lambda x=x, b=b, a=a, h=h: lti(x, b, a, h, single_pass=True,
                                                                               lane_float32=True)
        if order <= 2:
            variants["single-pass float32 lanes C=64"] = lambda x=x, b=b, a=a, h=h: lti(
                x, b, a, h, single_pass=True, lane_float32=True, block_size=64)
            # 64-sample lanes: a tile's fixed work (lane scan, look-back, powers) over twice the
            # samples; sm_90: 31 instructions a sample at order 2 against 46, but 198 registers
            # against 124 (10 warps an SM instead of 16)
            variants["single-pass C=64"] = lambda x=x, b=b, a=a, h=h: lti(x, b, a, h, single_pass=True, block_size=64)
        # (order 4: 64-sample lanes, 32 of them, one warp a tile, is the GPU's float32 default since
        # 2026-11-28, kernels/_variants.py one_warp_tiles: "single-pass" times it; the wide tiles it
        # replaced ran 0.296 against 0.228 ms then)
        if R == 1:
            # one row: every tile on one look-back chain of n_tiles / W links (W = 128, the window's
            # cap); at 1 x 2^24 (8192 tiles, 64 links) the H200 ran 0.215 ms, about 3.4 us a link.
            # W = 512 makes it 16 links for 512 flags and states a tile's window (8 a thread)
            variants["single-pass window 512"] = lambda x=x, b=b, a=a, h=h: lti(x, b, a, h, single_pass=True,
                                                                             window_tiles=512)
        if order <= 2:
            # what lfilter launches at orders 1-2 since 2026-11-28: a0 first in a, divided in registers
            # (no division launched before the kernel); 96 more static instructions (sm_90), the same
            # registers
            variants["single-pass, raw coefficients"] = lambda x=x, b=b * 2.0, a=_raw(a), h=h: lti(
                x, b, a, h, single_pass=True, monic=False)
        if order >= 2 and Tc >= 4 * 2048:
            # the companion matrix powers loaded from a table instead of squared in every tile
            # (kernel_resources.py --later-tiles: order 4 from 108 to 73 instructions a sample, yet
            # 3.8x slower on an H200, results/cuda-nvidia-h200-2026-11-28: off by default)
            variants["single-pass, power table"] = lambda x=x, b=b, a=a, h=h: lti(
                x, b, a, h, single_pass=True, power_table=True)
        cases.append(("lti", f"lti N=M={order} {s.tag(R, Tc)}", 8 * x.numel(), _f32_first(variants)))
    return cases


def lti_high_cases(s: Sizes) -> list:
    """Orders above 4 run the looped three-pass chunk kernel, its lanes spread over several threads
    where the per-step tiles are wide (kernels/lti.py, _chunk_grid: no spill on sm_90), against one
    thread a lane (the earlier configuration, which spilled from order 16)."""
    lti = _launcher("lti", "lti")
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

    torch.manual_seed(0)
    cases = []
    for order in (16, 32):
        R, T = s.r(32), s.t(1 << 18)
        x = torch.randn(R, T, device=s.dev)
        p = 0.9 * np.exp(1j * np.linspace(0.1, 3.0, order // 2))
        a = _poles_poly(np.concatenate([p, p.conj()]), s.dev)
        b = torch.full((1, order + 1), 0.05, device=s.dev)
        h = torch.zeros(R, 0, device=s.dev)
        cases.append(("lti_high", f"lti N=M={order} {s.tag(R, T)}", 8 * x.numel(), {
            "three-pass tiles": lambda x=x, b=b, a=a, h=h: lti(x, b, a, h),
            "three-pass, one thread a lane": lambda x=x, b=b, a=a, h=h: with_grid(
                one_thread_a_lane, lambda: lti(x, b, a, h))}))
    return cases


def diag_cases(s: Sizes) -> list:
    """The real first-order recurrence ``h[t] = a[t] h[t-1] + u[t]`` (``linear_recurrence``), and the
    same recurrence as an order-1 time-varying filter (``a`` negated, the time-varying single pass,
    which ran at 39% of copy at order 2 where the diagonal single pass ran at 8%)."""
    diagonal, time_varying = _launcher("diagonal", "diagonal"), _launcher("time_varying", "time_varying")
    torch.manual_seed(0)
    cases = []
    for R, Tc in ((s.r(32), s.t(1 << 20)), (1, s.t(1 << 24))):
        u = torch.randn(R, Tc, device=s.dev)
        ad = torch.rand(R, Tc, device=s.dev) * 0.1 + 0.899
        an = (-ad)[..., None]  # y[t] = u[t] - a1[t] y[t-1]
        cases.append(("diag", f"diag real {s.tag(R, Tc)}", 12 * u.numel(), {
            "single-pass": lambda u=u, ad=ad: diagonal(ad, u, single_pass=True),
            "three-pass tiles": lambda u=u, ad=ad: diagonal(ad, u, single_pass=False),
            "time-varying single pass, N=1": lambda u=u, an=an: time_varying(u, an, single_pass=True)}))
    return cases


def diag_adjoint_cases(s: Sizes) -> list:
    """The first-order adjoint ``(lam, da)``, and the order-1 time-varying adjoint on the negated
    ``a`` (its ``da`` negated back, one more torch op in the timed call)."""
    diagonal_adjoint = _launcher("diagonal", "diagonal_adjoint")
    tv_adjoint = _launcher("time_varying_adjoint", "time_varying_adjoint")

    def via_tv(g, an, hd):
        du, da = tv_adjoint(g, an, hd, single_pass=True)
        return torch.cat([du, -da[..., 0]])

    torch.manual_seed(0)
    cases = []
    for R, Tc in ((s.r(32), s.t(1 << 20)), (1, s.t(1 << 24))):
        g = torch.randn(R, Tc, device=s.dev)
        ad = torch.rand(R, Tc, device=s.dev) * 0.1 + 0.899
        hd = torch.randn(R, Tc, device=s.dev)
        an = (-ad)[..., None]
        cases.append(("diag_adjoint", f"diag adjoint (lam, da) {s.tag(R, Tc)}", 20 * g.numel(), {
            "single-pass": lambda g=g, ad=ad, hd=hd: torch.cat(diagonal_adjoint(ad, hd, g, False, single_pass=True)),
            "three-pass tiles": lambda g=g, ad=ad, hd=hd: torch.cat(
                diagonal_adjoint(ad, hd, g, False, single_pass=False)),
            "time-varying single pass, N=1": lambda g=g, an=an, hd=hd: via_tv(g, an, hd)}))
    return cases


def _butter16(s: Sizes):
    """Eight biquads of butter(16, 0.05) as [1, 8, 3] and [1, 8, 2], and a 32-row signal."""
    import scipy.signal as ss

    so = ss.butter(16, 0.05, output="sos")
    b8 = torch.tensor(so[:, :3], dtype=torch.float32, device=s.dev)[None]
    a8 = torch.tensor(so[:, 4:], dtype=torch.float32, device=s.dev)[None]
    torch.manual_seed(0)
    xs = torch.randn(s.r(32), s.t(1 << 20), device=s.dev)
    return b8, a8, xs


def _raw_sections(b8: torch.Tensor, a8: torch.Tensor) -> torch.Tensor:
    """``a8`` with each section's leading coefficient first, as ``sosfilt`` passes its sections
    (``monic=False``; butter's are 1, which the kernels still divide by)."""
    return torch.cat([torch.ones_like(a8[..., :1]), a8], -1)


def sos_cases(s: Sizes) -> list:
    lti, sos = _launcher("lti", "lti"), _launcher("sos", "sos")
    b8, a8, xs = _butter16(s)
    h0 = xs.new_zeros(xs.shape[0], 0)

    def per_section(single):
        y = xs
        for k in range(b8.shape[1]):
            y = lti(y, b8[:, k], a8[:, k], h0, single_pass=single)
        return y

    a8_raw = _raw_sections(b8, a8)
    return [("sos", f"sos 8 sections {s.tag(*xs.shape)}", 8 * xs.numel(), _f32_first({
        "single-pass": lambda: sos(xs, b8, a8),
        # sosfilt's call since late on 2026-11-28: a0 first, divided in registers (sm_90: the same 209
        # registers, 2152 static instructions against 2040); the power table's row gave it its place
        # (off by default since 2026-11-28, slower in every family it was timed in)
        "single-pass raw sections": lambda: sos(xs, b8, a8_raw, monic=False),
        "single-pass persistent": lambda: sos(xs, b8, a8, persistent=True),
        # every section repeats a tile's lane scan, look-back and start states, which 64-sample
        # lanes spread over twice the samples: since the evening of 2026-11-28 the GPU's float32
        # default (kernels/_variants.py, cascade_lane_length; 0.478 against 0.610 ms on an H200),
        # so "single-pass" is C=64 there and this row the 32-sample lanes it replaced
        "single-pass C=32": lambda: sos(xs, b8, a8, block_size=32),
        # lane loads (as the lti rows): 40 instructions a sample a section against 45.5, no spill
        "single-pass lane loads": lambda: sos(xs, b8, a8, lane_loads=True),
        "single-pass 128 lanes": lambda: sos(xs, b8, a8, lanes=128),
        # float32 lanes (64-sample by default): sm_90, 161 registers against 209, float64
        # instructions 235 against 683; at 32-sample lanes 103 registers against 134
        "single-pass float32 lanes": lambda: sos(xs, b8, a8, lane_float32=True),
        "single-pass float32 lanes C=32": lambda: sos(xs, b8, a8, lane_float32=True, block_size=32),
        "three-pass tiles": lambda: per_section(False),
        "single-pass per section": lambda: per_section(True)}))]


def sos_zi_cases(s: Sizes) -> list:
    """With every section's initial state (sosfilt with zi, each pass of sosfiltfilt): the fused launch
    with heads and ends against one lti launch a section with its head (what sosfilt ran before)."""
    lti, sos = _launcher("lti", "lti"), _launcher("sos", "sos")
    b8, a8, xs = _butter16(s)
    h8 = 0.1 * torch.randn(xs.shape[0], 8, 2, device=s.dev)
    e8 = torch.empty(8, xs.shape[0], 2, device=s.dev)

    def per_section(single):
        y = xs
        for k in range(b8.shape[1]):
            y = lti(y, b8[:, k], a8[:, k], h8[:, k], single_pass=single)
        return y

    return [("sos_zi", f"sos 8 sections with zi {s.tag(*xs.shape)}", 8 * xs.numel(), {
        "single-pass": lambda: sos(xs, b8, a8, head=h8, ends=e8),
        "single-pass, power table": lambda: sos(xs, b8, a8, head=h8, ends=e8, power_table=True),
        "three-pass tiles": lambda: per_section(False),
        "single-pass per section": lambda: per_section(True)})]


def sos_adjoint_cases(s: Sizes) -> list:
    lti, sos_adjoint = _launcher("lti", "lti"), _launcher("sos", "sos_adjoint")
    lti_adjoint = _launcher("lti_adjoint", "lti_adjoint")
    b8, a8, xs = _butter16(s)
    h0 = xs.new_zeros(xs.shape[0], 0)
    gs = torch.randn_like(xs)

    def per_section():  # the composition: recompute each input, one adjoint a section
        ins = [xs]
        for k in range(b8.shape[1] - 1):
            ins.append(lti(ins[-1], b8[:, k], a8[:, k], h0))
        outs = ins[1:] + [lti(ins[-1], b8[:, -1], a8[:, -1], h0)]
        g, parts = gs, []
        for k in reversed(range(b8.shape[1])):
            g, db, da, _ = lti_adjoint(g, ins[k], outs[k], b8[:, k], a8[:, k], 0, True, 3, 2)
            parts += [db.flatten(), da.flatten()]
        return torch.cat([g.flatten(), *parts])

    def fused(**kw):
        dx, db, da, _ = sos_adjoint(gs, xs, b8, a8, True, 3, 2, **kw)
        return torch.cat([dx.flatten(), *(t for k in reversed(range(b8.shape[1]))
                                          for t in (db[:, k].flatten(), da[:, k].flatten()))])

    # reads g, x, writes dx at the least (the recompute's stack moves S+1 more arrays twice)
    a8_raw = _raw_sections(b8, a8)

    def raw(**kw):
        """sosfilt's call since late on 2026-11-28 (the raw coefficients' gradients, ``a0``'s first; sosfilt
        also sums them over the rows after the kernels, which this leaves out to match the reference:
        with every ``a0`` 1 the other gradients are the normalized sections')."""
        dx, db, da, _ = sos_adjoint(gs, xs, b8, a8_raw, True, 3, 2, monic=False, **kw)
        return torch.cat([dx.flatten(), *(t for k in reversed(range(b8.shape[1]))
                                          for t in (db[:, k].flatten(), da[:, k, 1:].flatten()))])

    return [("sos_adjoint", f"sos backward 8 sections (dx, db, da) {s.tag(*xs.shape)}", 12 * xs.numel(), _f32_first({
        "single-pass": fused,
        # (sm_90: capped at 168 registers by default, 12 warps an SM as the normalized build; uncapped
        # 175 and 10; the power table's row gave it its place)
        "single-pass raw sections": raw,
        "single-pass C=8": lambda: fused(block_size=8),
        # both launches lane by lane: the adjoint 106.5 instructions a sample a section against 130 and
        # 168 registers against 218, the recompute 71 against 80.5 (sm_90, no spill)
        "single-pass lane loads": lambda: fused(lane_loads=True),
        # float32 lanes in both launches (sm_90: the adjoint's float64 instructions 251 against 443,
        # the recompute's 221 against 333, the same registers)
        "single-pass float32 lanes": lambda: fused(lane_float32=True),
        "three-pass tiles": per_section}))]


def coef_grads_cases(s: Sizes) -> list:
    coef_grads = _launcher("lti_coef_grads", "lti_coef_grads")
    torch.manual_seed(0)
    vg, xg, yg = (torch.randn(s.r(32), s.t(1 << 20), device=s.dev) for _ in range(3))

    def lagged_vecdots():  # the torch path the fused reduction replaced (ops._lagged_dot)
        T_ = vg.shape[1]
        return torch.stack([torch.linalg.vecdot(xg[:, : T_ - k], vg[:, k:]) for k in range(3)]
                           + [-torch.linalg.vecdot(yg[:, : T_ - k], vg[:, k:]) for k in (1, 2)], 1)

    return [("coef_grads", f"LTI coefficient grads (3 + 2 lags) {s.tag(*vg.shape)}", 12 * vg.numel(), {
        "single-pass": lambda: torch.cat(coef_grads(vg, xg, yg, 3, 2), 1),
        "three-pass tiles": lagged_vecdots})]


def lti_adjoint_cases(s: Sizes) -> list:
    """The whole LTI backward (dx, db, da): one launch against the composed ops (the adjoint v written
    and read back for the FIR and the reductions); 4 arrays move at the least."""
    lti, adjoint = _launcher("lti", "lti"), _launcher("lti_adjoint", "lti_adjoint")
    coef_grads = _launcher("lti_coef_grads", "lti_coef_grads")
    torch.manual_seed(0)
    cases = []
    for R, Tc, order in ((s.r(32), s.t(1 << 20), 2), (s.r(32), s.t(1 << 20), 4), (1, s.t(1 << 24), 2)):
        xa, ga = torch.randn(R, Tc, device=s.dev), torch.randn(R, Tc, device=s.dev)
        aa = _poles_poly([0.9] * order, s.dev)
        ba = torch.full((1, order + 1), 0.2, device=s.dev)
        ya = _once(lambda xa=xa, ba=ba, aa=aa: lti(xa, ba, aa, xa.new_zeros(xa.shape[0], 0)))

        def composed(g=ga, x=xa, y=ya, b=ba, a=aa):
            none = g.new_zeros(g.shape[0], 0)
            v = lti(g, g.new_ones(1, 1), a, none, reverse=True)
            dx = lti(v, b, a.new_zeros(1, 0), none, reverse=True)
            return torch.cat([dx.flatten(), *(t.flatten() for t in coef_grads(v, x, y(), b.shape[1], a.shape[1]))])

        def fused(g=ga, x=xa, y=ya, b=ba, a=aa, **kw):
            dx, db, da, _ = adjoint(g, x, y(), b, a, 0, True, b.shape[1], a.shape[1], **kw)
            return torch.cat([dx.flatten(), db.flatten(), da.flatten()])

        variants = {
            "single-pass": fused,
            "single-pass, power table": lambda f=fused: f(power_table=True),
            # 32-sample lanes: 255 registers a thread at order 2 and a spill at order 4 (kernel_resources)
            "single-pass C=32": lambda f=fused: f(block_size=32),
            # 128 lanes (4-warp programs): 2048-sample tiles at the same registers a thread, so a
            # tile's fixed latency (look-back, fences) is spread over twice the samples
            "single-pass 128 lanes": lambda f=fused: f(lanes=128),
            # g, x, y loaded and dx stored lane by lane (kernels/_lane_tiles.py; sm_90 per sample:
            # order 2 106 instructions against 115 and 96 registers against 128, order 4 162 against 178)
            "single-pass lane loads": lambda f=fused: f(lane_loads=True),
            # float32 lanes: v's recurrence, dx and a lane's sums in float32 (sm_90, order 2: 1864
            # instructions against 2040, float64 296 against 488, 121 registers); 32-sample lanes then
            # take 186 registers against 254 and 89.5 instructions a sample against 116.5
            "single-pass float32 lanes": lambda f=fused: f(lane_float32=True),
            "single-pass float32 lanes C=32": lambda f=fused: f(lane_float32=True, block_size=32),
            "three-pass tiles": composed}
        if order == 4:
            # answered at order 4 on an H200 (no faster), each a cold compile of about 30 s: see the forward
            for name in ("single-pass C=32", "single-pass 128 lanes", "single-pass lane loads",
                         "single-pass float32 lanes C=32"):
                del variants[name]
            # (32-sample lanes, 32 of them, one warp a tile, is the GPU's float32 default since
            # 2026-11-28: "single-pass" times it; the 16 x 64-lane tiles ran 0.591 against 0.420 ms)
        if R == 1:  # one row: the look-back chain 4x shorter, as for the forward
            variants["single-pass window 512"] = lambda f=fused: f(window_tiles=512)
        # what lfilter's backward launches since 2026-11-28: raw coefficients (a0 = 2 first, divided in
        # registers), every tile's share of the raw gradients formed in the kernel, one sum over the
        # tiles after it (a dozen small launches before). Per row here (lfilter also sums the rows in
        # that sum), and scaled back to the normalized filter's gradients (times a0) to match the rows
        def raw(g=ga, x=xa, y=ya, b=ba * 2.0, a=_raw(aa)):
            dx, db, da, _ = adjoint(g, x, y(), b, a, 0, True, b.shape[1], a.shape[1] - 1, monic=False)
            return torch.cat([dx.flatten(), (2.0 * db).flatten(), (2.0 * da[:, 1:]).flatten()])

        variants["single-pass, raw coefficients"] = raw
        cases.append(("lti_adjoint", f"lti backward (dx, db, da) N=M={order} {s.tag(R, Tc)}", 16 * xa.numel(),
                      _f32_first(variants)))
    return cases


def _swept_biquad(s: Sizes, R: int | None = None, T: int | None = None):
    """A resonant biquad swept slowly in time, [R, T, 2], and an R-row signal (8 x 2^20 by default)."""
    R, T = s.r(8) if R is None else R, s.t(1 << 20) if T is None else T
    th = 0.3 + 0.1 * torch.sin(torch.arange(T, device=s.dev) / 1000.0)
    at = torch.stack([-2 * 0.9 * torch.cos(th), torch.full_like(th, 0.81)], -1)[None].expand(R, -1, -1).contiguous()
    torch.manual_seed(0)
    return at, torch.randn(R, T, device=s.dev)


def tv_cases(s: Sizes) -> list:
    time_varying = _launcher("time_varying", "time_varying")
    at, u = _swept_biquad(s)
    return [("tv", f"time_varying N=2 {s.tag(*u.shape)}", (8 + 8) * u.numel(), {
        "single-pass": lambda: time_varying(u, at, single_pass=True),
        # the default before 2026-11-29: float32 carries for float32 data (sm_90: 95 registers and 20
        # warps an SM against 147 and 12; 7e-3 relative error on hard-mode resonators, float64 3e-8)
        "single-pass float32 carries": lambda: time_varying(u, at, single_pass=True, accumulate_fp64=False),
        # 8-step lanes with the float64 carries: sm_90, 96 registers and 20 warps an SM (the float32
        # carries' occupancy), 1560 static instructions against 2048, tiles of half the samples
        "single-pass C=8": lambda: time_varying(u, at, single_pass=True, block_size=8),
        # u, a and y moved lane by lane (kernels/_lane_tiles.py): sm_90, 1072 static instructions
        # against 1848 (the coalesced tiles' 64-bit element addresses and layout changes), 91 registers
        "single-pass lane loads": lambda: time_varying(u, at, single_pass=True, lane_loads=True),
        "three-pass tiles": lambda: time_varying(u, at, single_pass=False, coalesced=True)})]


def tv_adjoint_cases(s: Sizes) -> list:
    time_varying = _launcher("time_varying", "time_varying")
    tv_adjoint = _launcher("time_varying_adjoint", "time_varying_adjoint")

    def composed(g, a, z):  # the composed backward the fused one replaced (flipped g, skewed copies)
        from ssm_lfilter.ops import _tv_adjoint_composed

        v, da = _tv_adjoint_composed(g, a, z(), True)
        return torch.cat([v.flatten(), da.flatten()])

    def fused(g, a, z, **kw):
        du, da = tv_adjoint(g, a, z(), **kw)
        return torch.cat([du.flatten(), da.flatten()])

    cases = []
    # 8 rows, and one row of 2^24: there, capped at 128 registers, this build spills 8 bytes for sm_90
    # (its look-back window W = 128; uncapped 163 registers, no spill), where 8 rows (W = 32) keep every
    # value in registers
    for R, T in ((s.r(8), s.t(1 << 20)), (1, s.t(1 << 24))):
        at, u = _swept_biquad(s, R, T)
        zt = _once(lambda u=u, at=at: time_varying(u, at, single_pass=True))
        gt = torch.randn_like(u)
        # reads g, a (2), z; writes du, da (2): 7 arrays at the least
        cases.append(("tv_adjoint", f"time_varying backward (du, da) N=2 {s.tag(R, T)}", 28 * u.numel(), {
            "single-pass": lambda g=gt, a=at, z=zt: fused(g, a, z),
            # the default before 2026-11-29: float32 carries, capped at 128 registers (16 warps an SM;
            # the float64 carries take 155 uncapped, 12 warps, and spill 80 bytes capped at 128)
            "single-pass float32 carries": lambda g=gt, a=at, z=zt: fused(g, a, z, accumulate_fp64=False),
            # 8-step lanes, float64 carries: sm_90, 106 registers and 16 warps an SM, no spill
            "single-pass C=8": lambda g=gt, a=at, z=zt: fused(g, a, z, block_size=8),
            "three-pass tiles": lambda g=gt, a=at, z=zt: composed(g, a, z)}))
    # order 16 (LPC synthesis): per-row coefficients of 8 slowly drifting resonators a row; above order
    # 4 the backward is the reversed passes, against the composition it replaced (flipped g, skewed
    # copies of a and of z, the forward passes)
    T16 = s.t(1 << 18)
    th16 = 0.2 + 0.3 * torch.arange(8, device=s.dev) + 0.05 * torch.sin(torch.arange(T16, device=s.dev)[:, None] / 500.0)
    c16 = torch.ones(T16, 1, device=s.dev)
    for i in range(8):
        quad = torch.stack([torch.ones_like(th16[:, i]), -2 * 0.95 * torch.cos(th16[:, i]),
                            torch.full_like(th16[:, i], 0.95 ** 2)], -1)
        c16 = sum(torch.nn.functional.pad(c16 * quad[:, j:j + 1], (j, 2 - j)) for j in range(3))
    R16 = s.r(8)
    a16 = c16[None, :, 1:].expand(R16, -1, -1).contiguous()
    u16, g16 = torch.randn(R16, T16, device=s.dev), torch.randn(R16, T16, device=s.dev)
    z16 = _once(lambda: time_varying(u16, a16))
    # reads g, z, a (16); writes du, da (16): 35 arrays of the signal's size at the least
    cases.append(("tv_adjoint", f"time_varying backward (du, da) N=16 {s.tag(R16, T16)}", 4 * 35 * u16.numel(), {
        "fused passes": lambda: fused(g16, a16, z16),
        "fused passes, looped": lambda: fused(g16, a16, z16, coalesced=False),
        "three-pass tiles": lambda: composed(g16, a16, z16)}))
    return cases


def _swept_cascade(s: Sizes):
    """Eight swept biquads a row as time_varying_sosfilt passes them (views of one normalized
    [R, T, S, 6] tensor, per-row coefficients), and an 8-row signal."""
    T = s.t(1 << 20)
    ths = 0.3 + 0.1 * torch.sin(torch.arange(T, device=s.dev)[:, None] / 1000.0 + torch.arange(8, device=s.dev))
    sos_t = torch.stack([torch.full_like(ths, 0.2), torch.full_like(ths, 0.4), torch.full_like(ths, 0.2),
                         torch.ones_like(ths), -2 * 0.9 * torch.cos(ths), torch.full_like(ths, 0.81)], -1)
    sos_t = sos_t[None].expand(s.r(8), -1, -1, -1).contiguous()
    torch.manual_seed(0)
    return sos_t, torch.randn(s.r(8), T, device=s.dev)


def tv_sos_cases(s: Sizes) -> list:
    """The fused time-varying cascade against the per-section composition the public function ran
    before (a torch FIR, then the all-pole kernel, a section at a time)."""
    time_varying, tv_sos = _launcher("time_varying", "time_varying"), _launcher("tv_sos", "tv_sos")
    sos_t, xt = _swept_cascade(s)
    bs, as_ = sos_t[..., :3], sos_t[..., 4:]
    a_raw = sos_t[..., 3:]  # a0 (1 here) first: what the public functions pass (the kernel divides)

    def per_section(single, bs=bs, as_=as_):
        w = xt
        for k in range(bs.shape[2]):
            bk = bs[:, :, k]
            u_ = bk[:, :, 0] * w
            for j in (1, 2):
                u_ = u_ + bk[:, :, j] * torch.cat([w.new_zeros(w.shape[0], j), w[:, :-j]], 1)
            w = time_varying(u_, as_[:, :, k], single_pass=single)
        return w

    tag = s.tag(*xt.shape)
    # the signal read and written once, each row's coefficients (24 bytes a section a step) read once
    cases = [("tv_sos", f"time_varying_sosfilt 8 sections {tag}", 8 * xt.numel() + sos_t.numel() * 4, {
        "single-pass": lambda: tv_sos(xt, bs, as_),
        "three-pass tiles": lambda: per_section(False),
        "single-pass per section": lambda: per_section(True),
        "single-pass C=8": lambda: tv_sos(xt, bs, as_, block_size=8),
        "single-pass unnormalized": lambda: tv_sos(xt, bs, a_raw, monic=False)})]
    # one section: time_varying_lfilter with per-sample b (the public function runs it fused)
    b1, a1 = bs[:, :, :1], as_[:, :, :1]
    cases.append(("tv_sos", f"time_varying_lfilter per-sample b, order 2, {tag}", 28 * xt.numel(), {
        "single-pass": lambda: tv_sos(xt, b1, a1),
        "three-pass tiles": lambda: per_section(False, b1, a1),
        "single-pass per section": lambda: per_section(True, b1, a1),
        "single-pass unnormalized": lambda: tv_sos(xt, b1, a_raw[:, :, :1], monic=False)}))
    return cases


def tv_sos_adjoint_cases(s: Sizes) -> list:
    """The cascade's backward (the forward recomputing every section's input, then the adjoints), its
    recompute capped at 128 registers (236 uncapped, sm_90) or not, and with the raw sections (``a0``
    first, 4-step lanes: what ``time_varying_sosfilt`` runs) or the normalized ones: a configuration
    comparison (no three-pass reference, so no single-pass verdict)."""
    tv_sos_adjoint = _launcher("tv_sos", "tv_sos_adjoint")
    sos_t, xt = _swept_cascade(s)
    bs, as_ = sos_t[..., :3], sos_t[..., 4:]
    gs = torch.randn_like(xt)
    return [("tv_sos_adjoint", f"time_varying_sosfilt backward 8 sections {s.tag(*xt.shape)}",
             4 * xt.numel() * (2 + 3 * 8) + 2 * sos_t.numel() * 4, {
                 "fused": lambda: tv_sos_adjoint(gs, xt, bs, as_)[0],
                 "fused, no register cap": lambda: tv_sos_adjoint(gs, xt, bs, as_, register_cap=False)[0],
                 "fused unnormalized": lambda: tv_sos_adjoint(gs, xt, bs, sos_t[..., 3:], monic=False)[0]})]


def public_cases(s: Sizes) -> list:
    """``lfilter`` itself at the suite's LTI shapes (one filter shared by the rows, raw coefficients with
    ``a0`` first, float32), and ``sosfilt`` at its 8-section shape: forward, and forward + backward for
    every input, whatever kernels and host work the public function runs; each also with float32
    lanes (``SSM_LFILTER_LANE_FLOAT32=1``). Timed like every row here, and compiled by the workers, so
    the suite (``gpu_lti``, ``gpu_torchaudio``, ``gpu_long``) meets no cold compile of these kernels."""
    import ssm_lfilter as sl

    torch.manual_seed(0)
    cases = []
    for R, Tc, order in ((s.r(32), s.t(1 << 20), 1), (s.r(32), s.t(1 << 20), 2), (s.r(32), s.t(1 << 20), 3),
                         (s.r(32), s.t(1 << 20), 4), (s.r(8), s.t(1 << 20), 2), (1, s.t(1 << 24), 2),
                         (1, s.t(1 << 24), 1)):
        x, g = torch.randn(R, Tc, device=s.dev), torch.randn(R, Tc, device=s.dev)
        a = _raw(_poles_poly([0.9] * order, s.dev))[0]
        b = torch.full((order + 1,), 0.4, device=s.dev)
        xg, bg, ag = (t.clone().requires_grad_() for t in (x, b, a))

        def forward(x=x, b=b, a=a):
            with torch.no_grad():
                return sl.lfilter(b, a, x)

        def train(x=xg, b=bg, a=ag, g=g):
            return torch.cat([t.flatten() for t in torch.autograd.grad(sl.lfilter(b, a, x), (x, b, a), g)])

        # the same calls with float32 lanes in every kernel they launch (SSM_LFILTER_LANE_FLOAT32=1)
        cases.append(("public", f"lfilter forward N=M={order} {s.tag(R, Tc)}", 8 * x.numel(),
                      {"public": forward, "public, float32 lanes": _with_env(forward, SSM_LFILTER_LANE_FLOAT32="1")}))
        cases.append(("public", f"lfilter forward + backward (x, b, a) N=M={order} {s.tag(R, Tc)}", 24 * x.numel(),
                      {"public": train, "public, float32 lanes": _with_env(train, SSM_LFILTER_LANE_FLOAT32="1")}))
    # sosfilt at the suite's gpu_sos8 shape (eight biquads of butter(16, 0.05), one sos for every row)
    b8, a8, xs = _butter16(s)
    sos = torch.cat([b8[0], torch.ones_like(a8[0, :, :1]), a8[0]], 1)
    xg, sg, gs = xs.clone().requires_grad_(), sos.clone().requires_grad_(), torch.randn_like(xs)

    def sos_forward():
        with torch.no_grad():
            return sl.sosfilt(sos, xs)

    def sos_train():
        return torch.cat([t.flatten() for t in torch.autograd.grad(sl.sosfilt(sg, xg), (xg, sg), gs)])

    cases.append(("public", f"sosfilt forward 8 sections {s.tag(*xs.shape)}", 8 * xs.numel(),
                  {"public": sos_forward, "public, float32 lanes": _with_env(sos_forward, SSM_LFILTER_LANE_FLOAT32="1")}))
    cases.append(("public", f"sosfilt forward + backward (x, sos) 8 sections {s.tag(*xs.shape)}", 24 * xs.numel(),
                  {"public": sos_train, "public, float32 lanes": _with_env(sos_train, SSM_LFILTER_LANE_FLOAT32="1")}))
    return cases


def _f32_first(variants: dict) -> dict:
    """``variants`` with the default ("single-pass"), the cascades' raw sections (what ``sosfilt`` runs)
    and the float32-lane rows first: a family stopped by its time budget has timed them (the question of
    the 2026-11-28 evening's variants)."""
    first = [k for k in ("single-pass", "single-pass raw sections", "single-pass float32 lanes",
                         "single-pass float32 lanes C=64",
                         "single-pass float32 lanes C=32") if k in variants]
    return {**{k: variants[k] for k in first}, **{k: v for k, v in variants.items() if k not in first}}


def _with_env(fn, **env):
    """``fn`` run with the environment variables ``env`` set (the kernels' switches read at each call),
    then restored."""
    def run():
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            return fn()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return run


# the table's order; ``--families`` picks from these names
BUILDERS = {
    "lti": lti_cases, "lti_high": lti_high_cases, "diag": diag_cases, "diag_adjoint": diag_adjoint_cases,
    "sos": sos_cases, "sos_zi": sos_zi_cases, "sos_adjoint": sos_adjoint_cases, "coef_grads": coef_grads_cases,
    "lti_adjoint": lti_adjoint_cases, "tv": tv_cases, "tv_adjoint": tv_adjoint_cases, "tv_sos": tv_sos_cases,
    "tv_sos_adjoint": tv_sos_adjoint_cases, "public": public_cases,
}


def variant_cases(dev: str = "cuda", families: list[str] | None = None, shrink: int = 1,
                  rows: int | None = None) -> list:
    """The cases of the named families in the order named (so the compile workers take the first
    named first, as the table times them), or of all in the table's order."""
    unknown = sorted(set(families or ()) - set(BUILDERS))
    if unknown:
        raise ValueError(f"families: expected names from {sorted(BUILDERS)}, got {unknown}")
    sizes = Sizes(dev, shrink, rows)
    names = list(dict.fromkeys(families)) if families is not None else list(BUILDERS)
    return [case for fam in names for case in BUILDERS[fam](sizes)]
