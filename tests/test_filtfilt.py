"""filtfilt and sosfiltfilt: scipy parity (orders, shapes, axes, padtypes, padlen), batching,
dtypes, gradients, bad input."""

import numpy as np
import pytest
import scipy.signal as ss
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.autograd import gradcheck, gradgradcheck

from helpers import rand_sos, stable_a
from ssm_lfilter.zero_phase import filtfilt, sosfiltfilt

D = torch.float64
PADTYPES = ["odd", "even", "constant", None]


def rand_sos_ff(rng, n_sections, radius=0.9):
    return rand_sos(rng, n_sections, radius, first_order_prob=0.3)


def t(v):
    return torch.as_tensor(np.asarray(v))


SHAPES = [((50,), 0), ((50,), -1), ((3, 47), 1), ((3, 47), -1), ((40, 2), 0), ((2, 41, 3), 1), ((2, 3, 45), -1)]


@pytest.mark.parametrize("seed", range(10))
def test_filtfilt_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    shape, axis = SHAPES[seed % len(SHAPES)]
    nb, na = int(rng.integers(1, 8)), int(rng.integers(1, 8))
    b = rng.standard_normal(nb)
    a = stable_a(rng, na - 1) * rng.uniform(0.5, 2.0)
    x = rng.standard_normal(shape)
    T = shape[axis]
    for padtype in PADTYPES:
        padlens = [None, 0, int(rng.integers(1, T))] if 3 * max(na, nb) < T else [0, int(rng.integers(1, T))]
        for padlen in padlens:
            want = ss.filtfilt(b, a, x, axis=axis, padtype=padtype, padlen=padlen)
            got = filtfilt(t(b), t(a), t(x), axis=axis, padtype=padtype, padlen=padlen)
            assert got.shape == want.shape and got.dtype == D
            np.testing.assert_allclose(got.numpy(), want, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("seed", range(10))
def test_sosfiltfilt_matches_scipy(seed):
    rng = np.random.default_rng(50 + seed)
    shape, axis = SHAPES[seed % len(SHAPES)]
    sos = rand_sos_ff(rng, int(rng.integers(1, 4)))
    scale = rng.uniform(0.5, 2.0, (sos.shape[0], 1)) if seed % 2 else 1.0  # a0 != 1: normalized per section
    x = rng.standard_normal(shape)
    T = shape[axis]
    for padtype in PADTYPES:
        for padlen in [None, 0, int(rng.integers(1, T))]:
            want = ss.sosfiltfilt(sos, x, axis=axis, padtype=padtype, padlen=padlen)
            got = sosfiltfilt(t(sos * scale), t(x), axis=axis, padtype=padtype, padlen=padlen)
            assert got.shape == want.shape and got.dtype == D
            np.testing.assert_allclose(got.numpy(), want, rtol=1e-9, atol=1e-10)


def test_default_padlen_edges():
    """Default padlen is 3*max(len(a), len(b)) (sos: 3*ntaps); T equal to it is refused, T+1 works."""
    b, a = np.array([0.2, 0.3, 0.1, 0.05]), np.array([1.0, -0.5])
    x = np.random.default_rng(0).standard_normal(13)
    np.testing.assert_allclose(filtfilt(t(b), t(a), t(x)).numpy(), ss.filtfilt(b, a, x), rtol=1e-10)
    with pytest.raises(ValueError, match="padlen"):
        filtfilt(t(b), t(a), t(x[:12]))
    sos = np.array([[0.2, 0.3, 0.0, 1.0, -0.5, 0.0], [1.0, 0.5, 0.2, 1.0, -0.2, 0.1]])  # ntaps 4
    np.testing.assert_allclose(sosfiltfilt(t(sos), t(x)).numpy(), ss.sosfiltfilt(sos, x), rtol=1e-10)
    with pytest.raises(ValueError, match="padlen"):
        sosfiltfilt(t(sos), t(x[:12]))


def test_high_order_butter_and_cheby():
    x = np.random.default_rng(1).standard_normal((2, 300))
    for b, a in [ss.butter(8, 0.2), ss.cheby1(6, 1, 0.3)]:
        np.testing.assert_allclose(filtfilt(t(b), t(a), t(x)).numpy(), ss.filtfilt(b, a, x), rtol=1e-7, atol=1e-9)
    sos = ss.cheby1(10, 1, 0.1, output="sos")
    np.testing.assert_allclose(sosfiltfilt(t(sos), t(x)).numpy(), ss.sosfiltfilt(sos, x), rtol=1e-8, atol=1e-10)


def test_batched_coefficients():
    rng = np.random.default_rng(2)
    C = 3
    B = rng.standard_normal((C, 3))
    A = np.stack([stable_a(rng, 2) for _ in range(C)])
    x = rng.standard_normal((2, C, 40))
    got = filtfilt(t(B), t(A), t(x))
    assert got.shape == (2, C, 40)
    for c in range(C):
        np.testing.assert_allclose(got[:, c].numpy(), ss.filtfilt(B[c], A[c], x[:, c]), rtol=1e-10, atol=1e-12)
    # time on axis 0: coefficient batch dims broadcast against x.shape without axis
    got = filtfilt(t(B), t(A), t(x[0].T).contiguous(), axis=0)
    assert got.shape == (40, C)
    for c in range(C):
        np.testing.assert_allclose(got[:, c].numpy(), ss.filtfilt(B[c], A[c], x[0, c]), rtol=1e-10, atol=1e-12)
    # coefficient batch dims beyond x's: prepended
    got = filtfilt(t(B), t(A), t(x[0, 0]))
    assert got.shape == (C, 40)
    sos = np.stack([rand_sos_ff(rng, 2) for _ in range(C)])
    # (the default padlen of a batch is the largest of its filters': pass one to compare per filter)
    got = sosfiltfilt(t(sos), t(x), padlen=10)
    assert got.shape == (2, C, 40)
    for c in range(C):
        want = ss.sosfiltfilt(sos[c], x[:, c], padlen=10)
        np.testing.assert_allclose(got[:, c].numpy(), want, rtol=1e-10, atol=1e-12)


def test_float32_and_half():
    b, a = ss.butter(3, 0.2)
    x = np.random.default_rng(3).standard_normal((2, 200))
    got = filtfilt(t(b).float(), t(a).float(), t(x).float())
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), ss.filtfilt(b, a, x), rtol=1e-3, atol=1e-4)
    sos = ss.butter(4, 0.2, output="sos")
    got = sosfiltfilt(t(sos).float(), t(x).float())
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), ss.sosfiltfilt(sos, x), rtol=1e-3, atol=1e-4)
    got = filtfilt(t(b).half(), t(a).half(), t(x).half())
    assert got.dtype == torch.float16
    # ints promote to the default float dtype
    assert filtfilt([1, 1], [2], torch.arange(20)).dtype == torch.get_default_dtype()


def test_noncontiguous_input():
    b, a = ss.butter(2, 0.3)
    x = np.random.default_rng(4).standard_normal((30, 4))
    xt = t(x).T  # non-contiguous (4, 30)
    np.testing.assert_allclose(filtfilt(t(b), t(a), xt).numpy(), ss.filtfilt(b, a, x.T), rtol=1e-10)


@settings(max_examples=15, deadline=None)
@given(
    nb=st.integers(1, 5),
    na=st.integers(2, 5),  # scipy's lfilter_zi fails on order-0 filters (see test_order_zero)
    T=st.integers(2, 40),
    padtype=st.sampled_from(PADTYPES),
    seed=st.integers(0, 2**31),
)
def test_filtfilt_property(nb, na, T, padtype, seed):
    rng = np.random.default_rng(seed)
    b, a, x = rng.standard_normal(nb), stable_a(rng, na - 1), rng.standard_normal(T)
    padlen = int(rng.integers(0, T))
    np.testing.assert_allclose(
        filtfilt(t(b), t(a), t(x), padtype=padtype, padlen=padlen).numpy(),
        ss.filtfilt(b, a, x, padtype=padtype, padlen=padlen),
        rtol=1e-9,
        atol=1e-10,
    )


def test_order_zero():
    """scipy's lfilter_zi raises for a length-1 filter; here zi is empty and filtfilt is a gain."""
    x = torch.randn(3, 10, dtype=D)
    y = filtfilt(torch.tensor([3.0], dtype=D), torch.tensor([2.0], dtype=D), x)
    torch.testing.assert_close(y, 2.25 * x)


def _req(*xs):
    return [torch.tensor(x, dtype=D, requires_grad=True) for x in xs]


# The ops cost ~milliseconds a call even on tiny inputs: keep shapes small and use fast_mode
# (random projections) so gradgradcheck stays cheap; every padtype is covered.
@pytest.mark.parametrize("padtype", PADTYPES)
def test_filtfilt_gradcheck(padtype):
    b, a = _req([0.3, -0.2, 0.5], [1.1, -0.4, 0.2])
    x = torch.randn(2, 8, dtype=D, requires_grad=True)
    f = lambda b, a, x: filtfilt(b, a, x, padtype=padtype, padlen=3)  # noqa: E731
    assert gradcheck(f, (b, a, x), fast_mode=True)
    assert gradgradcheck(f, (b, a, x), fast_mode=True)


@pytest.mark.parametrize("padtype", PADTYPES)
def test_sosfiltfilt_gradcheck(padtype):
    # every entry of sos, a0 included (sosfilt normalizes each section by its a0)
    (sos,) = _req([[0.3, 0.2, 0.1, 1.1, -0.5, 0.2], [1.0, -0.4, 0.3, 0.9, 0.3, 0.1]])
    x = torch.randn(8, 2, dtype=D, requires_grad=True)
    f = lambda sos, x: sosfiltfilt(sos, x, axis=0, padtype=padtype, padlen=3)  # noqa: E731
    assert gradcheck(f, (sos, x), fast_mode=True)
    assert gradgradcheck(f, (sos, x), fast_mode=True)


def test_bad_input():
    b, a, x = torch.ones(2), torch.tensor([1.0, -0.5]), torch.randn(20)
    with pytest.raises(ValueError, match="padtype"):
        filtfilt(b, a, x, padtype="reflect")
    with pytest.raises(ValueError, match="padlen"):
        filtfilt(b, a, x, padlen=20)
    with pytest.raises(ValueError, match="padlen"):
        filtfilt(b, a, torch.randn(6))  # default padlen 6
    with pytest.raises(ValueError, match="padlen"):
        filtfilt(b, a, torch.randn(0), padtype=None)
    with pytest.raises(ValueError, match="x"):
        filtfilt(b, a, torch.tensor(1.0))
    with pytest.raises(ValueError, match="axis"):
        filtfilt(b, a, x, axis=1)
    with pytest.raises(ValueError, match="a"):
        filtfilt(b, torch.zeros(2), x)
    with pytest.raises(ValueError):
        filtfilt(torch.ones(3, 2), a, torch.randn(4, 20))  # batch dims don't broadcast
    sos = torch.tensor([[1.0, 0.0, 0.0, 1.0, -0.5, 0.0]])
    with pytest.raises(ValueError, match="sos"):
        sosfiltfilt(torch.ones(2, 5), x)
    with pytest.raises(ValueError, match="padtype"):
        sosfiltfilt(sos, x, padtype="zero")
    with pytest.raises(ValueError, match="padlen"):
        sosfiltfilt(sos, x, padlen=25)
    with pytest.raises(ValueError, match="sos"):
        sosfiltfilt(torch.tensor([[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]]), x)  # a0 == 0
    with pytest.raises(ValueError, match="device"):
        filtfilt(b, a, torch.randn(20, device="meta"))


def test_complex():
    rng = np.random.default_rng(6)
    b = rng.standard_normal(3) + 1j * rng.standard_normal(3)
    a = np.array([1.0, -0.4 + 0.3j, 0.1])
    x = rng.standard_normal((2, 40)) + 1j * rng.standard_normal((2, 40))
    got = filtfilt(t(b), t(a), t(x))
    assert got.dtype == torch.complex128
    np.testing.assert_allclose(got.numpy(), ss.filtfilt(b, a, x), rtol=1e-10, atol=1e-12)
