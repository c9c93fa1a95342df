"""ssm_lfilter: differentiable, fast IIR filtering for PyTorch.

``y = lfilter(b, a, x)`` and its family, with gradients to every input, computed as a blockwise
parallel state-space scan: a vectorized torch engine on CPU, Triton kernels on CUDA.
"""
from . import ops  # noqa: F401  (registers the torch.library ops)
from .compile_cache import tag_compile_caches
from .filtering import linear_recurrence, lfilter, sosfilt, time_varying_lfilter, time_varying_sosfilt
from .zero_phase import filtfilt, sosfiltfilt
from .initial_conditions import lfilter_zi, lfiltic, sosfilt_zi
from .response import freqz, sosfreqz

__version__ = "0.1.0"

# torch.compile's caches do not see a custom op's Python: keep them from replaying another version's
# backward (compile_cache.py).
tag_compile_caches()

__all__ = [
    "lfilter",
    "sosfilt",
    "time_varying_lfilter",
    "time_varying_sosfilt",
    "linear_recurrence",
    "filtfilt",
    "sosfiltfilt",
    "lfilter_zi",
    "sosfilt_zi",
    "lfiltic",
    "freqz",
    "sosfreqz",
]
