"""The torch engine's two paths, LTI and time-varying, agree with each other and with the sequential
reference: short signals solved whole (FIR, then one triangular solve: engine/_solve.py) and the
blockwise paths (block responses, carry scans, corrections), which the rest of the suite now reaches
mostly through long signals and the tiny-block fixture."""
import numpy as np
import pytest
import torch

import ssm_lfilter.reference as ref
from ssm_lfilter.engine import lti as engine
from ssm_lfilter.engine import time_varying as tv_engine
from tests.helpers import low_angle_resonator, stable_a

CASES = [(2, 2), (0, 3), (4, 1), (8, 8), (3, 16)]


def _filter(M, N, R, per_row, dtype, seed):
    rng = np.random.default_rng(seed)
    rows = R if per_row else 1
    a = torch.tensor(np.stack([stable_a(rng, N, radius=0.97) for _ in range(rows)]))  # (rows, N+1), a0 = 1
    b = torch.tensor(rng.standard_normal((rows, M + 1)))
    if dtype.is_complex:
        rot = torch.tensor(np.exp(1j * rng.uniform(0, 2 * np.pi, (rows, 1))))
        a = a * rot ** torch.arange(N + 1)  # poles rotated: a complex filter, still stable
        b = b.to(dtype) * (1 + 0.5j)
    return b.to(dtype), a.to(dtype)


@pytest.mark.parametrize("M,N", CASES)
@pytest.mark.parametrize("T", [1, 5, 33, 300])
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
@pytest.mark.parametrize("per_row,with_head", [(False, False), (True, True)])
def test_direct_and_blockwise_match_the_loop(M, N, T, dtype, per_row, with_head):
    R = 3
    b, a = _filter(M, N, R, per_row, dtype, seed=M * 100 + N * 10 + T)
    g = torch.Generator().manual_seed(T)
    x = torch.randn(R, T, generator=g, dtype=torch.float64).to(dtype)
    K = max(M, N)
    head = (torch.randn(R, K, generator=g, dtype=torch.float64).to(dtype) if with_head
            else torch.zeros(R, 0, dtype=dtype))
    assert engine._direct_fits(T, R, a.shape[0])
    y_direct = engine.lti(x, b, a[:, 1:], head)
    y_blocks = engine.lti(x, b, a[:, 1:], head, L=engine.block_size(T, K))  # an explicit L: blockwise
    y_ref, _ = ref.lfilter(b, a, x, head if with_head else None)
    scale = max(1.0, float(y_ref.abs().max()))
    torch.testing.assert_close(y_direct, y_ref, rtol=1e-10, atol=1e-10 * scale)
    torch.testing.assert_close(y_blocks, y_ref, rtol=1e-10, atol=1e-10 * scale)


def test_short_signals_take_the_direct_path_and_long_ones_the_blocks(monkeypatch):
    calls = []
    real = engine._direct
    monkeypatch.setattr(engine, "_direct", lambda *args: calls.append(args[0].shape) or real(*args))
    b, a = torch.tensor([[0.2, 0.4, 0.2]]), torch.tensor([[-0.6, 0.3]])
    engine.lti(torch.randn(2, 256), b, a, torch.zeros(2, 0))
    engine.lti(torch.randn(2, 5000), b, a, torch.zeros(2, 0))
    engine.lti(torch.randn(4096, 256), b, a, torch.zeros(4096, 0))  # many rows: the solve would cost more
    assert calls == [(2, 256)]


def test_direct_path_float32_is_computed_in_float64():
    """A resonator at radius 0.999 in float32: the work precision is float64, so the result is the
    float64 result rounded (not a float32 recurrence's 1e-5)."""
    r, th = 0.999, 0.05
    a = torch.tensor([[-2 * r * np.cos(th), r * r]])
    b = torch.tensor([[1.0, 0.0, -1.0]])
    x = torch.randn(1, 2000, generator=torch.Generator().manual_seed(0))
    y32 = engine.lti(x, b.float(), a.float(), torch.zeros(1, 0))
    y64 = engine.lti(x.double(), b.float().double(), a.float().double(), torch.zeros(1, 0, dtype=torch.float64))
    assert y32.dtype == torch.float32
    assert float((y32.double() - y64).abs().max() / y64.abs().max()) < 1e-6


@pytest.mark.parametrize("N", [1, 2, 5, 16])
@pytest.mark.parametrize("T", [1, 7, 40, 300])
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
@pytest.mark.parametrize("Ra", [1, 3])
def test_time_varying_direct_and_blockwise_match_the_loop(N, T, dtype, Ra):
    g = torch.Generator().manual_seed(N * 1000 + T)
    r = 0.5 + 0.45 * torch.rand(Ra, T, N, generator=g, dtype=torch.float64)  # |a_k| < 1/N-ish: stable
    a = (r / N * torch.sign(torch.randn(Ra, T, N, generator=g, dtype=torch.float64))).to(dtype)
    u = torch.randn(3, T, generator=g, dtype=torch.float64).to(dtype)
    assert tv_engine.direct_fits(T, 3, Ra)
    y_direct = tv_engine.allpole_tv(u, a)
    y_blocks = tv_engine.allpole_tv(u, a, L=tv_engine.block_size(T, N))
    a_full = torch.cat([torch.ones(Ra, T, 1, dtype=dtype), a], -1)
    y_ref, _ = ref.time_varying_lfilter(torch.ones(T, 1, dtype=dtype), a_full, u)
    scale = max(1.0, float(y_ref.abs().max()))
    torch.testing.assert_close(y_direct, y_ref, rtol=1e-10, atol=1e-10 * scale)
    torch.testing.assert_close(y_blocks, y_ref, rtol=1e-10, atol=1e-10 * scale)


def test_time_varying_non_finite_input_keeps_the_blocks():
    """A NaN in u takes the blockwise path (the solve would spread it through 0 * inf): scipy's
    forward-only propagation."""
    u = torch.randn(1, 50, dtype=torch.float64)
    u[0, 20] = float("inf")
    a = torch.full((1, 50, 2), 0.0, dtype=torch.float64)
    a[..., 1] = 0.5  # a1 = 0: y[21] = u[21] - 0 * y[20] is NaN in scipy too; y[:20] finite
    y = tv_engine.allpole_tv(u, a)
    assert torch.isfinite(y[0, :20]).all() and not torch.isfinite(y[0, 20])


@pytest.mark.parametrize("L", [None, 8])
def test_time_varying_blocks_hard_mode_float32(L):
    """Hard mode on the blockwise path (T > 512): poles drifting between radius 0.995 and 0.9995
    over 5000 samples, float32 carried through hundreds of blocks; the error stays at the level of
    a sequential float32 recurrence (the reference loop run in float32)."""
    T, R = 5000, 2
    g = torch.Generator().manual_seed(21)
    a = low_angle_resonator(T).expand(R, T, 2)  # (R, T, 2)
    u = torch.randn(R, T, generator=g, dtype=torch.float64)
    y32 = tv_engine.allpole_tv(u.float(), a.float(), L=L)
    a_full = torch.cat([torch.ones(R, T, 1, dtype=torch.float64), a.float().double()], -1)
    y64, _ = ref.time_varying_lfilter(torch.ones(T, 1, dtype=torch.float64), a_full, u.float().double())
    seq32, _ = ref.time_varying_lfilter(torch.ones(T, 1), a_full.float(), u.float())
    scale = float(y64.abs().max())
    err = float((y32.double() - y64).abs().max()) / scale
    err_seq = float((seq32.double() - y64).abs().max()) / scale
    assert err < max(2 * err_seq, 1e-6), (err, err_seq)
