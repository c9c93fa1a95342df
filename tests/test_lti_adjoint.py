"""The one-launch LTI backward: the launcher ``ssm_lfilter.kernels.lti_adjoint`` (under the interpreter
on CPU, tiny tiles so short signals cross many lanes, tiles and look-back windows) and the
``ssm_lfilter::lti_adjoint`` op that ``lfilter``'s backward calls when no graph is being built.

The oracle is autograd through a sequential loop written here (float64), not the composed backward."""
import pytest
import torch

import ssm_lfilter as sl
import ssm_lfilter.ops as ops
from ssm_lfilter.kernels import fused_adjoint_applies
from ssm_lfilter.kernels import lti_adjoint as launcher

pytestmark = pytest.mark.interpreter
F64 = dict(dtype=torch.float64)
TINY = dict(block_size=4, lanes=2, window_tiles=2)  # 8 samples a tile, a window of 2 tiles


def _loop(x, b, a, head, reverse):
    """``y[n] = sum_k b[k] x[n-k] + head[n] - sum_k a[k-1] y[n-k]`` step by step (rows of ``b``/``a``
    broadcast); ``reverse`` runs it backwards in time with ``head[n]`` entering at step n."""
    xs = x.flip(1) if reverse else x
    R, T = xs.shape
    ys = []
    for n in range(T):
        acc = sum(b[:, k] * xs[:, n - k] for k in range(b.shape[1]) if n - k >= 0)
        acc = acc + (head[:, n] if n < head.shape[1] else 0.0)
        acc = acc - sum((a[:, k - 1] * ys[n - k] for k in range(1, a.shape[1] + 1) if n - k >= 0), x.new_zeros(R))
        ys.append(acc)
    y = torch.stack(ys, 1) if T else xs.clone()
    return y.flip(1) if reverse else y


def _case(R, T, M, N, K, shared, seed):
    gen = torch.Generator().manual_seed(seed)
    rb = 1 if shared else R
    b = torch.randn(rb, M + 1, generator=gen, **F64)
    a = 0.9 * (torch.rand(R if not shared else 1, N, generator=gen, **F64) - 0.5) / max(N, 1)
    if N >= 2:
        a[:, :2] = torch.tensor([-1.94, 0.9801], **F64)  # a pole pair at radius 0.99 ("hard mode")
    x, g = (torch.randn(R, T, generator=gen, **F64) for _ in range(2))
    head = torch.randn(R, K, generator=gen, **F64)
    return x, b, a, head, g


def _oracle(x, b, a, head, g, reverse):
    leaves = [t.clone().requires_grad_() for t in (x, b, a, head)]
    y = _loop(*leaves, reverse)
    grads = torch.autograd.grad(y, leaves, g, allow_unused=True)
    return y.detach(), [torch.zeros_like(t) if d is None else d for t, d in zip(leaves, grads)]


def _rows(d, like):
    """The launcher's per-row coefficient gradients, summed over rows where the input was shared."""
    return d.sum(0, keepdim=True) if like.shape[0] == 1 else d


@pytest.mark.parametrize("M,N", [(2, 2), (0, 1), (1, 1), (3, 1), (1, 3), (4, 4), (2, 4), (2, 0), (4, 0)])
@pytest.mark.parametrize("reverse", [False, True])
def test_launcher_matches_autograd_of_a_loop(M, N, reverse):
    for T in (1, 7, 8, 9, 33):  # one sample, a tile -1/0/+1 (8 samples), several tiles and windows
        x, b, a, head, g = _case(3, T, M, N, 3, shared=(T % 2 == 1), seed=100 * M + 10 * N + T)
        y, (ex, eb, ea, eh) = _oracle(x, b, a, head, g, reverse)
        dx, db, da, dh = launcher(g, x, y, b, a, 3, True, M + 1, N, reverse=reverse, **TINY)
        for name, got, exp in (("dx", dx, ex), ("db", _rows(db, b), eb), ("da", _rows(da, a), ea), ("dhead", dh, eh)):
            torch.testing.assert_close(got, exp, rtol=1e-9, atol=1e-9, msg=lambda m: f"T={T} {name}: {m}")


def test_head_longer_than_signal_and_partial_requests():
    x, b, a, head, g = _case(2, 5, 2, 2, 9, shared=False, seed=7)
    y, (ex, eb, ea, eh) = _oracle(x, b, a, head, g, False)
    dx, db, da, dh = launcher(g, x, y, b, a, 9, False, 0, 2, **TINY)
    assert dx is None and db.shape == (2, 0)
    torch.testing.assert_close(da, ea)
    torch.testing.assert_close(dh, eh)  # zero beyond T
    assert (dh[:, 5:] == 0).all()
    dx, db, da, dh = launcher(g, x, y, b, a, 0, True, 2, 0, **TINY)  # first 2 of 3 b lags, no a, no head
    torch.testing.assert_close(dx, ex)
    torch.testing.assert_close(db, eb[:, :2])
    assert da.shape == (2, 0) and dh.shape == (2, 0)


def test_window_sizes_lanes_and_block_sizes_agree():
    """Every tiling gives the oracle's values: a window of one tile, wide windows, long lanes."""
    x, b, a, head, g = _case(2, 70, 2, 2, 2, shared=False, seed=11)
    y, (ex, eb, ea, eh) = _oracle(x, b, a, head, g, True)
    for kw in (dict(block_size=2, lanes=2, window_tiles=1), dict(block_size=4, lanes=4, window_tiles=4),
               dict(block_size=8, lanes=2, window_tiles=8), dict()):
        dx, db, da, dh = launcher(g, x, y, b, a, 2, True, 3, 2, reverse=True, **kw)
        for got, exp in ((dx, ex), (db, eb), (da, ea), (dh, eh)):
            torch.testing.assert_close(got, exp, rtol=1e-9, atol=1e-9, msg=lambda m: f"{kw}: {m}")


def test_bitwise_deterministic_and_float32_close_to_float64():
    x, b, a, head, g = _case(2, 60, 2, 2, 0, shared=True, seed=3)
    y, _ = _oracle(x, b, a, head, g, False)
    args64 = (g, x, y, b, a, 0, True, 3, 2)
    one, two = launcher(*args64, **TINY), launcher(*args64, **TINY)
    for u, w in zip(one, two):
        assert torch.equal(u, w), "two runs differ: the reductions must be in a fixed order"
    got32 = launcher(*(t.float() if isinstance(t, torch.Tensor) else t for t in args64), **TINY)
    for u, w in zip(got32[:3], one[:3]):  # dx, db, da (no head)
        assert u.dtype == torch.float32
        assert float((u.double() - w).abs().max() / w.abs().max()) < 1e-5
    half = launcher(g.half(), x.half(), y.half(), b, a, 0, True, 3, 2, **TINY)
    assert half[0].dtype == torch.float16 and torch.isfinite(half[0]).all()


def test_empty_rows_and_signals():
    for R, T in ((0, 5), (2, 0)):
        z = torch.zeros(R, T, **F64)
        dx, db, da, dh = launcher(z, z, z, torch.ones(1, 3, **F64), torch.full((1, 2), 0.1, **F64), 2, True, 3, 2)
        assert dx.shape == (R, T) and db.shape == (R, 3) and da.shape == (R, 2) and dh.shape == (R, 2)
        assert (db == 0).all() and (dh == 0).all()


def test_errors_name_the_argument():
    z = torch.zeros(2, 8, **F64)
    b, a = torch.ones(1, 3, **F64), torch.full((1, 2), 0.1, **F64)
    with pytest.raises(ValueError, match="expected g, x, y of one shape"):
        launcher(z, z[:, :4], z, b, a, 0, True, 3, 2)
    with pytest.raises(ValueError, match="N, M <= 4"):
        launcher(z, z, z, b, torch.zeros(1, 5, **F64), 0, True, 3, 5)
    with pytest.raises(ValueError, match="0 <= n_b <= 3"):
        launcher(z, z, z, b, a, 0, True, 4, 2)
    with pytest.raises(ValueError, match="lanes must be a power of two"):
        launcher(z, z, z, b, a, 0, True, 3, 2, lanes=3)
    assert fused_adjoint_applies(b, torch.zeros(1, 0, **F64))  # a pure FIR: zero poles
    assert not fused_adjoint_applies(torch.ones(1, 1, **F64), torch.zeros(1, 0, **F64))  # a gain: composed
    assert not fused_adjoint_applies(torch.ones(1, 6, **F64), a)  # M = 5
    assert not fused_adjoint_applies(b, a, single_pass=False)


@pytest.mark.parametrize("backend", ["triton", "torch"])
def test_op_opcheck_and_both_backends_agree(backend, monkeypatch):
    monkeypatch.setenv("SSM_LFILTER_BACKEND", backend)
    x, b, a, head, g = _case(2, 40, 2, 2, 2, shared=False, seed=5)
    y, (ex, eb, ea, eh) = _oracle(x, b, a, head, g, False)
    args = (g, x, y, b, a, 2, False, True, 3, 2)
    torch.library.opcheck(torch.ops.ssm_lfilter.lti_adjoint.default, args,
                          test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_dynamic"))
    dx, dcoef, dh = ops.lti_adjoint(*args)
    for got, exp in ((dx, ex), (dcoef[:, :3], eb), (dcoef[:, 3:], ea), (dh, eh)):
        torch.testing.assert_close(got, exp)
    dx, dcoef, _ = ops.lti_adjoint(g, x, y, b, a, 0, False, False, 0, 0)
    assert dx.shape == (2, 0) and dcoef.shape == (2, 0)
    # raw coefficients (a0 first) summed over rows: lfilter's call for one filter shared by the rows
    b_raw, a_raw = b[:1] * 2.0, torch.cat([torch.full((1, 1), 2.0, **F64), a[:1] * 2.0], 1)
    y1 = ops.lti(x, b[:1], a[:1], x.new_zeros(2, 0))
    args = (g, x, y1, b_raw, a_raw, 0, False, True, 3, 2, False, True)
    torch.library.opcheck(torch.ops.ssm_lfilter.lti_adjoint.default, args,
                          test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_dynamic"))
    _, dcoef, _ = ops.lti_adjoint(*args)
    _, want, _ = ops._adjoint_raw(x, b_raw, a_raw, y1, g, 0, False, True, 3, 2, False, True)
    assert dcoef.shape == (1, 6)
    torch.testing.assert_close(dcoef, want)


@pytest.mark.parametrize("M,N", [(2, 2), (1, 3), (4, 4), (3, 1), (2, 0)])
@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("need_a", [True, False])
def test_raw_coefficients_match_autograd_of_a_loop(M, N, shared, need_a):
    """``monic=False`` (``lfilter``'s call): ``a`` starts with ``a0``, both kernels divide by it in
    registers, and the adjoint's ``dcoef`` holds the raw coefficients' gradients (``a0``'s first among
    ``a``'s), summed over the rows with ``sum_rows``, against autograd through the loop on the
    divided coefficients."""
    from ssm_lfilter.kernels import lti, lti_adjoint_sums

    x, b, a, head, g = _case(3, 53, M, N, 0, shared, seed=11)
    a0 = 0.5 + torch.rand(a.shape[0], 1, generator=torch.Generator().manual_seed(3), **F64)
    b_raw, a_raw = b * a0[:b.shape[0]], torch.cat([a0, a * a0], 1)
    leaves = [t.clone().requires_grad_() for t in (x, b_raw, a_raw)]
    y_exp = _loop(leaves[0], leaves[1] / leaves[2][:, :1], leaves[2][:, 1:] / leaves[2][:, :1], head, False)
    ex, eb, ea = torch.autograd.grad(y_exp, leaves, g)
    y = lti(x, b_raw, a_raw, head, monic=False, **TINY)
    torch.testing.assert_close(y, y_exp.detach(), rtol=1e-10, atol=1e-10)
    n_a = N if need_a else 0
    dx, dcoef, _ = lti_adjoint_sums(g, x, y, b_raw, a_raw, 0, True, M + 1, n_a, monic=False, sum_rows=shared, **TINY)
    want = torch.cat([eb, ea], 1) if n_a else eb
    assert dcoef.shape == want.shape
    torch.testing.assert_close(dcoef, want, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(dx, ex, rtol=1e-10, atol=1e-10)


def test_raw_coefficients_need_every_b_lag_for_a0():
    from ssm_lfilter.kernels import lti_adjoint_sums

    z = torch.zeros(1, 8, **F64)
    with pytest.raises(ValueError, match="expected n_b = 3 with monic=False"):
        lti_adjoint_sums(z, z, z, torch.ones(1, 3, **F64), torch.ones(1, 3, **F64), 0, True, 2, 2, monic=False)


def test_lfilter_backward_is_one_adjoint_launch(monkeypatch):
    """On the Triton path lfilter's whole backward (x, b, a and zi) is one lti_adjoint launch and
    matches the torch engine; create_graph=True takes the composed ops (double backward works)."""
    import ssm_lfilter.kernels as K

    calls = {"lti": 0, "lti_adjoint_sums": 0}
    for name in calls:
        real = getattr(K, name)
        monkeypatch.setattr(K, name, lambda *a, _r=real, _n=name, **k: calls.__setitem__(_n, calls[_n] + 1) or _r(*a, **k))
    gen = torch.Generator().manual_seed(0)
    b = torch.randn(2, 3, generator=gen, **F64).requires_grad_()
    a = torch.tensor([[1.0, -1.6, 0.8], [1.5, 0.3, 0.1]], **F64).requires_grad_()
    x = torch.randn(2, 50, generator=gen, **F64).requires_grad_()
    zi = torch.randn(2, 2, generator=gen, **F64).requires_grad_()
    grads = {}
    for backend in ("torch", "triton"):
        monkeypatch.setenv("SSM_LFILTER_BACKEND", backend)
        y, zf = sl.lfilter(b, a, x, zi=zi)
        grads[backend] = torch.autograd.grad((y * y.detach().cos()).sum() + zf.sum(), (b, a, x, zi))
    assert calls == {"lti": 1, "lti_adjoint_sums": 1}
    for got, exp in zip(grads["triton"], grads["torch"]):
        torch.testing.assert_close(got, exp, rtol=1e-9, atol=1e-9)
    monkeypatch.setenv("SSM_LFILTER_BACKEND", "triton")
    gb, = torch.autograd.grad(sl.lfilter(b, a, x).pow(2).sum(), b, create_graph=True)
    assert calls["lti_adjoint_sums"] == 1  # the composed path, differentiable again
    gb.sum().backward()
    assert a.grad is not None and torch.isfinite(a.grad).all()


def test_fir_backward_is_one_adjoint_launch(monkeypatch):
    """A pure FIR (a = [1]) also runs its backward in one launch (the adjoint with zero poles)."""
    import ssm_lfilter.kernels as K

    calls = []
    real = K.lti_adjoint_sums
    monkeypatch.setattr(K, "lti_adjoint_sums", lambda *a, **k: calls.append(1) or real(*a, **k))
    gen = torch.Generator().manual_seed(2)
    b = torch.randn(4, generator=gen, **F64).requires_grad_()
    x = torch.randn(3, 45, generator=gen, **F64).requires_grad_()
    grads = {}
    for backend in ("torch", "triton"):
        monkeypatch.setenv("SSM_LFILTER_BACKEND", backend)
        y = sl.lfilter(b, torch.ones(1, **F64), x)
        grads[backend] = torch.autograd.grad((y * y.detach().sin()).sum(), (b, x))
    assert calls == [1]
    for got, exp in zip(grads["triton"], grads["torch"]):
        torch.testing.assert_close(got, exp, rtol=1e-9, atol=1e-9)


@pytest.mark.gpu
def test_gpu_adjoint_matches_composed_at_real_sizes():
    """Real tile sizes on CUDA: one long row (2^22) and many rows, against the composed kernels."""
    dev = "cuda"
    gen = torch.Generator(device=dev).manual_seed(0)
    b = torch.tensor([[0.2, 0.4, 0.2]], device=dev)
    a = torch.tensor([[-1.94, 0.9801]], device=dev)
    for R, T in ((1, 1 << 22), (64, 100_003)):
        x, g = (torch.randn(R, T, device=dev, generator=gen) for _ in range(2))
        y = ops.lti(x, b, a, x.new_zeros(R, 0), False)
        got = launcher(g, x, y, b, a, 0, True, 3, 2)
        exp = ops._adjoint_composed(x, b, a, y, g, 0, False, True, 3, 2)
        for u, w in zip(got[:3], exp[:3]):
            assert float((u.double() - w.double()).abs().max() / w.double().abs().max()) < 1e-4


def test_one_warp_tiles_only_for_float32_orders_3_4_on_a_gpu():
    """The default tiles of orders 3-4 (kernels/_variants.py, ``one_warp_tiles``: 32 lanes a tile, timed
    faster on an H200 at 32 rows) apply to float32 (half precision computes in it) on a GPU with 32
    rows or more and no opt-in tile variant; float64, the interpreter, fewer rows (a wider look-back
    window, where the one-warp build spills) and the variants keep the wider tiles."""
    from ssm_lfilter.kernels._variants import one_warp_tiles

    assert one_warp_tiles(3, torch.float32, "cuda", 32) and one_warp_tiles(4, torch.float32, "cuda", 4096)
    assert not one_warp_tiles(2, torch.float32, "cuda", 32)
    assert not one_warp_tiles(4, torch.float64, "cuda", 32)
    assert not one_warp_tiles(4, torch.float32, "cpu", 32)
    assert not one_warp_tiles(4, torch.float32, "cuda", 16)
    assert not one_warp_tiles(4, torch.float32, "cuda", 32, variants=True)
    assert one_warp_tiles(4, torch.float32, "meta", 32)  # the compile tools' captures see the GPU's choice


@pytest.mark.parametrize("rows,kw,one_warp", [(32, {}, True), (16, {}, False), (32, {"lane_loads": True}, False),
                                              (32, {"power_table": True}, False), (32, {"block_size": 16}, False)])
def test_launchers_pick_one_warp_tiles_as_documented(monkeypatch, rows, kw, one_warp):
    """What the forward and backward launchers build at order 4 in float32 on meta tensors (a GPU's
    choice; the kernels are captured, not run): 32 lanes a tile where ``one_warp_tiles`` says so."""
    from triton.runtime.interpreter import InterpretedFunction
    from triton.runtime.jit import JITFunction

    from ssm_lfilter import kernels as K

    launched = []
    for kind in (JITFunction, InterpretedFunction):  # the kernels are one or the other, as TRITON_INTERPRET says
        monkeypatch.setattr(kind, "run", lambda self, *a, grid, warmup, **k: launched.append((self.__name__, k)))
    meta = dict(device="meta", dtype=torch.float32)
    x, b, a = torch.empty(rows, 1 << 16, **meta), torch.empty(1, 5, **meta), torch.empty(1, 4, **meta)
    K.lti(x, b, a, torch.empty(rows, 0, **meta), **kw)
    K.lti_adjoint(x, x, x, b, a, 0, True, 5, 4, **kw)
    blocks = {name: k["BLOCK"] for name, k in launched if name in ("_lti_single_pass_kernel", "_lti_adjoint_kernel")}
    assert len(blocks) == 2, launched
    assert all((blk == 32) == one_warp for blk in blocks.values()), blocks
