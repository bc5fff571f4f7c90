"""Rule detectors on the rolling profile: River-shaped (``learn_one`` is a no-op), graded scores, reasons.

Every rule has the same input: ``score_one(x, tail=(), at_ms=None)`` where ``x`` are the profile's features
(:func:`detectors.profile.features`; absent keys count as 0), ``tail`` its recent sequence events
(``Profile.tail_events()``) and ``at_ms`` the event time scored at (sequence rules ignore chains that started
longer than their span before it; default: the newest tail event). Rules that do not need ``tail`` or
``at_ms`` accept and ignore them, so the engine calls every rule the same way.
"""

from detectors.rules.limit_usage import LimitUsageConfig, LimitUsageDetector
from detectors.rules.multi_lending import MultiLendingConfig, MultiLendingDetector
from detectors.rules.repayment import RepaymentConfig, RepaymentDetector
from detectors.rules.sequence import ChainStep, SequenceChain, SequenceConfig, SequenceDetector

__all__ = [
    "ChainStep",
    "LimitUsageConfig",
    "LimitUsageDetector",
    "MultiLendingConfig",
    "MultiLendingDetector",
    "RepaymentConfig",
    "RepaymentDetector",
    "SequenceChain",
    "SequenceConfig",
    "SequenceDetector",
]
