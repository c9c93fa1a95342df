"""The fused time-varying cascade launcher ``ssm_lfilter.kernels.tv_sos`` (one launch for every
section) and the ``ssm_lfilter::tv_sos`` op behind ``time_varying_sosfilt``. Under the interpreter on
CPU with tiny lanes, tiles and windows, so short signals cross every lane, tile and window boundary
in every section; each result is held to the sequential loop of ``ssm_lfilter.reference``."""
import numpy as np
import pytest
import torch

import ssm_lfilter as sl
from ssm_lfilter import reference as ref
from ssm_lfilter.kernels import tv_sos, tv_sos_adjoint

pytestmark = pytest.mark.interpreter

F64 = dict(dtype=torch.float64)


def _sections(Rc, T, S, g, rmin=0.3, rmax=0.95, M=2, N=2):
    """Per-sample sections: ``(b [Rc, T, S, M+1], a [Rc, T, S, N])``, normalized; the poles of every
    biquad at radius in [rmin, rmax) (N = 1: one real pole), so every frozen section is stable."""
    r = rmin + (rmax - rmin) * torch.rand(Rc, T, S, 1, generator=g, **F64)
    th = 0.05 + 3.0 * torch.rand(Rc, T, S, 1, generator=g, **F64)
    if N == 1:
        a = -r
    else:
        a = torch.cat([-2 * r * torch.cos(th), r * r] + [torch.zeros_like(r)] * (N - 2), -1)
    b = torch.randn(Rc, T, S, M + 1, generator=g, **F64)
    return b, a


def _loop(x, b, a):
    """The cascade by the reference: each section a sequential time-varying direct form I."""
    R, T = x.shape
    y = x
    for s in range(b.shape[2]):
        one = torch.ones(*a.shape[:2], 1, **F64)
        den = torch.cat([one, a[:, :, s]], -1).expand(R, -1, -1)
        y = ref.time_varying_lfilter(b[:, :, s].expand(R, -1, -1), den, y)[0]
    return y


def _rel(y, exp):
    return float((y.double() - exp).abs().max() / exp.abs().max())


@pytest.mark.parametrize("S,R,T,C,lanes,W", [(1, 2, 90, 4, 2, 2), (2, 3, 131, 4, 4, 2), (3, 1, 257, 2, 8, 4),
                                             (8, 2, 67, 8, 2, 1)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_matches_the_sequential_loop(S, R, T, C, lanes, W, dtype):
    g = torch.Generator().manual_seed(S * 1000 + T)
    b, a = _sections(1, T, S, g)
    x = torch.randn(R, T, generator=g, **F64)
    exp = _loop(x, b, a)
    y = tv_sos(x.to(dtype), b.to(dtype), a.to(dtype), block_size=C, lanes=lanes, window_tiles=W)
    assert y.dtype == dtype and y.shape == (R, T)
    assert _rel(y, exp) < (1e-12 if dtype == torch.float64 else 2e-6)
    again = tv_sos(x.to(dtype), b.to(dtype), a.to(dtype), block_size=C, lanes=lanes, window_tiles=W)
    assert torch.equal(y, again)  # deterministic: the same bits


@pytest.mark.parametrize("T", [1, 2, 7, 8, 9, 15, 16, 17, 33])
def test_lengths_around_lanes_and_tiles(T):
    """Length 1, and a lane (4 steps) and a tile (2 lanes = 8 steps) +- 1."""
    g = torch.Generator().manual_seed(T)
    b, a = _sections(1, T, 3, g)
    x = torch.randn(2, T, generator=g, **F64)
    y = tv_sos(x, b, a, block_size=4, lanes=2, window_tiles=2)
    torch.testing.assert_close(y, _loop(x, b, a), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("M,N", [(0, 1), (1, 1), (0, 2), (1, 2), (2, 3), (3, 4), (2, 4)])
def test_section_orders(M, N):
    """Sections other than biquads: every M <= min(N, 3), N <= 4 (N >= 3 accumulates in float64)."""
    g = torch.Generator().manual_seed(10 * M + N)
    T = 50
    b, a = _sections(1, T, 2, g, M=M, N=N)
    x = torch.randn(2, T, generator=g, **F64)
    exp = _loop(x, b, a)
    y = tv_sos(x, b, a, block_size=4, lanes=2, window_tiles=2)
    torch.testing.assert_close(y, exp, rtol=1e-12, atol=1e-12)
    y32 = tv_sos(x.float(), b.float(), a.float(), block_size=4, lanes=2, window_tiles=2)
    assert _rel(y32, exp) < 5e-6


def test_per_row_sections_strided_views_and_stored_inputs():
    """Per-row coefficients given as strided views of one [R, T, S, 6] tensor (as the glue passes
    them), a non-contiguous signal, and every section's input stored for the backward."""
    g = torch.Generator().manual_seed(3)
    R, T, S = 3, 45, 3
    b, a = _sections(R, T, S, g)
    sos = torch.cat([b, torch.ones(R, T, S, 1, **F64), a], -1)
    x = torch.randn(R, 2 * T, generator=g, **F64)[:, ::2]
    sections = torch.empty(S, R, T, **F64)
    y = tv_sos(x, sos[..., :3], sos[..., 4:], block_size=4, lanes=2, window_tiles=2, sections=sections)
    torch.testing.assert_close(y, _loop(x, b, a), rtol=1e-12, atol=1e-12)
    for s in range(S):
        torch.testing.assert_close(sections[s], _loop(x, b[:, :, :s], a[:, :, :s]), rtol=1e-12, atol=1e-12)


def test_hard_mode_poles_near_the_unit_circle_float32():
    """Radius 0.999 in every section: float32 stays close to the float64 loop on the float32-rounded
    coefficients (carries of slowly decaying states cross every tile)."""
    g = torch.Generator().manual_seed(4)
    T, S = 600, 2
    # slowly swept resonances (a random angle every sample at this radius makes the product of the
    # companion matrices grow: an unstable time-varying filter, in the loop too)
    n = torch.arange(T, **F64)[None, :, None, None]
    th = torch.tensor([0.3, 1.1], **F64)[None, None, :, None] + 0.1 * torch.sin(2 * torch.pi * n / 200)
    r = 0.999
    a = torch.cat([-2 * r * torch.cos(th), torch.full_like(th, r * r)], -1)
    b = torch.randn(1, T, S, 3, generator=g, **F64)
    b32, a32, x32 = b.float(), a.float(), torch.randn(2, T, generator=g).float()
    exp = _loop(x32.double(), b32.double(), a32.double())
    y = tv_sos(x32, b32, a32, block_size=8, lanes=2, window_tiles=2)
    assert _rel(y, exp) < 2e-5


def test_nan_and_inf_propagate_like_the_loop():
    g = torch.Generator().manual_seed(5)
    T = 30
    b, a = _sections(1, T, 2, g)
    x = torch.randn(2, T, generator=g, **F64)
    x[0, 11] = float("nan")
    x[1, 20] = float("inf")
    y = tv_sos(x, b, a, block_size=4, lanes=2, window_tiles=2)
    exp = _loop(x, b, a)
    assert torch.equal(torch.isnan(y), torch.isnan(exp)) and torch.equal(torch.isinf(y), torch.isinf(exp))
    fin = torch.isfinite(exp)
    torch.testing.assert_close(y[fin], exp[fin], rtol=1e-12, atol=1e-12)


def test_empty_and_no_sections():
    b, a = torch.zeros(1, 0, 2, 3, **F64), torch.zeros(1, 0, 2, 2, **F64)
    assert tv_sos(torch.zeros(2, 0, **F64), b, a).shape == (2, 0)
    x = torch.randn(2, 5, **F64)
    y = tv_sos(x, torch.zeros(1, 5, 0, 3, **F64), torch.zeros(1, 5, 0, 2, **F64))
    assert torch.equal(y, x) and y.data_ptr() != x.data_ptr()


def test_bad_arguments_name_the_shapes():
    x = torch.randn(2, 10, **F64)
    with pytest.raises(ValueError, match=r"expected x \[R, T\], b \[Rb, T, S, M\+1\]"):
        tv_sos(x, torch.zeros(1, 9, 2, 3, **F64), torch.zeros(1, 9, 2, 2, **F64))
    with pytest.raises(ValueError, match="M <= min"):
        tv_sos(x, torch.zeros(1, 10, 2, 4, **F64), torch.zeros(1, 10, 2, 2, **F64))
    with pytest.raises(ValueError, match="coefficient rows 1 or R=2"):
        tv_sos(x, torch.zeros(3, 10, 2, 3, **F64), torch.zeros(1, 10, 2, 2, **F64))
    with pytest.raises(ValueError, match="power of two"):
        tv_sos(x, torch.zeros(1, 10, 2, 3, **F64), torch.zeros(1, 10, 2, 2, **F64), block_size=3)


# --------------------------------------------------------------------------------- the backward
def _composed_grads(g, x, b, a):
    """The cascade's per-row gradients by autograd through the sequential loop."""
    leaves = [t.clone().requires_grad_() for t in (x, b, a)]
    xl, bl, al = leaves
    R = x.shape[0]
    y = xl
    for s in range(b.shape[2]):
        one = torch.ones(*al.shape[:2], 1, **F64)
        den = torch.cat([one, al[:, :, s]], -1).expand(R, -1, -1)
        y = ref.time_varying_lfilter(bl[:, :, s].expand(R, -1, -1), den, y)[0]
    return torch.autograd.grad((y * g).sum(), leaves)


@pytest.mark.parametrize("S,R,T,M,N,Rb,Ra,C,lanes,W", [
    (3, 2, 37, 2, 2, 1, 2, 4, 2, 2), (2, 1, 20, 1, 3, 1, 1, 2, 4, 1), (1, 3, 9, 0, 1, 3, 1, 4, 2, 2),
    (2, 2, 50, 3, 4, 2, 2, 4, 2, 2), (8, 2, 33, 2, 2, 2, 1, 2, 2, 1), (2, 2, 16, 2, 2, 1, 1, None, None, None)])
def test_adjoint_matches_autograd_of_the_loop(S, R, T, M, N, Rb, Ra, C, lanes, W):
    g = torch.Generator().manual_seed(S + 10 * T + M)
    b, a = _sections(Rb, T, S, g, M=M, N=N)
    a = a[:1].expand(Ra, -1, -1, -1).clone() if Ra != a.shape[0] else a
    x, gy = torch.randn(R, T, generator=g, **F64), torch.randn(R, T, generator=g, **F64)
    dx, db, da, dhead = tv_sos_adjoint(gy, x, b, a, block_size=C, lanes=lanes, window_tiles=W)
    assert dhead.shape == (R, S, 0)
    assert db.shape == (R, T, S, M + 1) and da.shape == (R, T, S, N)  # per row
    db = db.sum(0, keepdim=True) if Rb == 1 else db
    da = da.sum(0, keepdim=True) if Ra == 1 else da
    for got, exp in zip((dx, db, da), _composed_grads(gy, x, b, a)):
        torch.testing.assert_close(got, exp, rtol=1e-11, atol=1e-11)
    again = tv_sos_adjoint(gy, x, b, a, block_size=C, lanes=lanes, window_tiles=W)
    assert all(torch.equal(u, v) for u, v in zip((dx,), again[:1]))  # deterministic


def test_adjoint_float32_and_what_is_not_needed():
    g = torch.Generator().manual_seed(7)
    R, T, S = 2, 40, 3
    b, a = _sections(1, T, S, g)
    x, gy = torch.randn(R, T, generator=g, **F64), torch.randn(R, T, generator=g, **F64)
    exp = _composed_grads(gy, x, b, a)
    dx, db, da, _ = tv_sos_adjoint(gy.float(), x.float(), b.float(), a.float(), block_size=4, lanes=2, window_tiles=2)
    for got, want in zip((dx, db.sum(0, keepdim=True), da.sum(0, keepdim=True)), exp):
        assert got.dtype == torch.float32 and _rel(got, want) < 1e-5
    dx_only = tv_sos_adjoint(gy, x, b, a, True, False, False, block_size=4, lanes=2, window_tiles=2)
    assert dx_only[1] is None and dx_only[2] is None
    torch.testing.assert_close(dx_only[0], exp[0], rtol=1e-11, atol=1e-11)
    none_x = tv_sos_adjoint(gy, x, b, a, False, True, False, block_size=4, lanes=2, window_tiles=2)
    assert none_x[0] is None and none_x[2] is None
    torch.testing.assert_close(none_x[1].sum(0, keepdim=True), exp[1], rtol=1e-11, atol=1e-11)


def _loop_heads(x, b, a, head):
    """The cascade with each section's head added to its FIR output at the first K samples, step by
    step; the output and every section's output."""
    R, T = x.shape
    w, outs = x, []
    for s in range(b.shape[2]):
        ys = []
        for n in range(T):
            u = sum(b[:, n, s, k] * w[:, n - k] for k in range(b.shape[3]) if n - k >= 0)
            if n < head.shape[2]:
                u = u + head[:, s, n]
            u = u - sum((a[:, n, s, k - 1] * ys[n - k] for k in range(1, a.shape[3] + 1) if n - k >= 0),
                        x.new_zeros(R))
            ys.append(u)
        w = torch.stack(ys, 1)
        outs.append(w)
    return w, outs


@pytest.mark.parametrize("R,T,S,K,KT", [(2, 1, 2, 2, 1), (2, 2, 2, 2, 2), (2, 19, 3, 2, 2), (1, 40, 2, 3, 2),
                                         (2, 20, 2, 0, 2), (2, 20, 2, 2, 0)])
def test_heads_and_ends_forward_and_backward(R, T, S, K, KT):
    """Each section's head (its initial state) and every section's last outputs (for the final
    states): the launchers against autograd of the loop, dhead and the ends' gradients included."""
    g = torch.Generator().manual_seed(T + K)
    x, gy = torch.randn(R, T, generator=g, **F64), torch.randn(R, T, generator=g, **F64)
    b = torch.randn(1, T, S, 3, generator=g, **F64)
    a = 0.3 * (torch.rand(R, T, S, 2, generator=g, **F64) - 0.5)
    head, g_ends = torch.randn(R, S, K, generator=g, **F64), torch.randn(S, R, KT, generator=g, **F64)
    ends = torch.empty(S, R, KT, **F64)
    y = tv_sos(x, b, a, head=head, ends=ends if KT else None, block_size=2, lanes=2, window_tiles=2)
    leaves = [t.clone().requires_grad_() for t in (x, b, a, head)]
    exp_y, outs = _loop_heads(*leaves)
    torch.testing.assert_close(y, exp_y.detach(), rtol=1e-12, atol=1e-12)
    for s in range(S):
        torch.testing.assert_close(ends[s], outs[s].detach()[:, T - KT:], rtol=1e-12, atol=1e-12)
    loss = (exp_y * gy).sum() + sum((outs[s][:, T - KT:] * g_ends[s]).sum() for s in range(S))
    exp = [torch.zeros_like(t) if e is None else e
           for t, e in zip(leaves, torch.autograd.grad(loss, leaves, allow_unused=True))]  # T = 1: a unused
    dx, db, da, dhead = tv_sos_adjoint(gy, x, b, a, head=head, g_ends=g_ends if KT else None, block_size=2,
                                       lanes=2, window_tiles=2)
    for got, want in zip((dx, db.sum(0, keepdim=True), da, dhead), exp):
        torch.testing.assert_close(got, want, rtol=1e-11, atol=1e-11)


# ------------------------------------------------------------------------- through the public API
@pytest.fixture
def fused_calls(monkeypatch):
    """SSM_LFILTER_BACKEND=triton, the fused launchers' calls recorded by name, and 2-step lanes so a
    short signal crosses lanes and tiles (the interpreter's tiles have at most 8 lanes)."""
    import importlib

    import ssm_lfilter.kernels as K

    monkeypatch.setenv("SSM_LFILTER_BACKEND", "triton")
    # the module (the package's attribute of that name is the launcher)
    monkeypatch.setattr(importlib.import_module("ssm_lfilter.kernels.tv_sos"), "single_pass_chunk",
                        lambda N, T, block_size: 2)
    calls = []
    for name in ("tv_sos", "tv_sos_adjoint"):
        real = getattr(K, name)
        monkeypatch.setattr(K, name, lambda *args, _real=real, _name=name, **kw: calls.append(_name)
                            or _real(*args, **kw))
    return calls


def _public_case(T, g, batch=(2,), per_row=False, rmax=0.97):
    b, a = _sections(2 if per_row else 1, T, 3, g, rmax=rmax)
    a0 = 0.5 + torch.rand(*b.shape[:3], 1, generator=g, **F64)  # unnormalized sections
    sos = torch.cat([b * a0, a0, a * a0], -1)
    sos = sos if per_row else sos[0]
    return sos, torch.randn(*batch, T, generator=g, **F64)


@pytest.mark.parametrize("T", [1, 5, 40])
def test_time_varying_sosfilt_runs_fused_and_matches_the_reference(T, fused_calls):
    g = torch.Generator().manual_seed(20 + T)
    sos, x = _public_case(T, g, batch=(2,), per_row=True)
    y = sl.time_varying_sosfilt(sos, x)
    assert fused_calls == ["tv_sos"], "the forward did not run the fused cascade kernel"
    torch.testing.assert_close(y, ref.time_varying_sosfilt(sos, x)[0], rtol=1e-11, atol=1e-11)


def test_time_varying_sosfilt_fused_gradients(fused_calls):
    """Gradients of x and sos (including sos[..., 3]) from the fused forward and the fused two-launch
    backward: gradcheck, and equal to the reference's autograd."""
    g = torch.Generator().manual_seed(30)
    sos, x = _public_case(11, g, rmax=0.99)
    sos, x = sos.requires_grad_(), x.requires_grad_()
    assert torch.autograd.gradcheck(sl.time_varying_sosfilt, (sos, x), fast_mode=True)
    assert "tv_sos_adjoint" in fused_calls, "the backward did not run the fused cascade adjoint"
    w = torch.randn(2, 11, generator=g, **F64)
    got = torch.autograd.grad((sl.time_varying_sosfilt(sos, x) * w).sum(), (sos, x))
    exp = torch.autograd.grad((ref.time_varying_sosfilt(sos, x)[0] * w).sum(), (sos, x))
    for gg, eg in zip(got, exp):
        torch.testing.assert_close(gg, eg, rtol=1e-10, atol=1e-10)


def test_time_varying_sosfilt_fused_double_backward(fused_calls):
    g = torch.Generator().manual_seed(31)
    sos, x = _public_case(6, g)
    sos, x = sos[:, :2].clone().requires_grad_(), x.requires_grad_()
    assert torch.autograd.gradgradcheck(sl.time_varying_sosfilt, (sos, x), fast_mode=True)


def test_time_varying_sosfilt_shared_sections_over_a_batch_and_axis(fused_calls):
    """One set of sections for a (2, T, 3) signal filtered along axis 1: the sections' gradient is
    summed over the rows that share it."""
    g = torch.Generator().manual_seed(32)
    T = 9
    sos, _ = _public_case(T, g)
    x = torch.randn(2, T, 3, generator=g, **F64)
    sos, x = sos.requires_grad_(), x.requires_grad_()
    y = sl.time_varying_sosfilt(sos, x, axis=1)
    exp = ref.time_varying_sosfilt(sos, x.movedim(1, -1))[0].movedim(-1, 1)
    torch.testing.assert_close(y, exp, rtol=1e-11, atol=1e-11)
    w = torch.randn(y.shape, generator=g, **F64)
    got = torch.autograd.grad((y * w).sum(), (sos, x))
    want = torch.autograd.grad((exp * w).sum(), (sos, x))
    for gg, eg in zip(got, want):
        torch.testing.assert_close(gg, eg, rtol=1e-10, atol=1e-10)


def test_time_varying_lfilter_from_rest_is_one_fused_section(fused_calls):
    """time_varying_lfilter with per-sample b from rest runs as a one-section cascade (the FIR fused
    into the recurrence): the reference's values, gradcheck of b (a[..., 0] varying), a and x."""
    g = torch.Generator().manual_seed(34)
    T = 13
    b, a = _sections(1, T, 1, g, rmax=0.98)
    a0 = 0.5 + torch.rand(T, 1, generator=g, **F64)
    bt = (b[0, :, 0] * a0).requires_grad_()
    at = torch.cat([a0, a[0, :, 0] * a0], -1).requires_grad_()
    x = torch.randn(2, T, generator=g, **F64).requires_grad_()
    y = sl.time_varying_lfilter(bt, at, x)
    assert fused_calls == ["tv_sos"]
    torch.testing.assert_close(y, ref.time_varying_lfilter(bt, at, x)[0], rtol=1e-11, atol=1e-11)
    assert torch.autograd.gradcheck(sl.time_varying_lfilter, (bt, at, x), fast_mode=True)
    assert "tv_sos_adjoint" in fused_calls


def test_constant_sections_take_the_lti_cascade(fused_calls):
    """Sections without a time axis are an LTI cascade: no time-varying kernel, sosfilt's values."""
    g = torch.Generator().manual_seed(33)
    sos, x = _public_case(30, g)
    const = sos[0]
    np.testing.assert_allclose(sl.time_varying_sosfilt(const, x).numpy(), sl.sosfilt(const, x).numpy(),
                               rtol=1e-12, atol=1e-12)
    assert fused_calls == []


@pytest.mark.parametrize("timed", [True, False])
def test_time_varying_sosfilt_with_zi_is_fused_and_streams(timed, fused_calls):
    """With zi on the kernels: one fused launch forward (each history as its section's head), two
    backward; values, zf and every gradient (zi's too) equal the torch engine's; chunked streaming
    with zf equals one call. Constant sections (no time axis) with zi run the same kernels."""
    import os

    g = torch.Generator().manual_seed(35 + timed)
    T = 23
    sos, x = _public_case(T, g)
    sos = (sos if timed else sos[0]).requires_grad_()
    x = x.requires_grad_()
    zi = torch.randn(3, 2, 4, generator=g, **F64).requires_grad_()
    out = {}
    for backend in ("torch", "triton"):
        os.environ["SSM_LFILTER_BACKEND"] = backend
        y, zf = sl.time_varying_sosfilt(sos, x, zi=zi)
        out[backend] = (y, zf, *torch.autograd.grad(y.pow(2).sum() + zf.pow(3).sum(), (sos, x, zi)))
    assert fused_calls == ["tv_sos", "tv_sos_adjoint"]
    for got, exp in zip(out["triton"], out["torch"]):
        torch.testing.assert_close(got, exp, rtol=1e-10, atol=1e-10)
    with torch.no_grad():
        state, parts = zi, []
        for lo, hi in ((0, 1), (1, 3), (3, 12), (12, T)):
            part, state = sl.time_varying_sosfilt(sos[lo:hi] if timed else sos, x[..., lo:hi], zi=state)
            parts.append(part)
    torch.testing.assert_close(torch.cat(parts, -1), out["triton"][0], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(state, out["triton"][1], rtol=1e-10, atol=1e-10)


def test_constant_sections_with_zi_reach_the_kernel_unmaterialized(fused_calls, monkeypatch):
    """Constant sections with zi run the time-varying kernel with every sample's coefficients a stride-0
    view in time of the raw sections (the kernel divides by a0): never a (T, n, 6) tensor."""
    import ssm_lfilter.kernels as K

    seen = []
    real = K.tv_sos
    monkeypatch.setattr(K, "tv_sos", lambda x, b, a, *args, **kw: seen.append((b.stride(1), a.stride(1)))
                        or real(x, b, a, *args, **kw))
    g = torch.Generator().manual_seed(37)
    sos, x = _public_case(40, g)
    zi = torch.randn(3, 2, 4, generator=g, **F64)
    y, zf = sl.time_varying_sosfilt(sos[0], x, zi=zi)
    assert seen == [(0, 0)]
    exp_y, exp_zf = ref.time_varying_sosfilt(sos[0].expand(40, 3, 6), x, zi=zi)
    torch.testing.assert_close(y, exp_y, rtol=1e-11, atol=1e-11)
    torch.testing.assert_close(zf, exp_zf, rtol=1e-11, atol=1e-11)


# ------------------------------------------------------------------------------------ GPU tier
def _constant_sections(S, rmax=0.95):
    """``S`` fixed stable biquads as scipy's sos ``[S, 6]`` (float64, float32-representable)."""
    g = torch.Generator().manual_seed(S)
    b, a = _sections(1, 1, S, g, rmax=rmax)
    sos = torch.cat([b[0, 0], torch.ones(S, 1, **F64), a[0, 0]], -1)
    return sos.float().double()


@pytest.mark.gpu
def test_gpu_single_long_row_against_scipy():
    """One row of 2**24 samples spread over every SM; sections constant in time (stride-0 views), so
    scipy's sosfilt in float64 is the oracle."""
    import scipy.signal as ss

    T, S = 2 ** 24, 4
    sos = _constant_sections(S)
    x = torch.randn(1, T, device="cuda")
    sc = sos.float().cuda()[None, None].expand(1, T, S, 6)
    y = tv_sos(x, sc[..., :3], sc[..., 4:])
    torch.cuda.synchronize()
    exp = ss.sosfilt(sos.numpy(), x[0].double().cpu().numpy())
    assert np.abs(y[0].cpu().double().numpy() - exp).max() <= 2e-4 * max(1.0, np.abs(exp).max())


def _swept_sections(R, T, S, g):
    """Per-row sections swept slowly in time (poles at radius 0.9-0.99), unnormalized layout
    ``[R, T, S, 6]``, and a signal, both float32-representable float64."""
    n = torch.arange(T, **F64)[None, :, None, None]
    th = 0.2 + 2.5 * torch.rand(R, 1, S, 1, generator=g, **F64) + 0.1 * torch.sin(2 * torch.pi * n / 5000)
    r = 0.9 + 0.09 * torch.rand(R, 1, S, 1, generator=g, **F64)
    sos = torch.cat([torch.randn(R, T, S, 3, generator=g, **F64), torch.ones(R, T, S, 1, **F64),
                     -2 * r * torch.cos(th), (r * r).expand(R, T, S, 1)], -1)
    return sos.float().double(), torch.randn(R, T, generator=g, **F64).float().double()


@pytest.mark.gpu
def test_gpu_per_row_sections_against_the_float64_engine():
    """Per-row, per-sample sections in the public layout (views of one [R, T, S, 6] tensor), float32
    on the kernel against float64 on the CPU engine, forward and gradients through the public API."""
    g = torch.Generator().manual_seed(40)
    R, T, S = 4, 1 << 16, 8
    sos, x = _swept_sections(R, T, S, g)
    w = torch.randn(R, T, generator=g, **F64)
    leaves = [sos.clone().requires_grad_(), x.clone().requires_grad_()]
    exp = sl.time_varying_sosfilt(*leaves)
    exp_grads = torch.autograd.grad((exp * w).sum(), leaves)
    cuda = [t.float().cuda().requires_grad_() for t in (sos, x)]
    y = sl.time_varying_sosfilt(*cuda)
    grads = torch.autograd.grad((y * w.float().cuda()).sum(), cuda)
    scale = exp.abs().max()
    assert float((y.double().cpu() - exp.detach()).abs().max()) <= 1e-4 * float(scale)
    for gg, eg in zip(grads, exp_grads):
        assert float((gg.double().cpu() - eg).abs().max()) <= 1e-3 * float(eg.abs().max())


@pytest.mark.gpu
def test_gpu_more_than_2_31_elements():
    """R*T > 2**31 elements: int64 program ids and offsets."""
    import scipy.signal as ss

    R, T, S = 129, 2 ** 24, 2
    free, _ = torch.cuda.mem_get_info()
    if free < 2.3 * R * T * 4:
        pytest.skip("not enough GPU memory")
    sos = _constant_sections(S)
    x = torch.randn(R, T, device="cuda")
    sc = sos.float().cuda()[None, None].expand(1, T, S, 6)
    y = tv_sos(x, sc[..., :3], sc[..., 4:])
    torch.cuda.synchronize()
    for row in (0, R - 1):
        exp = ss.sosfilt(sos.numpy(), x[row].double().cpu().numpy())
        assert np.abs(y[row].cpu().double().numpy() - exp).max() <= 2e-4 * max(1.0, np.abs(exp).max())


@pytest.mark.gpu
def test_gpu_time_varying_sosfilt_with_zi_against_the_float64_engine():
    """With each section's history (heads) and the final states (ends) at real sizes: float32 on the
    kernels against float64 on the CPU engine, values and zf."""
    g = torch.Generator().manual_seed(41)
    R, T, S = 4, 1 << 16, 4
    sos, x = _swept_sections(R, T, S, g)
    zi = torch.randn(S, R, 4, generator=g, **F64).float().double()
    exp, exp_zf = sl.time_varying_sosfilt(sos, x, zi=zi)
    y, zf = sl.time_varying_sosfilt(sos.float().cuda(), x.float().cuda(), zi=zi.float().cuda())
    scale = float(exp.abs().max())
    assert float((y.double().cpu() - exp).abs().max()) <= 1e-4 * scale
    assert float((zf.double().cpu() - exp_zf).abs().max()) <= 1e-4 * scale


# ---------------------------------------------------------------- unnormalized sections (monic=False)
def _raw(b, a, g, one=False):
    """``(b * a0, [a0, a * a0])``: the sections of ``_sections`` unnormalized by a positive ``a0`` per
    sample and section (``one``: ``a0 = 1``)."""
    a0 = torch.ones(*b.shape[:3], 1, **F64) if one else 0.5 + torch.rand(*b.shape[:3], 1, generator=g, **F64)
    return b * a0, torch.cat([a0, a * a0], -1)


@pytest.mark.parametrize("M,N,S,Rc", [(2, 2, 1, 1), (2, 2, 3, 2), (0, 1, 2, 1), (1, 1, 1, 2), (3, 4, 2, 1)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_unnormalized_sections_divide_in_the_kernel(M, N, S, Rc, dtype):
    """``monic=False``: ``a`` carries every step's leading coefficient; the kernel's result equals the
    normalized sections' (rounding apart), and with ``a0 = 1`` it is the same bits."""
    g = torch.Generator().manual_seed(100 * M + 10 * N + S)
    R, T = 2, 57
    b, a = _sections(Rc, T, S, g, M=M, N=N)
    x = torch.randn(R, T, generator=g, **F64).to(dtype)
    kw = dict(block_size=4, lanes=2, window_tiles=2)
    b_raw, a_raw = _raw(b, a, g)
    y = tv_sos(x, b_raw.to(dtype), a_raw.to(dtype), monic=False, **kw)
    exp = _loop(x.double(), b, a)
    assert _rel(y, exp) < (1e-12 if dtype == torch.float64 else 5e-6)
    b1, a1 = _raw(b, a, g, one=True)
    y1 = tv_sos(x, b1.to(dtype), a1.to(dtype), monic=False, **kw)
    assert torch.equal(y1, tv_sos(x, b.to(dtype), a.to(dtype), **kw))


def _chain_rule(b, a, dbn, dan):
    """The raw coefficients' gradients from the normalized ones, by autograd through the division."""
    b, a = b.detach().requires_grad_(), a.detach().requires_grad_()
    a0 = a[..., :1]
    bn, an = b / a0, a[..., 1:] / a0
    db, da = torch.autograd.grad((bn * dbn.sum(0)).sum() + (an * dan.sum(0)).sum(), (b, a))
    return db, da


@pytest.mark.parametrize("need", ["all", "a", "b", "x"])
@pytest.mark.parametrize("M,N,S", [(2, 2, 3), (1, 1, 2), (3, 4, 1)])
def test_unnormalized_adjoint_gives_the_raw_gradients(M, N, S, need):
    """The adjoint with ``monic=False`` forms the gradients of ``b`` and of ``a`` with ``a0``'s (lag 0)
    in the kernel; they equal the normalized adjoint's through the chain rule of the division, and
    ``dx`` is the normalized one's."""
    g = torch.Generator().manual_seed(200 + 10 * M + N + S)
    R, T = 2, 45
    b, a = _sections(1, T, S, g, M=M, N=N)
    b_raw, a_raw = _raw(b, a, g)
    x, gy = torch.randn(R, T, generator=g, **F64), torch.randn(R, T, generator=g, **F64)
    kw = dict(block_size=4, lanes=2, window_tiles=2)
    need_x, need_b, need_a = need in ("all", "x"), need in ("all", "b"), need in ("all", "a")
    dx, db, da, _ = tv_sos_adjoint(gy, x, b_raw, a_raw, need_x, need_b, need_a, monic=False, **kw)
    dxn, dbn, dan, _ = tv_sos_adjoint(gy, x, b, a, **kw)
    db_exp, da_exp = _chain_rule(b_raw, a_raw, dbn, dan)
    if need_x:
        torch.testing.assert_close(dx, dxn, rtol=1e-12, atol=1e-12)
    else:
        assert dx is None
    if need_b:
        torch.testing.assert_close(db.sum(0, keepdim=True), db_exp, rtol=1e-11, atol=1e-11)
    else:
        assert db is None
    if need_a:
        assert da.shape == (R, T, S, N + 1)
        torch.testing.assert_close(da.sum(0, keepdim=True), da_exp, rtol=1e-11, atol=1e-11)
    else:
        assert da is None


def test_unnormalized_heads_and_ends_gradients():
    """A head enters after the division, so ``a0``'s gradient at the first steps leaves it out (the
    launcher's correction); checked with heads and ends against autograd through the torch engine of
    the normalized cascade."""
    import os

    from ssm_lfilter import ops

    g = torch.Generator().manual_seed(300)
    R, T, S, K, KT = 2, 30, 2, 2, 3
    b, a = _sections(R, T, S, g)
    b_raw, a_raw = _raw(b, a, g)
    x = torch.randn(R, T, generator=g, **F64)
    head = torch.randn(R, S, K, generator=g, **F64)
    gy, g_ends = torch.randn(R, T, generator=g, **F64), torch.randn(S, R, KT, generator=g, **F64)
    kw = dict(block_size=4, lanes=2, window_tiles=2)
    ends = torch.empty(S, R, KT, **F64)
    y = tv_sos(x, b_raw, a_raw, head=head, ends=ends, monic=False, **kw)
    dx, db, da, dhead = tv_sos_adjoint(gy, x, b_raw, a_raw, head=head, g_ends=g_ends, monic=False, **kw)
    # the reference: the torch engine's op, differentiated by autograd through the division
    leaves = [t.clone().requires_grad_() for t in (x, b_raw, a_raw, head)]
    old = os.environ.get("SSM_LFILTER_BACKEND")
    os.environ["SSM_LFILTER_BACKEND"] = "torch"
    try:
        y_exp, ends_exp = ops.tv_sos(*leaves, KT, False)
        grads = torch.autograd.grad((y_exp * gy).sum() + (ends_exp * g_ends).sum(), leaves)
    finally:
        os.environ.pop("SSM_LFILTER_BACKEND") if old is None else os.environ.__setitem__("SSM_LFILTER_BACKEND", old)
    torch.testing.assert_close(y, y_exp, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ends, ends_exp, rtol=1e-12, atol=1e-12)
    for got, exp in zip((dx, db, da, dhead), grads):
        torch.testing.assert_close(got, exp, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("T", [2, 9, 40])
def test_time_varying_lfilter_passes_raw_coefficients_and_gradchecks(T, fused_calls, monkeypatch):
    """``time_varying_lfilter`` on the kernels hands the op views of its raw ``b`` and ``a`` (no
    normalized copies), and every gradient (``a0``'s included) passes gradcheck."""
    import ssm_lfilter.kernels as K

    seen = []
    real = K.tv_sos
    monkeypatch.setattr(K, "tv_sos", lambda x, b, a, *args, **kw: seen.append((b, a, kw.get("monic")))
                        or real(x, b, a, *args, **kw))
    g = torch.Generator().manual_seed(400 + T)
    b, a = _sections(1, T, 1, g)
    b_raw, a_raw = _raw(b, a, g)
    b_raw, a_raw = b_raw[0, :, 0].requires_grad_(), a_raw[0, :, 0].requires_grad_()  # (T, 3) each
    x = torch.randn(2, T, generator=g, **F64, requires_grad=True)
    sl.time_varying_lfilter(b_raw, a_raw, x)
    (bs, as_, monic), = seen
    assert monic is False and bs.data_ptr() == b_raw.data_ptr() and as_.data_ptr() == a_raw.data_ptr()
    # fast mode (a random projection of the Jacobian) past one tile: the full one takes minutes here
    assert torch.autograd.gradcheck(lambda b, a, x: sl.time_varying_lfilter(b, a, x), (b_raw, a_raw, x),
                                    fast_mode=T > 16)
    assert "tv_sos_adjoint" in fused_calls


@pytest.mark.parametrize("M,N,const_b", [(2, 2, False), (1, 2, True), (0, 1, False), (3, 4, False), (2, 3, True)])
@pytest.mark.parametrize("T", [1, 3, 40])
def test_time_varying_lfilter_with_zi_is_one_fused_section(M, N, const_b, T, fused_calls):
    """With zi on the kernels, ``time_varying_lfilter`` is one fused section too: the history enters as
    its head and the final state comes from its last outputs (the op's ends). Values, zf and every
    gradient (zi's too) equal the torch engine's; a leading coefficient that is not 1 included."""
    import os

    g = torch.Generator().manual_seed(500 + 10 * M + N + T)
    b, a = _sections(1, T, 1, g, M=M, N=N, rmax=0.9)
    b_raw, a_raw = _raw(b, a, g)
    b_raw, a_raw = b_raw[0, :, 0], a_raw[0, :, 0]  # (T, M+1), (T, N+1)
    if const_b:
        b_raw = b_raw[0]
    x = torch.randn(2, T, generator=g, **F64)
    zi = torch.randn(2, M + N, generator=g, **F64)
    out = {}
    for backend in ("torch", "triton"):
        os.environ["SSM_LFILTER_BACKEND"] = backend
        leaves = [t.clone().requires_grad_() for t in (b_raw, a_raw, x, zi)]
        y, zf = sl.time_varying_lfilter(*leaves[:3], zi=leaves[3])
        out[backend] = (y, zf, *torch.autograd.grad(y.pow(2).sum() + zf.pow(3).sum(), leaves))
    assert fused_calls == ["tv_sos", "tv_sos_adjoint"]
    for got, exp in zip(out["triton"], out["torch"]):
        torch.testing.assert_close(got, exp, rtol=1e-10, atol=1e-10)
    if T > 2:  # streaming with zf equals one call
        with torch.no_grad():
            y1, z1 = sl.time_varying_lfilter(b_raw if const_b else b_raw[:2], a_raw[:2], x[:, :2], zi=zi)
            y2, z2 = sl.time_varying_lfilter(b_raw if const_b else b_raw[2:], a_raw[2:], x[:, 2:], zi=z1)
        torch.testing.assert_close(torch.cat([y1, y2], -1), out["triton"][0], rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(z2, out["triton"][1], rtol=1e-10, atol=1e-10)


@pytest.mark.gpu
@pytest.mark.parametrize("with_zi", [False, True])
def test_gpu_unnormalized_time_varying_lfilter_against_the_float64_engine(with_zi):
    """The public layout with a leading coefficient that is not 1 (the kernels divide by it in
    registers) at real sizes, from rest and with zi: float32 on the kernels against float64 on the
    CPU engine, values, zf and every gradient (a0's included)."""
    g = torch.Generator().manual_seed(42 + with_zi)
    R, T = 4, 1 << 16
    sos, x = _swept_sections(R, T, 1, g)
    a0 = (0.5 + torch.rand(R, T, 1, generator=g, **F64)).float().double()
    b, a = sos[:, :, 0, :3] * a0, sos[:, :, 0, 3:] * a0  # (R, T, 3) each
    zi = torch.randn(R, 4, generator=g, **F64).float().double() if with_zi else None
    w = torch.randn(R, T, generator=g, **F64)

    def run(tensors, weight):
        out = sl.time_varying_lfilter(*tensors[:3], zi=tensors[3] if with_zi else None)
        y, zf = out if with_zi else (out, None)
        loss = (y * weight).sum() + (zf.pow(2).sum() if with_zi else 0)
        return y, zf, torch.autograd.grad(loss, tensors)

    cpu = [t.clone().requires_grad_() for t in (b, a, x) + ((zi,) if with_zi else ())]
    exp, exp_zf, exp_grads = run(cpu, w)
    cuda = [t.float().cuda().requires_grad_() for t in cpu]
    y, zf, grads = run(cuda, w.float().cuda())
    scale = float(exp.detach().abs().max())
    assert float((y.double().cpu() - exp.detach()).abs().max()) <= 1e-4 * scale
    if with_zi:
        assert float((zf.double().cpu() - exp_zf.detach()).abs().max()) <= 1e-4 * scale
    for gg, eg in zip(grads, exp_grads):
        assert float((gg.double().cpu() - eg).abs().max()) <= 1e-3 * float(eg.abs().max())


@pytest.mark.gpu
def test_gpu_unnormalized_cascade_gradients_against_the_float64_engine():
    """Eight unnormalized biquads per row and sample (the backward's 4-step lanes): float32 on the
    kernels against float64 on the CPU engine, every gradient of the raw sections."""
    g = torch.Generator().manual_seed(44)
    R, T, S = 2, 1 << 15, 8
    sos, x = _swept_sections(R, T, S, g)
    sos = (sos * (0.5 + torch.rand(R, T, S, 1, generator=g, **F64))).float().double()
    w = torch.randn(R, T, generator=g, **F64)
    cpu = [sos.clone().requires_grad_(), x.clone().requires_grad_()]
    exp_grads = torch.autograd.grad((sl.time_varying_sosfilt(*cpu) * w).sum(), cpu)
    cuda = [t.float().cuda().requires_grad_() for t in (sos, x)]
    grads = torch.autograd.grad((sl.time_varying_sosfilt(*cuda) * w.float().cuda()).sum(), cuda)
    for gg, eg in zip(grads, exp_grads):
        assert float((gg.double().cpu() - eg).abs().max()) <= 1e-3 * float(eg.abs().max())


@pytest.mark.parametrize("S", [1, 2])
def test_float32_low_angle_resonators_stay_at_the_sequential_level(S):
    """Hard mode for the carries: sections with poles drifting near radius 0.999 at angles near 0.02
    rad (a nearly collinear companion-form state) in float32, at the default tile sizes. The float64
    carries (the default since 2026-11-29) keep the error at the level of the same cascade run
    sequentially in float32; float32 carries lost 7e-3 relative on one such section."""
    T = 2048
    g = torch.Generator().manual_seed(9)
    n = torch.arange(T, **F64)[None, :, None, None]
    th = torch.tensor([0.02, 0.03], **F64)[None, None, :S, None] * (1 + 0.3 * torch.cos(2 * torch.pi * n / 900))
    r = 0.998 + 0.0015 * torch.sin(2 * torch.pi * n / 1700)
    a = torch.cat([-2 * r * torch.cos(th), (r * r).expand_as(th)], -1).float()
    b = torch.tensor([1.0, 0.0, 0.0]).expand(1, T, S, 3).contiguous()
    x = torch.randn(1, T, generator=g)
    exp = _loop(x.double(), b.double(), a.double())
    y = tv_sos(x, b, a)
    seq32 = x
    for s in range(S):  # the reference loop in float32, section by section
        den = torch.cat([torch.ones(1, T, 1), a[:, :, s]], -1)
        seq32 = ref.time_varying_lfilter(b[:, :, s], den, seq32)[0]
    assert _rel(y, exp) < max(2 * _rel(seq32, exp), 1e-6), (_rel(y, exp), _rel(seq32, exp))
