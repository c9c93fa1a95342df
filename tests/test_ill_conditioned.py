"""Direct forms whose blockwise carries cancel: high orders with clustered poles, on the torch engine.

Beyond one block (``engine/_solve.py``'s direct path ends at 512 samples) the engine carried the
last ``N`` outputs between blocks, and for poles clustered near the unit circle that basis lost
everything: ``butter(4, 0.005)`` came out 1e2 relative off at 3000 samples in float64, higher orders
overflowed. Such filters now run as second-order sections from their poles
(``engine/sections.py``), and float64 data takes one step of iterative refinement. The oracle is a
sequential loop in extended precision (``np.longdouble``), against which scipy's own float64 loop
is also measured: the engine must be within a small factor of it (``reference.lfilter_extended``).
"""
import numpy as np
import pytest
import scipy.signal as ss
import torch

import ssm_lfilter as sl
from ssm_lfilter.engine import lti as engine
from ssm_lfilter.reference import lfilter_extended
from ssm_lfilter.engine.sections import allpole_sections


@pytest.fixture(autouse=True)
def _torch_engine(monkeypatch):
    monkeypatch.setenv("SSM_LFILTER_BACKEND", "torch")


def _rel(y, ref):
    return float(np.abs(np.asarray(y, np.float64) - ref).max() / np.abs(ref).max())


CLUSTERED = {
    "butter(4, 0.005)": ss.butter(4, 0.005),
    "butter(5, 0.01)": ss.butter(5, 0.01),
    "butter(6, 0.02)": ss.butter(6, 0.02),
    "butter(8, 0.05)": ss.butter(8, 0.05),
    "cheby1(8, 1, 0.2)": ss.cheby1(8, 1, 0.2),
    "cheby1(12, 1, 0.3)": ss.cheby1(12, 1, 0.3),
    "butter(2, 0.001)": ss.butter(2, 0.001),  # a biquad: refinement only
}


@pytest.mark.parametrize("name", list(CLUSTERED))
@pytest.mark.parametrize("T", [513, 3000])
def test_float64_within_a_few_times_scipys_error(name, T):
    b, a = CLUSTERED[name]
    x = np.random.default_rng(1).standard_normal(T)
    exact = lfilter_extended(b, a, x)
    ours = _rel(sl.lfilter(torch.tensor(b), torch.tensor(a), torch.tensor(x)).numpy(), exact)
    scipy_err = _rel(ss.lfilter(b, a, x), exact)
    assert ours <= max(4 * scipy_err, 1e-13), (ours, scipy_err)


@pytest.mark.parametrize("name", ["butter(4, 0.005)", "butter(6, 0.02)", "cheby1(8, 1, 0.2)", "cheby1(12, 1, 0.3)"])
def test_float32_rounds_once(name):
    """float32 data: the float64 result on the float32 coefficients, rounded (a few float32 ulps),
    where a sequential float32 loop loses up to 3e-1 on these filters."""
    b, a = (c.astype(np.float32) for c in CLUSTERED[name])
    x = np.random.default_rng(2).standard_normal(3000).astype(np.float32)
    exact = lfilter_extended(b.astype(np.float64), a.astype(np.float64), x.astype(np.float64))
    y = sl.lfilter(torch.tensor(b), torch.tensor(a), torch.tensor(x))
    assert y.dtype == torch.float32
    ours = _rel(y.numpy(), exact)
    assert ours < 5e-7
    assert ours < _rel(ss.lfilter(b, a, x), exact) / 100  # scipy's float32 loop


def test_per_row_filters_and_initial_states():
    """Rows with their own clustered and well-spread filters, odd orders (a real pole paired with a
    zero one), ``zi`` and the final state, against scipy row by row."""
    designs = [ss.butter(5, 0.01), ss.cheby1(5, 1, 0.3), ss.butter(5, 0.4)]
    b = np.stack([d[0] for d in designs])
    a = np.stack([d[1] for d in designs]) * np.array([[1.0], [2.0], [-0.5]])  # a0 != 1
    rng = np.random.default_rng(3)
    x, zi = rng.standard_normal((3, 2000)), rng.standard_normal((3, 5))
    y, zf = sl.lfilter(torch.tensor(b), torch.tensor(a), torch.tensor(x), zi=torch.tensor(zi))
    for r in range(3):
        ye, zfe = ss.lfilter(b[r], a[r], x[r], zi=zi[r])
        assert _rel(y[r].numpy(), ye) < 1e-8
        assert _rel(zf[r].numpy(), zfe) < 1e-8


def test_gradients_through_the_sections():
    """The backward filters the adjoint with the same realisation. With ``v`` the time-reversed
    filter ``1/A`` of the output gradient ``w`` (scipy): ``dx`` is ``B`` applied to it in reverse,
    ``db_k = sum_n v[n] x[n-k]``, ``da_k = -sum_n v[n] y[n-k]`` (``a0 = 1``: ``butter``'s)."""
    b, a = ss.butter(4, 0.005)
    rng = np.random.default_rng(4)
    T = 1500
    x, w = rng.standard_normal(T), rng.standard_normal(T)
    xt = torch.tensor(x, requires_grad=True)
    bt, at = torch.tensor(b, requires_grad=True), torch.tensor(a, requires_grad=True)
    (sl.lfilter(bt, at, xt) * torch.tensor(w)).sum().backward()
    y = ss.lfilter(b, a, x)
    v = ss.lfilter([1.0], a, w[::-1])[::-1]
    assert _rel(xt.grad.numpy(), ss.lfilter(b, [1.0], v[::-1])[::-1]) < 1e-8
    db = np.array([v[k:] @ x[: T - k] for k in range(5)])
    da = np.array([-(v[k:] @ y[: T - k]) for k in range(1, 5)])
    da0 = -(db @ b + da @ a[1:])
    assert _rel(bt.grad.numpy(), db) < 1e-7
    assert _rel(at.grad.numpy(), np.r_[da0, da]) < 1e-7


def test_spread_poles_keep_the_direct_form():
    """A delay-65 comb (its 65 poles spread around the circle) has tiny block responses: it stays a
    direct form, exact, where 33 resonators would amplify rounding (and an order above 64 once broke
    the carry scan's group size)."""
    a = np.zeros(66)
    a[0], a[-1] = 1.0, -0.9
    x = np.random.default_rng(5).standard_normal(1300)
    assert not engine.cancels_in(torch.tensor(a[1:])[None], 1300, 0, None, torch.float64)
    y = sl.lfilter(torch.tensor([1.0]), torch.tensor(a), torch.tensor(x)).numpy()
    assert _rel(y, ss.lfilter([1.0], a, x)) < 1e-14


def test_sections_rebuild_the_denominator():
    """Conjugate pairs and real roots pair into real biquads (odd orders with a zero root) whose
    product is the denominator; sorted by pole radius, the unit circle's nearest last."""
    for a in (ss.butter(7, 0.1)[1], ss.cheby1(6, 1, 0.2)[1], np.poly([0.5, -0.3, 0.9, 0.2]).real):
        sec = allpole_sections(torch.tensor(a[1:])[None])
        assert sec.shape == (1, (len(a)) // 2, 2)
        prod = np.array([1.0])
        for a1, a2 in sec[0].numpy():
            prod = np.convolve(prod, [1.0, a1, a2])
        np.testing.assert_allclose(prod[: len(a)], a, atol=1e-12)
        radii = [max(abs(np.roots([1.0, a1, a2]))) for a1, a2 in sec[0].numpy()]
        assert radii == sorted(radii)


@pytest.mark.parametrize("L", [32, 64])
def test_blocks_forced_small(L):
    """The engine with forced blocks: many carries through the sections' cascade."""
    b, a = ss.butter(6, 0.02)
    x = np.random.default_rng(6).standard_normal(700)
    head = torch.tensor(np.random.default_rng(7).standard_normal((1, 6)))
    bt = torch.tensor(b / a[0])[None]
    at = torch.tensor(a[1:] / a[0])[None]
    y = engine.lti(torch.tensor(x)[None], bt, at, head, L=L)[0].numpy()
    u = ss.lfilter(b, [1.0], x)
    u[:6] += head[0].numpy()
    assert _rel(y, lfilter_extended([1.0], a / a[0], u)) < 1e-8


@pytest.mark.parametrize("mode,dtype,order,expect", [
    ("auto", torch.float64, 4, True), ("auto", torch.float32, 4, False), ("triton", torch.float64, 4, False),
    ("auto", torch.float64, 2, False), ("auto", torch.float32, 6, True), ("triton", torch.float32, 6, False)])
def test_which_calls_leave_the_kernels(monkeypatch, mode, dtype, order, expect):
    """On the kernels' backend (CUDA under ``auto``), direct forms whose carries cancel run on the
    torch engine's sections instead (ops.py, ``_kernels_would_cancel``): float64 data of order >= 3,
    float32 data of order >= 5; float32 data of orders 3-4 (the single pass, no host sync), biquads
    and a forced ``triton`` backend keep the kernels."""
    from ssm_lfilter import ops

    monkeypatch.setenv("SSM_LFILTER_BACKEND", mode)
    b, a = ss.butter(order, 0.005)
    x = torch.zeros(1, 3000, dtype=dtype)
    raw = torch.tensor(a * 2.0, dtype=dtype)[None]  # with its leading coefficient, as lfilter passes it
    assert ops._kernels_would_cancel(x, raw, monic=False) is expect
    assert ops._kernels_would_cancel(x, raw[:, 1:] / raw[:, :1], monic=True) is expect
    _, a_spread = ss.butter(order, 0.45)
    assert not ops._kernels_would_cancel(x, torch.tensor(a_spread, dtype=dtype)[None], monic=False)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_float64_clustered_poles(monkeypatch):
    """GPU tier: a float64 ``butter(4, 0.005)`` on CUDA (the kernels lost 1 relative on it) matches
    the exact result as closely as scipy, forward and ``dx``."""
    monkeypatch.setenv("SSM_LFILTER_BACKEND", "auto")
    b, a = ss.butter(4, 0.005)
    rng = np.random.default_rng(8)
    x, w = rng.standard_normal(100_000), rng.standard_normal(100_000)
    xt = torch.tensor(x, device="cuda", requires_grad=True)
    y = sl.lfilter(torch.tensor(b, device="cuda"), torch.tensor(a, device="cuda"), xt)
    (y * torch.tensor(w, device="cuda")).sum().backward()
    assert _rel(y.detach().cpu().numpy(), ss.lfilter(b, a, x)) < 1e-7
    assert _rel(xt.grad.cpu().numpy(), ss.lfilter(b, a, w[::-1])[::-1]) < 1e-7
    # a CUDA graph capture reads nothing back: the kernels run there, and the capture succeeds
    bc, ac, xc = (torch.tensor(v, device="cuda") for v in (b, a, x[:4096]))
    monkeypatch.setenv("SSM_LFILTER_BACKEND", "triton")
    sl.lfilter(bc, ac, xc)  # compile the kernels outside the capture (auto takes the engine here)
    monkeypatch.setenv("SSM_LFILTER_BACKEND", "auto")
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        yc = sl.lfilter(bc, ac, xc)
    graph.replay()
    torch.cuda.synchronize()
    assert torch.isfinite(yc).all()


@pytest.mark.parametrize("name,bound", [("cheby1(8, 1, 0.2)", 1e-8), ("butter(2, 0.001)", 1e-12)])
def test_time_varying_float64_refined(name, bound):
    """``time_varying_lfilter`` has no sections to fall back on, but float64 data takes a refinement
    step where its block transfers are large (``engine/time_varying.py``): the coefficients of a
    clustered design held constant, against extended precision (7.1e-5 and 4.6e-10 before), and
    ``dx`` against scipy's time-reversed filter."""
    b, a = CLUSTERED[name]
    T = 3000
    rng = np.random.default_rng(9)
    x, w = rng.standard_normal(T), rng.standard_normal(T)
    xt = torch.tensor(x, requires_grad=True)
    y = sl.time_varying_lfilter(torch.tensor(b), torch.tensor(a).expand(T, len(a)), xt)
    (y * torch.tensor(w)).sum().backward()
    assert _rel(y.detach().numpy(), lfilter_extended(b, a, x)) < bound
    assert _rel(xt.grad.numpy(), ss.lfilter(b, a, w[::-1])[::-1]) < 10 * bound


def test_time_varying_refinement_keeps_infinities():
    """The refinement's residual would turn an infinite output into NaN (inf - inf): it runs on
    finite results only, so an infinite input gives scipy's infinities."""
    b, a = CLUSTERED["butter(2, 0.001)"]
    x = np.random.default_rng(10).standard_normal(2000)
    x[1500] = np.inf
    with np.errstate(all="ignore"):
        exp = ss.lfilter(b, a, x)
    y = sl.time_varying_lfilter(torch.tensor(b), torch.tensor(a).expand(2000, 3), torch.tensor(x)).numpy()
    np.testing.assert_array_equal(np.isnan(y), np.isnan(exp))
    np.testing.assert_array_equal(np.isinf(y), np.isinf(exp))
