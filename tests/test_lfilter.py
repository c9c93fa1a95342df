"""sl.lfilter against scipy.signal.lfilter (float64 oracle): shapes, axes, orders, zi, broadcasting,
per-channel coefficients, dtypes and streaming."""
import numpy as np
import pytest
import scipy.signal as ss
import torch

import ssm_lfilter as sl
from helpers import assert_close_np, npy, random_denominator, t64


# ----------------------------------------------------------------------------------------------- helpers

def rand_b(order, rng):
    return rng.standard_normal(order + 1)


# ----------------------------------------------------------------------------------------------- parity
ORDERS = [(0, 0), (0, 1), (1, 0), (1, 1), (2, 2), (3, 1), (1, 4), (5, 5), (8, 8), (16, 16), (4, 12)]


@pytest.mark.parametrize("nb,na", ORDERS)
def test_orders_match_scipy_float64(nb, na):
    rng = np.random.default_rng(100 + 17 * nb + na)
    b, a = rand_b(nb, rng), random_denominator(na, rng)
    x = rng.standard_normal((3, 200))
    y = sl.lfilter(t64(b), t64(a), t64(x))
    assert isinstance(y, torch.Tensor)
    assert y.dtype == torch.float64
    assert_close_np(y, ss.lfilter(b, a, x), 1e-9, f"order ({nb},{na})")


@pytest.mark.parametrize("order", [24, 32])
def test_high_orders_match_scipy(order):
    rng = np.random.default_rng(order)
    b, a = rand_b(order, rng), random_denominator(order, rng, rmax=0.8)
    x = rng.standard_normal((2, 400))
    assert_close_np(sl.lfilter(t64(b), t64(a), t64(x)), ss.lfilter(b, a, x), 1e-6, f"order {order}")


SHAPES_AXES = [((150,), -1), ((150,), 0), ((4, 150), -1), ((150, 4), 0), ((2, 150, 3), 1),
               ((2, 3, 150), 2), ((2, 3, 150), -1), ((150, 2, 3), -3), ((2, 150, 3), -2)]


@pytest.mark.parametrize("shape,axis", SHAPES_AXES)
def test_shapes_and_axes(shape, axis):
    rng = np.random.default_rng(7)
    b, a = rand_b(3, rng), random_denominator(2, rng)
    x = rng.standard_normal(shape)
    y = sl.lfilter(t64(b), t64(a), t64(x), axis=axis)
    assert_close_np(y, ss.lfilter(b, a, x, axis=axis), 1e-10, f"shape {shape} axis {axis}")


@pytest.mark.parametrize("shape,axis", SHAPES_AXES[::2])
@pytest.mark.parametrize("nb,na", [(3, 2), (1, 4), (0, 2), (2, 0), (0, 0)])
def test_zi_and_zf_match_scipy(shape, axis, nb, na):
    rng = np.random.default_rng(11)
    b, a = rand_b(nb, rng), random_denominator(na, rng)
    K = max(nb, na)
    zshape = list(shape)
    zshape[axis] = K
    zi = rng.standard_normal(zshape)
    y, zf = sl.lfilter(t64(b), t64(a), t64(np.ones(shape)), axis=axis, zi=t64(zi))
    ey, ezf = ss.lfilter(b, a, np.ones(shape), axis=axis, zi=zi)
    assert_close_np(y, ey, 1e-10, "y")
    assert_close_np(zf, ezf, 1e-10, "zf")
    x = rng.standard_normal(shape)
    y, zf = sl.lfilter(t64(b), t64(a), t64(x), axis=axis, zi=t64(zi))
    ey, ezf = ss.lfilter(b, a, x, axis=axis, zi=zi)
    assert_close_np(y, ey, 1e-10, "y")
    assert_close_np(zf, ezf, 1e-10, "zf")


def test_scipy_lfilter_zi_gives_steady_state():
    b, a = ss.butter(4, 0.1)
    x = np.full((2, 100), 3.0)
    zi = ss.lfilter_zi(b, a)[None, :] * x[:, :1]
    y, zf = sl.lfilter(t64(b), t64(a), t64(x), zi=t64(zi))
    ey, ezf = ss.lfilter(b, a, x, zi=zi)
    assert_close_np(y, ey, 1e-10, "y")
    assert_close_np(zf, ezf, 1e-10, "zf")
    np.testing.assert_allclose(npy(y), 3.0, rtol=1e-8)  # a step from steady state stays put


@pytest.mark.parametrize("xshape,zshape,axis", [
    ((3, 4, 120), (1, 4, 3), -1),
    ((3, 4, 120), (3, 1, 3), -1),
    ((3, 4, 120), (1, 1, 3), -1),
    ((120, 5), (3, 1), 0),
    ((2, 120, 5), (1, 3, 5), 1),
])
def test_zi_size1_dims_broadcast_like_scipy(xshape, zshape, axis):
    rng = np.random.default_rng(3)
    b, a = rand_b(3, rng), random_denominator(3, rng)
    x, zi = rng.standard_normal(xshape), rng.standard_normal(zshape)
    y, zf = sl.lfilter(t64(b), t64(a), t64(x), axis=axis, zi=t64(zi))
    ey, ezf = ss.lfilter(b, a, x, axis=axis, zi=zi)
    assert_close_np(y, ey, 1e-10, "y")
    assert_close_np(zf, ezf, 1e-10, "zf")  # zf has the full shape, as in scipy


def test_a0_normalizes():
    rng = np.random.default_rng(5)
    b, a = rand_b(2, rng), random_denominator(2, rng, a0=1.0)
    x = rng.standard_normal(100)
    y1 = sl.lfilter(t64(b), t64(a), t64(x))
    y2 = sl.lfilter(t64(3.5 * b), t64(3.5 * a), t64(x))
    y3 = sl.lfilter(t64(b), t64(-0.25 * a), t64(x))
    assert_close_np(y1, ss.lfilter(b, a, x), 1e-10)
    assert_close_np(y2, ss.lfilter(b, a, x), 1e-10)
    assert_close_np(y3, ss.lfilter(b, -0.25 * a, x), 1e-10)


def test_b_longer_and_shorter_than_a_with_zi():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 90))
    for nb, na in [(6, 1), (1, 6), (0, 5), (5, 0)]:
        b, a = rand_b(nb, rng), random_denominator(na, rng)
        zi = rng.standard_normal((2, max(nb, na)))
        y, zf = sl.lfilter(t64(b), t64(a), t64(x), zi=t64(zi))
        ey, ezf = ss.lfilter(b, a, x, zi=zi)
        assert_close_np(y, ey, 1e-10, f"y ({nb},{na})")
        assert_close_np(zf, ezf, 1e-10, f"zf ({nb},{na})")


# ------------------------------------------------------------------------------ batched coefficients
def test_per_channel_coefficients():
    rng = np.random.default_rng(21)
    B, C, T = 2, 3, 130
    bs = np.stack([rand_b(2, rng) for _ in range(C)])
    as_ = np.stack([random_denominator(3, rng) for _ in range(C)])
    x = rng.standard_normal((B, C, T))
    y = sl.lfilter(t64(bs), t64(as_), t64(x))
    expected = np.stack([np.stack([ss.lfilter(bs[c], as_[c], x[i, c]) for c in range(C)]) for i in range(B)])
    assert_close_np(y, expected, 1e-10, "per-channel (C, M+1) on (B, C, T)")


def test_per_channel_coefficients_with_zi_and_axis():
    rng = np.random.default_rng(22)
    B, C, T = 2, 3, 70
    bs = np.stack([rand_b(1, rng) for _ in range(C)])
    as_ = np.stack([random_denominator(2, rng) for _ in range(C)])
    x = rng.standard_normal((B, T, C))
    zi = rng.standard_normal((B, 2, C))
    y, zf = sl.lfilter(t64(bs), t64(as_), t64(x), axis=1, zi=t64(zi))
    ey = np.empty_like(x)
    ezf = np.empty_like(zi)
    for i in range(B):
        for c in range(C):
            ey[i, :, c], ezf[i, :, c] = ss.lfilter(bs[c], as_[c], x[i, :, c], zi=zi[i, :, c])
    assert_close_np(y, ey, 1e-10, "y")
    assert_close_np(zf, ezf, 1e-10, "zf")


def test_b_and_a_batch_dims_broadcast_against_each_other():
    rng = np.random.default_rng(23)
    B, C, T = 2, 3, 80
    bs = np.stack([rand_b(2, rng) for _ in range(C)])  # (C, 3)
    as_ = np.stack([random_denominator(2, rng) for _ in range(B)])[:, None, :]  # (B, 1, 3)
    x = rng.standard_normal((B, C, T))
    y = sl.lfilter(t64(bs), t64(as_), t64(x))
    expected = np.stack([np.stack([ss.lfilter(bs[c], as_[i, 0], x[i, c]) for c in range(C)]) for i in range(B)])
    assert_close_np(y, expected, 1e-10)


def test_per_batch_coefficients_different_orders():
    rng = np.random.default_rng(24)
    B, T = 4, 100
    bs = np.stack([rand_b(4, rng) for _ in range(B)])
    as_ = np.stack([random_denominator(1, rng) for _ in range(B)])
    x = rng.standard_normal((B, T))
    y = sl.lfilter(t64(bs), t64(as_), t64(x))
    expected = np.stack([ss.lfilter(bs[i], as_[i], x[i]) for i in range(B)])
    assert_close_np(y, expected, 1e-10)


# ----------------------------------------------------------------------------------------------- dtypes
def test_float32_close_to_scipy():
    rng = np.random.default_rng(31)
    b, a = ss.butter(3, 0.2)
    x = rng.standard_normal((2, 500)).astype(np.float32)
    y = sl.lfilter(torch.tensor(b, dtype=torch.float32), torch.tensor(a, dtype=torch.float32), torch.from_numpy(x))
    assert y.dtype == torch.float32
    b32, a32 = b.astype(np.float32).astype(np.float64), a.astype(np.float32).astype(np.float64)
    assert_close_np(y, ss.lfilter(b32, a32, x.astype(np.float64)), 1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_in_and_out(dtype):
    rng = np.random.default_rng(32)
    b, a = ss.butter(2, 0.3)
    x = torch.from_numpy(rng.standard_normal((2, 300))).to(dtype)
    bt, at = torch.tensor(b).to(dtype), torch.tensor(a).to(dtype)
    y = sl.lfilter(bt, at, x)
    assert y.dtype == dtype
    expected = ss.lfilter(npy(bt.double()), npy(at.double()), npy(x.double()))
    tol = 2e-2 if dtype == torch.float16 else 6e-2
    assert_close_np(y.double(), expected, tol, str(dtype))
    y, zf = sl.lfilter(bt, at, x, zi=torch.zeros(2, 2, dtype=dtype))
    assert y.dtype == dtype and zf.dtype == dtype


@pytest.mark.parametrize("cdtype,rtol", [(torch.complex128, 1e-10), (torch.complex64, 1e-4)])
def test_complex_matches_scipy(cdtype, rtol):
    rng = np.random.default_rng(33)
    b = rng.standard_normal(3) + 1j * rng.standard_normal(3)
    a = random_denominator(2, rng) + 0j
    a[1] += 0.1j  # genuinely complex denominator, still stable (|poles| < 1)
    assert np.all(np.abs(np.roots(a)) < 1)
    x = rng.standard_normal((2, 150)) + 1j * rng.standard_normal((2, 150))
    zi = rng.standard_normal((2, 2)) + 1j * rng.standard_normal((2, 2))
    np_dt = np.complex128 if cdtype == torch.complex128 else np.complex64
    b, a, x, zi = (v.astype(np_dt) for v in (b, a, x, zi))
    y, zf = sl.lfilter(torch.from_numpy(b), torch.from_numpy(a), torch.from_numpy(x), zi=torch.from_numpy(zi))
    assert y.dtype == cdtype and zf.dtype == cdtype
    ey, ezf = ss.lfilter(b.astype(np.complex128), a.astype(np.complex128), x.astype(np.complex128),
                         zi=zi.astype(np.complex128))
    assert_close_np(y, ey, rtol, "y")
    assert_close_np(zf, ezf, rtol, "zf")


def test_real_signal_complex_coefficients_promotes():
    rng = np.random.default_rng(34)
    b = rng.standard_normal(2) + 1j * rng.standard_normal(2)
    a = np.array([1.0, -0.5])
    x = rng.standard_normal(60)
    y = sl.lfilter(torch.from_numpy(b), t64(a), t64(x))
    assert y.dtype == torch.complex128
    assert_close_np(y, ss.lfilter(b, a, x), 1e-10)


@pytest.mark.parametrize("xdt,cdt,expected", [
    (torch.float32, torch.float64, torch.float64),
    (torch.float64, torch.float32, torch.float64),
    (torch.float32, torch.float32, torch.float32),
    (torch.int64, torch.float32, torch.float32),
    (torch.int32, torch.float64, torch.float64),
    (torch.complex64, torch.float64, torch.complex128),
])
def test_result_dtype_promotion(xdt, cdt, expected):
    x = torch.arange(-20, 20).to(xdt)
    b = torch.tensor([1.0, 0.5]).to(cdt)
    a = torch.tensor([1.0, -0.25]).to(cdt)
    y = sl.lfilter(b, a, x)
    assert y.dtype == expected
    ref = ss.lfilter([1.0, 0.5], [1.0, -0.25], np.arange(-20, 20).astype(np.float64))
    assert_close_np(y.to(torch.complex128 if expected.is_complex else torch.float64), ref, 1e-5)


@pytest.mark.parametrize("default", [torch.float32, torch.float64])
def test_integer_inputs_promote_to_default_float(default):
    old = torch.get_default_dtype()
    torch.set_default_dtype(default)
    try:
        x = torch.arange(10)
        y = sl.lfilter(torch.tensor([1, 2]), torch.tensor([2, 1]), x)
        assert y.dtype == default
        assert_close_np(y.double(), ss.lfilter([1.0, 2.0], [2.0, 1.0], np.arange(10.0)), 1e-6)
    finally:
        torch.set_default_dtype(old)


# --------------------------------------------------------------------------------- streaming, backend
@pytest.mark.parametrize("splits", [[0, 1, 64, 65, 200, 333], [0, 17, 17, 300, 333], [0, 128, 333]])
def test_streaming_chunks_equal_one_call(splits):
    rng = np.random.default_rng(41)
    b, a = rand_b(4, rng), random_denominator(3, rng, rmin=0.7, rmax=0.95)
    x = t64(rng.standard_normal((2, 333)))
    zi = t64(rng.standard_normal((2, 4)))
    y_all, zf_all = sl.lfilter(t64(b), t64(a), x, zi=zi)
    z = zi
    ys = []
    for s, e in zip(splits[:-1], splits[1:]):
        y, z = sl.lfilter(t64(b), t64(a), x[:, s:e], zi=z)
        ys.append(y)
    torch.testing.assert_close(torch.cat(ys, -1), y_all, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(z, zf_all, rtol=1e-10, atol=1e-10)
    ey, ezf = ss.lfilter(b, a, npy(x), zi=npy(zi))
    assert_close_np(y_all, ey, 1e-10)
    assert_close_np(zf_all, ezf, 1e-10)


def test_backend_torch_env_equals_default(monkeypatch):
    rng = np.random.default_rng(42)
    b, a = rand_b(3, rng), random_denominator(3, rng)
    x = t64(rng.standard_normal((3, 257)))
    zi = t64(rng.standard_normal((3, 3)))
    monkeypatch.delenv("SSM_LFILTER_BACKEND", raising=False)
    y0, z0 = sl.lfilter(t64(b), t64(a), x, zi=zi)
    monkeypatch.setenv("SSM_LFILTER_BACKEND", "torch")
    y1, z1 = sl.lfilter(t64(b), t64(a), x, zi=zi)
    monkeypatch.setenv("SSM_LFILTER_BACKEND", "auto")
    y2, z2 = sl.lfilter(t64(b), t64(a), x, zi=zi)
    torch.testing.assert_close(y1, y0, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(z1, z0, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(y2, y0, rtol=1e-13, atol=1e-13)
    assert_close_np(y0, ss.lfilter(b, a, npy(x), zi=npy(zi))[0], 1e-10)


def test_positional_call_and_return_types():
    b, a = torch.tensor([1.0, 1.0]), torch.tensor([1.0, -0.5])
    x = torch.ones(5)
    y = sl.lfilter(b, a, x, -1)
    assert isinstance(y, torch.Tensor)
    out = sl.lfilter(b, a, x, -1, torch.zeros(1))
    assert isinstance(out, tuple) and len(out) == 2
    assert_close_np(y.double(), ss.lfilter([1, 1], [1, -0.5], np.ones(5)), 1e-6)


def test_does_not_modify_inputs():
    rng = np.random.default_rng(43)
    b, a, x, zi = t64(rand_b(2, rng)), t64(random_denominator(2, rng)), t64(rng.standard_normal(50)), t64(np.ones(2))
    copies = [t.clone() for t in (b, a, x, zi)]
    sl.lfilter(b, a, x, zi=zi)
    for t, c in zip((b, a, x, zi), copies):
        assert torch.equal(t, c)
