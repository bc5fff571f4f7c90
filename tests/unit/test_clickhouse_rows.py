"""Row builders for links and ring snapshots: one record, rows in two tables, widths matching the columns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from schemas import serde
from schemas.decode import decode_behavior
from schemas.entities import EntityLink, EntityRef, RingSnapshot, entity_link_id
from streams.clickhouse.rows import (
    CUSTOMER_LINK_COLUMNS,
    EVENT_COLUMNS,
    LINK_COLUMNS,
    RING_COLUMNS,
    RING_MEMBER_COLUMNS,
    Record,
    event_row,
    link_rows,
    ring_rows,
)

T0 = datetime(2026, 1, 5, 9, 0, 0, 250_000, tzinfo=UTC)
NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
T0_MS = 1767603600250


def record(topic: str, value: bytes) -> Record:
    return Record(topic, 2, 41, None, value, 1767603600.0)


def as_dict(columns: tuple[str, ...], row: tuple[object, ...]) -> dict[str, object]:
    return dict(zip(columns, row, strict=True))


def test_a_link_gives_one_links_row_and_one_row_per_side() -> None:
    link = EntityLink(
        customer_a="c_000001",
        customer_b="c_000002",
        entity=EntityRef(kind="device", value="d_9"),
        first_seen=T0,
        last_seen=T0 + timedelta(minutes=40),
        refresh=True,
    )
    value = serde.dumps(link)
    rows = link_rows(record("risk.links.v1", value), NOW)
    assert set(rows) == {"links", "customer_links"}
    (row,) = rows["links"]
    assert as_dict(LINK_COLUMNS, row) == {
        "link_id": entity_link_id("c_000001", "c_000002", "device", "d_9"),
        "customer_a": "c_000001",
        "customer_b": "c_000002",
        "entity_kind": "device",
        "entity_value": "d_9",
        "first_seen": T0,
        "last_seen": T0 + timedelta(minutes=40),
        "first_seen_ms": T0_MS,
        "last_seen_ms": T0_MS + 40 * 60_000,
        "refresh": 1,
        "payload": value.decode("utf-8"),
        "ingested_at": NOW,
    }
    sides = [as_dict(CUSTOMER_LINK_COLUMNS, r) for r in rows["customer_links"]]
    pairs = [(s["customer_id"], s["neighbour_id"]) for s in sides]
    assert pairs == [("c_000001", "c_000002"), ("c_000002", "c_000001")]
    for side in sides:
        assert side["link_id"] == row[0] and (side["entity_kind"], side["entity_value"]) == ("device", "d_9")
        assert (side["first_seen_ms"], side["last_seen_ms"]) == (T0_MS, T0_MS + 40 * 60_000)
        assert side["first_seen"] == T0 and side["ingested_at"] == NOW


def test_a_new_link_is_not_a_refresh_and_its_id_is_derived_when_absent() -> None:
    raw = (
        b'{"customer_a": "c_000003", "customer_b": "c_000004", "entity": {"kind": "ip", "value": "10.0.0.7"},'
        b' "first_seen": 1767603600250, "last_seen": 1767603600250}'
    )
    (row,) = link_rows(record("risk.links.v1", raw), NOW)["links"]
    fields = as_dict(LINK_COLUMNS, row)
    assert fields["link_id"] == entity_link_id("c_000004", "c_000003", "ip", "10.0.0.7")
    assert fields["refresh"] == 0 and fields["first_seen_ms"] == fields["last_seen_ms"] == T0_MS
    assert fields["payload"] == raw.decode("utf-8"), "the payload is the record as sent"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"customer_a": "c_2", "customer_b": "c_1", "entity": {"kind": "ip", "value": "10.0.0.7"},'
        b' "first_seen": 1767603600250, "last_seen": 1767603600250}',
        b'{"link_id": "' + b"0" * 32 + b'", "customer_a": "c_1", "customer_b": "c_2",'
        b' "entity": {"kind": "ip", "value": "10.0.0.7"}, "first_seen": 1767603600250, "last_seen": 1767603600250}',
        b'{"customer_a": "c_1"}',
    ],
    ids=["unordered", "wrong-id", "incomplete"],
)
def test_an_unreadable_link_raises_so_the_writer_dead_letters_it(raw: bytes) -> None:
    with pytest.raises(ValidationError):
        link_rows(record("risk.links.v1", raw), NOW)


def snapshot(**overrides: object) -> RingSnapshot:
    fields: dict[str, object] = {
        "ring_id": "1ea56c545062f16e",
        "ts": T0 + timedelta(minutes=5),
        "first_seen": T0,
        "size": 3,
        "score": 0.62,
        "tier": "attention",
        "members": ["c_000002", "c_000001", "c_000003"],
        "entities": [EntityRef(kind="device", value="d_9"), EntityRef(kind="ip", value="10.0.0.7")],
        "links": 2,
    }
    fields.update(overrides)
    return RingSnapshot.model_validate(fields)


def test_a_ring_snapshot_gives_one_rings_row_and_one_row_per_member() -> None:
    value = serde.dumps(snapshot())
    rows = ring_rows(record("risk.rings.v1", value), NOW)
    assert set(rows) == {"rings", "ring_members"}
    (row,) = rows["rings"]
    ts_ms = T0_MS + 5 * 60_000
    assert as_dict(RING_COLUMNS, row) == {
        "ring_id": "1ea56c545062f16e",
        "ts": T0 + timedelta(minutes=5),
        "ts_ms": ts_ms,
        "first_seen": T0,
        "first_seen_ms": T0_MS,
        "size": 3,
        "score": 0.62,
        "tier": "attention",
        "members": ["c_000002", "c_000001", "c_000003"],
        "entity_kinds": ["device", "ip"],
        "entity_values": ["d_9", "10.0.0.7"],
        "links": 2,
        "dissolved": 0,
        "payload": value.decode("utf-8"),
        "ingested_at": NOW,
    }
    members = [as_dict(RING_MEMBER_COLUMNS, r) for r in rows["ring_members"]]
    assert [m["customer_id"] for m in members] == ["c_000002", "c_000001", "c_000003"]
    for member in members:
        assert member == {
            "ring_id": "1ea56c545062f16e",
            "customer_id": member["customer_id"],
            "ts": T0 + timedelta(minutes=5),
            "ts_ms": ts_ms,
            "size": 3,
            "score": 0.62,
            "tier": "attention",
            "dissolved": 0,
            "ingested_at": NOW,
        }


def test_a_dissolved_ring_below_notice_has_an_empty_tier_and_each_member_once() -> None:
    ring = snapshot(tier=None, score=0.1, dissolved=True, members=["c_000001", "c_000002", "c_000001"], size=2)
    rows = ring_rows(record("risk.rings.v1", serde.dumps(ring)), NOW)
    fields = as_dict(RING_COLUMNS, rows["rings"][0])
    assert (fields["tier"], fields["dissolved"], fields["size"]) == ("", 1, 2)
    members = [as_dict(RING_MEMBER_COLUMNS, r) for r in rows["ring_members"]]
    assert [(m["customer_id"], m["tier"], m["dissolved"]) for m in members] == [
        ("c_000001", "", 1),
        ("c_000002", "", 1),
    ]


def test_an_unreadable_ring_raises_before_any_row_is_made() -> None:
    with pytest.raises(ValidationError):
        ring_rows(record("risk.rings.v1", b'{"ring_id": "not-hex", "size": 1}'), NOW)
    with pytest.raises(ValidationError):
        ring_rows(record("risk.rings.v1", b"\xff\xfe not utf-8"), NOW)


def test_an_event_row_stores_what_passed_the_contract_not_a_shadowed_duplicate_key() -> None:
    # JSON lets a key repeat and the decoder keeps the last value; the earlier one (a raw mobile number here)
    # was never checked and must not reach the events table through the payload.
    raw = (
        b'{"event_type":"login","event_id":"e_dup_1","customer_id":"13800138000","customer_id":"c_000777",'
        b'"ts":1767603600250,"device_id":"d_1","ip":"203.0.113.9","channel":"app_android","method":"sms",'
        b'"success":true}'
    )
    row = event_row(decode_behavior)(record("loan.behavior.v1", raw), NOW)
    assert row is not None
    stored = as_dict(EVENT_COLUMNS, row)
    assert stored["customer_id"] == "c_000777"
    assert "13800138000" not in str(stored["payload"])
    assert decode_behavior(str(stored["payload"]).encode()) == decode_behavior(raw)


def test_an_undecodable_event_gives_no_row() -> None:
    assert event_row(decode_behavior)(record("loan.behavior.v1", b'{"event_type":"login"'), NOW) is None
