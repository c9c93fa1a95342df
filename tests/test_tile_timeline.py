"""The clock stamps of the single-pass kernels (``kernels/_clock.py``) and their summary
(``benchmarks/tile_timeline.py``).

The stamps are PTX, so they run on a GPU only: here the summary is checked on made-up rows, the
launchers' checks of ``clock`` under the interpreter, and the GPU tier runs the stamped kernels. That
they compile to clock reads without costing registers is ``tests/test_kernel_resources.py``'s.
"""
from __future__ import annotations

import pytest
import torch

from benchmarks import tile_timeline
from ssm_lfilter.kernels import _clock

from helpers import scipy_lti


def _rows(phases: list[list[int]], polls: list[int], ns: list[tuple[int, int]], sms: list[int]) -> torch.Tensor:
    """Stamp rows from each tile's phase lengths (cycles), polls, (start, end) ns and SM."""
    rows = torch.zeros(len(phases), _clock.STAMPS, dtype=torch.int64)
    col = {f: i for i, f in enumerate(_clock.FIELDS)}
    for i, (lengths, p, (n0, n1), sm) in enumerate(zip(phases, polls, ns, sms)):
        t = 1000 * (i + 1)  # each SM's clock starts anywhere
        rows[i, col["start"]] = t
        for f, n in zip(_clock.CYCLE_FIELDS[1:], lengths):
            t += n
            rows[i, col[f]] = t
        rows[i, col["polls"]], rows[i, col["ns_start"]], rows[i, col["ns_end"]], rows[i, col["sm"]] = p, n0, n1, sm
    return rows


def test_summary_of_made_up_rows():
    phases = [[100, 200, 50, 30, 1000, 30, 200, 10],
              [300, 200, 50, 30, 3000, 30, 200, 10],
              [200, 200, 50, 30, 2000, 30, 200, 10]]
    rows = _rows(phases, polls=[0, 4, 1], ns=[(0, 1000), (0, 2000), (1000, 2000)], sms=[0, 1, 1])
    st = tile_timeline.summarize(rows, sm_count=132)
    names = [p[0] for p in st["phases"]]
    assert names == [name for name, _ in tile_timeline.PHASES]
    med = dict((p[0], p[1]) for p in st["phases"])
    assert med["load"] == 200 and med["look-back"] == 2000 and med["rest"] == 10
    assert abs(sum(p[3] for p in st["phases"]) - 1) < 1e-12
    assert st["tile_cycles"] == sum(phases[2])  # the median tile
    assert st["polls"][0] == 1 and abs(st["polls"][2] - 2 / 3) < 1e-12
    # 4000 ns of tiles over a 2000 ns span on 2 SMs: one resident an SM on average
    assert st["sms"] == 2 and st["span_ns"] == 2000 and abs(st["resident"] - 1.0) < 1e-12
    text = tile_timeline.summary_markdown("made up", st, 0.1, 0.11)
    assert "| look-back | 2000 |" in text and "0.100 ms plain" in text and "of 132 SMs" in text


def test_summary_rejects_bad_rows():
    with pytest.raises(ValueError, match="expected stamp rows"):
        tile_timeline.summarize(torch.zeros(0, _clock.STAMPS, dtype=torch.int64))
    with pytest.raises(ValueError, match="expected stamp rows"):
        tile_timeline.summarize(torch.zeros(4, 3, dtype=torch.int64))


def test_clock_needs_a_gpu_tensor_and_one_filter():
    """``clock`` is refused on CPU tensors, with a wrong dtype, for cascades and where the single
    pass does not run (it has no stamps to give)."""
    x = torch.randn(2, 64)
    b, a = torch.tensor([[0.2, 0.1]]), torch.tensor([[-0.5]])
    from ssm_lfilter import kernels as K

    with pytest.raises(ValueError, match="expected clock as an int64 CUDA tensor"):
        K.lti(x, b, a, x.new_zeros(2, 0), clock=torch.empty(0, dtype=torch.int64))
    meta = torch.empty(0, dtype=torch.int32, device="meta")
    with pytest.raises(ValueError, match="expected clock as an int64 CUDA tensor"):
        _clock.prepare_clock(meta, 4, 1, "op")
    with pytest.raises(ValueError, match="expected one filter with clock"):
        _clock.prepare_clock(torch.empty(0, dtype=torch.int64, device="meta"), 4, 2, "op")
    # a filter the single pass does not run (order 5) has no stamps to give
    with pytest.raises(ValueError, match="expected a filter the single-pass kernel runs"):
        K.lti(x, torch.ones(1, 6), torch.full((1, 5), 0.01), x.new_zeros(2, 0), single_pass=True,
              clock=torch.empty(0, dtype=torch.int64, device="meta"))
    with pytest.raises(ValueError, match="expected a filter the single-pass kernel runs"):
        K.time_varying(x, torch.full((1, 64, 6), 0.01), clock=torch.empty(0, dtype=torch.int64, device="meta"))
    assert not _clock.prepare_clock(None, 4, 2, "op")
    c = torch.full((3,), 7, dtype=torch.int64, device="meta")
    assert _clock.prepare_clock(c, 5, 1, "op") and c.shape == (5, _clock.STAMPS)


@pytest.mark.gpu
@pytest.mark.parametrize("kind", ["lti", "lti_adjoint", "time_varying", "time_varying_adjoint"])
def test_gpu_stamped_kernels_match_and_stamp_in_order(kind):
    """The stamped build gives the same bits as the default one, and every tile's cycle stamps are in
    phase order, on the SMs the device has."""
    from ssm_lfilter import kernels as K

    torch.manual_seed(0)
    R, T = 4, 1 << 16
    x = torch.randn(R, T, device="cuda", dtype=torch.float64)
    b = torch.tensor([[0.2, 0.3, 0.1]], device="cuda", dtype=torch.float64)
    a = torch.tensor([[-1.2, 0.5]], device="cuda", dtype=torch.float64)
    at = (a[:, None, :] * (1 + 0.1 * torch.rand(R, T, 1, device="cuda", dtype=torch.float64)))
    g = torch.randn_like(x)
    clock = torch.empty(0, dtype=torch.int64, device="cuda")
    runs = {
        "lti": lambda **kw: (K.lti(x, b, a, x.new_zeros(R, 0), **kw),),
        "lti_adjoint": lambda **kw: K.lti_adjoint(g, x, K.lti(x, b, a, x.new_zeros(R, 0)), b, a, 0, True, 3, 2,
                                                  **kw),
        "time_varying": lambda **kw: (K.time_varying(x, at, **kw),),
        "time_varying_adjoint": lambda **kw: K.time_varying_adjoint(g, at, K.time_varying(x, at), **kw),
    }
    plain, timed = runs[kind](), runs[kind](clock=clock)
    for p, t in zip(plain, timed):
        assert (p is None and t is None) or torch.equal(p, t)
    if kind == "lti":
        ref = scipy_lti(x.cpu(), b.cpu(), a.cpu(), x.new_zeros(R, 0).cpu())
        torch.testing.assert_close(timed[0].cpu(), torch.from_numpy(ref), rtol=1e-9, atol=1e-9)
    col = {f: i for i, f in enumerate(_clock.FIELDS)}
    rows = clock.cpu()
    cyc = rows[:, [col[f] for f in _clock.CYCLE_FIELDS]]
    assert rows.shape[0] >= 8 and bool((cyc[:, 1:] >= cyc[:, :-1]).all()) and bool((cyc[:, 0] > 0).all())
    assert bool((rows[:, col["ns_end"]] >= rows[:, col["ns_start"]]).all())
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    assert bool((rows[:, col["sm"]] >= 0).all() and (rows[:, col["sm"]] < sms).all())
    assert bool((rows[:, col["polls"]] >= 0).all())
    st = tile_timeline.summarize(rows, sms)
    assert st["tiles"] == rows.shape[0] and st["tile_cycles"] > 0


@pytest.mark.gpu
def test_gpu_timeline_report():
    """``gpu_check.py --timeline``'s stage on one case: both times and the phase table."""
    text = tile_timeline.timeline_report("cuda", only=["lti forward, order 2, 32 x 2^20"])
    assert "ms plain" in text and "ms with the stamps" in text, text
    assert "| look-back |" in text and "| lane scan |" in text, text
