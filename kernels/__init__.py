"""Triton kernels and their launchers for ssm_lfilter (installed as ``ssm_lfilter.kernels``).

Only kernels and launchers live here, no autograd: ``ssm_lfilter.ops`` wraps the launchers in
``torch.library`` ops. Each launcher follows the op contract in ``docs/architecture.md``.
Import this package only after deciding whether ``TRITON_INTERPRET`` is set: Triton reads it when
the kernels are defined.
"""
from .diagonal import diagonal, diagonal_adjoint
from .lti import lti
from .lti_adjoint import fused_adjoint_applies, lti_adjoint, lti_adjoint_sums
from .lti_coef_grads import lti_coef_grads
from .sos import sos, sos_adjoint, sos_adjoint_applies
from .time_varying import time_varying, time_varying_applies
from .time_varying_adjoint import time_varying_adjoint, tv_adjoint_applies
from .tv_sos import tv_sos, tv_sos_adjoint, tv_sos_applies

__all__ = ["lti", "lti_adjoint", "lti_adjoint_sums", "fused_adjoint_applies", "lti_coef_grads", "sos", "sos_adjoint", "sos_adjoint_applies", "time_varying", "time_varying_applies", "time_varying_adjoint", "tv_adjoint_applies", "tv_sos", "tv_sos_adjoint", "tv_sos_applies", "diagonal", "diagonal_adjoint"]
