"""Triton kernel ``kernels/diagonal.py`` (the ``ssm_lfilter::diag`` op) against the sequential oracle
``ssm_lfilter.reference.linear_recurrence``.

On CPU the kernels run under ``TRITON_INTERPRET=1`` (set by conftest before the kernels are defined).
Tiny ``block_size`` values force many chunk boundaries, so the carry scan and the correction pass are
exercised on short signals. GPU-tier tests (``@pytest.mark.gpu``) check the launch geometry at scale.
"""
import math

import numpy as np
import pytest
import torch

from ssm_lfilter.kernels.diagonal import diagonal
from ssm_lfilter.reference import linear_recurrence

pytestmark = pytest.mark.interpreter

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
BS = 8  # forced chunk length for the interpreter tests
TOL = {torch.float64: 1e-12, torch.complex128: 1e-12, torch.float32: 2e-5, torch.complex64: 2e-5}


def rand_a(shape, dtype, rmin=0.3, rmax=0.95, gen=None):
    """Coefficients with |a| in [rmin, rmax]: a random sign (real) or phase (complex)."""
    r = rmin + (rmax - rmin) * torch.rand(shape, dtype=torch.float64, generator=gen)
    if dtype.is_complex:
        a = r * torch.exp(1j * 2 * math.pi * torch.rand(shape, dtype=torch.float64, generator=gen))
    else:
        a = r * torch.where(torch.rand(shape, generator=gen, dtype=torch.float64) < 0.2, -1.0, 1.0)
    return a.to(dtype)


def rand_u(shape, dtype, gen=None):
    return torch.randn(shape, dtype=dtype, generator=gen)


def reference(a, u, reverse=False):
    """Float64 (complex128) oracle on the already-rounded inputs."""
    wide = torch.complex128 if (a.is_complex() or u.is_complex()) else torch.float64
    if u.shape[-1] == 0:  # the oracle indexes u[..., 0]
        return u.to(wide)
    return linear_recurrence(a.to(wide), u.to(wide), reverse=reverse)


def check(a, u, reverse=False, block_size=BS, tol=None):
    h = diagonal(a.to(DEVICE), u.to(DEVICE), reverse, block_size=block_size).cpu()
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
def test_lengths_dtypes(dtype, reverse, T):
    g = torch.Generator().manual_seed(T + 100 * reverse)
    check(rand_a((3, T), dtype, gen=g), rand_u((3, T), dtype, gen=g), reverse)


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex64])
@pytest.mark.parametrize("block_size", [1, 2, 3, 5, 16])
def test_block_sizes(dtype, block_size):
    """Any chunk length works, including non-powers of two and 1 (a chunk per sample)."""
    g = torch.Generator().manual_seed(block_size)
    check(rand_a((2, 29), dtype, gen=g), rand_u((2, 29), dtype, gen=g), block_size=block_size)


def test_default_block_size_several_chunks():
    """The default chunk (2048) with a signal longer than one chunk, and several rows per tile."""
    g = torch.Generator().manual_seed(7)
    T = 2048 + 61
    check(rand_a((1, T), torch.float32, rmin=0.9, rmax=0.999, gen=g), rand_u((1, T), torch.float32, gen=g),
          True, block_size=None)
    for reverse in (False, True):
        check(rand_a((5, 40), torch.float64, gen=g), rand_u((5, 40), torch.float64, gen=g), reverse, block_size=None)


# ------------------------------------------------------------------------------------------ broadcast
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.complex128, torch.complex64])
@pytest.mark.parametrize("a_shape", ["1T", "R1", "11"])
@pytest.mark.parametrize("reverse", [False, True])
def test_broadcast_coefficients(dtype, a_shape, reverse):
    """``a`` constant per channel (Ta=1), shared by every row (Ra=1), or a single scalar."""
    R, T = 3, 4 * BS + 5
    g = torch.Generator().manual_seed(3)
    shape = {"1T": (1, T), "R1": (R, 1), "11": (1, 1)}[a_shape]
    check(rand_a(shape, dtype, rmin=0.8, rmax=0.99, gen=g), rand_u((R, T), dtype, gen=g), reverse)


@pytest.mark.parametrize("a_dtype,u_dtype", [(torch.float32, torch.float64), (torch.float64, torch.complex64),
                                             (torch.complex64, torch.float32), (torch.float32, torch.complex128)])
def test_dtype_promotion(a_dtype, u_dtype):
    g = torch.Generator().manual_seed(5)
    h = check(rand_a((2, 21), a_dtype, gen=g), rand_u((2, 21), u_dtype, gen=g))
    assert h.dtype == torch.promote_types(a_dtype, u_dtype)


# ------------------------------------------------------------------------------------- non-contiguous
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128, torch.float32])
@pytest.mark.parametrize("reverse", [False, True])
def test_non_contiguous(dtype, reverse):
    R, T = 3, 3 * BS + 1
    g = torch.Generator().manual_seed(11)
    u = rand_u((T, 2 * R), dtype, gen=g).t()[::2]  # [R, T], strides (2, 2R)
    a = rand_a((R, 2 * T), dtype, gen=g)[:, ::2]  # [R, T], strides (2T, 2)
    assert not u.is_contiguous() and not a.is_contiguous()
    check(a, u, reverse)
    # A broadcast row given as an expanded view (stride 0) is read in place.
    check(rand_a((1, T), dtype, gen=g).expand(R, T), u, reverse)
    if dtype.is_complex:  # lazily conjugated inputs
        check(a.conj(), u.conj(), reverse)


# ------------------------------------------------------------------------------------------ hard mode
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.complex128, torch.complex64])
@pytest.mark.parametrize("reverse", [False, True])
def test_hard_mode_radius_near_one(dtype, reverse):
    """|a| in 0.99-0.9999: the state survives many chunks, so a wrong carry cannot hide (a complex carry
    bug in another project passed at small radii)."""
    R, T = 2, 200
    g = torch.Generator().manual_seed(13)
    a = rand_a((R, T), dtype, rmin=0.99, rmax=0.9999, gen=g)
    u = rand_u((R, T), dtype, gen=g)
    check(a, u, reverse, block_size=16, tol={torch.float32: 1e-5, torch.complex64: 1e-5}.get(dtype, 1e-12))


def test_carry_matters():
    """Sensitivity of the tests above: starting every chunk from rest (a dropped carry) is far off."""
    g = torch.Generator().manual_seed(17)
    a = rand_a((2, 64), torch.complex128, rmin=0.99, rmax=0.9999, gen=g)
    u = rand_u((2, 64), torch.complex128, gen=g)
    ref = reference(a, u)
    no_carry = torch.cat([linear_recurrence(a[:, i:i + 16], u[:, i:i + 16]) for i in range(0, 64, 16)], -1)
    assert (no_carry - ref).abs().max() > 0.5
    h = diagonal(a.to(DEVICE), u.to(DEVICE), block_size=16).cpu()
    assert (h - ref).abs().max() < 1e-12


def test_zero_coefficients_and_rows():
    """a = 0 resets the state (no division by products anywhere); R = 0 returns an empty tensor."""
    a = torch.tensor([[0.5, 0.0, 2.0, 0.0, -1.0, 3.0, 0.0]], dtype=torch.float64)
    u = torch.arange(1.0, 8.0, dtype=torch.float64)[None]
    check(a, u, block_size=2)
    check(a, u, reverse=True, block_size=3)
    out = diagonal(torch.ones(0, 5, device=DEVICE), torch.ones(0, 5, device=DEVICE))
    assert out.shape == (0, 5)


def test_deterministic():
    g = torch.Generator().manual_seed(19)
    a = rand_a((3, 50), torch.complex64, gen=g).to(DEVICE)
    u = rand_u((3, 50), torch.complex64, gen=g).to(DEVICE)
    assert torch.equal(diagonal(a, u, block_size=8), diagonal(a, u, block_size=8))


def test_errors():
    u = torch.zeros(2, 5, device=DEVICE)
    with pytest.raises(ValueError):
        diagonal(torch.zeros(3, 5, device=DEVICE), u)
    with pytest.raises(ValueError):
        diagonal(torch.zeros(2, 4, device=DEVICE), u)
    with pytest.raises(TypeError, match="float16"):
        diagonal(torch.zeros(2, 5, device=DEVICE, dtype=torch.float16), u.half())


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
