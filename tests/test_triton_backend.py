"""The Triton path on CPU tensors: SSM_LFILTER_BACKEND=triton with TRITON_INTERPRET=1 (set in conftest
when there is no CUDA), against the torch engine, through the public API: outputs and gradients.

Every test id starts with ``triton_interpreter`` and carries the ``interpreter`` marker, so a failure
names the path (``pytest -m interpreter`` runs only these). Each test also counts the launcher calls in
ssm_lfilter.kernels, so a silent fallback to the torch engine fails too. Shapes are small: the
interpreter runs Triton programs in Python.
"""
import os

import numpy as np
import pytest
import scipy.signal as ss
import torch

import ssm_lfilter as sl

pytestmark = pytest.mark.interpreter

PATH = "Triton path (SSM_LFILTER_BACKEND=triton, TRITON_INTERPRET=1)"


def _g(seed):
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def kernel_calls(monkeypatch):
    """Count calls into the Triton launchers (the ops look them up on the kernels module each call)."""
    if torch.cuda.is_available():
        pytest.skip("CPU interpreter path only")
    assert os.environ.get("TRITON_INTERPRET") == "1", "conftest should set TRITON_INTERPRET=1 without CUDA"
    import ssm_lfilter.kernels as K

    calls = {"lti": 0, "lti_adjoint_sums": 0, "time_varying": 0, "time_varying_adjoint": 0, "sos": 0, "sos_adjoint": 0,
             "tv_sos": 0, "tv_sos_adjoint": 0, "diagonal": 0, "diagonal_adjoint": 0}
    for name in calls:
        fn = getattr(K, name)

        def counted(*args, _fn=fn, _name=name, **kw):
            calls[_name] += 1
            return _fn(*args, **kw)

        monkeypatch.setattr(K, name, counted)
    return calls


def _lfilter(dtype, T):
    g = _g(1)
    b = torch.randn(2, 3, generator=g, dtype=torch.float64)
    a = torch.tensor([[1.0, -1.8, 0.97], [1.5, 0.3, 0.2]], dtype=torch.float64)  # one pole pair at 0.985
    x = torch.randn(2, T, generator=g, dtype=torch.float64)
    zi = torch.randn(2, 2, generator=g, dtype=torch.float64)
    return "lti", (lambda b, a, x, zi: sl.lfilter(b, a, x, zi=zi)), [t.to(dtype) for t in (b, a, x, zi)]


def _lfilter_order6(dtype, T):
    g = _g(2)
    b, a = ss.cheby1(6, 1, 0.3)
    x = torch.randn(3, T, generator=g, dtype=torch.float64)
    return "lti", (lambda b, a, x: sl.lfilter(b, a, x)), [torch.tensor(b).to(dtype), torch.tensor(a).to(dtype),
                                                          x.to(dtype)]


def _sosfilt(dtype, T):
    g = _g(3)
    sos = torch.tensor(ss.butter(4, 0.1, output="sos"))
    x = torch.randn(2, T, generator=g, dtype=torch.float64)
    zi = torch.randn(2, 2, 2, generator=g, dtype=torch.float64)
    return "sos", (lambda s, x, zi: sl.sosfilt(s, x, zi=zi)), [t.to(dtype) for t in (sos, x, zi)]


def _tv(dtype, T):
    g = _g(4)
    r = 0.95 + 0.04 * torch.rand(T, generator=g, dtype=torch.float64)
    th = 0.3 + 0.5 * torch.rand(T, generator=g, dtype=torch.float64)
    a = torch.stack([torch.ones(T, dtype=torch.float64), -2 * r * torch.cos(th), r * r], -1)
    b = torch.randn(2, T, 3, generator=g, dtype=torch.float64)
    x = torch.randn(2, T, generator=g, dtype=torch.float64)
    zi = torch.randn(2, 4, generator=g, dtype=torch.float64)
    # with zi too, one fused section: the history as its head, the final state from its ends
    return "tv_sos", (lambda b, a, x, zi: sl.time_varying_lfilter(b, a, x, zi=zi)), [
        t.to(dtype) for t in (b, a, x, zi)]


def _tv_from_rest(dtype, T):
    """Per-sample b from rest: the FIR and the recurrence in one fused launch (a one-section tv_sos;
    at T = 1, where b reads as constant, too)."""
    kernel, fn, args = _tv(dtype, T)
    b, a, x, _ = args
    return "tv_sos", (lambda b, a, x: sl.time_varying_lfilter(b, a, x)), [b, a, x]


def _tv_constant_b(dtype, T):
    """Constant b (a stride-0 time axis) with a history and a time-varying a[n, 0]: one fused section."""
    g = _g(6)
    r = 0.9 + 0.09 * torch.rand(T, generator=g, dtype=torch.float64)
    a0 = 0.5 + torch.rand(T, generator=g, dtype=torch.float64)
    a = torch.stack([a0, -2 * r * torch.cos(torch.full((T,), 0.4, dtype=torch.float64)) * a0, r * r * a0], -1)
    b = torch.randn(3, generator=g, dtype=torch.float64)
    x = torch.randn(2, T, generator=g, dtype=torch.float64)
    zi = torch.randn(2, 4, generator=g, dtype=torch.float64)
    return "tv_sos", (lambda b, a, x, zi: sl.time_varying_lfilter(b, a, x, zi=zi)), [
        t.to(dtype) for t in (b, a, x, zi)]


def _tv_long_fir(dtype, T):
    """A longer FIR than the recursion (M = 4 > N = 2), with zi: beyond the fused section's FIR, so the
    FIR in torch and the time-varying kernel (forward and its one-launch adjoint)."""
    _, fn, (b, a, x, zi) = _tv(torch.float64, T)
    b = torch.cat([b, b[..., :2]], -1)
    zi = torch.cat([zi, zi[:, :2]], -1)
    return "time_varying", (lambda b, a, x, zi: sl.time_varying_lfilter(b, a, x, zi=zi)), [
        t.to(dtype) for t in (b, a, x, zi)]


def _tv_sosfilt(dtype, T):
    """Time-varying biquads from rest: one fused cascade launch forward, two backward (the section
    signals recomputed, then every section's adjoint)."""
    g = _g(7)
    n = torch.arange(T, dtype=torch.float64)[:, None]
    th = torch.tensor([0.3, 1.2], dtype=torch.float64) + 0.2 * torch.sin(n / 15)  # (T, 2 sections)
    r = torch.tensor([0.98, 0.9], dtype=torch.float64)
    a0 = 0.5 + torch.rand(T, 2, generator=g, dtype=torch.float64)
    sos = torch.stack([*torch.randn(3, T, 2, generator=g, dtype=torch.float64), a0, -2 * r * torch.cos(th) * a0,
                       r * r * a0], -1)
    x = torch.randn(2, T, generator=g, dtype=torch.float64)
    return "tv_sos", (lambda s, x: sl.time_varying_sosfilt(s, x)), [t.to(dtype) for t in (sos, x)]


def _lr(dtype, T, reverse=False):
    g = _g(5)
    a = torch.polar(0.9 + 0.099 * torch.rand(2, T, generator=g, dtype=torch.float64),
                    6.0 * torch.rand(2, T, generator=g, dtype=torch.float64))
    if not dtype.is_complex:
        a = a.real.sign() * a.abs()
    u = torch.randn(2, T, generator=g, dtype=torch.complex128)
    u = u if dtype.is_complex else u.real
    h0 = u[:, 0].clone()
    return "diagonal", (lambda a, u, h0: sl.linear_recurrence(a, u, h0, reverse=reverse)), [
        t.to(dtype) for t in (a, u, h0)]


CASES = {
    "lfilter": _lfilter,
    "lfilter_order6": _lfilter_order6,
    "sosfilt": _sosfilt,
    "time_varying_lfilter": _tv,
    "time_varying_lfilter_constant_b": _tv_constant_b,
    "time_varying_lfilter_long_fir": _tv_long_fir,
    "time_varying_lfilter_from_rest": _tv_from_rest,
    "time_varying_sosfilt": _tv_sosfilt,
    "linear_recurrence": _lr,
    "linear_recurrence_reverse": lambda dt, T: _lr(dt, T, reverse=True),
}
DTYPES = {
    "linear_recurrence": [torch.float32, torch.complex64],
    "linear_recurrence_reverse": [torch.float64, torch.complex128],
}
PARAMS = [
    pytest.param(name, dt, T, id=f"triton_interpreter-{name}-{str(dt).split('.')[-1]}-T{T}")
    for name in CASES for dt in DTYPES.get(name, [torch.float32, torch.float64]) for T in (1, 100, 300)
    if not (T == 1 and dt in (torch.float64, torch.complex128))
]


def _run(fn, args, grad):
    leaves = [t.detach().clone().requires_grad_(grad) for t in args]
    out = fn(*leaves)
    outs = list(out) if isinstance(out, tuple) else [out]
    if not grad:
        return [o.detach() for o in outs], []
    g = _g(9)
    w = [torch.randn(o.shape, generator=g, dtype=torch.float64).to(o.dtype) for o in outs]
    loss = sum((o * wi.conj()).real.sum() for o, wi in zip(outs, w))
    return [o.detach() for o in outs], list(torch.autograd.grad(loss, leaves))


def _tol(dt):
    return 1e-10 if dt in (torch.float64, torch.complex128) else 2e-4


@pytest.mark.parametrize("name,dtype,T", PARAMS)
def test_triton_interpreter_matches_torch_engine(name, dtype, T, monkeypatch, kernel_calls):
    kernel, fn, args = CASES[name](dtype, T)
    monkeypatch.setenv("SSM_LFILTER_BACKEND", "torch")
    exp_out, _ = _run(fn, args, grad=False)
    monkeypatch.setenv("SSM_LFILTER_BACKEND", "triton")
    got_out, _ = _run(fn, args, grad=False)
    assert kernel_calls[kernel] > 0, f"{PATH}: {name} never called ssm_lfilter.kernels.{kernel} (silent fallback?)"
    tol = _tol(dtype)
    for i, (go, eo) in enumerate(zip(got_out, exp_out)):
        assert go.dtype == eo.dtype and go.shape == eo.shape, f"{PATH}: {name} output {i}"
        scale = max(1.0, float(eo.abs().max()))
        torch.testing.assert_close(go, eo, rtol=tol, atol=tol * scale,
                                   msg=lambda m: f"{PATH}: {name} output {i} differs from the torch engine: {m}")


GRAD_PARAMS = [p for p in PARAMS if p.values[2] == 100]


@pytest.mark.parametrize("name,dtype,T", GRAD_PARAMS)
def test_triton_interpreter_gradients_match_torch_engine(name, dtype, T, monkeypatch, kernel_calls):
    kernel, fn, args = CASES[name](dtype, T)
    monkeypatch.setenv("SSM_LFILTER_BACKEND", "torch")
    _, exp_grad = _run(fn, args, grad=True)
    monkeypatch.setenv("SSM_LFILTER_BACKEND", "triton")
    _, got_grad = _run(fn, args, grad=True)
    if kernel == "diagonal":  # forward: diagonal; backward: the fused adjoint kernel
        assert kernel_calls["diagonal"] >= 1 and kernel_calls["diagonal_adjoint"] >= 1, \
            f"{PATH}: {name} forward or backward did not run on the kernels"
    elif kernel in ("sos", "tv_sos"):  # the fused cascade forward, and its two-launch backward
        assert kernel_calls[kernel] >= 1 and kernel_calls[f"{kernel}_adjoint"] >= 1, \
            f"{PATH}: {name} forward or backward did not run on the kernels"
    elif name in ("lfilter", "time_varying_lfilter_long_fir"):  # one-launch adjoints
        adjoint = f"{kernel}_adjoint" if kernel == "time_varying" else "lti_adjoint_sums"
        assert kernel_calls[kernel] >= 1 and kernel_calls[adjoint] >= 1, \
            f"{PATH}: {name} forward or backward did not run on the kernels"
    else:
        assert kernel_calls[kernel] >= 2, f"{PATH}: {name} backward did not run on the kernels"
    tol = 10 * _tol(dtype)
    for i, (gg, eg) in enumerate(zip(got_grad, exp_grad)):
        scale = max(1.0, float(eg.abs().max()))
        torch.testing.assert_close(gg, eg, rtol=tol, atol=tol * scale,
                                   msg=lambda m: f"{PATH}: {name} gradient of input {i} differs: {m}")


def test_triton_interpreter_against_scipy_directly(monkeypatch, kernel_calls):
    """Not only equal to the torch engine: right (so two equal wrong answers would still fail)."""
    monkeypatch.setenv("SSM_LFILTER_BACKEND", "triton")
    b, a = ss.butter(2, 0.05)
    x = np.random.default_rng(0).standard_normal((2, 200))
    y = sl.lfilter(torch.tensor(b), torch.tensor(a), torch.tensor(x))
    assert kernel_calls["lti"] > 0
    np.testing.assert_allclose(y.numpy(), ss.lfilter(b, a, x), rtol=1e-9, atol=1e-9, err_msg=PATH)


def test_triton_interpreter_required_no_silent_fallback(monkeypatch):
    """SSM_LFILTER_BACKEND=triton on CPU without TRITON_INTERPRET=1 raises; it never runs the torch engine."""
    monkeypatch.setenv("SSM_LFILTER_BACKEND", "triton")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET"):
        sl.lfilter(torch.tensor([1.0]), torch.tensor([1.0, -0.5]), torch.randn(2, 10))


def test_triton_complex_lfilter_raises_not_falls_back(monkeypatch):
    monkeypatch.setenv("SSM_LFILTER_BACKEND", "triton")
    with pytest.raises(RuntimeError):
        sl.lfilter(torch.tensor([1.0 + 1j]), torch.tensor([1.0, -0.5j]), torch.randn(2, 10, dtype=torch.complex64))


def test_backend_env_rejects_unknown_value(monkeypatch):
    monkeypatch.setenv("SSM_LFILTER_BACKEND", "cuda-please")
    with pytest.raises(ValueError, match="SSM_LFILTER_BACKEND"):
        sl.lfilter(torch.tensor([1.0]), torch.tensor([1.0, -0.5]), torch.randn(2, 10))


def test_missing_triton_is_named_and_a_found_one_is_remembered(monkeypatch):
    """Without Triton (or the installed kernels) the reason names it; once both are found they are not
    searched for again on every call (a find_spec each took host time of every launch)."""
    import importlib.util

    from ssm_lfilter import backend

    t = torch.zeros(2)
    real = importlib.util.find_spec
    calls = []

    def find_spec(name, *args):
        calls.append(name)
        return None if name == "triton" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(backend, "_importable", False)
    assert "triton is not installed" in backend._triton_problem("lti", t)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: calls.append(name) or real(name, *args))
    calls.clear()
    assert backend._triton_problem("lti", t) is None and calls == ["triton", "ssm_lfilter.kernels"]
    calls.clear()
    assert backend._triton_problem("lti", t) is None and calls == []


@pytest.mark.parametrize("M,N,T", [(4, 2, 2), (5, 2, 3), (6, 6, 4), (2, 2, 1)])
@pytest.mark.parametrize("create_graph", [False, True])
def test_triton_interpreter_tv_fir_longer_than_signal(monkeypatch, kernel_calls, M, N, T, create_graph):
    """``time_varying_lfilter`` whose per-sample FIR is longer than the signal (``M >= T``), through the
    section-by-section backward (per-sample ``b`` beyond the fused kernel's orders, or
    ``create_graph=True``): the FIR's transposed taps beyond ``T`` once padded the gradient to ``M``
    samples (a shape error, or a silently doubled ``dx`` at ``T = 1``). Against the torch engine."""
    g = _g(11)
    b = torch.randn(T, M + 1, generator=g, dtype=torch.float64)
    a = torch.tensor(np.r_[1.0, 0.3 * 0.5 ** np.arange(1, N + 1)])
    x = torch.randn(2, T, generator=g, dtype=torch.float64)
    out = {}
    for mode in ("torch", "triton"):
        monkeypatch.setenv("SSM_LFILTER_BACKEND", mode)
        xs, bs = x.clone().requires_grad_(), b.clone().requires_grad_()
        y = sl.time_varying_lfilter(bs, a.expand(T, N + 1), xs)
        out[mode] = torch.autograd.grad((y * y).sum(), [xs, bs], create_graph=create_graph)
    assert kernel_calls["time_varying"] + kernel_calls["time_varying_adjoint"] + kernel_calls["tv_sos"] > 0
    for t, r in zip(out["triton"], out["torch"]):
        torch.testing.assert_close(t, r, rtol=1e-10, atol=1e-12, msg=PATH)


def test_triton_interpreter_tv_above_order_16(monkeypatch, kernel_calls):
    """Time-varying orders above the kernels' 16: the torch engine under ``auto`` (the kernels' path on
    CUDA tensors), an error naming the order when the kernels are forced."""
    from ssm_lfilter import backend, ops

    a = torch.tensor(np.r_[1.0, 0.5 ** np.arange(1, 18)]).expand(40, 18)
    x = torch.randn(1, 40, dtype=torch.float64)
    monkeypatch.setenv("SSM_LFILTER_BACKEND", "triton")
    with pytest.raises(ValueError, match="N=17"):
        sl.time_varying_lfilter(torch.ones(1), a, x)
    # auto on a tensor the kernels would take: what CUDA tensors meet
    monkeypatch.setenv("SSM_LFILTER_BACKEND", "auto")
    monkeypatch.setattr(backend, "use_triton", lambda op, t: True)
    kernel_calls["time_varying"] = 0
    y = ops.tv(x, a[None, :, 1:].contiguous())
    assert kernel_calls["time_varying"] == 0
    monkeypatch.setenv("SSM_LFILTER_BACKEND", "torch")
    torch.testing.assert_close(y, sl.time_varying_lfilter(torch.ones(1), a, x), rtol=1e-12, atol=1e-12)
