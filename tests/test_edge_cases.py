"""The issue's bad- and edge-input table for lfilter, sosfilt, time_varying_lfilter,
time_varying_sosfilt and linear_recurrence."""
import re

import numpy as np
import pytest
import scipy.signal as ss
import torch

import ssm_lfilter as sl
from ssm_lfilter import reference as ref

F64 = dict(dtype=torch.float64)


def names_a(msg):
    """The message names the argument ``a`` (not just the English article)."""
    return re.search(r"\ba\[|[`'\"]a[`'\"]|\ba0\b|\ba_0\b|^a\b|\ba:|\bargument a\b|\ba \(|\ba coefficient", msg)


def shape_in(msg, shape):
    """``shape`` appears in ``msg`` as a tuple, list or torch.Size."""
    m = re.sub(r"\s+", "", msg)
    body = ",".join(str(int(s)) for s in shape)
    cands = [f"({body})", f"[{body}]", f"({body},)"]
    return any(c in m for c in cands)


def x_b_a():
    g = torch.Generator().manual_seed(0)
    return (torch.randn(3, **F64, generator=g), torch.tensor([1.0, -0.5, 0.25], **F64),
            torch.randn(2, 50, **F64, generator=g))


# ------------------------------------------------------------------------------------ a[..., 0] == 0
@pytest.mark.parametrize("case", ["lfilter", "lfilter_batched", "sosfilt", "tv_lfilter", "tv_sosfilt"])
def test_zero_leading_a_raises_value_error_naming_a(case):
    b, a, x = x_b_a()
    T = x.shape[-1]
    with pytest.raises(ValueError) as info:
        if case == "lfilter":
            sl.lfilter(b, torch.tensor([0.0, 1.0, 0.5], **F64), x)
        elif case == "lfilter_batched":
            sl.lfilter(b, torch.tensor([[1.0, 0.2, 0.0], [0.0, 1.0, 0.5]], **F64), x)
        elif case == "sosfilt":
            sl.sosfilt(torch.tensor([[1.0, 0, 0, 1, 0, 0], [1.0, 0, 0, 0, 0.5, 0]], **F64), x)
        elif case == "tv_lfilter":
            at = a.expand(T, 3).clone()
            at[17, 0] = 0.0
            sl.time_varying_lfilter(b, at, x)
        else:
            sos = torch.tensor([1.0, 0, 0, 1, 0, 0], **F64).expand(T, 1, 6).clone()
            sos[3, 0, 3] = 0.0
            sl.time_varying_sosfilt(sos, x)
    msg = str(info.value)
    if case == "sosfilt":
        assert "sos" in msg, msg  # scipy: "sos[:, 3] should be all ones"
    elif case == "tv_sosfilt":
        assert "sos" in msg or names_a(msg), msg
    else:
        assert names_a(msg), f"message does not name `a`: {msg!r}"


# ---------------------------------------------------------------------------------- zi of wrong shape
@pytest.mark.parametrize("zshape", [(2, 3), (2, 1, 2), (3, 2), (2,), (2, 2, 1)])
def test_lfilter_zi_wrong_shape(zshape):
    b, a, x = x_b_a()  # K = 2, expected (2, 2)
    with pytest.raises(ValueError) as info:
        sl.lfilter(b, a, x, zi=torch.zeros(zshape, **F64))
    msg = str(info.value)
    assert "zi" in msg and shape_in(msg, (2, 2)), msg


def test_lfilter_zi_wrong_shape_axis0():
    b, a, x = x_b_a()
    x = x.T.contiguous()  # (50, 2), axis 0: expected zi (2, 2) ... use K=3 to disambiguate
    b4 = torch.ones(4, **F64)
    with pytest.raises(ValueError) as info:
        sl.lfilter(b4, a, x, axis=0, zi=torch.zeros(2, 3, **F64))
    msg = str(info.value)
    assert "zi" in msg and shape_in(msg, (3, 2)), msg
    with pytest.raises(ValueError):  # size 1 along the state axis never broadcasts (scipy)
        sl.lfilter(b4, a, x, axis=0, zi=torch.zeros(1, 2, **F64))


@pytest.mark.parametrize("zshape", [(2, 2), (2, 2, 3), (1, 2, 2), (2, 3, 2)])
def test_sosfilt_zi_wrong_shape(zshape):
    sos = torch.tensor(ss.butter(4, 0.2, output="sos"))  # 2 sections, x (2, 50): expected (2, 2, 2)
    x = torch.randn(2, 50, **F64)
    with pytest.raises(ValueError) as info:
        sl.sosfilt(sos, x, zi=torch.zeros(zshape, **F64))
    msg = str(info.value)
    assert "zi" in msg and shape_in(msg, (2, 2, 2)), msg


def test_tv_lfilter_zi_wrong_shape():
    T = 30
    b = torch.ones(T, 3, **F64)  # M = 2
    a = torch.tensor([1.0, -0.5], **F64).expand(T, 2)  # N = 1
    x = torch.randn(4, T, **F64)
    with pytest.raises(ValueError) as info:
        sl.time_varying_lfilter(b, a, x, zi=torch.zeros(4, 2, **F64))
    msg = str(info.value)
    assert "zi" in msg and shape_in(msg, (4, 3)), msg


def test_tv_sosfilt_zi_wrong_shape():
    T = 30
    sos = torch.tensor([1.0, 0.5, 0, 1, -0.5, 0], **F64).expand(T, 2, 6)
    x = torch.randn(3, T, **F64)
    with pytest.raises(ValueError) as info:
        sl.time_varying_sosfilt(sos, x, zi=torch.zeros(2, 3, 2, **F64))
    msg = str(info.value)
    assert "zi" in msg and shape_in(msg, (2, 3, 4)), msg


def test_linear_recurrence_h0_wrong_shape():
    with pytest.raises(ValueError) as info:
        sl.linear_recurrence(torch.full((3, 20), 0.5), torch.randn(3, 20), torch.zeros(4))
    assert "h0" in str(info.value)


# ------------------------------------------------------------------ non-broadcasting coefficient dims
def test_lfilter_batch_dims_do_not_broadcast():
    x = torch.randn(2, 5, 40, **F64)
    b = torch.randn(3, 3, **F64)  # batch (3,) vs x batch (2, 5)
    a = torch.tensor([1.0, 0.1], **F64)
    with pytest.raises(ValueError) as info:
        sl.lfilter(b, a, x)
    msg = str(info.value)
    assert (shape_in(msg, (3,)) or shape_in(msg, (3, 3))) and (shape_in(msg, (2, 5)) or shape_in(msg, (2, 5, 40))), msg


def test_lfilter_b_and_a_batches_do_not_broadcast():
    x = torch.randn(6, 40, **F64)
    b = torch.randn(2, 3, **F64)
    a = torch.tensor([[1.0, 0.1]] * 3, **F64)  # (3, 2)
    with pytest.raises(ValueError) as info:
        sl.lfilter(b, a, x)
    msg = str(info.value)
    assert (shape_in(msg, (2,)) or shape_in(msg, (2, 3))) and (shape_in(msg, (3,)) or shape_in(msg, (3, 2))), msg


def test_sosfilt_batch_dims_do_not_broadcast():
    x = torch.randn(2, 5, 40, **F64)
    sos = torch.tensor([1.0, 0, 0, 1, 0.1, 0], **F64).expand(4, 1, 6)
    with pytest.raises(ValueError) as info:
        sl.sosfilt(sos, x)
    msg = str(info.value)
    assert (shape_in(msg, (4,)) or shape_in(msg, (4, 1, 6))) and (shape_in(msg, (2, 5)) or shape_in(msg, (2, 5, 40))), msg


def test_tv_batch_dims_do_not_broadcast():
    T = 40
    x = torch.randn(2, 5, T, **F64)
    b = torch.ones(3, T, 2, **F64)
    a = torch.tensor([1.0, 0.1], **F64)
    with pytest.raises(ValueError) as info:
        sl.time_varying_lfilter(b, a, x)
    msg = str(info.value)
    assert (shape_in(msg, (3,)) or shape_in(msg, (3, T, 2))) and (shape_in(msg, (2, 5)) or shape_in(msg, (2, 5, T))), msg


def test_linear_recurrence_shapes_do_not_broadcast():
    with pytest.raises((ValueError, RuntimeError)) as info:
        sl.linear_recurrence(torch.full((3, 20), 0.5), torch.randn(4, 20))
    assert isinstance(info.value, ValueError), f"expected ValueError, got {type(info.value).__name__}: {info.value}"
    msg = str(info.value)
    assert shape_in(msg, (3, 20)) and shape_in(msg, (4, 20)), msg


# ------------------------------------------------------------------------------------ device mismatch
@pytest.mark.parametrize("which", ["b", "a", "zi"])
def test_lfilter_different_devices(which):
    b, a, x = x_b_a()
    args = dict(b=b, a=a, zi=torch.zeros(2, 2, **F64))
    args[which] = args[which].to("meta")
    with pytest.raises(ValueError):
        sl.lfilter(args["b"], args["a"], x, zi=args["zi"])


def test_other_functions_different_devices():
    T = 20
    x = torch.randn(2, T, **F64)
    with pytest.raises(ValueError):
        sl.sosfilt(torch.tensor([[1.0, 0, 0, 1, 0, 0]], **F64, device="meta"), x)
    with pytest.raises(ValueError):
        sl.sosfilt(torch.tensor([[1.0, 0, 0, 1, 0, 0]], **F64), x, zi=torch.zeros(1, 2, 2, device="meta"))
    with pytest.raises(ValueError):
        sl.time_varying_lfilter(torch.ones(T, 2, device="meta"), torch.ones(T, 2), x.float())
    with pytest.raises(ValueError):
        sl.time_varying_sosfilt(torch.ones(T, 1, 6), x.float().to("meta"))
    with pytest.raises(ValueError):
        sl.linear_recurrence(torch.full((2, T), 0.5, device="meta"), x)
    with pytest.raises(ValueError):
        sl.linear_recurrence(torch.full((2, T), 0.5), x.float(), h0=torch.zeros(2, device="meta"))


# -------------------------------------------------------------------------------- unsupported dtypes
BAD_DTYPES = [torch.complex32, torch.float8_e4m3fn, torch.float8_e5m2]


@pytest.mark.parametrize("dtype", BAD_DTYPES)
@pytest.mark.parametrize("which", ["x", "b", "a"])
def test_lfilter_unsupported_dtype(dtype, which):
    args = dict(b=torch.tensor([1.0, 0.5]), a=torch.tensor([1.0, -0.5]), x=torch.randn(2, 10))
    args[which] = args[which].to(dtype)
    with pytest.raises(TypeError):
        sl.lfilter(args["b"], args["a"], args["x"])


@pytest.mark.parametrize("dtype", BAD_DTYPES[:2])
def test_other_functions_unsupported_dtype(dtype):
    T = 10
    x = torch.randn(2, T).to(dtype)
    with pytest.raises(TypeError):
        sl.sosfilt(torch.tensor([[1.0, 0, 0, 1, 0, 0]]), x)
    with pytest.raises(TypeError):
        sl.sosfilt(torch.tensor([[1.0, 0, 0, 1, 0, 0]]).to(dtype), torch.randn(2, T))
    with pytest.raises(TypeError):
        sl.lfilter(torch.ones(2), torch.ones(2), torch.randn(2, T), zi=torch.zeros(2, 1).to(dtype))
    with pytest.raises(TypeError):
        sl.time_varying_lfilter(torch.ones(T, 2), torch.ones(T, 2), x)
    with pytest.raises(TypeError):
        sl.time_varying_sosfilt(torch.ones(T, 1, 6), x)
    with pytest.raises(TypeError):
        sl.linear_recurrence(torch.full((2, T), 0.5), x)
    with pytest.raises(TypeError):
        sl.linear_recurrence(torch.full((2, T), 0.5).to(dtype), torch.randn(2, T))


# ------------------------------------------------------------------------------------------- NaN/Inf
@pytest.mark.parametrize("pos", [0, 5, 40, 63, 64, 100])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_lfilter_nonfinite_propagate_like_scipy(pos, bad):
    b, a = ss.butter(2, 0.3)
    x = np.random.default_rng(pos).standard_normal((2, 150))
    x[1, pos] = bad
    y = sl.lfilter(torch.tensor(b), torch.tensor(a), torch.tensor(x)).numpy()
    e = ss.lfilter(b, a, x)
    np.testing.assert_array_equal(np.isfinite(y), np.isfinite(e))
    if np.isnan(bad):
        np.testing.assert_array_equal(np.isnan(y), np.isnan(e))
    np.testing.assert_allclose(y[np.isfinite(e)], e[np.isfinite(e)], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("where", ["x", "b", "zi"])
def test_lfilter_nan_in_other_args(where):
    b, a = np.array([0.5, 0.5]), np.array([1.0, -0.9])
    x = np.random.default_rng(1).standard_normal((2, 100))
    zi = np.zeros((2, 1))
    if where == "b":
        b = np.array([0.5, np.nan])
    elif where == "zi":
        zi[0, 0] = np.nan
    else:
        x[0, 70] = np.nan
    y, zf = sl.lfilter(torch.tensor(b), torch.tensor(a), torch.tensor(x), zi=torch.tensor(zi))
    e, ezf = ss.lfilter(b, a, x, zi=zi)
    np.testing.assert_array_equal(np.isnan(y.numpy()), np.isnan(e))
    np.testing.assert_array_equal(np.isnan(zf.numpy()), np.isnan(ezf))
    np.testing.assert_allclose(y.numpy()[~np.isnan(e)], e[~np.isnan(e)], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("pos", [0, 33, 64, 100])
def test_sosfilt_nan_propagates_like_scipy(pos):
    sos = ss.butter(4, 0.2, output="sos")
    x = np.random.default_rng(2).standard_normal((2, 150))
    x[0, pos] = np.nan
    y = sl.sosfilt(torch.tensor(sos), torch.tensor(x)).numpy()
    e = ss.sosfilt(sos, x)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(e))
    np.testing.assert_allclose(y[~np.isnan(e)], e[~np.isnan(e)], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("pos", [0, 20, 64, 100])
def test_linear_recurrence_and_tv_nan_propagate_like_reference(pos):
    T = 150
    g = torch.Generator().manual_seed(pos)
    u = torch.randn(2, T, **F64, generator=g)
    u[1, pos] = float("nan")
    a = torch.full((2, T), 0.9, **F64)
    h = sl.linear_recurrence(a, u)
    e = ref.linear_recurrence(a, u)
    assert torch.equal(h.isnan(), e.isnan())
    torch.testing.assert_close(h[~e.isnan()], e[~e.isnan()])
    b_tv = torch.ones(T, 2, **F64)
    a_tv = torch.tensor([1.0, -0.5], **F64).expand(T, 2)
    y = sl.time_varying_lfilter(b_tv, a_tv, u)
    e = ref.time_varying_lfilter(b_tv, a_tv, u)[0]
    assert torch.equal(y.isnan(), e.isnan())
    torch.testing.assert_close(y[~e.isnan()], e[~e.isnan()])


# ------------------------------------------------------------------------------------------------ T=0
def test_lfilter_empty_signal():
    b, a, _ = x_b_a()
    x = torch.zeros(3, 0, **F64)
    y = sl.lfilter(b, a, x)
    assert y.shape == (3, 0) and y.dtype == torch.float64
    zi = torch.randn(3, 2, **F64)
    y, zf = sl.lfilter(b, a, x, zi=zi)
    assert y.shape == (3, 0)
    torch.testing.assert_close(zf, zi, rtol=0, atol=0)
    # (scipy 1.17 itself returns an uninitialised zf and a (0,)-shaped y here: the rule wins)


def test_lfilter_empty_signal_axis0_and_grad():
    b, a, _ = x_b_a()
    x = torch.zeros(0, 4, **F64, requires_grad=True)
    zi = torch.randn(2, 4, **F64, requires_grad=True)
    y, zf = sl.lfilter(b, a, x, axis=0, zi=zi)
    assert y.shape == (0, 4) and zf.shape == (2, 4)
    torch.testing.assert_close(zf, zi)
    (g,) = torch.autograd.grad(zf.sum(), zi)
    torch.testing.assert_close(g, torch.ones_like(zi))


def test_other_functions_empty_signal():
    sos = torch.tensor(ss.butter(4, 0.2, output="sos"))
    zi = torch.randn(2, 3, 2, **F64)
    y, zf = sl.sosfilt(sos, torch.zeros(3, 0, **F64), zi=zi)
    assert y.shape == (3, 0)
    torch.testing.assert_close(zf, zi, rtol=0, atol=0)
    assert sl.sosfilt(sos, torch.zeros(3, 0, **F64)).shape == (3, 0)

    zi = torch.randn(3, 4, **F64)
    y, zf = sl.time_varying_lfilter(torch.ones(0, 3, **F64), torch.ones(0, 3, **F64), torch.zeros(3, 0, **F64), zi=zi)
    assert y.shape == (3, 0)
    torch.testing.assert_close(zf, zi, rtol=0, atol=0)
    zi = torch.randn(2, 3, 4, **F64)
    y, zf = sl.time_varying_sosfilt(torch.ones(0, 2, 6, **F64), torch.zeros(3, 0, **F64), zi=zi)
    assert y.shape == (3, 0)
    torch.testing.assert_close(zf, zi, rtol=0, atol=0)

    h = sl.linear_recurrence(torch.zeros(3, 0, **F64), torch.zeros(3, 0, **F64), torch.ones(3, **F64))
    assert h.shape == (3, 0)


def test_empty_batch_of_long_signals():
    """No rows, but more samples than the short-signal path takes (the blockwise engine's GEMMs could
    not reshape zero rows): empty outputs and gradients, as for short ones; also zero coefficient rows."""
    sos = torch.tensor(ss.butter(4, 0.2, output="sos"))
    b, a = map(torch.tensor, ss.butter(3, 0.2))
    x = torch.zeros(0, 700, **F64, requires_grad=True)
    calls = [lambda: sl.lfilter(b, a, x), lambda: sl.sosfilt(sos, x), lambda: sl.filtfilt(b, a, x),
             lambda: sl.sosfiltfilt(sos, x), lambda: sl.lfilter(b, a, x, zi=torch.zeros(0, 3, **F64))[0],
             lambda: sl.sosfilt(sos, x, zi=torch.zeros(2, 0, 2, **F64))[0],
             lambda: sl.sosfilt(sos.clone().requires_grad_(), x)]
    for call in calls:
        y = call()
        assert y.shape == (0, 700)
        (g,) = torch.autograd.grad(y.sum(), x)
        assert g.shape == (0, 700)
    assert sl.lfilter(torch.zeros(0, 3, **F64), torch.tensor([1.0, -0.5], **F64), torch.randn(600, **F64)).shape == (0, 600)
    assert sl.sosfilt(sos.float(), torch.zeros(0, 600)).shape == (0, 600)


@pytest.mark.parametrize("x", [[1.0, 2.0, np.inf], [np.nan, 1.0, 2.0, 3.0], [1.0, -np.inf, 2.0, 5.0]])
@pytest.mark.parametrize("b,a", [([1.0, -1.0], [1.0]), ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2.0]),
                                 ([0.3, 0.2], [1.0, -0.4, 0.1]), ([1.0, 0.5, 0.2], [1.0, -0.5])])
def test_final_state_of_non_finite_input_like_scipy(x, b, a):
    """``zf`` sums scipy's taps only: a pure FIR's state holds no feedback taps (scipy convolves), and
    no zero padding beyond the order meets an infinite sample (0 * inf was NaN where scipy's is
    infinite or finite)."""
    K = max(len(a), len(b)) - 1
    with np.errstate(all="ignore"):
        _, exp = ss.lfilter(b, a, x, zi=np.zeros(K))
    _, zf = sl.lfilter(torch.tensor(b, **F64), torch.tensor(a, **F64), torch.tensor(x, **F64), zi=torch.zeros(K, **F64))
    np.testing.assert_array_equal(zf.numpy(), exp)


def test_more_sections_and_orders_than_a_scan_level_holds():
    """A state wider than the carry scan's 64-entry level (33 biquads fused: 66 entries; order 65)
    beyond the short-signal path: the scan's group size once became a negative shift."""
    sos = np.tile([0.5, 0.2, 0.1, 1.0, -0.5, 0.25], (33, 1))
    x = np.random.default_rng(0).standard_normal(513)
    np.testing.assert_allclose(sl.sosfilt(torch.tensor(sos), torch.tensor(x)).numpy(), ss.sosfilt(sos, x), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sl.sosfiltfilt(torch.tensor(sos), torch.tensor(x[:300])).numpy(),
                               ss.sosfiltfilt(sos, x[:300]), rtol=1e-10, atol=1e-12)
    a = np.r_[1.0, np.zeros(64), -0.5]
    np.testing.assert_allclose(sl.lfilter(torch.tensor([1.0, 0.5]), torch.tensor(a), torch.tensor(x)).numpy(),
                               ss.lfilter([1.0, 0.5], a, x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_cascades_without_sections_and_with_zi_are_the_identity(backend, monkeypatch):
    """Zero sections with an (empty) zi: the input back, and an empty final state of zi's full shape
    (this raised before: the per-section final states were stacked from an empty list)."""
    monkeypatch.setenv("SSM_LFILTER_BACKEND", backend)
    x = torch.randn(3, 5, **F64)
    y, zf = sl.sosfilt(torch.ones(0, 6, **F64), x, zi=torch.zeros(0, 3, 2, **F64))
    assert torch.equal(y, x) and zf.shape == (0, 3, 2)
    for sos in (torch.ones(5, 0, 6, **F64), torch.ones(0, 6, **F64)):  # time-varying and constant
        y, zf = sl.time_varying_sosfilt(sos, x, zi=torch.zeros(0, 1, 4, **F64))
        assert torch.equal(y, x) and zf.shape == (0, 3, 4)


# ------------------------------------------------------------------------------------------------ T=1
def test_single_sample_everywhere():
    b, a = np.array([2.0, 1.0, 0.5]), np.array([4.0, 0.3, 0.1])
    x = np.array([[3.0], [-1.0]])
    zi = np.array([[0.5, -0.25], [1.0, 2.0]])
    y, zf = sl.lfilter(torch.tensor(b), torch.tensor(a), torch.tensor(x), zi=torch.tensor(zi))
    e, ezf = ss.lfilter(b, a, x, zi=zi)
    np.testing.assert_allclose(y.numpy(), e, rtol=1e-12)
    np.testing.assert_allclose(zf.numpy(), ezf, rtol=1e-12)
    np.testing.assert_allclose(sl.lfilter(torch.tensor(b), torch.tensor(a), torch.tensor(x[0])).numpy(),
                               ss.lfilter(b, a, x[0]), rtol=1e-12)
    sos = ss.butter(4, 0.2, output="sos")
    np.testing.assert_allclose(sl.sosfilt(torch.tensor(sos), torch.tensor(x)).numpy(), ss.sosfilt(sos, x), rtol=1e-12)
    bt, at = torch.tensor(b)[None], torch.tensor(a)[None]
    ztv = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.0, -1.0, 0.5, 0.25]])
    y, zf = sl.time_varying_lfilter(bt, at, torch.tensor(x), zi=ztv)
    ey, ezf = ref.time_varying_lfilter(bt, at, torch.tensor(x), ztv.double())
    torch.testing.assert_close(y, ey)
    torch.testing.assert_close(zf, ezf)
    h = sl.linear_recurrence(torch.tensor([0.5]), torch.tensor([2.0]), torch.tensor(4.0))
    torch.testing.assert_close(h, torch.tensor([4.0]))


# ----------------------------------------------------------------------------- non-contiguous, axes
def test_non_contiguous_inputs():
    g = torch.Generator().manual_seed(3)
    base = torch.randn(40, 6, 130, **F64, generator=g)
    x = base[::2, 1::2, ::1].transpose(0, 1)  # (3, 20, 130), non-contiguous
    assert not x.is_contiguous()
    b = torch.randn(3, 8, **F64, generator=g)[:, None, ::2]  # (3, 1, 4) strided, one filter per dim-0 row
    a = torch.tensor([[1.0, -1.2, 0.5]] * 3, **F64)[:, None, :]  # (3, 1, 3)
    y = sl.lfilter(b, a, x)
    xn, bn, an = x.numpy(), b.numpy(), a.numpy()
    e = np.stack([ss.lfilter(bn[i, 0], an[i, 0], xn[i]) for i in range(3)])
    np.testing.assert_allclose(y.numpy(), e, rtol=1e-10, atol=1e-10)
    # axis along a strided dim
    xt = base.transpose(0, 2)[:, ::2, :]  # (130, 3, 40), axis 0
    sos = torch.tensor(ss.butter(2, 0.3, output="sos"))
    np.testing.assert_allclose(sl.sosfilt(sos, xt, axis=0).numpy(), ss.sosfilt(sos.numpy(), xt.numpy(), axis=0),
                               rtol=1e-10, atol=1e-10)
    zi = torch.randn(40, 3, 2, **F64).transpose(0, 2)  # (2, 3, 40) non-contiguous
    y, zf = sl.lfilter(b[0, 0, :3], a[0, 0], xt, axis=0, zi=zi)
    e, ezf = ss.lfilter(b[0, 0, :3].numpy(), a[0, 0].numpy(), xt.numpy(), axis=0, zi=zi.numpy())
    np.testing.assert_allclose(y.numpy(), e, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(zf.numpy(), ezf, rtol=1e-10, atol=1e-10)
    # time-varying and diagonal on strided views
    u = base[:3, 0, :]  # (3, 130) strided rows
    aa = torch.full((130, 3), 0.9, **F64)[:, 0].expand(3, 130)  # stride 0
    torch.testing.assert_close(sl.linear_recurrence(aa, u), ref.linear_recurrence(aa, u))
    btv = torch.randn(130, 2, 2, **F64)[:, 1, :]
    atv = torch.tensor([1.0, -0.7], **F64).expand(130, 2)
    torch.testing.assert_close(sl.time_varying_lfilter(btv, atv, u), ref.time_varying_lfilter(btv, atv, u)[0])


@pytest.mark.parametrize("axis", [-4, -3, -2, -1, 0, 1, 2, 3])
def test_every_axis_of_4d(axis):
    g = torch.Generator().manual_seed(4)
    x = torch.randn(3, 4, 5, 6, **F64, generator=g)
    b, a = np.array([1.0, 0.5, 0.25]), np.array([1.0, -0.3, 0.2])
    y = sl.lfilter(torch.tensor(b), torch.tensor(a), x, axis=axis)
    np.testing.assert_allclose(y.numpy(), ss.lfilter(b, a, x.numpy(), axis=axis), rtol=1e-10, atol=1e-10)
    h = sl.linear_recurrence(torch.tensor(0.8, **F64), x, dim=axis)
    e = ss.lfilter([1.0], [1.0, -0.8], x.numpy(), axis=axis)
    np.testing.assert_allclose(h.numpy(), e, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("axis", [2, -3, 5])
def test_out_of_range_axis_raises(axis):
    with pytest.raises((ValueError, IndexError)):
        sl.lfilter(torch.ones(2), torch.ones(1), torch.randn(3, 4), axis=axis)


def test_scalar_x_rejected_like_scipy():
    with pytest.raises(ValueError):
        ss.lfilter([1.0], [1.0], np.float64(1.0))  # scipy refuses 0-d input ...
    with pytest.raises(ValueError):
        sl.lfilter(torch.ones(1), torch.ones(1), torch.tensor(1.0))  # ... and so do we


def test_lfilter_empty_coefficients_rejected():
    with pytest.raises(ValueError):
        sl.lfilter(torch.ones(0), torch.ones(1), torch.randn(5))
    with pytest.raises(ValueError):
        sl.lfilter(torch.ones(1), torch.ones(0), torch.randn(5))


def test_sos_wrong_last_dim_rejected():
    with pytest.raises(ValueError) as info:
        sl.sosfilt(torch.ones(2, 5), torch.randn(5))
    assert "sos" in str(info.value)


@pytest.mark.parametrize("backend", ["torch", pytest.param("triton", marks=pytest.mark.interpreter)])
@pytest.mark.parametrize("b,a", [([0.5], [1.0, -0.5]), ([1.0], [1.0, -0.5, 0.2]), ([0.3, 0.2], [1.0, -0.4, 0.1])])
def test_inf_input_with_b_shorter_than_a(b, a, backend, monkeypatch):
    """An infinite input with ``b`` shorter than ``a``: exactly scipy's outputs are non-finite, but where
    scipy's transposed form multiplies its zero-padded ``b`` taps by the Inf (0 * inf = NaN) the direct
    forms here keep +-inf (README, "NaN and Inf"); a NaN input gives scipy's NaN mask exactly."""
    if backend == "triton" and torch.cuda.is_available():
        pytest.skip("CPU interpreter path only")
    monkeypatch.setenv("SSM_LFILTER_BACKEND", backend)
    for bad in (np.inf, np.nan):
        x = np.zeros(40)
        x[3] = bad
        with np.errstate(all="ignore"):
            exp = ss.lfilter(b, a, x)
        y = sl.lfilter(torch.tensor(b, **F64), torch.tensor(a, **F64), torch.tensor(x)).numpy()
        np.testing.assert_array_equal(np.isfinite(y), np.isfinite(exp))
        if bad != bad:  # NaN in: NaN out, where scipy's
            np.testing.assert_array_equal(np.isnan(y), np.isnan(exp))
        np.testing.assert_allclose(y[np.isfinite(exp)], exp[np.isfinite(exp)], rtol=1e-12, atol=1e-12)


def test_numpy_integer_axis_is_accepted_and_a_float_is_not():
    x = torch.randn(3, 20, **F64)
    b, a = torch.tensor([1.0], **F64), torch.tensor([1.0, -0.5], **F64)
    torch.testing.assert_close(sl.lfilter(b, a, x, axis=np.int64(0)), sl.lfilter(b, a, x, axis=0))
    with pytest.raises(TypeError, match="axis: expected an int, got float"):
        sl.lfilter(b, a, x, axis=1.0)


def test_time_varying_sosfilt_errors_name_sos_on_every_path():
    """The section-by-section path used to report time_varying_lfilter's ``a`` and ``b``."""
    x = torch.randn(2, 3, 20, **F64)
    with pytest.raises(ValueError, match=re.escape("sos: expected a nonzero leading denominator coefficient")):
        sl.time_varying_sosfilt(torch.tensor([[1.0, 0, 0, 0, 1, 0]], **F64), x)
    with pytest.raises(ValueError, match=r"sos \(7,\).*time axis only when its size is x's length T=20"):
        sl.time_varying_sosfilt(torch.ones(7, 2, 6, **F64), x)
