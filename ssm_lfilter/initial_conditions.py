"""Initial conditions for :func:`ssm_lfilter.lfilter` and :func:`ssm_lfilter.sosfilt`.

``lfilter_zi``, ``sosfilt_zi`` and ``lfiltic`` follow ``scipy.signal``: their output is a state in
scipy's transposed-direct-form-II layout, usable as the ``zi`` of ``lfilter``/``sosfilt`` as is.
Everything is plain differentiable torch (``torch.linalg.solve`` for the steady state), so gradients
(and second derivatives) flow to every coefficient. Coefficients may carry leading batch dims.
"""
from __future__ import annotations

import torch

from ._checks import as_tensor, broadcast_batch, check_leading_coefficient, dtypes, same_device

def as_tensors(*args, names):
    """Tensors on one device in one compute dtype, via the shared checks of ``_checks``.

    Returns ``(tensors..., result_dtype)``: integers and bools promote to the default float dtype,
    float16/bfloat16 compute in float32 (``result_dtype`` keeps the half dtype so outputs can be
    cast back). ``None`` passes through.
    """
    given = {n: v for n, v in zip(names, args) if isinstance(v, torch.Tensor)}
    device = same_device(**given) if given else None
    ts = {n: (None if v is None else as_tensor(v, n, device)) for n, v in zip(names, args)}
    result, compute = dtypes(**ts)
    return (*(None if t is None else t.to(compute) for t in ts.values()), result)


def strip_leading_zeros(a: torch.Tensor) -> torch.Tensor:
    """Drop leading columns of ``a (..., N+1)`` that are zero in every filter (scipy's rule).

    Raises ``ValueError`` naming ``a`` when nothing nonzero is left or when some filter of a batch
    still starts with 0.
    """
    if torch.compiler.is_compiling():  # data-dependent: skipped while tracing, like the a0 checks
        return a
    while a.shape[-1] > 1 and bool((a[..., 0] == 0).all()):
        a = a[..., 1:]
    if a.shape[-1] < 1 or bool((a[..., 0] == 0).all()):
        raise ValueError("a: expected at least one nonzero coefficient, got all zeros")
    check_leading_coefficient(a, 0, "a")
    return a

__all__ = ["lfilter_zi", "sosfilt_zi", "lfiltic"]


def _pad_last(t: torch.Tensor, n: int) -> torch.Tensor:
    """Zero-pad (or keep) the last dim of ``t`` to length ``n``."""
    if t.shape[-1] < n:
        return torch.nn.functional.pad(t, (0, n - t.shape[-1]))
    return t


def lfilter_zi(b, a) -> torch.Tensor:
    r"""Initial state of :func:`~ssm_lfilter.lfilter` for the steady state of the step response.

    Given the normalized filter (``a[0] = 1``, ``b`` and ``a`` zero-padded to ``n = max(len(a),
    len(b))``) in transposed direct form II with companion matrix ``A``, solves

    .. math::
        (I - A^T)\, z_i = b[1:] - a[1:]\, b[0]

    so that ``lfilter(b, a, torch.ones(T), zi=zi)`` starts in the steady state: scale ``zi`` by
    ``x[0]`` to filter a signal without its start-up transient (this is what
    :func:`~ssm_lfilter.filtfilt` does).

    As in scipy, leading zeros of ``a`` are stripped first (for batched ``a``: leading columns that
    are zero in every filter), and ``a`` is normalized by its first coefficient.

    Args:
        b (Tensor): numerator, ``(..., M+1)``. Python sequences and numbers are accepted.
        a (Tensor): denominator, ``(..., N+1)``. Leading batch dims of ``b`` and ``a`` broadcast.

    Returns:
        Tensor: ``zi`` of shape ``(..., K)`` with ``K = max(len(a), len(b)) - 1`` (lengths after
        stripping the leading zeros of ``a``), in the promoted dtype of ``b`` and ``a`` (integers
        promote to the default float dtype), on their device.

    Differentiable with respect to ``b`` and ``a`` (double backward too), on any device.

    Raises:
        ValueError: ``a`` is all zeros (or some filter of a batch has ``a[..., 0] == 0`` after
        stripping), or ``b``/``a`` are 0-d.

    Example:
        >>> import torch, ssm_lfilter as sl
        >>> b = torch.tensor([0.2, 0.4, 0.2], dtype=torch.float64)
        >>> a = torch.tensor([1.0, -0.5, 0.3], dtype=torch.float64)
        >>> zi = sl.lfilter_zi(b, a)
        >>> zi.shape
        torch.Size([2])
        >>> y, _ = sl.lfilter(b, a, torch.ones(8, dtype=torch.float64), zi=zi)
        >>> torch.allclose(y, torch.full_like(y, 0.8 / 0.8))
        True
    """
    b, a, rdt = as_tensors(b, a, names=("b", "a"))
    if b.ndim == 0 or a.ndim == 0:
        raise ValueError(
            f"b, a: expected at least 1 dim (..., n_coefficients), got b {tuple(b.shape)} "
            f"and a {tuple(a.shape)}"
        )
    a = strip_leading_zeros(a)
    a0 = a[..., :1]
    b = b / a0
    a = a / a0
    n = max(a.shape[-1], b.shape[-1])
    a = _pad_last(a, n)
    b = _pad_last(b, n)
    batch = broadcast_batch({"b": b.shape[:-1], "a": a.shape[:-1]})
    b = b.expand(*batch, n)
    a = a.expand(*batch, n)
    K = n - 1
    if K == 0:
        return b.new_zeros(*batch, 0).to(rdt)
    # I - A^T, with A the companion matrix of a: first column 1 + a[1:] on the diagonal's first
    # entry, a[i+1] below it, -1 on the superdiagonal.
    eye = torch.eye(K, dtype=a.dtype, device=a.device)
    sup = torch.diag(torch.ones(K - 1, dtype=a.dtype, device=a.device), 1)
    first_col = torch.nn.functional.pad(a[..., 1:].unsqueeze(-1), (0, K - 1))
    IminusA = eye - sup + first_col
    B = b[..., 1:] - a[..., 1:] * b[..., :1]
    return torch.linalg.solve(IminusA, B).to(rdt)


def sosfilt_zi(sos) -> torch.Tensor:
    r"""Initial state of :func:`~ssm_lfilter.sosfilt` for the steady state of the step response.

    Section ``s`` gets ``lfilter_zi(b_s, a_s)`` scaled by the DC gain of the sections before it,
    ``prod_{j<s} sum(b_j) / sum(a_j)``, so that a cascade fed with ones starts in its steady state.
    Scale by ``x[0]`` to filter a signal without its start-up transient.

    Args:
        sos (Tensor): second-order sections ``(..., n_sections, 6)``, rows ``[b0, b1, b2, a0, a1, a2]``.

    Returns:
        Tensor: ``zi`` of shape ``(n_sections, ..., 2)``, the layout of ``sosfilt``'s ``zi`` (for
        unbatched ``sos``: ``(n_sections, 2)`` as in scipy), in ``sos``'s dtype (integers promote to
        the default float dtype), on its device.

    Differentiable with respect to ``sos`` (double backward too), on any device.

    Raises:
        ValueError: ``sos`` is not ``(..., n_sections, 6)``, or a section has ``a == 0``.

    Example:
        >>> import torch, ssm_lfilter as sl
        >>> sos = torch.tensor([[0.1, 0.2, 0.1, 1.0, -0.6, 0.2],
        ...                     [1.0, 0.5, 0.0, 1.0, -0.3, 0.0]], dtype=torch.float64)
        >>> zi = sl.sosfilt_zi(sos)
        >>> zi.shape
        torch.Size([2, 2])
        >>> y, _ = sl.sosfilt(sos, torch.ones(8, dtype=torch.float64), zi=zi)
        >>> torch.allclose(y, y[:1].expand(8))
        True
    """
    sos, rdt = as_tensors(sos, names=("sos",))
    if sos.ndim < 2 or sos.shape[-1] != 6:
        raise ValueError(f"sos: expected shape (..., n_sections, 6), got {tuple(sos.shape)}")
    n_sections = sos.shape[-2]
    zis = []
    scale = None
    for s in range(n_sections):
        b, a = sos[..., s, :3], sos[..., s, 3:]
        check_leading_coefficient(a, 0, "sos", f"sos[..., {s}, 3]")
        z = lfilter_zi(b, a)  # (..., K), K = 2 unless a's leading zeros were stripped
        z = _pad_last(z, 2) if z.shape[-1] < 2 else z
        zis.append(z if scale is None else scale.unsqueeze(-1) * z)
        gain = b.sum(-1) / a.sum(-1)
        scale = gain if scale is None else scale * gain
    if not zis:
        return sos.new_zeros(0, *sos.shape[:-2], 2).to(rdt)
    return torch.stack(torch.broadcast_tensors(*zis), 0).to(rdt)


def lfiltic(b, a, y, x=None) -> torch.Tensor:
    r"""Transposed-direct-form-II state of :func:`~ssm_lfilter.lfilter` from past outputs and inputs.

    With ``y = [y[-1], y[-2], ..., y[-N]]`` and ``x = [x[-1], x[-2], ..., x[-M]]`` (newest first,
    zero-padded when shorter, extra values ignored), returns

    .. math::
        z_i[m] = \frac{1}{a_0}\Big(\sum_{k=m+1}^{M} b_k\, x[m-k] - \sum_{k=m+1}^{N} a_k\, y[m-k]\Big),
        \quad m = 0, \dots, K-1,\; K = \max(M, N),

    the state that makes ``lfilter(b, a, x_new, zi=zi)`` continue a filter whose past was ``x, y``.

    Args:
        b (Tensor): numerator ``(..., M+1)``.
        a (Tensor): denominator ``(..., N+1)``.
        y (Tensor): past outputs ``(..., L_y)``, newest first.
        x (Tensor, optional): past inputs ``(..., L_x)``, newest first; zeros if omitted.

    Leading batch dims of all arguments broadcast.

    Returns:
        Tensor: ``zi`` of shape ``(..., K)`` in the promoted dtype (integers promote to the default
        float dtype), on the arguments' device.

    Differentiable with respect to ``b``, ``a``, ``y`` and ``x`` (double backward too).

    Raises:
        ValueError: ``a`` is empty or ``a[..., 0] == 0``, or an argument is 0-d.

    Example:
        >>> import torch, ssm_lfilter as sl
        >>> b = torch.tensor([0.5, 0.5], dtype=torch.float64)
        >>> a = torch.tensor([1.0, -0.9], dtype=torch.float64)
        >>> x = torch.randn(20, dtype=torch.float64)
        >>> y_full = sl.lfilter(b, a, x)
        >>> zi = sl.lfiltic(b, a, y_full[:10].flip(0), x[:10].flip(0))  # newest first
        >>> y_rest, _ = sl.lfilter(b, a, x[10:], zi=zi)
        >>> torch.allclose(y_rest, y_full[10:])
        True
    """
    if x is None:
        b, a, y, rdt = as_tensors(b, a, y, names=("b", "a", "y"))
    else:
        b, a, y, x, rdt = as_tensors(b, a, y, x, names=("b", "a", "y", "x"))
    for name, t in (("b", b), ("a", a), ("y", y), ("x", x)):
        if t is not None and t.ndim == 0:
            raise ValueError(f"{name}: expected at least 1 dim, got a 0-d tensor")
    N = a.shape[-1] - 1
    M = b.shape[-1] - 1
    if N < 0:
        raise ValueError("a: expected at least one coefficient, got an empty a")
    check_leading_coefficient(a, 0, "a")
    K = max(M, N)
    y = _pad_last(y, N)[..., :N]
    # Build with explicit padding so shapes broadcast cleanly (x may be shorter than M).
    if x is not None:
        x = _pad_last(x, M)[..., :M]
    shapes = {"b": b.shape[:-1], "a": a.shape[:-1], "y": y.shape[:-1]}
    if x is not None:
        shapes["x"] = x.shape[:-1]
    batch = broadcast_batch(shapes)
    zs = []
    for m in range(K):
        z = torch.zeros(batch, dtype=b.dtype, device=b.device)
        if x is not None and m < M:
            z = z + (b[..., m + 1:] * x[..., : M - m]).sum(-1)
        if m < N:
            z = z - (a[..., m + 1:] * y[..., : N - m]).sum(-1)
        zs.append(z)
    if K == 0:
        return torch.zeros(*batch, 0, dtype=b.dtype, device=b.device).to(rdt)
    return (torch.stack(zs, -1) / a[..., :1]).to(rdt)
