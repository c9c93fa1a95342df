"""Test setup shared by every test module.

Without a GPU, Triton kernels can only run under the interpreter, and TRITON_INTERPRET must be set
before any @triton.jit function is defined, so it is set here, before ssm_lfilter.kernels is imported.
"""
import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
if os.environ.get("TRITON_INTERPRET") == "1":
    from _fast_interpreter import install

    install()

torch.set_default_dtype(torch.float32)


# The longest files first: with `-n auto --dist loadfile` a file runs whole on one worker, and the sm_90
# compile fixture (about 6 minutes from a cold Triton cache on 2 cores) set the suite's end when it
# was handed out last.
_SLOW_FIRST = ("test_kernel_resources.py", "test_power_table.py")


def pytest_collection_modifyitems(config, items):
    import pytest

    def rank(item):
        name = item.path.name
        return _SLOW_FIRST.index(name) if name in _SLOW_FIRST else len(_SLOW_FIRST)

    items.sort(key=rank)  # stable: every worker collects the same order
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (GPU tier)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
