"""Kafka record → ClickHouse rows. Pure apart from the ingest timestamp passed in.

Most topics give one row in one table (a :data:`RowBuilder`). Links and ring snapshots give rows in two tables
each (a :data:`RowsBuilder`: ``{table: [row, ...]}``), built together from one parse of the record, so the
writer can keep all of a record's rows or none of them.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas import serde
from schemas.common import to_ms
from schemas.decode import decode_behavior, decode_inquiry, decode_repayment
from schemas.entities import EntityLink, RingSnapshot
from schemas.outputs import Alert, DeadLetter, LimitAction, ProfileSnapshot

EVENT_COLUMNS = (
    "event_id",
    "event_type",
    "customer_id",
    "ts",
    "ts_ms",
    "source_topic",
    "partition",
    "offset",
    "payload",
    "ingested_at",
)
ALERT_COLUMNS = (
    "alert_id",
    "customer_id",
    "rule_id",
    "rule_version",
    "tier",
    "tier_label",
    "score",
    "reasons",
    "evidence_event_ids",
    "first_seen",
    "last_seen",
    "first_seen_ms",
    "last_seen_ms",
    "payload",
    "ingested_at",
)
LIMIT_ACTION_COLUMNS = (
    "action_id",
    "customer_id",
    "action",
    "factor",
    "grade",
    "alert_ids",
    "ts",
    "ts_ms",
    "expires_at_ms",
    "payload",
    "ingested_at",
)
PROFILE_SNAPSHOT_COLUMNS = (
    "customer_id",
    "ts",
    "ts_ms",
    "score",
    "tier",
    "grade",
    "feature_names",
    "feature_values",
    "payload",
    "ingested_at",
)
LINK_COLUMNS = (
    "link_id",
    "customer_a",
    "customer_b",
    "entity_kind",
    "entity_value",
    "first_seen",
    "last_seen",
    "first_seen_ms",
    "last_seen_ms",
    "refresh",
    "payload",
    "ingested_at",
)
CUSTOMER_LINK_COLUMNS = (
    "customer_id",
    "neighbour_id",
    "link_id",
    "entity_kind",
    "entity_value",
    "first_seen",
    "last_seen",
    "first_seen_ms",
    "last_seen_ms",
    "ingested_at",
)
RING_COLUMNS = (
    "ring_id",
    "ts",
    "ts_ms",
    "first_seen",
    "first_seen_ms",
    "size",
    "score",
    "tier",
    "members",
    "entity_kinds",
    "entity_values",
    "links",
    "dissolved",
    "payload",
    "ingested_at",
)
RING_MEMBER_COLUMNS = (
    "ring_id",
    "customer_id",
    "ts",
    "ts_ms",
    "size",
    "score",
    "tier",
    "dissolved",
    "ingested_at",
)
DEAD_LETTER_COLUMNS = (
    "dead_letter_id",
    "source_topic",
    "partition",
    "offset",
    "error_kind",
    "reason",
    "payload_b64",
    "payload_size",
    "received_at",
)


@dataclass(frozen=True)
class Record:
    """The parts of a consumed Kafka message a row needs."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_s: float | None = None


Row = tuple[Any, ...]
RowBuilder = Callable[[Record, datetime], Row | None]
TableRows = dict[str, list[Row]]
"""A record's rows by table name."""
RowsBuilder = Callable[[Record, datetime], TableRows]


def event_row(decode: Callable[[bytes], Any]) -> RowBuilder:
    """A builder for input events; invalid ones give None (the worker dead-letters them).

    The payload is the decoded event written back in its canonical form, not the record's bytes: a JSON object
    may repeat a key, the last value wins in the decoder, and the bytes would still carry the earlier values
    that were never checked (a raw phone number shadowed by a pseudonymous id). What is stored is exactly what
    passed the contract.
    """

    def build(record: Record, now: datetime) -> Row | None:
        try:
            event = decode(record.value)
        except Exception:  # noqa: BLE001 — undecodable input is the worker's dead letter, not a row here.
            return None
        return (
            event.event_id,
            event.event_type,
            event.customer_id,
            event.ts,
            to_ms(event.ts),
            record.topic,
            record.partition,
            record.offset,
            serde.dumps(event).decode(),
            now,
        )

    return build


def alert_row(record: Record, now: datetime) -> Row:
    """An alert row; the payload keeps the whole contract for consumers that want every field."""
    alert = Alert.model_validate_json(record.value)
    return (
        alert.alert_id,
        alert.customer_id,
        alert.rule_id,
        alert.rule_version,
        alert.tier,
        alert.tier_label,
        alert.score,
        serde.dumps([r.model_dump(mode="json") for r in alert.reasons]).decode("utf-8"),
        list(alert.evidence_event_ids),
        alert.first_seen,
        alert.last_seen,
        to_ms(alert.first_seen),
        to_ms(alert.last_seen),
        record.value.decode("utf-8"),
        now,
    )


def limit_action_row(record: Record, now: datetime) -> Row:
    """A limit-action row; ``expires_at_ms`` is 0 for an action that stands until a restore."""
    action = LimitAction.model_validate_json(record.value)
    return (
        action.action_id,
        action.customer_id,
        action.action,
        action.factor,
        action.grade,
        list(action.alert_ids),
        action.ts,
        to_ms(action.ts),
        to_ms(action.expires_at) if action.expires_at is not None else 0,
        record.value.decode("utf-8"),
        now,
    )


def profile_snapshot_row(record: Record, now: datetime) -> Row:
    """A snapshot row; features as parallel name/value arrays (sorted by name) that every engine can query."""
    snapshot = ProfileSnapshot.model_validate_json(record.value)
    names = sorted(snapshot.features)
    return (
        snapshot.customer_id,
        snapshot.ts,
        to_ms(snapshot.ts),
        snapshot.score,
        snapshot.tier or "",
        snapshot.grade or "",
        names,
        [snapshot.features[n] for n in names],
        record.value.decode("utf-8"),
        now,
    )


def link_rows(record: Record, now: datetime) -> TableRows:
    """A link's row in ``links``, and one row per side in ``customer_links`` (the customer, then its neighbour)."""
    link = EntityLink.model_validate_json(record.value)
    first_ms, last_ms = to_ms(link.first_seen), to_ms(link.last_seen)
    kind, value = link.entity.kind, link.entity.value
    row = (
        link.link_id,
        link.customer_a,
        link.customer_b,
        kind,
        value,
        link.first_seen,
        link.last_seen,
        first_ms,
        last_ms,
        int(link.refresh),
        record.value.decode("utf-8"),
        now,
    )
    sides = [
        (customer, neighbour, link.link_id, kind, value, link.first_seen, link.last_seen, first_ms, last_ms, now)
        for customer, neighbour in ((link.customer_a, link.customer_b), (link.customer_b, link.customer_a))
    ]
    return {"links": [row], "customer_links": sides}


def ring_rows(record: Record, now: datetime) -> TableRows:
    """A snapshot's row in ``rings``, and one row per distinct member in ``ring_members``; tier '' below notice.

    Entities become parallel arrays (kinds, values) in the snapshot's order; members keep their order too.
    """
    ring = RingSnapshot.model_validate_json(record.value)
    ts_ms = to_ms(ring.ts)
    tier = ring.tier or ""
    dissolved = int(ring.dissolved)
    row = (
        ring.ring_id,
        ring.ts,
        ts_ms,
        ring.first_seen,
        to_ms(ring.first_seen),
        ring.size,
        ring.score,
        tier,
        list(ring.members),
        [e.kind for e in ring.entities],
        [e.value for e in ring.entities],
        ring.links,
        dissolved,
        record.value.decode("utf-8"),
        now,
    )
    members = [
        (ring.ring_id, customer, ring.ts, ts_ms, ring.size, ring.score, tier, dissolved, now)
        for customer in dict.fromkeys(ring.members)
    ]
    return {"rings": [row], "ring_members": members}


def dead_letter_row(record: Record, now: datetime) -> Row:
    """A dead-letter row as the worker described it."""
    letter = DeadLetter.model_validate_json(record.value)
    return dead_letter_tuple(letter)


def dead_letter_tuple(letter: DeadLetter) -> Row:
    """Row form of a DeadLetter (also used for output messages the writer itself cannot read)."""
    return (
        letter.dead_letter_id,
        letter.source_topic,
        letter.partition,
        letter.offset,
        letter.error_kind,
        letter.reason,
        letter.payload_b64,
        letter.payload_size,
        letter.received_at,
    )


def raw_b64(value: bytes) -> str:
    """Base64 of raw bytes, for keeping what could not be parsed."""
    return base64.b64encode(value).decode("ascii")


DECODERS: dict[str, Callable[[bytes], Any]] = {
    "behavior": decode_behavior,
    "repayment": decode_repayment,
    "inquiry": decode_inquiry,
}
