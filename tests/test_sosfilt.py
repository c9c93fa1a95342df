"""sl.sosfilt against scipy.signal.sosfilt (float64 oracle): designs, shapes, axes, zi, batched sos,
dtypes and streaming."""
import numpy as np
import pytest
import scipy.signal as ss
import torch

import ssm_lfilter as sl
from helpers import assert_close_np, npy, t64


def random_sos(n_sections, rng, rmax=0.95, rmin=0.0):
    """Random stable sections (a0 = 1, as scipy requires), real and complex pole pairs."""
    rows = []
    for _ in range(n_sections):
        b = rng.standard_normal(3)
        if rng.random() < 0.5:
            p = rng.uniform(rmin, rmax) * np.exp(1j * rng.uniform(0.05, np.pi - 0.05))
            a = np.real(np.poly([p, np.conj(p)]))
        else:
            a = np.real(np.poly(rng.uniform(rmin, rmax, 2) * rng.choice([-1, 1], 2)))
        rows.append(np.concatenate([b, a]))
    return np.array(rows)


DESIGNS = {
    "butter4": lambda: ss.butter(4, 0.2, output="sos"),
    "cheby1_8": lambda: ss.cheby1(8, 1, 0.2, output="sos"),
    "ellip6_bp": lambda: ss.ellip(6, 0.5, 40, [0.2, 0.4], btype="band", output="sos"),
    "butter1": lambda: ss.butter(1, 0.3, output="sos"),
    "cheby2_10_hp": lambda: ss.cheby2(10, 40, 0.05, btype="high", output="sos"),
}


@pytest.mark.parametrize("design", sorted(DESIGNS))
def test_designs_match_scipy(design):
    sos = DESIGNS[design]()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 300))
    y = sl.sosfilt(t64(sos), t64(x))
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float64
    assert_close_np(y, ss.sosfilt(sos, x), 1e-9, design)


SHAPES_AXES = [((150,), -1), ((150,), 0), ((4, 150), -1), ((150, 4), 0), ((2, 150, 3), 1),
               ((2, 3, 150), -1), ((150, 2, 3), -3)]


@pytest.mark.parametrize("shape,axis", SHAPES_AXES)
def test_shapes_axes_and_zi(shape, axis):
    rng = np.random.default_rng(2)
    sos = random_sos(3, rng)
    x = rng.standard_normal(shape)
    assert_close_np(sl.sosfilt(t64(sos), t64(x), axis=axis), ss.sosfilt(sos, x, axis=axis), 1e-9, "no zi")
    zshape = list(shape)
    zshape[axis] = 2
    zi = rng.standard_normal([3] + zshape)
    y, zf = sl.sosfilt(t64(sos), t64(x), axis=axis, zi=t64(zi))
    ey, ezf = ss.sosfilt(sos, x, axis=axis, zi=zi)
    assert_close_np(y, ey, 1e-9, "y")
    assert_close_np(zf, ezf, 1e-9, "zf")


def test_sosfilt_zi_steady_state():
    sos = ss.butter(6, 0.15, output="sos")
    x = np.full((2, 120), -2.0)
    zi = ss.sosfilt_zi(sos)[:, None, :] * x[None, :, :1]  # (n_sections, 2, 2)
    y, zf = sl.sosfilt(t64(sos), t64(x), zi=t64(zi))
    ey, ezf = ss.sosfilt(sos, x, zi=zi)
    assert_close_np(y, ey, 1e-10, "y")
    assert_close_np(zf, ezf, 1e-10, "zf")
    np.testing.assert_allclose(npy(y), -2.0, rtol=1e-8)


@pytest.mark.parametrize("n_sections", [1, 2, 7, 12])
def test_random_sections(n_sections):
    rng = np.random.default_rng(10 + n_sections)
    sos = random_sos(n_sections, rng, rmax=0.9)
    x = rng.standard_normal((2, 257))
    zi = rng.standard_normal((n_sections, 2, 2))
    y, zf = sl.sosfilt(t64(sos), t64(x), zi=t64(zi))
    ey, ezf = ss.sosfilt(sos, x, zi=zi)
    assert_close_np(y, ey, 1e-9, "y")
    assert_close_np(zf, ezf, 1e-9, "zf")


def test_section_a0_not_one_rejected_or_normalized():
    """scipy refuses sos[:, 3] != 1. Either refuse it the same way (ValueError naming sos), or -- so that
    every entry of sos stays differentiable -- normalize each section by its a0 like lfilter does."""
    sos = np.array([[1.0, 0.3, 0.0, 2.0, -1.0, 0.2], [0.5, 0.5, 0.5, 1.0, 0.1, 0.0]])
    x = np.random.default_rng(3).standard_normal(60)
    with pytest.raises(ValueError):
        ss.sosfilt(sos, x)
    try:
        y = sl.sosfilt(t64(sos), t64(x))
    except ValueError as err:
        assert "sos" in str(err)
        return
    normalized = sos.copy()
    normalized[:, :3] /= sos[:, 3:4]
    normalized[:, 3:] /= sos[:, 3:4]
    assert_close_np(y, ss.sosfilt(normalized, x), 1e-10)


def test_sections_with_zero_leading_b_and_fir_sections():
    sos = np.array([[0.0, 1.0, 0.5, 1.0, -0.3, 0.1],
                    [1.0, 0.0, 0.0, 1.0, 0.0, 0.0],   # identity section
                    [0.5, 0.5, 0.0, 1.0, 0.0, 0.0],   # pure FIR section
                    [1.0, -1.0, 0.0, 1.0, -0.5, 0.0]])  # first order
    x = np.random.default_rng(4).standard_normal(100)
    assert_close_np(sl.sosfilt(t64(sos), t64(x)), ss.sosfilt(sos, x), 1e-10)


def test_batched_sos_per_channel():
    rng = np.random.default_rng(5)
    B, C, T, S = 2, 3, 140, 2
    sos = np.stack([random_sos(S, rng) for _ in range(C)])  # (C, S, 6)
    x = rng.standard_normal((B, C, T))
    y = sl.sosfilt(t64(sos), t64(x))
    expected = np.stack([np.stack([ss.sosfilt(sos[c], x[i, c]) for c in range(C)]) for i in range(B)])
    assert_close_np(y, expected, 1e-9)


def test_batched_sos_with_zi_and_axis():
    rng = np.random.default_rng(6)
    B, C, T, S = 2, 3, 80, 2
    sos = np.stack([random_sos(S, rng) for _ in range(B)])[:, None]  # (B, 1, S, 6)
    x = rng.standard_normal((B, T, C))
    zi = rng.standard_normal((S, B, 2, C))
    y, zf = sl.sosfilt(t64(sos), t64(x), axis=1, zi=t64(zi))
    ey, ezf = np.empty_like(x), np.empty_like(zi)
    for i in range(B):
        for c in range(C):
            ey[i, :, c], ezf[:, i, :, c] = ss.sosfilt(sos[i, 0], x[i, :, c], zi=zi[:, i, :, c])
    assert_close_np(y, ey, 1e-9, "y")
    assert_close_np(zf, ezf, 1e-9, "zf")


def test_float32_close_to_scipy():
    sos = ss.butter(6, 0.1, output="sos").astype(np.float32)
    x = np.random.default_rng(7).standard_normal((2, 1000)).astype(np.float32)
    y = sl.sosfilt(torch.from_numpy(sos), torch.from_numpy(x))
    assert y.dtype == torch.float32
    assert_close_np(y, ss.sosfilt(sos.astype(np.float64), x.astype(np.float64)), 1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_in_and_out(dtype):
    sos = torch.tensor(ss.butter(4, 0.25, output="sos")).to(dtype)
    x = torch.from_numpy(np.random.default_rng(8).standard_normal((2, 300))).to(dtype)
    y = sl.sosfilt(sos, x)
    assert y.dtype == dtype
    expected = ss.sosfilt(npy(sos.double()), npy(x.double()))
    assert_close_np(y.double(), expected, 3e-2 if dtype == torch.float16 else 8e-2, str(dtype))
    y, zf = sl.sosfilt(sos, x, zi=torch.zeros(2, 2, 2, dtype=dtype))
    assert y.dtype == dtype and zf.dtype == dtype


@pytest.mark.parametrize("cdtype,rtol", [(torch.complex128, 1e-10), (torch.complex64, 1e-4)])
def test_complex_matches_scipy(cdtype, rtol):
    rng = np.random.default_rng(9)
    sos = random_sos(2, rng).astype(np.complex128)
    sos[:, :3] += 1j * rng.standard_normal((2, 3))
    x = rng.standard_normal((2, 120)) + 1j * rng.standard_normal((2, 120))
    zi = rng.standard_normal((2, 2, 2)) + 1j * rng.standard_normal((2, 2, 2))
    np_dt = np.complex128 if cdtype == torch.complex128 else np.complex64
    sos, x, zi = sos.astype(np_dt), x.astype(np_dt), zi.astype(np_dt)
    y, zf = sl.sosfilt(torch.from_numpy(sos), torch.from_numpy(x), zi=torch.from_numpy(zi))
    assert y.dtype == cdtype and zf.dtype == cdtype
    ey, ezf = ss.sosfilt(sos.astype(np.complex128), x.astype(np.complex128), zi=zi.astype(np.complex128))
    assert_close_np(y, ey, rtol, "y")
    assert_close_np(zf, ezf, rtol, "zf")


@pytest.mark.parametrize("xdt,sdt,expected", [
    (torch.float32, torch.float64, torch.float64),
    (torch.float64, torch.float32, torch.float64),
    (torch.int64, torch.float32, torch.float32),
    (torch.complex64, torch.float32, torch.complex64),
])
def test_result_dtype_promotion(xdt, sdt, expected):
    sos = ss.butter(2, 0.3, output="sos")
    x = torch.arange(-10, 10).to(xdt)
    y = sl.sosfilt(torch.tensor(sos).to(sdt), x)
    assert y.dtype == expected
    assert_close_np(y.to(torch.complex128 if expected.is_complex else torch.float64),
                    ss.sosfilt(sos, np.arange(-10.0, 10.0)), 1e-5)


def test_integer_input_promotes_to_default_float():
    sos = torch.tensor([[1, 1, 0, 1, 0, 0]])
    y = sl.sosfilt(sos, torch.arange(6))
    assert y.dtype == torch.get_default_dtype()
    assert_close_np(y.double(), ss.sosfilt([[1.0, 1, 0, 1, 0, 0]], np.arange(6.0)), 1e-6)


@pytest.mark.parametrize("splits", [[0, 1, 63, 64, 65, 250], [0, 100, 100, 250]])
def test_streaming_chunks_equal_one_call(splits):
    rng = np.random.default_rng(11)
    sos = random_sos(3, rng, rmin=0.8, rmax=0.97)
    x = t64(rng.standard_normal((2, 250)))
    zi = t64(rng.standard_normal((3, 2, 2)))
    y_all, zf_all = sl.sosfilt(t64(sos), x, zi=zi)
    z, ys = zi, []
    for s, e in zip(splits[:-1], splits[1:]):
        y, z = sl.sosfilt(t64(sos), x[:, s:e], zi=z)
        ys.append(y)
    torch.testing.assert_close(torch.cat(ys, -1), y_all, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(z, zf_all, rtol=1e-10, atol=1e-10)
    ey, ezf = ss.sosfilt(sos, npy(x), zi=npy(zi))
    assert_close_np(y_all, ey, 1e-9)
    assert_close_np(zf_all, ezf, 1e-9)


def test_sosfilt_equals_lfilter_of_cascade():
    """Cross-check the two public entry points: a cascade equals the expanded transfer function."""
    sos = ss.butter(4, 0.3, output="sos")
    b, a = ss.sos2tf(sos)
    x = t64(np.random.default_rng(12).standard_normal(200))
    torch.testing.assert_close(sl.sosfilt(t64(sos), x), sl.lfilter(t64(b), t64(a), x), rtol=1e-8, atol=1e-8)


def test_backend_torch_env_equals_default(monkeypatch):
    sos = t64(ss.cheby1(4, 1, 0.3, output="sos"))
    x = t64(np.random.default_rng(13).standard_normal((2, 300)))
    monkeypatch.delenv("SSM_LFILTER_BACKEND", raising=False)
    y0 = sl.sosfilt(sos, x)
    monkeypatch.setenv("SSM_LFILTER_BACKEND", "torch")
    y1 = sl.sosfilt(sos, x)
    torch.testing.assert_close(y1, y0, rtol=1e-13, atol=1e-13)
    assert_close_np(y0, ss.sosfilt(npy(sos), npy(x)), 1e-9)
