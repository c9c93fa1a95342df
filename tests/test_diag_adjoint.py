"""The fused diag adjoint: the launcher ``kernels.diagonal.diagonal_adjoint`` and the op
``ssm_lfilter::diag_adjoint`` that ``diag``'s backward calls (outside double backward).

``lam[t] = g[t] + conj(a[t+1]) lam[t+1]`` (reverse: ``conj(a[t-1]) lam[t-1]``) and
``da[t] = lam[t] conj(h_prev[t])``, reduced to ``a``'s shape, against autograd through the sequential
oracle (``ssm_lfilter.reference.linear_recurrence``) in float64 / complex128. Both kernel variants run
(single pass with tiny chunks, a forced look-back window of 2 and 2 rows per tile; and the multi-pass
composition); the op runs on the Triton interpreter (``SSM_LFILTER_BACKEND=triton``) and the torch engine.
"""
import importlib

import pytest
import torch

import ssm_lfilter as sl
import ssm_lfilter.ops  # noqa: F401  (registers torch.ops.ssm_lfilter.*)
from helpers import rand_a
from ssm_lfilter.reference import linear_recurrence

kd = importlib.import_module("ssm_lfilter.kernels.diagonal")  # the package attribute is the launcher

pytestmark = pytest.mark.interpreter

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
KW = dict(block_size=8, window=2, tile_elems=16)  # several chunks, window links and row blocks
TOL = {torch.float64: 1e-12, torch.complex128: 1e-12, torch.float32: 1e-5, torch.complex64: 1e-5}
VARIANTS = pytest.mark.parametrize("single_pass", [True, False], ids=["single", "multi"])
SHAPES = {"RT": lambda R, T: (R, T), "1T": lambda R, T: (1, T), "R1": lambda R, T: (R, 1), "11": lambda R, T: (1, 1)}


def oracle(a, u, g, reverse):
    """(h, du, da) by autograd through the sequential oracle, in float64 / complex128."""
    wide = torch.complex128 if a.is_complex() else torch.float64
    a64 = a.detach().to(wide).requires_grad_(True)
    u64 = u.detach().to(wide).requires_grad_(True)
    h = linear_recurrence(a64.expand(u.shape), u64, reverse=reverse)
    du, da = torch.autograd.grad(h, (u64, a64), g.to(wide))
    return h.detach(), du, da


def case(dtype, a_shape, reverse, R=3, T=45, seed=0, rmin=0.3, rmax=0.95):
    gen = torch.Generator().manual_seed(seed)
    a = rand_a(SHAPES[a_shape](R, T), dtype, rmin, rmax, gen)
    u = torch.randn(R, T, generator=gen, dtype=torch.float64).to(dtype)
    g = torch.randn(R, T, generator=gen, dtype=torch.float64).to(dtype)
    if dtype.is_complex:
        u = u + 1j * torch.randn(R, T, generator=gen, dtype=torch.float64).to(dtype)
        g = g + 1j * torch.randn(R, T, generator=gen, dtype=torch.float64).to(dtype)
    h, du, da = oracle(a, u, g, reverse)
    return a, h.to(dtype), g, du, da


def assert_close(got, exp, dtype, what):
    scale = max(1.0, exp.abs().max().item()) if exp.numel() else 1.0
    err = (got.to(exp.dtype) - exp).abs().max().item() if exp.numel() else 0.0
    assert err <= TOL[dtype] * scale, f"{what}: max error {err:.3e} > {TOL[dtype]:.0e} * {scale:.3e}"


# ------------------------------------------------------------------------------------------ launcher
@VARIANTS
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128, torch.float32, torch.complex64])
@pytest.mark.parametrize("a_shape", sorted(SHAPES))
@pytest.mark.parametrize("reverse", [False, True])
def test_adjoint_matches_oracle(single_pass, dtype, a_shape, reverse):
    a, h, g, du, da = case(dtype, a_shape, reverse, seed=len(a_shape) + 2 * reverse)
    lam, got_da = kd.diagonal_adjoint(a.to(DEVICE), h.to(DEVICE), g.to(DEVICE), reverse,
                                      single_pass=single_pass, **KW)
    assert lam.shape == g.shape and lam.dtype == dtype and lam.is_contiguous()
    assert got_da.shape == a.shape and got_da.dtype == dtype
    assert_close(lam.cpu(), du, dtype, "lam")
    assert_close(got_da.cpu(), da, dtype, "da")


@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("a_shape", ["RT", "R1"])
def test_adjoint_hard_mode(dtype, reverse, a_shape):
    """|a| in 0.999..0.9999: lam carries across every tile and window link (a dropped or misplaced
    carry, or a wrong shift of a, cannot hide)."""
    a, h, g, du, da = case(dtype, a_shape, reverse, R=2, T=120, seed=5, rmin=0.999, rmax=0.9999)
    lam, got_da = kd.diagonal_adjoint(a.to(DEVICE), h.to(DEVICE), g.to(DEVICE), reverse, block_size=4, window=2)
    scale = max(1.0, du.abs().max().item())
    assert (lam.cpu().to(du.dtype) - du).abs().max().item() <= 1e-5 * scale
    scale = max(1.0, da.abs().max().item())
    assert (got_da.cpu().to(da.dtype) - da).abs().max().item() <= 1e-5 * scale


@pytest.mark.parametrize("reverse", [False, True])
def test_adjoint_strides_and_default_geometry(reverse):
    """Non-contiguous g and h, a broadcast g (stride 0, as the gradient of a sum), lazily conjugated
    a, and the default chunk/window."""
    dtype = torch.complex128
    a, h, g, _, _ = case(dtype, "RT", reverse, R=3, T=40, seed=7)
    g_t = g.t().contiguous().t()  # strides (1, R)
    h_t = h.t().contiguous().t()
    for aa, hh, gg in [(a, h_t, g_t), (a.conj(), h, g), (a, h, torch.ones(1, 1, dtype=dtype).expand(3, 40))]:
        # du does not depend on u or h; da = du * conj(h_prev) with the h the kernel is given.
        du = oracle(aa.resolve_conj(), torch.zeros(3, 40, dtype=dtype), gg.contiguous(), reverse)[1]
        da = du * _shift_prev(hh, reverse).conj()
        for kw in (KW, {}):
            lam, got_da = kd.diagonal_adjoint(aa.to(DEVICE), hh.to(DEVICE), gg.to(DEVICE), reverse, **kw)
            assert_close(lam.cpu(), du, dtype, "lam")
            assert_close(got_da.cpu(), da, dtype, "da")


def _shift_prev(h, reverse):
    z = torch.zeros_like(h[:, :1])
    return torch.cat([h[:, 1:], z], 1) if reverse else torch.cat([z, h[:, :-1]], 1)


@VARIANTS
def test_adjoint_without_da_and_empty(single_pass):
    a, h, g, du, _ = case(torch.float64, "1T", False, seed=3)
    lam, da = kd.diagonal_adjoint(a.to(DEVICE), h.to(DEVICE), g.to(DEVICE), False, need_da=False,
                                  single_pass=single_pass, **KW)
    assert da.numel() == 0
    assert_close(lam.cpu(), du, torch.float64, "lam")
    z = torch.zeros(0, 5, device=DEVICE)
    lam, da = kd.diagonal_adjoint(torch.ones(1, 1, device=DEVICE), z, z, single_pass=single_pass)
    assert lam.shape == (0, 5) and da.shape == (1, 1) and da.item() == 0
    with pytest.raises(ValueError, match="expected"):
        kd.diagonal_adjoint(torch.ones(2, 3), z, z)
    with pytest.raises(ValueError, match="expected"):
        kd.diagonal_adjoint(torch.ones(1, 5), torch.zeros(2, 5), torch.zeros(2, 4))


@pytest.mark.parametrize("a_shape", ["RT", "R1", "11"])
def test_adjoint_deterministic(a_shape):
    """Bitwise equal reruns: fixed look-back fold, and the constant-a da summed per tile, then in a
    fixed order by torch (no float atomics)."""
    a, h, g, _, _ = case(torch.complex64, a_shape, True, R=3, T=50, seed=11, rmin=0.99, rmax=0.9999)
    args = (a.to(DEVICE), h.to(DEVICE), g.to(DEVICE), True)
    lam1, da1 = kd.diagonal_adjoint(*args, **KW)
    lam2, da2 = kd.diagonal_adjoint(*args, **KW)
    assert torch.equal(lam1, lam2) and torch.equal(da1, da2)


# ------------------------------------------------------------------------------------------------ op
@pytest.fixture(params=["triton", "torch"])
def backend(request, monkeypatch):
    if request.param == "triton" and torch.cuda.is_available():
        pytest.skip("CPU interpreter path only")
    monkeypatch.setenv("SSM_LFILTER_BACKEND", request.param)
    return request.param


def _op_args(dtype, a_shape, R=2, T=30, seed=0):
    a, h, g, _, _ = case(dtype, a_shape, False, R=R, T=T, seed=seed)
    return a, h, g


@pytest.mark.parametrize("a_shape", ["RT", "1T", "R1", "11"])
@pytest.mark.parametrize("reverse", [False, True])
def test_op_matches_composed(backend, a_shape, reverse):
    """The fused op equals the composed formula the double backward uses."""
    a, h, g = _op_args(torch.complex128, a_shape, seed=2)
    lam, da = torch.ops.ssm_lfilter.diag_adjoint(a, h, g, reverse, True)
    lam_c, da_c = ssm_lfilter.ops._diag_adjoint_composed(a, h, g, reverse, True, torch.ops.ssm_lfilter.diag)
    torch.testing.assert_close(lam, lam_c, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(da, da_c, rtol=1e-12, atol=1e-12)
    lam0, da0 = torch.ops.ssm_lfilter.diag_adjoint(a, h, g, reverse, False)
    assert torch.equal(lam0, lam) and da0.numel() == 0


@pytest.mark.parametrize("a_shape,dtype,reverse,need_da", [
    ("RT", torch.float64, False, True), ("1T", torch.complex128, True, True), ("R1", torch.float32, True, True),
    ("11", torch.complex128, False, True), ("RT", torch.float64, True, False),
])
def test_opcheck(backend, a_shape, dtype, reverse, need_da):
    a, h, g = _op_args(dtype, a_shape, T=20, seed=4)
    torch.library.opcheck(torch.ops.ssm_lfilter.diag_adjoint.default, (a, h, g, reverse, need_da))


@pytest.mark.parametrize("a_shape", ["RT", "R1", "1T"])
@pytest.mark.parametrize("reverse", [False, True])
def test_backward_fused_equals_double_backward_path(backend, a_shape, reverse):
    """First-order gradients through ``diag`` (fused op) equal those with create_graph=True (the
    composed, differentiable path) and the oracle; the double backward still runs."""
    dtype = torch.complex128
    gen = torch.Generator().manual_seed(13)
    a0 = rand_a(SHAPES[a_shape](2, 30), dtype, 0.8, 0.99, gen)
    u0 = torch.randn(2, 30, generator=gen, dtype=dtype)
    w = torch.randn(2, 30, generator=gen, dtype=dtype)
    grads = []
    for create_graph in (False, True):
        a, u = a0.clone().requires_grad_(True), u0.clone().requires_grad_(True)
        h = torch.ops.ssm_lfilter.diag(a, u, reverse)
        loss = (h * w.conj()).real.sum()
        grads.append(torch.autograd.grad(loss, (a, u), create_graph=create_graph))
    _, du, da = oracle(a0, u0, w, reverse)
    for got in grads:
        torch.testing.assert_close(got[0].detach(), da, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(got[1].detach(), du, rtol=1e-10, atol=1e-10)
    # double backward through the composed path
    gga = torch.autograd.grad(grads[1][0].abs().sum(), a, allow_unused=True)[0]
    assert gga is not None and torch.isfinite(gga).all()


@pytest.mark.parametrize("a_shape", ["RT", "11"])
def test_gradcheck_triton(monkeypatch, a_shape):
    """gradcheck and gradgradcheck of linear_recurrence on the Triton path (fused first backward,
    composed double backward)."""
    if torch.cuda.is_available():
        pytest.skip("CPU interpreter path only")
    monkeypatch.setenv("SSM_LFILTER_BACKEND", "triton")
    gen = torch.Generator().manual_seed(17)
    a = rand_a(SHAPES[a_shape](2, 6), torch.complex128, 0.5, 0.9, gen).requires_grad_(True)
    u = torch.randn(2, 6, generator=gen, dtype=torch.complex128, requires_grad=True)
    fn = lambda a, u: sl.linear_recurrence(a, u, reverse=True)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (a, u))
    if a_shape == "11":  # slow under the interpreter: once is enough
        assert torch.autograd.gradgradcheck(fn, (a, u))


def _count_launchers(monkeypatch):
    """Record the ops' calls of the diag launchers (looked up on the kernels package at every call).
    Calls a launcher makes inside itself (the multi-pass adjoint runs ``diagonal``) are not counted."""
    import ssm_lfilter.kernels as K

    calls = []
    for name in ("diagonal", "diagonal_adjoint"):
        fn = getattr(K, name)
        spy = (lambda *a, _fn=fn, _n=name, **k: calls.append(_n) or _fn(*a, **k))
        monkeypatch.setattr(K, name, spy)
    return calls


def test_backward_calls_fused_op(monkeypatch):
    """Outside double backward the backward is one diag_adjoint call and no second diag."""
    if torch.cuda.is_available():
        pytest.skip("CPU interpreter path only")
    monkeypatch.setenv("SSM_LFILTER_BACKEND", "triton")
    calls = _count_launchers(monkeypatch)
    a = torch.full((2, 20), 0.5, requires_grad=True)
    u = torch.randn(2, 20, requires_grad=True)
    torch.ops.ssm_lfilter.diag(a, u, False).sum().backward()
    assert calls == ["diagonal", "diagonal_adjoint"]


def test_inductor_backward_uses_fused_op(monkeypatch):
    """torch.compile(inductor) of a loss through linear_recurrence on the Triton path: the traced
    backward holds the fused op (grad mode is off while the backward is traced) and matches eager."""
    if torch.cuda.is_available():
        pytest.skip("CPU interpreter path only")
    monkeypatch.setenv("SSM_LFILTER_BACKEND", "triton")
    torch._dynamo.reset()
    gen = torch.Generator().manual_seed(19)
    a0 = rand_a((2, 24), torch.float64, 0.8, 0.99, gen)
    u0 = torch.randn(2, 24, generator=gen, dtype=torch.float64)

    def loss(a, u):
        return (sl.linear_recurrence(a, u, reverse=True) ** 2).sum()

    grads = []
    for fn in (loss, torch.compile(loss, backend="inductor", fullgraph=True)):
        calls = _count_launchers(monkeypatch)
        a, u = a0.clone().requires_grad_(True), u0.clone().requires_grad_(True)
        grads.append(torch.autograd.grad(fn(a, u), (a, u)))
        assert calls == ["diagonal", "diagonal_adjoint"]
    torch._dynamo.reset()
    for got, exp in zip(grads[1], grads[0]):
        torch.testing.assert_close(got, exp, rtol=1e-10, atol=1e-10)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64])
@pytest.mark.parametrize("a_shape", ["RT", "R1"])
def test_gpu_adjoint_deterministic_and_agrees(dtype, a_shape):
    """On a GPU (concurrent programs): bitwise reruns, and the fused adjoint equals the multi-pass
    composition (shifted copy of a, reverse recurrence, da in torch) to rounding."""
    R, T = 4, 2 ** 20
    gen = torch.Generator(device="cuda").manual_seed(2)
    r = 0.999 + 0.0009 * torch.rand(*SHAPES[a_shape](R, T), device="cuda", generator=gen)
    a = (r * torch.exp(1j * torch.rand(r.shape, device="cuda", generator=gen)) if dtype.is_complex else r).to(dtype)
    h = torch.randn(R, T, device="cuda", dtype=dtype, generator=gen)
    g = torch.randn(R, T, device="cuda", dtype=dtype, generator=gen)
    for reverse in (False, True):
        lam, da = kd.diagonal_adjoint(a, h, g, reverse, single_pass=True)
        lam2, da2 = kd.diagonal_adjoint(a, h, g, reverse, single_pass=True)
        assert torch.equal(lam, lam2) and torch.equal(da, da2)
        lam3, da3 = kd.diagonal_adjoint(a, h, g, reverse, single_pass=False)
        assert (lam - lam3).abs().max().item() <= 1e-4 * lam3.abs().max().item()
        assert (da - da3).abs().max().item() <= 1e-3 * max(1.0, da3.abs().max().item())
