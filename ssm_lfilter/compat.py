"""Drop-in replacements for other libraries' filtering functions."""
from __future__ import annotations

import torch

from .filtering import lfilter

__all__ = ["torchaudio_lfilter"]


def torchaudio_lfilter(
    waveform: torch.Tensor,
    a_coeffs: torch.Tensor,
    b_coeffs: torch.Tensor,
    clamp: bool = True,
    batching: bool = True,
) -> torch.Tensor:
    r"""Drop-in for ``torchaudio.functional.lfilter``, on ssm_lfilter's differentiable engine.

    Note torchaudio's argument order: ``waveform, a_coeffs, b_coeffs`` (scipy's is ``b, a, x``).
    Each filter runs from rest (zero initial state), direct form:

    .. math::
        a_0\, y[n] = \sum_{k=0}^{K-1} b_k\, x[n-k] - \sum_{k=1}^{K-1} a_k\, y[n-k]

    then, with ``clamp=True`` (torchaudio's default), ``y`` is clipped to ``[-1, 1]``.

    Args:
        waveform (Tensor): ``(..., T)``.
        a_coeffs (Tensor): denominator ``(K,)`` or ``(F, K)``; ``a[..., 0]`` normalizes.
        b_coeffs (Tensor): numerator, the same shape as ``a_coeffs``.
        clamp (bool): clip the output to ``[-1, 1]``. Default ``True``. **Clipping zeroes the
            gradient wherever the output clips**, exactly as torchaudio does; pass ``clamp=False``
            when training through the filter.
        batching (bool): with 2-D coefficients ``(F, K)``: ``True`` (default) filters the waveform's
            rows ``(..., F, T)`` one to one (``waveform.shape[-2]`` must be ``F``); ``False`` applies
            every filter to the whole waveform, giving ``(..., F, T)``. 1-D coefficients filter all
            of ``waveform`` either way.

    Returns:
        Tensor: ``(..., T)``, or ``(..., F, T)`` with 2-D coefficients and ``batching=False``.

    Runs on the device of its inputs (all on one device) and is differentiable with respect to
    ``waveform``, ``a_coeffs`` and ``b_coeffs`` (double backward included); unlike torchaudio it
    does not run a per-sample loop.

    Raises:
        ValueError: ``a_coeffs`` and ``b_coeffs`` shapes differ, coefficients not 1-D or 2-D, or
        ``waveform.shape[-2] != F`` with ``batching=True``.

    Example:
        >>> import torch
        >>> from ssm_lfilter.compat import torchaudio_lfilter
        >>> x = torch.rand(2, 3, 1000, dtype=torch.float64) - 0.5
        >>> a = torch.tensor([[1.0, -0.9], [1.0, -0.5], [1.0, 0.2]], dtype=torch.float64)
        >>> b = torch.tensor([[0.1, 0.0], [0.5, 0.0], [1.0, 0.0]], dtype=torch.float64)
        >>> torchaudio_lfilter(x, a, b).shape
        torch.Size([2, 3, 1000])
        >>> torchaudio_lfilter(x, a, b, batching=False).shape
        torch.Size([2, 3, 3, 1000])
        >>> y = torchaudio_lfilter(x, a[0], b[0], clamp=False)
        >>> torch.allclose(y[..., 1:], 0.1 * x[..., 1:] + 0.9 * y[..., :-1])
        True
    """
    if not isinstance(a_coeffs, torch.Tensor) or not isinstance(b_coeffs, torch.Tensor):
        raise TypeError(
            f"expected a_coeffs and b_coeffs tensors, got {type(a_coeffs).__name__} and "
            f"{type(b_coeffs).__name__}"
        )
    if a_coeffs.shape != b_coeffs.shape:
        raise ValueError(
            "expected a_coeffs and b_coeffs of the same size, got a_coeffs size "
            f"{tuple(a_coeffs.shape)} and b_coeffs size {tuple(b_coeffs.shape)}"
        )
    if a_coeffs.ndim not in (1, 2):
        raise ValueError(f"expected 1-D or 2-D a_coeffs, got shape {tuple(a_coeffs.shape)}")
    if waveform.ndim < 1:
        raise ValueError("expected waveform with at least 1 dim (..., T), got a 0-d tensor")
    x = waveform
    if a_coeffs.ndim == 2:
        F = a_coeffs.shape[0]
        if batching:
            if waveform.ndim < 2 or waveform.shape[-2] != F:
                raise ValueError(
                    "expected the number of batches in waveform and coeffs to be the same, got "
                    f"waveform {tuple(waveform.shape)} (needs (..., {F}, T)) and coeffs "
                    f"{tuple(a_coeffs.shape)}"
                )
        else:
            x = waveform.unsqueeze(-2).expand(*waveform.shape[:-1], F, waveform.shape[-1])
    y = lfilter(b_coeffs, a_coeffs, x, axis=-1)
    if clamp:
        y = torch.clamp(y, min=-1.0, max=1.0)
    return y
