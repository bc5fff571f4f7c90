"""Configuration of the decision layer: fusion weights, tier thresholds, episodes, grades and the action policy.

Everything here is data (DESIGN "Rules are data"): frozen pydantic models that refuse unknown fields, with
defaults that work out of the box and validation errors that name the field, e.g.
``fusion.thresholds.attention: attention (0.3) must be greater than notice (0.4)``. A :class:`DecisionConfig`
carries a ``version`` that every fused alert records as its ``rule_version``.

Example:
    >>> config = DecisionConfig.model_validate({"version": 4, "fusion": {"weights": {"multi_lending": 0.8}}})
    >>> config.fusion.method, config.fusion.weight_for("multi_lending"), config.fusion.weight_for("other")
    ('noisy_or', 0.8, 1.0)
    >>> config.actions.rule_for("attention", "D").action
    'reduce_limit'
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Final, Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from detectors.base import tier_reached
from schemas.common import Contract
from schemas.ids import ProductCode, RuleId
from schemas.outputs import Grade, Tier, check_factor_for_action

__all__ = [
    "ACTION_RANK",
    "GRADES",
    "ActionPolicy",
    "ActionRule",
    "DecisionConfig",
    "EpisodeConfig",
    "FusionConfig",
    "GradeConfig",
    "GradeCutoffs",
    "HistoryCap",
    "ProductOverride",
    "TierThresholds",
]

GRADES: Final[tuple[Grade, ...]] = ("A", "B", "C", "D", "E")
"""Grades from best to worst; the index is the grade's rank."""
PolicyAction = Literal["freeze", "reduce_limit", "review"]  # restore is not a rule: it follows a cleared risk
ACTION_RANK: Final[Mapping[str, int]] = MappingProxyType({"review": 1, "reduce_limit": 2, "freeze": 3})
"""Severity of each policy action; within an episode only a more severe action is emitted."""

Weight = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Combination = Literal["noisy_or", "weighted_max"]


def _order_error(field: str, value: float, lower: str, below: float) -> PydanticCustomError:
    return PydanticCustomError(
        "thresholds_order", "{field} ({value}) must be greater than {lower} ({below})",
        {"field": field, "value": value, "lower": lower, "below": below},
    )


class TierThresholds(Contract):
    """Fused scores at which each tier starts (inclusive), in (0, 1]: ``notice < attention < warning``.

    Defaults: one detector at full weight reaching 0.4 is a notice; two moderate signals (0.5 each) fuse to 0.75
    under noisy-OR, an attention; a warning needs 0.85, e.g. one strong signal (0.85) or three at 0.5 (0.875).
    """

    notice: float = Field(default=0.4, gt=0, le=1, description="Fused score where 提示 notice starts.")
    # validate_default: with only notice given, the default attention must still be checked against it.
    attention: float = Field(
        default=0.6, gt=0, le=1, validate_default=True, description="Fused score where 关注 attention starts."
    )
    warning: float = Field(
        default=0.85, gt=0, le=1, validate_default=True, description="Fused score where 预警 warning starts."
    )

    @field_validator("attention", "warning")
    @classmethod
    def _increasing(cls, value: float, info: ValidationInfo) -> float:
        lower = "notice" if info.field_name == "attention" else "attention"
        below = info.data.get(lower)
        if below is not None and value <= below:
            raise _order_error(str(info.field_name), value, lower, below)
        return value

    def of(self, tier: Tier) -> float:
        """The threshold of ``tier``."""
        return {"notice": self.notice, "attention": self.attention, "warning": self.warning}[tier]

    def tier_for(self, score: float) -> Tier | None:
        """The highest tier whose threshold ``score`` reaches, or None below notice."""
        return tier_reached(score, self.notice, self.attention, self.warning)


class ProductOverride(Contract):
    """Per-product changes to fusion: weights merged over the base weights, and/or other thresholds."""

    weights: dict[RuleId, Weight] = Field(default_factory=dict, description="Merged over FusionConfig.weights.")
    default_weight: Weight | None = Field(default=None, description="Replaces the base default weight if set.")
    thresholds: TierThresholds | None = Field(default=None, description="Replaces the base thresholds if set.")


class FusionConfig(Contract):
    """How detector scores combine into one customer score, and where the tiers start.

    ``method`` defaults to weighted **noisy-OR**, ``1 - Π(1 - w_i·s_i)``: several moderate, independent signals
    add up (two detectors at 0.5 give 0.75) while one strong signal still dominates on its own (a single 0.9
    gives 0.9), and the result never leaves [0, 1]. ``weighted_max``, ``max(w_i·s_i)``, is the conservative
    alternative in which only the strongest signal counts. Weights lie in [0, 1] so each weighted score does too;
    a detector without a weight gets ``default_weight`` (1.0: an unknown detector counts fully until tuned, so a
    new detector is never silently ignored).
    """

    method: Combination = Field(default="noisy_or", description="noisy_or or weighted_max.")
    weights: dict[RuleId, Weight] = Field(default_factory=dict, description="Weight per detector_id, in [0, 1].")
    default_weight: Weight = Field(default=1.0, description="Weight of a detector not listed in weights.")
    thresholds: TierThresholds = Field(default_factory=TierThresholds)
    products: dict[ProductCode, ProductOverride] = Field(
        default_factory=dict, description="Overrides by product code; other products use the base values."
    )
    max_reasons: int = Field(default=5, ge=1, le=19, description="Detector reasons kept, by contribution.")

    def weight_for(self, detector_id: str, product: str | None = None) -> float:
        """The weight of ``detector_id`` for ``product`` (product override first, then the base)."""
        override = self.products.get(product) if product is not None else None
        if override is not None:
            if detector_id in override.weights:
                return override.weights[detector_id]
            if detector_id not in self.weights and override.default_weight is not None:
                return override.default_weight
        return self.weights.get(detector_id, self.default_weight)

    def thresholds_for(self, product: str | None = None) -> TierThresholds:
        """The tier thresholds that apply to ``product``."""
        override = self.products.get(product) if product is not None else None
        if override is not None and override.thresholds is not None:
            return override.thresholds
        return self.thresholds


class EpisodeConfig(Contract):
    """When a fused-risk episode closes and how often an ongoing one may alert again."""

    cooldown_minutes: int = Field(
        default=60, ge=1, le=43200,
        description="Event time with no score at or above notice after which the open episode closes.",
    )
    realert_after_minutes: int | None = Field(
        default=None, ge=1, le=525600,
        description="Re-alert policy. None: an episode alerts once per tier however long it lasts. N: an "
        "episode still open N minutes after it began is closed, so continuing risk re-alerts as a new episode.",
    )
    replay_memory: int = Field(
        default=8, ge=1, le=64,
        description="Triggers that emitted something whose outputs are kept to re-send on replay (per customer).",
    )


class GradeCutoffs(Contract):
    """Delinquency probability at which each grade starts; below ``b`` is A. Strictly increasing, in (0, 1)."""

    b: float = Field(default=0.02, gt=0, lt=1, description="p at or above this is at least B.")
    c: float = Field(default=0.05, validate_default=True, gt=0, lt=1, description="p at or above this is at least C.")
    d: float = Field(default=0.10, validate_default=True, gt=0, lt=1, description="p at or above this is at least D.")
    e: float = Field(default=0.20, validate_default=True, gt=0, lt=1, description="p at or above this is E.")

    @field_validator("c", "d", "e")
    @classmethod
    def _increasing(cls, value: float, info: ValidationInfo) -> float:
        lower = {"c": "b", "d": "c", "e": "d"}[str(info.field_name)]
        below = info.data.get(lower)
        if below is not None and value <= below:
            raise _order_error(str(info.field_name), value, lower, below)
        return value


class HistoryCap(Contract):
    """A tier at or above ``tier`` reached within ``within_days`` of event time caps the grade at ``best_grade``.

    "Caps" means the grade can be no better than ``best_grade``: a recent warning keeps a customer at D or worse.
    """

    tier: Tier = Field(description="Tier that caps the grade; a higher tier caps it too.")
    within_days: int = Field(ge=1, le=3650, description="How recently (event time) the tier must have been reached.")
    best_grade: Grade = Field(description="Best grade the customer can have while the cap applies.")


def _default_caps() -> tuple[HistoryCap, ...]:
    return (
        HistoryCap(tier="warning", within_days=30, best_grade="D"),
        HistoryCap(tier="attention", within_days=30, best_grade="C"),
    )


class GradeConfig(Contract):
    """Grade A–E from the delinquency probability, made worse by recent tiers (see :class:`HistoryCap`)."""

    cutoffs: GradeCutoffs = Field(default_factory=GradeCutoffs)
    without_probability: Grade = Field(
        default="C", description="Base grade while the delinquency model has no probability for the customer."
    )
    history_caps: tuple[HistoryCap, ...] = Field(
        default_factory=_default_caps, max_length=16,
        description="Default: a warning within 30 days caps at D, an attention within 30 days at C.",
    )


class ActionRule(Contract):
    """One row of the policy table: at ``tier`` with a grade of ``min_grade`` or worse, recommend ``action``."""

    tier: Tier = Field(description="Fused tier the rule applies to.")
    min_grade: Grade = Field(default="A", description="Applies to this grade and worse ones (A: every grade).")
    action: PolicyAction = Field(description="Recommended limit action.")
    factor: float | None = Field(
        default=None, gt=0, lt=1, validate_default=True,
        description="Limit multiplier; required exactly when action is reduce_limit.",
    )
    expires_after_minutes: int | None = Field(
        default=None, ge=1, le=525600, description="Sets expires_at = ts + this; None stands until restore."
    )

    @field_validator("factor")
    @classmethod
    def _factor_iff_reduce(cls, factor: float | None, info: ValidationInfo) -> float | None:
        return check_factor_for_action(info.data.get("action"), factor)


def _default_rules() -> tuple[ActionRule, ...]:
    return (
        ActionRule(tier="warning", action="freeze"),
        ActionRule(tier="attention", min_grade="D", action="reduce_limit", factor=0.5),
        ActionRule(tier="attention", action="review", expires_after_minutes=3 * 24 * 60),
    )


class ActionPolicy(Contract):
    """(tier, grade) → limit action, first matching rule wins; and when a restriction is lifted.

    Defaults: warning → freeze; attention with grade D or E → reduce_limit to half; attention → review (the
    request lapses after 3 days); notice → no action. After a freeze or reduce_limit, ``restore`` is recommended
    once the fused score has stayed below notice for ``restore_after_minutes`` of event time.
    """

    rules: tuple[ActionRule, ...] = Field(
        default_factory=_default_rules, max_length=32,
        description="Policy table, first match wins; a tier and grade no rule matches recommend nothing.",
    )
    restore_after_minutes: int = Field(
        default=24 * 60, ge=1, le=525600,
        description="Event time below notice after a freeze/reduce_limit before restore is recommended.",
    )

    def rule_for(self, tier: Tier, grade: Grade) -> ActionRule | None:
        """The first rule matching ``tier`` and ``grade``, or None when the policy recommends nothing."""
        rank = GRADES.index(grade)
        for rule in self.rules:
            if rule.tier == tier and rank >= GRADES.index(rule.min_grade):
                return rule
        return None


class DecisionConfig(Contract):
    """The whole decision layer's configuration; ``version`` is recorded on every fused alert."""

    version: int = Field(
        default=1, ge=1,
        description="Recorded as rule_version on every fused_risk alert; the engine ignores it and records the "
        "rule set's version instead.",
    )
    fusion: FusionConfig = Field(default_factory=FusionConfig)
    episodes: EpisodeConfig = Field(default_factory=EpisodeConfig)
    grades: GradeConfig = Field(default_factory=GradeConfig)
    actions: ActionPolicy = Field(default_factory=ActionPolicy, validate_default=True)

    @field_validator("actions")
    @classmethod
    def _restore_not_inside_episode(cls, actions: ActionPolicy, info: ValidationInfo) -> ActionPolicy:
        # A restore inside an open episode would let that episode restrict again under the same action id,
        # which consumers would drop as a duplicate; so restore comes no sooner than the episode closes.
        episodes = info.data.get("episodes")
        if episodes is not None and actions.restore_after_minutes < episodes.cooldown_minutes:
            raise PydanticCustomError(
                "restore_before_cooldown",
                "restore_after_minutes ({restore}) must be at least episodes.cooldown_minutes ({cooldown})",
                {"restore": actions.restore_after_minutes, "cooldown": episodes.cooldown_minutes},
            )
        return actions

