"""Helpers shared by the test modules: random stable filters, float64 comparisons, autograd graphs."""
import math

import numpy as np
import torch


def random_denominator(order, rng, rmax=0.9, rmin=0.0, a0=None):
    """Denominator of the given order with random poles of radius in [rmin, rmax] (conjugate pairs),
    scaled by ``a0`` (random in [0.5, 2] when None) so that normalization is exercised."""
    poles = []
    while len(poles) < order:
        r = rng.uniform(rmin, rmax)
        if order - len(poles) >= 2 and rng.random() < 0.7:
            p = r * np.exp(1j * rng.uniform(0.05, np.pi - 0.05))
            poles += [p, np.conj(p)]
        else:
            poles.append(r * rng.choice([-1.0, 1.0]))
    a = np.real(np.poly(poles)) if order else np.ones(1)
    return a * (rng.uniform(0.5, 2.0) if a0 is None else a0)


def stable_a(rng, n, radius=0.9):
    """Monic polynomial of order n with roots inside ``radius`` (conjugate pairs, real coefficients)."""
    roots = []
    while len(roots) < n:
        if n - len(roots) >= 2 and rng.random() < 0.6:
            r, t = radius * np.sqrt(rng.random()), rng.uniform(0, np.pi)
            roots += [r * np.exp(1j * t), r * np.exp(-1j * t)]
        else:
            roots.append(rng.uniform(-radius, radius))
    return np.real(np.poly(roots)) if n else np.ones(1)


def rand_sos(rng, n_sections, radius=0.9, first_order_prob=0.0):
    """Random stable sections; with ``first_order_prob`` some become first order (b2 = a2 = 0)."""
    sos = np.zeros((n_sections, 6))
    for s in range(n_sections):
        sos[s, :3] = rng.standard_normal(3)
        sos[s, 3:] = stable_a(rng, 2, radius)
        if first_order_prob and rng.random() < first_order_prob:
            sos[s, 2] = sos[s, 5] = 0.0  # a first-order section (it changes filtfilt's default padlen)
            sos[s, 4] = rng.uniform(-0.9, 0.9)
    return sos


def t64(a):
    return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float64)


def npy(t):
    return t.detach().cpu().resolve_conj().numpy()


def assert_close_np(actual, expected, rtol=1e-9, what=""):
    actual = npy(actual) if isinstance(actual, torch.Tensor) else np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != expected {expected.shape}"
    scale = max(1.0, float(np.nanmax(np.abs(expected)))) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale, err_msg=what)


def rand_a(shape, dtype, rmin=0.3, rmax=0.95, gen=None):
    """Diagonal-recurrence coefficients of ``shape`` with |a| in [rmin, rmax]: a random sign (real,
    negative with probability 0.2) or phase (complex)."""
    r = rmin + (rmax - rmin) * torch.rand(shape, dtype=torch.float64, generator=gen)
    if dtype.is_complex:
        a = r * torch.exp(1j * 2 * math.pi * torch.rand(shape, dtype=torch.float64, generator=gen))
    else:
        a = r * torch.where(torch.rand(shape, generator=gen, dtype=torch.float64) < 0.2, -1.0, 1.0)
    return a.to(dtype)


def scipy_lti(x, b, a, head, reverse=False):
    """float64 scipy oracle of the kernels' ``lti``: ``y = lfilter(b, [1, a], x)`` plus ``head[n]`` added
    at step ``n`` (it goes through the poles only), per row (coefficient rows 1 or R). ``reverse``: the
    same filter backwards in time, ``head`` still in processing order. Returns a numpy array."""
    import scipy.signal as ss

    x, b, a, head = (npy(t).astype(np.float64) for t in (x, b, a, head))
    xs = x[:, ::-1] if reverse else x
    R, T = x.shape
    y = np.zeros((R, T))
    for r in range(R if T else 0):
        u = ss.lfilter(b[r % b.shape[0]], [1.0], xs[r])
        k = min(head.shape[1], T)
        u[:k] += head[r, :k]
        y[r] = ss.lfilter([1.0], np.r_[1.0, a[r % a.shape[0]]], u)
    return y[:, ::-1] if reverse else y


def low_angle_resonator(T):
    """``a (1, T, 2)`` float64 (without a0): a biquad whose poles drift between radius 0.995 and
    0.9995 at angles near 0.02 rad. The companion-form state is nearly collinear there, so a
    carried state's rounding cancels: the time-varying paths' hard mode for float32 carries."""
    n = torch.arange(T, dtype=torch.float64)
    r = 0.995 + 0.0045 * (0.5 + 0.5 * torch.sin(2 * math.pi * n / 1700))
    th = 0.02 + 0.01 * torch.cos(2 * math.pi * n / 900)
    return torch.stack([-2 * r * torch.cos(th), r * r], -1)[None]


def poles_denominator(n, radius=0.9, angle=0.3, step=0.9, real=-1.0):
    """a[1:] of a stable order-n filter: conjugate pairs at ``radius`` and angles ``angle + step * k``,
    and for odd n a real pole at ``real * radius``."""
    poles = []
    for k in range(n // 2):
        z = radius * np.exp(1j * (angle + step * k))
        poles += [z, np.conj(z)]
    if n % 2:
        poles.append(real * radius)
    return np.real(np.poly(poles))[1:]


def single_pass_case(rng, M, N, K, T, shared, dtype, R=3, **poles):
    """``x [R, T], b, a, head [R, K]`` of an order-(M, N) filter for the single-pass kernel tests:
    coefficients shared by the rows or one row each (poles at radius 0.8 + 0.05 r)."""
    rows = 1 if shared else R
    b = torch.tensor(rng.standard_normal((rows, M + 1)), dtype=dtype)
    a = torch.tensor(np.stack([poles_denominator(N, 0.8 + 0.05 * r, **poles) for r in range(rows)]), dtype=dtype)
    x = torch.tensor(rng.standard_normal((R, T)), dtype=dtype)
    head = torch.tensor(rng.standard_normal((R, K)), dtype=dtype)
    return x, b, a, head


def assert_scipy_lti(y, x, b, a, head, reverse=False):
    """``y`` within the input dtype's tolerance (float64 1e-12, else 2e-6) of ``scipy_lti``, relative to
    the output's scale."""
    ref = scipy_lti(x, b, a, head, reverse)
    tol = 1e-12 if x.dtype == torch.float64 else 2e-6
    assert np.abs(y.double().numpy() - ref).max() <= tol * max(1.0, np.abs(ref).max())


def cascade_case(rng, R, T, N, S, shared, dtype, **poles):
    """``x [R, T], b [Rc, S, N+1], a [Rc, S, N], head [R, S, N]`` of a cascade for the single-pass kernel
    tests (section s with poles at radius 0.7 + 0.1 s; coefficients shared by the rows or one row each)."""
    rows = 1 if shared else R
    b = torch.tensor(rng.standard_normal((rows, S, N + 1)), dtype=dtype)
    a = torch.tensor(np.stack([np.stack([poles_denominator(N, 0.7 + 0.1 * s, **poles) for s in range(S)])] * rows),
                     dtype=dtype)
    x = torch.tensor(rng.standard_normal((R, T)), dtype=dtype)
    head = torch.tensor(rng.standard_normal((R, S, N)), dtype=dtype)
    return x, b, a, head


def cascade_outputs(x, b, a, head, C, lanes, W, **variant):
    """For one single-pass kernel variant (``persistent=``, ``lane_loads=``): the cascade's output and
    every section's last 3 outputs (``kernels.sos`` with heads and ends), and the stack of section
    inputs the cascade's backward recomputes (``lti_single_pass`` with ``sections``)."""
    from ssm_lfilter import kernels as kern
    from ssm_lfilter.kernels import lti_single_pass as sp

    S, (R, T) = b.shape[1], x.shape
    ends = torch.empty(S, R, 3, dtype=x.dtype)
    y = kern.sos(x, b, a, head=head, ends=ends, block_size=C, lanes=lanes, window_tiles=W, **variant)
    stack = torch.empty(S + 1, R, T, dtype=x.dtype)
    sp.lti_single_pass(x, b, a, head, stack[S], C, lanes=lanes, window_tiles=W, sections=stack[:S], **variant)
    return [y, ends, stack]


def graph_node_names(t: torch.Tensor) -> list[str]:
    """The class names of every autograd node behind ``t`` (each node once)."""
    seen, todo, names = set(), [t.grad_fn], []
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.append(type(node).__name__)
        todo += [n for n, _ in node.next_functions]
    return names


def spy_launches(monkeypatch, module, name, record):
    """Replace the Triton kernel ``module.name`` by one that appends ``record(grid, kwargs)`` for each
    launch and then runs the kernel; returns the list of records (what the launchers passed)."""
    seen = []
    real = getattr(module, name)

    class Spy:
        def __getitem__(self, grid):
            def launch(*args, **kwargs):
                seen.append(record(grid, kwargs))
                return real[grid](*args, **kwargs)
            return launch

    monkeypatch.setattr(module, name, Spy())
    return seen
