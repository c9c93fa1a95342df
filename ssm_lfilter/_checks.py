"""Input checking and dtype promotion shared by the public functions.

Errors name the argument and say "expected ..., got ...". Value checks that read tensor data (a
zero leading coefficient) run on CPU tensors only: skipped while ``torch.compile`` traces, where they
would break the graph, and on GPU tensors, where reading a value synchronizes the host with the GPU
on every call. Shape, device and dtype checks always run.
"""
from __future__ import annotations

import math
import numbers
import operator

import torch

_HALF = (torch.float16, torch.bfloat16)
_FLOAT = (torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64, torch.complex128)


def as_tensor(value, name: str, device=None) -> torch.Tensor:
    """Accept tensors, numbers, lists and numpy arrays; anything else is a TypeError naming ``name``."""
    if isinstance(value, torch.Tensor):
        return value
    try:
        return torch.as_tensor(value, device=device)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"{name}: expected a tensor or array-like of numbers, got {type(value).__name__}") from err


def is_int_like(value) -> bool:
    """A Python or numpy integer, or a 0-d integer tensor (not a bool): how ``worN`` says "N
    frequencies" to ``freqz`` and to the layers' ``frequency_response``."""
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Integral):
        return True
    return isinstance(value, torch.Tensor) and value.ndim == 0 and not (
        value.is_floating_point() or value.is_complex())


def exact_tensor(value) -> torch.Tensor:
    """A tensor as given; anything else through numpy, so Python floats stay float64 as in scipy
    (``torch.as_tensor`` rounds a list of them to the default float32): for frequencies and designs,
    whose values must survive exactly."""
    if isinstance(value, torch.Tensor):
        return value
    import numpy as np

    return torch.from_numpy(np.array(value))


def same_device(**tensors: torch.Tensor | None) -> torch.device:
    """The one device of all given tensors, or a ValueError listing them."""
    devices = {t.device for t in tensors.values() if t is not None}
    if len(devices) > 1:
        listing = ", ".join(f"{k} on {t.device}" for k, t in tensors.items() if t is not None)
        raise ValueError(f"expected all tensors on one device, got {listing}")
    return next(iter(devices))


def dtypes(**tensors: torch.Tensor | None) -> tuple[torch.dtype, torch.dtype]:
    """``(result dtype, compute dtype)`` for the given tensors, following scipy's promotion.

    Integers and bools promote to the default float dtype (complex stays complex). Half precision
    comes back as half precision but is computed in float32.
    """
    result = None
    for name, t in tensors.items():
        if t is None:
            continue
        dt = t.dtype
        if not (dt in _FLOAT or not dt.is_floating_point and not dt.is_complex):
            raise TypeError(
                f"{name}: expected float16, bfloat16, float32, float64, complex64, complex128 or an integer dtype, got {dt}"
            )
        if not dt.is_floating_point and not dt.is_complex:
            dt = torch.get_default_dtype()
        result = dt if result is None else torch.promote_types(result, dt)
    compute = result
    if result in _HALF:
        compute = torch.float32
    return result, compute


def check_leading_coefficient(t: torch.Tensor, index: int, name: str, where: str | None = None) -> None:
    """scipy refuses ``a[0] == 0``; so do we, on CPU tensors: the leading coefficients are
    ``t[..., index]``. Not while compiling, where reading the value would break the graph, and not on
    a GPU, where it would stall the host until every queued kernel has run, on every call (a training
    step then waits for the GPU each time it filters): there a zero ``a[0]`` divides by zero and the
    output is inf/nan. (The slice is taken only here, after those returns: every op is host time.)"""
    if t.device.type != "cpu" or torch.compiler.is_compiling():
        return
    a0 = t[..., index]
    # one coefficient: a Python comparison (0.2 us) instead of a comparison, a reduction and a read (4 us)
    if (a0.item() == 0) if a0.numel() == 1 else bool((a0 == 0).any()):
        where = where or f"{name}[..., {index}]"
        raise ValueError(f"{name}: expected a nonzero leading denominator coefficient {where}, got 0")


def to_dtype(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``t.to(dtype)``, without the call when it would change nothing (a no-op ``.to`` still costs
    about a microsecond of host time, and the public functions make several a call)."""
    return t if t.dtype == dtype else t.to(dtype)


def broadcast_batch(name_shapes: dict[str, tuple[int, ...]]) -> torch.Size:
    """Broadcast the batch shapes of several arguments, or a ValueError naming every shape.
    Plain Python on the sizes (``torch.broadcast_shapes`` took 15 us a call, every filter call)."""
    shapes = list(name_shapes.values())
    out = [1] * max(len(s) for s in shapes)
    for shape in shapes:
        for i, n in enumerate(shape, len(out) - len(shape)):
            if n != out[i] and out[i] != 1 and n != 1:
                listing = ", ".join(f"{k} {tuple(v)}" for k, v in name_shapes.items())
                raise ValueError(f"expected batch shapes that broadcast together, got {listing}")
            if n != 1:
                out[i] = n
    return torch.Size(out)


def normalize_axis(axis, ndim: int, name: str = "axis") -> int:
    """``axis`` as a negative index into an ``ndim``-dim tensor (it then also names the same axis
    of an output with extra leading batch dims)."""
    try:  # an int, or an integer that says so (numpy's, a 0-dim integer tensor), as scipy accepts
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"{name}: expected an int, got {type(axis).__name__}") from None
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}: expected an axis in [{-ndim}, {ndim}), got {axis}")
    return axis - ndim if axis >= 0 else axis


def rows(t: torch.Tensor, batch: torch.Size, tail: tuple[int, ...]) -> torch.Tensor:
    """Flatten a coefficient or state tensor with shape ``(..., *tail)`` to ``(Rt, *tail)``.

    ``Rt`` is 1 when the tensor has no batch extent (one filter for every row), else ``prod(batch)``
    (expanded to the full batch first).
    """
    lead = t.shape[: t.dim() - len(tail)]
    if math.prod(lead) == 1:
        return t if t.shape == (1, *tail) else t.reshape(1, *tail)
    return flat_rows(t, batch, tail)


def time_last(t: torch.Tensor, axis: int) -> torch.Tensor:
    """``t`` with ``axis`` (negative) moved last; ``t`` itself when it is last already. The views of
    the public functions' shape plumbing are skipped where they would change nothing: each is a node
    of the autograd graph, which a training step's backward runs on every call."""
    return t if axis == -1 else t.movedim(axis, -1)


def flat_rows(t: torch.Tensor, batch: torch.Size, tail: tuple[int, ...]) -> torch.Tensor:
    """``t (..., *tail)`` broadcast to ``(*batch, *tail)`` and flattened to ``(prod(batch), *tail)``
    (``t`` itself when it has that shape already)."""
    R = math.prod(batch)
    if t.shape == (R, *tail):
        return t
    return t.expand(*batch, *tail).reshape(R, *tail)


def unflat_rows(t: torch.Tensor, batch: torch.Size, axis: int = -1) -> torch.Tensor:
    """The inverse of ``flat_rows`` then ``time_last``: ``t (R, *tail)`` as ``(*batch, *tail)`` with its
    last dim moved to ``axis``."""
    if t.shape[:1] != batch:
        t = t.reshape(*batch, *t.shape[1:])
    return t if axis == -1 else t.movedim(-1, axis)


def check_state_shape(zi: torch.Tensor, expected: tuple[int, ...], fixed: int, name: str = "zi") -> None:
    """scipy's rule for initial states: same ndim as ``expected``; every dim equal, or 1 (it then
    broadcasts), except dim ``fixed`` (the state axis), which must match."""
    ok = zi.dim() == len(expected) and all(
        s == e or (s == 1 and i != fixed % len(expected)) for i, (s, e) in enumerate(zip(zi.shape, expected))
    )
    if not ok:
        raise ValueError(f"{name}: expected shape {tuple(expected)}, got {tuple(zi.shape)}")
