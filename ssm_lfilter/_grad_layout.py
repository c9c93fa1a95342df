"""The columns of the fused backward ops' coefficient gradients, one rule for the ops' fake
implementations (``ops.py``) and the kernels' launchers (``kernels/lti_adjoint.py``, ``kernels/sos.py``)."""


def a_grad_width(n_a: int, monic: bool) -> int:
    """Columns of ``a``'s gradient for its first ``n_a`` poles: ``n_a``, and with ``monic=False`` (the
    raw coefficients, ``a0`` first in ``a``) ``a0``'s in front of them when ``n_a > 0``."""
    return n_a + (1 if not monic and n_a else 0)
