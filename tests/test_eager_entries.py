"""The eager entries of ssm_lfilter.ops (implementation called directly, or through an
autograd.Function) give what the registered ops give, values and gradients, and step aside for the
ops wherever the dispatcher must see the call (dispatch modes, torch.func, torch.compile: tested in
test_compile.py)."""
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import ssm_lfilter as sl
from ssm_lfilter import ops
from helpers import graph_node_names

T = 300


def _cases():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, T, dtype=torch.float64, generator=g)
    at = torch.stack([torch.ones(T, dtype=torch.float64), -0.5 + 0.1 * torch.rand(T, generator=g, dtype=torch.float64),
                      torch.full((T,), 0.2, dtype=torch.float64)], -1)
    return {
        "lfilter": (lambda b, a, x: sl.lfilter(b, a, x),
                    [torch.tensor([0.2, 0.4, 0.2], dtype=torch.float64), torch.tensor([1.0, -0.6, 0.3], dtype=torch.float64)], x),
        "lfilter zi": (lambda b, a, z, x: sl.lfilter(b, a, x, zi=z)[0],
                       [torch.tensor([0.2, 0.4], dtype=torch.float64), torch.tensor([1.0, -0.5], dtype=torch.float64),
                        torch.randn(3, 1, dtype=torch.float64, generator=g)], x),
        "sosfilt": (lambda sos, x: sl.sosfilt(sos, x),
                    [torch.tensor([[0.2, 0.4, 0.2, 1.0, -0.6, 0.3], [1.0, 0.0, -1.0, 1.0, 0.1, 0.2]], dtype=torch.float64)], x),
        "linear_recurrence": (lambda a, x: sl.linear_recurrence(a, x), [torch.full((3, 1), 0.9, dtype=torch.float64)], x),
        "time_varying_lfilter": (lambda b, a, x: sl.time_varying_lfilter(b, a, x),
                                 [torch.tensor([0.3, 0.2], dtype=torch.float64), at], x),
        "time_varying_lfilter zi": (lambda b, a, z, x: sl.time_varying_lfilter(b, a, x, zi=z)[0],
                                    [torch.tensor([0.3, 0.2], dtype=torch.float64), at,
                                     torch.randn(3, 3, dtype=torch.float64, generator=g)], x),
    }


def _run(fn, coefs, x):
    leaves = [c.clone().requires_grad_() for c in coefs] + [x.clone().requires_grad_()]
    y = fn(*leaves)
    grads = torch.autograd.grad(y.square().sum(), leaves)
    return y.detach(), grads


@pytest.mark.parametrize("name", list(_cases()))
def test_entries_match_registered_ops(name, monkeypatch):
    fn, coefs, x = _cases()[name]
    y, grads = _run(fn, coefs, x)
    monkeypatch.setattr(ops, "eager_entries", False)
    y_op, grads_op = _run(fn, coefs, x)
    torch.testing.assert_close(y, y_op, rtol=0, atol=0)
    for g, g_op in zip(grads, grads_op):
        torch.testing.assert_close(g, g_op, rtol=0, atol=0)


class _Count(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


def test_eager_calls_skip_the_dispatcher_and_modes_see_the_ops(monkeypatch):
    calls = []
    real = ops.lti_op
    monkeypatch.setattr(ops, "lti_op", lambda *args: calls.append(1) or real(*args))
    b, a = torch.tensor([0.2, 0.4, 0.2]), torch.tensor([1.0, -0.6, 0.3])
    x = torch.randn(2, 50, requires_grad=True)
    torch.autograd.grad(sl.lfilter(b, a, x).sum(), x)
    assert not calls
    with _Count() as mode:  # a dispatch mode must see the op itself, not its insides
        sl.lfilter(b, a, x.detach())
    assert calls and "ssm_lfilter.lti.default" in mode.ops


def test_parameters_take_the_eager_entry(monkeypatch):
    calls = []
    real = ops.lti_op
    monkeypatch.setattr(ops, "lti_op", lambda *args: calls.append(1) or real(*args))
    x = torch.nn.Parameter(torch.randn(2, 50))
    b, a = torch.nn.Parameter(torch.ones(1, 3) / 3), torch.nn.Parameter(torch.tensor([[0.5, 0.1]]))
    y = ops.lti(x, b, a, torch.zeros(2, 0))
    y.sum().backward()
    assert not calls and x.grad is not None and b.grad is not None and a.grad is not None


def test_meta_tensors_take_the_registered_op():
    b, a = torch.tensor([0.2, 0.4, 0.2], device="meta"), torch.tensor([1.0, -0.6, 0.3], device="meta")
    y = sl.lfilter(b, a, torch.empty(2, 50, device="meta"))
    assert y.shape == (2, 50) and y.device.type == "meta"


@pytest.mark.parametrize("name", ["lfilter", "sosfilt", "linear_recurrence", "time_varying_lfilter"])
def test_rows_in_time_last_layout_add_no_view_nodes(name):
    """A signal already in the op's layout (rows, time last) reaches the op and comes back without
    permute or expand views: each would be one more node for every backward to run."""
    fn, coefficients, x = _cases()[name]
    x = x.clone().requires_grad_()
    nodes = graph_node_names(fn(*coefficients, x))
    assert not {"PermuteBackward0", "ExpandBackward0"} & set(nodes), nodes
