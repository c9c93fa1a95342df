"""The loop baselines that users write today, in our own code.

* :class:`TDF2Loop` -- a TorchScript transposed-direct-form-II loop over time for a 3rd-order IIR
  filter with per-batch coefficients ``(B, 7)`` = ``[b0, b1, b2, b3, a1, a2, a3]`` (``a0 = 1``),
  three state tensors and one ``torch.stack`` of the per-step outputs. Differentiable with respect
  to ``x`` and the coefficients through autograd on the unrolled TorchScript graph.
* :class:`RNNFilter` -- a plain ``nn.RNN`` with 4 hidden units used as a linear filter: the filter
  is realised in controllable canonical state-space form (``W_hh = A``, ``W_ih = B``), the input is
  scaled by 1e-9 so that ``tanh`` stays in its linear range, and the read-out is scaled back up.
  Forward only: its coefficients are fixed weights, not trained.
"""
from __future__ import annotations

import warnings
from typing import List

import torch
from torch import Tensor, nn

__all__ = ["TDF2Loop", "RNNFilter", "pack_tdf2_coeffs", "companion_ss"]


# torch 2.13 deprecates torch.jit.script_method; it is still the loop users have, so silence the warning.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)

    class TDF2Loop(torch.jit.ScriptModule):
        """3rd-order transposed direct form II, one TorchScript loop step per sample."""

        @torch.jit.script_method
        def forward(self, x: Tensor, coeffs: Tensor) -> Tensor:
            # x (B, T), coeffs (B, 7) = [b0, b1, b2, b3, a1, a2, a3] with a0 = 1.
            b0 = coeffs[:, 0]
            b1 = coeffs[:, 1]
            b2 = coeffs[:, 2]
            b3 = coeffs[:, 3]
            a1 = coeffs[:, 4]
            a2 = coeffs[:, 5]
            a3 = coeffs[:, 6]
            z1 = torch.zeros_like(x[:, 0])
            z2 = torch.zeros_like(x[:, 0])
            z3 = torch.zeros_like(x[:, 0])
            outs: List[Tensor] = []
            for t in range(x.size(1)):
                xt = x[:, t]
                yt = b0 * xt + z1
                z1 = b1 * xt + z2 - a1 * yt
                z2 = b2 * xt + z3 - a2 * yt
                z3 = b3 * xt - a3 * yt
                outs.append(yt)
            return torch.stack(outs, 1)


def pack_tdf2_coeffs(b: Tensor, a: Tensor) -> Tensor:
    """``b (B, M+1)``, ``a (B, N+1)`` with ``M, N <= 3`` -> normalized ``(B, 7)`` for :class:`TDF2Loop`.

    Lower orders are zero-padded to 3rd order (the loop still does 3rd-order work)."""
    if b.shape[-1] > 4 or a.shape[-1] > 4:
        raise ValueError("TDF2Loop is a 3rd-order filter: b and a need at most 4 taps")
    a0 = a[..., :1]
    b = torch.nn.functional.pad(b / a0, (0, 4 - b.shape[-1]))
    a = torch.nn.functional.pad(a / a0, (0, 4 - a.shape[-1]))
    return torch.cat([b, a[..., 1:]], -1)


def companion_ss(b, a, n_state: int = 4):
    """Controllable canonical form (float64 numpy) of ``b/a`` padded to ``n_state`` states:
    ``s[n+1] = A s[n] + B x[n]``, ``y[n] = C s[n] + D x[n]``."""
    import numpy as np

    b = np.asarray(b, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    b, a = b / a[0], a / a[0]
    if max(len(a), len(b)) - 1 > n_state:
        raise ValueError(f"order > {n_state} does not fit {n_state} hidden units")
    a = np.pad(a, (0, n_state + 1 - len(a)))
    b = np.pad(b, (0, n_state + 1 - len(b)))
    A = np.zeros((n_state, n_state))
    A[0, :] = -a[1:]
    A[1:, :-1] = np.eye(n_state - 1)
    B = np.zeros((n_state, 1))
    B[0, 0] = 1.0
    C = (b[1:] - a[1:] * b[0])[None, :]
    D = b[0]
    return A, B, C, D


class RNNFilter(nn.Module):
    """A plain ``nn.RNN(1, 4)`` (tanh) run as a linear filter ``b/a`` of order <= 4 (shared by all rows).

    RNN: ``h[n] = tanh(A h[n-1] + B x[n] * s)`` = ``s * state[n+1]`` while the argument stays tiny;
    output ``y[n] = C h[n-1] / s + D x[n]`` with ``s = 1e-9``.
    """

    def __init__(self, b, a, scale: float = 1e-9, dtype=torch.float32, device="cpu"):
        super().__init__()
        A, B, C, D = companion_ss(b, a, 4)
        self.scale = scale
        self.rnn = nn.RNN(1, 4, nonlinearity="tanh", bias=False, batch_first=True).to(dtype=dtype, device=device)
        with torch.no_grad():
            self.rnn.weight_hh_l0.copy_(torch.as_tensor(A, dtype=dtype))
            self.rnn.weight_ih_l0.copy_(torch.as_tensor(B, dtype=dtype))
        self.register_buffer("C", torch.as_tensor(C, dtype=dtype, device=device))
        self.D = float(D)
        self.requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:  # x (B, T)
        h, _ = self.rnn((x * self.scale).unsqueeze(-1))  # (B, T, 4)
        h_prev = torch.nn.functional.pad(h[:, :-1], (0, 0, 1, 0))
        return (h_prev @ self.C.T).squeeze(-1) / self.scale + self.D * x
