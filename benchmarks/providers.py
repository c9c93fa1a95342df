"""Benchmark cases, their data and float64 references, and one function per provider.

A *case* is one workload (kind, mode, sizes, dtype, device). A *provider* turns a case into an
:class:`Impl`: a ``forward()`` closure over leaf tensors (``leaves[0]`` is the signal, the rest are the
coefficients), which the runner times in the requested mode. Providers import their library; none of
their code is copied here. A provider that cannot run a case raises :class:`Skip` with the reason.

Kinds
-----
``lti``          ``lfilter(b, a, x)``, order ``order`` (scipy ``butter``/``cheby1`` design), coefficients
                 shared by all rows (``coeffs='shared'``) or one filter per row (``'per_batch'``).
``sos``          ``sosfilt(sos, x)`` with ``order`` second-order sections (a Butterworth of order 2*order).
``tv``           ``time_varying_lfilter(b, a, x)``, order ``order``, coefficients ``(B, T, order+1)``.
``first_order``  ``linear_recurrence(a, u)``: ``h[t] = a[t] h[t-1] + u[t]`` with time-varying ``a (B, T)``.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import torch

KINDS = ("lti", "sos", "tv", "first_order")
MODES = ("forward", "backward", "train")
# Accuracy of the time-varying kinds is checked on a prefix (forward) / suffix (adjoint) of this many
# samples against a float64 sequential loop; causality makes a prefix of the output exact.
TV_CHECK = 8192


class Skip(Exception):
    """The provider cannot run this case (library missing, unsupported kind, mode or device)."""


@dataclass(frozen=True)
class Case:
    sweep: str
    kind: str
    mode: str
    B: int
    T: int
    order: int = 2
    dtype: str = "float32"
    device: str = "cpu"
    coeffs: str = "shared"  # 'shared' | 'per_batch' (lti/sos); tv and first_order are always per row
    design: str = "butter"  # 'butter' | 'cheby1'
    providers: tuple | None = None  # restrict the providers of this case (None: all)
    max_call_s: float | None = None  # override the runner's limit on predicted seconds per call

    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)

    @property
    def numel(self) -> int:
        return self.B * self.T

    def describe(self) -> str:
        return (f"{self.kind} order={self.order} {self.coeffs} {self.design} B={self.B} T={self.T} "
                f"{self.dtype} {self.mode} on {self.device}")

    def with_(self, **kw) -> "Case":
        return replace(self, **kw)


def bytes_moved(case: Case) -> int:
    """Minimal memory traffic of the case (the model behind the bandwidth columns).

    lti/sos: forward reads x, writes y (2 arrays); backward reads g, x, y and writes dx (4);
    train = forward + backward (6). tv order N (M = N): forward reads x, b, a and writes y
    (2 + 2(N+1) arrays); backward reads g, x, y, b, a and writes dx, db, da (4 + 4(N+1)).
    first_order: forward reads a, u, writes h (3); backward reads g, a, h, writes du, da (5).
    """
    elem = torch.empty((), dtype=case.torch_dtype).element_size()
    n = case.numel
    if case.kind in ("lti", "sos"):
        fwd, bwd = 2, 4
    elif case.kind == "tv":
        c = case.order + 1
        fwd, bwd = 2 + 2 * c, 4 + 4 * c
    else:
        fwd, bwd = 3, 5
    arrays = {"forward": fwd, "backward": bwd, "train": fwd + bwd}[case.mode]
    return arrays * n * elem


def _round(arr: np.ndarray, dtype: torch.dtype) -> np.ndarray:
    """Round a float64 array to ``dtype`` and back, so references use the very coefficients benchmarked."""
    return torch.as_tensor(np.asarray(arr, dtype=np.float64)).to(dtype).double().numpy()


# ----------------------------------------------------------------------------------------------
# Data and float64 references
# ----------------------------------------------------------------------------------------------
@dataclass
class Data:
    case: Case
    x64: np.ndarray  # (B, T), already rounded to the case dtype
    coef: dict  # float64 numpy coefficients (rounded to the case dtype)
    seed: int = 0
    _ref: dict = field(default_factory=dict)

    @property
    def g64(self) -> np.ndarray:
        """Upstream gradient for backward/train (made on first use)."""
        if "g64" not in self._ref:
            rng = np.random.default_rng(self.seed + 1)
            self._ref["g64"] = _round(rng.standard_normal(self.x64.shape), self.case.torch_dtype)
        return self._ref["g64"]

    def tensor(self, arr, requires_grad=False) -> torch.Tensor:
        t = torch.as_tensor(np.ascontiguousarray(arr)).to(device=self.case.device, dtype=self.case.torch_dtype)
        return t.requires_grad_(requires_grad)

    @property
    def x(self) -> torch.Tensor:
        return self.tensor(self.x64)

    @property
    def g(self) -> torch.Tensor:
        return self.tensor(self.g64)

    # references --------------------------------------------------------------------------------
    def ref_y(self):
        """(reference output, slice of the output it covers)."""
        if "y" not in self._ref:
            self._ref["y"] = _reference(self, adjoint=False)
        return self._ref["y"]

    def ref_dx(self):
        """(reference gradient w.r.t. the signal for upstream gradient g, slice it covers)."""
        if "dx" not in self._ref:
            self._ref["dx"] = _reference(self, adjoint=True)
        return self._ref["dx"]


def _design(case: Case, order: int, wn: float):
    import scipy.signal as ss

    if case.design == "cheby1":
        return ss.cheby1(order, 1, wn)
    return ss.butter(order, wn)


def make_data(case: Case, seed: int = 0) -> Data:
    import scipy.signal as ss

    rng = np.random.default_rng(seed)
    B, T, dt = case.B, case.T, case.torch_dtype
    x64 = _round(rng.standard_normal((B, T)), dt)
    rows = 1 if case.coeffs == "shared" else B
    wns = [0.2] if rows == 1 else list(np.linspace(0.1, 0.4, rows))
    coef = {}
    if case.kind == "lti":
        ba = [_design(case, case.order, w) for w in wns]
        coef["b"] = _round(np.stack([np.atleast_1d(b) for b, _ in ba]), dt)
        coef["a"] = _round(np.stack([np.atleast_1d(a) for _, a in ba]), dt)
    elif case.kind == "sos":
        if case.design == "cheby1":
            sos = [ss.cheby1(2 * case.order, 1, w, output="sos") for w in wns]
        else:
            sos = [ss.butter(2 * case.order, w, output="sos") for w in wns]
        coef["sos"] = _round(np.stack(sos), dt)
    elif case.kind == "tv":
        # Slowly swept resonant low-pass of order N: poles r*exp(+-i theta(t)) (plus real poles for odd
        # N), radius 0.95, centre frequency swept sinusoidally with a per-row phase; unit DC gain.
        t = np.arange(T)[None, :]
        phase = rng.uniform(0, 2 * np.pi, (B, 1))
        theta = 2 * np.pi * (0.05 + 0.04 * np.sin(2 * np.pi * t / max(T, 4096) * 4 + phase))
        N, r = case.order, 0.95
        # a(z) = prod (1 - 2 r cos(theta) z^-1 + r^2 z^-2) [* (1 - r z^-1) for odd N]
        p = np.ones((B, T, 1))
        for _ in range(N // 2):
            q = np.stack([np.ones_like(theta), -2 * r * np.cos(theta), np.full_like(theta, r * r)], -1)
            p = _polymul_last(p, q)
        if N % 2:
            q = np.stack([np.ones_like(theta), np.full_like(theta, -r)], -1)
            p = _polymul_last(p, q)
        a = p
        gain = a.sum(-1, keepdims=True)  # DC gain of 1/a is 1/sum(a); make the whole filter unity
        b = gain * _binomial(N)[None, None, :] / 2.0**N
        coef["b"] = _round(b, dt)
        coef["a"] = _round(a, dt)
    elif case.kind == "first_order":
        coef["a"] = _round(rng.uniform(0.9, 0.999, (B, T)), dt)
    else:
        raise ValueError(f"unknown kind {case.kind}")
    return Data(case, x64, coef, seed)


def _polymul_last(p, q):
    out = np.zeros(p.shape[:-1] + (p.shape[-1] + q.shape[-1] - 1,))
    for i in range(p.shape[-1]):
        for j in range(q.shape[-1]):
            out[..., i + j] += p[..., i] * q[..., j]
    return out


def _binomial(n):
    from math import comb

    return np.array([comb(n, k) for k in range(n + 1)], dtype=np.float64)


def _tv_forward_np(b, a, x):
    """float64 direct form I with per-sample coefficients (b (B,T,M+1), a (B,T,N+1)), a loop over time."""
    B, T = x.shape
    M, N = b.shape[-1] - 1, a.shape[-1] - 1
    y = np.zeros((B, T))
    for n in range(T):
        acc = b[:, n, 0] * x[:, n]
        for k in range(1, min(M, n) + 1):
            acc = acc + b[:, n, k] * x[:, n - k]
        for k in range(1, min(N, n) + 1):
            acc = acc - a[:, n, k] * y[:, n - k]
        y[:, n] = acc / a[:, n, 0]
    return y


def _tv_adjoint_np(b, a, g):
    """dL/dx of :func:`_tv_forward_np` for upstream gradient g (a reverse-time loop)."""
    B, T = g.shape
    M, N = b.shape[-1] - 1, a.shape[-1] - 1
    bn, an = b / a[..., :1], a / a[..., :1]
    v = np.zeros((B, T))
    dx = np.zeros((B, T))
    for n in range(T - 1, -1, -1):
        acc = g[:, n].copy()
        for k in range(1, N + 1):
            if n + k < T:
                acc = acc - an[:, n + k, k] * v[:, n + k]
        v[:, n] = acc
        d = np.zeros(B)
        for k in range(M + 1):
            if n + k < T:
                d = d + bn[:, n + k, k] * v[:, n + k]
        dx[:, n] = d
    return dx


def _reference(data: Data, adjoint: bool):
    import scipy.signal as ss

    case, c = data.case, data.coef
    x = data.g64[:, ::-1] if adjoint else data.x64
    full = slice(None)
    if case.kind == "lti":
        b, a = c["b"], c["a"]
        if b.shape[0] == 1:
            y = ss.lfilter(b[0], a[0], x, axis=-1)
        else:
            y = np.stack([ss.lfilter(b[i], a[i], x[i]) for i in range(case.B)])
        return (y[:, ::-1] if adjoint else y), full
    if case.kind == "sos":
        sos = c["sos"]
        if sos.shape[0] == 1:
            y = ss.sosfilt(sos[0], x, axis=-1)
        else:
            y = np.stack([ss.sosfilt(sos[i], x[i]) for i in range(case.B)])
        return (y[:, ::-1] if adjoint else y), full
    if case.kind == "tv":
        b, a = c["b"], c["a"]
    else:  # first_order: h[t] = a[t] h[t-1] + u[t]  ==  DF-I with b = [1], a = [1, -a[t]]
        a1 = c["a"]
        b = np.ones(a1.shape + (1,))
        a = np.stack([np.ones_like(a1), -a1], -1)
    n = min(case.T, TV_CHECK)
    if adjoint:  # the adjoint is causal in reverse time: the last n samples are exact
        sl = slice(case.T - n, case.T)
        return _tv_adjoint_np(b[:, sl], a[:, sl], data.g64[:, sl]), sl
    sl = slice(0, n)
    return _tv_forward_np(b[:, sl], a[:, sl], data.x64[:, sl]), sl


def rel_err(out: np.ndarray, ref_sl) -> float:
    """max |out - ref| / max |ref| over the samples the reference covers."""
    ref, sl = ref_sl
    out = np.asarray(out, dtype=np.float64)[:, sl]
    scale = np.max(np.abs(ref))
    if not np.isfinite(out).all():
        return float("inf")
    return float(np.max(np.abs(out - ref)) / (scale if scale > 0 else 1.0))


# ----------------------------------------------------------------------------------------------
# Providers
# ----------------------------------------------------------------------------------------------
@dataclass
class Impl:
    forward: Callable[[], object]  # returns y (torch tensor, or numpy for numpy providers)
    leaves: list  # [signal, *coefficients] torch leaves; grads are taken w.r.t. all of them
    grad: bool = True  # differentiable (backward/train supported)
    note: str = ""
    reference_only: bool = False  # copy: no accuracy


def _import(name: str):
    try:
        return importlib.import_module(name)
    except Exception as e:  # noqa: BLE001 - any import failure means "skipped, here is why"
        raise Skip(f"{name} unavailable: {type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}")


def _lti_ba(data: Data, pad_equal: bool = False):
    b, a = data.coef["b"], data.coef["a"]
    if pad_equal:
        K = max(b.shape[-1], a.shape[-1])
        b = np.pad(b, ((0, 0), (0, K - b.shape[-1])))
        a = np.pad(a, ((0, 0), (0, K - a.shape[-1])))
    return b, a


def _coef_rows(data: Data, arr: np.ndarray):
    """Shared coefficients as one filter (leading row dropped), per-batch as (B, ...)."""
    return arr[0] if arr.shape[0] == 1 and data.case.coeffs == "shared" else arr


# -- ssm_lfilter ----------------------------------------------------------------------------------
def _ssm_api():
    """The public API, or (SSM_BENCH_USE_REFERENCE=1, plumbing tests only) the sequential reference."""
    if os.environ.get("SSM_BENCH_USE_REFERENCE") == "1":
        from ssm_lfilter import reference as R

        class Shim:
            lfilter = staticmethod(lambda b, a, x: R.lfilter(b, a, x)[0])
            sosfilt = staticmethod(lambda sos, x: R.sosfilt(sos, x)[0])
            time_varying_lfilter = staticmethod(lambda b, a, x: R.time_varying_lfilter(b, a, x)[0])
            linear_recurrence = staticmethod(lambda a, u: R.linear_recurrence(a, u))

        return Shim, "SEQUENTIAL REFERENCE (SSM_BENCH_USE_REFERENCE=1, plumbing only)"
    sl = _import("ssm_lfilter")
    return sl, ""


def provider_ssm_lfilter(case: Case, data: Data) -> Impl:
    sl, note = _ssm_api()
    name = {"lti": "lfilter", "sos": "sosfilt", "tv": "time_varying_lfilter", "first_order": "linear_recurrence"}[case.kind]
    if not hasattr(sl, name):
        raise Skip(f"ssm_lfilter.{name} not available in this checkout")
    fn = getattr(sl, name)
    x = data.tensor(data.x64)
    if case.kind == "lti":
        b, a = _lti_ba(data)
        b, a = data.tensor(_coef_rows(data, b)), data.tensor(_coef_rows(data, a))
        return Impl(lambda: fn(b, a, x), [x, b, a], note=note)
    if case.kind == "sos":
        sos = data.tensor(_coef_rows(data, data.coef["sos"]))
        return Impl(lambda: fn(sos, x), [x, sos], note=note)
    if case.kind == "tv":
        b, a = data.tensor(data.coef["b"]), data.tensor(data.coef["a"])
        return Impl(lambda: fn(b, a, x), [x, b, a], note=note)
    a = data.tensor(data.coef["a"])
    return Impl(lambda: fn(a, x), [x, a], note=note)


# -- our loop baselines ---------------------------------------------------------------------------
_TDF2 = {}


def provider_loop_tdf2_jit(case: Case, data: Data) -> Impl:
    from .loop_rnn import TDF2Loop, pack_tdf2_coeffs

    if case.kind != "lti":
        raise Skip("3rd-order LTI loop only")
    if case.order > 3:
        raise Skip("TDF2Loop is 3rd order (lower orders are zero-padded)")
    if case.torch_dtype not in (torch.float32, torch.float64):
        raise Skip(f"{case.dtype} not supported by the loop")
    b, a = _lti_ba(data)
    coeffs = pack_tdf2_coeffs(torch.as_tensor(b), torch.as_tensor(a)).expand(case.B, 7)
    coeffs = data.tensor(coeffs.numpy())
    key = case.device
    if key not in _TDF2:
        _TDF2[key] = TDF2Loop().to(case.device)
    mod = _TDF2[key]
    x = data.tensor(data.x64)
    note = "per-batch coeffs (B, 7)" + ("" if case.order == 3 else f"; order {case.order} zero-padded to 3")
    return Impl(lambda: mod(x, coeffs), [x, coeffs], note=note)


def provider_loop_nn_rnn(case: Case, data: Data) -> Impl:
    from .loop_rnn import RNNFilter

    if case.kind != "lti":
        raise Skip("LTI only")
    if case.order > 4:
        raise Skip("4 hidden units hold order <= 4")
    if case.coeffs != "shared":
        raise Skip("nn.RNN weights are shared by all rows")
    if case.mode != "forward":
        raise Skip("forward only (coefficients are fixed weights)")
    if case.torch_dtype not in (torch.float32, torch.float64):
        raise Skip(f"{case.dtype} not supported")
    b, a = _lti_ba(data)
    mod = RNNFilter(b[0], a[0], dtype=case.torch_dtype, device=case.device)
    x = data.tensor(data.x64)
    return Impl(lambda: mod(x), [x], grad=False, note="nn.RNN(1, 4) tanh, input x1e-9")


# -- torchaudio -----------------------------------------------------------------------------------
def provider_torchaudio(case: Case, data: Data) -> Impl:
    ta = _import("torchaudio.functional")
    if case.kind not in ("lti", "sos"):
        raise Skip("torchaudio has LTI lfilter only")
    x = data.tensor(data.x64)
    if case.kind == "lti":
        b, a = _lti_ba(data, pad_equal=True)
        b, a = data.tensor(_coef_rows(data, b)), data.tensor(_coef_rows(data, a))
        return Impl(lambda: ta.lfilter(x, a, b, clamp=False, batching=True), [x, b, a], note="clamp=False")
    sos = data.tensor(_coef_rows(data, data.coef["sos"]))

    def cascade():
        y = x
        for s in range(sos.shape[-2]):
            y = ta.lfilter(y, sos[..., s, 3:], sos[..., s, :3], clamp=False, batching=True)
        return y

    return Impl(cascade, [x, sos], note="cascade of lfilter calls, clamp=False")


# -- scipy ----------------------------------------------------------------------------------------
def provider_scipy(case: Case, data: Data) -> Impl:
    ss = _import("scipy.signal")
    if case.device != "cpu":
        raise Skip("CPU only")
    if case.mode != "forward":
        raise Skip("forward only")
    if case.kind not in ("lti", "sos"):
        raise Skip("no time-varying filter in scipy")
    x = np.ascontiguousarray(data.x64)  # float64: scipy's native, most accurate path
    if case.kind == "lti":
        b, a = _lti_ba(data)
        if b.shape[0] == 1:
            f = lambda: ss.lfilter(b[0], a[0], x, axis=-1)  # noqa: E731
        else:
            f = lambda: np.stack([ss.lfilter(b[i], a[i], x[i]) for i in range(case.B)])  # noqa: E731
    else:
        sos = data.coef["sos"]
        if sos.shape[0] == 1:
            f = lambda: ss.sosfilt(sos[0], x, axis=-1)  # noqa: E731
        else:
            f = lambda: np.stack([ss.sosfilt(sos[i], x[i]) for i in range(case.B)])  # noqa: E731
    return Impl(f, [], grad=False, note="float64 numpy input")


# -- philtorch ------------------------------------------------------------------------------------
def provider_philtorch(case: Case, data: Data) -> Impl:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Helion kernels not loaded"
        _import("philtorch")  # the package itself first: a clear reason if it is missing
        lti = _import("philtorch.lti")
        lpv = _import("philtorch.lpv")
    x = data.tensor(data.x64)
    # philtorch's `a` excludes a0 (the filter is normalized)
    if case.kind == "lti":
        b, a = _lti_ba(data)
        bn, an = b / a[:, :1], a[:, 1:] / a[:, :1]
        bt, at = data.tensor(_coef_rows(data, bn)), data.tensor(_coef_rows(data, an))
        return Impl(lambda: lti.lfilter(bt, at, x), [x, bt, at], note="lti.lfilter (ssm, tdf2)")
    if case.kind == "sos":
        sos = data.coef["sos"]
        sos = sos / sos[..., 3:4]
        st = data.tensor(_coef_rows(data, sos))

        def cascade():
            y = x
            for s in range(st.shape[-2]):
                y = lti.lfilter(st[..., s, :3], st[..., s, 4:], y)
            return y

        return Impl(cascade, [x, st], note="cascade of lti.lfilter calls")
    if case.kind == "tv":
        b, a = data.coef["b"], data.coef["a"]
        bt, at = data.tensor(b / a[..., :1]), data.tensor(a[..., 1:] / a[..., :1])
        # form='df1': our (and scipy's) time-varying semantics; philtorch's default 'tdf2' is another filter
        # once the coefficients vary (measured 1.4e-2 off the DF-I reference)
        return Impl(lambda: lpv.lfilter(bt, at, x, form="df1"), [x, bt, at], note="lpv.lfilter (ssm, form='df1')")
    at = data.tensor(data.coef["a"])
    return Impl(lambda: lpv.linear_recurrence(at, x.new_zeros(()), x), [x, at], note="lpv.linear_recurrence")


# -- torchlpc -------------------------------------------------------------------------------------
def _fir_torch(b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Causal FIR y[n] = sum_k b[..., k] x[n-k]; b (M+1,), (B, M+1) or time-varying (B, T, M+1)."""
    M = b.shape[-1] - 1
    xp = torch.nn.functional.pad(x, (M, 0))
    T = x.shape[-1]
    taps = torch.stack([xp[..., M - k: M - k + T] for k in range(M + 1)], -1)  # (B, T, M+1)
    if b.dim() == 3:
        return (taps * b).sum(-1)
    if b.dim() == 2:
        b = b[:, None, :]
    return (taps * b).sum(-1)


def provider_torchlpc(case: Case, data: Data) -> Impl:
    tl = _import("torchlpc")
    x = data.tensor(data.x64)
    B, T = case.B, case.T
    if case.kind == "lti":
        b, a = _lti_ba(data)
        bn, an = b / a[:, :1], a[:, 1:] / a[:, :1]
        bt, at = data.tensor(_coef_rows(data, bn)), data.tensor(_coef_rows(data, an))
        N = at.shape[-1]

        def f():
            A = at.expand(B, N) if at.dim() == 1 else at
            return tl.sample_wise_lpc(_fir_torch(bt, x), A[:, None, :].expand(B, T, N).contiguous())

        return Impl(f, [x, bt, at], note="torch FIR + sample_wise_lpc (A expanded over T)")
    if case.kind == "tv":
        b, a = data.coef["b"], data.coef["a"]
        bt, at = data.tensor(b / a[..., :1]), data.tensor(a[..., 1:] / a[..., :1])
        return Impl(lambda: tl.sample_wise_lpc(_fir_torch(bt, x), at), [x, bt, at], note="torch FIR + sample_wise_lpc")
    if case.kind == "first_order":
        at = data.tensor(data.coef["a"])
        return Impl(lambda: tl.sample_wise_lpc(x, -at[..., None]), [x, at], note="sample_wise_lpc order 1")
    raise Skip("no second-order-section API")


# -- accelerated-scan -----------------------------------------------------------------------------
def provider_accelerated_scan(case: Case, data: Data) -> Impl:
    if case.kind != "first_order":
        raise Skip("first-order recurrences only")
    if case.device == "cpu":
        mod = _import("accelerated_scan.ref")
        note = "accelerated_scan.ref (pure torch; its kernels need CUDA)"
    else:
        mod = _import("accelerated_scan.scalar")
        note = "accelerated_scan.scalar (Triton)"
    at = data.tensor(data.coef["a"])
    x = data.tensor(data.x64)
    return Impl(lambda: mod.scan(at[None], x[None])[0], [x, at], note=note)


# -- device copy (bandwidth reference) ------------------------------------------------------------
def provider_copy(case: Case, data: Data) -> Impl:
    if case.mode != "forward":
        raise Skip("reference for forward rows only; its bandwidth is the denominator of every row")
    x = data.tensor(data.x64)
    out = torch.empty_like(x)
    return Impl(lambda: out.copy_(x), [x], grad=False, note="y.copy_(x)", reference_only=True)


PROVIDERS: dict[str, Callable[[Case, Data], Impl]] = {
    "ssm_lfilter": provider_ssm_lfilter,
    "loop_tdf2_jit": provider_loop_tdf2_jit,
    "loop_nn_rnn": provider_loop_nn_rnn,
    "torchaudio": provider_torchaudio,
    "scipy": provider_scipy,
    "philtorch": provider_philtorch,
    "torchlpc": provider_torchlpc,
    "accelerated_scan": provider_accelerated_scan,
    "copy": provider_copy,
}


def versions() -> dict:
    """Versions of torch, triton and every peer, or why each is unavailable."""
    import platform
    import warnings

    out = {"python": platform.python_version()}
    for name, mod in [("torch", "torch"), ("triton", "triton"), ("numpy", "numpy"), ("scipy", "scipy"),
                      ("ssm_lfilter", "ssm_lfilter"), ("torchaudio", "torchaudio"), ("philtorch", "philtorch"),
                      ("torchlpc", "torchlpc"), ("accelerated_scan", "accelerated_scan")]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                m = importlib.import_module(mod)
            v = getattr(m, "__version__", None)
            if v is None:
                from importlib.metadata import version

                v = version(mod.replace("_", "-"))
            out[name] = str(v)
        except Exception as e:  # noqa: BLE001
            out[name] = f"unavailable ({type(e).__name__}: {str(e).splitlines()[0][:80] if str(e) else ''})"
    return out
