"""Multi-lending (多头借贷): many external credit inquiries by other lenders, non-bank weighted above bank.

A borrower shopping for credit at many lenders leaves bureau inquiries; non-bank lenders (small-loan and
consumer-finance companies) weigh more, because borrowing there while owing us is the stronger signal. The
weighted count ``bank_weight * inquiries_bank_h + non_bank_weight * inquiries_non_bank_h`` is graded between the
notice and warning thresholds of each horizon (7 and 30 days); the score is the larger of the two.

Example:
    >>> d = MultiLendingDetector()
    >>> d.score_one({"inquiries_bank_7d": 1, "inquiries_non_bank_7d": 1}).score
    0.0
    >>> s = d.score_one({"inquiries_bank_7d": 2, "inquiries_non_bank_7d": 3, "inquiries_non_bank_30d": 3})
    >>> s.score, s.reasons[0].feature, s.reasons[0].value, s.reasons[0].threshold
    (0.6, 'inquiries_weighted_7d', 8.0, 6.0)
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field

from detectors.base import DetectorScore
from detectors.rules._common import Band, RuleConfig, TailEvents, feature, graded, reason

__all__ = ["MultiLendingConfig", "MultiLendingDetector"]


class MultiLendingConfig(RuleConfig):
    """Weights and thresholds of the multi-lending rule (defaults: Chinese consumer lending, per customer)."""

    bank_weight: float = Field(default=1.0, ge=0, description="Weight of one bank inquiry.")
    non_bank_weight: float = Field(default=2.0, ge=0, description="Weight of one non-bank lender inquiry.")
    band_7d: Band = Field(
        default=Band(notice=6, warning=12), description="Weighted inquiries in 7 days: e.g. 3 non-bank = notice."
    )
    band_30d: Band = Field(default=Band(notice=12, warning=24), description="Weighted inquiries in 30 days.")


class MultiLendingDetector:
    """Scores weighted external inquiries over 7 and 30 days; see the module docstring."""

    detector_id = "multi_lending"

    def __init__(self, config: MultiLendingConfig | None = None) -> None:
        self.config = config or MultiLendingConfig()

    def learn_one(self, x: Mapping[str, float]) -> None:
        """Rules do not learn."""

    def score_one(self, x: Mapping[str, float], tail: TailEvents = (), at_ms: int | None = None) -> DetectorScore:
        """Score one feature vector (``tail`` and ``at_ms`` are not used by this rule)."""
        cfg = self.config
        score = 0.0
        reasons = []
        for h, band in (("7d", cfg.band_7d), ("30d", cfg.band_30d)):
            bank, non_bank = feature(x, f"inquiries_bank_{h}"), feature(x, f"inquiries_non_bank_{h}")
            weighted = cfg.bank_weight * bank + cfg.non_bank_weight * non_bank
            s = graded(weighted, band)
            if s > 0:
                threshold = band.threshold_for(weighted)
                reasons.append(
                    reason(
                        "multi_lending_inquiries",
                        f"inquiries_weighted_{h}",
                        weighted,
                        threshold,
                        f"{bank:g} bank and {non_bank:g} non-bank credit inquiries in {h} "
                        f"(weighted {weighted:g} ≥ {threshold:g})",
                    )
                )
            score = max(score, s)
        return DetectorScore(self.detector_id, score, tuple(reasons))
