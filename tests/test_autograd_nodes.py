"""``lfilter`` and ``sosfilt`` (without ``zi``) divide by ``a0`` inside their op, so autograd records
no division and no slices of the coefficients around the filter: on an H200 the backward of
those nodes took more host time than the filter's own fused backward
(``benchmarks/results/cuda-nvidia-h200-2026-11-28``, 0.84 of a backward's 1.03 ms on a short signal)."""
import pytest
import torch

import ssm_lfilter as sl
from helpers import graph_node_names


def _grads_match_the_engine(fn, leaves, backend, monkeypatch):
    """Gradients of the raw coefficients: ``gradcheck`` on the engine; on the kernels (under the
    interpreter, where a gradcheck's thousand launches take minutes) equal to the engine's."""
    if backend == "engine":
        assert torch.autograd.gradcheck(fn, leaves)
        return
    got = torch.autograd.grad(fn(*leaves).square().sum(), leaves)
    monkeypatch.setenv("SSM_LFILTER_BACKEND", "torch")
    want = torch.autograd.grad(fn(*leaves).square().sum(), leaves)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-10)


@pytest.fixture(params=["engine", "kernels"])
def backend(request, monkeypatch):
    if request.param == "kernels":
        if torch.cuda.is_available():
            pytest.skip("CPU interpreter path only")
        monkeypatch.setenv("SSM_LFILTER_BACKEND", "triton")
    return request.param


# complex filters run the engine on every device (the LTI kernels take real dtypes)
@pytest.mark.parametrize("backend,dtype", [("engine", torch.float64), ("engine", torch.complex128),
                                           ("kernels", torch.float64)], indirect=["backend"])
def test_lfilter_records_one_filter_node_and_no_division(backend, dtype, monkeypatch):
    b = torch.tensor([0.2, 0.4, 0.2], dtype=dtype, requires_grad=True)
    a0 = 2.0 if dtype == torch.float64 else 1.5 + 0.5j
    a = torch.tensor([a0, -1.2, 0.6], dtype=dtype, requires_grad=True)
    x = torch.randn(2, 3, 50, dtype=dtype, requires_grad=True)
    y = sl.lfilter(b, a, x)
    names = graph_node_names(y)
    assert sum(n.startswith("_LtiFunction") for n in names) == 1, names
    assert not {"DivBackward0", "SliceBackward0", "SelectBackward0"} & set(names), names
    # and the gradients are the raw coefficients' (a0 = 2 included)
    _grads_match_the_engine(lambda b, a, x: sl.lfilter(b, a, x), (b, a, x), backend, monkeypatch)


def test_lfilter_pure_fir_gradient_of_a0(backend, monkeypatch):
    """A pure FIR with its own a0 (``a = [a0]``: no poles, so the raw op's columns hold no a0
    gradient of their own) still has ``d y / d a0 = -y / a0``, per row and shared."""
    x = torch.randn(3, 40, dtype=torch.float64, requires_grad=True)
    for b, a in ((torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64), torch.tensor([0.7], dtype=torch.float64)),
                 (torch.randn(3, 2, dtype=torch.float64), 0.5 + torch.rand(3, 1, dtype=torch.float64))):
        b, a = b.requires_grad_(), a.requires_grad_()
        y = sl.lfilter(b, a, x)
        (ga,) = torch.autograd.grad(y.sum(), a)
        want = -(y.detach() / a.detach()).sum(-1) if a.dim() == 2 else -(y.detach() / a.detach()).sum().reshape(1)
        torch.testing.assert_close(ga, want.reshape(a.shape), rtol=1e-9, atol=1e-9)
        _grads_match_the_engine(lambda b, a, x: sl.lfilter(b, a, x), (b, a, x), backend, monkeypatch)


def test_sosfilt_records_no_division(backend, monkeypatch):
    sos = torch.tensor([[0.2, 0.4, 0.2, 1.5, -0.6, 0.3], [1.0, 0.0, -1.0, 0.8, 0.1, 0.2]], dtype=torch.float64,
                       requires_grad=True)
    x = torch.randn(2, 40, dtype=torch.float64, requires_grad=True)
    names = graph_node_names(sl.sosfilt(sos, x))
    if backend == "kernels":  # the fused cascade's op (the engine runs a section at a time)
        assert sum(n.startswith("_SosFunction") for n in names) == 1, names
        assert not {"DivBackward0", "SliceBackward0"} & set(names), names
    _grads_match_the_engine(lambda s, x: sl.sosfilt(s, x), (sos, x), backend, monkeypatch)
