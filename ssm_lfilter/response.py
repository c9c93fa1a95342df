"""Frequency responses: ``freqz`` and ``sosfreqz`` with scipy.signal semantics, differentiable."""
from __future__ import annotations

import math
import numbers

import torch

from ._checks import as_tensor, check_leading_coefficient, exact_tensor, is_int_like
from .initial_conditions import as_tensors

__all__ = ["freqz", "sosfreqz"]


def _complex_of(dtype: torch.dtype) -> torch.dtype:
    return {torch.float32: torch.complex64, torch.float64: torch.complex128}.get(dtype, dtype)


def _real_of(dtype: torch.dtype) -> torch.dtype:
    return {torch.complex64: torch.float32, torch.complex128: torch.float64}.get(dtype, dtype)


def _validate_fs(fs) -> float:
    if isinstance(fs, torch.Tensor):
        if fs.numel() != 1:
            raise ValueError(f"fs: expected a single scalar, got a tensor of shape {tuple(fs.shape)}")
        return float(fs)
    if fs is None or not isinstance(fs, numbers.Real):
        raise ValueError(f"fs: expected a single real scalar, got {fs!r}")
    return float(fs)


def _polyval_at(c: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``sum_k c[..., k] exp(-i w k)`` for ``c (..., L)``, ``w (F,)``: ``(..., F)``."""
    k = torch.arange(c.shape[-1], dtype=w.dtype, device=w.device)
    E = torch.polar(torch.ones((), dtype=w.dtype, device=w.device), -w[:, None] * k[None, :])  # (F, L)
    return c.to(E.dtype) @ E.transpose(0, 1)


def _exact(worN):
    """A frequency list through numpy (float64, as scipy's), left as it is if numpy cannot take it (the
    error then names ``worN``)."""
    try:
        return exact_tensor(worN)
    except (TypeError, ValueError):
        return worN


def _grid(N: int, whole: bool, dtype, device) -> torch.Tensor:
    last = 2 * math.pi if whole else math.pi
    return torch.arange(N, dtype=torch.float64, device=device).mul(last / N).to(dtype) if N else torch.zeros(
        0, dtype=dtype, device=device
    )


def _freqz(b: torch.Tensor, a: torch.Tensor, worN, whole: bool, fs: float):
    dtype = b.dtype
    real = _real_of(dtype)
    cplx = _complex_of(dtype)
    device = b.device
    if is_int_like(worN):
        N = int(worN)
        if N < 0:
            raise ValueError(f"worN: expected a nonnegative int, got {N}")
        w = _grid(N, whole, real, device)
        n_fft = N if whole else 2 * N
        L = max(b.shape[-1], a.shape[-1])
        if N > 0 and n_fft >= L:
            # FFT path (as scipy does for FIR): the DFT grid of n_fft points is exactly w.
            if not whole and not dtype.is_complex:
                num = torch.fft.rfft(b, n=n_fft, dim=-1)[..., :N]
                den = torch.fft.rfft(a, n=n_fft, dim=-1)[..., :N]
            else:
                num = torch.fft.fft(b.to(cplx), n=n_fft, dim=-1)[..., :N]
                den = torch.fft.fft(a.to(cplx), n=n_fft, dim=-1)[..., :N]
            h = num / den if a.shape[-1] > 1 else num / a.to(cplx)
        else:
            h = _polyval_at(b, w) / _polyval_at(a, w)
    else:
        if isinstance(worN, complex):
            worN = worN.real
        w = as_tensor(worN if isinstance(worN, torch.Tensor) else _exact(worN), "worN", device).to(device)
        if w.is_complex():
            w = w.real
        if not w.is_floating_point():
            w = w.to(torch.get_default_dtype())
        w = torch.atleast_1d(w).to(real)
        if w.ndim != 1:
            raise ValueError(f"worN: expected an int or a 1-D array of frequencies, got shape {tuple(w.shape)}")
        w = 2 * math.pi * w / fs
        h = _polyval_at(b, w) / _polyval_at(a, w)
    return w * (fs / (2 * math.pi)), h


def freqz(b, a=1, worN=512, whole: bool = False, fs: float = 2 * math.pi):
    r"""Frequency response of a digital filter, as ``scipy.signal.freqz``.

    .. math::
        H(e^{i\omega}) = \frac{\sum_{k=0}^{M} b_k e^{-i\omega k}}{\sum_{k=0}^{N} a_k e^{-i\omega k}}

    Args:
        b (Tensor): numerator ``(..., M+1)``. Unlike scipy (which puts extra dims of ``b`` after
            the coefficients), batch dims are leading, as everywhere in ssm_lfilter.
        a (Tensor or number): denominator ``(..., N+1)``; default ``1`` (FIR). Batch dims broadcast
            with ``b``'s.
        worN (int or Tensor): an int ``N``: ``N`` frequencies equally spaced on ``[0, pi)``
            (``[0, 2 pi)`` with ``whole``), computed with an FFT when ``2N`` (``N`` with ``whole``)
            is at least the number of coefficients; otherwise a 1-D array of frequencies, in the
            units of ``fs``. Default 512.
        whole (bool): cover the whole unit circle instead of the upper half. Default ``False``.
        fs (float): sampling frequency; the returned ``w`` is in its units. Default ``2*pi``
            (radians/sample).

    Returns:
        (Tensor, Tensor): ``w (n_freqs,)`` (real dtype) and ``h (..., n_freqs)`` (complex dtype of
        the promoted coefficient dtype; integers promote to the default float dtype, float16 and
        bfloat16 compute in float32).

    Works on the device of the coefficients and is differentiable with respect to ``b`` and ``a``
    (and ``worN`` when it is a tensor), double backward included. scipy's ``plot`` and
    ``include_nyquist`` options are not provided.

    Raises:
        ValueError: ``worN < 0``, ``fs`` not a scalar, 0-d coefficient tensors with a non-scalar
        shape mismatch.

    Example:
        >>> import math, torch, ssm_lfilter as sl
        >>> b = torch.tensor([0.5, 0.5], dtype=torch.float64)
        >>> w, h = sl.freqz(b, worN=4)
        >>> w.shape, h.shape, h.dtype
        (torch.Size([4]), torch.Size([4]), torch.complex128)
        >>> torch.allclose(h.abs(), torch.cos(w / 2))
        True
        >>> w, h = sl.freqz(b, [1.0, -0.5], worN=torch.tensor([0.0, 100.0]), fs=400)
        >>> torch.allclose(h[0].real, torch.tensor(2.0, dtype=torch.float64))
        True
    """
    b, a, _ = as_tensors(b, a, names=("b", "a"))
    b = torch.atleast_1d(b)
    a = torch.atleast_1d(a)
    fs = _validate_fs(fs)
    return _freqz(b, a, worN, whole, fs)


def sosfreqz(sos, worN=512, whole: bool = False, fs: float = 2 * math.pi):
    r"""Frequency response of cascaded second-order sections, as ``scipy.signal.sosfreqz``.

    .. math::
        H(e^{i\omega}) = \prod_{s} \frac{b_{s,0} + b_{s,1} e^{-i\omega} + b_{s,2} e^{-2i\omega}}
                                       {a_{s,0} + a_{s,1} e^{-i\omega} + a_{s,2} e^{-2i\omega}}

    Args:
        sos (Tensor): ``(..., n_sections, 6)``, rows ``[b0, b1, b2, a0, a1, a2]``.
        worN, whole, fs: as in :func:`freqz`.

    Returns:
        (Tensor, Tensor): ``w (n_freqs,)`` and ``h (..., n_freqs)``.

    Works on ``sos``'s device and is differentiable with respect to ``sos`` (double backward
    included). scipy requires ``sos[..., 3] == 1``; here (as in :func:`~ssm_lfilter.sosfilt`) each
    section is normalized by its nonzero ``sos[..., 3]`` instead, so the gradient with respect to
    every entry of ``sos`` exists; with ``sos[..., 3] == 1`` the result is scipy's.

    Raises:
        ValueError: ``sos`` not ``(..., n_sections, 6)``, with no sections, or with
        ``sos[..., 3] == 0``.

    Example:
        >>> import torch, ssm_lfilter as sl
        >>> sos = torch.tensor([[0.1, 0.2, 0.1, 1.0, -0.6, 0.2],
        ...                     [1.0, 0.5, 0.0, 1.0, -0.3, 0.0]], dtype=torch.float64)
        >>> w, h = sl.sosfreqz(sos, worN=64)
        >>> h.shape
        torch.Size([64])
        >>> _, h0 = sl.freqz(sos[0, :3], sos[0, 3:], worN=64)
        >>> _, h1 = sl.freqz(sos[1, :3], sos[1, 3:], worN=64)
        >>> torch.allclose(h, h0 * h1)
        True
    """
    sos, _ = as_tensors(sos, names=("sos",))
    if sos.ndim == 1:
        sos = sos.unsqueeze(0)
    if sos.ndim < 2 or sos.shape[-1] != 6:
        raise ValueError(f"sos: expected shape (..., n_sections, 6), got {tuple(sos.shape)}")
    if sos.shape[-2] == 0:
        raise ValueError("sos: expected at least one section, got n_sections = 0")
    check_leading_coefficient(sos, 3, "sos")
    fs = _validate_fs(fs)
    w, hs = _freqz(sos[..., :3], sos[..., 3:], worN, whole, fs)  # hs (..., n_sections, F)
    h = hs[..., 0, :]
    for s in range(1, hs.shape[-2]):
        h = h * hs[..., s, :]
    return w, h
