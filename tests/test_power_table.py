"""The single-pass LTI kernels' power table (``kernels/lti_single_pass.py``, ``power_table_setup``).

A row's first tile stores the companion matrix powers ``P^(2^k)`` and ``L^(2^k)`` that every tile
used to square in registers; later tiles load them (orders 3-4: before their lane scan, after waiting
for the aggregate flag of the tile ``W`` before them; every order: in the look-back window and the
lanes' start states). The table holds the same squarings in the same order, so the results are
bitwise those of the in-register path: that is what these tests check, on the forward, the cascade
(with heads and ends), the adjoint and the cascade's adjoint, with tiles small enough that a short
signal crosses many tiles and window links. Under the interpreter programs run in ticket order; on a
GPU the GPU-tier test checks the same equality at real sizes.
"""
import importlib

import numpy as np
import pytest
import torch

from helpers import poles_denominator, scipy_lti
from ssm_lfilter import kernels as kern
from ssm_lfilter.kernels import lti_single_pass as _sp

# the module, not the launcher of the same name that ssm_lfilter.kernels exports
_adjoint_module = importlib.import_module("ssm_lfilter.kernels.lti_adjoint")

RNG = np.random.default_rng(77)


def _filters(rows: int, M: int, N: int, dtype):
    b = torch.tensor(RNG.standard_normal((rows, M + 1)), dtype=dtype)
    a = torch.tensor(np.stack([poles_denominator(N, 0.8 + 0.15 * r / max(rows, 1)) for r in range(rows)]), dtype=dtype)
    return b, a


def _both(fn):
    """``fn(power_table)`` with the table and without it."""
    return fn(True), fn(False)


def _assert_same(with_table, without):
    for u, v in zip(with_table, without):
        if u is None:
            assert v is None
            continue
        assert torch.equal(u, v), f"table and no table differ: max {(u - v).abs().max().item():.3e}"


def test_setup_applies_from_order_2_and_four_tiles(monkeypatch):
    a = torch.zeros(1, 1, 2, dtype=torch.float64)
    assert _sp.power_table_setup(a, 1, 2, 4, 100, 64, 32)[0] is None  # off unless asked for (slower on an H200)
    monkeypatch.setenv("SSM_LFILTER_POWER_TABLE", "1")
    pw, s_ps, s_pr = _sp.power_table_setup(a, 1, 2, 4, 4, 64, 32)
    assert pw.shape == (1, 1, 6 + 5 + 1, 16) and pw.dtype == torch.float64 and s_pr == 0
    per_row = _sp.power_table_setup(torch.zeros(3, 2, 4), 2, 4, 4, 8, 8, 4)
    assert per_row[0].shape == (2, 3, 3 + 2 + 1, 16) and per_row[1] == 3 * 6 * 16 and per_row[2] == 6 * 16
    assert _sp.power_table_setup(a, 1, 1, 4, 100, 64, 32)[0] is None  # order 1: nothing to square
    assert _sp.power_table_setup(a, 1, 2, 4, 3, 64, 32)[0] is None  # under 4 tiles a row
    assert _sp.power_table_setup(a, 1, 2, 4, 100, 64, 32, False)[0] is None
    monkeypatch.setenv("SSM_LFILTER_POWER_TABLE", "0")
    assert _sp.power_table_setup(a, 1, 2, 4, 100, 64, 32)[0] is None
    assert _sp.power_table_setup(a, 1, 2, 4, 100, 64, 32, True)[0] is not None  # the argument decides first


@pytest.mark.parametrize("M,N,K,C,lanes,W,T,shared,reverse,dtype", [
    (2, 2, 0, 4, 2, 2, 203, True, False, torch.float64),
    (2, 2, 3, 2, 4, 4, 257, False, False, torch.float32),
    (1, 3, 0, 4, 2, 2, 120, True, False, torch.float64),
    (4, 4, 5, 2, 2, 4, 97, False, True, torch.float64),
    (4, 4, 0, 8, 2, 2, 333, True, False, torch.float32),
    (0, 4, 2, 4, 4, 2, 250, True, True, torch.float64),
    (2, 4, 0, 2, 2, 1, 45, False, False, torch.float64),  # a window of one tile: L itself from the table
])
def test_forward_bitwise_equal_and_scipy(M, N, K, C, lanes, W, T, shared, reverse, dtype):
    R = 3
    b, a = _filters(1 if shared else R, M, N, dtype)
    x = torch.tensor(RNG.standard_normal((R, T)), dtype=dtype)
    head = torch.tensor(RNG.standard_normal((R, K)), dtype=dtype)
    y, y0 = _both(lambda pt: kern.lti(x, b, a, head, block_size=C, lanes=lanes, window_tiles=W, reverse=reverse,
                                   power_table=pt))
    _assert_same([y], [y0])
    ref = scipy_lti(x, b, a, head, reverse)
    got = y.double().numpy()
    tol = 1e-12 if dtype == torch.float64 else 2e-6
    assert np.abs(got - ref).max() <= tol * max(1.0, np.abs(ref).max())


def test_every_read_entry_is_written_first(monkeypatch):
    """A table filled with NaN before its launch gives the same output: the table launch writes every
    entry a tile loads. The stored powers are those of the companion matrix."""
    tables = []
    original = _sp.fill_power_table

    def nan_first(a, pw, *args):
        pw.fill_(float("nan"))
        original(a, pw, *args)
        tables.append(pw)

    monkeypatch.setattr(_sp, "fill_power_table", nan_first)
    x = torch.tensor(RNG.standard_normal((2, 300)))
    b, a = _filters(1, 4, 4, torch.float64)
    C, lanes, W = 4, 2, 4
    y = kern.lti(x, b, a, x.new_zeros(2, 0), block_size=C, lanes=lanes, window_tiles=W, power_table=True)
    y0 = kern.lti(x, b, a, x.new_zeros(2, 0), block_size=C, lanes=lanes, window_tiles=W, power_table=False)
    _assert_same([y], [y0])
    (pw,) = tables
    A = np.zeros((4, 4))
    A[0] = -a[0].numpy()
    A[1:, :3] = np.eye(3)
    P = np.linalg.matrix_power(A, C)
    n_lane = lanes.bit_length() - 1
    expected = [np.linalg.matrix_power(P, 2 ** k) for k in range(n_lane)]
    L = np.linalg.matrix_power(P, lanes)
    expected += [np.linalg.matrix_power(L, 2 ** k) for k in range(W.bit_length())]
    got = pw[0, 0].reshape(-1, 4, 4).numpy()
    assert got.shape[0] == len(expected)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("N,S,shared,zi", [(2, 3, True, True), (2, 2, False, False), (4, 2, True, True)])
def test_cascade_and_adjoints_bitwise_equal(N, S, shared, zi):
    """The cascade (heads and ends), its adjoint and the one-filter adjoint, with and without the table."""
    R, T, C, lanes, W = 2, 90, 4, 2, 2  # 12 tiles of 8 samples
    dt = torch.float64
    Rc = 1 if shared else R
    b = torch.tensor(RNG.standard_normal((Rc, S, N + 1)), dtype=dt)
    a = torch.tensor(np.stack([np.stack([poles_denominator(N, 0.7 + 0.1 * s) for s in range(S)])] * Rc), dtype=dt)
    x = torch.tensor(RNG.standard_normal((R, T)), dtype=dt)
    head = torch.tensor(RNG.standard_normal((R, S, N)), dtype=dt) if zi else None
    tiles = dict(block_size=C, lanes=lanes, window_tiles=W)

    def cascade(pt):
        ends = torch.empty(S, R, 2, dtype=dt)
        return kern.sos(x, b, a, head=head, ends=ends, power_table=pt, **tiles), ends

    _assert_same(*_both(cascade))
    g = torch.tensor(RNG.standard_normal((R, T)), dtype=dt)
    g_ends = torch.tensor(RNG.standard_normal((S, R, 2)), dtype=dt) if zi else None
    _assert_same(*_both(lambda pt: kern.sos_adjoint(g, x, b, a, True, N + 1, N, head=head, g_ends=g_ends,
                                                 power_table=pt, **tiles)))
    y = kern.lti(x, b[:, 0], a[:, 0], x.new_zeros(R, 0))
    _assert_same(*_both(lambda pt: kern.lti_adjoint(g, x, y, b[:, 0], a[:, 0], 3, True, N + 1, N, power_table=pt,
                                                 **tiles)))


def test_adjoint_launch_uses_the_table(monkeypatch):
    """The adjoint kernel takes the table too when asked (the switch reaches it)."""
    seen = []
    original = _adjoint_module.power_table_setup

    def spy(*args, **kwargs):
        out = original(*args, **kwargs)
        seen.append(out[0] is not None)
        return out

    monkeypatch.setattr(_adjoint_module, "power_table_setup", spy)
    x = torch.tensor(RNG.standard_normal((1, 200)))
    b, a = _filters(1, 2, 2, torch.float64)
    y = kern.lti(x, b, a, x.new_zeros(1, 0))
    for pt in (True, None, False):
        kern.lti_adjoint(x, x, y, b, a, 0, True, 3, 2, block_size=4, lanes=2, window_tiles=2, power_table=pt)
    assert seen == [True, False, False]  # opt-in: the default squares in every tile


@pytest.mark.gpu
@pytest.mark.parametrize("R,T,N", [(32, 1 << 20, 2), (32, 1 << 20, 4), (1, 1 << 24, 4), (64, 4096 * 8, 3)])
def test_gpu_table_matches_registers(R, T, N):
    """At real sizes on a GPU: the same outputs with and without the table (the same squarings; the
    float32 outputs may differ by rounding only if the compiler contracts them differently), and the
    same bits on a second run."""
    x = torch.randn(R, T, device="cuda")
    b = torch.full((1, N + 1), 0.2, device="cuda")
    a = torch.tensor(poles_denominator(N, 0.99), dtype=torch.float32, device="cuda")[None]
    head = x.new_zeros(R, 0)
    y, y0 = _both(lambda pt: kern.lti(x, b, a, head, power_table=pt))
    torch.testing.assert_close(y, y0, rtol=1e-6, atol=1e-6 * y0.abs().max().item())
    assert torch.equal(y, kern.lti(x, b, a, head, power_table=True))
    g = torch.randn_like(x)
    dx, db, da, _ = kern.lti_adjoint(g, x, y, b, a, 0, True, N + 1, N, power_table=True)
    dx0, db0, da0, _ = kern.lti_adjoint(g, x, y, b, a, 0, True, N + 1, N, power_table=False)
    torch.testing.assert_close(dx, dx0, rtol=1e-6, atol=1e-6 * dx0.abs().max().item())
    torch.testing.assert_close(db, db0, rtol=1e-5, atol=1e-5 * db0.abs().max().item())
    torch.testing.assert_close(da, da0, rtol=1e-5, atol=1e-5 * da0.abs().max().item())
