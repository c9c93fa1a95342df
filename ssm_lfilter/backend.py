"""Which implementation runs an op: the torch engine or the Triton kernels.

``SSM_LFILTER_BACKEND`` (read at every call, so tests and users can switch it at run time):

- ``auto`` (default): Triton for CUDA tensors where a kernel covers the case, the torch engine
  otherwise (CPU tensors; complex LTI and time-varying filters, which have no Triton kernel). A CUDA
  tensor that should run on Triton but cannot (Triton or the installed kernels missing) runs on the
  torch engine with a one-time RuntimeWarning that says why.
- ``torch``: always the torch engine.
- ``triton``: always the Triton kernels. On CPU tensors that needs ``TRITON_INTERPRET=1`` (set before
  the kernels are imported); anything the kernels cannot run raises instead of falling back.
"""
from __future__ import annotations

import importlib.util
import warnings

import torch

from ._env import getenv

_CHOICES = ("auto", "torch", "triton")
# Ops whose Triton kernels take complex data (held as real/imag pairs).
_COMPLEX_KERNELS = {"diag"}


def requested() -> str:
    mode = getenv("SSM_LFILTER_BACKEND", "auto").strip().lower() or "auto"
    if mode not in _CHOICES:
        raise ValueError(f"SSM_LFILTER_BACKEND: expected one of {', '.join(_CHOICES)}, got {mode!r}")
    return mode


def _triton_problem(op: str, t: torch.Tensor) -> str | None:
    """Why the Triton kernels cannot run ``op`` on ``t``, or None if they can."""
    if t.device.type == "cpu":
        if getenv("TRITON_INTERPRET") != "1":
            return "CPU tensors need TRITON_INTERPRET=1, set before ssm_lfilter's kernels are imported"
    elif t.device.type != "cuda":
        return f"no Triton kernels for device {t.device.type!r}"
    if t.is_complex() and op not in _COMPLEX_KERNELS:
        return f"the {op!r} kernels take real dtypes only, got {t.dtype}"
    return _import_problem()


def _import_problem() -> str | None:
    """Why Triton or the kernels cannot be imported, or None; once they can, they stay so (remembered,
    so a call does not search for them again)."""
    global _importable
    if _importable:
        return None
    if importlib.util.find_spec("triton") is None:
        return "triton is not installed (pip install triton)"
    if importlib.util.find_spec("ssm_lfilter.kernels") is None:
        # kernels/ sits beside the package in a checkout and is only importable once installed.
        return "ssm_lfilter.kernels is not importable: install the package (pip install -e .)"
    _importable = True
    return None


_importable = False


def use_triton(op: str, t: torch.Tensor) -> bool:
    """True when ``op`` on data like ``t`` should run on the Triton kernels."""
    mode = requested()
    if mode == "torch":
        return False
    problem = _triton_problem(op, t)
    if mode == "triton":
        if problem:
            raise RuntimeError(f"SSM_LFILTER_BACKEND=triton cannot run {op!r}: {problem}")
        return True
    if t.device.type != "cuda":
        return False
    if problem and not t.is_complex():
        _warn_once(f"ssm_lfilter: running {op!r} on the torch engine on CUDA, because {problem}")
    return problem is None


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)
