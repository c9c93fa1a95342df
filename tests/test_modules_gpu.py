"""GPU tier for the layers: each layer on CUDA (Triton kernels under the default backend) matches the
same layer on CPU, forward and gradients, and streams in chunks like one call. Skipped without CUDA.

TF32 is off here (see ``_full_fp32``): PyTorch's default ``torch.backends.cudnn.allow_tf32 = True`` runs
``ConditionedSOSFilter``'s ``Conv1d`` conditioning network with 10-bit mantissas on CUDA, which moves its
coefficients by ~1e-4 and its output by up to ~5e-4 (x ~ N(0, 1)), far beyond the tolerances below that
are meant for the filtering. Emulating that rounding on CPU reproduces the H200 failure (1248 mismatched
of 6144 against 1245 there, worst at the same (1, 0, 774) absolute and (0, 2, 701) relative), while the Triton
kernel itself, also under its GPU tile configuration, stays within 3e-6 of float64 (see
``tests/test_modules_precision.py``)."""
import copy

import pytest
import torch

from ssm_lfilter.modules import ConditionedSOSFilter, LFilter, ModalFilter, SOSFilter, TimeVaryingSOSFilter

pytestmark = pytest.mark.gpu

B, C, T, HOP = 2, 3, 1024, 64


@pytest.fixture(autouse=True)
def _full_fp32():
    """IEEE float32 convolutions and matmuls on CUDA, as on CPU, for the duration of each test."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _layers():
    torch.manual_seed(0)
    return {
        "LFilter": (LFilter(2, 2, channels=C, b=torch.tensor([0.2, 0.3, 0.1]), a=torch.tensor([1.0, -0.5, 0.2])), ()),
        "SOSFilter": (SOSFilter(2, channels=C), ()),
        "ModalFilter": (ModalFilter(C, 8), ()),
        "ConditionedSOSFilter": (ConditionedSOSFilter(4, 2, HOP, channels=C), (torch.randn(B, 4, T // HOP),)),
    }


@pytest.mark.parametrize("name", list(_layers()))
def test_layer_cuda_matches_cpu(name):
    layer, extra = _layers()[name]
    x = torch.randn(B, C, T)
    gpu = copy.deepcopy(layer).cuda()
    y_cpu = layer(x, *extra)
    y_gpu = gpu(x.cuda(), *(e.cuda() for e in extra))
    torch.testing.assert_close(y_gpu.cpu(), y_cpu, rtol=1e-4, atol=1e-5)
    y_cpu.square().mean().backward()
    y_gpu.square().mean().backward()
    for (n, p_cpu), p_gpu in zip(layer.named_parameters(), gpu.parameters()):
        torch.testing.assert_close(p_gpu.grad.cpu(), p_cpu.grad, rtol=1e-3, atol=1e-5, msg=f"{name}.{n}")


@pytest.mark.parametrize("name", list(_layers()))
def test_layer_cuda_streaming(name):
    layer, extra = _layers()[name]
    layer = layer.cuda()
    extra = tuple(e.cuda() for e in extra)
    x = torch.randn(B, C, T, device="cuda")
    with torch.no_grad():
        whole = layer(x, *extra)
        half = T // 2
        first_extra = tuple(e[..., : half // HOP] for e in extra)
        rest_extra = tuple(e[..., half // HOP :] for e in extra)
        y1, state = layer(x[..., :half], *first_extra, return_state=True)
        y2 = layer(x[..., half:], *rest_extra, state=state)
    torch.testing.assert_close(torch.cat([y1, y2], -1), whole, rtol=1e-4, atol=1e-5)


def test_time_varying_sos_cuda_matches_cpu():
    torch.manual_seed(0)
    sos = torch.tensor([0.2, 0.4, 0.2, 1.0, -0.5, 0.2]).repeat(T // HOP, 2, 1)
    sos[..., 4] += 0.1 * torch.randn(T // HOP, 2)
    layer = TimeVaryingSOSFilter(2, hop_length=HOP)
    x = torch.randn(B, T)
    torch.testing.assert_close(layer(x.cuda(), sos.cuda()).cpu(), layer(x, sos), rtol=1e-4, atol=1e-5)
