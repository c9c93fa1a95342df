"""The system-identification demo and its command line, with tiny settings."""
import subprocess
import sys

import numpy as np
import pytest
from scipy import signal

from ssm_lfilter import cli
from ssm_lfilter.demo import DEFAULT_TARGET_SOS, parse_target, run_demo

TINY = ["--steps", "3", "--batch", "2", "--length", "256", "--no-progress"]


def test_default_target_is_the_documented_scipy_design():
    np.testing.assert_allclose(DEFAULT_TARGET_SOS, signal.ellip(4, 1, 40, 0.3, output="sos"), rtol=1e-12)


def test_cli_demo_writes_pngs_and_prints_summary(tmp_path, capsys):
    assert cli.main(["demo", "--out", str(tmp_path / "out"), *TINY]) == 0
    printed = capsys.readouterr().out
    assert "spectral error" in printed and " dB" in printed and " s on cpu" in printed
    for name in ("magnitude.png", "phase.png", "loss.png", "summary.json"):
        path = tmp_path / "out" / name
        assert path.exists() and path.stat().st_size > 0, name
    assert (tmp_path / "out" / "magnitude.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_demo_with_designed_and_file_targets(tmp_path):
    result = run_demo(target="cheby1:4:0.2-0.4:bandpass:rp=0.5", out=str(tmp_path / "a"), steps=2, batch=1,
                      length=128, progress=False)
    assert result.n_sections == 4 and np.isfinite(result.spectral_error_db)
    np.save(tmp_path / "t.npy", signal.butter(4, 0.3, output="sos"))
    result = run_demo(target=str(tmp_path / "t.npy"), out=str(tmp_path / "b"), steps=2, batch=1, length=128,
                      sections=3, progress=False)
    assert result.n_sections == 3


@pytest.mark.parametrize("spec", ["nonsense", "butter:x:0.2", "butter:4:0.2:sideways",
                                  # scipy raised ZeroDivisionError / OverflowError / an empty argmin here
                                  "ellip:4:0.2:rs=0", "cheby1:4:0.2:rp=0", "cheby2:4:0.2:rs=0",
                                  "cheby1:4:0.2:rp=1e308", "butter:4:nan", "ellip:4:0.2:rp=inf",
                                  "butter:0:0.2", "butter:4:1.5"])
def test_bad_target_is_a_clear_error(spec):
    with pytest.raises(ValueError, match="--target"):
        parse_target(spec)


def test_cli_reports_errors_without_traceback(tmp_path, capsys):
    assert cli.main(["demo", "--target", "nonsense", "--out", str(tmp_path), *TINY]) == 2
    assert "error: --target" in capsys.readouterr().err


def test_zero_sections_is_an_error_not_the_default(tmp_path, capsys):
    """``--sections 0`` once fell back to the target's count (``sections or ...``)."""
    assert cli.main(["demo", "--sections", "0", "--out", str(tmp_path), *TINY]) == 2
    assert "sections >= 1" in capsys.readouterr().err


def test_python_dash_m_entry_point():
    out = subprocess.run([sys.executable, "-m", "ssm_lfilter", "demo", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and "--target" in out.stdout and "--device" in out.stdout
