"""What the workers publish: alerts, limit actions, profile snapshots and dead letters.

Ids of outputs are deterministic so that a replay after a crash produces the same ids and every consumer
(ClickHouse ReplacingMergeTree, limit-management services) can dedupe on them:

- :func:`alert_id_for` — one alert per (customer, rule, tier, episode start): the idempotency key of alerts.
- :func:`dead_letter_id_for` — one dead letter per (source topic, partition, offset).

Example:
    >>> from datetime import UTC, datetime
    >>> start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    >>> alert_id_for("c_000123", "multi_application_burst", "notice", start) == alert_id_for(
    ...     "c_000123", "multi_application_burst", "notice", 1767603600000
    ... )
    True
    >>> len(dead_letter_id_for("loan.behavior.v1", 3, 1042))
    32
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BeforeValidator,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from schemas.common import Contract, EventTime, SchemaVersion, to_ms
from schemas.ids import AlertId, EventId, PseudoId, RefId, RuleId, refuse_personal_data

__all__ = [
    "ENTITY_KINDS",
    "MAX_EVIDENCE",
    "MAX_REASON_CHARS",
    "TIERS",
    "TIER_LABELS",
    "TIER_ORDER",
    "Alert",
    "DeadLetter",
    "EntityKind",
    "EntityRef",
    "EntityValue",
    "ErrorKind",
    "Grade",
    "LimitAction",
    "ProfileSnapshot",
    "Reason",
    "RingRef",
    "Tier",
    "TierLabel",
    "alert_id_for",
    "stable_digest",
    "dead_letter_id_for",
    "truncate_reason",
]

Tier = Literal["notice", "attention", "warning"]
"""Alert tiers, lowest first: 提示 notice, 关注 attention, 预警 warning."""
TierLabel = Literal["提示", "关注", "预警"]
TIERS: Final[tuple[Tier, ...]] = ("notice", "attention", "warning")
TIER_LABELS: Final[Mapping[Tier, TierLabel]] = MappingProxyType(
    {"notice": "提示", "attention": "关注", "warning": "预警"}
)
"""The Chinese label operators see for each tier."""
TIER_ORDER: Final[Mapping[Tier, int]] = MappingProxyType({"notice": 1, "attention": 2, "warning": 3})
"""Rank of each tier; a higher rank is more severe (escalation compares ranks)."""

Grade = Literal["A", "B", "C", "D", "E"]
"""Customer risk grade from the delinquency model, A best."""
ErrorKind = Literal["not_json", "invalid_utf8", "validation", "unknown_event_type", "too_large", "processing"]
"""Why a message became a dead letter; ``processing`` means it decoded but handling it raised."""

#: Evidence event ids an alert may carry (the newest ones when a window holds more).
MAX_EVIDENCE: Final = 50
#: Longest dead-letter reason; longer reasons are cut and marked with an ellipsis.
MAX_REASON_CHARS: Final = 2000

Score = Annotated[float, Field(ge=0, le=1)]
SnakeName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
_Hex32 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
_Base64 = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]*={0,2}$")]
_SEP: Final = "\x1f"  # unit separator: no id pattern allows it, so the canonical strings are unambiguous


def stable_digest(*parts: str) -> str:
    """A deterministic id: 32 hex of SHA-256 over the parts (the first names the id's kind and version)."""
    return hashlib.sha256(_SEP.join(parts).encode("utf-8")).hexdigest()[:32]


def alert_id_for(customer_id: str, rule_id: str, tier: Tier, episode_start: datetime | int) -> str:
    """Return the idempotency key of an alert: 32 hex of SHA-256 over (customer, rule, tier, episode start).

    ``episode_start`` is the event time the episode began, as an aware datetime or epoch milliseconds (both
    give the same id). The same episode replayed gives the same id; a new episode or a higher tier a new one.
    """
    if tier not in TIER_ORDER:
        raise ValueError(f"unknown tier {tier!r}; expected one of {', '.join(TIERS)}")
    if isinstance(episode_start, bool) or not isinstance(episode_start, int | datetime):
        raise TypeError("episode_start must be an aware datetime or integer epoch milliseconds")
    start_ms = to_ms(episode_start) if isinstance(episode_start, datetime) else episode_start
    return stable_digest("alert/v1", customer_id, rule_id, tier, str(start_ms))


def dead_letter_id_for(source_topic: str, partition: int, offset: int) -> str:
    """Return the dead-letter id of one Kafka record: 32 hex of SHA-256 of (topic, partition, offset)."""
    return stable_digest("dead_letter/v1", source_topic, str(int(partition)), str(int(offset)))


def truncate_reason(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """``text`` cut to at most ``limit`` characters, ending in an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cut_reason(value: Any) -> Any:
    return truncate_reason(value) if isinstance(value, str) else value


class Reason(Contract):
    """One reason behind an alert: which feature had which value against which threshold."""

    code: SnakeName
    message: str = Field(min_length=1, max_length=2000, description="Human-readable, for operators.")
    feature: SnakeName
    value: float
    threshold: float


EntityKind = Literal["device", "ip", "net24", "bank_card", "phone", "contact_list"]
"""What an entity is: a device, an IP address, its network (IPv4 /24, IPv6 /64), a bank-card or phone hash, or
the hash of an uploaded address book (``contact_list``)."""
ENTITY_KINDS: Final[tuple[EntityKind, ...]] = ("device", "ip", "net24", "bank_card", "phone", "contact_list")
EntityValue = Annotated[
    str, BeforeValidator(refuse_personal_data), StringConstraints(pattern=r"^[A-Za-z0-9_.:/\-]{1,128}$")
]
"""A pseudonymous entity value: an id, an IP, a network (``10.1.2.0/24``) or a salted hash; never raw PII."""


class EntityRef(Contract):
    """One entity: its kind and pseudonymous value."""

    kind: EntityKind
    value: EntityValue

    def __str__(self) -> str:
        return f"{self.kind} {self.value}"


class RingRef(Contract):
    """The fraud ring a ring alert is about: its id, every member and the entities they share."""

    ring_id: str = Field(pattern=r"^[0-9a-f]{16,64}$")
    members: list[PseudoId] = Field(min_length=2, max_length=1000)
    entities: list[EntityRef] = Field(max_length=200)


class Alert(Contract):
    """A tiered alert, one per (customer, rule, tier) episode; topic ``risk.alerts.v1``.

    ``tier_label`` may be omitted when building one in Python (it is derived from ``tier``); when given it
    must match. ``previous_alert_id`` links an escalation to the lower-tier alert of the same episode.
    """

    schema_version: SchemaVersion = 1
    alert_id: AlertId = Field(description="Deterministic idempotency key, see alert_id_for().")
    customer_id: PseudoId
    rule_id: RuleId
    rule_version: int = Field(ge=1)
    tier: Tier
    tier_label: TierLabel = Field(default_factory=lambda data: TIER_LABELS[data["tier"]])
    score: Score
    reasons: list[Reason] = Field(min_length=1, max_length=20)
    evidence_event_ids: list[EventId] = Field(max_length=MAX_EVIDENCE)
    first_seen: EventTime
    last_seen: EventTime
    previous_alert_id: AlertId | None = None
    ring: RingRef | None = Field(
        default=None, description="Set on fraud-ring alerts: the ring, all its members and the shared entities."
    )

    @field_validator("tier_label")
    @classmethod
    def _label_matches_tier(cls, label: TierLabel, info: ValidationInfo) -> TierLabel:
        tier = info.data.get("tier")
        if tier is not None and TIER_LABELS[tier] != label:
            raise PydanticCustomError(
                "tier_label_mismatch", "tier_label must be '{expected}' for tier '{tier}'",
                {"expected": TIER_LABELS[tier], "tier": tier},
            )
        return label

    @field_validator("last_seen")
    @classmethod
    def _not_before_first_seen(cls, last_seen: datetime, info: ValidationInfo) -> datetime:
        first_seen = info.data.get("first_seen")
        if first_seen is not None and last_seen < first_seen:
            raise PydanticCustomError("time_order", "last_seen must not be earlier than first_seen")
        return last_seen

    @field_validator("previous_alert_id")
    @classmethod
    def _not_self(cls, previous: str | None, info: ValidationInfo) -> str | None:
        if previous is not None and previous == info.data.get("alert_id"):
            raise PydanticCustomError("self_link", "previous_alert_id must differ from alert_id")
        return previous


def check_factor_for_action(action: str | None, factor: float | None) -> float | None:
    """Return ``factor`` if it fits ``action``: required for ``reduce_limit``, refused for any other action."""
    if action == "reduce_limit" and factor is None:
        raise PydanticCustomError("factor_required", "factor is required when action is 'reduce_limit'")
    if action is not None and action != "reduce_limit" and factor is not None:
        raise PydanticCustomError(
            "factor_not_allowed", "factor is only allowed when action is 'reduce_limit', not '{action}'",
            {"action": action},
        )
    return factor


class LimitAction(Contract):
    """A recommended credit-limit action for limit-management services; topic ``risk.limit-actions.v1``.

    ``factor`` is the multiplier applied to the current limit and is required exactly when ``action`` is
    ``reduce_limit`` (0 < factor < 1). ``expires_at``, when set, is after ``ts``; without it the action stands
    until a later ``restore``.
    """

    schema_version: SchemaVersion = 1
    action_id: RefId
    customer_id: PseudoId
    action: Literal["freeze", "reduce_limit", "review", "restore"]
    factor: float | None = Field(default=None, gt=0, lt=1, validate_default=True)
    grade: Grade
    alert_ids: list[AlertId] = Field(default_factory=list, max_length=MAX_EVIDENCE)
    ts: EventTime
    expires_at: EventTime | None = None

    @field_validator("factor")
    @classmethod
    def _factor_iff_reduce(cls, factor: float | None, info: ValidationInfo) -> float | None:
        return check_factor_for_action(info.data.get("action"), factor)

    @field_validator("expires_at")
    @classmethod
    def _expires_after_ts(cls, expires_at: datetime | None, info: ValidationInfo) -> datetime | None:
        ts = info.data.get("ts")
        if expires_at is not None and ts is not None and expires_at <= ts:
            raise PydanticCustomError("time_order", "expires_at must be later than ts")
        return expires_at


class ProfileSnapshot(Contract):
    """A customer's rolling profile at one event time; topic ``risk.profiles.v1``.

    Written every 30 minutes of event time and on every tier change. ``features`` are the named feature values
    the detectors scored (finite floats); ``tier`` and ``grade`` are None while the customer has none.
    """

    schema_version: SchemaVersion = 1
    customer_id: PseudoId
    ts: EventTime
    features: dict[SnakeName, float] = Field(max_length=512)
    score: Score
    tier: Tier | None = None
    grade: Grade | None = None


class DeadLetter(Contract):
    """A message that could not be processed, kept byte for byte with where it came from and why.

    ``payload_b64`` is the original value, base64-encoded (lossless even for invalid UTF-8); ``payload_size``
    is its length in bytes. The dead-letter topic must accept messages about 4/3 the size of the largest
    source message (``max.message.bytes``). ``reason`` is cut to :data:`MAX_REASON_CHARS` characters instead
    of being refused: failing to build a dead letter would lose the message.
    """

    schema_version: SchemaVersion = 1
    dead_letter_id: _Hex32 = Field(description="Deterministic, see dead_letter_id_for().")
    source_topic: str = Field(pattern=r"^[A-Za-z0-9._\-]{1,249}$")
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    key_b64: _Base64 | None = None
    payload_b64: _Base64
    payload_size: int = Field(ge=0)
    error_kind: ErrorKind
    reason: Annotated[str, BeforeValidator(_cut_reason)] = Field(min_length=1, max_length=MAX_REASON_CHARS)
    received_at: EventTime

    @field_validator("payload_size")
    @classmethod
    def _size_matches_payload(cls, size: int, info: ValidationInfo) -> int:
        payload = info.data.get("payload_b64")
        if payload is not None and len(payload) != 4 * ((size + 2) // 3):
            raise PydanticCustomError(
                "payload_size", "payload_size {size} does not match the base64 payload length {length}",
                {"size": size, "length": len(payload)},
            )
        return size
