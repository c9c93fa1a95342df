"""On the kernels, every element of every output and gradient is written: nothing is left as it was
allocated.

The launchers allocate their outputs with ``torch.empty`` and rely on the kernels to write every
element (a zero-filled buffer the kernel overwrites costs a whole write pass of DRAM traffic). Under
``torch.use_deterministic_algorithms(True)`` with ``fill_uninitialized_memory`` PyTorch fills every
``torch.empty`` with NaN, so a finite problem whose output holds a NaN has an element no kernel wrote.
Each case crosses tiles and chunks of the interpreter's configurations and runs its backward too.
"""
import numpy as np
import pytest
import scipy.signal as ss
import torch

import ssm_lfilter as sl

pytestmark = pytest.mark.interpreter

F64 = dict(dtype=torch.float64)


@pytest.fixture
def nan_filled_empty(monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("CPU interpreter path only")
    monkeypatch.setenv("SSM_LFILTER_BACKEND", "triton")
    old = (torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory)
    torch.use_deterministic_algorithms(True)
    torch.utils.deterministic.fill_uninitialized_memory = True
    assert torch.empty(3).isnan().all()  # the premise of every test here
    yield
    torch.use_deterministic_algorithms(old[0])
    torch.utils.deterministic.fill_uninitialized_memory = old[1]


def _all_written(fn, *inputs):
    """``fn`` on leaf copies of ``inputs``: every output and every input's gradient free of NaN."""
    leaves = [t.clone().requires_grad_() if t.is_floating_point() or t.is_complex() else t for t in inputs]
    out = fn(*leaves)
    outs = list(out) if isinstance(out, tuple) else [out]
    loss = sum((o.abs() ** 2).sum() for o in outs)
    grads = torch.autograd.grad(loss, [t for t in leaves if t.requires_grad])
    for i, t in enumerate(outs + list(grads)):
        assert not t.isnan().any(), f"tensor {i} of {tuple(t.shape)} has unwritten (NaN) elements"


def _signal(R, T, seed):
    return torch.randn(R, T, generator=torch.Generator().manual_seed(seed), **F64)


@pytest.mark.parametrize("order", [1, 2, 4, 6])
def test_lfilter(order, nan_filled_empty):
    b, a = (torch.tensor(c, **F64) for c in ss.butter(order, 0.2))
    x = _signal(3, 301, order)
    zi = torch.randn(3, order, **F64)
    _all_written(lambda b, a, x, zi: sl.lfilter(b, a, x, zi=zi), b, a, x, zi)
    _all_written(lambda b, a, x: sl.lfilter(b, a, x), b.expand(3, -1), a.expand(3, -1), x)


def test_sosfilt(nan_filled_empty):
    sos = torch.tensor(ss.butter(6, 0.2, output="sos"), **F64)
    x = _signal(2, 257, 10)
    _all_written(lambda s, x: sl.sosfilt(s, x), sos, x)
    _all_written(lambda s, x, zi: sl.sosfilt(s, x, zi=zi), sos, x, torch.randn(3, 2, 2, **F64))


def _tv_coefficients(T, seed):
    """A swept biquad ``(b, a)``, each ``(T, 3)``, with a leading coefficient that is not 1."""
    g = torch.Generator().manual_seed(seed)
    th = 0.3 + 0.2 * torch.rand(T, generator=g, **F64)
    a = torch.stack([torch.ones(T, **F64), -1.8 * torch.cos(th), torch.full((T,), 0.81, **F64)], -1)
    a = a * (1.0 + 0.5 * torch.rand(T, 1, generator=g, **F64))
    return torch.randn(T, 3, generator=g, **F64), a


@pytest.mark.parametrize("zi", [False, True])
def test_time_varying_lfilter_order_two(zi, nan_filled_empty):
    T = 150
    b, a = _tv_coefficients(T, 20)
    x = _signal(2, T, 21)
    if zi:
        _all_written(lambda b, a, x, z: sl.time_varying_lfilter(b, a, x, zi=z), b, a, x, torch.randn(2, 4, **F64))
    else:
        _all_written(lambda b, a, x: sl.time_varying_lfilter(b, a, x), b, a, x)


def test_time_varying_lfilter_high_order(nan_filled_empty):
    """Order 6: the multi-pass kernels, forward and backward (``da`` written by the last pass)."""
    T = 130
    p = torch.tensor([0.5, 0.6, -0.4, 0.3, 0.2, -0.5], **F64)
    a = torch.tensor(np.poly(p.numpy()), **F64).expand(T, 7) * (1 + 0.1 * torch.linspace(0, 1, T, **F64))[:, None]
    b = torch.randn(T, 2, **F64)
    _all_written(lambda b, a, x: sl.time_varying_lfilter(b, a, x), b, a, _signal(2, T, 30))


def test_time_varying_sosfilt(nan_filled_empty):
    T = 120
    s1 = torch.cat(_tv_coefficients(T, 40), -1)
    s2 = torch.cat(_tv_coefficients(T, 41), -1)
    sos = torch.stack([s1, s2], -2)
    x = _signal(2, T, 42)
    _all_written(lambda s, x: sl.time_varying_sosfilt(s, x), sos, x)
    _all_written(lambda s, x, z: sl.time_varying_sosfilt(s, x, zi=z), sos, x, torch.randn(2, 2, 4, **F64))


@pytest.mark.parametrize("single_pass", ["0", "1"])
@pytest.mark.parametrize("kind", ["real", "constant", "complex"])
@pytest.mark.parametrize("reverse", [False, True])
def test_linear_recurrence(kind, reverse, single_pass, nan_filled_empty, monkeypatch):
    monkeypatch.setenv("SSM_LFILTER_SINGLE_PASS", single_pass)
    g = torch.Generator().manual_seed(50)
    R, T = 3, 333
    a = 0.95 * torch.rand(R, 1 if kind == "constant" else T, generator=g, **F64)
    u = _signal(R, T, 51)
    if kind == "complex":
        a = torch.polar(a, torch.rand(R, T, generator=g, **F64))
        u = torch.complex(u, _signal(R, T, 52))
    _all_written(lambda a, u: sl.linear_recurrence(a, u, reverse=reverse), a, u)
