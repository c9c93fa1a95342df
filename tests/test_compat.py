"""torchaudio_lfilter: against a sequential torchaudio formulation (torchaudio is not installed
here) built from the reference loop and torchaudio's clamp/batching rules; shapes; gradients."""

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

from ssm_lfilter.compat import torchaudio_lfilter
from ssm_lfilter.reference import lfilter as ref_lfilter

D = torch.float64


def torchaudio_sequential(waveform, a_coeffs, b_coeffs, clamp=True, batching=True):
    """torchaudio.functional.lfilter's rules, one filter and one row at a time."""
    assert a_coeffs.shape == b_coeffs.shape
    T = waveform.shape[-1]
    if a_coeffs.ndim == 1:
        rows = waveform.reshape(-1, T)
        out = torch.stack([ref_lfilter(b_coeffs, a_coeffs, r)[0] for r in rows]).reshape(waveform.shape)
    elif batching:
        F = a_coeffs.shape[0]
        rows = waveform.reshape(-1, F, T)
        out = torch.stack(
            [torch.stack([ref_lfilter(b_coeffs[f], a_coeffs[f], r[f])[0] for f in range(F)]) for r in rows]
        ).reshape(waveform.shape)
    else:
        F = a_coeffs.shape[0]
        rows = waveform.reshape(-1, T)
        out = torch.stack(
            [torch.stack([ref_lfilter(b_coeffs[f], a_coeffs[f], r)[0] for f in range(F)]) for r in rows]
        ).reshape(*waveform.shape[:-1], F, T)
    return out.clamp(-1.0, 1.0) if clamp else out


def coeffs(F=None, K=3, seed=0, dtype=D):
    g = torch.Generator().manual_seed(seed)
    shape = (K,) if F is None else (F, K)
    b = 0.5 * torch.randn(shape, generator=g, dtype=dtype)
    a = 0.3 * torch.randn(shape, generator=g, dtype=dtype) / K
    a[..., 0] = 1.0 + torch.rand(shape[:-1], generator=g, dtype=dtype)  # a0 != 1 normalizes
    return a, b


@pytest.mark.parametrize("clamp", [True, False])
@pytest.mark.parametrize("shape", [(50,), (2, 50), (2, 3, 50)])
def test_1d_coefficients(shape, clamp):
    a, b = coeffs(K=4)
    x = 2 * torch.randn(shape, dtype=D)  # large enough to clip
    for batching in [True, False]:
        got = torchaudio_lfilter(x, a, b, clamp=clamp, batching=batching)
        assert got.shape == shape
        torch.testing.assert_close(got, torchaudio_sequential(x, a, b, clamp, batching))


@pytest.mark.parametrize("clamp", [True, False])
@pytest.mark.parametrize("shape", [(3, 40), (2, 3, 40), (2, 2, 3, 40)])
def test_2d_coefficients(shape, clamp):
    a, b = coeffs(F=3, K=3, seed=1)
    x = 2 * torch.randn(shape, dtype=D)
    got = torchaudio_lfilter(x, a, b, clamp=clamp)  # batching=True: rows one to one
    assert got.shape == shape
    torch.testing.assert_close(got, torchaudio_sequential(x, a, b, clamp, True))
    got = torchaudio_lfilter(x, a, b, clamp=clamp, batching=False)  # every filter on everything
    assert got.shape == (*shape[:-1], 3, 40)
    torch.testing.assert_close(got, torchaudio_sequential(x, a, b, clamp, False))


def test_batching_false_on_1d_waveform():
    a, b = coeffs(F=4, K=2, seed=2)
    x = torch.randn(30, dtype=D)
    got = torchaudio_lfilter(x, a, b, batching=False)
    assert got.shape == (4, 30)
    torch.testing.assert_close(got, torchaudio_sequential(x, a, b, True, False))


def test_float32():
    a, b = coeffs(F=2, K=3, seed=3, dtype=torch.float32)
    x = torch.rand(2, 2, 200) - 0.5
    got = torchaudio_lfilter(x, a, b)
    assert got.dtype == torch.float32
    want = torchaudio_sequential(x.double(), a.double(), b.double())
    torch.testing.assert_close(got, want.float(), rtol=1e-4, atol=1e-5)


def test_clamp_zeroes_gradients_where_clipped():
    a, b = coeffs(K=2, seed=4)
    x = (3 * torch.randn(40, dtype=D)).requires_grad_()
    y = torchaudio_lfilter(x, a, b)  # clamp=True
    clipped = torchaudio_sequential(x.detach(), a, b, clamp=False).abs() > 1
    assert clipped.any() and (~clipped).any()
    (g,) = torch.autograd.grad(y, x, grad_outputs=clipped.to(D))
    assert torch.count_nonzero(g) == 0
    (g,) = torch.autograd.grad(torchaudio_lfilter(x, a, b, clamp=False), x, grad_outputs=clipped.to(D))
    assert torch.count_nonzero(g) > 0


def test_gradcheck():
    a, b = coeffs(F=2, K=3, seed=5)
    a.requires_grad_()
    b.requires_grad_()
    x = (0.1 * torch.randn(2, 10, dtype=D)).requires_grad_()
    for batching in [True, False]:
        f = lambda x, a, b: torchaudio_lfilter(x, a, b, clamp=False, batching=batching)  # noqa: E731
        assert gradcheck(f, (x, a, b), fast_mode=True)
        assert gradgradcheck(f, (x, a, b), fast_mode=True)


def test_bad_input():
    x = torch.randn(3, 20)
    with pytest.raises(ValueError, match="same size"):
        torchaudio_lfilter(x, torch.ones(3), torch.ones(2))
    with pytest.raises(ValueError, match="2-D"):
        torchaudio_lfilter(x, torch.ones(1, 3, 2), torch.ones(1, 3, 2))
    with pytest.raises(ValueError, match="batches"):
        torchaudio_lfilter(x, torch.ones(2, 2), torch.ones(2, 2))  # F=2 but x has 3 rows
    with pytest.raises(ValueError, match="batches"):
        torchaudio_lfilter(torch.randn(20), torch.ones(2, 2), torch.ones(2, 2))
    with pytest.raises(ValueError, match="a"):
        torchaudio_lfilter(x, torch.tensor([0.0, 1.0]), torch.ones(2))

