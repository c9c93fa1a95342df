"""The examples run end to end with tiny settings."""
import importlib.util
import pathlib

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_modal_tone_classification_runs():
    out = _load("modal_tone_classification").main(["--steps", "2", "--length", "256", "--batch", "4", "--quiet"])
    assert 0.0 <= out["accuracy"] <= 1.0


def test_time_varying_eq_runs_and_improves():
    out = _load("time_varying_eq").main(["--steps", "15", "--frames", "8", "--hop", "32", "--batch", "2", "--quiet"])
    assert out["final_error"] < out["initial_error"]


@pytest.mark.parametrize("name", ["modal_tone_classification", "time_varying_eq"])
def test_examples_document_a_steps_option(name):
    text = (EXAMPLES / f"{name}.py").read_text()
    assert "--steps" in text and "__main__" in text
