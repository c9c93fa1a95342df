"""The fused LTI coefficient-gradient reductions: the launcher ``ssm_lfilter.kernels.lti_coef_grads``
(under the interpreter on CPU) and the ``ssm_lfilter::lti_coef_grads`` op the backward of
``ssm_lfilter::lti`` calls when no graph is being built."""
import numpy as np
import pytest
import torch

import ssm_lfilter as sl
import ssm_lfilter.ops as ops
from ssm_lfilter.kernels import lti_coef_grads as launcher

pytestmark = pytest.mark.interpreter


def _oracle(v, x, y, n_b, n_a):
    """The definition, one lag at a time in float64."""
    v, x, y = (t.double() for t in (v, x, y))
    T = v.shape[1]
    db = torch.stack([(v[:, k:] * x[:, : T - k]).sum(1) if k < T else v.new_zeros(v.shape[0])
                      for k in range(n_b)], 1) if n_b else v.new_zeros(v.shape[0], 0)
    da = torch.stack([-(v[:, k:] * y[:, : T - k]).sum(1) if k < T else v.new_zeros(v.shape[0])
                      for k in range(1, n_a + 1)], 1) if n_a else v.new_zeros(v.shape[0], 0)
    return db, da


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("R,T,n_b,n_a,block", [
    (3, 100, 3, 2, 16),     # several blocks, lags cross every block boundary
    (2, 37, 1, 4, 8),       # odd length, last block partial
    (1, 5, 9, 6, 4),        # more lags than samples
    (2, 1, 3, 2, None),     # length 1
    (4, 300, 33, 0, 64),    # FIR only (n_a = 0), many taps
    (2, 50, 0, 17, 32),     # poles only
])
def test_matches_definition(dtype, R, T, n_b, n_a, block):
    g = torch.Generator().manual_seed(R * 1000 + T)
    v, x, y = (torch.randn(R, T, generator=g, dtype=torch.float64).to(dtype) for _ in range(3))
    db, da = launcher(v, x, y, n_b, n_a, block=block)
    eb, ea = _oracle(v, x, y, n_b, n_a)
    assert db.dtype == dtype and db.shape == (R, n_b) and da.shape == (R, n_a)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(db.double(), eb, rtol=tol, atol=tol * T)
    torch.testing.assert_close(da.double(), ea, rtol=tol, atol=tol * T)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_reverse_looks_ahead(dtype):
    """For a filter run backwards in time the lags look ahead: the same sums on flipped signals."""
    g = torch.Generator().manual_seed(5)
    v, x, y = (torch.randn(2, 70, generator=g, dtype=torch.float64).to(dtype) for _ in range(3))
    db, da = launcher(v, x, y, 4, 3, reverse=True, block=16)
    eb, ea = _oracle(v.flip(1), x.flip(1), y.flip(1), 4, 3)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(db.double(), eb, rtol=tol, atol=tol * 70)
    torch.testing.assert_close(da.double(), ea, rtol=tol, atol=tol * 70)


@pytest.mark.parametrize("backend", ["triton", "torch"])
def test_reverse_op_gradients(backend, monkeypatch):
    """The lti op with reverse=True: opcheck, gradcheck (its backward runs the forward-time adjoint
    and the look-ahead reductions), and equal to the flipped forward filter."""
    monkeypatch.setenv("SSM_LFILTER_BACKEND", backend)
    g = torch.Generator().manual_seed(9)
    x = torch.randn(2, 20, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(1, 3, generator=g, dtype=torch.float64, requires_grad=True)
    a = torch.tensor([[-0.9, 0.3]], dtype=torch.float64, requires_grad=True)
    head = torch.randn(2, 3, generator=g, dtype=torch.float64, requires_grad=True)
    op = torch.ops.ssm_lfilter.lti.default
    torch.library.opcheck(op, (x, b, a, head, True),
                          test_utils=("test_schema", "test_autograd_registration", "test_faketensor",
                                      "test_aot_dispatch_dynamic"))
    y = op(x, b, a, head, True)
    torch.testing.assert_close(y, op(x.flip(1), b, a, head, False).flip(1))
    assert torch.autograd.gradcheck(lambda *t: op(*t, True), (x, b, a, head), fast_mode=backend == "triton")


def test_strided_inputs_empty_and_deterministic():
    base = torch.randn(3, 2, 90, dtype=torch.float64)
    v, x, y = base[:, 0, ::2], base[:, 1, 1::2], base[:, 0, 1::2]  # non-contiguous views
    db, da = launcher(v, x, y, 3, 2, block=8)
    eb, ea = _oracle(v, x, y, 3, 2)
    torch.testing.assert_close(db, eb)
    torch.testing.assert_close(da, ea)
    assert torch.equal(db, launcher(v, x, y, 3, 2, block=8)[0])
    db0, da0 = launcher(torch.zeros(2, 0), torch.zeros(2, 0), torch.zeros(2, 0), 3, 2)
    assert db0.shape == (2, 3) and da0.shape == (2, 2) and not db0.any()


def test_errors():
    z = torch.zeros(2, 10)
    with pytest.raises(ValueError, match="one shape"):
        launcher(z, torch.zeros(3, 10), z, 1, 1)
    with pytest.raises(TypeError, match="real floating"):
        launcher(z, z.to(torch.complex64), z, 1, 1)
    with pytest.raises(ValueError, match="power of two"):
        launcher(z, z, z, 1, 1, block=12)


@pytest.mark.parametrize("backend", ["triton", "torch"])
def test_op_opcheck(backend, monkeypatch):
    monkeypatch.setenv("SSM_LFILTER_BACKEND", backend)
    v, x, y = (torch.randn(2, 40, dtype=torch.float64) for _ in range(3))
    torch.library.opcheck(torch.ops.ssm_lfilter.lti_coef_grads.default, (v, x, y, 3, 2),
                          test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_dynamic"))
    db, da = ops.lti_coef_grads(v, x, y, 3, 2)
    eb, ea = _oracle(v, x, y, 3, 2)
    torch.testing.assert_close(db, eb)
    torch.testing.assert_close(da, ea)


def test_lfilter_gradients_use_the_fused_op(monkeypatch):
    """Above order 4 (where the one-launch adjoint of kernels/lti_adjoint.py does not apply), lfilter's
    coefficient gradients on the Triton path (interpreter) come from one fused call and equal the
    torch engine's; under create_graph=True the composed ops run (double backward works)."""
    import ssm_lfilter.kernels as K

    calls = []
    real = K.lti_coef_grads
    monkeypatch.setattr(K, "lti_coef_grads", lambda *a, **k: calls.append(1) or real(*a, **k))
    g = torch.Generator().manual_seed(0)
    b = torch.randn(2, 3, generator=g, dtype=torch.float64, requires_grad=True)
    poles = [0.9, -0.5, 0.7 + 0.2j, 0.7 - 0.2j, -0.3 + 0.6j, -0.3 - 0.6j]  # order 6
    a = torch.tensor(np.real(np.poly(poles)), dtype=torch.float64).repeat(2, 1).requires_grad_()
    x = torch.randn(2, 120, generator=g, dtype=torch.float64, requires_grad=True)
    grads = {}
    for backend in ("torch", "triton"):
        monkeypatch.setenv("SSM_LFILTER_BACKEND", backend)
        y = sl.lfilter(b, a, x)
        grads[backend] = torch.autograd.grad((y * y.detach().cos()).sum(), (b, a, x))
    assert len(calls) == 1
    for got, exp in zip(grads["triton"], grads["torch"]):
        torch.testing.assert_close(got, exp, rtol=1e-9, atol=1e-9)
    monkeypatch.setenv("SSM_LFILTER_BACKEND", "triton")
    y = sl.lfilter(b, a, x)
    gb, = torch.autograd.grad(y.pow(2).sum(), b, create_graph=True)
    assert len(calls) == 1  # the composed path, differentiable again
    (gb.sum()).backward()
    assert a.grad is not None and torch.isfinite(a.grad).all()
