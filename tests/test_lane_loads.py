"""Lane loads in the single-pass LTI kernels, forward and backward (``kernels/_lane_tiles.py``, ``lane_loads=``).

With lane loads every thread loads and stores its own lane's run in 16-byte vectors and the pieces are
joined into the bit-shaped tile in registers, instead of one coalesced tile load whose layout changes
through shared memory. Only where the values travel changes, not the arithmetic, so the outputs are the
same bits: checked here on the forward (orders 1-4, FIR orders 0 to N, shared and per-row
coefficients, heads, reverse, rows of one sample and rows that end inside a tile, float32 (4-element
vectors) and float64 (2-element vectors), lanes of 2 to 16 samples so that a lane is one vector, a
vector's worth or several), on the cascade with every section's head, last outputs and section inputs,
and with the persistent launch, against scipy; and on the backward (the LTI filter's and the
cascade's).
"""
import numpy as np
import pytest
import torch

from helpers import (assert_scipy_lti, cascade_case, cascade_outputs, poles_denominator, single_pass_case,
                     spy_launches)
from ssm_lfilter import kernels as kern
from ssm_lfilter.kernels import _variants
from ssm_lfilter.kernels import lti_single_pass as _sp

RNG = np.random.default_rng(7)


def _assert_same(got, want):
    for u, v in zip(got, want):
        assert torch.equal(u, v), f"lane loads and the coalesced tile differ: max {(u - v).abs().max().item():.3e}"


@pytest.mark.parametrize("M,N,K,C,lanes,W,T,shared,reverse,dtype", [
    (1, 1, 0, 8, 2, 2, 101, True, False, torch.float32),
    (2, 2, 3, 4, 4, 2, 203, False, False, torch.float32),  # a lane is one 4-element vector
    (2, 2, 0, 16, 2, 4, 129, True, True, torch.float32),  # four vectors a lane, reversed
    (0, 2, 0, 2, 4, 2, 1, True, False, torch.float32),  # one sample; lanes of half a vector
    (3, 3, 2, 8, 2, 1, 95, False, False, torch.float64),  # 2-element vectors
    (4, 4, 5, 4, 2, 4, 97, True, True, torch.float64),
    (1, 4, 0, 8, 2, 2, 160, True, False, torch.float32),  # 160: a whole number of tiles
])
def test_forward_bitwise_equal_and_scipy(M, N, K, C, lanes, W, T, shared, reverse, dtype):
    x, b, a, head = single_pass_case(RNG, M, N, K, T, shared, dtype)
    kw = dict(block_size=C, lanes=lanes, window_tiles=W, reverse=reverse, single_pass=True)
    y = kern.lti(x, b, a, head, lane_loads=True, **kw)
    _assert_same([y], [kern.lti(x, b, a, head, lane_loads=False, **kw)])
    assert_scipy_lti(y, x, b, a, head, reverse)


def test_half_precision_input():
    """float16 input runs in float32 (the launcher converts it) and comes back as float16."""
    x = torch.tensor(RNG.standard_normal((2, 77)), dtype=torch.float16)
    b, a = torch.tensor([[0.3, 0.2]]), torch.tensor([[-0.5, 0.1]])
    kw = dict(block_size=8, lanes=2, window_tiles=2, single_pass=True)
    y = kern.lti(x, b, a, x.new_zeros(2, 0).float(), lane_loads=True, **kw)
    assert y.dtype == torch.float16
    _assert_same([y], [kern.lti(x, b, a, x.new_zeros(2, 0).float(), lane_loads=False, **kw)])


@pytest.mark.parametrize("N,S,shared,persistent", [(2, 3, True, False), (4, 2, False, False), (2, 2, True, True)])
def test_cascade_heads_ends_sections_and_persistent(monkeypatch, N, S, shared, persistent):
    """The cascade with every section's head and last outputs, the section inputs the cascade's
    backward recomputes, and the persistent launch (three programs), with lane loads or not."""
    monkeypatch.setattr(_sp, "persistent_programs", lambda device: 3)
    x, b, a, head = cascade_case(RNG, 2, 90, N, S, shared, torch.float32)
    tiles = (8, 2, 2)  # C, lanes, W: 6 tiles of 16 samples a row, the last one partial
    _assert_same(cascade_outputs(x, b, a, head, *tiles, persistent=persistent, lane_loads=True),
                 cascade_outputs(x, b, a, head, *tiles, persistent=persistent, lane_loads=False))


def test_switch_and_register_cap(monkeypatch):
    """``SSM_LFILTER_LANE_LOADS`` turns lane loads on (off by default); with them orders 1-2 take the
    128-register cap where it compiled without a spill (``tests/test_kernel_resources.py``)."""
    monkeypatch.delenv("SSM_LFILTER_LANE_LOADS", raising=False)
    monkeypatch.delenv("SSM_LFILTER_REGISTER_CAP", raising=False)
    assert _variants.lane_loads(None) is False and _variants.lane_loads(True) is True
    monkeypatch.setenv("SSM_LFILTER_LANE_LOADS", "1")
    assert _variants.lane_loads(None) is True and _variants.lane_loads(False) is False

    f32, f64 = torch.float32, torch.float64
    cap = _sp.forward_max_registers
    assert cap(1, 1, 32, 64, f32, True, table=False, W=128, lane_loads=True) == 128
    assert cap(1, 2, 32, 64, f32, True, W=32, lane_loads=True) == 128
    assert cap(1, 2, 32, 64, f32, True, W=64, lane_loads=True) == 128
    assert cap(1, 2, 32, 64, f32, True, W=128, lane_loads=True) is None  # spilled 24 bytes capped
    assert cap(1, 2, 32, 64, f32, True, table=False, W=2, lane_loads=True) is None  # spilled 32-40
    assert cap(1, 2, 32, 64, f32, True, W=32) is None  # the coalesced tile takes 126 uncapped
    assert cap(1, 4, 32, 64, f32, True, W=32, lane_loads=True) == 144  # the order-4 cap, as before
    assert cap(1, 2, 32, 64, f64, True, W=32, lane_loads=True) is None
    assert cap(1, 2, 32, 64, f32, False, W=32, lane_loads=True) is None  # heads, reversed or stores
    assert cap(1, 2, 32, 64, f32, True, requested=False, W=32, lane_loads=True) is None


def _spy(monkeypatch, module, name):
    """Each launch's ``LANE_LOADS`` and ``V`` of the kernel ``module.name``, as it runs."""
    return spy_launches(monkeypatch, module, name, lambda grid, kw: (kw["LANE_LOADS"], kw["V"]))


def test_the_flag_reaches_the_kernel(monkeypatch):
    """``lane_loads`` (and the switch) compile the kernel with ``LANE_LOADS``: the bitwise tests above
    would also pass if it were dropped on the way."""
    seen = _spy(monkeypatch, _sp, "_lti_single_pass_kernel")
    monkeypatch.delenv("SSM_LFILTER_LANE_LOADS", raising=False)
    x = torch.tensor(RNG.standard_normal((2, 40)), dtype=torch.float32)
    b, a, h = torch.tensor([[0.3, 0.2]]), torch.tensor([[-0.5, 0.1]]), x.new_zeros(2, 0)
    kw = dict(block_size=8, lanes=2, window_tiles=2, single_pass=True)
    kern.lti(x, b, a, h, lane_loads=True, **kw)
    kern.lti(x, b, a, h, **kw)
    monkeypatch.setenv("SSM_LFILTER_LANE_LOADS", "1")
    kern.lti(x.double(), b.double(), a.double(), h.double(), **kw)
    kern.sos(x, b[:, None], a[:, None], block_size=8, lanes=2, window_tiles=2, single_pass=True)
    assert seen == [(True, 2), (False, 2), (True, 1), (True, 2)]


@pytest.mark.gpu
@pytest.mark.parametrize("R,T,N,S", [(32, 1 << 20, 2, 1), (1, 1 << 24, 2, 1), (32, 1 << 20, 4, 1),
                                     (4096, 4096, 1, 1), (32, (1 << 20) + 17, 2, 8)])
def test_gpu_lane_loads_match(R, T, N, S):
    """At real sizes on a GPU, compiled (16-byte vectors, the register caps): the same bits as the
    coalesced tile, the cascade of 8 biquads and a row that ends inside a tile included."""
    x = torch.randn(R, T, device="cuda")
    a1 = torch.tensor(poles_denominator(N, 0.99), dtype=torch.float32, device="cuda")
    if S == 1:
        b, a, head = torch.full((1, N + 1), 0.2, device="cuda"), a1[None], x.new_zeros(R, 0)
        y = kern.lti(x, b, a, head, lane_loads=True)
        assert torch.equal(y, kern.lti(x, b, a, head, lane_loads=False))
    else:
        b, a = torch.full((1, S, N + 1), 0.2, device="cuda"), a1.expand(1, S, N).contiguous()
        y = kern.sos(x, b, a, lane_loads=True)
        assert torch.equal(y, kern.sos(x, b, a, lane_loads=False))
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("M,N,K,C,lanes,W,T,shared,need_x,dtype", [
    (2, 2, 0, 8, 2, 2, 101, True, True, torch.float32),
    (1, 3, 2, 4, 4, 2, 203, False, True, torch.float32),  # a lane is one vector
    (4, 4, 3, 16, 2, 4, 150, True, False, torch.float64),
    (0, 1, 0, 2, 4, 2, 1, True, True, torch.float32),  # one sample
])
def test_adjoint_bitwise_equal(M, N, K, C, lanes, W, T, shared, need_x, dtype):
    """The one-launch LTI backward with the g, x, y tiles loaded and dx stored lane by lane: every
    output the same bits (dx, db, da, dhead), rows ending inside a tile included."""
    x, b, a, head = single_pass_case(RNG, M, N, K, T, shared, dtype)
    y = kern.lti(x, b, a, head, single_pass=True)
    g = torch.tensor(RNG.standard_normal(x.shape), dtype=dtype)
    kw = dict(block_size=C, lanes=lanes, window_tiles=W)
    got = kern.lti_adjoint(g, x, y, b, a, K, need_x, M + 1, N, lane_loads=True, **kw)
    want = kern.lti_adjoint(g, x, y, b, a, K, need_x, M + 1, N, lane_loads=False, **kw)
    _assert_same([t for t in got if t is not None], [t for t in want if t is not None])


def test_cascade_adjoint_bitwise_equal():
    """The cascade's backward (its recompute and its adjoint launch) lane by lane: the same bits."""
    x, b, a, head = cascade_case(RNG, 2, 90, 2, 3, True, torch.float32)
    g = torch.tensor(RNG.standard_normal(x.shape), dtype=torch.float32)
    g_ends = torch.tensor(RNG.standard_normal((3, 2, 2)), dtype=torch.float32)
    kw = dict(head=head, g_ends=g_ends, block_size=8, lanes=2, window_tiles=2)
    got = kern.sos_adjoint(g, x, b, a, True, 3, 2, lane_loads=True, **kw)
    _assert_same(got, kern.sos_adjoint(g, x, b, a, True, 3, 2, lane_loads=False, **kw))


@pytest.mark.gpu
@pytest.mark.parametrize("R,T,N", [(32, 1 << 20, 2), (32, (1 << 20) + 17, 4), (1, 1 << 24, 2)])
def test_gpu_lane_loads_backward_match(R, T, N):
    """The one-launch LTI backward at real sizes, compiled: the same bits as the coalesced tiles."""
    x, g = torch.randn(R, T, device="cuda"), torch.randn(R, T, device="cuda")
    b = torch.full((1, N + 1), 0.2, device="cuda")
    a = torch.tensor(poles_denominator(N, 0.99), dtype=torch.float32, device="cuda")[None]
    y = kern.lti(x, b, a, x.new_zeros(R, 0))
    got = kern.lti_adjoint(g, x, y, b, a, 0, True, N + 1, N, lane_loads=True)
    want = kern.lti_adjoint(g, x, y, b, a, 0, True, N + 1, N, lane_loads=False)
    _assert_same(got[:3], want[:3])


def test_the_flag_reaches_the_adjoint_kernel(monkeypatch):
    import importlib

    _adj = importlib.import_module("ssm_lfilter.kernels.lti_adjoint")  # the package exports the function
    seen = _spy(monkeypatch, _adj, "_lti_adjoint_kernel")
    monkeypatch.delenv("SSM_LFILTER_LANE_LOADS", raising=False)
    x, b, a, head = single_pass_case(RNG, 2, 2, 0, 40, True, torch.float64)
    kw = dict(block_size=8, lanes=2, window_tiles=2)
    kern.lti_adjoint(x, x, x, b, a, 0, True, 3, 2, lane_loads=True, **kw)
    kern.lti_adjoint(x, x, x, b, a, 0, True, 3, 2, **kw)
    assert seen == [(True, 1), (False, 1)]


@pytest.mark.parametrize("N,T,dtype,shared", [(1, 300, torch.float32, False), (2, 203, torch.float32, True),
                                               (2, 1, torch.float32, False), (2, 160, torch.float64, False),
                                               (4, 97, torch.float32, False)])
def test_time_varying_bitwise_equal(N, T, dtype, shared):
    """The time-varying single pass with ``u``, ``a`` and ``y`` moved lane by lane (orders 1-2; order 4
    runs the coalesced tiles either way): the same bits, rows ending inside a tile included."""
    u = torch.tensor(RNG.standard_normal((3, T)), dtype=dtype)
    a = torch.tensor(0.3 * RNG.standard_normal((1 if shared else 3, T, N)), dtype=dtype)
    kw = dict(single_pass=True, block_size=8, lanes=2, window_tiles=2)
    _assert_same([kern.time_varying(u, a, lane_loads=True, **kw)], [kern.time_varying(u, a, lane_loads=False, **kw)])


def test_time_varying_takes_lane_loads_where_they_apply(monkeypatch):
    """Orders 1-2 with unit-stride rows compile with ``LANE_LOADS``; order 4, a strided ``u`` and the
    backward do not."""
    import importlib

    _tv = importlib.import_module("ssm_lfilter.kernels.time_varying")
    seen = _spy(monkeypatch, _tv, "tv_single_pass_kernel")
    u = torch.tensor(RNG.standard_normal((2, 64)), dtype=torch.float32)
    a2, a4 = 0.3 * torch.randn(2, 64, 2), 0.1 * torch.randn(2, 64, 4)
    kw = dict(single_pass=True, block_size=8, lanes=2, window_tiles=2, lane_loads=True)
    kern.time_varying(u, a2, **kw)
    kern.time_varying(u, a4, **kw)
    kern.time_varying(torch.randn(64, 2).t(), a2, **kw)  # u with time stride 2
    monkeypatch.setenv("SSM_LFILTER_LANE_LOADS", "1")
    kern.time_varying_adjoint(u, a2, u, True, single_pass=True, block_size=8, lanes=2, window_tiles=2)
    assert [flag for flag, _ in seen] == [True, False, False, False]


@pytest.mark.gpu
@pytest.mark.parametrize("R,T,N", [(8, 1 << 20, 2), (1, (1 << 24) + 17, 2), (4096, 4096, 1)])
def test_gpu_time_varying_lane_loads_match(R, T, N):
    """The time-varying single pass at real sizes, compiled: the same bits lane by lane."""
    u = torch.randn(R, T, device="cuda")
    a = 0.5 * torch.rand(R, T, N, device="cuda") / N
    y = kern.time_varying(u, a, lane_loads=True)
    assert torch.equal(y, kern.time_varying(u, a, lane_loads=False))
    assert torch.isfinite(y).all()
