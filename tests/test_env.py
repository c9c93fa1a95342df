"""``ssm_lfilter._env.getenv``: the switches' cheap read gives what ``os.environ.get`` gives."""
import os

from ssm_lfilter import _env


def test_getenv_follows_os_environ(monkeypatch):
    name = "SSM_LFILTER_TEST_SWITCH"
    monkeypatch.delenv(name, raising=False)
    assert _env.getenv(name) is None and _env.getenv(name, "dflt") == "dflt"
    for value in ("1", "0", "", "triton", "ünïcode"):
        monkeypatch.setenv(name, value)
        assert _env.getenv(name, "dflt") == os.environ.get(name, "dflt") == value
    os.environ[name] = "set directly"
    assert _env.getenv(name) == "set directly"
    del os.environ[name]
    assert _env.getenv(name, "gone") == "gone"


def test_getenv_without_the_mapping_falls_back(monkeypatch):
    """A Python whose ``os.environ`` keeps no ``_data`` mapping reads ``os.environ.get`` itself."""
    monkeypatch.setattr(_env, "_DATA", None)
    monkeypatch.setenv("SSM_LFILTER_TEST_SWITCH", "x")
    assert _env.getenv("SSM_LFILTER_TEST_SWITCH") == "x"
    assert _env.getenv("SSM_LFILTER_TEST_UNSET", "d") == "d"
