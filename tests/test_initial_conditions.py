"""lfilter_zi, sosfilt_zi, lfiltic: scipy parity, batching, dtypes, gradients, bad input."""

import numpy as np
import pytest
import scipy.signal as ss
import torch
from torch.autograd import gradcheck, gradgradcheck

from helpers import rand_sos, stable_a
from ssm_lfilter.initial_conditions import lfilter_zi, lfiltic, sosfilt_zi
from ssm_lfilter.reference import lfilter as ref_lfilter

D = torch.float64


def t(v):
    return torch.as_tensor(np.asarray(v))


@pytest.mark.parametrize("seed", range(12))
def test_lfilter_zi_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    nb, na = rng.integers(1, 10), rng.integers(1, 10)
    b = rng.standard_normal(nb)
    a = stable_a(rng, na - 1) * rng.uniform(0.5, 2.0)  # a[0] != 1 exercises the normalization
    got = lfilter_zi(t(b), t(a))
    np.testing.assert_allclose(got.numpy(), ss.lfilter_zi(b, a), rtol=1e-10, atol=1e-12)
    assert got.dtype == D


def test_lfilter_zi_steady_state():
    b, a = ss.butter(5, 0.25)
    zi = lfilter_zi(t(b), t(a))
    y, _ = ref_lfilter(t(b), t(a), torch.ones(10, dtype=D), zi)
    torch.testing.assert_close(y, torch.ones(10, dtype=D))


def test_lfilter_zi_strips_leading_zeros_of_a():
    b, a = np.array([1.0, 0.5, 0.25]), np.array([0.0, 0.0, 2.0, -0.5])
    got = lfilter_zi(t(b), t(a))
    np.testing.assert_allclose(got.numpy(), ss.lfilter_zi(b, a), rtol=1e-12)
    assert got.shape == (2,)


def test_lfilter_zi_complex_and_python_inputs():
    rng = np.random.default_rng(1)
    b = rng.standard_normal(3) + 1j * rng.standard_normal(3)
    a = np.array([1.0, -0.5 + 0.2j, 0.1])
    np.testing.assert_allclose(lfilter_zi(t(b), t(a)).numpy(), ss.lfilter_zi(b, a), rtol=1e-10)
    got = lfilter_zi([1, 2, 1], [4, -1, 1])  # ints promote to the default float dtype
    assert got.dtype == torch.get_default_dtype()
    np.testing.assert_allclose(got.numpy(), ss.lfilter_zi([1, 2, 1], [4, -1, 1]), rtol=1e-5, atol=1e-6)


def test_lfilter_zi_batched():
    rng = np.random.default_rng(2)
    B = np.stack([rng.standard_normal(4) for _ in range(3)])
    A = np.stack([stable_a(rng, 2) for _ in range(3)])
    got = lfilter_zi(t(B)[:, None], t(A)[None])  # (3, 1, 4), (1, 3, 3) -> (3, 3, 3)
    assert got.shape == (3, 3, 3)
    for i in range(3):
        for j in range(3):
            np.testing.assert_allclose(got[i, j].numpy(), ss.lfilter_zi(B[i], A[j]), rtol=1e-10, atol=1e-12)


def test_lfilter_zi_order_zero():
    got = lfilter_zi(torch.tensor([2.0], dtype=D), torch.tensor([4.0], dtype=D))
    assert got.shape == (0,)


def test_lfilter_zi_float32_and_half():
    b, a = ss.butter(3, 0.3)
    got = lfilter_zi(t(b).float(), t(a).float())
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), ss.lfilter_zi(b, a), rtol=1e-4, atol=1e-5)
    got = lfilter_zi(t(b).half(), t(a).half())
    assert got.dtype == torch.float16


@pytest.mark.parametrize("seed", range(8))
def test_sosfilt_zi_matches_scipy(seed):
    rng = np.random.default_rng(100 + seed)
    sos = rand_sos(rng, int(rng.integers(1, 6)))
    sos[:, 3:] *= rng.uniform(0.5, 2.0, (sos.shape[0], 1))  # a0 != 1 is normalized per section
    got = sosfilt_zi(t(sos))
    np.testing.assert_allclose(got.numpy(), ss.sosfilt_zi(sos), rtol=1e-10, atol=1e-12)


def test_sosfilt_zi_batched_layout():
    rng = np.random.default_rng(3)
    sos = np.stack([rand_sos(rng, 3) for _ in range(4)])  # (4, 3, 6)
    got = sosfilt_zi(t(sos))
    assert got.shape == (3, 4, 2)  # (n_sections, ..., 2), sosfilt's zi layout
    for i in range(4):
        np.testing.assert_allclose(got[:, i].numpy(), ss.sosfilt_zi(sos[i]), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seed", range(12))
def test_lfiltic_matches_scipy(seed):
    rng = np.random.default_rng(200 + seed)
    nb, na = rng.integers(1, 8), rng.integers(1, 8)
    b = rng.standard_normal(nb)
    a = rng.standard_normal(na)
    a[0] = rng.uniform(0.5, 2.0)
    y = rng.standard_normal(rng.integers(1, 10))  # shorter or longer than N
    if seed % 3 == 0:
        np.testing.assert_allclose(lfiltic(t(b), t(a), t(y)).numpy(), ss.lfiltic(b, a, y), rtol=1e-10, atol=1e-12)
    else:
        x = rng.standard_normal(rng.integers(1, 10))
        np.testing.assert_allclose(
            lfiltic(t(b), t(a), t(y), t(x)).numpy(), ss.lfiltic(b, a, y, x), rtol=1e-10, atol=1e-12
        )


def test_lfiltic_continues_a_filter():
    rng = np.random.default_rng(4)
    b, a = t(rng.standard_normal(4)), t(stable_a(rng, 3))
    x = t(rng.standard_normal(30))
    y, _ = ref_lfilter(b, a, x)
    zi = lfiltic(b, a, torch.flip(y[:12], (0,)), torch.flip(x[:12], (0,)))
    y2, _ = ref_lfilter(b, a, x[12:], zi)
    torch.testing.assert_close(y2, y[12:])


def test_lfiltic_batched_and_ints():
    rng = np.random.default_rng(5)
    b, a = rng.standard_normal(3), np.array([1.0, -0.3, 0.2])
    Y = rng.standard_normal((4, 2))
    got = lfiltic(t(b), t(a), t(Y))
    assert got.shape == (4, 2)
    for i in range(4):
        np.testing.assert_allclose(got[i].numpy(), ss.lfiltic(b, a, Y[i]), rtol=1e-12)
    got = lfiltic([1, 2], [1, 1], [3])
    assert got.dtype == torch.get_default_dtype()
    np.testing.assert_allclose(got.numpy(), ss.lfiltic([1, 2], [1, 1], [3]))


def _req(*xs):
    return [torch.tensor(x, dtype=D, requires_grad=True) for x in xs]


def test_lfilter_zi_gradcheck():
    b, a = _req([0.3, -0.2, 0.5, 0.1], [1.2, -0.4, 0.2])
    assert gradcheck(lfilter_zi, (b, a))
    assert gradgradcheck(lfilter_zi, (b, a))


def test_sosfilt_zi_gradcheck():
    (sos,) = _req([[0.3, 0.2, 0.1, 1.1, -0.5, 0.2], [1.0, -0.4, 0.3, 0.9, 0.3, 0.1]])
    assert gradcheck(sosfilt_zi, (sos,))
    assert gradgradcheck(sosfilt_zi, (sos,))


def test_lfiltic_gradcheck():
    b, a, y, x = _req([0.3, -0.2, 0.5, 0.1], [1.2, -0.4, 0.2], [0.5, -1.0], [0.3, 0.1, 0.7, 0.2])
    assert gradcheck(lfiltic, (b, a, y, x))
    assert gradgradcheck(lfiltic, (b, a, y, x))


def test_bad_input():
    with pytest.raises(ValueError, match="a"):
        lfilter_zi(torch.ones(3), torch.zeros(3))
    with pytest.raises(ValueError, match="a"):
        lfilter_zi(torch.ones(3), torch.tensor([[1.0, 0.5], [0.0, 0.5]]))  # one filter of a batch has a0 = 0
    with pytest.raises(ValueError, match="expected"):
        lfilter_zi(torch.tensor(1.0), torch.ones(2))
    with pytest.raises(ValueError, match="a"):
        lfiltic(torch.ones(3), torch.tensor([0.0, 1.0]), torch.ones(1))
    with pytest.raises(ValueError, match="a"):
        lfiltic(torch.ones(3), torch.zeros(0), torch.ones(1))
    with pytest.raises(ValueError, match="sos"):
        sosfilt_zi(torch.ones(3, 5))
    with pytest.raises(ValueError, match="sos"):
        sosfilt_zi(torch.tensor([[1.0, 0, 0, 0, 0, 0]]))
    with pytest.raises(ValueError, match="device"):
        lfilter_zi(torch.ones(3), torch.ones(2, device="meta"))
    with pytest.raises(TypeError):
        lfilter_zi(torch.ones(3), "abc")

