"""torch.compile(fullgraph=True) on every public function (aot_eager, one inductor case), and
torch.library.opcheck plus the documented contract of each registered op in ssm_lfilter.ops."""
import numpy as np
import pytest
import scipy.signal as ss
import torch

import ssm_lfilter as sl
import ssm_lfilter.ops  # noqa: F401  (registers torch.ops.ssm_lfilter.*)
from ssm_lfilter import reference as ref

F64 = dict(dtype=torch.float64)


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


def _lfilter_case(dtype=torch.float64):
    g = _g(1)
    b = torch.randn(2, 3, generator=g, **F64).to(dtype)
    a = torch.tensor([[1.0, -1.6, 0.8], [2.0, 0.3, 0.1]], **F64).to(dtype)
    x = torch.randn(2, 100, generator=g, **F64).to(dtype)
    zi = torch.randn(2, 2, generator=g, **F64).to(dtype)
    return (lambda b, a, x, zi: sl.lfilter(b, a, x, zi=zi)), (b, a, x, zi)


def _lfilter_axis_case():
    g = _g(2)
    b = torch.randn(4, generator=g, **F64)
    a = torch.tensor([1.0, -0.5], **F64)
    x = torch.randn(70, 3, generator=g, **F64)
    return (lambda b, a, x: sl.lfilter(b, a, x, axis=0)), (b, a, x)


def _sosfilt_case():
    g = _g(3)
    sos = torch.tensor(ss.butter(4, 0.2, output="sos"))
    x = torch.randn(3, 90, generator=g, **F64)
    zi = torch.randn(2, 3, 2, generator=g, **F64)
    return (lambda s, x, zi: sl.sosfilt(s, x, zi=zi)), (sos, x, zi)


def _tv_case():
    g = _g(4)
    T = 80
    b = torch.randn(2, T, 3, generator=g, **F64)
    a = torch.stack([torch.ones(T, **F64), -0.5 * torch.rand(T, generator=g, **F64),
                     0.2 * torch.rand(T, generator=g, **F64)], -1)
    x = torch.randn(2, T, generator=g, **F64)
    zi = torch.randn(2, 4, generator=g, **F64)
    return (lambda b, a, x, zi: sl.time_varying_lfilter(b, a, x, zi=zi)), (b, a, x, zi)


def _tv_sos_case():
    g = _g(5)
    T = 60
    sec = torch.tensor([0.3, 0.2, 0.1, 1.0, -0.4, 0.1], **F64)
    sos = (sec + 0.05 * torch.randn(T, 2, 6, generator=g, **F64)).clone()
    sos[..., 3] = 1.0
    x = torch.randn(3, T, generator=g, **F64)
    return (lambda s, x: sl.time_varying_sosfilt(s, x)), (sos, x)


def _tv_from_rest_case():
    """Per-sample b and a with a leading coefficient that is not 1, from rest: on the kernels the fused
    section with the raw coefficients (``monic=False``)."""
    g = _g(9)
    T = 50
    a0 = 0.7 + 0.6 * torch.rand(T, 1, generator=g, **F64)
    a = torch.cat([torch.ones(T, 1, **F64), -0.5 * torch.rand(T, 1, generator=g, **F64),
                   0.2 * torch.rand(T, 1, generator=g, **F64)], -1) * a0
    b = torch.randn(T, 3, generator=g, **F64)
    return (lambda b, a, x: sl.time_varying_lfilter(b, a, x)), (b, a, torch.randn(2, T, generator=g, **F64))


def _lr_case():
    g = _g(6)
    a = torch.polar(0.9 + 0.09 * torch.rand(2, 100, generator=g, **F64),
                    6.0 * torch.rand(2, 100, generator=g, **F64))
    u = torch.randn(2, 100, generator=g, dtype=torch.complex128)
    h0 = torch.randn(2, generator=g, dtype=torch.complex128)
    return (lambda a, u, h0: sl.linear_recurrence(a, u, h0, reverse=True)), (a, u, h0)


def _lr_real_case():
    g = _g(7)
    a = torch.tensor([[0.9], [0.5]], **F64)
    u = torch.randn(2, 100, generator=g, **F64)
    return (lambda a, u: sl.linear_recurrence(a, u)), (a, u)


CASES = {
    "lfilter": _lfilter_case,
    "lfilter_axis0": _lfilter_axis_case,
    "sosfilt": _sosfilt_case,
    "time_varying_lfilter": _tv_case,
    "time_varying_sosfilt": _tv_sos_case,
    "linear_recurrence_complex_reverse": _lr_case,
    "linear_recurrence_real": _lr_real_case,
}


def _flat(out):
    return list(out) if isinstance(out, tuple) else [out]


def _run_and_grad(fn, args):
    leaves = [t.detach().clone().requires_grad_(True) for t in args]
    outs = _flat(fn(*leaves))
    w = [torch.ones_like(o) * (i + 1) for i, o in enumerate(outs)]
    loss = sum((o * wi).real.sum() if o.is_complex() else (o * wi).sum() for o, wi in zip(outs, w))
    grads = torch.autograd.grad(loss, leaves)
    return [o.detach() for o in outs], grads


@pytest.mark.parametrize("name", sorted(CASES))
def test_compile_aot_eager_fullgraph(name):
    fn, args = CASES[name]()
    compiled = torch.compile(fn, backend="aot_eager", fullgraph=True)
    got_out, got_grad = _run_and_grad(compiled, args)
    exp_out, exp_grad = _run_and_grad(fn, args)
    assert len(got_out) == len(exp_out)
    for go, eo in zip(got_out, exp_out):
        torch.testing.assert_close(go, eo, rtol=1e-10, atol=1e-10)
    for gg, eg in zip(got_grad, exp_grad):
        torch.testing.assert_close(gg, eg, rtol=1e-10, atol=1e-10)
    # and the eager result itself is right (so the comparison above is not of two wrong things)
    if name == "lfilter":
        b, a, x, zi = args
        e = [ss.lfilter(b[i].numpy(), a[i].numpy(), x[i].numpy(), zi=zi[i].numpy())[0] for i in range(2)]
        np.testing.assert_allclose(got_out[0].numpy(), np.stack(e), rtol=1e-9, atol=1e-9)


def _sosfilt_no_zi_case():
    g = _g(8)
    sos = torch.tensor(ss.butter(4, 0.2, output="sos"))
    return (lambda s, x: sl.sosfilt(s, x)), (sos, torch.randn(2, 40, generator=g, **F64))


@pytest.mark.interpreter
@pytest.mark.parametrize("name", ["lfilter", "time_varying_lfilter", "time_varying_lfilter_from_rest", "sosfilt_no_zi",
                                  "time_varying_sosfilt"])
def test_compile_fullgraph_on_the_kernels(name, monkeypatch):
    """On the Triton path (the interpreter on CPU) the forwards and the fused backward ops
    (lti_adjoint, the sos and sos_adjoint ops, the tv_sos and tv_sos_adjoint ops) trace with fullgraph=True and match eager
    torch-engine values."""
    if torch.cuda.is_available():
        pytest.skip("CPU interpreter path only")
    fn, args = {**CASES, "sosfilt_no_zi": _sosfilt_no_zi_case, "time_varying_lfilter_from_rest": _tv_from_rest_case}[name]()
    exp_out, exp_grad = _run_and_grad(fn, args)
    import ssm_lfilter.kernels as K

    fused = {"lfilter": "lti_adjoint_sums", "time_varying_lfilter": "tv_sos_adjoint",
             "time_varying_lfilter_from_rest": "tv_sos_adjoint",
             "sosfilt_no_zi": "sos_adjoint", "time_varying_sosfilt": "tv_sos_adjoint"}[name]
    calls = []
    real = getattr(K, fused)
    monkeypatch.setattr(K, fused, lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setenv("SSM_LFILTER_BACKEND", "triton")
    compiled = torch.compile(fn, backend="aot_eager", fullgraph=True)
    got_out, got_grad = _run_and_grad(compiled, args)
    assert calls, f"the compiled backward did not run kernels.{fused}"
    for go, eo in zip(got_out, exp_out):
        torch.testing.assert_close(go, eo, rtol=1e-9, atol=1e-9)
    for gg, eg in zip(got_grad, exp_grad):
        torch.testing.assert_close(gg, eg, rtol=1e-9, atol=1e-9)


def test_compile_dynamic_shapes_no_recompile_error():
    fn, _ = _lfilter_case()
    compiled = torch.compile(fn, backend="aot_eager", fullgraph=True, dynamic=True)
    for T in (50, 77, 130):
        _, (b, a, x, zi) = _lfilter_case()
        x = torch.randn(2, T, **F64)
        y, zf = compiled(b, a, x, zi)
        ey, ezf = fn(b, a, x, zi)
        torch.testing.assert_close(y, ey, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(zf, ezf, rtol=1e-10, atol=1e-10)


def test_compile_inductor_lfilter_float32_with_backward():
    fn, args = _lfilter_case(torch.float32)
    compiled = torch.compile(fn, backend="inductor", fullgraph=True)
    got_out, got_grad = _run_and_grad(compiled, args)
    exp_out, exp_grad = _run_and_grad(fn, args)
    for go, eo in zip(got_out, exp_out):
        torch.testing.assert_close(go, eo, rtol=1e-5, atol=1e-5)
    for gg, eg in zip(got_grad, exp_grad):
        torch.testing.assert_close(gg, eg, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------------------- the ops
def _lti_args(R=3, T=70, M=2, N=2, K=3, Rb=1, Ra=3, dtype=torch.float64, grad=True):
    g = _g(10 + R + T + M + N + K)
    x = torch.randn(R, T, generator=g, **F64).to(dtype)
    b = torch.randn(Rb, M + 1, generator=g, **F64).to(dtype)
    a = torch.tensor([-1.2, 0.5, -0.1, 0.05][:N], **F64).expand(Ra, N).clone().to(dtype)
    head = torch.randn(R, K, generator=g, **F64).to(dtype)
    return [t.requires_grad_(grad) for t in (x, b, a, head)]


def _lti_args_unnormalized(Rb=1, Ra=3, reverse=False, dtype=torch.float64):
    """``_lti_args`` with ``a0`` (not 1) first in ``a``, for ``monic=False``."""
    x, b, a, head = _lti_args(Rb=Rb, Ra=Ra, dtype=dtype, grad=False)
    a0 = (1.5 + 0.1 * torch.arange(Ra, **F64)).to(dtype)[:, None]
    return [t.requires_grad_() for t in (x, b, torch.cat([a0, a * a0], 1), head)] + [reverse, False]


def _tv_args(R=2, T=50, N=2, Ra=1, dtype=torch.float64, grad=True):
    g = _g(20 + R + T + N + Ra)
    u = torch.randn(R, T, generator=g, **F64).to(dtype)
    a = (0.4 * (torch.rand(Ra, T, N, generator=g, **F64) - 0.5)).to(dtype)
    return [t.requires_grad_(grad) for t in (u, a)]


def _diag_args(R=2, T=60, Ra=2, Ta=60, dtype=torch.float64, grad=True):
    g = _g(30 + R + T + Ra + Ta)
    a = (0.95 * torch.rand(Ra, Ta, generator=g, **F64)).to(dtype)
    if dtype.is_complex:
        a = a * torch.exp(1j * torch.rand(Ra, Ta, generator=g, **F64))
    u = torch.randn(R, T, generator=g, **F64).to(dtype)
    return [t.requires_grad_(grad) for t in (a, u)]


OPCHECK_CASES = {
    "lti_shared_b": lambda: (torch.ops.ssm_lfilter.lti.default, _lti_args()),
    "lti_per_row_b_no_head": lambda: (torch.ops.ssm_lfilter.lti.default, _lti_args(Rb=3, Ra=1, K=0)),
    "lti_fir": lambda: (torch.ops.ssm_lfilter.lti.default, _lti_args(N=0, Ra=1, K=0)),
    "lti_K_exceeds_T": lambda: (torch.ops.ssm_lfilter.lti.default, _lti_args(T=2, K=4)),
    "lti_float32": lambda: (torch.ops.ssm_lfilter.lti.default, _lti_args(dtype=torch.float32)),
    "lti_complex": lambda: (torch.ops.ssm_lfilter.lti.default, _lti_args(dtype=torch.complex128)),
    # unnormalized (monic=False, lfilter's call): a0 first in a, the gradients of the raw coefficients
    "lti_unnormalized": lambda: (torch.ops.ssm_lfilter.lti.default, _lti_args_unnormalized()),
    "lti_unnormalized_reverse_per_row_b": lambda: (torch.ops.ssm_lfilter.lti.default,
                                                   _lti_args_unnormalized(Rb=3, Ra=1, reverse=True)),
    "lti_unnormalized_complex": lambda: (torch.ops.ssm_lfilter.lti.default,
                                         _lti_args_unnormalized(dtype=torch.complex128)),
    "tv_shared_a": lambda: (torch.ops.ssm_lfilter.tv.default, _tv_args()),
    "tv_per_row_a": lambda: (torch.ops.ssm_lfilter.tv.default, _tv_args(Ra=2, N=3)),
    "tv_float32": lambda: (torch.ops.ssm_lfilter.tv.default, _tv_args(dtype=torch.float32)),
    "sos_cascade": lambda: (torch.ops.ssm_lfilter.sos.default, [
        torch.randn(2, 40, **F64).requires_grad_(), torch.randn(1, 3, 3, **F64).requires_grad_(),
        (0.3 * torch.rand(1, 3, 2, **F64)).requires_grad_(), torch.zeros(2, 3, 0, **F64), 0]),
    "sos_cascade_heads_and_ends": lambda: (torch.ops.ssm_lfilter.sos.default, [
        torch.randn(2, 40, **F64).requires_grad_(), torch.randn(2, 3, 3, **F64).requires_grad_(),
        (0.3 * torch.rand(1, 3, 2, **F64)).requires_grad_(), torch.randn(2, 3, 2, **F64).requires_grad_(), 2]),
    "sos_cascade_unnormalized": lambda: (torch.ops.ssm_lfilter.sos.default, [
        torch.randn(2, 40, **F64).requires_grad_(), torch.randn(1, 3, 3, **F64).requires_grad_(),
        torch.cat([1 + torch.rand(2, 3, 1, **F64), 0.3 * torch.rand(2, 3, 2, **F64)], -1).requires_grad_(),
        torch.zeros(2, 3, 0, **F64), 0, False]),
    "tv_sos_cascade": lambda: (torch.ops.ssm_lfilter.tv_sos.default, [
        torch.randn(2, 40, **F64).requires_grad_(), torch.randn(1, 40, 3, 3, **F64).requires_grad_(),
        (0.3 * torch.rand(2, 40, 3, 2, **F64)).requires_grad_(), torch.zeros(2, 3, 0, **F64), 0]),
    "tv_sos_heads_and_ends": lambda: (torch.ops.ssm_lfilter.tv_sos.default, [
        torch.randn(2, 40, **F64).requires_grad_(), torch.randn(1, 40, 3, 3, **F64).requires_grad_(),
        (0.3 * torch.rand(2, 40, 3, 2, **F64)).requires_grad_(), torch.randn(2, 3, 2, **F64).requires_grad_(), 2]),
    "tv_sos_float32_first_order_sections": lambda: (torch.ops.ssm_lfilter.tv_sos.default, [
        torch.randn(2, 30, requires_grad=True), torch.randn(2, 30, 2, 2, requires_grad=True),
        (0.5 * torch.rand(1, 30, 2, 1)).requires_grad_(), torch.zeros(2, 2, 0), 0]),
    # unnormalized sections (monic=False): a0 first in a, the gradients of the raw coefficients
    "tv_sos_unnormalized": lambda: (torch.ops.ssm_lfilter.tv_sos.default, [
        torch.randn(2, 40, **F64).requires_grad_(), torch.randn(1, 40, 2, 3, **F64).requires_grad_(),
        torch.cat([1 + torch.rand(2, 40, 2, 1, **F64), 0.3 * torch.rand(2, 40, 2, 2, **F64)], -1).requires_grad_(),
        torch.zeros(2, 2, 0, **F64), 0, False]),
    "tv_sos_unnormalized_heads_and_ends": lambda: (torch.ops.ssm_lfilter.tv_sos.default, [
        torch.randn(2, 40, **F64).requires_grad_(), torch.randn(2, 40, 2, 3, **F64).requires_grad_(),
        torch.cat([1 + torch.rand(1, 40, 2, 1, **F64), 0.3 * torch.rand(1, 40, 2, 2, **F64)], -1).requires_grad_(),
        torch.randn(2, 2, 2, **F64).requires_grad_(), 2, False]),
    "diag_forward": lambda: (torch.ops.ssm_lfilter.diag.default, _diag_args() + [False]),
    "diag_reverse": lambda: (torch.ops.ssm_lfilter.diag.default, _diag_args() + [True]),
    "diag_constant_a": lambda: (torch.ops.ssm_lfilter.diag.default, _diag_args(Ra=1, Ta=1) + [False]),
    "diag_complex": lambda: (torch.ops.ssm_lfilter.diag.default, _diag_args(dtype=torch.complex128) + [True]),
    "diag_float32": lambda: (torch.ops.ssm_lfilter.diag.default, _diag_args(dtype=torch.float32) + [False]),
}


@pytest.mark.parametrize("name", sorted(OPCHECK_CASES))
def test_opcheck(name):
    op, args = OPCHECK_CASES[name]()
    torch.library.opcheck(op, tuple(args))


def test_opcheck_without_grad():
    torch.library.opcheck(torch.ops.ssm_lfilter.lti.default, tuple(_lti_args(grad=False)))
    torch.library.opcheck(torch.ops.ssm_lfilter.tv.default, tuple(_tv_args(grad=False)))
    torch.library.opcheck(torch.ops.ssm_lfilter.diag.default, tuple(_diag_args(grad=False)) + (True,))
    for need in ((True, True, True), (False, True, False), (True, False, False)):
        torch.library.opcheck(torch.ops.ssm_lfilter.tv_sos_adjoint.default, (
            torch.randn(2, 40, **F64), torch.randn(3, 2, 2, **F64), torch.randn(2, 40, **F64),
            torch.randn(1, 40, 3, 3, **F64), 0.3 * torch.rand(2, 40, 3, 2, **F64), torch.randn(2, 3, 2, **F64),
            *need))
        torch.library.opcheck(torch.ops.ssm_lfilter.tv_sos_adjoint.default, (
            torch.randn(2, 40, **F64), torch.randn(3, 2, 2, **F64), torch.randn(2, 40, **F64),
            torch.randn(1, 40, 3, 3, **F64), torch.cat([1 + torch.rand(2, 40, 3, 1, **F64),
                                                         0.3 * torch.rand(2, 40, 3, 2, **F64)], -1),
            torch.randn(2, 3, 2, **F64), *need, False))


@pytest.mark.parametrize("Rb,Ra,N,K", [(1, 3, 2, 3), (3, 1, 0, 0), (3, 3, 4, 6), (1, 1, 1, 1)])
def test_lti_op_contract(Rb, Ra, N, K):
    """y = sum_k b_k x[n-k] + head[n][n<K] - sum_k a[k-1] y[n-k], from rest."""
    x, b, a, head = _lti_args(R=3, T=90, N=N, K=K, Rb=Rb, Ra=Ra, grad=False)
    y = torch.ops.ssm_lfilter.lti(x, b, a, head)
    for r in range(3):
        br, ar = b[r % Rb].numpy(), np.concatenate([[1.0], a[r % Ra].numpy()])
        drive = np.zeros(90)
        drive[: min(K, 90)] = head[r, :90].numpy()
        e = ss.lfilter(br, ar, x[r].numpy()) + ss.lfilter([1.0], ar, drive)
        np.testing.assert_allclose(y[r].numpy(), e, rtol=1e-10, atol=1e-10)
    # monic=False: the same filter with a0 = 2 first in a and b scaled by it
    a_raw = torch.cat([torch.full((Ra, 1), 2.0, **F64), 2 * a], 1)
    torch.testing.assert_close(torch.ops.ssm_lfilter.lti(x, 2 * b, a_raw, head, False, False), y, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("Ra", [1, 2])
def test_tv_op_contract(Ra):
    u, a = _tv_args(R=2, T=70, N=3, Ra=Ra, grad=False)
    y = torch.ops.ssm_lfilter.tv(u, a)
    ones = torch.ones(*a.shape[:-1], 1, **F64)
    e = ref.time_varying_lfilter(ones, torch.cat([ones, a], -1), u)[0]
    torch.testing.assert_close(y, e, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("Ra,Ta,reverse", [(2, 60, False), (2, 60, True), (1, 1, False), (1, 60, True), (2, 1, True)])
def test_diag_op_contract(Ra, Ta, reverse):
    a, u = _diag_args(R=2, T=60, Ra=Ra, Ta=Ta, dtype=torch.complex128, grad=False)
    h = torch.ops.ssm_lfilter.diag(a, u, reverse)
    torch.testing.assert_close(h, ref.linear_recurrence(a.expand(2, 60), u, reverse=reverse), rtol=1e-10, atol=1e-10)
