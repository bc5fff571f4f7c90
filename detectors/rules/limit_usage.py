"""Limit exhaustion and night-time drawdowns (额度用尽 / 夜间提现).

Two signals on the profile, each graded between its notice and warning thresholds:

- the largest share of the available limit one drawdown used (``drawdown_limit_share_max_h``);
- the number of drawdowns between 00:00 and 06:00 China time (``night_drawdowns_h``), weighted by
  ``night_weight`` because a single night drawdown is common and weak on its own.

The score is the larger of the two, plus ``combined_bonus`` when both reach notice: exhausting the line at
night is the pattern of a borrower (or a fraudster) cashing out before disappearing.

Example:
    >>> d = LimitUsageDetector()
    >>> d.score_one({"drawdown_limit_share_max_24h": 0.5}).score
    0.0
    >>> s = d.score_one({"drawdown_limit_share_max_24h": 0.95, "night_drawdowns_24h": 1})
    >>> s.score, [r.feature for r in s.reasons]
    (1.0, ['drawdown_limit_share_max_24h', 'night_drawdowns_24h'])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field

from detectors.base import DetectorScore
from detectors.rules._common import Band, RuleConfig, TailEvents, feature, graded, reason

__all__ = ["LimitUsageConfig", "LimitUsageDetector"]


class LimitUsageConfig(RuleConfig):
    """Thresholds of the limit-usage rule."""

    horizon: Literal["30m", "24h", "30d"] = Field(default="24h", description="Profile horizon the rule reads.")
    share: Band = Field(
        default=Band(notice=0.8, warning=0.95), description="Largest drawdown / available limit before it."
    )
    night_drawdowns: Band = Field(default=Band(notice=1, warning=3), description="Drawdowns 00:00-06:00 UTC+8.")
    night_weight: float = Field(default=0.6, ge=0, le=1, description="Multiplies the night-drawdown score.")
    combined_bonus: float = Field(default=0.2, ge=0, le=1, description="Added when both signals reach notice.")


class LimitUsageDetector:
    """Scores limit exhaustion and night drawdowns; see the module docstring."""

    detector_id = "limit_usage"

    def __init__(self, config: LimitUsageConfig | None = None) -> None:
        self.config = config or LimitUsageConfig()

    def learn_one(self, x: Mapping[str, float]) -> None:
        """Rules do not learn."""

    def score_one(self, x: Mapping[str, float], tail: TailEvents = (), at_ms: int | None = None) -> DetectorScore:
        """Score one feature vector (``tail`` and ``at_ms`` are not used by this rule)."""
        cfg = self.config
        share_name = f"drawdown_limit_share_max_{cfg.horizon}"
        night_name = f"night_drawdowns_{cfg.horizon}"
        share, night = feature(x, share_name), feature(x, night_name)
        share_score = graded(share, cfg.share)
        night_score = cfg.night_weight * graded(night, cfg.night_drawdowns)
        reasons = []
        if share_score:
            t = cfg.share.threshold_for(share)
            reasons.append(
                reason("limit_exhaustion", share_name, share, t, f"drawdown used {share:.0%} of limit (≥ {t:.0%})")
            )
        if night_score:
            t = cfg.night_drawdowns.threshold_for(night)
            reasons.append(
                reason("night_drawdown", night_name, night, t, f"{night:g} drawdown(s) 00:00-06:00 UTC+8 (≥ {t:g})")
            )
        score = max(share_score, night_score) + (cfg.combined_bonus if share_score and night_score else 0.0)
        return DetectorScore(self.detector_id, min(1.0, round(score, 6)), tuple(reasons))
