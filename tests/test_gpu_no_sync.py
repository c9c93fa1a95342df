"""GPU tier: the public functions never make the host wait for the GPU (no value is read back to
check or size anything), forward and backward. A hidden synchronization costs every call the GPU's
whole queue; ``torch.cuda.set_sync_debug_mode("error")`` turns one into an error. Without them a
forward call can also be captured in a CUDA graph (no host time at all on replay). Skipped without CUDA."""
import pytest
import torch

import ssm_lfilter as sl

pytestmark = pytest.mark.gpu


def _calls():
    T = 4096
    b, a = torch.tensor([0.2, 0.4, 0.2]), torch.tensor([1.0, -0.6, 0.3])
    at = torch.stack([torch.ones(T), -0.5 + 0.1 * torch.rand(T), 0.2 * torch.ones(T)], -1)
    sos = torch.tensor([[0.2, 0.4, 0.2, 1.0, -0.6, 0.3]] * 3)
    return {
        "lfilter": (lambda b, a, x: sl.lfilter(b, a, x), (b, a)),
        "lfilter zi": (lambda b, a, x: sl.lfilter(b, a, x, zi=torch.zeros(4, 2, device=x.device))[0], (b, a)),
        "sosfilt": (lambda sos, x: sl.sosfilt(sos, x), (sos,)),
        "linear_recurrence": (lambda a, x: sl.linear_recurrence(a, x), (torch.full((4, 1), 0.9),)),
        "time_varying_lfilter": (lambda b, at, x: sl.time_varying_lfilter(b, at, x), (b, at)),
    }


@pytest.mark.parametrize("name", list(_calls()))
def test_no_host_sync(name):
    fn, coefs = _calls()[name]
    x = torch.randn(4, 4096, device="cuda", requires_grad=True)
    coefs = [c.cuda().requires_grad_() for c in coefs]
    fn(*coefs, x)  # compile outside the checked region
    torch.cuda.synchronize()
    prev = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        y = fn(*coefs, x)
        grads = torch.autograd.grad(y.square().sum(), [x, *coefs])
    finally:
        torch.cuda.set_sync_debug_mode(prev)
    assert all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", list(_calls()))
def test_cuda_graph_replay_matches_eager(name):
    """Without host synchronizations a forward call can be captured in a CUDA graph: the replay
    gives the eager result, also after the input changes in place (the graph reads its buffer)."""
    fn, coefs = _calls()[name]
    coefs = [c.cuda() for c in coefs]
    x = torch.randn(4, 4096, device="cuda")
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm-up (compiles) off the capture, as CUDA graphs require
        fn(*coefs, x)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        y_static = fn(*coefs, x)
    for _ in range(2):
        x.copy_(torch.randn_like(x))
        graph.replay()
        torch.testing.assert_close(y_static, fn(*coefs, x), rtol=0, atol=0)
