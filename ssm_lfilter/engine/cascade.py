"""Cascades of LTI filters in vectorized torch, every stage in one blockwise pass (the CPU engine).

Stage ``s`` filters the previous stage's output (``y_0 = x``):
``y_s[n] = sum_k b_s[k] y_(s-1)[n-k] + head_s[n] - sum_(k=1..N_s) a_s[k-1] y_s[n-k]``.
Run stage by stage, each stage pays ``engine/lti.py``'s fixed work again (block responses, a carry
scan, about a hundred torch operations), which is what short and medium cascades on CPU cost. Here
the cascade is one linear system whose state at a block boundary is every stage's recent past:
stage 1's last ``M_1`` inputs and each stage's last ``max(N_s, M_(s+1))`` outputs, ``D`` numbers.
Blocks of ``L`` samples, as in ``engine/lti.py``:

1. the block responses, in float64, from running the cascade over one block for a batch of
   experiments (an input impulse, each state entry set to 1, each head's impulse): per stage one FIR
   and one unit lower-triangular solve (forward substitution, the recurrence itself);
2. one GEMM gives every block's zero-state outputs and another its zero-state end state;
3. the end states are scanned with the constant ``D x D`` transfer (``scan_constant``);
4. one GEMM adds each block's response to its true initial state.

The responses are those of the cascade itself (no product polynomial is formed), so the realization
is as well conditioned as the sections. Precision follows ``engine/lti.py``: float64 (complex128)
work unless every stage has at most two poles and the corrections barely amplify rounding.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from . import lti as _lti
from ._solve import direct_fits
from .scan import gemm, scan_constant
from .time_varying import all_finite

__all__ = ["cascade"]

Stage = tuple[torch.Tensor, torch.Tensor]


def cascade(x: torch.Tensor, stages: Sequence[Stage], heads: Sequence[torch.Tensor], tail: int = 0,
            L: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``x (R, T)`` through ``stages``, a sequence of ``(b (Rb, M+1), a (Ra, N))`` normalized
    (``Rb, Ra`` in {1, R}; orders may differ between stages), with ``heads[s] (R, K_s)`` added to
    stage ``s`` after its FIR (``K_s`` may be 0). Returns ``(y, tails)``: ``y (R, T)`` the last stage's
    output and ``tails (S, R, tail)`` every stage's last ``tail <= T`` outputs. ``L`` forces the block
    length (tests)."""
    R, T = x.shape
    S = len(stages)
    if S == 0:
        return x.clone(), x.new_zeros(0, R, tail)
    Rf = max(max(b.shape[0], a.shape[0]) for b, a in stages)
    coefs = [t for stage in stages for t in stage]
    if R == 0:
        return x.new_zeros(R, T), x.new_zeros(S, R, tail)
    if T == 0 or not all_finite(x, *coefs, *heads) or (L is None and direct_fits(T, R, Rf)):
        # Non-finite data runs sample by sample inside the blocks (NaN/Inf reach later samples only,
        # as in scipy); a short signal is solved whole per stage (engine/_solve.py).
        return _stage_by_stage(x, stages, heads, tail)
    M = [b.shape[1] - 1 for b, _ in stages]
    N = [a.shape[1] for _, a in stages]
    # state components: stage 1's past inputs, then each stage's past outputs, oldest first
    P = [M[0]] + [max(N[s], M[s + 1] if s + 1 < S else 0) for s in range(S)]
    K = [min(h.shape[1], T) for h in heads]
    L = max(min(L or _lti.block_size(T, max(M + N)), T), *P, *K, 1)
    hi = torch.complex128 if any(t.is_complex() for t in (x, *coefs)) else torch.float64
    with_head = [s for s in range(S) if K[s]]
    Y = _block_responses([(b.to(hi), a.to(hi)) for b, a in stages], P, with_head, L, Rf)  # (Rf, E, S, L)
    # Stage 1's past inputs (the halo, P[0] entries) are the previous block's last inputs, known
    # without a scan: only the stages' past outputs (D entries) are carried.
    H, D = P[0], sum(P[1:])
    xs = slice(1, 1 + H)  # experiments: the halo's entries, then the carried state's
    zs = slice(1 + H, 1 + H + D)

    # Responses, as matrices whose columns are a stage's outputs over the block (L each) or the
    # block's end state (D) and whose rows are the block's inputs followed by its halo (Wx), its
    # initial state (Wz), or a head (Wh).
    HT = _lti._toeplitz_t(Y[:, 0].reshape(-1, L)).view(Rf, S, L, L)  # [j, i]: input j -> output i
    Wx = torch.cat([HT, Y[:, xs].transpose(1, 2)], 2)  # (Rf, S, L + H, L)
    Wz = Y[:, zs].transpose(1, 2)  # (Rf, S, D, L)
    Wh = [_lti._toeplitz_t(Y[:, 1 + H + D + i].reshape(-1, L), K[s]).view(Rf, S, K[s], L)
          for i, s in enumerate(with_head)]
    Mt = _end_columns(Wz, P, L).transpose(1, 2)  # (Rf, D, D): the blocks' transfer

    wd = _lti.work_dtype(x.dtype, max(N))
    if wd != x.dtype and max(N) <= 2:
        # the engine's test over every stage's output: float32 where the corrections barely
        # amplify a rounding error in a carried state
        if _lti._amplification(Wz.transpose(2, 3).reshape(Rf, S * L, D), Mt) <= _lti.FLOAT32_MAX_AMPLIFICATION:
            wd = x.dtype

    C = -(-T // L)
    xw = x.to(wd)
    X = (F.pad(xw, (0, C * L - T)) if C * L != T else xw).reshape(R, C, L)
    # each block's halo: the previous block's last H inputs (zeros for block 0), rows L.. of Wx
    halo = F.pad(X[:, :-1, L - H :], (0, 0, 1, 0)) if H else None
    heads_w = [heads[s][:, None, : K[s]].to(wd) for s in with_head]

    def apply(stage_cols, blocks: slice, prev=None) -> torch.Tensor:
        """``(R, blocks, width)``: the responses ``stage_cols(W)`` (columns of each block's outputs
        or end state) to the blocks' inputs, halo, heads (block 0) and initial states ``prev``."""
        W = stage_cols(Wx).to(wd)
        Y = gemm(X[:, blocks], W[:, :L])
        if H:
            gemm(halo[:, blocks].contiguous(), W[:, L:], out=Y)
        if blocks.start == 0:
            for h, Wh_s in zip(heads_w, Wh):
                Y[:, :1] += gemm(h, stage_cols(Wh_s).to(wd))
        if prev is not None:
            gemm(prev[:, blocks].contiguous(), stage_cols(Wz).to(wd), out=Y)
        return Y

    def cols(stage_ids):
        return lambda W: torch.cat([W[:, s] for s in stage_ids], -1)

    def outputs(stage_ids, blocks: slice, prev=None) -> torch.Tensor:
        """The stages' outputs over ``blocks``, ``(R, len(stage_ids), blocks' samples)``."""
        Yb = apply(cols(stage_ids), blocks, prev)
        n = Yb.shape[1]
        return Yb.view(R, n, len(stage_ids), L).transpose(1, 2).reshape(R, len(stage_ids), n * L)

    prev = None
    if C > 1 and D:
        # One GEMM over the signal gives every block's end state from rest (the first D columns,
        # scanned into the blocks' initial states) and its last stage's outputs from rest (the other
        # L); then one more adds what the blocks inherit, [halo, initial state] @ [its responses],
        # in place, as engine/lti.py does. (A GEMM of its own for the end states read the signal
        # twice, and the halo concatenated to every block copied it.)
        last = cols([S - 1])
        both = lambda W: torch.cat([_end_columns(W, P, L), last(W)], -1)  # noqa: E731
        W = both(Wx).to(wd)  # (Rf, L + H, D + L)
        Y = gemm(X, W[:, :L])
        for h, Wh_s in zip(heads_w, Wh):
            Y[:, :1] += gemm(h, both(Wh_s).to(wd))
        E = Y[..., :D] + gemm(halo, W[:, L:, :D]) if H else Y[..., :D].contiguous()
        prev = F.pad(scan_constant(Mt.to(wd), E)[:, :-1], (0, 0, 1, 0))
        past = torch.cat([halo, prev], -1) if H else prev
        gemm(past, torch.cat([W[:, L:], both(Wz).to(wd)], 1), out=Y)  # the end-state columns: unused now
        y = Y[..., D:].to(x.dtype).reshape(R, C * L)[:, :T]
    else:
        y = outputs([S - 1], slice(0, C))[:, 0, :T].to(x.dtype)
    tails = x.new_zeros(S, R, 0)
    if tail:
        c0 = (T - tail) // L  # the first block that holds one of the last `tail` samples
        end = T - c0 * L
        tails = outputs(range(S), slice(c0, C), prev)[..., end - tail : end].transpose(0, 1).to(x.dtype)
    return y.contiguous(), tails.contiguous()


def _stage_by_stage(x, stages, heads, tail):
    """The cascade one ``engine/lti.py`` call a stage (its exact paths: short signals solved whole,
    non-finite data sample by sample)."""
    y, tails = x, []
    for (b, a), h in zip(stages, heads):
        y = _lti.lti(y, b, a, h)
        tails.append(y[:, x.shape[1] - tail :])
    return y, torch.stack(tails)


def _end_columns(W: torch.Tensor, P: list[int], L: int) -> torch.Tensor:
    """The end-state columns of a response ``W (Rf, S, rows, L)``: each stage's last ``P[s+1]``
    outputs, ``(Rf, rows, D)``."""
    return torch.cat([W[:, s, :, L - p :] for s, p in enumerate(P[1:])], -1)


def _block_responses(stages: Sequence[Stage], P: list[int], with_head: list[int], L: int, Rf: int):
    """Every stage's output over one block, ``(Rf, E, S, L)``, for ``E = 1 + sum(P) + len(with_head)``
    experiments: the input impulse at ``t = 0`` from rest; each state entry (``P``'s layout) set to 1
    with no input; an impulse in the head of each stage in ``with_head``, from rest. Also the stages'
    Toeplitz matrices ``HT (Rf, S, L, L)``.

    Each stage's own responses (to an input impulse, to its past inputs and outputs, to a head
    impulse) come from ``engine/lti.py``'s ``_responses``, one batched solve for all stages of one
    shape; the cascade's are then composed stage by stage, a small GEMM each."""
    D, S = sum(P), len(stages)
    E = 1 + D + len(with_head)
    own = [None] * S
    for shape in sorted({(b.shape[1], a.shape[1]) for b, a in stages}):
        ids = [s for s, (b, a) in enumerate(stages) if (b.shape[1], a.shape[1]) == shape]
        b = torch.cat([stages[s][0].expand(Rf, -1) for s in ids])
        a = torch.cat([stages[s][1].expand(Rf, -1) for s in ids])
        h, Hx, G, ha = _lti._responses(b, a, L)
        HT = _lti._toeplitz_t(h)
        for i, s in enumerate(ids):
            rows = slice(i * Rf, (i + 1) * Rf)
            # past inputs and outputs oldest first, as rows (the state's layout)
            own[s] = (HT[rows], Hx[rows].flip(-1).transpose(1, 2), G[rows].flip(-1).transpose(1, 2), ha[rows])
    off = [1 + sum(P[:i]) for i in range(len(P))]  # experiment of each component's oldest entry
    outs, prev = [], None
    for s, (HT, Hx, G, ha) in enumerate(own):
        if prev is None:
            y = HT.new_zeros(Rf, E, L)
            y[:, 0] = HT[:, 0]  # the impulse response (first row of the transposed Toeplitz matrix)
        else:
            y = torch.bmm(prev, HT)
        m, n = stages[s][0].shape[1] - 1, stages[s][1].shape[1]
        if m:  # the stage's past inputs: component s's last m entries
            y[:, off[s] + P[s] - m : off[s] + P[s]] += Hx
        if n:  # its past outputs: component s+1's last n entries
            y[:, off[s + 1] + P[s + 1] - n : off[s + 1] + P[s + 1]] += G
        for i, hs in enumerate(with_head):
            if hs == s:
                y[:, 1 + D + i] += ha
        outs.append(y)
        prev = y
    return torch.stack(outs, 2)
