"""Tests of the LTI Triton launcher ``ssm_lfilter.kernels.lti.lti``.

On CPU the kernels run under TRITON_INTERPRET=1 (set by conftest.py), with tiny ``block_size`` /
``scan_block`` so short signals cross many chunk and segment boundaries and every level of the
hierarchical carry scan. The real-size checks are marked ``gpu`` and run on CUDA only.
"""
import importlib

import numpy as np
import pytest
import scipy.signal as ss
import torch

from helpers import scipy_lti
from ssm_lfilter import reference
from ssm_lfilter.kernels import lti as _lti_launcher
from ssm_lfilter.kernels._host import next_pow2 as _next_pow2
from ssm_lfilter.kernels.lti import _tile_log

lti = _lti_launcher

RNG = np.random.default_rng(1234)


@pytest.fixture(autouse=True, params=["single_pass", "coalesced", "looped"])
def coalesced(request, monkeypatch):
    """Every test runs on the three kernel paths: the single-pass look-back kernel (``N`` in 1..4,
    ``M <= 4``, ``block_size`` a power of two in [2, 64]), the coalesced three-pass tile kernel and the
    looped three-pass kernel. Where a path does not apply the launcher runs another one, so that
    variant skips the test instead of repeating it."""
    variant = request.param

    def run(x, b, a, head, *, block_size=None, scan_block=None, **kw):
        M, N = b.shape[-1] - 1, a.shape[-1]
        C = block_size if block_size is not None else (32 if _next_pow2(max(N, 1)) <= 8 else 4 * _next_pow2(N))
        shapes_ok = x.dim() == 2 and b.dim() == 2 and a.dim() == 2
        tiled = shapes_ok and _tile_log(int(C), M, N)
        if variant == "single_pass" and shapes_ok and not (tiled and 1 <= N <= 4):
            pytest.skip("the single-pass kernel does not cover this case (another variant runs it)")
        if variant == "looped" and shapes_ok and not tiled:
            pytest.skip("the coalesced variant already ran the looped kernel here")
        return _lti_launcher(x, b, a, head, block_size=block_size, scan_block=scan_block,
                             coalesced=variant != "looped", single_pass=variant == "single_pass", **kw)
    monkeypatch.setitem(globals(), "lti", run)
    return variant


def _poly_from_poles(poles):
    return np.real(np.atleast_1d(np.poly(poles)))[1:]


def _stable_a(rows, n, rmin=0.3, rmax=0.95, rng=RNG):
    """Normalized denominators [rows, n] with random poles of radius in [rmin, rmax]."""
    out = []
    for _ in range(rows):
        poles = []
        while len(poles) < n:
            rad = rng.uniform(rmin, rmax)
            if n - len(poles) >= 2:
                z = rad * np.exp(1j * rng.uniform(0.05, np.pi - 0.05))
                poles += [z, np.conj(z)]
            else:
                poles.append(rad * rng.choice([-1.0, 1.0]))
        out.append(_poly_from_poles(poles))
    return torch.tensor(np.array(out, dtype=np.float64).reshape(rows, n))


def _scipy_ref(x, b, a, head):
    """float64 oracle: FIR by scipy, plus head, then the all-pole part by scipy."""
    return scipy_lti(x, b, a, head)


def _rel_err(y, y_ref):
    y = y.detach().cpu().double().numpy()
    scale = max(np.abs(y_ref).max(), 1e-300) if y_ref.size else 1.0
    return np.abs(y - y_ref).max() / scale if y_ref.size else 0.0


def _make(R, T, M, N, K, shared, dtype, device="cpu", rmax=0.95):
    seed = R * 1000 + T * 7 + M * 13 + N * 17 + K
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(R, T, generator=g, dtype=torch.float64)
    rc = 1 if shared else R
    b = torch.randn(rc, M + 1, generator=g, dtype=torch.float64)
    a = _stable_a(rc, N, rmax=rmax, rng=np.random.default_rng(seed))
    head = torch.randn(R, K, generator=g, dtype=torch.float64)
    return [t.to(dtype=dtype, device=device) for t in (x, b, a, head)]


def _tol(dtype, N=0):
    # direct forms of order > 8 with random poles are ill-conditioned: scipy itself is off by ~1e-13
    # blockwise carries add about eps64 * max_k |A^k| (|A^k| up to ~1e4 for these order-8 filters)
    if dtype == torch.float64:
        return 1e-11 if N <= 8 else 1e-10
    return 2e-6


@pytest.mark.parametrize("shared,dtype", [(True, torch.float64), (False, torch.float64), (False, torch.float32)])
@pytest.mark.parametrize("M,N", [(0, 0), (5, 0), (2, 1), (2, 2), (1, 3), (4, 4), (3, 5), (8, 8), (6, 17), (2, 32)])
def test_matches_scipy(M, N, shared, dtype):
    R, T, K = 3, 67, 3
    # radius <= 0.7 keeps order-32 direct-form coefficients O(10); see docs/kernels.md on conditioning
    x, b, a, head = _make(R, T, M, N, K, shared, dtype, rmax=0.95 if N <= 8 else 0.7)
    # power-of-two chunks run the coalesced tile kernel for M, N <= 4; odd ones the looped kernel
    y = lti(x, b, a, head, block_size=4 if max(M, N) <= 4 else 5, scan_block=2)
    assert y.shape == (R, T) and y.dtype == dtype
    assert _rel_err(y, _scipy_ref(x, b, a, head)) < _tol(dtype, N)


@pytest.mark.parametrize("N", [2, 8])
@pytest.mark.parametrize("T", [0, 1, 7, 8, 9, 23, 8 * 3 * 3 + 1, 8 * 3 ** 3 + 5])
def test_lengths_cross_blocks(T, N):
    # block 8 and scan_block 3: T = 73 and 221 need two and three levels of the carry scan
    x, b, a, head = _make(2, T, 2, N, 2, False, torch.float64)
    y = lti(x, b, a, head, block_size=8, scan_block=3)
    assert y.shape == (2, T)
    assert _rel_err(y, _scipy_ref(x, b, a, head)) < _tol(torch.float64, 8)


@pytest.mark.parametrize("M,N,K,C,T", [(2, 2, 5, 2, 37), (4, 4, 40, 2, 50), (1, 3, 0, 16, 100), (0, 0, 3, 4, 30),
                                       (3, 1, 70, 64, 300), (2, 2, 0, 32, 600)])
def test_paths_bitwise_equal(M, N, K, C, T, coalesced):
    """The coalesced tile kernel and the looped kernel run the same operations in the same order:
    bitwise-equal results under the interpreter (1e-12 relative on a GPU, where FMA contraction may
    differ). Covers C < N, C = 64, the head and the FIR halo across chunk and program boundaries."""
    if not coalesced:
        pytest.skip("compares both paths itself")
    for dtype in (torch.float64, torch.float32):
        x, b, a, head = _make(3, T, M, N, K, False, dtype)
        y1 = _lti_launcher(x, b, a, head, block_size=C, scan_block=2, coalesced=True, single_pass=False)
        y0 = _lti_launcher(x, b, a, head, block_size=C, scan_block=2, coalesced=False, single_pass=False)
        if x.device.type == "cpu":
            assert torch.equal(y0, y1)
        else:
            torch.testing.assert_close(y1, y0, rtol=1e-12 if dtype == torch.float64 else 1e-6, atol=0)


@pytest.mark.parametrize("M,N,K,C,lanes,W,T", [
    (2, 2, 0, 4, 2, 2, 203),     # 26 tiles of 8 samples: many window links
    (4, 4, 9, 2, 4, 4, 129),     # tile = 8 samples + 1: the last tile holds one sample
    (0, 1, 3, 8, 2, 8, 160),     # window wider than the tiles before it
    (3, 3, 0, 16, 4, 2, 64),     # exactly 1 tile
    (1, 2, 70, 2, 8, 2, 97),     # head longer than several tiles
    (2, 4, 0, 2, 2, 1, 45),      # window of one tile: a pure chain of inclusive states
])
def test_single_pass_window_links(M, N, K, C, lanes, W, T, coalesced):
    """The single-pass kernel with forced tiny tiles and windows: every lane, tile, window and anchor
    boundary is crossed; it matches scipy and the three-pass kernels (the carries are grouped
    differently, so to rounding, not bitwise), and two runs are bitwise equal."""
    if coalesced != "single_pass":
        pytest.skip("compares the variants itself")
    for dtype in (torch.float64, torch.float32):
        x, b, a, head = _make(2, T, M, N, K, False, dtype, rmax=0.99)
        y = _lti_launcher(x, b, a, head, block_size=C, single_pass=True, lanes=lanes, window_tiles=W)
        y3 = _lti_launcher(x, b, a, head, block_size=C, single_pass=False)
        assert _rel_err(y, _scipy_ref(x, b, a, head)) < _tol(dtype, N)
        torch.testing.assert_close(y, y3, rtol=1e-12 if dtype == torch.float64 else 1e-6, atol=1e-12)
        y_again = _lti_launcher(x, b, a, head, block_size=C, single_pass=True, lanes=lanes, window_tiles=W)
        assert torch.equal(y, y_again)


@pytest.mark.parametrize("kw", [dict(lanes=3), dict(lanes=1), dict(window_tiles=0), dict(window_tiles=6)])
def test_single_pass_rejects_bad_tiles(kw):
    x, b, a, head = _make(1, 40, 2, 2, 0, False, torch.float64)
    with pytest.raises(ValueError, match="power of two"):
        _lti_launcher(x, b, a, head, block_size=4, single_pass=True, **kw)


@pytest.mark.parametrize("M,N,K,C,T", [(2, 2, 3, 4, 101), (4, 4, 0, 2, 77), (1, 1, 70, 8, 50), (5, 6, 2, 4, 60),
                                       (0, 0, 3, 4, 30)])
def test_reverse_is_the_flipped_filter(M, N, K, C, T, coalesced):
    """``reverse=True`` runs the filter backwards in time: exactly ``flip(lti(flip(x)))`` with the head
    in processing order. The single-pass kernel reads the reversed indices in place, the three-pass
    kernels through negated time strides: bitwise the same as on a flipped copy, strided input too."""
    x, b, a, head = _make(2, T, M, N, K, False, torch.float64)
    kw = dict(block_size=C, lanes=2, window_tiles=2) if coalesced == "single_pass" else dict(block_size=C)
    y = lti(x, b, a, head, reverse=True, **kw)
    y_flip = lti(x.flip(1), b, a, head, **kw).flip(1)
    assert torch.equal(y, y_flip)
    x_strided = torch.stack([x, torch.full_like(x, float("nan"))], -1)[..., 0]  # time stride 2
    assert torch.equal(lti(x_strided, b, a, head, reverse=True, **kw), y_flip)
    ref = np.flip(_scipy_ref(x.flip(1), b, a, head), 1)
    assert _rel_err(y, ref) < _tol(torch.float64, N)


@pytest.mark.parametrize("C", [1, 2, 3, 16])
def test_block_shorter_than_order(C):
    # chunks shorter than the state (C < N): the carry must shift old outputs through A^C
    x, b, a, head = _make(2, 41, 3, 8, 0, True, torch.float64)
    y = lti(x, b, a, head, block_size=C, scan_block=2)
    assert _rel_err(y, _scipy_ref(x, b, a, head)) < _tol(torch.float64, 8)


def test_default_block_sizes():
    for N, T in ((2, 700), (17, 600)):
        x, b, a, head = _make(2, T, 2, N, 4, False, torch.float64, rmax=0.9)
        y = lti(x, b, a, head)
        assert _rel_err(y, _scipy_ref(x, b, a, head)) < _tol(torch.float64, N)


@pytest.mark.parametrize("M,N", [(16, 16), (32, 32), (0, 33)])
def test_gpu_lane_spread_of_wide_orders(M, N, monkeypatch):
    """The chunk passes' GPU configuration (kernels/lti.py, _chunk_grid: few lanes a program where the
    per-step tiles are wider than 32, one thread a lane up to 32) gives scipy's result too, run here
    under the interpreter."""
    L = importlib.import_module("ssm_lfilter.kernels.lti")  # the module (the package exports a function lti)
    real = L._chunk_grid
    seen = []
    def gpu_grid(lanes, MP, NP, gpu):
        seen.append((max(MP, NP), *real(lanes, MP, NP, True)))
        return seen[-1][1:]

    monkeypatch.setattr(L, "_chunk_grid", gpu_grid)
    x, b, a, head = _make(2, 300, M, N, 3, False, torch.float64, rmax=0.9)
    y = lti(x, b, a, head)
    wide = [(block, nw) for width, block, nw in seen if width > 32]
    assert all(nw == 4 and block <= 16 for block, nw in wide), seen  # 1024 // width lanes, 4 warps
    assert len(wide) >= 2 if max(M + 1, N) > 32 else not wide, seen
    assert _rel_err(y, _scipy_ref(x, b, a, head)) < _tol(torch.float64, N)


@pytest.mark.parametrize("K", [1, 4, 30, 200])
def test_head(K):
    # head acts as an extra input for n < K; K > T leaves the rest unused
    x, b, a, head = _make(2, 30, 2, 3, K, False, torch.float64)
    y = lti(x, b, a, head, block_size=4, scan_block=2)
    assert _rel_err(y, _scipy_ref(x, b, a, head)) < _tol(torch.float64, 8)
    y0 = lti(x, b, a, head[:, :0], block_size=4, scan_block=2)
    assert (y - y0).abs().max() > 1e-3  # the head is not ignored


def test_matches_reference_oracle():
    # the project's sequential TDF-II oracle, with scipy's a0 convention (a0 = 1 prepended)
    x, b, a, head = _make(2, 50, 3, 4, 0, False, torch.float64)
    y = lti(x, b, a, head, block_size=6, scan_block=2)
    a_full = torch.cat([torch.ones(2, 1, dtype=a.dtype), a], 1)
    y_ref, _ = reference.lfilter(b, a_full, x)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("N", [2, 8])
def test_noncontiguous(N):
    R, T, M, K = 3, 45, 3, 5
    xt = torch.randn(T, R, dtype=torch.float64)
    x = xt.t()  # strides (1, R)
    b_big = torch.randn(R, 2 * (M + 1), dtype=torch.float64)
    b = b_big[:, ::2]  # stride 2 along taps
    a_big = torch.cat([_stable_a(R, N), torch.randn(R, N, dtype=torch.float64)], 1)
    a = a_big[:, :N]  # row stride 2N
    head = torch.randn(K, R, dtype=torch.float64).t()
    assert not (x.is_contiguous() or b.is_contiguous() or a.is_contiguous() or head.is_contiguous())
    y = lti(x, b, a, head, block_size=4, scan_block=2)
    y_c = lti(x.contiguous(), b.contiguous(), a.contiguous(), head.contiguous(), block_size=4, scan_block=2)
    assert torch.equal(y, y_c)
    assert _rel_err(y, _scipy_ref(x, b, a, head)) < _tol(torch.float64, 8)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("radius", [0.99, 0.999])
def test_hard_mode_poles_near_unit_circle(radius, dtype):
    T = 1500
    rows = []
    for th in (0.01, 0.3, 2.5):
        p = radius * np.exp(1j * th)
        rows.append(_poly_from_poles([p, np.conj(p)]))
    a = torch.tensor(np.array(rows)).to(dtype)
    b = torch.tensor([[1.0, -0.5, 0.25]], dtype=dtype)
    x = torch.randn(3, T, generator=torch.Generator().manual_seed(3), dtype=torch.float64).to(dtype)
    head = torch.zeros(3, 0, dtype=dtype)
    y = lti(x, b, a, head)  # default blocks: 47 chunks, two scan levels
    # poles at 0.999 near z = 1 amplify rounding ~1e5 times: scipy's float64 is itself off by ~1e-11
    tol = 1e-9 if dtype == torch.float64 else 1e-6
    assert _rel_err(y, _scipy_ref(x, b, a, head)) < tol


@pytest.mark.parametrize("block_size", [16, None])
def test_cheby1_order8_float32_no_worse_than_sequential(block_size):
    # design notes §1: blockwise float32 correction factors give errors up to 12 here
    b64, a64 = ss.cheby1(8, 1, 0.2)
    b32, a32 = b64.astype(np.float32), a64.astype(np.float32)
    a32n = (a32[1:] / a32[0]).astype(np.float32)
    b32n = (b32 / a32[0]).astype(np.float32)
    T = 2048
    x32 = np.random.default_rng(7).standard_normal((1, T)).astype(np.float32)
    exact = ss.lfilter(b32n.astype(np.float64), np.r_[1.0, a32n.astype(np.float64)], x32[0].astype(np.float64))
    seq32 = ss.lfilter(b32n, np.r_[np.float32(1), a32n], x32[0])
    assert seq32.dtype == np.float32
    err_seq = np.abs(seq32 - exact).max() / np.abs(exact).max()
    y = lti(torch.from_numpy(x32), torch.from_numpy(b32n)[None], torch.from_numpy(a32n)[None],
            torch.zeros(1, 0), block_size=block_size)
    assert y.dtype == torch.float32
    err = np.abs(y[0].double().numpy() - exact).max() / np.abs(exact).max()
    assert err <= err_seq
    assert err < 1e-6  # float64 state: only the final rounding to float32 remains


def test_half_precision_upcast():
    x, b, a, head = _make(2, 33, 2, 2, 0, True, torch.float64)
    y = lti(x.to(torch.float16), b.float(), a.float(), head.float(), block_size=4, scan_block=2)
    assert y.dtype == torch.float16
    ref = _scipy_ref(x.to(torch.float16), b.float(), a.float(), head)
    assert _rel_err(y, ref) < 2e-3


def test_complex_and_bad_shapes_raise():
    x = torch.randn(2, 10, dtype=torch.complex64)
    with pytest.raises(TypeError, match="complex64"):
        lti(x, torch.ones(1, 1, dtype=torch.complex64), torch.zeros(1, 1, dtype=torch.complex64),
            torch.zeros(2, 0, dtype=torch.complex64))
    x = torch.randn(2, 10)
    with pytest.raises(ValueError):
        lti(x, torch.ones(3, 2), torch.zeros(1, 1), torch.zeros(2, 0))
    with pytest.raises(ValueError):
        lti(x, torch.ones(1, 2), torch.zeros(3, 1), torch.zeros(2, 0))


def test_deterministic():
    x, b, a, head = _make(2, 300, 2, 8, 3, False, torch.float32)
    y1 = lti(x, b, a, head, block_size=8, scan_block=4)
    y2 = lti(x, b, a, head, block_size=8, scan_block=4)
    assert torch.equal(y1, y2)


# ---------------------------------------------------------------- GPU tier (real sizes, CUDA only)

@pytest.mark.gpu
@pytest.mark.parametrize("N", [2, 8])
def test_gpu_long_single_row(N):
    T = 2 ** 24
    x, b, a, head = _make(1, T, 2, N, 3, True, torch.float32, device="cuda")
    y = lti(x, b, a, head)
    torch.cuda.synchronize()
    assert _rel_err(y, _scipy_ref(x, b, a, head)) < 2e-6


@pytest.mark.gpu
@pytest.mark.parametrize("R,T", [(1, 2 ** 24), (32, 2 ** 20), (3000, 999)])
def test_gpu_single_pass_matches_three_pass(R, T, coalesced):
    # the look-back kernel at real sizes and default tiles/windows: same result as the three passes
    # (to rounding), the same bits on every run (no timing-dependent combine order)
    if coalesced != "single_pass":
        pytest.skip("compares the variants itself")
    x, b, a, head = _make(R, T, 2, 2, 0, False, torch.float32, device="cuda", rmax=0.999)
    y = _lti_launcher(x, b, a, head, single_pass=True)
    y3 = _lti_launcher(x, b, a, head, single_pass=False)
    torch.testing.assert_close(y, y3, rtol=1e-5, atol=1e-5 * y3.abs().max().item())
    assert torch.equal(y, _lti_launcher(x, b, a, head, single_pass=True))


@pytest.mark.gpu
def test_gpu_many_short_rows():
    x, b, a, head = _make(20000, 300, 2, 4, 2, False, torch.float32, device="cuda")
    y = lti(x, b, a, head)
    idx = torch.tensor([0, 1, 7777, 19999])
    ref = _scipy_ref(x[idx], b[idx], a[idx], head[idx])
    assert _rel_err(y[idx], ref) < 2e-6


@pytest.mark.gpu
def test_gpu_more_than_2_31_elements():
    # R*T > 2**31: int32 offsets would wrap in row 1. Poles at radius 0.5 forget their past within
    # ~100 samples, so the end of each row can be checked against scipy on its last samples.
    R, T, W = 2, 2 ** 30 + 17, 4096
    x = torch.randn(R, T, device="cuda")
    b = torch.tensor([[0.5, 0.25]], device="cuda")
    p = 0.5 * np.exp(0.7j)
    a = torch.tensor([_poly_from_poles([p, np.conj(p)])], dtype=torch.float32, device="cuda")
    y = lti(x, b, a, torch.zeros(R, 0, device="cuda"))
    for r in range(R):
        for lo in (0, T // 2, T - W):
            seg = x[r:r + 1, max(lo - 1, 0):lo + W]
            ref = _scipy_ref(seg, b, a, torch.zeros(1, 0))[:, (1 if lo else 0):]
            # skip the first 200 samples after a cut: the true past was not in `seg`
            s = 0 if lo == 0 else 200
            assert _rel_err(y[r:r + 1, lo + s:lo + W], ref[:, s:]) < 1e-5


@pytest.mark.gpu
def test_gpu_biquad_radius_0999_float32():
    T = 10 ** 6
    p = 0.999 * np.exp(0.05j)
    a64 = _poly_from_poles([p, np.conj(p)])
    a = torch.tensor([a64], dtype=torch.float32, device="cuda")
    b = torch.tensor([[1.0, 0.0, -1.0]], device="cuda")
    x = torch.randn(1, T, device="cuda")
    y = lti(x, b, a, torch.zeros(1, 0, device="cuda"))
    ref = _scipy_ref(x, b, a, torch.zeros(1, 0))
    assert _rel_err(y, ref) < 1e-4
