"""Zero-phase forward-backward filtering: ``filtfilt`` and ``sosfiltfilt`` (scipy's 'pad' method)."""
from __future__ import annotations

import torch

from ._checks import broadcast_batch, normalize_axis
from .initial_conditions import as_tensors, lfilter_zi, sosfilt_zi

from .filtering import lfilter, sosfilt

__all__ = ["filtfilt", "sosfiltfilt"]

_PADTYPES = ("odd", "even", "constant", None)


def _extend(x: torch.Tensor, n: int, padtype) -> torch.Tensor:
    """scipy's ``odd_ext``/``even_ext``/``const_ext`` of ``x (..., T)`` by ``n`` samples at both ends."""
    if padtype is None or n < 1:
        return x
    first, last = x[..., :1], x[..., -1:]
    if padtype == "constant":
        left = first.expand(*x.shape[:-1], n)
        right = last.expand(*x.shape[:-1], n)
    else:
        left = torch.flip(x[..., 1 : n + 1], (-1,))
        right = torch.flip(x[..., -n - 1 : -1], (-1,))
        if padtype == "odd":
            left = 2 * first - left
            right = 2 * last - right
    return torch.cat([left, x, right], -1)


def _validate_pad(padtype, padlen, T: int, ntaps) -> int:
    """scipy's ``_validate_pad``: returns the edge length."""
    if padtype not in _PADTYPES:
        raise ValueError(f"padtype: expected 'even', 'odd', 'constant' or None, got {padtype!r}")
    if padtype is None:
        padlen = 0
    if padlen is None:
        edge = 3 * (ntaps() if callable(ntaps) else ntaps)
    else:
        edge = int(padlen)
        if edge < 0:
            raise ValueError(f"padlen: expected an int >= 0, got {padlen}")
    if T <= edge:
        raise ValueError(
            f"x: expected a length along axis greater than padlen, which is {edge}, got {T}"
        )
    return edge


def _prepare_x(x, axis: int):
    if x.ndim == 0:
        raise ValueError("x: expected at least 1 dim, got a 0-d tensor")
    # negative axis: it names the time dim of the output too, when coefficient batch dims are prepended
    nax = normalize_axis(axis, x.ndim)
    return x.movedim(nax, -1), nax


def filtfilt(b, a, x, axis: int = -1, padtype="odd", padlen=None) -> torch.Tensor:
    r"""Zero-phase filtering: apply an IIR filter forward, then backward (scipy's 'pad' method).

    ``x`` is extended by ``edge`` samples at both ends (odd, even or constant extension), filtered
    with :func:`~ssm_lfilter.lfilter` from the steady state ``lfilter_zi(b, a) * x_ext[0]``, reversed,
    filtered again from ``lfilter_zi(b, a) * y[-1]``, reversed back, and trimmed by ``edge``:

    .. math::
        y = \mathrm{rev}\big(H\,\mathrm{rev}(H\,x_{ext})\big)[edge:-edge],
        \qquad |Y(e^{i\omega})| = |H(e^{i\omega})|^2 |X(e^{i\omega})|,\ \text{no phase shift.}

    Args:
        b (Tensor): numerator ``(..., M+1)``.
        a (Tensor): denominator ``(..., N+1)``; ``a[..., 0]`` normalizes. Leading batch dims of
            ``b``/``a`` broadcast against ``x.shape`` without ``axis``, as in ``lfilter``.
        x (Tensor): signal ``(..., T)`` (time on ``axis``).
        axis (int): time axis of ``x``. Default ``-1``.
        padtype (str or None): ``'odd'`` (default), ``'even'``, ``'constant'`` or ``None`` (no
            extension).
        padlen (int, optional): extension length; default ``3 * max(len(a), len(b))``. Must be
            smaller than ``x.shape[axis]``.

    Returns:
        Tensor: ``y`` with ``x``'s shape (broadcast with coefficient batch dims), promoted dtype.

    Works on any device (the device of the tensors), differentiable with respect to ``b``, ``a``
    and ``x``, double backward included.

    Raises:
        ValueError: unknown ``padtype``, ``padlen >= x.shape[axis]``, 0-d ``x``, or invalid ``a``.

    Example:
        >>> import torch, ssm_lfilter as sl
        >>> b = torch.tensor([0.0675, 0.1349, 0.0675], dtype=torch.float64)
        >>> a = torch.tensor([1.0, -1.1430, 0.4128], dtype=torch.float64)
        >>> x = torch.randn(2, 100, dtype=torch.float64)
        >>> y = sl.filtfilt(b, a, x)
        >>> y.shape
        torch.Size([2, 100])
        >>> c = torch.ones(100, dtype=torch.float64)   # zero-phase, unit DC gain: constants pass
        >>> torch.allclose(sl.filtfilt(b, a, c), c * (b.sum() / a.sum()) ** 2)
        True
    """
    b, a, x, rdt = as_tensors(b, a, x, names=("b", "a", "x"))
    if b.ndim == 0 or a.ndim == 0:
        raise ValueError(
            f"b, a: expected at least 1 dim, got b {tuple(b.shape)} and a {tuple(a.shape)}"
        )
    xm, nax = _prepare_x(x, axis)
    edge = _validate_pad(padtype, padlen, xm.shape[-1], max(a.shape[-1], b.shape[-1]))
    ext = _extend(xm, edge, padtype)
    zi = lfilter_zi(b, a)  # (cb..., K)
    batch = broadcast_batch({"b, a": zi.shape[:-1], "x without axis": ext.shape[:-1]})
    ext = ext.expand(*batch, ext.shape[-1])
    zi = zi.expand(*batch, zi.shape[-1])
    y, _ = lfilter(b, a, ext, axis=-1, zi=zi * ext[..., :1])
    y = torch.flip(y, (-1,))
    y, _ = lfilter(b, a, y, axis=-1, zi=zi * y[..., :1])
    y = torch.flip(y, (-1,))
    if edge > 0:
        y = y[..., edge:-edge]
    return y.movedim(-1, nax).to(rdt)


def _sos_ntaps(sos: torch.Tensor) -> int:
    n_sections = sos.shape[-2]
    z2 = (sos[..., 2] == 0).sum(-1)
    z5 = (sos[..., 5] == 0).sum(-1)
    return int((2 * n_sections + 1 - torch.minimum(z2, z5)).max()) if sos.numel() else 1


def sosfiltfilt(sos, x, axis: int = -1, padtype="odd", padlen=None) -> torch.Tensor:
    r"""Zero-phase filtering with cascaded second-order sections (scipy's ``sosfiltfilt``).

    As :func:`filtfilt` with :func:`~ssm_lfilter.sosfilt` and :func:`~ssm_lfilter.sosfilt_zi`: the
    extended signal is filtered forward from ``sosfilt_zi(sos) * x_ext[0]``, then backward from
    ``sosfilt_zi(sos) * y[-1]``, and trimmed.

    Args:
        sos (Tensor): ``(..., n_sections, 6)``, rows ``[b0, b1, b2, a0, a1, a2]``. Leading batch dims
            broadcast against ``x.shape`` without ``axis``, as in ``sosfilt``.
        x (Tensor): signal ``(..., T)`` (time on ``axis``).
        axis (int): time axis of ``x``. Default ``-1``.
        padtype (str or None): ``'odd'`` (default), ``'even'``, ``'constant'`` or ``None``.
        padlen (int, optional): extension length; default ``3 * ntaps`` with
            ``ntaps = 2 * n_sections + 1 - min((sos[:, 2] == 0).sum(), (sos[:, 5] == 0).sum())``
            (for batched ``sos``, the largest over the batch). Must be smaller than ``x.shape[axis]``.
            The default reads values of ``sos``: on a GPU that waits for the GPU, and under
            ``torch.compile(fullgraph=True)`` it cannot be traced (a data-dependent shape); pass
            ``padlen`` (for scipy's default, ``3 * (2 * n_sections + 1)`` when no section has a zero
            ``b2`` and ``a2``) to avoid both.

    Returns:
        Tensor: ``y`` with ``x``'s shape (broadcast with ``sos`` batch dims), promoted dtype.

    Works on any device, differentiable with respect to ``sos`` and ``x``, double backward included.

    Raises:
        ValueError: ``sos`` not ``(..., n_sections, 6)``, unknown ``padtype``,
        ``padlen >= x.shape[axis]``, 0-d ``x``.

    Example:
        >>> import torch, ssm_lfilter as sl
        >>> sos = torch.tensor([[0.1, 0.2, 0.1, 1.0, -0.6, 0.2],
        ...                     [1.0, 0.5, 0.0, 1.0, -0.3, 0.0]], dtype=torch.float64)
        >>> x = torch.randn(100, 3, dtype=torch.float64)
        >>> y = sl.sosfiltfilt(sos, x, axis=0)
        >>> y.shape
        torch.Size([100, 3])
    """
    sos, x, rdt = as_tensors(sos, x, names=("sos", "x"))
    if sos.ndim < 2 or sos.shape[-1] != 6:
        raise ValueError(f"sos: expected shape (..., n_sections, 6), got {tuple(sos.shape)}")
    xm, nax = _prepare_x(x, axis)
    edge = _validate_pad(padtype, padlen, xm.shape[-1], lambda: _sos_ntaps(sos))
    ext = _extend(xm, edge, padtype)
    zi = sosfilt_zi(sos)  # (n_sections, cb..., 2)
    batch = broadcast_batch({"sos": zi.shape[1:-1], "x without axis": ext.shape[:-1]})
    ext = ext.expand(*batch, ext.shape[-1])
    zi = zi.reshape(zi.shape[0], *([1] * (len(batch) - zi.ndim + 2)), *zi.shape[1:])
    zi = zi.expand(zi.shape[0], *batch, 2)
    y, _ = sosfilt(sos, ext, axis=-1, zi=zi * ext[..., :1])
    y = torch.flip(y, (-1,))
    y, _ = sosfilt(sos, y, axis=-1, zi=zi * y[..., :1])
    y = torch.flip(y, (-1,))
    if edge > 0:
        y = y[..., edge:-edge]
    return y.movedim(-1, nax).to(rdt)
