"""The burst rule's configuration, the first part of the rule set.

The whole rule set is :class:`detectors.engine.EngineConfig` (one field per detector, every field defaulted),
published to the compacted ``risk.rules.v1`` topic by ``loanwatch rules push`` and hot-reloaded by the workers.
Every burst alert records this rule's ``version``. Validation errors name the field and the reason, e.g.
``thresholds.attention: attention (3) must be greater than notice (3)``.

Example:
    >>> rule = BurstRuleConfig.model_validate({"version": 2, "window_minutes": 20})
    >>> rule.window_minutes, rule.thresholds.warning
    (20, 8)
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from schemas.common import Contract

__all__ = ["BurstRuleConfig", "TierThresholds"]


class TierThresholds(Contract):
    """Counts at which each tier starts; strictly increasing: ``notice < attention < warning``."""

    notice: int = Field(default=3, ge=1, description="Count at which the 提示 notice tier starts.")
    # validate_default: the order check must also compare a given notice with the default attention, etc.
    attention: int = Field(
        default=5, ge=1, validate_default=True, description="Count at which the 关注 attention tier starts."
    )
    warning: int = Field(
        default=8, ge=1, validate_default=True, description="Count at which the 预警 warning tier starts."
    )

    @field_validator("attention", "warning")
    @classmethod
    def _increasing(cls, value: int, info: ValidationInfo) -> int:
        lower = "notice" if info.field_name == "attention" else "attention"
        below = info.data.get(lower)
        if below is not None and value <= below:
            raise PydanticCustomError(
                "thresholds_order", "{field} ({value}) must be greater than {lower} ({below})",
                {"field": info.field_name, "value": value, "lower": lower, "below": below},
            )
        return value


class BurstRuleConfig(Contract):
    """Multi-application burst (集中申请多笔贷款): tiers by the count of loan applications in a window."""

    rule_id: Literal["multi_application_burst"] = Field(
        default="multi_application_burst",
        description="Fixed: the rule_id of every burst alert and the burst's detector_id in fusion.",
    )
    version: int = Field(default=1, ge=1, description="Recorded on every alert this rule raises.")
    enabled: bool = Field(default=True, description="false: no burst alerts, and the burst feeds 0 to fusion.")
    window_minutes: int = Field(default=30, ge=1, le=1440, description="Sliding event-time window.")
    thresholds: TierThresholds = Field(default_factory=TierThresholds)
    cooldown_minutes: int = Field(
        default=30, ge=1, le=10080, description="Event time without a burst after which an episode closes."
    )
