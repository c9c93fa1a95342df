"""The raw-coefficient convention (``monic=False``: every ``a`` row starts with its leading coefficient
``a0``, ``b`` not divided by it), one set of rules for the ops (``ops.py``) and the kernels' launchers
(``kernels/lti.py``, ``kernels/lti_adjoint.py``, ``kernels/sos.py``); importable without Triton."""


def normalized(b, a):
    """Sections with leading coefficients ``a0 = a[..., :1]`` made monic: ``(b / a0, a[..., 1:] / a0)``."""
    a0 = a[..., :1]
    return b / a0, a[..., 1:] / a0


def a_grad_width(n_a: int, monic: bool) -> int:
    """Columns of ``a``'s gradient for its first ``n_a`` poles in the fused backward ops: ``n_a``, and
    with ``monic=False`` ``a0``'s in front of them when ``n_a > 0``."""
    return n_a + (1 if not monic and n_a else 0)
