"""sl.time_varying_lfilter / sl.time_varying_sosfilt against the sequential reference
(ssm_lfilter.reference), against scipy where coefficients are constant, and streaming."""
import numpy as np
import pytest
import scipy.signal as ss
import torch

import ssm_lfilter as sl
from ssm_lfilter import reference as ref


def gen(seed):
    return torch.Generator().manual_seed(seed)


def tv_coeffs(batch, T, M, N, g, rmax=0.9, rmin=0.0, a0_vary=True, dtype=torch.float64):
    """Random time-varying b (*batch, T, M+1) and stable-at-every-instant a (*batch, T, N+1).

    The denominator at each instant is a product of first/second-order factors with pole radius
    in [rmin, rmax], slowly varying, then scaled by a varying a0."""
    b = torch.randn(*batch, T, M + 1, generator=g, dtype=torch.float64)
    a = torch.zeros(*batch, T, N + 1, dtype=torch.float64)
    a[..., 0] = 1.0
    t = torch.linspace(0, 1, T, dtype=torch.float64)
    deg = 0
    while deg < N:
        r0 = rmin + (rmax - rmin) * torch.rand(*batch, 1, generator=g, dtype=torch.float64)
        r = r0 * (1 - 0.05 * torch.sin(6.0 * t))  # vary slowly, stay <= rmax
        if N - deg >= 2:
            th = 0.1 + 2.9 * torch.rand(*batch, 1, generator=g, dtype=torch.float64) + 0.3 * t
            fac = torch.stack([torch.ones_like(r), -2 * r * torch.cos(th), r * r], -1)
        else:
            fac = torch.stack([torch.ones_like(r), -r], -1)
        new = torch.zeros_like(a)
        for i in range(fac.shape[-1]):
            new[..., i:] += fac[..., i:i + 1] * a[..., : N + 1 - i]
        a = new
        deg += fac.shape[-1] - 1
    if a0_vary:
        a = a * (0.5 + torch.rand(*batch, T, 1, generator=g, dtype=torch.float64))
    return b.to(dtype), a.to(dtype)


def close(actual, expected, rtol=1e-9, what=""):
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    scale = max(1.0, float(expected.abs().max())) if expected.numel() else 1.0
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=rtol * scale, msg=lambda m: f"{what}: {m}")


# ------------------------------------------------------------------------------ time_varying_lfilter
@pytest.mark.parametrize("M,N", [(0, 0), (0, 1), (1, 0), (2, 2), (3, 1), (1, 4), (4, 4), (6, 3)])
def test_tv_lfilter_matches_reference(M, N):
    g = gen(10 * M + N)
    T = 150
    b, a = tv_coeffs((2,), T, M, N, g)
    x = torch.randn(2, T, generator=g, dtype=torch.float64)
    y = sl.time_varying_lfilter(b, a, x)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float64
    close(y, ref.time_varying_lfilter(b, a, x)[0], 1e-9, f"M={M} N={N}")


@pytest.mark.parametrize("M,N", [(2, 2), (0, 3), (3, 0), (1, 5)])
def test_tv_lfilter_zi_matches_reference(M, N):
    g = gen(100 + 10 * M + N)
    T = 130
    b, a = tv_coeffs((3,), T, M, N, g)
    x = torch.randn(3, T, generator=g, dtype=torch.float64)
    zi = torch.randn(3, M + N, generator=g, dtype=torch.float64)
    y, zf = sl.time_varying_lfilter(b, a, x, zi=zi)
    ey, ezf = ref.time_varying_lfilter(b, a, x, zi)
    close(y, ey, 1e-9, "y")
    close(zf, ezf, 1e-9, "zf")


def test_tv_zi_layout_is_past_inputs_then_past_outputs_newest_first():
    """Filter a prefix, build zi by hand from its last M inputs and N outputs (newest first), continue."""
    g = gen(7)
    M, N, T, k = 3, 2, 120, 50
    b, a = tv_coeffs((), T, M, N, g)
    x = torch.randn(T, generator=g, dtype=torch.float64)
    y_full = ref.time_varying_lfilter(b, a, x)[0]
    zi = torch.cat([x[k - M:k].flip(-1), y_full[k - N:k].flip(-1)])
    y2, zf2 = sl.time_varying_lfilter(b[k:], a[k:], x[k:], zi=zi)
    close(y2, y_full[k:], 1e-9, "continuation")
    close(zf2, torch.cat([x[T - M:].flip(-1), y_full[T - N:].flip(-1)]), 1e-9, "zf")


@pytest.mark.parametrize("M,N", [(2, 2), (4, 3), (0, 2)])
def test_constant_coefficients_equal_scipy(M, N):
    rng = np.random.default_rng(M * 10 + N)
    bb = rng.standard_normal(M + 1)
    poles = list(0.9 * np.exp(1j * rng.uniform(0.2, 3.0, N // 2)))
    poles = poles + [np.conj(p) for p in poles] + [-0.8] * (N % 2)
    aa = 1.7 * np.real(np.poly(poles))
    x = rng.standard_normal((2, 200))
    T = 200
    bt = torch.tensor(bb).expand(T, M + 1)
    at = torch.tensor(aa).expand(T, N + 1)
    y = sl.time_varying_lfilter(bt, at, torch.tensor(x))
    close(y, torch.tensor(ss.lfilter(bb, aa, x)), 1e-9, "per-sample constant")
    y = sl.time_varying_lfilter(torch.tensor(bb), torch.tensor(aa), torch.tensor(x))  # (M+1,) form
    close(y, torch.tensor(ss.lfilter(bb, aa, x)), 1e-9, "(M+1,) form")


def test_mixed_constant_b_and_time_varying_a():
    g = gen(8)
    T = 140
    b_tv, a = tv_coeffs((), T, 2, 2, g)
    b = b_tv[0]  # (M+1,)
    x = torch.randn(2, T, generator=g, dtype=torch.float64)
    close(sl.time_varying_lfilter(b, a, x), ref.time_varying_lfilter(b.expand(T, 3), a, x)[0], 1e-9)


@pytest.mark.parametrize("T", [1, 2, 3, 140])
def test_constant_b_with_history(T):
    """Constant b runs as one LTI FIR pass with the x history as its head, then the division by a
    time-varying a[n, 0]: against the loop, outputs and final states, short signals included."""
    g = gen(10)
    b_tv, a = tv_coeffs((2,), T, 2, 2, g)
    b = b_tv[0, 0]  # (M+1,)
    x = torch.randn(2, T, generator=g, dtype=torch.float64)
    zi = torch.randn(2, 4, generator=g, dtype=torch.float64)
    y, zf = sl.time_varying_lfilter(b, a, x, zi=zi)
    y_ref, zf_ref = ref.time_varying_lfilter(b.expand(T, 3), a, x, zi)
    close(y, y_ref, 1e-9)
    close(zf, zf_ref, 1e-9)


def test_tv_batch_dims_broadcast():
    g = gen(9)
    T = 110
    b, _ = tv_coeffs((3,), T, 2, 0, g)  # (3, T, 3)
    _, a = tv_coeffs((2, 1), T, 0, 2, g)  # (2, 1, T, 3)
    x = torch.randn(2, 3, T, generator=g, dtype=torch.float64)
    y = sl.time_varying_lfilter(b, a, x)
    close(y, ref.time_varying_lfilter(b, a, x)[0], 1e-9)


@pytest.mark.parametrize("axis", [0, 1, -3])
def test_tv_axis(axis):
    g = gen(11)
    T, M, N = 90, 2, 2
    shape = [2, 3, 4]
    shape[axis] = T
    x = torch.randn(*shape, generator=g, dtype=torch.float64)
    xm = x.movedim(axis, -1)  # (..., T)
    b, a = tv_coeffs(tuple(xm.shape[:-1]), T, M, N, g)
    # the state layout is (..., M+N): x's shape without `axis`, state last (not scipy's axis layout)
    zi = torch.randn(*xm.shape[:-1], M + N, generator=g, dtype=torch.float64)
    y, zf = sl.time_varying_lfilter(b, a, x, axis=axis, zi=zi)
    ey, ezf = ref.time_varying_lfilter(b, a, xm, zi)
    close(y, ey.movedim(-1, axis), 1e-9, "y")
    close(zf, ezf, 1e-9, "zf")


@pytest.mark.parametrize("splits", [[0, 1, 64, 65, 129, 257], [0, 100, 100, 257]])
def test_tv_streaming(splits):
    g = gen(12)
    T, M, N = 257, 3, 2
    b, a = tv_coeffs((2,), T, M, N, g, rmin=0.8, rmax=0.97)
    x = torch.randn(2, T, generator=g, dtype=torch.float64)
    zi = torch.randn(2, M + N, generator=g, dtype=torch.float64)
    y_all, zf_all = sl.time_varying_lfilter(b, a, x, zi=zi)
    z, ys = zi, []
    for s, e in zip(splits[:-1], splits[1:]):
        y, z = sl.time_varying_lfilter(b[:, s:e], a[:, s:e], x[:, s:e], zi=z)
        ys.append(y)
    torch.testing.assert_close(torch.cat(ys, -1), y_all, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(z, zf_all, rtol=1e-10, atol=1e-10)
    ey, ezf = ref.time_varying_lfilter(b, a, x, zi)
    close(y_all, ey, 1e-9)
    close(zf_all, ezf, 1e-9)


def test_tv_hard_mode_poles_near_unit_circle():
    g = gen(13)
    T = 300
    b, a = tv_coeffs((2,), T, 2, 2, g, rmin=0.99, rmax=0.999, a0_vary=False)
    x = torch.randn(2, T, generator=g, dtype=torch.float64)
    close(sl.time_varying_lfilter(b, a, x), ref.time_varying_lfilter(b, a, x)[0], 1e-8, "float64")
    y32 = sl.time_varying_lfilter(b.float(), a.float(), x.float())
    assert y32.dtype == torch.float32
    e = ref.time_varying_lfilter(b.float().double(), a.float().double(), x.float().double())[0]
    err = float((y32.double() - e).abs().max() / e.abs().max())
    assert err < 1e-4, f"float32 hard mode relative error {err:.2e}"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_tv_low_precision_in_and_out(dtype):
    g = gen(14)
    T = 200
    b, a = tv_coeffs((2,), T, 2, 2, g, rmax=0.8)
    x = torch.randn(2, T, generator=g, dtype=torch.float64)
    b, a, x = b.to(dtype), a.to(dtype), x.to(dtype)
    y = sl.time_varying_lfilter(b, a, x)
    assert y.dtype == dtype
    e = ref.time_varying_lfilter(b.double(), a.double(), x.double())[0]
    tol = {torch.float32: 1e-5, torch.float16: 2e-2, torch.bfloat16: 8e-2}[dtype]
    close(y.double(), e, tol, str(dtype))


def test_tv_integer_input_promotes():
    T = 20
    y = sl.time_varying_lfilter(torch.ones(T, 2), torch.tensor([1.0, -0.5]).expand(T, 2), torch.arange(T))
    assert y.dtype == torch.float32
    close(y.double(), torch.tensor(ss.lfilter([1.0, 1.0], [1.0, -0.5], np.arange(T * 1.0))), 1e-6)


# ----------------------------------------------------------------------------- time_varying_sosfilt
def tv_sos(batch, T, S, g, rmax=0.9, rmin=0.0):
    secs = []
    for _ in range(S):
        b, a = tv_coeffs(batch, T, 2, 2, g, rmax=rmax, rmin=rmin)
        secs.append(torch.cat([b, a], -1))
    return torch.stack(secs, -2)  # (*batch, T, S, 6)


@pytest.mark.parametrize("S", [1, 2, 4])
def test_tv_sosfilt_matches_reference(S):
    g = gen(20 + S)
    T = 160
    sos = tv_sos((2,), T, S, g)
    x = torch.randn(2, T, generator=g, dtype=torch.float64)
    zi = torch.randn(S, 2, 4, generator=g, dtype=torch.float64)
    y = sl.time_varying_sosfilt(sos, x)
    close(y, ref.time_varying_sosfilt(sos, x)[0], 1e-9, "no zi")
    y, zf = sl.time_varying_sosfilt(sos, x, zi=zi)
    ey, ezf = ref.time_varying_sosfilt(sos, x, zi)
    assert zf.shape == (S, 2, 4)
    close(y, ey, 1e-9, "y")
    close(zf, ezf, 1e-9, "zf")


def test_tv_sosfilt_shared_sos_over_batch_and_axis():
    g = gen(30)
    T, S = 100, 2
    sos = tv_sos((), T, S, g)  # (T, S, 6) shared by all rows
    x = torch.randn(T, 3, generator=g, dtype=torch.float64)
    zi = torch.randn(S, 3, 4, generator=g, dtype=torch.float64)  # (n_sections, ..., 4)
    y, zf = sl.time_varying_sosfilt(sos, x, axis=0, zi=zi)
    ey, ezf = ref.time_varying_sosfilt(sos, x.T, zi)
    close(y, ey.T, 1e-9, "y")
    close(zf, ezf, 1e-9, "zf")


def test_tv_sosfilt_constant_equals_scipy_sosfilt_without_zi():
    sos = ss.cheby1(6, 1, 0.25, output="sos")
    T = 200
    x = np.random.default_rng(31).standard_normal((2, T))
    y = sl.time_varying_sosfilt(torch.tensor(sos).expand(T, 3, 6), torch.tensor(x))
    close(y, torch.tensor(ss.sosfilt(sos, x)), 1e-9)


def test_tv_sosfilt_streaming():
    g = gen(32)
    T, S = 200, 3
    sos = tv_sos((2,), T, S, g, rmin=0.8, rmax=0.97)
    x = torch.randn(2, T, generator=g, dtype=torch.float64)
    y_all, zf_all = sl.time_varying_sosfilt(sos, x, zi=torch.zeros(S, 2, 4, dtype=torch.float64))
    z, ys = torch.zeros(S, 2, 4, dtype=torch.float64), []
    for s, e in [(0, 1), (1, 65), (65, 65), (65, 200)]:
        y, z = sl.time_varying_sosfilt(sos[:, s:e], x[:, s:e], zi=z)
        ys.append(y)
    torch.testing.assert_close(torch.cat(ys, -1), y_all, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(z, zf_all, rtol=1e-10, atol=1e-10)
    close(y_all, ref.time_varying_sosfilt(sos, x)[0], 1e-9)


def test_tv_sosfilt_float32():
    g = gen(33)
    T, S = 250, 2
    sos = tv_sos((2,), T, S, g, rmax=0.95)
    x = torch.randn(2, T, generator=g, dtype=torch.float64)
    y = sl.time_varying_sosfilt(sos.float(), x.float())
    assert y.dtype == torch.float32
    close(y.double(), ref.time_varying_sosfilt(sos.float().double(), x.float().double())[0], 2e-5)


def test_tv_backend_torch_env_equals_default(monkeypatch):
    g = gen(34)
    T = 200
    b, a = tv_coeffs((2,), T, 2, 3, g)
    x = torch.randn(2, T, generator=g, dtype=torch.float64)
    monkeypatch.delenv("SSM_LFILTER_BACKEND", raising=False)
    y0 = sl.time_varying_lfilter(b, a, x)
    monkeypatch.setenv("SSM_LFILTER_BACKEND", "torch")
    y1 = sl.time_varying_lfilter(b, a, x)
    torch.testing.assert_close(y1, y0, rtol=1e-13, atol=1e-13)
    close(y0, ref.time_varying_lfilter(b, a, x)[0], 1e-9)
