"""Smoke tests of the benchmark suite (benchmarks/): it runs end to end on tiny sizes and writes
parseable outputs. Timings are never asserted; accuracy is, for our own code only."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _env():
    env = dict(os.environ)
    env.pop("TRITON_INTERPRET", None)  # the suite measures the default backend of the device
    env.pop("SSM_BENCH_USE_REFERENCE", None)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The CLI (`python -m benchmarks --quick --preset tiny`) in-process, into a temporary folder."""
    import contextlib
    import io

    from benchmarks.run import main

    out = tmp_path_factory.mktemp("bench")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["--quick", "--preset", "tiny", "--no-cpu-targets", "--out", str(out)])
    assert rc == 0, buf.getvalue()[-3000:]
    return out, buf.getvalue()


def test_module_entry_point():
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--help"], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "--quick" in proc.stdout, proc.stderr[-2000:]


def test_csv_rows_parse(tiny_run):
    out, _ = tiny_run
    from benchmarks.providers import PROVIDERS
    from benchmarks.report import COLUMNS

    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and list(rows[0].keys()) == COLUMNS
    assert {r["provider"] for r in rows} == set(PROVIDERS)  # every provider reported, run or skipped
    assert {r["status"] for r in rows} <= {"ok", "skipped", "error"}
    assert {r["mode"] for r in rows} == {"forward", "backward", "train"}
    for r in rows:
        if r["status"] == "ok":
            assert float(r["time_ms"]) > 0
            assert float(r["msamples_per_s"]) > 0 and float(r["copy_frac"]) > 0
            if r["provider"] != "copy":
                assert np.isfinite(float(r["rel_err"]))
        else:
            assert r["note"], "a skipped or failed provider must say why"
    ours = [r for r in rows if r["provider"] == "ssm_lfilter"]
    assert ours and all(r["status"] == "ok" for r in ours), [r["note"] for r in ours if r["status"] != "ok"]
    for r in ours:  # float32 vs float64 scipy / float64 loop
        assert float(r["rel_err"]) < 1e-4, r
        assert float(r["speedup"]) == pytest.approx(1.0)
    loops = [r for r in rows if r["provider"] in ("loop_tdf2_jit", "loop_nn_rnn") and r["status"] == "ok"]
    assert {r["provider"] for r in loops} == {"loop_tdf2_jit", "loop_nn_rnn"}
    assert all(float(r["rel_err"]) < 1e-4 for r in loops)
    assert any(r["provider"] == "scipy" and r["status"] == "ok" for r in rows)


def test_plots_and_markdown(tiny_run):
    out, stdout = tiny_run
    pngs = sorted((out / "plots").glob("*.png"))
    names = {p.name for p in pngs}
    assert {"time_T_forward.png", "speedup_T_forward.png", "time_T_train.png"} <= names
    import matplotlib.image as mpimg

    for p in pngs:
        assert p.read_bytes()[:8] == PNG_MAGIC
        assert mpimg.imread(str(p)).ndim == 3
    md = (out / "results.md").read_text()
    assert md.startswith("# ssm_lfilter benchmarks:")
    import datetime

    today = datetime.date.today().isoformat()  # the day of the run, not a fixed stamp
    for needle in ("**device**", "**versions**", "torch ", today, "## Headline", "| provider |",
                   "max rel err", "plots/time_T_forward.png"):
        assert needle in md, needle
    env = json.loads((out / "env.json").read_text())
    assert env["versions"]["torch"] == torch.__version__
    assert "ssm_lfilter" in stdout


def test_cpu_targets_tiny(tmp_path):
    from benchmarks.cpu_targets import run_cpu_targets

    res = run_cpu_targets(str(tmp_path), quick="tiny", log=lambda *a: None)
    assert (tmp_path / "cpu_targets.md").exists()
    data = json.loads((tmp_path / "cpu_targets.json").read_text())
    assert len(data["forward"]) == 2 and data["forward"][0]["ratio"] > 0
    assert data["train"]["ratio"] > 0 and data["train"]["grad_diff_x"] < 1e-4
    assert all("ssm_err" in r and "seq_f32_err" in r for r in data["accuracy"])
    assert "| forward target |" in res["markdown"]


def test_gpu_suite_plumbing_on_cpu(tmp_path):
    """run_gpu_suite's code path on CPU with every length shrunk (a subset of its sweeps)."""
    from benchmarks.run import run_gpu_suite

    res = run_gpu_suite(str(tmp_path), device="cpu", shrink=2**16, sweeps=("gpu_loop", "gpu_long", "gpu_torchaudio"),
                        plots=False, log=lambda *a: None)
    md = (tmp_path / "gpu_targets.md").read_text()
    assert "one long sequence, forward" in md and "% of copy BW" in md
    assert any(r["provider"] == "loop_tdf2_jit" and r["status"] == "ok" for r in res["rows"])


def test_host_time_plumbing_on_cpu():
    """benchmarks/host_time.py (gpu_check --host) on CPU tensors: the profile table comes back, every
    layer of the backward breakdown times (none fails), and each graph row either times both ways or says why it could not (CUDA graphs need a GPU)."""
    from benchmarks import host_time

    text = host_time.host_profile("cpu", calls=1, rows=5)
    assert "forward + backward `lfilter` calls" in text and "Self CPU" in text
    layers = host_time.backward_breakdown("cpu", calls=1).splitlines()
    assert len(layers) == 4 + 15 and all(float(row.split("|")[2]) > 0 for row in layers[4:])
    table = host_time.graph_table("cpu", R=1, T=64, bench=lambda fn: (fn(), 1.0)[1]).splitlines()
    assert len(table) == 2 + 4 * 2
    assert all("failed" in row or row.endswith("x |") for row in table[2:])


def test_short_signal_table_plumbing(tmp_path):
    """benchmarks/cpu_short_signals.py: a worker per tree (here this tree twice), a row a case with
    every column timed and the ratios filled in; the backward case has no scipy column."""
    from benchmarks import cpu_short_signals as css

    cases = ["lfilter biquad (1, 256)", "lfilter biquad (1, 4096), forward + backward"]
    table = css.run([ROOT, ROOT], rounds=1, budget=0.0, cases=cases).splitlines()
    rows = [line.split(" | ") for line in table if line.startswith("| lfilter")]
    assert [r[0].lstrip("| ") for r in rows] == cases
    assert all(float(r[1]) > 0 and float(r[2]) > 0 for r in rows)
    assert rows[0][4].endswith("x") and rows[1][3] == "-"


def test_clustered_poles_table(tmp_path):
    """benchmarks/clustered_poles.py: every design a row; on the float64 columns this tree stays
    within 4x of scipy's own error (the engine's sections and refinement, tests/test_ill_conditioned.py)."""
    from benchmarks import clustered_poles as cp

    rows = cp.run(T=1000)
    assert [r["design"] for r in rows] == list(cp.DESIGNS)
    assert all(r["ours64"] <= max(4 * r["scipy64"], 1e-13) for r in rows), rows
    md = cp.markdown(rows, 1000)
    assert md.count("\n| ") == len(rows) + 1  # the header and a row a design


def test_loop_baselines_match_scipy():
    import scipy.signal as ss

    from benchmarks.loop_rnn import RNNFilter, TDF2Loop, pack_tdf2_coeffs

    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 300))
    xt = torch.tensor(x)
    for b, a in (ss.butter(3, 0.2), ss.cheby1(3, 1, 0.3), ss.butter(1, 0.1), ss.butter(2, 0.05)):
        ref = ss.lfilter(b, a, x)
        c = pack_tdf2_coeffs(torch.tensor(b)[None].expand(3, -1), torch.tensor(a)[None].expand(3, -1))
        y = TDF2Loop()(xt, c)
        assert np.abs(y.numpy() - ref).max() <= 1e-10 * np.abs(ref).max()
        y = RNNFilter(b, a, dtype=torch.float64)(xt)
        assert np.abs(y.numpy() - ref).max() <= 1e-8 * np.abs(ref).max()
    b, a = ss.butter(4, 0.2)
    y = RNNFilter(b, a, dtype=torch.float64)(xt)
    assert np.abs(y.numpy() - ss.lfilter(b, a, x)).max() < 1e-8


def test_loop_gradients_match_autograd_reference():
    """TDF2Loop differentiates w.r.t. x and its (B, 7) coefficients (checked in float64)."""
    from benchmarks.loop_rnn import TDF2Loop

    x = torch.randn(2, 12, dtype=torch.float64, requires_grad=True)
    c = torch.tensor([[0.2, 0.1, 0.05, 0.02, -0.5, 0.2, -0.05]] * 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, c: TDF2Loop()(x, c), (x, c))


def test_gpu_test_tier_counts_outcomes_even_when_stopped(tmp_path):
    """``gpu_check``'s test tier runs ``pytest -v``, so its log names each test as it ends and a tier
    stopped by its budget still reports what ran (two leases stopped it with only dots to count)."""
    from benchmarks import gpu_check

    text = "\n".join([
        "[gw0] [ 10%] PASSED tests/test_a.py::test_one ",
        "[gw1] [ 20%] SKIPPED tests/test_a.py::test_two[cuda] ",
        "[gw0] [ 30%] FAILED tests/test_b.py::test_three ",
        "[gw2] [ 40%] PASSED tests/test_b.py::test_four ",
        "SKIPPED [1] tests/test_a.py:12: needs a CUDA device (GPU tier)",
        "FAILED tests/test_b.py::test_three - AssertionError",
    ])
    assert gpu_check._outcome_counts(text) == {"PASSED": 2, "SKIPPED": 1, "FAILED": 1}
    # on CPU the tier's one test here skips; a budget too short for pytest to start stops it
    line = gpu_check._test_tier(str(tmp_path), 300, ["tests/test_lane_float32.py"], workers=1)
    assert "exit 0" in line and "1 skipped" in line, line
    assert "SKIPPED tests/test_lane_float32.py::test_gpu_a_million" in (tmp_path / "gpu-tests.log").read_text()
    line = gpu_check._test_tier(str(tmp_path), 1, ["tests/test_lane_float32.py"], workers=1)
    assert "exit timeout: stopped after 1 s; so far none ended" in line, line


def test_lane_precision_model_stays_below_a_sequential_float32_loop():
    """``benchmarks/lane_precision.py``'s model of float32 lanes: on every hard biquad its error is
    below scipy's sequential float32 recurrence at every lane length, and on the hardest it grows with
    the lane's length (the table in docs/kernels-single-pass.md)."""
    from benchmarks import lane_precision

    rows = [line for line in lane_precision.table(n=1 << 14).splitlines() if line.startswith("| radius")]
    assert len(rows) == 4
    for line in rows:
        seq, *lanes = (float(c) for c in line.strip("|").split("|")[1:])
        assert all(e < seq for e in lanes), line
    hardest = [float(c) for c in rows[0].strip("|").split("|")[2:]]
    assert hardest == sorted(hardest), rows[0]
