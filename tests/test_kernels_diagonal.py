"""Triton kernel ``kernels/diagonal.py`` (the ``ssm_lfilter::diag`` op) against the sequential oracle
``ssm_lfilter.reference.linear_recurrence``.

On CPU the kernels run under ``TRITON_INTERPRET=1`` (set by conftest before the kernels are defined).
Tiny ``block_size`` values force many chunk boundaries, so the carry scan and the correction pass are
exercised on short signals. Both variants run: the single pass (``single_pass=True``, here with a
forced look-back window ``W = 2`` so that most tiles cross several window links) and the multi-pass
kernels. GPU-tier tests (``@pytest.mark.gpu``) check the launch geometry at scale.
(The adjoint kernel is tested in ``test_diag_adjoint.py``.)
"""
import numpy as np
import pytest
import torch

from helpers import rand_a
from ssm_lfilter.kernels.diagonal import diagonal
from ssm_lfilter.reference import linear_recurrence

pytestmark = pytest.mark.interpreter

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
BS = 8  # forced chunk length for the interpreter tests
TOL = {torch.float64: 1e-12, torch.complex128: 1e-12, torch.float32: 2e-5, torch.complex64: 2e-5}
WINDOW = 2  # forced look-back window of the single pass: one serial link every 2 chunks
VARIANTS = pytest.mark.parametrize("single_pass", [True, False], ids=["single", "multi"])


def rand_u(shape, dtype, gen=None):
    return torch.randn(shape, dtype=dtype, generator=gen)


def reference(a, u, reverse=False):
    """Float64 (complex128) oracle on the already-rounded inputs."""
    wide = torch.complex128 if (a.is_complex() or u.is_complex()) else torch.float64
    if u.shape[-1] == 0:  # the oracle indexes u[..., 0]
        return u.to(wide)
    return linear_recurrence(a.to(wide), u.to(wide), reverse=reverse)


def check(a, u, reverse=False, block_size=BS, tol=None, single_pass=True, window=WINDOW, **kw):
    if not single_pass:
        window = None
    h = diagonal(a.to(DEVICE), u.to(DEVICE), reverse, block_size=block_size, single_pass=single_pass,
                 window=window, **kw).cpu()
    ref = reference(a, u, reverse)
    assert h.shape == u.shape
    assert h.dtype == torch.promote_types(a.dtype, u.dtype)
    tol = TOL[h.dtype] if tol is None else tol
    scale = max(1.0, ref.abs().max().item()) if ref.numel() else 1.0
    err = (h.to(ref.dtype) - ref).abs().max().item() if ref.numel() else 0.0
    assert err <= tol * scale, f"max error {err:.3e} > {tol:.1e} * {scale:.3e}"
    return h


# --------------------------------------------------------------------------------- lengths and dtypes
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.complex128, torch.complex64])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("T", [0, 1, BS - 1, BS, BS + 1, 37, 5 * BS + 3])
@VARIANTS
def test_lengths_dtypes(dtype, reverse, T, single_pass):
    g = torch.Generator().manual_seed(T + 100 * reverse)
    check(rand_a((3, T), dtype, gen=g), rand_u((3, T), dtype, gen=g), reverse, single_pass=single_pass)


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex64])
@pytest.mark.parametrize("block_size", [1, 2, 3, 5, 16])
@VARIANTS
def test_block_sizes(dtype, block_size, single_pass):
    """Any chunk length works, including non-powers of two and 1 (a chunk per sample)."""
    g = torch.Generator().manual_seed(block_size)
    check(rand_a((2, 29), dtype, gen=g), rand_u((2, 29), dtype, gen=g), block_size=block_size,
          single_pass=single_pass)


@VARIANTS
def test_default_block_size_several_chunks(single_pass):
    """The default chunk (4096 single pass, 2048 multi-pass) with a signal longer than one chunk, the
    default window, and several rows per tile."""
    g = torch.Generator().manual_seed(7)
    T = (4096 if single_pass else 2048) + 61
    check(rand_a((1, T), torch.float32, rmin=0.9, rmax=0.999, gen=g), rand_u((1, T), torch.float32, gen=g),
          True, block_size=None, single_pass=single_pass, window=None)
    for reverse in (False, True):
        check(rand_a((5, 40), torch.float64, gen=g), rand_u((5, 40), torch.float64, gen=g), reverse,
              block_size=None, single_pass=single_pass, window=None)


# ------------------------------------------------------------------------------ single-pass look-back
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex64])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("window,block_size,T", [(2, 4, 150), (4, 8, 300), (8, 5, 123), (None, 8, 200)])
def test_window_links(dtype, reverse, window, block_size, T):
    """Many tiles per row, so that states travel through many look-back links (``T / (block * W)``
    of them) with radii near one: a wrong fold, anchor or flag would show far past the tile it hits."""
    g = torch.Generator().manual_seed(T + block_size)
    a = rand_a((2, T), dtype, rmin=0.95, rmax=0.999, gen=g)
    u = rand_u((2, T), dtype, gen=g)
    check(a, u, reverse, block_size=block_size, window=window)


@pytest.mark.parametrize("a_shape", ["RT", "1T", "R1", "11"])
@pytest.mark.parametrize("reverse", [False, True])
def test_several_row_blocks(a_shape, reverse):
    """``tile_elems`` forces 2 rows per tile, so 3 row blocks share every chunk: tickets map to
    (chunk, row block) chunk-major, and flags and aggregates are per tile / per row."""
    R, T = 5, 61
    g = torch.Generator().manual_seed(23)
    shape = {"RT": (R, T), "1T": (1, T), "R1": (R, 1), "11": (1, 1)}[a_shape]
    a = rand_a(shape, torch.complex128, rmin=0.9, rmax=0.999, gen=g)
    u = rand_u((R, T), torch.complex128, gen=g)
    for window in (2, 4):
        check(a, u, reverse, block_size=8, window=window, tile_elems=16)
    check(a.real.contiguous(), u.real.contiguous(), reverse, block_size=8, window=2, tile_elems=16)


@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64])
def test_single_pass_deterministic_and_agrees(dtype):
    """Two single-pass runs are bitwise equal (fixed fold tree, no float atomics), and the single and
    multi-pass kernels agree to rounding."""
    g = torch.Generator().manual_seed(29)
    a = rand_a((3, 70), dtype, rmin=0.999, rmax=0.9999, gen=g).to(DEVICE)
    u = rand_u((3, 70), dtype, gen=g).to(DEVICE)
    kw = dict(block_size=4, window=2, tile_elems=8)
    h1 = diagonal(a, u, True, single_pass=True, **kw)
    assert torch.equal(h1, diagonal(a, u, True, single_pass=True, **kw))
    h2 = diagonal(a, u, True, block_size=4, single_pass=False)
    torch.testing.assert_close(h1, h2, rtol=1e-4, atol=1e-4)


def test_single_pass_env_switch(monkeypatch):
    """``single_pass=None`` reads SSM_LFILTER_SINGLE_PASS at every call (unset: the multi-pass
    kernels, measured faster for this family on an H200)."""
    import importlib

    kd = importlib.import_module("ssm_lfilter.kernels.diagonal")  # the package attribute is the launcher

    calls = []
    for name in ("diag_single_pass_kernel", "diag_chunk_apply_kernel"):
        kernel = getattr(kd, name)
        monkeypatch.setattr(kd, name, _Spy(kernel, name, calls))
    a = torch.full((1, 20), 0.5, device=DEVICE)
    u = torch.ones(1, 20, device=DEVICE)
    monkeypatch.delenv("SSM_LFILTER_SINGLE_PASS", raising=False)
    kd.diagonal(a, u, block_size=8)
    monkeypatch.setenv("SSM_LFILTER_SINGLE_PASS", "1")
    kd.diagonal(a, u, block_size=8)
    monkeypatch.setenv("SSM_LFILTER_SINGLE_PASS", "0")
    kd.diagonal(a, u, block_size=8)
    kd.diagonal(a, u, block_size=8, single_pass=True)
    assert calls == ["diag_chunk_apply_kernel", "diag_single_pass_kernel", "diag_chunk_apply_kernel",
                     "diag_single_pass_kernel"]


class _Spy:
    def __init__(self, kernel, name, calls):
        self.kernel, self.name, self.calls = kernel, name, calls

    def __getitem__(self, grid):
        self.calls.append(self.name)
        return self.kernel[grid]


# ------------------------------------------------------------------------------------------ broadcast
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.complex128, torch.complex64])
@pytest.mark.parametrize("a_shape", ["1T", "R1", "11"])
@pytest.mark.parametrize("reverse", [False, True])
@VARIANTS
def test_broadcast_coefficients(dtype, a_shape, reverse, single_pass):
    """``a`` constant per channel (Ta=1), shared by every row (Ra=1), or a single scalar."""
    R, T = 3, 4 * BS + 5
    g = torch.Generator().manual_seed(3)
    shape = {"1T": (1, T), "R1": (R, 1), "11": (1, 1)}[a_shape]
    check(rand_a(shape, dtype, rmin=0.8, rmax=0.99, gen=g), rand_u((R, T), dtype, gen=g), reverse,
          single_pass=single_pass)


@pytest.mark.parametrize("a_dtype,u_dtype", [(torch.float32, torch.float64), (torch.float64, torch.complex64),
                                             (torch.complex64, torch.float32), (torch.float32, torch.complex128)])
@VARIANTS
def test_dtype_promotion(a_dtype, u_dtype, single_pass):
    g = torch.Generator().manual_seed(5)
    h = check(rand_a((2, 21), a_dtype, gen=g), rand_u((2, 21), u_dtype, gen=g), single_pass=single_pass)
    assert h.dtype == torch.promote_types(a_dtype, u_dtype)


# ------------------------------------------------------------------------------------- non-contiguous
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128, torch.float32])
@pytest.mark.parametrize("reverse", [False, True])
@VARIANTS
def test_non_contiguous(dtype, reverse, single_pass):
    R, T = 3, 3 * BS + 1
    g = torch.Generator().manual_seed(11)
    u = rand_u((T, 2 * R), dtype, gen=g).t()[::2]  # [R, T], strides (2, 2R)
    a = rand_a((R, 2 * T), dtype, gen=g)[:, ::2]  # [R, T], strides (2T, 2)
    assert not u.is_contiguous() and not a.is_contiguous()
    check(a, u, reverse, single_pass=single_pass)
    # A broadcast row given as an expanded view (stride 0) is read in place.
    check(rand_a((1, T), dtype, gen=g).expand(R, T), u, reverse, single_pass=single_pass)
    if dtype.is_complex:  # lazily conjugated inputs
        check(a.conj(), u.conj(), reverse, single_pass=single_pass)


# ------------------------------------------------------------------------------------------ hard mode
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.complex128, torch.complex64])
@pytest.mark.parametrize("reverse", [False, True])
@VARIANTS
def test_hard_mode_radius_near_one(dtype, reverse, single_pass):
    """|a| in 0.99-0.9999: the state survives many chunks, so a wrong carry cannot hide (a complex carry
    bug in another project passed at small radii)."""
    R, T = 2, 200
    g = torch.Generator().manual_seed(13)
    a = rand_a((R, T), dtype, rmin=0.99, rmax=0.9999, gen=g)
    u = rand_u((R, T), dtype, gen=g)
    check(a, u, reverse, block_size=16, tol={torch.float32: 1e-5, torch.complex64: 1e-5}.get(dtype, 1e-12),
          single_pass=single_pass)


@VARIANTS
def test_carry_matters(single_pass):
    """Sensitivity of the tests above: starting every chunk from rest (a dropped carry) is far off."""
    g = torch.Generator().manual_seed(17)
    a = rand_a((2, 64), torch.complex128, rmin=0.99, rmax=0.9999, gen=g)
    u = rand_u((2, 64), torch.complex128, gen=g)
    ref = reference(a, u)
    no_carry = torch.cat([linear_recurrence(a[:, i:i + 16], u[:, i:i + 16]) for i in range(0, 64, 16)], -1)
    assert (no_carry - ref).abs().max() > 0.5
    h = diagonal(a.to(DEVICE), u.to(DEVICE), block_size=16, single_pass=single_pass, window=WINDOW).cpu()
    assert (h - ref).abs().max() < 1e-12


@VARIANTS
def test_zero_coefficients_and_rows(single_pass):
    """a = 0 resets the state (no division by products anywhere); R = 0 returns an empty tensor."""
    a = torch.tensor([[0.5, 0.0, 2.0, 0.0, -1.0, 3.0, 0.0]], dtype=torch.float64)
    u = torch.arange(1.0, 8.0, dtype=torch.float64)[None]
    check(a, u, block_size=2, single_pass=single_pass)
    check(a, u, reverse=True, block_size=3, single_pass=single_pass)
    out = diagonal(torch.ones(0, 5, device=DEVICE), torch.ones(0, 5, device=DEVICE), single_pass=single_pass)
    assert out.shape == (0, 5)


@VARIANTS
def test_deterministic(single_pass):
    g = torch.Generator().manual_seed(19)
    a = rand_a((3, 50), torch.complex64, gen=g).to(DEVICE)
    u = rand_u((3, 50), torch.complex64, gen=g).to(DEVICE)
    kw = dict(block_size=8, single_pass=single_pass)
    assert torch.equal(diagonal(a, u, **kw), diagonal(a, u, **kw))


def test_errors():
    u = torch.zeros(2, 5, device=DEVICE)
    with pytest.raises(ValueError):
        diagonal(torch.zeros(3, 5, device=DEVICE), u)
    with pytest.raises(ValueError):
        diagonal(torch.zeros(2, 4, device=DEVICE), u)
    with pytest.raises(TypeError, match="float16"):
        diagonal(torch.zeros(2, 5, device=DEVICE, dtype=torch.float16), u.half())
    for kw in (dict(block_size=0), dict(window=3), dict(window=1), dict(tile_elems=0)):
        with pytest.raises(ValueError, match="expected"):
            diagonal(u, u, **kw)


# ----------------------------------------------------------------------------------------- GPU tier
def _scipy_first_order(a_row, u_row):
    """h[t] = a h[t-1] + u[t] with constant a, in float64/complex128 on the host (scipy)."""
    import scipy.signal as ss

    u64 = u_row.cpu().numpy().astype(np.complex128 if np.iscomplexobj(u_row.cpu().numpy()) else np.float64)
    return ss.lfilter([1.0], [1.0, -complex(a_row) if np.iscomplexobj(u64) else -float(a_row)], u64)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64])
@pytest.mark.parametrize("reverse", [False, True])
def test_gpu_single_long_row(dtype, reverse):
    """One row of 2**24 steps spread over the SMs (8192 default chunks), against scipy in float64."""
    T = 2 ** 24
    g = torch.Generator(device="cuda").manual_seed(0)
    u = torch.randn(1, T, device="cuda", dtype=dtype, generator=g)
    a = torch.tensor([[0.999 * (np.exp(0.3j) if dtype.is_complex else 1.0)]], dtype=dtype, device="cuda")
    h = diagonal(a, u, reverse)
    torch.cuda.synchronize()
    u_host = u[0].flip(0) if reverse else u[0]
    ref = _scipy_first_order(a[0, 0].item(), u_host)
    ref = ref[::-1] if reverse else ref
    err = np.abs(h[0].cpu().numpy() - ref).max()
    assert err <= 1e-4 * np.abs(ref).max()


@pytest.mark.gpu
def test_gpu_more_than_2_31_elements():
    """R*T > 2**31 elements: int64 program ids and offsets (int32 would wrap for the last rows)."""
    R, T = 129, 2 ** 24  # 2.16e9 elements, 8.7 GB per float32 tensor
    free, _ = torch.cuda.mem_get_info()
    if free < 2.2 * R * T * 4:
        pytest.skip("not enough GPU memory")
    u = torch.randn(R, T, device="cuda")
    a = torch.linspace(0.5, 0.99, R, device="cuda")[:, None]
    h = diagonal(a, u)
    torch.cuda.synchronize()
    for r in (0, R - 2, R - 1):
        ref = _scipy_first_order(a[r, 0].item(), u[r])
        assert np.abs(h[r].cpu().numpy() - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max())


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64])
@pytest.mark.parametrize("R,T,block_size", [(1, 2 ** 23, None), (64, 2 ** 16, 256), (3, 2 ** 20, 512)])
def test_gpu_single_pass_deterministic_and_agrees(dtype, R, T, block_size):
    """On a GPU, programs really run concurrently: the single pass is bitwise reproducible (the fixed
    window does not depend on which tiles were ready first) and agrees with the multi-pass kernels."""
    g = torch.Generator(device="cuda").manual_seed(1)
    u = torch.randn(R, T, device="cuda", dtype=dtype, generator=g)
    r = 0.999 + 0.0009 * torch.rand(R, T, device="cuda", generator=g)
    a = (r * torch.exp(1j * torch.rand(R, T, device="cuda", generator=g)) if dtype.is_complex else r).to(dtype)
    for reverse in (False, True):
        h = diagonal(a, u, reverse, block_size=block_size, single_pass=True)
        for _ in range(3):
            assert torch.equal(h, diagonal(a, u, reverse, block_size=block_size, single_pass=True))
        h2 = diagonal(a, u, reverse, block_size=block_size, single_pass=False)
        scale = h2.abs().max().item()
        assert (h - h2).abs().max().item() <= 1e-4 * scale
