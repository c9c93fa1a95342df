"""The persistent launch of the single-pass LTI forward (``kernels/lti_single_pass.py``, ``persistent=``).

A persistent launch runs fewer programs than tiles; each takes tickets in a loop and loads the tile of
its next ticket before it works on the current one. Every tile does the same arithmetic as in the one
program a tile launch, so the outputs are the same bits: that is what these tests check, on the forward
(shared and per-row coefficients, heads, reverse, orders 1-4, a power table or none), the cascade with
every section's head and last outputs, and the section inputs the cascade's backward recomputes, with
tiles small enough that a short signal crosses many tiles and window links. Under the interpreter the
programs run one after another, so the first takes every ticket (its last prefetch takes a ticket past
the end and loads the last tile again, unused) and the others find none left and exit at once; a grid
of three programs is forced here. On a GPU the GPU-tier test checks the same equality at real sizes,
where programs interleave.
"""
import numpy as np
import pytest
import torch

from helpers import (assert_scipy_lti, cascade_case, cascade_outputs, poles_denominator, single_pass_case,
                     spy_launches)
from ssm_lfilter import kernels as kern
from ssm_lfilter.kernels import _variants
from ssm_lfilter.kernels import lti_single_pass as _sp

RNG = np.random.default_rng(2026)


@pytest.fixture
def programs(monkeypatch):
    """Three programs a persistent launch (the interpreter's default is 2)."""
    monkeypatch.setattr(_sp, "persistent_programs", lambda device: 3)
    return 3


def _assert_same(got, want):
    for u, v in zip(got, want):
        assert torch.equal(u, v), f"persistent and one program a tile differ: max {(u - v).abs().max().item():.3e}"


@pytest.mark.parametrize("M,N,K,C,lanes,W,T,shared,reverse,table,dtype", [
    (1, 1, 0, 4, 2, 2, 101, True, False, None, torch.float64),
    (2, 2, 3, 4, 2, 2, 203, False, False, None, torch.float32),
    (2, 2, 0, 2, 4, 4, 129, True, True, False, torch.float64),  # 129 = 16 tiles of 8, plus 1
    (3, 3, 2, 4, 2, 1, 95, False, False, True, torch.float64),
    (4, 4, 5, 2, 2, 4, 97, True, True, True, torch.float64),
    (0, 4, 0, 8, 2, 2, 160, True, False, None, torch.float32),  # 160: a whole number of tiles
])
def test_forward_bitwise_equal_and_scipy(programs, M, N, K, C, lanes, W, T, shared, reverse, table, dtype):
    x, b, a, head = single_pass_case(RNG, M, N, K, T, shared, dtype, angle=0.4, step=0.8, real=1.0)
    kw = dict(block_size=C, lanes=lanes, window_tiles=W, reverse=reverse, power_table=table)
    y = kern.lti(x, b, a, head, persistent=True, **kw)
    _assert_same([y], [kern.lti(x, b, a, head, persistent=False, **kw)])
    assert_scipy_lti(y, x, b, a, head, reverse)


@pytest.mark.parametrize("N,S,shared", [(2, 3, True), (4, 2, False)])
def test_cascade_heads_ends_and_sections_bitwise_equal(programs, N, S, shared):
    """The cascade with every section's head and last outputs, and the section inputs (the stack the
    cascade's backward recomputes), persistent or not."""
    x, b, a, head = cascade_case(RNG, 2, 90, N, S, shared, torch.float64, angle=0.4, step=0.8, real=1.0)
    tiles = (4, 2, 2)  # C, lanes, W: 12 tiles of 8 samples a row
    _assert_same(cascade_outputs(x, b, a, head, *tiles, persistent=True),
                 cascade_outputs(x, b, a, head, *tiles, persistent=False))


def test_switch_and_grid(monkeypatch):
    """The argument decides, else ``SSM_LFILTER_PERSISTENT`` (off unless "1"); a persistent launch runs
    ``persistent_programs`` programs (never more than tiles), the default one program a tile."""
    assert not _variants.persistent(None)
    monkeypatch.setenv("SSM_LFILTER_PERSISTENT", "1")
    assert _variants.persistent(None) and not _variants.persistent(False)
    monkeypatch.setenv("SSM_LFILTER_PERSISTENT", "0")
    assert not _variants.persistent(None) and _variants.persistent(True)
    assert _sp.persistent_programs(torch.device("cpu")) == 2
    # the register cap that lets 8 two-warp programs an SM be resident, at orders 1-2 only
    assert _sp.persistent_max_registers(2, 2) == 128 and _sp.persistent_max_registers(1, 1) == 255
    assert _sp.persistent_max_registers(4, 2) is None
    # without the power table order 2 and the cascades spilled at 128; order 1 never has one
    assert _sp.persistent_max_registers(2, 2, table=False) is None
    assert _sp.persistent_max_registers(1, 2, table=False) == 128


def test_register_caps_only_where_verified(monkeypatch):
    """The register caps of the default launches apply to the shapes compiled without a spill
    (``tests/test_kernel_resources.py``), and ``SSM_LFILTER_REGISTER_CAP=0`` or the argument turns
    them off."""
    import importlib

    _adj = importlib.import_module("ssm_lfilter.kernels.lti_adjoint")  # the package exports the functions
    _tv = importlib.import_module("ssm_lfilter.kernels.time_varying")

    f32, f64 = torch.float32, torch.float64
    monkeypatch.delenv("SSM_LFILTER_REGISTER_CAP", raising=False)
    assert _sp.forward_max_registers(1, 4, 32, 64, f32, True) == 144
    assert _sp.forward_max_registers(1, 4, 32, 64, f32, False) is None  # a head, reversed, or stores
    assert _sp.forward_max_registers(1, 2, 32, 64, f32, True) is None
    assert _sp.forward_max_registers(1, 4, 32, 64, f64, True) is None
    # without the power table (rows under 4 tiles) the orders 3-4 builds spilled under the caps
    assert _sp.forward_max_registers(1, 4, 32, 64, f32, True, table=False) is None
    assert _adj.max_registers(1, 4, 16, 64, f32, table=False) is None
    # nor with a look-back window over 32 tiles (fewer than 32 rows)
    assert _sp.forward_max_registers(1, 4, 32, 64, f32, True, W=64) is None
    assert _adj.max_registers(1, 4, 16, 64, f32, W=128) is None
    assert _adj.max_registers(1, 4, 16, 64, f32) == 128 and _adj.max_registers(8, 2, 16, 64, f32) is None
    assert _tv.adjoint_max_registers(2, f32, 16, 128) == 128 and _tv.adjoint_max_registers(4, f64, 8, 128) is None
    _tvs = importlib.import_module("ssm_lfilter.kernels.tv_sos")
    assert _tvs.recompute_max_registers(8, 2, 8, 128, f32, True) == 128
    assert _tvs.recompute_max_registers(1, 2, 8, 128, f32, True) is None  # one section: 70 uncapped
    assert _tvs.recompute_max_registers(8, 2, 8, 128, f32, False) is None  # with heads: not compiled
    assert _adj.max_registers(1, 4, 16, 64, f32, requested=False) is None
    # an int is a cap of its own, on any launch (the variant table's 136, spill-free under triton 3.6)
    assert _adj.max_registers(1, 4, 16, 64, f32, requested=136) == 136
    assert _adj.max_registers(1, 2, 16, 64, f64, requested=136, table=False, W=128) == 136
    monkeypatch.setenv("SSM_LFILTER_REGISTER_CAP", "0")
    assert _sp.forward_max_registers(1, 4, 32, 64, f32, True) is None
    assert _tv.adjoint_max_registers(2, f32, 16, 128) is None
    assert _adj.max_registers(1, 4, 16, 64, f32, requested=True) == 128
    assert _adj.max_registers(1, 4, 16, 64, f32, requested=136) == 136

    grids = spy_launches(monkeypatch, _sp, "_lti_single_pass_kernel", lambda grid, kw: grid)
    x = torch.tensor(RNG.standard_normal((2, 100)))
    b, a = torch.tensor([[0.3, 0.2]], dtype=torch.float64), torch.tensor([[-0.9]], dtype=torch.float64)
    y0 = kern.lti(x, b, a, x.new_zeros(2, 0), block_size=4, lanes=2)  # 13 tiles a row
    y1 = kern.lti(x, b, a, x.new_zeros(2, 0), block_size=4, lanes=2, persistent=True)
    y2 = kern.lti(x[:1, :5], b, a, x.new_zeros(1, 0), block_size=4, lanes=2, persistent=True)  # one tile
    assert grids == [(26,), (2,), (1,)]
    _assert_same([y1, y2], [y0, y0[:1, :5]])


@pytest.mark.gpu
@pytest.mark.parametrize("R,T,N", [(32, 1 << 20, 2), (1, 1 << 24, 2), (32, 1 << 20, 4), (4096, 4096, 1)])
def test_gpu_persistent_matches(R, T, N):
    """At real sizes on a GPU, where the programs interleave: the same bits as one program a tile, and
    on a second run."""
    x = torch.randn(R, T, device="cuda")
    b = torch.full((1, N + 1), 0.2, device="cuda")
    a = torch.tensor(poles_denominator(N, 0.99, angle=0.4, step=0.8, real=1.0), dtype=torch.float32, device="cuda")[None]
    head = x.new_zeros(R, 0)
    y = kern.lti(x, b, a, head, persistent=True)
    assert torch.equal(y, kern.lti(x, b, a, head, persistent=False))
    assert torch.equal(y, kern.lti(x, b, a, head, persistent=True))
