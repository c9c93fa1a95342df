"""The cascade launcher ``ssm_lfilter.kernels.sos`` (second-order sections in one pass over memory)
and the ``ssm_lfilter::sos`` op behind ``sosfilt``. On CPU the kernels run under the interpreter with
tiny tiles and windows, so short signals cross every lane, tile and window boundary in every section."""
import numpy as np
import pytest
import scipy.signal as ss
import torch

import ssm_lfilter as sl
from ssm_lfilter.kernels import sos as sos_launcher

pytestmark = pytest.mark.interpreter


def _design(S, rng, rmax=0.97):
    """S random stable biquads: (sos [S, 6] float64, b [S, 3], a [S, 2])."""
    rows = []
    for _ in range(S):
        r, th = rng.uniform(0.3, rmax), rng.uniform(0.05, np.pi - 0.05)
        rows.append([*rng.standard_normal(3), 1.0, -2 * r * np.cos(th), r * r])
    so = np.array(rows)
    return so, torch.tensor(so[:, :3]), torch.tensor(so[:, 4:])


def _rel(y, ref):
    return np.abs(y.detach().double().cpu().numpy() - ref).max() / np.abs(ref).max()


@pytest.mark.parametrize("S,R,T,C,lanes,W", [(1, 2, 90, 4, 2, 2), (2, 3, 131, 4, 4, 2), (3, 1, 257, 2, 8, 4),
                                             (8, 2, 120, 8, 2, 2),
                                             (3, 2, 700, 64, 2, 2)])  # the GPU's float32 default lanes
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_matches_scipy_and_per_section(S, R, T, C, lanes, W, dtype):
    rng = np.random.default_rng(S * 100 + T)
    so, b, a = _design(S, rng)
    x = torch.tensor(rng.standard_normal((R, T)))
    y = sos_launcher(x.to(dtype), b[None].to(dtype), a[None].to(dtype), block_size=C, lanes=lanes, window_tiles=W)
    ref = ss.sosfilt(so, x.numpy())
    assert y.dtype == dtype and y.shape == (R, T)
    assert _rel(y, ref) < (1e-12 if dtype == torch.float64 else 2e-6)
    y_sections = sos_launcher(x.to(dtype), b[None].to(dtype), a[None].to(dtype), block_size=C, single_pass=False)
    # the carries are grouped differently: equal to rounding (float32: a few ulps of max |y|)
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    torch.testing.assert_close(y, y_sections, rtol=tol, atol=tol * y_sections.abs().max().item())
    again = sos_launcher(x.to(dtype), b[None].to(dtype), a[None].to(dtype), block_size=C, lanes=lanes, window_tiles=W)
    assert torch.equal(y, again)  # deterministic: the same bits


def test_per_row_coefficients_and_strides():
    rng = np.random.default_rng(7)
    R, T, S = 3, 100, 2
    designs = [_design(S, rng) for _ in range(R)]
    b = torch.stack([d[1] for d in designs])
    a = torch.stack([d[2] for d in designs])
    base = torch.tensor(rng.standard_normal((R, 2 * T)))
    x = base[:, ::2]  # non-contiguous
    y = sos_launcher(x, b, a, block_size=4, lanes=2, window_tiles=2)
    for r in range(R):
        ref = ss.sosfilt(designs[r][0], x[r].numpy())
        assert _rel(y[r], ref) < 1e-12


def test_hard_mode_poles_near_unit_circle():
    # poles at radius 0.999: carries between tiles dominate the output
    rng = np.random.default_rng(3)
    so = np.array([[1.0, 0.0, -1.0, 1.0, -2 * 0.999 * np.cos(0.05), 0.999 ** 2],
                   [0.5, 0.2, 0.1, 1.0, -2 * 0.995 * np.cos(0.3), 0.995 ** 2]])
    x = torch.tensor(rng.standard_normal((1, 400)))
    y = sos_launcher(x, torch.tensor(so[:, :3])[None], torch.tensor(so[:, 4:])[None], block_size=4, lanes=4,
                     window_tiles=2)
    assert _rel(y, ss.sosfilt(so, x.numpy())) < 1e-11


def test_fallbacks_half_precision_empty_and_errors():
    rng = np.random.default_rng(5)
    so, b, a = _design(2, rng)
    x = torch.tensor(rng.standard_normal((2, 60)))
    ref = ss.sosfilt(so, x.numpy())
    # odd chunk: one lti call per section instead of the fused kernel
    assert _rel(sos_launcher(x, b[None], a[None], block_size=3), ref) < 1e-12
    # M > N (three taps, one pole): per section as well
    y = sos_launcher(x, b[None], a[None, :, :1], block_size=4)
    assert _rel(y, ss.sosfilt(np.c_[so[:, :4], 0 * so[:, 4:5] + so[:, 4:5], 0 * so[:, 5:]], x.numpy())) < 1e-12
    yh = sos_launcher(x.half(), b[None].half(), a[None].half(), block_size=4)
    assert yh.dtype == torch.float16
    assert sos_launcher(x[:, :0], b[None], a[None]).shape == (2, 0)
    assert torch.equal(sos_launcher(x, b[None, :0], a[None, :0]), x)
    with pytest.raises(ValueError, match="one S"):
        sos_launcher(x, b[None], a[None, :1])
    with pytest.raises(TypeError, match="real floating"):
        sos_launcher(x.to(torch.complex128), b[None], a[None])


@pytest.mark.parametrize("backend", ["triton", "torch"])
def test_op_opcheck_and_gradcheck(backend, monkeypatch):
    monkeypatch.setenv("SSM_LFILTER_BACKEND", backend)
    rng = np.random.default_rng(11)
    so, b, a = _design(2, rng, rmax=0.9)
    x = torch.tensor(rng.standard_normal((1, 10)), requires_grad=True)  # small: the interpreter runs every probe
    b = b[None].clone().requires_grad_()
    a = a[None].clone().requires_grad_()
    head = torch.tensor(rng.standard_normal((1, 2, 2)), requires_grad=True)  # each section's initial state
    torch.library.opcheck(torch.ops.ssm_lfilter.sos.default, (x, b, a, head, 2),
                          test_utils=("test_schema", "test_autograd_registration", "test_faketensor",
                                      "test_aot_dispatch_dynamic"))
    assert torch.autograd.gradcheck(lambda x, b, a, h: torch.ops.ssm_lfilter.sos(x, b, a, h, 2), (x, b, a, head),
                                    fast_mode=True)


def test_sosfilt_runs_the_cascade_in_one_kernel_call(monkeypatch):
    """sosfilt from rest on the Triton path calls the cascade launcher once (not once per section);
    its result and gradients equal the torch engine's."""
    import ssm_lfilter.kernels as K

    calls = []
    real = K.sos
    monkeypatch.setattr(K, "sos", lambda *a, **k: calls.append(1) or real(*a, **k))
    rng = np.random.default_rng(2)
    so = torch.tensor(ss.butter(6, 0.1, output="sos"), requires_grad=True)
    x = torch.tensor(rng.standard_normal((2, 3, 150)), requires_grad=True)
    out = {}
    for backend in ("torch", "triton"):
        monkeypatch.setenv("SSM_LFILTER_BACKEND", backend)
        y = sl.sosfilt(so, x)
        out[backend] = (y, *torch.autograd.grad(y.pow(2).sum(), (so, x)))
    assert len(calls) == 1
    for got, exp in zip(out["triton"], out["torch"]):
        torch.testing.assert_close(got, exp, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(out["triton"][0].detach().numpy(), ss.sosfilt(so.detach().numpy(), x.detach().numpy()),
                               rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("T,C,lanes,W", [(1, 4, 2, 2), (2, 4, 2, 2), (9, 4, 2, 2), (77, 4, 2, 2), (130, 8, 4, 1)])
@pytest.mark.parametrize("single_pass", [True, False])
def test_heads_and_ends_match_scipy_with_zi(T, C, lanes, W, single_pass):
    """Each section's head is its zi (a TDF-II state acts as an input at the first two samples), and
    ``ends`` receives every section's last min(T, 2) outputs: scipy's sosfilt with zi gives the output
    and, section by section, the ends."""
    rng = np.random.default_rng(T)
    so, b, a = _design(3, rng)
    x = torch.tensor(rng.standard_normal((2, T)))
    zi = rng.standard_normal((3, 2, 2))  # scipy's (n_sections, rows, 2)
    head = torch.tensor(zi).transpose(0, 1)  # (rows, sections, 2)
    kt = min(T, 2)
    ends = torch.empty(3, 2, kt, dtype=torch.float64)
    y = sos_launcher(x, b[None], a[None], head=head, ends=ends, block_size=C, lanes=lanes, window_tiles=W,
                     single_pass=single_pass)
    ref, _ = ss.sosfilt(so, x.numpy(), zi=zi)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-10, atol=1e-10)
    u = x.numpy()
    for s in range(3):
        u, _ = ss.sosfilt(so[s:s + 1], u, zi=zi[s:s + 1])
        np.testing.assert_allclose(ends[s].numpy(), u[:, T - kt:], rtol=1e-10, atol=1e-10)


def test_sosfilt_with_zi_is_one_launch_forward_and_backward(monkeypatch):
    """sosfilt with zi on the Triton path: one cascade launch forward (zi as heads, the final states
    from the returned ends), one fused backward call; values, zf and every gradient (zi's too) equal
    the torch engine's; chunked streaming equals one call."""
    import ssm_lfilter.kernels as K

    calls = {"sos": 0, "sos_adjoint": 0, "lti": 0, "lti_adjoint_sums": 0}
    for name in calls:
        real = getattr(K, name)
        monkeypatch.setattr(K, name, lambda *a, _r=real, _n=name, **k: calls.__setitem__(_n, calls[_n] + 1) or _r(*a, **k))
    rng = np.random.default_rng(5)
    so = torch.tensor(ss.butter(6, 0.1, output="sos"), requires_grad=True)
    x = torch.tensor(rng.standard_normal((2, 3, 150)), requires_grad=True)
    zi = torch.tensor(rng.standard_normal((3, 2, 3, 2)), requires_grad=True)
    out = {}
    for backend in ("torch", "triton"):
        monkeypatch.setenv("SSM_LFILTER_BACKEND", backend)
        y, zf = sl.sosfilt(so, x, zi=zi)
        out[backend] = (y, zf, *torch.autograd.grad((y.pow(2).sum() + zf.pow(3).sum()), (so, x, zi)))
    assert calls == {"sos": 1, "sos_adjoint": 1, "lti": 0, "lti_adjoint_sums": 0}
    for got, exp in zip(out["triton"], out["torch"]):
        torch.testing.assert_close(got, exp, rtol=1e-9, atol=1e-9)
    ref_y, ref_zf = ss.sosfilt(so.detach().numpy(), x.detach().numpy(), zi=zi.detach().numpy())
    np.testing.assert_allclose(out["triton"][1].detach().numpy(), ref_zf, rtol=1e-9, atol=1e-9)
    monkeypatch.setenv("SSM_LFILTER_BACKEND", "triton")
    with torch.no_grad():
        state, parts = zi, []
        for lo, hi in ((0, 1), (1, 2), (2, 71), (71, 150)):
            part, state = sl.sosfilt(so, x[..., lo:hi], zi=state)
            parts.append(part)
        torch.testing.assert_close(torch.cat(parts, -1), out["triton"][0], rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(state, out["triton"][1], rtol=1e-10, atol=1e-10)


def test_sosfiltfilt_on_the_kernels_matches_scipy_and_the_engine(monkeypatch):
    """sosfiltfilt's two passes (each sosfilt with zi) on the fused cascade: scipy's values, and the
    torch engine's gradients (through zi = sosfilt_zi(sos) * x_ext[0] too)."""
    import ssm_lfilter.kernels as K

    calls = []
    real = K.sos
    monkeypatch.setattr(K, "sos", lambda *a, **k: calls.append(1) or real(*a, **k))
    rng = np.random.default_rng(6)
    so = torch.tensor(ss.cheby1(4, 1, 0.2, output="sos"), requires_grad=True)
    x = torch.tensor(rng.standard_normal((2, 90)), requires_grad=True)
    out = {}
    for backend in ("torch", "triton"):
        monkeypatch.setenv("SSM_LFILTER_BACKEND", backend)
        y = sl.sosfiltfilt(so, x)
        out[backend] = (y, *torch.autograd.grad(y.pow(2).sum(), (so, x)))
    assert len(calls) == 2
    np.testing.assert_allclose(out["triton"][0].detach().numpy(), ss.sosfiltfilt(so.detach().numpy(),
                               x.detach().numpy()), rtol=1e-9, atol=1e-9)
    for got, exp in zip(out["triton"], out["torch"]):
        torch.testing.assert_close(got, exp, rtol=1e-9, atol=1e-9)


def test_cascade_lane_length_default():
    """64-sample lanes for float32 cascades of two or more sections from rest on a GPU (measured faster
    on an H200 at 8 sections), 32 otherwise (one section, heads or ends, float64, the interpreter)."""
    from ssm_lfilter.kernels._variants import cascade_lane_length as lane_length

    f32, f64 = torch.float32, torch.float64
    assert lane_length(8, f32, "cuda", False) == 64 and lane_length(2, f32, "cuda", False) == 64
    assert lane_length(1, f32, "cuda", False) == 32
    assert lane_length(8, f32, "cuda", True) == 32
    assert lane_length(8, f64, "cuda", False) == 32
    assert lane_length(8, f32, "cpu", False) == 32
    assert lane_length(8, f32, "meta", False) == 64  # the compile tools' captures see the GPU's choice


# ---------------------------------------------------------------- GPU tier (real sizes, CUDA only)

@pytest.mark.gpu
def test_gpu_eight_sections_fused_matches_per_section():
    so = ss.butter(16, 0.05, output="sos")
    b = torch.tensor(so[:, :3], dtype=torch.float32, device="cuda")[None]
    a = torch.tensor(so[:, 4:], dtype=torch.float32, device="cuda")[None]
    x = torch.randn(32, 2 ** 20, device="cuda")
    y = sos_launcher(x, b, a)
    y8 = sos_launcher(x, b, a, single_pass=False)
    torch.testing.assert_close(y, y8, rtol=1e-4, atol=1e-4 * y8.abs().max().item())
    assert torch.equal(y, sos_launcher(x, b, a))
    ref = ss.sosfilt(so, x[:2, :100000].double().cpu().numpy())
    assert _rel(y[:2, :100000], ref) < 1e-4


def _resonators_0999_float32(x):
    """Two cascaded resonators at pole radius 0.999, coefficients rounded to float32 as the kernel
    gets them: (b, a) on x's device, the float64 scipy reference on those ROUNDED coefficients, and
    the error of scipy's sequential float32 loop (sosfilt on float32 arrays) against it.

    The reference must use the rounded coefficients: rounding them to float32 alone moves the response
    by ~1.1e-3 of max |y| (measured on CPU: 8.5e-4 at T = 8192, 1.07e-3 .. 1.18e-3 from T = 2^16 to 10^6),
    which no float32 implementation can undo. Against the rounded-coefficient reference a sequential float32 loop is
    off by 2.5e-5 .. 4.7e-5 (T = 10^6), and the kernel (float64 state, float32 in and out) by ~5e-8."""
    r = 0.999
    so32 = np.array([[1.0, 0.0, -1.0, 1.0, -2 * r * np.cos(0.05), r * r]] * 2, dtype=np.float32)
    xn = x.detach().cpu().numpy()
    ref = ss.sosfilt(so32.astype(np.float64), xn.astype(np.float64))
    seq32 = ss.sosfilt(so32, xn.astype(np.float32))
    assert seq32.dtype == np.float32
    b = torch.tensor(so32[:, :3], device=x.device)[None]
    a = torch.tensor(so32[:, 4:], device=x.device)[None]
    return b, a, ref, _rel(torch.from_numpy(seq32), ref)


@pytest.mark.parametrize("C", [32, 64])
def test_biquads_radius_0999_float32_within_float32_rounding(C):
    """The GPU test below at a size the interpreter runs: GPU tiles (C = 32 or the float32 cascade's
    default 64, 64 lanes), several windows."""
    x = torch.randn(1, 8192, generator=torch.Generator().manual_seed(0))
    b, a, ref, seq32_err = _resonators_0999_float32(x)
    y = sos_launcher(x, b, a, block_size=C, lanes=64, window_tiles=2)
    assert y.dtype == torch.float32
    err = _rel(y, ref)
    assert err < 2e-6  # float64 state: a few float32 ulps of max |y|
    assert err <= 2 * seq32_err  # no worse than a sequential float32 loop on the same coefficients


@pytest.mark.gpu
def test_gpu_biquads_radius_0999_float32():
    x = torch.randn(1, 10 ** 6, device="cuda", generator=torch.Generator("cuda").manual_seed(0))
    b, a, ref, seq32_err = _resonators_0999_float32(x)
    err = _rel(sos_launcher(x, b, a), ref)
    # float64 state: ~5e-8 under the interpreter with these tiles; a sequential float32 loop reaches 4.7e-5
    assert err < 2e-6 and err <= 2 * seq32_err


@pytest.mark.gpu
def test_gpu_sosfilt_with_zi_and_sosfiltfilt_against_scipy():
    """The fused cascade with every section's initial state at real sizes: sosfilt with zi (values
    and final states) and sosfiltfilt, float32 on the GPU against scipy in float64."""
    so = ss.butter(16, 0.05, output="sos")
    sos = torch.tensor(so, dtype=torch.float32, device="cuda")
    x = torch.randn(4, 2 ** 20, device="cuda", generator=torch.Generator("cuda").manual_seed(1))
    zi = torch.tensor(ss.sosfilt_zi(so), dtype=torch.float32, device="cuda")[:, None, :] * x[:, :1]
    y, zf = sl.sosfilt(sos, x, zi=zi)
    xn = x.double().cpu().numpy()
    ref, ref_zf = ss.sosfilt(so, xn, zi=zi.double().cpu().numpy())
    assert _rel(y, ref) < 1e-4
    assert float(np.abs(zf.double().cpu().numpy() - ref_zf).max()) < 1e-4 * np.abs(ref).max()
    assert _rel(sl.sosfiltfilt(sos, x), ss.sosfiltfilt(so, xn)) < 1e-4
