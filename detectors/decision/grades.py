"""Customer grade A–E: the delinquency probability sets a base grade, recent tiers can only make it worse.

The grade is monotone in the probability (a higher p never gives a better grade) and in the tier history (a
more recent or more severe tier never gives a better grade).

Example:
    >>> from detectors.decision.config import GradeConfig
    >>> config = GradeConfig()
    >>> grade_for(0.01, {}, 0, config), grade_for(0.12, {}, 0, config), grade_for(None, {}, 0, config)
    ('A', 'D', 'C')
    >>> day = 86_400_000
    >>> grade_for(0.01, {"warning": 10 * day}, 20 * day, config)  # a warning 10 days ago caps the grade at D
    'D'
    >>> grade_for(0.01, {"warning": 10 * day}, 41 * day, config)  # ... but not 31 days later
    'A'
"""

from __future__ import annotations

from collections.abc import Mapping

from detectors.decision.config import GRADES, GradeConfig
from schemas.outputs import TIER_ORDER, Grade, Tier

__all__ = ["grade_for"]

_DAY_MS = 86_400_000


def _base_grade(p: float, config: GradeConfig) -> Grade:
    cutoffs = config.cutoffs
    if p >= cutoffs.e:
        return "E"
    if p >= cutoffs.d:
        return "D"
    if p >= cutoffs.c:
        return "C"
    if p >= cutoffs.b:
        return "B"
    return "A"


def grade_for(p: float | None, tier_history: Mapping[Tier, int], now_ms: int, config: GradeConfig) -> Grade:
    """The customer's grade at event time ``now_ms``.

    ``p`` is the delinquency probability (None while the model has none: ``config.without_probability``);
    ``tier_history`` maps each tier to the latest event time (ms) the customer was at it. A cap applies when a
    tier at or above the cap's tier was reached within ``within_days`` before ``now_ms`` (inclusive).
    """
    if p is not None and not 0.0 <= p <= 1.0:
        raise ValueError(f"delinquency probability {p} is outside [0, 1]")
    grade = config.without_probability if p is None else _base_grade(p, config)
    rank = GRADES.index(grade)
    for cap in config.history_caps:
        latest = max(
            (ts for tier, ts in tier_history.items() if TIER_ORDER[tier] >= TIER_ORDER[cap.tier]), default=None
        )
        if latest is not None and now_ms - latest <= cap.within_days * _DAY_MS:
            rank = max(rank, GRADES.index(cap.best_grade))
    return GRADES[rank]
