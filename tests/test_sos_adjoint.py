"""The cascade's backward in two launches: ``ssm_lfilter.kernels.sos_adjoint`` (the section inputs
recomputed by the forward kernel with ``sections``, then every section's adjoint in one launch), under
the interpreter on CPU with tiny tiles, and the ``ssm_lfilter::sos_adjoint`` op behind ``sosfilt``'s
backward. Oracle: autograd through a sequential loop written here (float64)."""
import importlib

import pytest
import torch

import ssm_lfilter as sl
import ssm_lfilter.ops as ops

pytestmark = pytest.mark.interpreter
sos_k = importlib.import_module("ssm_lfilter.kernels.sos")
sp = importlib.import_module("ssm_lfilter.kernels.lti_single_pass")
F64 = dict(dtype=torch.float64)
TINY = dict(block_size=4, lanes=2, window_tiles=2)


def _loop(x, b, a):
    """The cascade step by step: section s is ``y[n] = sum_k b[s,k] u[n-k] - sum_k a[s,k-1] y[n-k]``."""
    R, T = x.shape
    u = x
    for s in range(b.shape[1]):
        ys = []
        for n in range(T):
            acc = sum(b[:, s, k] * u[:, n - k] for k in range(b.shape[2]) if n - k >= 0)
            acc = acc - sum((a[:, s, k - 1] * ys[n - k] for k in range(1, a.shape[2] + 1) if n - k >= 0),
                            x.new_zeros(R))
            ys.append(acc)
        u = torch.stack(ys, 1) if T else u
    return u


def _case(R, T, S, M, N, shared, seed):
    gen = torch.Generator().manual_seed(seed)
    rc = 1 if shared else R
    b = torch.randn(rc, S, M + 1, generator=gen, **F64)
    a = 0.4 * (torch.rand(rc, S, N, generator=gen, **F64) - 0.5) / N
    if N >= 2:
        a[:, 0, :2] = torch.tensor([-1.94, 0.9801], **F64)  # a pole pair at radius 0.99
    return torch.randn(R, T, generator=gen, **F64), b, a, torch.randn(R, T, generator=gen, **F64)


@pytest.mark.parametrize("S,M,N", [(1, 2, 2), (2, 2, 2), (3, 2, 2), (2, 1, 1), (2, 1, 2), (2, 3, 4)])
def test_launcher_matches_autograd_of_a_loop(S, M, N):
    for T in (1, 7, 8, 9, 33):
        x, b, a, g = _case(2, T, S, M, N, shared=(T % 2 == 1), seed=100 * S + 10 * N + T)
        leaves = [t.clone().requires_grad_() for t in (x, b, a)]
        ex, eb, ea = torch.autograd.grad(_loop(*leaves), leaves, g, allow_unused=True)
        eb = torch.zeros_like(b) if eb is None else eb
        ea = torch.zeros_like(a) if ea is None else ea
        dx, db, da, dhead = sos_k.sos_adjoint(g, x, b, a, True, M + 1, N, **TINY)
        assert dhead.shape == (2, S, 0)
        rows = (lambda d, like: d.sum(0, keepdim=True) if like.shape[0] == 1 else d)
        for name, got, exp in (("dx", dx, ex), ("db", rows(db, b), eb), ("da", rows(da, a), ea)):
            torch.testing.assert_close(got, exp, rtol=1e-9, atol=1e-9, msg=lambda m: f"T={T} {name}: {m}")


def _loop_heads(x, b, a, head):
    """The cascade with each section's head (``y_s[n] += head[:, s, n]``, n < K) step by step, and every
    section's output."""
    R, T = x.shape
    u, outs = x, []
    for s in range(b.shape[1]):
        ys = []
        for n in range(T):
            acc = sum(b[:, s, k] * u[:, n - k] for k in range(b.shape[2]) if n - k >= 0)
            if n < head.shape[2]:
                acc = acc + head[:, s, n]
            acc = acc - sum((a[:, s, k - 1] * ys[n - k] for k in range(1, a.shape[2] + 1) if n - k >= 0),
                            x.new_zeros(R))
            ys.append(acc)
        u = torch.stack(ys, 1)
        outs.append(u)
    return u, outs


@pytest.mark.parametrize("T,K,KT", [(1, 2, 1), (2, 2, 2), (9, 2, 2), (33, 3, 2), (20, 0, 2), (20, 2, 0)])
def test_heads_and_ends_gradients_match_autograd_of_a_loop(T, K, KT):
    """With heads (dhead, every section's) and the gradients of every section's last outputs (g_ends,
    what sosfilt's final states feed back)."""
    S = 3
    x, b, a, g = _case(2, T, S, 2, 2, shared=(T % 2 == 1), seed=T + K)
    gen = torch.Generator().manual_seed(T)
    head = torch.randn(2, S, K, generator=gen, **F64)
    g_ends = torch.randn(S, 2, KT, generator=gen, **F64)
    leaves = [t.clone().requires_grad_() for t in (x, b, a, head)]
    y, outs = _loop_heads(*leaves)
    loss = (y * g).sum() + sum((outs[s][:, T - KT:] * g_ends[s]).sum() for s in range(S))
    exp = [torch.zeros_like(t) if e is None else e
           for t, e in zip(leaves, torch.autograd.grad(loss, leaves, allow_unused=True))]  # T = 1: a unused
    dx, db, da, dhead = sos_k.sos_adjoint(g, x, b, a, True, 3, 2, head=head, g_ends=g_ends if KT else None, **TINY)
    rows = (lambda d, like: d.sum(0, keepdim=True) if like.shape[0] == 1 else d)
    for name, got, want in (("dx", dx, exp[0]), ("db", rows(db, b), exp[1]), ("da", rows(da, a), exp[2]),
                            ("dhead", dhead, exp[3])):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9, msg=lambda m: f"{name}: {m}")
    ends = torch.empty(S, 2, KT, **F64)
    y_k = sos_k.sos(x, b, a, head=head, ends=ends if KT else None, **TINY)
    torch.testing.assert_close(y_k, y.detach(), rtol=1e-10, atol=1e-10)
    for s in range(S):
        torch.testing.assert_close(ends[s], outs[s].detach()[:, T - KT:], rtol=1e-10, atol=1e-10)


def test_forward_kernel_stores_every_section_input():
    x, b, a, _ = _case(2, 50, 3, 2, 2, shared=False, seed=4)
    stack = torch.empty(4, 2, 50, **F64)
    sp.lti_single_pass(x, b, a, x.new_zeros(2, 0), stack[3], 4, lanes=2, window_tiles=1, sections=stack[:3])
    u = x
    for s in range(3):
        torch.testing.assert_close(stack[s], u, rtol=1e-12, atol=1e-12)
        u = _loop(u, b[:, s:s + 1], a[:, s:s + 1])
    torch.testing.assert_close(stack[3], u, rtol=1e-10, atol=1e-10)


def test_partial_requests_determinism_and_errors():
    x, b, a, g = _case(2, 40, 2, 2, 2, shared=True, seed=9)
    full = sos_k.sos_adjoint(g, x, b, a, True, 3, 2, **TINY)
    dx, db, da, _ = sos_k.sos_adjoint(g, x, b, a, False, 0, 2, **TINY)
    assert dx is None and db.shape == (2, 2, 0) and torch.equal(da, full[2])
    again = sos_k.sos_adjoint(g, x, b, a, True, 3, 2, **TINY)
    assert all(torch.equal(u, w) for u, w in zip(again, full))
    f32_in = [t.float() for t in (g, x, b, a)]
    f32 = sos_k.sos_adjoint(*f32_in, True, 3, 2, **TINY)
    ref = sos_k.sos_adjoint(*(t.double() for t in f32_in), True, 3, 2, **TINY)  # the same rounded filter
    for u, w in zip(f32[:3], ref[:3]):
        assert u.dtype == torch.float32 and float((u.double() - w).abs().max() / w.abs().max()) < 1e-5
    with pytest.raises(ValueError, match="M <= N"):
        sos_k.sos_adjoint(g, x, torch.ones(1, 2, 4, **F64), a, True, 4, 2)
    with pytest.raises(ValueError, match="one S"):
        sos_k.sos_adjoint(g, x, b[:, :1], a, True, 3, 2)
    assert not sos_k.sos_adjoint_applies(b, a, single_pass=False)


def _raw(b, a, gen):
    """The same sections with a leading coefficient ``a0`` of their own first in ``a`` (``monic=False``):
    ``b * a0`` and ``[a0, a * a0]``, the filter unchanged."""
    a0 = 0.5 + torch.rand(*a.shape[:2], 1, generator=gen, **F64)
    return b * a0, torch.cat([a0, a * a0], -1)


@pytest.mark.parametrize("S,M,N,K,KT", [(1, 2, 2, 0, 0), (3, 2, 2, 0, 0), (2, 1, 1, 0, 0), (2, 3, 4, 0, 0),
                                        (2, 2, 2, 2, 2)])
def test_raw_sections_forward_and_backward_match_autograd_of_a_loop(S, M, N, K, KT):
    """``monic=False`` (sosfilt's call): every section's ``a0`` first in ``a``, divided in registers by
    both launches and by the fused forward; the gradients are the raw coefficients', ``a0``'s first,
    per row or summed over the rows (``sum_rows``), against autograd through the division and a
    sequential loop. Also the per-section fallback of the forward."""
    for T in (1, 9, 33):
        for shared in (False, True):
            x, b, a, g = _case(2, T, S, M, N, shared=shared, seed=7 * S + N + T)
            gen = torch.Generator().manual_seed(T)
            b_raw, a_raw = _raw(b, a, gen)
            head = torch.randn(2, S, K, generator=gen, **F64)
            kt = min(KT, T)  # every section's last kt outputs
            g_ends = torch.randn(S, 2, kt, generator=gen, **F64)
            leaves = [t.clone().requires_grad_() for t in (x, b_raw, a_raw, head)]
            a0 = leaves[2][..., :1]
            y, outs = _loop_heads(leaves[0], leaves[1] / a0, leaves[2][..., 1:] / a0, leaves[3])
            loss = (y * g).sum() + sum((outs[s][:, T - kt:] * g_ends[s]).sum() for s in range(S))
            exp = [torch.zeros_like(t) if e is None else e
                   for t, e in zip(leaves, torch.autograd.grad(loss, leaves, allow_unused=True))]
            ends = torch.empty(S, 2, kt, **F64)
            y_k = sos_k.sos(x, b_raw, a_raw, head=head, ends=ends if kt else None, monic=False, **TINY)
            torch.testing.assert_close(y_k, y.detach(), rtol=1e-10, atol=1e-10)
            y_per_section = sos_k.sos(x, b_raw, a_raw, head=head, monic=False, single_pass=False, block_size=4)
            torch.testing.assert_close(y_per_section, y.detach(), rtol=1e-10, atol=1e-10)
            for s in range(S):
                torch.testing.assert_close(ends[s], outs[s].detach()[:, T - kt:], rtol=1e-10, atol=1e-10)
            for sum_rows in (False, True):
                dx, db, da, dhead = sos_k.sos_adjoint(g, x, b_raw, a_raw, True, M + 1, N, head=head,
                                                      g_ends=g_ends if kt else None, monic=False,
                                                      sum_rows=sum_rows, **TINY)
                assert da.shape == (1 if sum_rows else 2, S, N + 1)
                rows = (lambda d, like: d.sum(0, keepdim=True) if like.shape[0] == 1 and d.shape[0] > 1 else d)
                want_b, want_a = exp[1], exp[2]
                if sum_rows and not shared:
                    want_b, want_a = want_b.sum(0, keepdim=True), want_a.sum(0, keepdim=True)
                for name, got, want in (("dx", dx, exp[0]), ("db", rows(db, b_raw), want_b),
                                        ("da", rows(da, a_raw), want_a), ("dhead", dhead, exp[3])):
                    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9,
                                               msg=lambda m: f"T={T} shared={shared} sum_rows={sum_rows} {name}: {m}")


def test_raw_sections_partial_requests_and_errors():
    """``monic=False``: ``db`` alone (``n_a = 0``: no ``a0`` column), ``da`` needs every ``db``; the
    shape errors name the leading coefficient."""
    x, b, a, g = _case(2, 30, 2, 2, 2, shared=True, seed=3)
    b_raw, a_raw = _raw(b, a, torch.Generator().manual_seed(0))
    full = sos_k.sos_adjoint(g, x, b_raw, a_raw, True, 3, 2, monic=False, **TINY)
    dx, db, da, _ = sos_k.sos_adjoint(g, x, b_raw, a_raw, False, 3, 0, monic=False, **TINY)
    assert dx is None and da.shape == (2, 2, 0) and torch.equal(db, full[1])
    with pytest.raises(ValueError, match="expected n_b = 3 with monic=False"):
        sos_k.sos_adjoint(g, x, b_raw, a_raw, True, 2, 2, monic=False, **TINY)
    with pytest.raises(ValueError, match="a0 first"):
        sos_k.sos_adjoint(g, x, torch.ones(1, 2, 4, **F64), a_raw, True, 4, 2, monic=False)
    assert sos_k.sos_adjoint_applies(b_raw, a_raw, monic=False)
    assert not sos_k.sos_adjoint_applies(b_raw, a_raw[..., :1], monic=False)  # N = 0


@pytest.mark.parametrize("backend", ["triton", "torch"])
def test_op_opcheck_and_both_backends_agree(backend, monkeypatch):
    monkeypatch.setenv("SSM_LFILTER_BACKEND", backend)
    x, b, a, g = _case(2, 30, 2, 2, 2, shared=False, seed=2)
    leaves = [t.clone().requires_grad_() for t in (x, b, a)]
    y = _loop(*leaves)
    ex, eb, ea = torch.autograd.grad(y, leaves, g)
    args = (g, x.new_zeros(2, 2, 0), x, y.detach(), b, a, x.new_zeros(2, 2, 0), True, 3, 2)
    torch.library.opcheck(torch.ops.ssm_lfilter.sos_adjoint.default, args,
                          test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_dynamic"))
    for got, exp in zip(ops.sos_adjoint(*args), (ex, eb, ea)):
        torch.testing.assert_close(got, exp)
    # sosfilt's call: the raw sections (a0 first) and their gradients summed over the rows
    b_raw, a_raw = _raw(b[:1], a[:1], torch.Generator().manual_seed(1))
    leaves = [t.clone().requires_grad_() for t in (x, b_raw, a_raw)]
    a0 = leaves[2][..., :1]
    ex, eb, ea = torch.autograd.grad(_loop(leaves[0], leaves[1] / a0, leaves[2][..., 1:] / a0), leaves, g)
    y_raw = _loop(x, b_raw / a_raw[..., :1], a_raw[..., 1:] / a_raw[..., :1])
    args = (g, x.new_zeros(2, 2, 0), x, y_raw, b_raw, a_raw, x.new_zeros(2, 2, 0), True, 3, 2, False, True)
    torch.library.opcheck(torch.ops.ssm_lfilter.sos_adjoint.default, args,
                          test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_dynamic"))
    for got, exp in zip(ops.sos_adjoint(*args), (ex, eb, ea)):
        torch.testing.assert_close(got, exp)


def test_sosfilt_backward_is_two_launches(monkeypatch):
    """sosfilt without zi on the Triton path: the forward is one sos launch, the backward one
    sos_adjoint call (the recompute and the adjoint), matching the torch engine; create_graph=True
    composes (double backward works)."""
    import ssm_lfilter.kernels as K

    calls = {"sos": 0, "sos_adjoint": 0, "lti": 0, "lti_adjoint_sums": 0}
    for name in calls:
        real = getattr(K, name)
        monkeypatch.setattr(K, name, lambda *a, _r=real, _n=name, **k: calls.__setitem__(_n, calls[_n] + 1) or _r(*a, **k))
    gen = torch.Generator().manual_seed(3)
    sos = torch.tensor([[0.2, 0.4, 0.2, 1.0, -1.6, 0.8], [1.0, -0.5, 0.25, 1.0, 0.3, 0.1],
                        [0.5, 0.0, -0.5, 1.0, -0.2, 0.5]], **F64).requires_grad_()
    x = torch.randn(2, 60, generator=gen, **F64).requires_grad_()
    grads = {}
    for backend in ("torch", "triton"):
        monkeypatch.setenv("SSM_LFILTER_BACKEND", backend)
        y = sl.sosfilt(sos, x)
        grads[backend] = torch.autograd.grad((y * y.detach().cos()).sum(), (sos, x))
    assert calls == {"sos": 1, "sos_adjoint": 1, "lti": 0, "lti_adjoint_sums": 0}
    for got, exp in zip(grads["triton"], grads["torch"]):
        torch.testing.assert_close(got, exp, rtol=1e-9, atol=1e-9)
    monkeypatch.setenv("SSM_LFILTER_BACKEND", "triton")
    gs, = torch.autograd.grad(sl.sosfilt(sos, x).pow(2).sum(), sos, create_graph=True)
    assert calls["sos_adjoint"] == 1
    gs.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.gpu
def test_gpu_sos_adjoint_matches_composed_at_real_sizes():
    import scipy.signal as ss

    so = torch.tensor(ss.butter(16, 0.05, output="sos"), dtype=torch.float32, device="cuda")
    b, a = so[None, :, :3], so[None, :, 4:]
    gen = torch.Generator(device="cuda").manual_seed(0)
    for R, T in ((32, 1 << 20), (1, 1 << 22)):
        x, g = (torch.randn(R, T, device="cuda", generator=gen) for _ in range(2))
        none = x.new_zeros(R, b.shape[1], 0)
        y, _ = ops.sos(x, b, a, none)
        got = sos_k.sos_adjoint(g, x, b, a, True, 3, 2)
        exp = ops._sos_adjoint_composed(g, x.new_zeros(b.shape[1], R, 0), x, y, b, a, none, True, 3, 2)
        for u, w in zip(got[:3], exp[:3]):
            assert float((u.double() - w.double()).abs().max() / w.double().abs().max()) < 1e-3


@pytest.mark.gpu
def test_gpu_raw_sections_match_float64_at_real_sizes(monkeypatch):
    """sosfilt's call (monic=False, every a0 its own, the adjoint capped at 168 registers by default
    and its gradients summed over the rows) against the torch engine in float64 on the same
    float32-rounded sections (no float64 kernel to compile), at real tile sizes (64-sample lanes in
    the forward)."""
    _raw_sections_match_float64("cuda", ((32, 1 << 20), (1, 1 << 22)), monkeypatch)


def test_raw_sections_float32_match_float64(monkeypatch):
    """The GPU test's check, at interpreter sizes."""
    _raw_sections_match_float64("cpu", ((2, 160), (1, 330)), monkeypatch)


def _raw_sections_match_float64(device, shapes, monkeypatch):
    import scipy.signal as ss

    so = torch.tensor(ss.butter(16, 0.05, output="sos"), dtype=torch.float64, device=device)
    a0 = torch.linspace(0.5, 2.0, so.shape[0], dtype=torch.float64, device=device)[:, None]
    b_raw = (so[None, :, :3] * a0).float()
    a_raw = torch.cat([a0, so[:, 4:] * a0], -1)[None].float()
    S = so.shape[0]
    gen = torch.Generator(device=device).manual_seed(1)
    for R, T in shapes:
        x, g = (torch.randn(R, T, device=device, generator=gen) for _ in range(2))
        y = sos_k.sos(x, b_raw, a_raw, monic=False)
        got = sos_k.sos_adjoint(g, x, b_raw, a_raw, True, 3, 2, monic=False, sum_rows=True)[:3]
        monkeypatch.setenv("SSM_LFILTER_BACKEND", "torch")
        x64, b64, a64, none = x.double(), b_raw.double(), a_raw.double(), x.new_zeros(R, S, 0, dtype=torch.float64)
        y64, _ = ops.sos(x64, b64, a64, none, 0, False)
        want = ops._sos_adjoint_raw(g.double(), x64.new_zeros(S, R, 0), x64, y64, b64, a64, none, True, 3, 2,
                                    False, True)[:3]
        monkeypatch.delenv("SSM_LFILTER_BACKEND")
        assert float((y.double() - y64).abs().max() / y64.abs().max()) < 1e-4
        for u, w in zip(got, want):
            assert float((u.double() - w).abs().max() / w.abs().max()) < 1e-3


def test_op_raw_sections_without_poles_gradcheck():
    """The sos op on raw sections without poles (``a = [a0]`` a section: unreachable from sosfilt,
    whose sections are biquads, but the op's contract): a0's gradient, which the fused columns hold
    only in front of the poles', comes from the raw db (engine)."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(2, 12, generator=gen, **F64).requires_grad_()
    b = torch.randn(1, 2, 2, generator=gen, **F64).requires_grad_()
    a = (0.5 + torch.rand(1, 2, 1, generator=gen, **F64)).requires_grad_()
    head = x.new_zeros(2, 2, 0)
    assert torch.autograd.gradcheck(lambda x, b, a: ops.sos(x, b, a, head, 0, False)[0], (x, b, a))
