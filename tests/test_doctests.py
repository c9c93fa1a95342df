"""Every docstring example in the package runs on CPU and prints what it says."""
import doctest
import importlib
import pkgutil

import pytest

import ssm_lfilter

_SKIP = {"ssm_lfilter.kernels", "ssm_lfilter.__main__"}  # kernels: Triton-only; __main__: runs the CLI


def _modules():
    names = ["ssm_lfilter"]
    for info in pkgutil.walk_packages(ssm_lfilter.__path__, "ssm_lfilter."):
        if not any(info.name == s or info.name.startswith(s + ".") for s in _SKIP):
            names.append(info.name)
    return names


@pytest.mark.parametrize("name", _modules())
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest example(s) failed in {name}"
