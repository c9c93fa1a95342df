"""The fused backward of the time-varying all-pole filter: the launcher
``ssm_lfilter.kernels.time_varying_adjoint`` (under the interpreter on CPU; the single pass with tiny
tiles so short signals cross many lanes, tiles and look-back windows, the passes of orders up to 16
with tiny chunks so they cross many chunks and groups) and the ``ssm_lfilter::tv_adjoint`` op that the
backward of ``ssm_lfilter::tv`` calls when no graph is being built.

Oracles: autograd through a sequential loop written here (float64), and the composed backward on the
same kernels, which runs the same operations in the same order (bitwise equal)."""
import importlib
import itertools

import pytest
import torch

import ssm_lfilter as sl
import ssm_lfilter.ops as ops
from helpers import low_angle_resonator

pytestmark = pytest.mark.interpreter
adj = importlib.import_module("ssm_lfilter.kernels.time_varying_adjoint")
tvk = importlib.import_module("ssm_lfilter.kernels.time_varying")
F64 = dict(dtype=torch.float64)
TINY = dict(block_size=2, lanes=2, window_tiles=2)  # 4 steps a tile, a window of two tiles


def _coefficients(Ra, T, N, gen, r=0.95):
    """Stable time-varying ``a [Ra, T, N]``: N/2 pole pairs of radius ``r`` with drifting angles (and
    one real pole for odd N)."""
    t = torch.arange(T, **F64)
    polys = []
    for _ in range(Ra):
        c = torch.ones(T, 1, dtype=torch.complex128)
        poles = []
        for i in range(N // 2):
            th = 0.3 + 0.5 * i + 0.2 * torch.sin(t / 7 + float(torch.rand(1, generator=gen)))
            poles += [r * torch.exp(1j * th), r * torch.exp(-1j * th)]
        if N % 2:
            poles.append(torch.full((T,), -0.5 + 0j, dtype=torch.complex128))
        for p in poles:
            c = torch.cat([c, torch.zeros_like(c[:, :1])], -1) - p[:, None] * torch.cat([torch.zeros_like(c[:, :1]), c], -1)
        polys.append(c.real[:, 1:])
    return torch.stack(polys).contiguous()


def _loop(u, a):
    """``z[n] = u[n] - sum_k a[n, k-1] z[n-k]`` step by step (a's rows broadcast)."""
    R, T = u.shape
    zs = []
    for n in range(T):
        acc = u[:, n]
        for k in range(1, a.shape[-1] + 1):
            if n - k >= 0:
                acc = acc - a[:, n, k - 1] * zs[n - k]
        zs.append(acc)
    return torch.stack(zs, 1) if T else u.clone()


def _case(R, Ra, T, N, seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(R, T, generator=gen, **F64), _coefficients(Ra, T, N, gen), torch.randn(R, T, generator=gen, **F64)


def _composed(g, a, z, **kw):
    """The composed backward on the forward kernel (``time_varying`` with ``kw``): ``v`` from the flipped
    ``g`` and the skewed coefficients ``a[n+k, k-1]`` built as a tensor, and ``da = -v[n] z[n-k]`` from
    ``N`` delayed copies of ``z``."""
    T, N = g.shape[1], a.shape[2]
    a_rev = a.flip(1)
    a_adj = torch.stack([torch.cat([a_rev.new_zeros(a.shape[0], k), a_rev[:, : T - k, k - 1]], 1)
                         for k in range(1, N + 1)], -1)
    v = tvk.time_varying(g.flip(1), a_adj, **kw).flip(1)
    z_past = torch.stack([torch.cat([z.new_zeros(z.shape[0], k), z[:, : T - k]], 1) for k in range(1, N + 1)], -1)
    return v, -(v[:, :, None] * z_past)


@pytest.mark.parametrize("N", [1, 2, 3, 4])
def test_launcher_matches_autograd_of_a_loop(N):
    for T in (1, 3, 4, 5, 19):  # one step, a tile -1/0/+1 (4 steps), several tiles and windows
        u, a, g = _case(3, 3, T, N, 10 * N + T)
        ul, al = u.clone().requires_grad_(), a.clone().requires_grad_()
        z = _loop(ul, al)
        eu, ea = torch.autograd.grad(z, (ul, al), g, allow_unused=True)
        ea = torch.zeros_like(a) if ea is None else ea  # T = 1: no coefficient is used
        du, da = adj.time_varying_adjoint(g, a, z.detach(), **TINY)
        torch.testing.assert_close(du, eu, rtol=1e-10, atol=1e-10, msg=lambda m: f"T={T} du: {m}")
        torch.testing.assert_close(da, ea, rtol=1e-10, atol=1e-10, msg=lambda m: f"T={T} da: {m}")


@pytest.mark.parametrize("N", [2, 3])
def test_bitwise_equal_to_the_composed_backward_on_the_same_kernel(N):
    """The skewed coefficient load only moves where a coefficient is read from: the same bits as
    flipping g, building a[n+k, k-1] and running the forward single pass (float32, shared a)."""
    u, a, g = _case(2, 1, 37, N, 5)
    u, a, g = u.float(), a.float(), g.float()
    z = tvk.time_varying(u, a, single_pass=True, **TINY)
    du, da = adj.time_varying_adjoint(g, a, z, **TINY)
    v, expected_da = _composed(g, a, z, single_pass=True, **TINY)
    assert torch.equal(du, v)
    assert torch.equal(da, expected_da)


@pytest.mark.parametrize("N", [1, 2, 5, 8, 16])
@pytest.mark.parametrize("coalesced", [True, False])
def test_passes_match_autograd_of_a_loop(N, coalesced):
    """The multi-pass adjoint (orders above 4, or the single pass switched off): odd and even chunk
    lengths, signals of one chunk, one chunk +1 and many chunks and groups, shared and per-row ``a``."""
    for T, block_size, Ra in ((1, 2, 1), (3, 2, 3), (7, 3, 1), (19, 2, 3), (19, 4, 1)):
        u, a, g = _case(3, Ra, T, N, 10 * N + T)
        ul, al = u.clone().requires_grad_(), a.clone().requires_grad_()
        z = _loop(ul, al)
        eu, ea = torch.autograd.grad(z, (ul, al), g, allow_unused=True)
        ea = torch.zeros_like(a) if ea is None else ea  # T = 1: no coefficient is used
        du, da = adj.time_varying_adjoint(g, a, z.detach(), block_size=block_size, single_pass=False,
                                          coalesced=coalesced)
        torch.testing.assert_close(du, eu, rtol=1e-9, atol=1e-9, msg=lambda m: f"T={T} du: {m}")
        torch.testing.assert_close(da.sum(0, keepdim=True) if Ra == 1 else da, ea, rtol=1e-9, atol=1e-9,
                                   msg=lambda m: f"T={T} da: {m}")


@pytest.mark.parametrize("N", [2, 6, 16])
def test_passes_bitwise_equal_to_the_composed_backward(N):
    """The skewed strides only move where a coefficient is read from: the same bits as flipping g,
    building a[n+k, k-1] and running the forward passes (float32, so orders >= 3 accumulate in
    float64 as the forward does; shared a; tile and looped passes). 32-step chunks: above order 4 the
    adjoint's first pass takes 8-step sub-tiles where the forward's takes 16."""
    for (T, L), coalesced in itertools.product(((37, 4), (100, 32)), (True, False)):
        u, a, g = _case(2, 1, T, N, 6)
        u, a, g = u.float(), a.float(), g.float()
        kw = dict(block_size=L, single_pass=False, coalesced=coalesced)
        z = tvk.time_varying(u, a, **kw)
        du, da = adj.time_varying_adjoint(g, a, z, **kw)
        v, expected_da = _composed(g, a, z, **kw)
        assert torch.equal(du, v)
        assert torch.equal(da, expected_da)


def test_passes_with_coefficients_constant_in_time_and_strided_signals():
    """``a`` broadcast over time (stride 0, as ``time_varying_lfilter`` passes a constant denominator),
    and strided views of ``g`` and ``z``: the skewed strides and the masks past the row's end hold."""
    gen = torch.Generator().manual_seed(4)
    N, T = 6, 23
    a = (_coefficients(1, 1, N, gen) * 0.9).expand(1, T, N)
    u, g = torch.randn(2, T, generator=gen, **F64), torch.randn(2, T, generator=gen, **F64)
    ul, al = u.clone().requires_grad_(), a.clone().requires_grad_()
    z = _loop(ul, al)
    eu, ea = torch.autograd.grad(z, (ul, al), g)
    wide = torch.stack([z.detach(), torch.full_like(z, float("nan"))], -1)
    gw = torch.stack([g, torch.full_like(g, float("nan"))], -1)
    du, da = adj.time_varying_adjoint(gw[..., 0], a, wide[..., 0], block_size=3)
    torch.testing.assert_close(du, eu, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(da.sum(0, keepdim=True), ea, rtol=1e-9, atol=1e-9)


def test_tilings_skip_da_and_determinism():
    u, a, g = _case(2, 2, 45, 2, 8)
    z = _loop(u, a)
    ref = adj.time_varying_adjoint(g, a, z, **TINY)
    for kw in (dict(block_size=4, lanes=4, window_tiles=1), dict(block_size=8, lanes=2, window_tiles=4), dict()):
        du, da = adj.time_varying_adjoint(g, a, z, **kw)
        torch.testing.assert_close(du, ref[0], rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(da, ref[1], rtol=1e-10, atol=1e-10)
    du, da = adj.time_varying_adjoint(g, a, z, False, **TINY)
    assert da is None and torch.equal(du, ref[0])
    again = adj.time_varying_adjoint(g, a, z, **TINY)
    assert torch.equal(again[0], ref[0]) and torch.equal(again[1], ref[1])
    wide = torch.stack([z, torch.full_like(z, float("nan"))], -1)  # strided views of z and g
    gw = torch.stack([g, torch.full_like(g, float("nan"))], -1)
    strided = adj.time_varying_adjoint(gw[..., 0], a, wide[..., 0], **TINY)
    assert torch.equal(strided[0], ref[0]) and torch.equal(strided[1], ref[1])


def test_empty_and_errors():
    a = torch.zeros(1, 0, 2, **F64)
    du, da = adj.time_varying_adjoint(torch.zeros(2, 0, **F64), a, torch.zeros(2, 0, **F64))
    assert du.shape == (2, 0) and da.shape == (2, 0, 2)
    z = torch.zeros(2, 8, **F64)
    with pytest.raises(ValueError, match="does not match"):
        adj.time_varying_adjoint(z, torch.zeros(3, 8, 2, **F64), z)
    with pytest.raises(ValueError, match="1 <= N <= 16"):
        adj.time_varying_adjoint(z, torch.zeros(1, 8, 17, **F64), z)
    with pytest.raises(ValueError, match="lanes must be a power of two"):
        adj.time_varying_adjoint(z, torch.zeros(1, 8, 2, **F64), z, lanes=3)
    with pytest.raises(ValueError, match="block_size must be positive"):
        adj.time_varying_adjoint(z, torch.zeros(1, 8, 5, **F64), z, block_size=0)
    with pytest.raises(ValueError, match="clock"):
        adj.time_varying_adjoint(z, torch.zeros(1, 8, 5, **F64), z, clock=torch.zeros(1, dtype=torch.int64))
    assert adj.tv_adjoint_applies(torch.zeros(1, 8, 16, **F64)) and adj.tv_adjoint_applies(torch.zeros(1, 8, 1, **F64))
    assert not adj.tv_adjoint_applies(torch.zeros(1, 8, 17, **F64))
    assert not adj.tv_adjoint_applies(torch.zeros(1, 8, 2, dtype=torch.complex128))
    assert not adj.tv_adjoint_applies(torch.zeros(1, 8, 0, **F64))


@pytest.mark.parametrize("backend", ["triton", "torch"])
def test_op_opcheck_and_both_backends_agree(backend, monkeypatch):
    monkeypatch.setenv("SSM_LFILTER_BACKEND", backend)
    u, a, g = _case(2, 1, 30, 2, 3)
    ul, al = u.clone().requires_grad_(), a.clone().requires_grad_()
    z = _loop(ul, al)
    eu, ea = torch.autograd.grad(z, (ul, al), g)
    args = (g, a, z.detach(), True)
    torch.library.opcheck(torch.ops.ssm_lfilter.tv_adjoint.default, args,
                          test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_dynamic"))
    du, da = ops.tv_adjoint(*args)
    torch.testing.assert_close(du, eu)
    torch.testing.assert_close(da.sum(0, keepdim=True), ea)
    du, da = ops.tv_adjoint(g, a, z.detach(), False)
    assert da.shape == (2, 0, 2)


@pytest.mark.parametrize("per_sample_b, N", [(False, 2), (True, 2), (False, 7)])
def test_time_varying_lfilter_backward_is_one_adjoint_call(per_sample_b, N, monkeypatch):
    """On the Triton path: at order 2 (constant or per-sample b) and per-sample b from rest at any
    order, the fused one-section cascade (kernels/tv_sos.py) both ways; constant b at order 7 the
    time-varying kernel forward and this fused adjoint backward (its passes). Gradients equal the
    torch engine's; create_graph=True composes (double backward works)."""
    import ssm_lfilter.kernels as K

    calls = {"time_varying": 0, "time_varying_adjoint": 0, "tv_sos": 0, "tv_sos_adjoint": 0}
    for name in calls:
        real = getattr(K, name)
        monkeypatch.setattr(K, name, lambda *a, _r=real, _n=name, **k: calls.__setitem__(_n, calls[_n] + 1) or _r(*a, **k))
    gen = torch.Generator().manual_seed(1)
    T = 40
    a = torch.cat([torch.ones(T, 1, **F64), _coefficients(1, T, N, gen, r=0.9)[0]], -1).requires_grad_()
    b = (torch.randn(2, T, 3, generator=gen, **F64) if per_sample_b else torch.randn(3, generator=gen, **F64))
    b = b.requires_grad_()
    x = torch.randn(2, T, generator=gen, **F64).requires_grad_()
    grads = {}
    for backend in ("torch", "triton"):
        monkeypatch.setenv("SSM_LFILTER_BACKEND", backend)
        y = sl.time_varying_lfilter(b, a, x)
        grads[backend] = torch.autograd.grad((y * y.detach().cos()).sum(), (b, a, x))
    fused = "tv_sos" if per_sample_b or N <= 4 else "time_varying"
    assert calls == {k: int(k in (fused, f"{fused}_adjoint")) for k in calls}
    for got, exp in zip(grads["triton"], grads["torch"]):
        torch.testing.assert_close(got, exp, rtol=1e-9, atol=1e-9)
    monkeypatch.setenv("SSM_LFILTER_BACKEND", "triton")
    ga, = torch.autograd.grad(sl.time_varying_lfilter(b, a, x).pow(2).sum(), a, create_graph=True)
    assert calls[f"{fused}_adjoint"] == 1  # double backward: the composed, differentiable ops
    ga.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.gpu
def test_gpu_adjoint_matches_composed_at_real_sizes():
    dev = "cuda"
    gen = torch.Generator().manual_seed(0)
    for R, T, N in ((8, 1 << 20, 2), (1, 1 << 22, 2), (64, 4099, 4), (8, 1 << 18, 8), (4, 1 << 18, 16)):
        a = _coefficients(1, T, N, gen).float().to(dev)
        g, z = torch.randn(R, T, device=dev), torch.randn(R, T, device=dev)
        got = ops.tv_adjoint(g, a, z, True)
        monkey = ops._tv_adjoint_composed(g, a, z, True)
        for u, w in zip(got, monkey):
            assert float((u.double() - w.double()).abs().max() / w.double().abs().max()) < 1e-4


def test_float32_low_angle_resonator_backward_default_carries():
    """The backward's carries in hard mode: a biquad with poles drifting near radius 0.999 at angles
    near 0.02 rad (a nearly collinear state), float32 data at the default tile sizes. With the
    default float64 carries ``du`` and ``da`` stay within 1e-6 of the float64 backward on the same
    inputs; float32 carries (``accumulate_fp64=False``, the orders <= 2 default until 2026-11-29)
    lost 1e-2 here."""
    T = 2048
    g = torch.Generator().manual_seed(31)
    a = low_angle_resonator(T).float().contiguous()
    u, gr = torch.randn(1, T, generator=g), torch.randn(1, T, generator=g)
    z = tvk.time_varying(u.double(), a.double())
    du64, da64 = adj.time_varying_adjoint(gr.double(), a.double(), z)
    du, da = adj.time_varying_adjoint(gr, a, z.float())
    for got, exp in ((du, du64), (da, da64)):
        assert float((got.double() - exp).abs().max() / exp.abs().max()) < 1e-6
