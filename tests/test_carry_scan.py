"""The CPU engine's carry scans against a sequential loop. ``scan_constant``: both ways a level
runs its groups (triangular solves for small scans, GEMMs with a matrix of powers for large ones),
lengths around the group sizes and several levels deep, a matrix per row, complex states, and a
"hard mode" with decay near 1, where a carry bug shows as a drift over many blocks.
``scan_varying`` (a transfer per block): doubling up to 64 blocks, blocked beyond, the same way."""
import math

import pytest
import torch

from ssm_lfilter.engine import scan


def _loop(M, e):
    """``S[c] = M S[c-1] + e[c]`` one block at a time, in float64 (complex128)."""
    hi = torch.complex128 if (M.is_complex() or e.is_complex()) else torch.float64
    M, e = M.to(hi), e.to(hi)
    S = torch.zeros_like(e)
    s = e.new_zeros(e.shape[0], e.shape[2])
    for c in range(e.shape[1]):
        s = torch.einsum("rij,rj->ri", M.expand(e.shape[0], -1, -1), s) + e[:, c]
        S[:, c] = s
    return S


def _transfer(Ra, N, radius, dtype, seed):
    """``Ra`` transfers with spectral norm ``radius``: orthogonal (or unitary) matrices, scaled, so
    every power keeps the same norm and nothing decays faster than ``radius`` a block."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(Ra, N, N, generator=g, dtype=torch.float64)
    if dtype.is_complex:
        z = torch.complex(z, torch.randn(Ra, N, N, generator=g, dtype=torch.float64))
    q, _ = torch.linalg.qr(z)
    return (radius * q).to(dtype)


@pytest.fixture(params=["solves", "powers"])
def level(request, monkeypatch):
    """Force every level through one of the two ways."""
    monkeypatch.setattr(scan, "_level_kind", lambda *args: request.param)
    return request.param


@pytest.mark.parametrize("N", [1, 2, 3, 16])
@pytest.mark.parametrize("C", [0, 1, 2, 3, 31, 32, 33, 129, 1000])
def test_matches_the_loop(level, N, C):
    R = 3
    M = _transfer(1, N, 0.97, torch.float64, seed=N * 1000 + C)
    e = torch.randn(R, C, N, generator=torch.Generator().manual_seed(C), dtype=torch.float64)
    S = scan.scan_constant(M, e)
    assert S.shape == e.shape and S.dtype == e.dtype
    torch.testing.assert_close(S, _loop(M, e), rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64, torch.complex128])
@pytest.mark.parametrize("Ra", [1, 4])
def test_dtypes_and_a_matrix_per_row(level, dtype, Ra):
    R, C, N = 4, 77, 2
    M = _transfer(Ra, N, 0.9, dtype, seed=Ra)
    e = torch.randn(R, C, N, generator=torch.Generator().manual_seed(7), dtype=torch.float64).to(dtype)
    S = scan.scan_constant(M, e)
    assert S.dtype == dtype
    tol = 1e-5 if dtype in (torch.float32, torch.complex64) else 1e-12
    ref = _loop(M, e)
    assert float((S.to(ref.dtype) - ref).abs().max() / ref.abs().max()) < tol


@pytest.mark.parametrize("C", [4097, 20000])
def test_hard_mode_decay_near_one(level, C):
    """Radius 0.9999 a block: a carry stays alive for thousands of blocks, so a wrong group
    boundary, a missed level or a power off by one shows as an error far above rounding."""
    M = _transfer(1, 2, 0.9999, torch.float64, seed=C)
    e = torch.randn(2, C, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ref = _loop(M, e)
    S = scan.scan_constant(M, e)
    assert float((S - ref).abs().max() / ref.abs().max()) < 1e-10


def test_levels_nest(monkeypatch):
    """A long scan takes several levels, each a narrow group: check the recursion is reached and
    still exact (groups of 2 blocks: log2(C) levels)."""
    monkeypatch.setattr(scan, "_LEVEL_WIDTH", 4)
    depth = []
    real = scan.scan_constant

    def counting(M, e):
        depth.append(e.shape[1])
        return real(M, e)

    monkeypatch.setattr(scan, "scan_constant", counting)
    M = _transfer(1, 2, 0.99, torch.float64, seed=3)
    e = torch.randn(1, 300, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    S = counting(M, e)
    assert len(depth) == math.ceil(math.log2(300))
    torch.testing.assert_close(S, _loop(M, e), rtol=1e-11, atol=1e-11)


def test_unstable_transfer_overflows_forward_only():
    """Growth overflows the late blocks, as a direct evaluation does; the early ones stay finite
    (no zero times infinity from the entries above a group's diagonal)."""
    M = _transfer(1, 2, 3.0, torch.float64, seed=5)
    e = torch.randn(1, 1000, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    for kind in ("solves", "powers"):
        scan._level_kind, saved = (lambda *args: kind), scan._level_kind
        try:
            S = scan.scan_constant(M, e)
        finally:
            scan._level_kind = saved
        assert torch.isfinite(S[:, :100]).all()
        assert not torch.isfinite(S[:, -1]).all()
        torch.testing.assert_close(S[:, :100], _loop(M, e[:, :100]), rtol=1e-9, atol=0)


def test_level_kind():
    """float64 always solves (accuracy: the powers' sums cancel on high-order direct forms); float32
    solves small scans and multiplies large ones by powers (speed)."""
    assert scan._level_kind(8, 32768, 2, torch.float64) == "solves"
    assert scan._level_kind(8, 32768, 2, torch.complex128) == "solves"
    assert scan._level_kind(8, 32768, 2, torch.float32) == "powers"
    assert scan._level_kind(1, 128, 2, torch.float32) == "solves"


def _loop_varying(M, e):
    """``S[c] = M[c] S[c-1] + e[c]`` one block at a time, in float64 (complex128)."""
    hi = torch.complex128 if (M.is_complex() or e.is_complex()) else torch.float64
    M, e = M.to(hi).expand(e.shape[0], -1, -1, -1), e.to(hi)
    S = torch.zeros_like(e)
    s = e.new_zeros(e.shape[0], e.shape[2])
    for c in range(e.shape[1]):
        s = torch.einsum("rij,rj->ri", M[:, c], s) + e[:, c]
        S[:, c] = s
    return S


def _transfers(Ra, C, N, radius, dtype, seed):
    """``(Ra, C, N, N)``: a different orthogonal (unitary) matrix a block, scaled to ``radius``."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(Ra, C, N, N, generator=g, dtype=torch.float64)
    if dtype.is_complex:
        z = torch.complex(z, torch.randn(Ra, C, N, N, generator=g, dtype=torch.float64))
    q, _ = torch.linalg.qr(z)
    return (radius * q).to(dtype)


@pytest.mark.parametrize("N", [1, 2, 5])
@pytest.mark.parametrize("C", [0, 1, 2, 7, 64, 65, 71, 512, 1000])
@pytest.mark.parametrize("Ra", [1, 3])
def test_varying_matches_the_loop(N, C, Ra):
    M = _transfers(Ra, C, N, 0.98, torch.float64, seed=N * 100 + C)
    e = torch.randn(3, C, N, generator=torch.Generator().manual_seed(C), dtype=torch.float64)
    S = scan.scan_varying(M, e)
    assert S.shape == e.shape and S.dtype == e.dtype
    torch.testing.assert_close(S, _loop_varying(M, e), rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("dtype", [torch.complex128, torch.float32])
def test_varying_dtypes(dtype):
    M = _transfers(2, 300, 2, 0.95, dtype, seed=11)
    e = torch.randn(2, 300, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64).to(dtype)
    S = scan.scan_varying(M, e)
    ref = _loop_varying(M, e)
    assert S.dtype == dtype
    assert float((S.to(ref.dtype) - ref).abs().max() / ref.abs().max()) < (1e-5 if dtype == torch.float32 else 1e-12)


def test_varying_hard_mode_decay_near_one():
    """Radius 0.9999 a block over 5000 blocks, three levels of groups: a wrong group boundary, a
    missed product or an initial state one group off drifts far above rounding."""
    M = _transfers(1, 5000, 2, 0.9999, torch.float64, seed=17)
    e = torch.randn(2, 5000, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    ref = _loop_varying(M, e)
    S = scan.scan_varying(M, e)
    assert float((S - ref).abs().max() / ref.abs().max()) < 1e-10
