"""The profile lookup API's responses: ``GET /customers/{customer_id}`` on any worker.

:class:`CustomerView` is what the worker that owns the customer's partition knows about the customer, as of the
customer's latest event (event time, not the time of the request): tier and grade, the latest fused score,
the rolling profile's features grouped by horizon, the open alert episodes, a restriction in force and the
ring, if any. :class:`ApiError` is the body of every 4xx / 5xx answer.

Example:
    >>> view = CustomerView(customer_id="c_1", last_event_at=1767603600000, tier="attention", grade="C")
    >>> view.tier_label, view.model_dump(mode="json")["last_event_at"]
    ('关注', '2026-01-05T09:00:00.000Z')
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import Field, StringConstraints

from schemas.common import Contract, EventTime, SchemaVersion
from schemas.ids import AlertId, PseudoId, RefId, RuleId
from schemas.outputs import TIER_LABELS, EntityRef, Grade, Tier, TierLabel

__all__ = ["HORIZONS", "ApiError", "CustomerView", "EpisodeView", "Horizon", "RestrictionView", "RingView"]

Horizon = Literal["30m", "24h", "7d", "30d", "current"]
"""A feature group: the window it counts over, or ``current`` for values that are states, not counts."""
HORIZONS: Final[tuple[Horizon, ...]] = ("30m", "24h", "7d", "30d", "current")

_FeatureName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class EpisodeView(Contract):
    """An alert episode still open at the customer's latest event: the rule, the tier reached, its alerts."""

    rule_id: RuleId
    tier: Tier
    started_at: EventTime
    alert_ids: list[AlertId] = Field(max_length=20, description="The episode's alerts, lowest tier first.")


class RestrictionView(Contract):
    """A freeze or limit reduction in force, waiting for its ``restore`` on ``risk.limit-actions.v1``."""

    action: Literal["freeze", "reduce_limit"]
    action_id: RefId
    alert_ids: list[AlertId] = Field(max_length=50)


class RingView(Contract):
    """The fraud ring the customer belongs to, as the latest ring membership update said."""

    ring_id: str = Field(pattern=r"^[0-9a-f]{16,64}$")
    score: float = Field(ge=0, le=1, description="The ring's risk score, fused with the customer's own detectors.")
    size: int = Field(ge=0, description="Members of the ring.")
    via: list[EntityRef] = Field(max_length=200, description="Entities this customer shares with the ring.")
    updated_at: EventTime


class CustomerView(Contract):
    """A customer's current risk picture, answered by the worker that owns the customer's partition.

    ``tier`` is the customer's tier at the latest scored event (None: below notice), ``own_tier`` the tier
    the customer's own behaviour reaches without its ring. ``score``, ``grade``, ``delinquency_probability``
    and ``rule_version`` come from the latest scored event (None before one, ``grade`` None while the
    customer is allow-listed, ``delinquency_probability`` None while the model warms up). ``features`` holds
    every profile feature at ``last_event_at``, by horizon, without the horizon suffix (``loan_applications``
    under ``30m`` is the feature ``loan_applications_30m``).
    """

    schema_version: SchemaVersion = 1
    customer_id: PseudoId
    last_event_at: EventTime = Field(description="Event time of the newest event seen for this customer.")
    tier: Tier | None = None
    tier_label: TierLabel | None = Field(
        default_factory=lambda data: None if data["tier"] is None else TIER_LABELS[data["tier"]]
    )
    own_tier: Tier | None = None
    score: float | None = Field(default=None, ge=0, le=1, description="Latest fused risk score.")
    grade: Grade | None = None
    delinquency_probability: float | None = Field(default=None, ge=0, le=1)
    rule_version: int | None = Field(default=None, ge=1, description="Rule set version of the latest score.")
    features: dict[Horizon, dict[_FeatureName, float]] = Field(default_factory=dict)
    open_episodes: list[EpisodeView] = Field(default_factory=list, max_length=10)
    restriction: RestrictionView | None = None
    ring: RingView | None = None
    served_by: str | None = Field(
        default=None, max_length=300, description="Web address of the worker that owns the customer and answered."
    )


class ApiError(Contract):
    """The body of an error answer: what went wrong, for whom."""

    error: Literal["invalid_customer_id", "unknown_customer", "unavailable"]
    message: str = Field(min_length=1, max_length=500)
    customer_id: str | None = Field(default=None, max_length=200, description="The id as requested.")
