"""Layers: stability of the parametrizations, streaming, gradients, responses, compile, DDP, errors."""
import gc
import math

import numpy as np
import pytest
import torch
from scipy import signal

from ssm_lfilter.modules import (ConditionedSOSFilter, LFilter, ModalFilter, SOSFilter, TimeVaryingSOSFilter,
                                 TimeVaryingState)

ELLIP = signal.ellip(4, 1, 40, 0.3, output="sos")


def _tv_sos(batch=(2, 3), frames=6, n_sections=2):
    """Random stable per-frame biquads ``(*batch, frames, S, 6)``."""
    r = 0.5 + 0.45 * torch.rand(*batch, frames, n_sections)
    th = math.pi * torch.rand(*batch, frames, n_sections)
    b = torch.randn(*batch, frames, n_sections, 3)
    return torch.cat([b, torch.ones_like(r)[..., None], (-2 * r * torch.cos(th))[..., None], (r * r)[..., None]], -1)


# One entry per layer: (name, factory, call(layer, x, **kw), input shape, whole-frames hop).
def _layers():
    return {
        "lfilter": (lambda: LFilter(2, 3, channels=3, b=torch.randn(3, 3) * 0.5,
                                    a=[1.0, -0.9, 0.5, -0.1]), (2, 3, 96)),
        "lfilter_shared": (lambda: LFilter(1, 2, b=[0.5, 0.5], a=[1.0, -1.2, 0.6]), (4, 96)),
        "sos_polar": (lambda: SOSFilter(2, channels=3), (2, 3, 96)),
        "sos_coefficients": (lambda: SOSFilter.from_sos(ELLIP, parametrization="coefficients"), (2, 96)),
        "modal": (lambda: ModalFilter(3, 6, out_channels=2), (2, 3, 96)),
    }


LTI = _layers()


def _parameters_from(model):
    return {n: p for n, p in model.named_parameters()}


# ---------------------------------------------------------------------------------- stability
@pytest.mark.parametrize("scale", [1.0, 30.0, 1e4, 1e30])
def test_polar_poles_strictly_inside_unit_circle(scale):
    torch.manual_seed(0)
    layer = SOSFilter(8, channels=4)
    with torch.no_grad():
        layer.radius_logit.copy_(torch.randn_like(layer.radius_logit) * scale)
        layer.radius_logit[0] = float("inf") if scale > 1e20 else scale
        layer.angle.copy_(torch.randn_like(layer.angle) * scale)
    sos = layer.sos.detach().double()
    # Roots of z^2 + a1 z + a2 computed in float64 from the float32 coefficients the filter uses.
    disc = (sos[..., 4] ** 2 - 4 * sos[..., 5]).to(torch.complex128)
    p = torch.stack([(-sos[..., 4] + disc.sqrt()) / 2, (-sos[..., 4] - disc.sqrt()) / 2])
    assert torch.isfinite(p).all()
    assert (p.abs() < 1).all(), p.abs().max()


def test_polar_stays_stable_after_aggressive_optimisation():
    torch.manual_seed(0)
    layer = SOSFilter(3)
    opt = torch.optim.Adam(layer.parameters(), lr=2.0)
    x = torch.randn(2, 256)
    for _ in range(30):
        # Maximising the output energy drives the poles toward the unit circle as fast as possible.
        loss = -layer(x).square().mean().log()
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert (layer.poles().abs() < 1).all()
    assert torch.isfinite(layer.sos).all()
    assert layer.poles().abs().max() > 0.99  # the optimiser did push them out


@pytest.mark.parametrize("nu", [-1e4, -50.0, 0.0, 5.0, 1e4])
def test_modal_poles_strictly_inside_unit_circle(nu):
    layer = ModalFilter(2, 4)
    with torch.no_grad():
        layer.nu.fill_(nu)
        layer.angle.copy_(torch.tensor([0.0, 1.0, -3.0, 1e6]))
    lam = layer.poles()
    assert torch.isfinite(lam).all() and (lam.abs() < 1).all()


def test_lfilter_stability_guards():
    layer = LFilter(0, 2, a=[1.0, -2.5, 1.5], max_radius=0.99)  # poles 1.5 and 1.0: unstable
    pen = layer.stability_penalty()
    assert pen > 0
    pen.backward()
    assert layer.a_tail.grad.abs().sum() > 0
    layer.project_()
    roots = np.roots(layer.a.detach().double().numpy())
    assert np.abs(roots).max() <= 0.99 + 1e-5
    assert layer.stability_penalty().item() < 1e-8
    assert LFilter(2, 2).stability_penalty().item() == 0.0  # identity init: no penalty, no NaN


def test_lfilter_penalty_descent_reaches_stability():
    layer = LFilter(0, 2, a=[1.0, -2.1, 1.2], max_radius=0.95)
    opt = torch.optim.Adam(layer.parameters(), lr=0.02)
    for _ in range(300):
        opt.zero_grad()
        layer.stability_penalty().backward()
        opt.step()
    assert np.abs(np.roots(layer.a.detach().double().numpy())).max() < 0.951


# ---------------------------------------------------------------------------------- streaming
@pytest.mark.parametrize("name", sorted(LTI))
def test_streaming_equals_whole_signal_lti(name):
    torch.manual_seed(1)
    make, shape = LTI[name]
    layer = make()
    x = torch.randn(shape)
    whole = layer(x)
    parts, state = [], None
    for chunk in torch.split(x, [1, 30, 0, 41, 24], dim=-1):
        y, state = layer(chunk, state=state, return_state=True)
        parts.append(y)
    torch.testing.assert_close(torch.cat(parts, -1), whole, rtol=1e-4, atol=1e-5)


def test_streaming_equals_whole_signal_time_varying():
    torch.manual_seed(2)
    x = torch.randn(2, 3, 120)
    sample_rate = TimeVaryingSOSFilter(2)
    sos = _tv_sos(frames=120)
    whole = sample_rate(x, sos)
    y1, s = sample_rate(x[..., :50], sos[..., :50, :, :], return_state=True)
    y2 = sample_rate(x[..., 50:], sos[..., 50:, :, :], state=s)
    torch.testing.assert_close(torch.cat([y1, y2], -1), whole, rtol=1e-4, atol=1e-5)

    framed = TimeVaryingSOSFilter(2, hop_length=10)
    sos = _tv_sos(batch=(2, 1), frames=12)
    whole = framed(x, sos)
    y1, s = framed(x[..., :30], sos[..., :3, :, :], return_state=True)
    assert isinstance(s, TimeVaryingState) and s.frame.shape == (2, 1, 2, 6)
    y2, s = framed(x[..., 30:100], sos[..., 3:10, :, :], state=s, return_state=True)
    y3 = framed(x[..., 100:], sos[..., 10:, :, :], state=s)
    torch.testing.assert_close(torch.cat([y1, y2, y3], -1), whole, rtol=1e-4, atol=1e-5)

    cond_layer = ConditionedSOSFilter(4, 2, hop_length=8, channels=3, hidden_channels=5)
    cond = torch.randn(2, 4, 15)
    whole = cond_layer(x, cond)
    y1, s = cond_layer(x[..., :64], cond[..., :8], return_state=True)
    y2 = cond_layer(x[..., 64:], cond[..., 8:], state=s)
    torch.testing.assert_close(torch.cat([y1, y2], -1), whole, rtol=1e-4, atol=1e-5)


def test_frame_interpolation_hits_each_frame_at_the_end_of_its_hop():
    layer = TimeVaryingSOSFilter(1, hop_length=4)
    gains = torch.tensor([1.0, 3.0, -1.0])
    sos = torch.zeros(3, 1, 6)
    sos[:, 0, 0], sos[:, 0, 3] = gains, 1.0  # pure gain sections
    y = layer(torch.ones(12), sos)
    torch.testing.assert_close(y, torch.tensor([1, 1, 1, 1, 1.5, 2, 2.5, 3, 2, 1, 0, -1.0]))


# ---------------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("name", sorted(LTI))
def test_gradients_reach_every_parameter_lti(name):
    torch.manual_seed(3)
    make, shape = LTI[name]
    layer = make()
    y = layer(torch.randn(shape))
    (y.square().mean() + y.sum()).backward()
    for pname, p in layer.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, pname


def test_gradients_reach_every_parameter_time_varying():
    torch.manual_seed(4)
    layer = ConditionedSOSFilter(3, 2, hop_length=16, hidden_channels=4)
    cond = torch.randn(2, 3, 4, requires_grad=True)
    y = layer(torch.randn(2, 64), cond)
    y.square().mean().backward()
    for pname, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname
    assert cond.grad.abs().sum() > 0
    sos = _tv_sos(batch=(2,), frames=4).requires_grad_()
    TimeVaryingSOSFilter(2, hop_length=16)(torch.randn(2, 64), sos).sum().backward()
    assert sos.grad.abs().sum() > 0


# ---------------------------------------------------------------------------------- correctness
def test_from_sos_matches_scipy_filter_and_response():
    x = np.random.default_rng(0).standard_normal((3, 300))
    want = signal.sosfilt(ELLIP, x)
    for param in ("polar", "coefficients"):
        layer = SOSFilter.from_sos(ELLIP, parametrization=param, dtype=torch.float64)
        got = layer(torch.from_numpy(x)).detach().numpy()
        np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9)
        w, h = layer.frequency_response(200)
        w_ref, h_ref = signal.sosfreqz(ELLIP, 200)
        np.testing.assert_allclose(w.numpy(), w_ref)
        np.testing.assert_allclose(h.detach().numpy(), h_ref, rtol=1e-7, atol=1e-10)


def test_lfilter_matches_scipy_and_normalizes_a0():
    b, a = [0.3, 0.2, 0.1], [2.0, -0.6, 0.2]
    layer = LFilter(2, 2, b=b, a=a).double()
    x = np.random.default_rng(1).standard_normal(200)
    # coefficients are stored in float32 before .double(): compare at float32 precision
    np.testing.assert_allclose(layer(torch.from_numpy(x)).detach().numpy(), signal.lfilter(b, a, x), atol=1e-6)
    _, h = layer.frequency_response(64)
    np.testing.assert_allclose(h.detach().numpy(), signal.freqz(b, a, 64)[1], atol=1e-6)
    identity = LFilter(3, 2)
    x = torch.randn(2, 50)
    torch.testing.assert_close(identity(x), x)


def test_modal_frequency_response_matches_impulse_response():
    torch.manual_seed(5)
    layer = ModalFilter(2, 5, out_channels=3, r_max=0.9).double()
    impulse = torch.zeros(2, 2, 512, dtype=torch.float64)
    impulse[0, 0, 0] = impulse[1, 1, 0] = 1.0
    ir = layer(impulse)  # (C_in, C_out, T)
    want = torch.fft.rfft(ir, n=1024)[..., :512].permute(1, 0, 2)
    w, h = layer.frequency_response(torch.arange(512, dtype=torch.float64) * (2 * math.pi / 1024))
    torch.testing.assert_close(h.detach(), want.detach(), rtol=1e-6, atol=1e-8)


def test_time_varying_response_is_per_frame():
    sos = _tv_sos(batch=(2,), frames=3)
    w, h = TimeVaryingSOSFilter(2, hop_length=4).frequency_response(16, sos)
    assert h.shape == (2, 3, 16)
    np.testing.assert_allclose(h[1, 2].numpy(), signal.sosfreqz(sos[1, 2].double().numpy(), 16)[1], rtol=1e-4)


def test_extra_repr_names_the_configuration():
    assert "parametrization='polar'" in repr(SOSFilter(2))
    assert "b_order=2, a_order=3" in repr(LFilter(2, 3))
    assert "n_modes=8" in repr(ModalFilter(2, 8))
    assert "hop_length=4" in repr(TimeVaryingSOSFilter(1, hop_length=4))
    assert "cond_channels=3" in repr(ConditionedSOSFilter(3, 1, 8))


# ---------------------------------------------------------------------------------- bad configurations
@pytest.mark.parametrize("make, match", [
    (lambda: SOSFilter(0), "n_sections"),
    (lambda: SOSFilter(2, parametrization="magic"), "parametrization"),
    (lambda: SOSFilter(2, max_radius=1.0), "max_radius"),
    (lambda: SOSFilter(2, channels=0), "channels"),
    (lambda: SOSFilter.from_sos(np.zeros((2, 5))), r"\(n_sections, 6\)"),
    (lambda: SOSFilter.from_sos(signal.butter(3, 0.2, output="sos")), "real poles"),
    (lambda: SOSFilter.from_sos([[1, 0, 0, 1, 0, 0.99999]], max_radius=0.999), "max_radius"),
    (lambda: LFilter(-1, 2), "b_order"),
    (lambda: LFilter(2, 2, b=[1.0, 2.0]), "b with last dim 3"),
    (lambda: LFilter(1, 1, a=[0.0, 1.0]), r"a\[..., 0\] != 0"),
    (lambda: ModalFilter(2, 4, r_min=0.99, r_max=0.9), "r_min"),
    (lambda: TimeVaryingSOSFilter(1, hop_length=0), "hop_length"),
])
def test_bad_configurations_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match=r"expected x of shape \(\.\.\., 3, T\)"):
        SOSFilter(1, channels=3)(torch.randn(2, 4, 10))
    with pytest.raises(ValueError, match="expected state of shape"):
        LFilter(2, 2)(torch.randn(2, 10), state=torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"F \* hop_length"):
        TimeVaryingSOSFilter(1, hop_length=4)(torch.randn(10), _tv_sos(batch=(), frames=3, n_sections=1))
    with pytest.raises(ValueError, match=r"\(\.\.\., F, 2, 6\)"):
        TimeVaryingSOSFilter(2)(torch.randn(10), torch.zeros(10, 6))
    with pytest.raises(ValueError, match="expected cond of shape"):
        ConditionedSOSFilter(3, 1, 4)(torch.randn(2, 8), torch.randn(2, 2, 2))
    with pytest.raises(TypeError, match="expected a real x"):
        ModalFilter(1, 2)(torch.randn(1, 4, dtype=torch.complex64))


# ---------------------------------------------------------------------------------- compile and DDP
@pytest.mark.parametrize("name", ["sos_polar", "modal", "lfilter"])
def test_compiles_with_aot_eager(name):
    torch._dynamo.reset()
    make, shape = LTI[name]
    layer = make()
    x = torch.randn(shape)
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(x), layer(x), rtol=1e-4, atol=1e-5)
    compiled(x).sum().backward()


def test_time_varying_compiles_with_aot_eager():
    torch._dynamo.reset()
    layer = ConditionedSOSFilter(2, 2, hop_length=8)
    x, cond = torch.randn(2, 3, 32), torch.randn(2, 2, 4)
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(x, cond), layer(x, cond), rtol=1e-4, atol=1e-5)


def test_sos_compiles_with_inductor():
    torch._dynamo.reset()
    layer = SOSFilter(2)
    x = torch.randn(2, 128)
    compiled = torch.compile(layer, fullgraph=True)
    torch.testing.assert_close(compiled(x), layer(x), rtol=1e-4, atol=1e-5)


def test_ddp_forward_backward_world_size_one(tmp_path):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    model = None
    try:
        torch.manual_seed(6)
        layer = ModalFilter(2, 4)
        model = DistributedDataParallel(layer)
        model(torch.randn(3, 2, 64)).square().mean().backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in layer.parameters())
    finally:
        # DDP's reducer holds the process group: release it before the group is destroyed. Released
        # after (when the test's locals went), the gloo group's destructor once waited forever on its
        # worker threads (seen once in a whole-suite run, torch 2.13 CPU).
        del model
        gc.collect()
        dist.destroy_process_group()


def test_lfilter_layer_without_poles():
    """``a_order=0``: an FIR layer (``a = [1]``): filtering, its response, the guards."""
    layer = LFilter(3, 0, b=[1.0, 2.0, 3.0, 4.0]).double()
    assert layer.a.tolist() == [1.0]
    x = torch.randn(2, 50, dtype=torch.float64)
    np.testing.assert_allclose(layer(x).detach().numpy(), signal.lfilter([1.0, 2.0, 3.0, 4.0], [1.0], x.numpy()),
                               rtol=1e-12, atol=1e-12)
    w, h = layer.frequency_response(8)
    np.testing.assert_allclose(h.detach().numpy(), signal.freqz([1.0, 2.0, 3.0, 4.0], worN=8)[1], rtol=1e-12)
    assert layer.stability_penalty().item() == 0.0
    layer.project_()
    assert LFilter(0, 0)(torch.ones(5)).tolist() == [1.0] * 5


def test_lfilter_projection_is_per_channel():
    """``project_()`` moves only the channels with poles beyond ``max_radius``, each to its own
    radius: a shared target, lowered for one channel's rounding, once moved the others too."""
    r = 0.9989  # stable: inside max_radius 0.999
    stable = [1.0, -2 * r * math.cos(0.5), r * r]
    layer = LFilter(0, 2, channels=2, a=[stable, [1.0, -2.2, 1.21]])  # channel 1: a double pole at 1.1
    before = layer.a.detach().clone()
    layer.project_()
    assert torch.equal(layer.a.detach()[0], before[0])
    assert np.abs(np.roots(layer.a.detach()[1].double().numpy())).max() <= 0.999
    layer = LFilter(0, 2, channels=2, a=[[1.0, 0.0, 1.1], [1.0, -2.2, 1.21]]).double().project_()
    radius = np.abs(np.roots(layer.a.detach()[0].numpy())).max()  # a +-j pair: exactly onto 0.999
    assert abs(radius - 0.999) < 1e-12


def test_lfilter_penalty_is_zero_after_projection_in_float32():
    """The step-down recursion runs in float64: in float32 it rounded a stable order-4 denominator's
    reflection coefficients past 1 (a penalty of 2.2e-6 right after ``project_()``)."""
    layer = LFilter(0, 4, a=torch.tensor([1.0, -4 * 1.05, 6 * 1.05**2, -4 * 1.05**3, 1.05**4]))
    layer.project_()
    assert layer.stability_penalty().item() == 0.0
    assert layer.stability_penalty().dtype == torch.float32


def test_conditioned_layer_with_channels_needs_a_channel_axis():
    """With ``channels=C``, a ``(B, T)`` signal whose ``B`` equals ``C`` was read as channels and ran
    every row through the first filter; it is an error now, as for other ``B``."""
    layer = ConditionedSOSFilter(2, 2, 4, channels=3).double()
    with pytest.raises(ValueError, match=r"expected x of shape \(B, 3, T\)"):
        layer(torch.randn(3, 40, dtype=torch.float64), torch.randn(3, 2, 10, dtype=torch.float64))


def test_conditioned_layer_streaming_edge_chunks_and_errors():
    """A chunk of no frames streams like the others; ``cond`` that is not a tensor and a ``state``
    that is not a layer state are TypeErrors naming them (they were AttributeErrors)."""
    layer = ConditionedSOSFilter(2, 2, 4, channels=3).double()
    x, cond = torch.randn(2, 3, 40, dtype=torch.float64), torch.randn(2, 2, 10, dtype=torch.float64)
    whole = layer(torch.cat([x, x], -1), torch.cat([cond, cond], -1))
    ya, st = layer(x, cond, return_state=True)
    yb, st = layer(x[..., :0], cond[..., :0], state=st, return_state=True)
    yc = layer(x, cond, state=tuple(st))  # a plain (zi, frame) pair is accepted
    torch.testing.assert_close(torch.cat([ya, yb, yc], -1), whole, rtol=1e-12, atol=1e-12)
    for bad in (None, [1.0, 2.0]):
        with pytest.raises(TypeError, match="cond"):
            layer(x, bad)
    with pytest.raises(TypeError, match="state"):
        layer(x, cond, state=torch.zeros(3))


def test_time_varying_stream_with_fewer_sos_batch_dims():
    """A chunk's ``sos`` may have fewer batch dims than the previous chunk's (they broadcast against
    ``x``): the interpolation ramp from the previous frame broadcasts too."""
    layer = TimeVaryingSOSFilter(1, hop_length=2)
    base = torch.tensor([1.0, 0.0, 0.0, 1.0, -0.5, 0.1], dtype=torch.float64)
    x = torch.randn(3, 8, dtype=torch.float64)
    whole = layer(x, base.expand(3, 4, 1, 6))
    ya, st = layer(x[:, :4], base.expand(3, 2, 1, 6), return_state=True)
    yb = layer(x[:, 4:], base.expand(2, 1, 6), state=st)
    torch.testing.assert_close(torch.cat([ya, yb], -1), whole, rtol=1e-12, atol=1e-12)


def test_frequency_lists_and_designs_stay_float64():
    """Python lists go through numpy (float64, as in scipy), not ``torch.as_tensor`` (float32):
    ``freqz``'s ``worN``, a float64 layer's frequency grid, ``from_sos`` of a list; integer
    ``worN`` as numpy or 0-d tensor integers as in ``freqz``."""
    import ssm_lfilter as sl

    b = torch.tensor(signal.butter(2, 0.2)[0])
    assert sl.freqz(b, worN=[0.2, 1.0])[0].tolist() == [0.2, 1.0]
    layer = LFilter(2, 2).double()
    assert layer.frequency_response([0.2])[0].tolist() == [0.2]
    for n in (np.int64(8), torch.tensor(8)):
        assert layer.frequency_response(n)[0].shape == (8,)
    sos = signal.butter(4, 0.2, output="sos")
    sos_layer = SOSFilter.from_sos(sos.tolist(), parametrization="coefficients", dtype=torch.float64)
    assert torch.equal(sos_layer.sos.detach(), torch.tensor(sos / sos[:, 3:4]))
