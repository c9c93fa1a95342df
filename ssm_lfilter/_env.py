"""Environment switches read at every call, cheaply.

The switches (``SSM_LFILTER_BACKEND``, ``kernels/_variants.py``'s) are read at each call so that
tests and users can change them at run time; a launch reads six or seven. ``os.environ.get`` encodes
the name and, for a variable that is not set, raises and catches a ``KeyError``: about 1.3 us a read
on this project's 2-core machine, a few times that on the GPU machines' hosts, where a launcher's
Python is the forward's floor (``benchmarks/results/cuda-nvidia-h200-2026-11-28-host-fused``). So a
read looks the encoded name up in the mapping ``os.environ`` keeps (``_data``, which its
``__setitem__`` and ``__delitem__`` update, ``monkeypatch.setenv`` included), with the same result as
``os.environ.get``; where a Python has no such mapping it is ``os.environ.get`` itself.
"""
from __future__ import annotations

import os

__all__ = ["getenv"]

_DATA = getattr(os.environ, "_data", None)
_ENCODE = getattr(os.environ, "encodekey", None)
_DECODE = getattr(os.environ, "decodevalue", None)


_KEYS: dict = {}  # encoded names (a dict, not functools.lru_cache, which torch.compile warns about)


def _key(name: str):
    key = _KEYS.get(name)
    if key is None:
        key = _KEYS[name] = _ENCODE(name)
    return key


def getenv(name: str, default: str | None = None) -> str | None:
    """``os.environ.get(name, default)``."""
    if _DATA is None or _ENCODE is None or _DECODE is None:
        return os.environ.get(name, default)
    value = _DATA.get(_key(name))
    return default if value is None else _DECODE(value)
