"""sl.linear_recurrence against the sequential reference and scipy.signal.lfilter (constant a)."""
import numpy as np
import pytest
import scipy.signal as ss
import torch

import ssm_lfilter as sl
from ssm_lfilter import reference as ref


def gen(seed):
    return torch.Generator().manual_seed(seed)


def rand_a(shape, g, dtype=torch.float64, rmin=0.0, rmax=0.99):
    r = rmin + (rmax - rmin) * torch.rand(*shape, generator=g, dtype=torch.float64)
    if dtype.is_complex:
        th = 2 * np.pi * torch.rand(*shape, generator=g, dtype=torch.float64)
        return torch.polar(r, th).to(dtype)
    sign = torch.where(torch.rand(*shape, generator=g) < 0.3, -1.0, 1.0).to(torch.float64)
    return (r * sign).to(dtype)


def rand_u(shape, g, dtype=torch.float64):
    if dtype.is_complex:
        return torch.complex(torch.randn(*shape, generator=g, dtype=torch.float64),
                             torch.randn(*shape, generator=g, dtype=torch.float64)).to(dtype)
    return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)


def close(actual, expected, rtol=1e-10, what=""):
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    scale = max(1.0, float(expected.abs().max())) if expected.numel() else 1.0
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=rtol * scale, msg=lambda m: f"{what}: {m}")


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("T", [1, 2, 63, 64, 65, 300])
def test_matches_reference(dtype, reverse, T):
    g = gen(T + 1000 * reverse)
    a = rand_a((3, T), g, dtype)
    u = rand_u((3, T), g, dtype)
    h0 = rand_u((3,), g, dtype)
    close(sl.linear_recurrence(a, u, reverse=reverse), ref.linear_recurrence(a, u, reverse=reverse), 1e-10, "no h0")
    close(sl.linear_recurrence(a, u, h0, reverse=reverse), ref.linear_recurrence(a, u, h0, reverse), 1e-10, "h0")


def test_reverse_semantics_explicit():
    a = torch.tensor([0.5, 2.0, -1.0], dtype=torch.float64)
    u = torch.tensor([1.0, 10.0, 100.0], dtype=torch.float64)
    # forward: h0 = 3: h = [0.5*3+1, 2*2.5+10, -1*15+100]
    close(sl.linear_recurrence(a, u, torch.tensor(3.0, dtype=torch.float64)),
          torch.tensor([2.5, 15.0, 85.0], dtype=torch.float64))
    # reverse: h[2] = -1*3+100 = 97, h[1] = 2*97+10 = 204, h[0] = 0.5*204+1 = 103
    close(sl.linear_recurrence(a, u, torch.tensor(3.0, dtype=torch.float64), reverse=True),
          torch.tensor([103.0, 204.0, 97.0], dtype=torch.float64))


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_constant_a_equals_scipy_lfilter(dtype):
    g = gen(3)
    a = rand_a((4,), g, dtype)
    u = rand_u((4, 200), g, dtype)
    h0 = rand_u((4,), g, dtype)
    h = sl.linear_recurrence(a[:, None], u, h0)
    an, un, h0n = a.numpy(), u.numpy(), h0.numpy()
    expected = np.stack([ss.lfilter([1.0], [1.0, -an[i]], un[i], zi=[an[i] * h0n[i]])[0] for i in range(4)])
    close(h, torch.from_numpy(expected), 1e-10)


def test_broadcast_constant_a_per_channel():
    g = gen(4)
    B, C, T = 2, 3, 150
    a = rand_a((C, 1), g)  # constant in time, per channel
    u = rand_u((B, C, T), g)
    h0 = rand_u((B, C), g)
    close(sl.linear_recurrence(a, u, h0), ref.linear_recurrence(a.expand(B, C, T), u, h0), 1e-10)


def test_broadcast_shared_a_over_batch():
    g = gen(5)
    a = rand_a((100,), g, torch.complex128)  # (T,) time-varying, shared by every row
    u = rand_u((2, 3, 100), g, torch.complex128)
    close(sl.linear_recurrence(a, u), ref.linear_recurrence(a.expand(2, 3, 100), u), 1e-10)


def test_real_a_complex_u_promotes():
    g = gen(6)
    a = rand_a((2, 80), g)
    u = rand_u((2, 80), g, torch.complex128)
    h = sl.linear_recurrence(a, u)
    assert h.dtype == torch.complex128
    close(h, ref.linear_recurrence(a.to(torch.complex128), u), 1e-10)


@pytest.mark.parametrize("dim", [0, 1, -2])
@pytest.mark.parametrize("reverse", [False, True])
def test_dim(dim, reverse):
    g = gen(7)
    shape = [3, 4, 5]
    shape[dim] = 90
    a = rand_a(shape, g)
    u = rand_u(shape, g)
    h0_last = rand_u(tuple(torch.empty(shape).movedim(dim, -1).shape[:-1]), g)
    h = sl.linear_recurrence(a, u, h0_last, reverse=reverse, dim=dim)
    e = ref.linear_recurrence(a.movedim(dim, -1), u.movedim(dim, -1), h0_last, reverse).movedim(-1, dim)
    close(h, e, 1e-10)


@pytest.mark.parametrize("reverse", [False, True])
def test_streaming(reverse):
    g = gen(8)
    a = rand_a((2, 257), g, torch.complex128, rmin=0.9)
    u = rand_u((2, 257), g, torch.complex128)
    h_all = sl.linear_recurrence(a, u, reverse=reverse)
    cuts = [0, 1, 64, 65, 200, 257]
    chunks = list(zip(cuts[:-1], cuts[1:]))
    if reverse:
        chunks = chunks[::-1]
    h0, parts = None, {}
    for s, e in chunks:
        parts[s] = sl.linear_recurrence(a[:, s:e], u[:, s:e], h0, reverse=reverse)
        h0 = parts[s][:, 0] if reverse else parts[s][:, -1]
    torch.testing.assert_close(torch.cat([parts[s] for s, _ in sorted(chunks)], -1), h_all, rtol=1e-10,
                               atol=1e-10)


@pytest.mark.parametrize("dtype,rtol", [(torch.float32, 1e-5), (torch.complex64, 1e-5)])
def test_single_precision(dtype, rtol):
    g = gen(9)
    a = rand_a((2, 500), g, dtype, rmin=0.9, rmax=0.999)
    u = rand_u((2, 500), g, dtype)
    h = sl.linear_recurrence(a, u)
    assert h.dtype == dtype
    wide = torch.complex128 if dtype.is_complex else torch.float64
    close(h.to(wide), ref.linear_recurrence(a.to(wide), u.to(wide)), rtol)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_in_and_out(dtype):
    g = gen(10)
    a = rand_a((2, 200), g, rmax=0.9).to(dtype)
    u = rand_u((2, 200), g).to(dtype)
    h = sl.linear_recurrence(a, u)
    assert h.dtype == dtype
    close(h.double(), ref.linear_recurrence(a.double(), u.double()), 2e-2 if dtype == torch.float16 else 8e-2)


def test_integer_input_promotes_to_default_float():
    h = sl.linear_recurrence(torch.tensor([1, 1, 1]), torch.tensor([1, 2, 3]))
    assert h.dtype == torch.get_default_dtype()
    torch.testing.assert_close(h, torch.tensor([1.0, 3.0, 6.0]))


def test_hard_mode_complex_near_unit_circle_values_and_gradients():
    """|a| in [0.99, 0.9999]: the regime where a complex backward-carry bug hid elsewhere."""
    g = gen(11)
    T = 300
    for reverse in (False, True):
        a = rand_a((2, T), g, torch.complex128, rmin=0.99, rmax=0.9999).requires_grad_()
        u = rand_u((2, T), g, torch.complex128).requires_grad_()
        h0 = rand_u((2,), g, torch.complex128).requires_grad_()
        w = rand_u((2, T), g, torch.complex128)
        h = sl.linear_recurrence(a, u, h0, reverse=reverse)
        e = ref.linear_recurrence(a, u, h0, reverse)
        close(h.detach(), e.detach(), 1e-9, f"values reverse={reverse}")
        got = torch.autograd.grad((h * w.conj()).real.sum(), (a, u, h0))
        exp = torch.autograd.grad((e * w.conj()).real.sum(), (a, u, h0))
        for name, gg, ee in zip("a u h0".split(), got, exp):
            close(gg, ee, 1e-8, f"grad {name} reverse={reverse}")


def test_backend_torch_env_equals_default(monkeypatch):
    g = gen(12)
    a = rand_a((2, 300), g, torch.complex128)
    u = rand_u((2, 300), g, torch.complex128)
    monkeypatch.delenv("SSM_LFILTER_BACKEND", raising=False)
    h0 = sl.linear_recurrence(a, u)
    monkeypatch.setenv("SSM_LFILTER_BACKEND", "torch")
    h1 = sl.linear_recurrence(a, u)
    torch.testing.assert_close(h1, h0, rtol=1e-13, atol=1e-13)
    close(h0, ref.linear_recurrence(a, u), 1e-10)
