"""Repayment deterioration (还款恶化): missed and partial payments, DPD bucket roll, cure.

Buckets: M0 current, M1 = DPD 1-30, M2 = 31-60, M3 = 61-90, M4+ = over 90 (feature ``dpd_bucket``). The score
adds, capped at 1:

- ``bucket_scores[dpd_bucket]``: the current bucket;
- ``roll_weight`` per upward roll in 30 days (M0→M1, M1→M2, ...: ``dpd_rolls_30d``);
- ``missed_weight`` per missed installment and ``partial_weight`` per partial payment in 30 days;

and is multiplied by ``cure_factor`` when the customer is back to M0 after being delinquent in the window
(``dpd_cures_30d`` > 0): a cure lowers the score but the history still counts.

Example:
    >>> d = RepaymentDetector()
    >>> d.score_one({"dpd_bucket": 0}).score
    0.0
    >>> s = d.score_one({"dpd_bucket": 1, "dpd_rolls_30d": 1, "missed_payments_30d": 1})
    >>> s.score, [r.feature for r in s.reasons]
    (0.8, ['dpd_bucket', 'dpd_rolls_30d', 'missed_payments_30d'])
    >>> d.score_one({"dpd_bucket": 0, "dpd_rolls_30d": 1, "missed_payments_30d": 1, "dpd_cures_30d": 1}).score
    0.175
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import Field

from detectors.base import DetectorScore
from detectors.rules._common import RuleConfig, TailEvents, feature, reason

__all__ = ["RepaymentConfig", "RepaymentDetector"]

_Unit = Annotated[float, Field(ge=0, le=1)]


class RepaymentConfig(RuleConfig):
    """Weights of the repayment-deterioration rule."""

    bucket_scores: tuple[_Unit, _Unit, _Unit, _Unit, _Unit] = Field(
        default=(0.0, 0.45, 0.75, 0.9, 1.0), description="Score of the current bucket M0, M1, M2, M3, M4+."
    )
    roll_weight: _Unit = Field(default=0.15, description="Added per upward bucket roll in 30 days.")
    missed_weight: _Unit = Field(default=0.2, description="Added per missed installment in 30 days.")
    partial_weight: _Unit = Field(default=0.1, description="Added per partial payment in 30 days.")
    cure_factor: _Unit = Field(default=0.5, description="Multiplies the score when cured back to M0 in 30 days.")


class RepaymentDetector:
    """Scores repayment deterioration; see the module docstring."""

    detector_id = "repayment_deterioration"

    def __init__(self, config: RepaymentConfig | None = None) -> None:
        self.config = config or RepaymentConfig()

    def learn_one(self, x: Mapping[str, float]) -> None:
        """Rules do not learn."""

    def score_one(self, x: Mapping[str, float], tail: TailEvents = (), at_ms: int | None = None) -> DetectorScore:
        """Score one feature vector (``tail`` and ``at_ms`` are not used by this rule)."""
        cfg = self.config
        bucket = min(4, max(0, int(feature(x, "dpd_bucket"))))
        rolls = feature(x, "dpd_rolls_30d")
        missed = feature(x, "missed_payments_30d")
        partial = feature(x, "partial_payments_30d")
        cures = feature(x, "dpd_cures_30d")
        reasons = []
        if bucket:
            dpd = feature(x, "dpd_max")
            reasons.append(reason("dpd_bucket", "dpd_bucket", bucket, 1, f"delinquent: M{bucket} ({dpd:g} DPD)"))
        for code, name, value, what in (
            ("dpd_roll", "dpd_rolls_30d", rolls, "DPD bucket roll(s)"),
            ("missed_payments", "missed_payments_30d", missed, "missed installment(s)"),
            ("partial_payments", "partial_payments_30d", partial, "partial payment(s)"),
        ):
            if value > 0:
                reasons.append(reason(code, name, value, 1, f"{value:g} {what} in 30 days"))
        score = cfg.bucket_scores[bucket] + cfg.roll_weight * rolls + cfg.missed_weight * missed
        score = min(1.0, score + cfg.partial_weight * partial)
        if bucket == 0 and cures > 0 and score > 0:
            score *= cfg.cure_factor
            reasons.append(reason("cured", "dpd_cures_30d", cures, 1, "back to M0 after being delinquent"))
        return DetectorScore(self.detector_id, round(score, 6), tuple(reasons))
