"""freqz and sosfreqz: scipy parity (worN int/array, whole, fs), batching, dtypes, gradients, bad input."""
import math

import numpy as np
import pytest
import scipy.signal as ss
import torch
from torch.autograd import gradcheck, gradgradcheck

from ssm_lfilter.response import freqz, sosfreqz

D = torch.float64


def t(v):
    return torch.as_tensor(np.asarray(v))


def close(got, want, rtol=1e-10, atol=1e-12):
    np.testing.assert_allclose(got.detach().numpy(), want, rtol=rtol, atol=atol)


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("whole", [False, True])
def test_freqz_matches_scipy(seed, whole):
    rng = np.random.default_rng(seed)
    nb, na = int(rng.integers(1, 18)), int(rng.integers(1, 18))
    b = rng.standard_normal(nb)
    a = rng.standard_normal(na)
    a[0] = rng.uniform(1.0, 3.0) * (1 + 0.5 * na)  # keep |A| away from 0
    fs = [2 * math.pi, 1.0, 48000.0][seed % 3]
    # worN small (direct evaluation: fewer points than coefficients), typical (FFT), 0, odd
    for worN in [int(rng.integers(1, 5)), 7, 64, 0]:
        w, h = freqz(t(b), t(a), worN=worN, whole=whole, fs=fs)
        w2, h2 = ss.freqz(b, a, worN=worN, whole=whole, fs=fs)
        close(w, w2)
        close(h, h2, rtol=1e-9, atol=1e-10)
        assert w.dtype == D and h.dtype == torch.complex128
    freqs = rng.uniform(0, fs, 9)
    w, h = freqz(t(b), t(a), worN=t(freqs), whole=whole, fs=fs)
    w2, h2 = ss.freqz(b, a, worN=freqs, whole=whole, fs=fs)
    close(w, w2)
    close(h, h2, rtol=1e-9, atol=1e-10)
    w, h = freqz(t(b), worN=list(freqs), fs=fs)  # a defaults to 1, worN a list
    close(h, ss.freqz(b, worN=freqs, fs=fs)[1], rtol=1e-9, atol=1e-10)


def test_freqz_default_and_complex():
    b, a = ss.butter(4, 0.3)
    w, h = freqz(t(b), t(a))
    w2, h2 = ss.freqz(b, a)
    assert w.shape == (512,)
    close(w, w2)
    close(h, h2)
    rng = np.random.default_rng(0)
    bc = rng.standard_normal(5) + 1j * rng.standard_normal(5)
    ac = np.array([2.0, 0.3 - 0.2j])
    for whole in [False, True]:
        w, h = freqz(t(bc), t(ac), worN=16, whole=whole)
        close(h, ss.freqz(bc, ac, worN=16, whole=whole)[1])
    w, h = freqz(t(bc), t(ac), worN=t([0.1, 1.0, 2.5]))
    close(h, ss.freqz(bc, ac, worN=[0.1, 1.0, 2.5])[1])


def test_freqz_batched():
    rng = np.random.default_rng(1)
    B = rng.standard_normal((2, 3, 4))
    A = np.concatenate([np.full((3, 1), 2.0), 0.3 * rng.standard_normal((3, 2))], -1)
    w, h = freqz(t(B), t(A), worN=33, whole=True)  # (2, 3, 4) with (3, 3): batch (2, 3)
    assert h.shape == (2, 3, 33)
    for i in range(2):
        for j in range(3):
            close(h[i, j], ss.freqz(B[i, j], A[j], worN=33, whole=True)[1])


def test_freqz_float32_and_ints():
    b, a = ss.cheby1(4, 1, 0.3)
    w, h = freqz(t(b).float(), t(a).float(), worN=100)
    assert w.dtype == torch.float32 and h.dtype == torch.complex64
    close(h, ss.freqz(b, a, worN=100)[1], rtol=1e-3, atol=1e-4)
    w, h = freqz([1, 2, 1], [4, 1], worN=8)
    assert h.dtype == torch.complex64 if torch.get_default_dtype() == torch.float32 else torch.complex128
    close(h, ss.freqz([1, 2, 1], [4, 1], worN=8)[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("seed", range(6))
def test_sosfreqz_matches_scipy(seed):
    rng = np.random.default_rng(10 + seed)
    n = int(rng.integers(1, 6))
    sos = np.concatenate([rng.standard_normal((n, 3)), np.ones((n, 1)), 0.4 * rng.standard_normal((n, 2))], -1)
    fs = [2 * math.pi, 10.0][seed % 2]
    for whole in [False, True]:
        for worN in [1, 5, 128]:
            w, h = sosfreqz(t(sos), worN=worN, whole=whole, fs=fs)
            w2, h2 = ss.sosfreqz(sos, worN=worN, whole=whole, fs=fs)
            close(w, w2)
            close(h, h2, rtol=1e-9, atol=1e-10)
    freqs = rng.uniform(0, fs / 2, 7)
    close(sosfreqz(t(sos), worN=t(freqs), fs=fs)[1], ss.sosfreqz(sos, worN=freqs, fs=fs)[1], rtol=1e-9, atol=1e-10)


def test_sosfreqz_batched_and_high_order():
    sos = ss.cheby1(12, 1, 0.05, output="sos")
    w, h = sosfreqz(t(sos), worN=2000)
    close(h, ss.sosfreqz(sos, worN=2000)[1], rtol=1e-8, atol=1e-10)
    sos2 = np.stack([sos, ss.butter(12, 0.2, output="sos")])
    w, h = sosfreqz(t(sos2), worN=50)
    assert h.shape == (2, 50)
    close(h[1], ss.sosfreqz(sos2[1], worN=50)[1])


def test_freqz_gradcheck():
    b = torch.tensor([0.3, -0.2, 0.5, 0.1], dtype=D, requires_grad=True)
    a = torch.tensor([1.2, -0.4, 0.2], dtype=D, requires_grad=True)
    for whole in [False, True]:
        for worN in [2, 9]:  # direct evaluation and FFT paths
            f = lambda b, a: freqz(b, a, worN=worN, whole=whole)[1]  # noqa: E731
            assert gradcheck(f, (b, a))
            assert gradgradcheck(f, (b, a))
    w = torch.tensor([0.1, 0.7, 2.0], dtype=D, requires_grad=True)
    f = lambda b, a, w: freqz(b, a, worN=w, fs=5.0)[1]  # noqa: E731
    assert gradcheck(f, (b, a, w))
    assert gradgradcheck(f, (b, a, w))


def test_sosfreqz_gradcheck():
    # every entry, a0 included (sections are normalized by a0, as in sosfilt)
    sos = torch.tensor([[0.3, 0.2, 0.1, 1.1, -0.5, 0.2], [1.0, -0.4, 0.3, 0.9, 0.3, 0.1]], dtype=D, requires_grad=True)
    f = lambda sos: sosfreqz(sos, worN=8)[1]  # noqa: E731
    assert gradcheck(f, (sos,))
    assert gradgradcheck(f, (sos,))


def test_sosfreqz_normalizes_a0():
    sos = ss.butter(4, 0.3, output="sos")
    scaled = sos * np.array([[1.0], [3.0]])  # scipy refuses sos[:, 3] != 1; it means the same filter
    close(sosfreqz(t(scaled), worN=16)[1], ss.sosfreqz(sos, worN=16)[1])


def test_bad_input():
    b = torch.ones(3)
    with pytest.raises(ValueError, match="worN"):
        freqz(b, worN=-1)
    with pytest.raises(ValueError, match="worN"):
        freqz(b, worN=torch.ones(2, 2))
    with pytest.raises(ValueError, match="fs"):
        freqz(b, fs=[1.0, 2.0])
    with pytest.raises(ValueError, match="fs"):
        freqz(b, fs=None)
    with pytest.raises(ValueError, match="sos"):
        sosfreqz(torch.ones(2, 5))
    with pytest.raises(ValueError, match="sos"):
        sosfreqz(torch.ones(0, 6))
    with pytest.raises(ValueError, match="sos"):
        sosfreqz(torch.tensor([[1.0, 0, 0, 0.0, 1.0, 0]]))  # a0 == 0
    with pytest.raises(ValueError, match="device"):
        freqz(b, torch.ones(1, device="meta"))
    with pytest.raises(TypeError):
        freqz(b, "abc")

