"""Learnable filter layers (``nn.Module``) on ``(B, C, T)`` / ``(..., T)`` signals; see docs/layers.md."""
from .lfilter import LFilter
from .modal import ModalFilter
from .sos import SOSFilter
from .time_varying import ConditionedSOSFilter, TimeVaryingSOSFilter, TimeVaryingState

__all__ = ["LFilter", "SOSFilter", "ModalFilter", "TimeVaryingSOSFilter", "ConditionedSOSFilter",
           "TimeVaryingState"]
