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


def pytest_collection_modifyitems(config, items):
    import pytest

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (GPU tier)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
