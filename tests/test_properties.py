"""hypothesis property tests: random orders 0..16, shapes, axes, dtypes and zi against scipy (float64)
and the sequential reference; streaming and linearity properties."""
import numpy as np
import scipy.signal as ss
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ssm_lfilter as sl
from helpers import random_denominator
from ssm_lfilter import reference as ref

SETTINGS = dict(deadline=None, max_examples=30, suppress_health_check=[HealthCheck.too_slow],
                derandomize=True)


def check(actual, expected, rtol, what=""):
    actual = actual.detach().numpy() if isinstance(actual, torch.Tensor) else actual
    assert actual.shape == expected.shape, f"{what}: {actual.shape} != {expected.shape}"
    scale = max(1.0, float(np.abs(expected).max())) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale, err_msg=what)


@st.composite
def signal_case(draw, max_ndim=3, max_T=300):
    ndim = draw(st.integers(1, max_ndim))
    shape = [draw(st.integers(1, 3)) for _ in range(ndim)]
    axis = draw(st.integers(-ndim, ndim - 1))
    shape[axis] = draw(st.sampled_from([0, 1, 2, 31, 32, 33, 63, 64, 65, 100, 129, max_T]))
    return tuple(shape), axis


@settings(**SETTINGS)
@given(case=signal_case(), nb=st.integers(0, 16), na=st.integers(0, 16), use_zi=st.booleans(),
       rmax=st.sampled_from([0.5, 0.9, 0.97]), seed=st.integers(0, 2**31 - 1))
def test_lfilter_matches_scipy(case, nb, na, use_zi, rmax, seed):
    shape, axis = case
    rng = np.random.default_rng(seed)
    b, a = rng.standard_normal(nb + 1), random_denominator(na, rng, rmax)
    x = rng.standard_normal(shape)
    K = max(nb, na)
    tol = 1e-9 if max(nb, na) <= 8 else 1e-7
    if use_zi:
        zshape = list(shape)
        zshape[axis] = K
        zi = rng.standard_normal(zshape)
        y, zf = sl.lfilter(torch.tensor(b), torch.tensor(a), torch.tensor(x), axis=axis, zi=torch.tensor(zi))
        if x.shape[axis] == 0:  # the rule (scipy returns garbage zf here)
            ey, ezf = x.copy(), zi
        else:
            ey, ezf = ss.lfilter(b, a, x, axis=axis, zi=zi)
        check(y, ey, tol, "y")
        check(zf, ezf, tol, "zf")
    else:
        y = sl.lfilter(torch.tensor(b), torch.tensor(a), torch.tensor(x), axis=axis)
        if x.shape[axis] == 0:
            assert y.shape == x.shape
        else:
            check(y, ss.lfilter(b, a, x, axis=axis), tol, "y")


@settings(**SETTINGS)
@given(case=signal_case(), n_sections=st.integers(1, 8), use_zi=st.booleans(),
       rmax=st.sampled_from([0.5, 0.95, 0.99]), seed=st.integers(0, 2**31 - 1),
       single=st.booleans())
def test_sosfilt_matches_scipy(case, n_sections, use_zi, rmax, seed, single):
    shape, axis = case
    rng = np.random.default_rng(seed)
    sos = np.concatenate([rng.standard_normal((n_sections, 3)),
                          np.stack([random_denominator(2, rng, rmax, a0=1.0) for _ in range(n_sections)])], 1)
    x = rng.standard_normal(shape)
    if single:  # float32 end to end, vs float64 scipy on the same rounded values
        sos, x = sos.astype(np.float32), x.astype(np.float32)
    tol = 1e-3 if single else 1e-9
    if use_zi:
        zshape = list(shape)
        zshape[axis] = 2
        zi = rng.standard_normal([n_sections] + zshape).astype(x.dtype)
        y, zf = sl.sosfilt(torch.tensor(sos), torch.tensor(x), axis=axis, zi=torch.tensor(zi))
        if x.shape[axis] == 0:  # the rule (scipy's sosfilt fails on empty input)
            ey, ezf = x.astype(np.float64), zi.astype(np.float64)
        else:
            ey, ezf = ss.sosfilt(sos.astype(np.float64), x.astype(np.float64), axis=axis, zi=zi.astype(np.float64))
        assert y.dtype == (torch.float32 if single else torch.float64)
        check(y, ey, tol, "y")
        check(zf, ezf, tol, "zf")
    elif x.shape[axis] == 0:
        assert sl.sosfilt(torch.tensor(sos), torch.tensor(x), axis=axis).shape == x.shape
    else:
        y = sl.sosfilt(torch.tensor(sos), torch.tensor(x), axis=axis)
        check(y, ss.sosfilt(sos.astype(np.float64), x.astype(np.float64), axis=axis), tol, "y")


@settings(**SETTINGS)
@given(R=st.integers(1, 3), T=st.integers(0, 150), M=st.integers(0, 4), N=st.integers(0, 4),
       use_zi=st.booleans(), shared=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_time_varying_lfilter_matches_reference(R, T, M, N, use_zi, shared, seed):
    g = torch.Generator().manual_seed(seed)
    lead = () if shared else (R,)
    b = torch.randn(*lead, T, M + 1, generator=g, dtype=torch.float64)
    # a stable-at-every-instant denominator: |a_1..a_N| summing below 0.9 (diagonal dominance)
    raw = torch.rand(*lead, T, N, generator=g, dtype=torch.float64) * 2 - 1
    raw = 0.9 * raw / raw.abs().sum(-1, keepdim=True).clamp_min(1.0)
    a0 = 0.5 + torch.rand(*lead, T, 1, generator=g, dtype=torch.float64)
    a = torch.cat([a0, raw * a0], -1)
    x = torch.randn(R, T, generator=g, dtype=torch.float64)
    zi = torch.randn(R, M + N, generator=g, dtype=torch.float64) if use_zi else None
    out = sl.time_varying_lfilter(b, a, x, zi=zi)
    ey, ezf = ref.time_varying_lfilter(b, a, x, zi)
    if use_zi:
        y, zf = out
        check(zf, ezf.numpy(), 1e-9, "zf")
    else:
        y = out
    check(y, ey.numpy(), 1e-9, "y")


@settings(**SETTINGS)
@given(shape_axis=signal_case(max_T=200), reverse=st.booleans(), use_h0=st.booleans(), cplx=st.booleans(),
       const_a=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_linear_recurrence_matches_reference(shape_axis, reverse, use_h0, cplx, const_a, seed):
    shape, dim = shape_axis
    g = torch.Generator().manual_seed(seed)
    dt = torch.complex128 if cplx else torch.float64
    ashape = list(shape)
    if const_a:
        ashape[dim] = 1
    a = (torch.rand(*ashape, generator=g, dtype=torch.float64) * 1.98 - 0.99).to(dt)
    if cplx:
        a = a * torch.exp(1j * torch.rand(*ashape, generator=g, dtype=torch.float64) * 6.28)
    u = torch.randn(*shape, generator=g, dtype=dt)
    hshape = [s for i, s in enumerate(shape) if i != dim % len(shape)]
    h0 = torch.randn(tuple(hshape), generator=g, dtype=dt) if use_h0 else None
    h = sl.linear_recurrence(a, u, h0, reverse=reverse, dim=dim)
    e = ref.linear_recurrence(a.movedim(dim, -1), u.movedim(dim, -1), h0, reverse).movedim(-1, dim)
    assert h.shape == u.shape and h.dtype == dt
    check(h, e.numpy(), 1e-9)


@settings(**SETTINGS)
@given(nb=st.integers(0, 6), na=st.integers(0, 6), T=st.integers(1, 300), cut=st.floats(0, 1),
       seed=st.integers(0, 2**31 - 1))
def test_lfilter_streaming_split(nb, na, T, cut, seed):
    rng = np.random.default_rng(seed)
    b, a = torch.tensor(rng.standard_normal(nb + 1)), torch.tensor(random_denominator(na, rng, 0.95))
    x = torch.tensor(rng.standard_normal((2, T)))
    zi = torch.tensor(rng.standard_normal((2, max(nb, na))))
    k = int(cut * T)
    y, zf = sl.lfilter(b, a, x, zi=zi)
    y1, z1 = sl.lfilter(b, a, x[:, :k], zi=zi)
    y2, z2 = sl.lfilter(b, a, x[:, k:], zi=z1)
    torch.testing.assert_close(torch.cat([y1, y2], -1), y, rtol=1e-11, atol=1e-11)
    torch.testing.assert_close(z2, zf, rtol=1e-11, atol=1e-11)


@settings(**SETTINGS)
@given(nb=st.integers(0, 6), na=st.integers(0, 6), T=st.integers(1, 200), seed=st.integers(0, 2**31 - 1))
def test_lfilter_linear_in_x_and_zi(nb, na, T, seed):
    rng = np.random.default_rng(seed)
    b, a = torch.tensor(rng.standard_normal(nb + 1)), torch.tensor(random_denominator(na, rng, 0.95))
    x1, x2 = torch.tensor(rng.standard_normal(T)), torch.tensor(rng.standard_normal(T))
    K = max(nb, na)
    z1, z2 = torch.tensor(rng.standard_normal(K)), torch.tensor(rng.standard_normal(K))
    c = float(rng.uniform(-3, 3))
    y1, _ = sl.lfilter(b, a, x1, zi=z1)
    y2, _ = sl.lfilter(b, a, x2, zi=z2)
    y3, _ = sl.lfilter(b, a, x1 + c * x2, zi=z1 + c * z2)
    torch.testing.assert_close(y3, y1 + c * y2, rtol=1e-9, atol=1e-9)


@settings(**SETTINGS)
@given(S=st.integers(1, 3), T=st.integers(0, 120), R=st.integers(1, 3), use_zi=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
def test_time_varying_sosfilt_matches_reference(S, T, R, use_zi, seed):
    g = torch.Generator().manual_seed(seed)
    b = torch.randn(R, T, S, 3, generator=g, dtype=torch.float64)
    raw = torch.rand(R, T, S, 2, generator=g, dtype=torch.float64) * 2 - 1
    raw = 0.95 * raw / raw.abs().sum(-1, keepdim=True).clamp_min(1.0)
    a0 = 0.5 + torch.rand(R, T, S, 1, generator=g, dtype=torch.float64)
    sos = torch.cat([b, a0, raw * a0], -1)
    x = torch.randn(R, T, generator=g, dtype=torch.float64)
    zi = torch.randn(S, R, 4, generator=g, dtype=torch.float64) if use_zi else None
    out = sl.time_varying_sosfilt(sos, x, zi=zi)
    ey, ezf = ref.time_varying_sosfilt(sos, x, zi)
    if use_zi:
        y, zf = out
        check(zf, ezf.numpy(), 1e-9, "zf")
    else:
        y = out
    check(y, ey.numpy(), 1e-9, "y")
