"""gradcheck / gradgradcheck (float64) for every tensor argument of lfilter, sosfilt,
time_varying_lfilter, time_varying_sosfilt and linear_recurrence, with poles near the unit circle and
lengths that straddle block boundaries; plus first-order gradients against autograd through the
sequential reference on longer hard-mode signals."""
import math

import numpy as np
import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

import ssm_lfilter as sl
from ssm_lfilter import reference as ref

# The LTI engine uses blocks of 32 (orders <= 2) or 64; the time-varying engine 16; the diagonal 64.
LENGTHS = [1, 2, 31, 32, 33, 63, 64, 65, 129, 200]
GG_LENGTHS = [1, 2, 33, 63, 65, 129]
TV_LENGTHS = [1, 2, 15, 16, 17, 33, 64, 65]
F64 = dict(dtype=torch.float64)


def gen(seed):
    return torch.Generator().manual_seed(seed)


def fast(T):
    """Full Jacobians on the shortest signals; random projections (analytic vs numeric J along random
    directions: any wrong entry is caught with probability 1) elsewhere, to keep CI time sane."""
    return T > 2


def biquad_a(r, theta, a0=1.0):
    return torch.tensor([1.0, -2 * r * math.cos(theta), r * r], **F64) * a0


def a0_one(sos):
    """scipy requires sos[..., 3] == 1 and so does sosfilt: gradcheck perturbs every entry, so pin
    that column to the constant 1 (the other five columns stay differentiable inputs)."""
    return torch.cat([sos[..., :3], torch.ones_like(sos[..., 3:4]), sos[..., 4:]], -1)


def leaf(t):
    return t.detach().clone().requires_grad_(True)


# ------------------------------------------------------------------------------------------- lfilter
@pytest.mark.parametrize("T", LENGTHS)
def test_lfilter_gradcheck_all_args_near_unit_circle(T):
    g = gen(T)
    b = leaf(torch.randn(4, generator=g, **F64))  # M = 3 > N = 2: K = 3
    a = leaf(biquad_a(0.99, 0.3, a0=1.3))
    x = leaf(torch.randn(2, T, generator=g, **F64))
    zi = leaf(torch.randn(2, 3, generator=g, **F64))
    assert gradcheck(lambda b, a, x, zi: sl.lfilter(b, a, x, zi=zi), (b, a, x, zi), fast_mode=fast(T))


@pytest.mark.parametrize("T", GG_LENGTHS)
def test_lfilter_gradgradcheck(T):
    g = gen(100 + T)
    b = leaf(torch.randn(2, generator=g, **F64))  # M = 1 < N = 3
    a = leaf(torch.tensor([1.2, -1.5, 0.9, -0.2], **F64))
    assert np.all(np.abs(np.roots(a.detach().numpy())) < 1)
    x = leaf(torch.randn(2, T, generator=g, **F64))
    zi = leaf(torch.randn(2, 3, generator=g, **F64))
    assert gradgradcheck(lambda b, a, x, zi: sl.lfilter(b, a, x, zi=zi), (b, a, x, zi), fast_mode=fast(T))


@pytest.mark.parametrize("T", [2, 65, 129])
def test_lfilter_gradcheck_per_channel_coefficients_and_axis(T):
    g = gen(200 + T)
    C = 3
    b = leaf(torch.randn(C, 3, generator=g, **F64))
    a = leaf(torch.stack([biquad_a(r, th) for r, th in [(0.9, 0.5), (0.98, 1.0), (0.5, 2.0)]]))
    x = leaf(torch.randn(2, T, C, generator=g, **F64))
    zi = leaf(torch.randn(2, 2, C, generator=g, **F64))
    fn = lambda b, a, x, zi: sl.lfilter(b, a, x, axis=1, zi=zi)  # noqa: E731
    assert gradcheck(fn, (b, a, x, zi), fast_mode=fast(T))
    if T <= 65:
        assert gradgradcheck(fn, (b, a, x, zi), fast_mode=fast(T))


@pytest.mark.parametrize("T", [1, 64, 129])
def test_lfilter_gradcheck_complex(T):
    g = gen(300 + T)
    b = leaf(torch.randn(3, generator=g, dtype=torch.complex128))
    a = leaf(torch.tensor([1.0, -0.9j, -0.1], dtype=torch.complex128))
    x = leaf(torch.randn(2, T, generator=g, dtype=torch.complex128))
    zi = leaf(torch.randn(2, 2, generator=g, dtype=torch.complex128))
    fn = lambda b, a, x, zi: sl.lfilter(b, a, x, zi=zi)  # noqa: E731
    assert gradcheck(fn, (b, a, x, zi), fast_mode=fast(T))
    if T <= 64:
        assert gradgradcheck(fn, (b, a, x, zi), fast_mode=True)


@pytest.mark.parametrize("T", [1, 97])
def test_lfilter_gradcheck_complex_leading_coefficient(T):
    """Without ``zi`` the op divides by ``a0`` itself (``monic=False``): the gradients of a complex
    ``a0`` (conjugated as torch's division is) and of per-row coefficients shared by broadcast."""
    g = gen(350 + T)
    b = leaf(torch.randn(2, 1, 3, generator=g, dtype=torch.complex128))
    a = leaf(torch.tensor([1.3 + 0.4j, -0.9j, -0.1], dtype=torch.complex128))
    x = leaf(torch.randn(2, 3, T, generator=g, dtype=torch.complex128))
    fn = lambda b, a, x: sl.lfilter(b, a, x)  # noqa: E731
    assert gradcheck(fn, (b, a, x))
    assert gradgradcheck(fn, (b, a, x), fast_mode=True)


@pytest.mark.parametrize("nb,na", [(0, 0), (0, 1), (3, 0), (8, 8)])
def test_lfilter_gradcheck_orders(nb, na):
    g = gen(400 + nb * 10 + na)
    T = 70
    poles = [0.8 * np.exp(1j * th) for th in np.linspace(0.3, 2.8, na // 2)]
    a_np = np.real(np.poly(poles + [np.conj(p) for p in poles] + [0.5] * (na % 2))) if na else np.ones(1)
    b = leaf(torch.randn(nb + 1, generator=g, **F64))
    a = leaf(torch.tensor(a_np * 0.7, **F64))
    x = leaf(torch.randn(1, T, generator=g, **F64))
    zi = leaf(torch.randn(1, max(nb, na), generator=g, **F64))
    assert gradcheck(lambda b, a, x, zi: sl.lfilter(b, a, x, zi=zi), (b, a, x, zi), fast_mode=True)
    # from rest too: a pure FIR (na = 0) with a0 = 0.7 still depends on a0 (its gradient was once 0)
    assert gradcheck(lambda b, a, x: sl.lfilter(b, a, x), (b, a, x), fast_mode=True)


# ------------------------------------------------------------------------------------------- sosfilt
@pytest.mark.parametrize("T", LENGTHS)
def test_sosfilt_gradcheck_all_args(T):
    g = gen(500 + T)
    sos = leaf(torch.cat([torch.randn(2, 3, generator=g, **F64),
                          torch.stack([biquad_a(0.99, 0.2), biquad_a(0.95, 1.7)])], -1))
    x = leaf(torch.randn(2, T, generator=g, **F64))
    zi = leaf(torch.randn(2, 2, 2, generator=g, **F64))
    assert gradcheck(lambda s, x, zi: sl.sosfilt(a0_one(s), x, zi=zi), (sos, x, zi), fast_mode=fast(T))


@pytest.mark.parametrize("T", GG_LENGTHS)
def test_sosfilt_gradgradcheck(T):
    g = gen(600 + T)
    sos = leaf(torch.cat([torch.randn(2, 3, generator=g, **F64),
                          torch.stack([biquad_a(0.97, 0.4), biquad_a(0.9, 2.0)])], -1))
    x = leaf(torch.randn(2, T, generator=g, **F64))
    zi = leaf(torch.randn(2, 2, 2, generator=g, **F64))
    assert gradgradcheck(lambda s, x, zi: sl.sosfilt(a0_one(s), x, zi=zi), (sos, x, zi), fast_mode=fast(T))


def test_sosfilt_gradcheck_batched_sos():
    g = gen(650)
    T = 65
    sos = leaf(torch.cat([torch.randn(3, 1, 3, generator=g, **F64),
                          torch.stack([biquad_a(0.9, 0.4), biquad_a(0.99, 1.0), biquad_a(0.5, 2.0)])[:, None]], -1))
    x = leaf(torch.randn(2, 3, T, generator=g, **F64))
    zi = leaf(torch.randn(1, 2, 3, 2, generator=g, **F64))
    assert gradcheck(lambda s, x, zi: sl.sosfilt(a0_one(s), x, zi=zi), (sos, x, zi), fast_mode=True)


# ------------------------------------------------------------------------------------- time-varying
def tv_coeffs(T, g, rmax=0.97):
    r = rmax * (1 - 0.03 * torch.rand(T, generator=g, **F64))
    th = 0.5 + 0.5 * torch.rand(T, generator=g, **F64)
    a = torch.stack([torch.ones(T, **F64), -2 * r * torch.cos(th), r * r], -1)
    a = a * (0.8 + 0.4 * torch.rand(T, 1, generator=g, **F64))
    b = torch.randn(T, 3, generator=g, **F64)
    return b, a


@pytest.mark.parametrize("T", TV_LENGTHS)
def test_tv_lfilter_gradcheck_all_args(T):
    g = gen(700 + T)
    b, a = tv_coeffs(T, g)
    b, a = leaf(b), leaf(a)
    x = leaf(torch.randn(2, T, generator=g, **F64))
    zi = leaf(torch.randn(2, 4, generator=g, **F64))
    fn = lambda b, a, x, zi: sl.time_varying_lfilter(b, a, x, zi=zi)  # noqa: E731
    assert gradcheck(fn, (b, a, x, zi), fast_mode=fast(T))


@pytest.mark.parametrize("T", [1, 2, 17, 65])
def test_tv_lfilter_gradgradcheck(T):
    g = gen(800 + T)
    b, a = tv_coeffs(T, g, rmax=0.9)
    b, a = leaf(b), leaf(a)
    x = leaf(torch.randn(2, T, generator=g, **F64))
    zi = leaf(torch.randn(2, 4, generator=g, **F64))
    fn = lambda b, a, x, zi: sl.time_varying_lfilter(b, a, x, zi=zi)  # noqa: E731
    assert gradgradcheck(fn, (b, a, x, zi), fast_mode=True)


def test_tv_lfilter_gradcheck_constant_coefficients_broadcast():
    g = gen(850)
    T = 65
    b = leaf(torch.randn(3, generator=g, **F64))  # (M+1,) constant
    a = leaf(tv_coeffs(T, g)[1])  # (T, N+1)
    x = leaf(torch.randn(2, T, generator=g, **F64))
    assert gradcheck(lambda b, a, x: sl.time_varying_lfilter(b, a, x), (b, a, x), fast_mode=True)


@pytest.mark.parametrize("T", [1, 16, 17, 65])
def test_tv_sosfilt_gradcheck_all_args(T):
    g = gen(900 + T)
    s1 = torch.cat(tv_coeffs(T, g), -1)
    s2 = torch.cat(tv_coeffs(T, g, rmax=0.8), -1)
    sos = leaf(torch.stack([s1, s2], -2))  # (T, 2, 6)
    x = leaf(torch.randn(2, T, generator=g, **F64))
    zi = leaf(torch.randn(2, 2, 4, generator=g, **F64))
    fn = lambda s, x, zi: sl.time_varying_sosfilt(s, x, zi=zi)  # noqa: E731
    assert gradcheck(fn, (sos, x, zi), fast_mode=fast(T))
    if T <= 64:
        assert gradgradcheck(fn, (sos, x, zi), fast_mode=True)


# -------------------------------------------------------------------------------- linear_recurrence
@pytest.mark.parametrize("T", LENGTHS)
@pytest.mark.parametrize("reverse", [False, True])
def test_linear_recurrence_gradcheck(T, reverse):
    g = gen(1000 + T + 7 * reverse)
    a = leaf(0.99 * (2 * torch.rand(2, T, generator=g, **F64) - 1).sign() *
             (0.9 + 0.1 * torch.rand(2, T, generator=g, **F64)))
    u = leaf(torch.randn(2, T, generator=g, **F64))
    h0 = leaf(torch.randn(2, generator=g, **F64))
    fn = lambda a, u, h0: sl.linear_recurrence(a, u, h0, reverse=reverse)  # noqa: E731
    assert gradcheck(fn, (a, u, h0), fast_mode=fast(T))


@pytest.mark.parametrize("T", [1, 2, 65, 129])
@pytest.mark.parametrize("reverse", [False, True])
def test_linear_recurrence_complex_gradcheck_gradgradcheck(T, reverse):
    g = gen(1100 + T + 7 * reverse)
    a = leaf(torch.polar(0.95 + 0.049 * torch.rand(2, T, generator=g, **F64),
                         6.28 * torch.rand(2, T, generator=g, **F64)))
    u = leaf(torch.randn(2, T, generator=g, dtype=torch.complex128))
    h0 = leaf(torch.randn(2, generator=g, dtype=torch.complex128))
    fn = lambda a, u, h0: sl.linear_recurrence(a, u, h0, reverse=reverse)  # noqa: E731
    assert gradcheck(fn, (a, u, h0), fast_mode=fast(T))
    assert gradgradcheck(fn, (a, u, h0), fast_mode=True)


def test_linear_recurrence_gradcheck_broadcast_constant_a():
    g = gen(1200)
    a = leaf(torch.tensor([[0.99], [-0.5], [0.9]], **F64))  # (C, 1): constant per channel
    u = leaf(torch.randn(2, 3, 65, generator=g, **F64))
    h0 = leaf(torch.randn(2, 3, generator=g, **F64))
    fn = lambda a, u, h0: sl.linear_recurrence(a, u, h0)  # noqa: E731
    assert gradcheck(fn, (a, u, h0), fast_mode=True)
    assert gradgradcheck(fn, (a, u, h0), fast_mode=True)


@pytest.mark.parametrize("T", [2, 65, 129])
def test_linear_recurrence_gradgradcheck_real(T):
    g = gen(1300 + T)
    a = leaf(0.98 * torch.rand(2, T, generator=g, **F64))
    u = leaf(torch.randn(2, T, generator=g, **F64))
    h0 = leaf(torch.randn(2, generator=g, **F64))
    assert gradgradcheck(lambda a, u, h0: sl.linear_recurrence(a, u, h0, dim=-1), (a, u, h0), fast_mode=True)


# -------------------------------------------------- adjoint vs autograd through the sequential loop
def _grads(out, inputs, w):
    if isinstance(out, tuple):
        loss = sum((o * wi).sum() for o, wi in zip(out, w))
    else:
        loss = (out * w[0]).sum()
    return torch.autograd.grad(loss, inputs)


def _compare(got, exp, names, rtol=1e-7):
    for n, g_, e_ in zip(names, got, exp):
        assert g_.shape == e_.shape, f"grad {n}: shape {tuple(g_.shape)} != {tuple(e_.shape)}"
        scale = max(1.0, float(e_.detach().abs().max()))
        torch.testing.assert_close(g_, e_, rtol=rtol, atol=rtol * scale, msg=lambda m: f"grad {n}: {m}")


@pytest.mark.parametrize("r", [0.99, 0.999])
def test_lfilter_grads_match_reference_hard_mode(r):
    g = gen(1400)
    T = 300
    b = leaf(torch.randn(2, 3, generator=g, **F64))
    a = leaf(torch.stack([biquad_a(r, 0.1, 1.2), biquad_a(r, 2.5, 0.9)]))
    x = leaf(torch.randn(2, T, generator=g, **F64))
    zi = leaf(torch.randn(2, 2, generator=g, **F64))
    w = (torch.randn(2, T, generator=g, **F64), torch.randn(2, 2, generator=g, **F64))
    got = _grads(sl.lfilter(b, a, x, zi=zi), (b, a, x, zi), w)
    exp = _grads(ref.lfilter(b, a, x, zi), (b, a, x, zi), w)
    _compare(got, exp, "b a x zi".split())


def test_sosfilt_grads_match_reference_hard_mode():
    g = gen(1500)
    T = 300
    sos = leaf(torch.cat([torch.randn(3, 3, generator=g, **F64),
                          torch.stack([biquad_a(0.999, 0.05), biquad_a(0.995, 1.0), biquad_a(0.99, 3.0)])], -1))
    x = leaf(torch.randn(2, T, generator=g, **F64))
    zi = leaf(torch.randn(3, 2, 2, generator=g, **F64))
    w = (torch.randn(2, T, generator=g, **F64), torch.randn(3, 2, 2, generator=g, **F64))
    got = _grads(sl.sosfilt(sos, x, zi=zi), (sos, x, zi), w)
    exp = _grads(ref.sosfilt(sos, x, zi), (sos, x, zi), w)
    _compare(got, exp, "sos x zi".split())


def test_tv_grads_match_reference_hard_mode():
    g = gen(1600)
    T = 300
    b, a = tv_coeffs(T, g, rmax=0.998)
    b, a = leaf(b), leaf(a)
    x = leaf(torch.randn(2, T, generator=g, **F64))
    zi = leaf(torch.randn(2, 4, generator=g, **F64))
    w = (torch.randn(2, T, generator=g, **F64), torch.randn(2, 4, generator=g, **F64))
    got = _grads(sl.time_varying_lfilter(b, a, x, zi=zi), (b, a, x, zi), w)
    exp = _grads(ref.time_varying_lfilter(b, a, x, zi), (b, a, x, zi), w)
    _compare(got, exp, "b a x zi".split())


def test_tv_sosfilt_grads_match_reference():
    g = gen(1700)
    T = 200
    sos = leaf(torch.stack([torch.cat(tv_coeffs(T, g, rmax=0.99), -1), torch.cat(tv_coeffs(T, g), -1)], -2))
    x = leaf(torch.randn(2, T, generator=g, **F64))
    zi = leaf(torch.randn(2, 2, 4, generator=g, **F64))
    w = (torch.randn(2, T, generator=g, **F64), torch.randn(2, 2, 4, generator=g, **F64))
    got = _grads(sl.time_varying_sosfilt(sos, x, zi=zi), (sos, x, zi), w)
    exp = _grads(ref.time_varying_sosfilt(sos, x, zi), (sos, x, zi), w)
    _compare(got, exp, "sos x zi".split())


def test_float32_grads_close_to_float64():
    g = gen(1800)
    T = 1000
    b = torch.randn(3, generator=g, **F64)
    a = biquad_a(0.99, 0.3)
    x = torch.randn(2, T, generator=g, **F64)
    w = torch.randn(2, T, generator=g, **F64)
    res = []
    for dt in (torch.float32, torch.float64):
        bb, aa, xx = leaf(b.to(dt)), leaf(a.to(dt)), leaf(x.to(dt))
        res.append(torch.autograd.grad((sl.lfilter(bb, aa, xx) * w.to(dt)).sum(), (bb, aa, xx)))
    for n, g32, g64 in zip("b a x".split(), *res):
        assert g32.dtype == torch.float32
        err = float((g32.double() - g64).abs().max() / g64.abs().max())
        assert err < 1e-3, f"float32 grad {n} relative error {err:.2e}"


# ------------------------------------------------------------------ many tiny blocks (engine knobs)
@pytest.fixture
def tiny_blocks(monkeypatch):
    """Shrink the engine's block lengths (its module-level knobs) to 4 so that short signals cross
    many block boundaries, partial last blocks included (and are not solved whole)."""
    from ssm_lfilter.engine import diagonal as d, lti as l, time_varying as t

    monkeypatch.setattr(l, "block_size", lambda T, order: max(4, order, 1))
    monkeypatch.setattr(l, "_direct_fits", lambda T, R, Ra: False)  # short signals go blockwise too
    monkeypatch.setattr(t, "block_size", lambda T, order: max(4, order, 1))
    monkeypatch.setattr(t, "direct_fits", lambda T, R, Ra: False)
    monkeypatch.setattr(d, "BLOCK", 4)


@pytest.mark.parametrize("T", [3, 4, 5, 23])
def test_tiny_blocks_values_and_gradients(T, tiny_blocks):
    g = gen(1900 + T)
    b = leaf(torch.randn(2, 4, generator=g, **F64))
    a = leaf(torch.stack([biquad_a(0.99, 0.2, 1.5), biquad_a(0.9, 2.0)]))
    x = leaf(torch.randn(2, T, generator=g, **F64))
    zi = leaf(torch.randn(2, 3, generator=g, **F64))
    y, zf = sl.lfilter(b, a, x, zi=zi)
    ey, ezf = ref.lfilter(b, a, x, zi)
    _compare((y, zf), (ey, ezf), ["y", "zf"], rtol=1e-10)
    assert gradcheck(lambda b, a, x, zi: sl.lfilter(b, a, x, zi=zi), (b, a, x, zi), fast_mode=True)
    assert gradgradcheck(lambda b, a, x, zi: sl.lfilter(b, a, x, zi=zi), (b, a, x, zi), fast_mode=True)

    bt, at = tv_coeffs(T, g)
    bt, at = leaf(bt), leaf(at)
    zt = leaf(torch.randn(2, 4, generator=g, **F64))
    y, zf = sl.time_varying_lfilter(bt, at, x, zi=zt)
    _compare((y, zf), ref.time_varying_lfilter(bt, at, x, zt), ["y", "zf"], rtol=1e-10)
    assert gradcheck(lambda b, a, x, zi: sl.time_varying_lfilter(b, a, x, zi=zi), (bt, at, x, zt), fast_mode=True)

    ad = leaf(torch.polar(torch.full((2, T), 0.995, **F64), torch.rand(2, T, generator=g, **F64)))
    u = leaf(torch.randn(2, T, generator=g, dtype=torch.complex128))
    h0 = leaf(torch.randn(2, generator=g, dtype=torch.complex128))
    for reverse in (False, True):
        h = sl.linear_recurrence(ad, u, h0, reverse=reverse)
        _compare((h,), (ref.linear_recurrence(ad, u, h0, reverse),), ["h"], rtol=1e-10)
        assert gradcheck(lambda a, u, h0: sl.linear_recurrence(a, u, h0, reverse=reverse), (ad, u, h0),
                         fast_mode=True)
