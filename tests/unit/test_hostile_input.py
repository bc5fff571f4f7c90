"""A flood of hostile input against the decoders: every record refused with a reason, nothing else escapes.

The hostile records come from :mod:`streams.simulate.hostile` (valid simulated events broken on purpose) and
from hypothesis (arbitrary bytes, arbitrary JSON, valid events with one field replaced by arbitrary JSON).
"""

from __future__ import annotations

import base64
import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import serde, topics
from schemas.common import MAX_TIME, MIN_TIME
from schemas.decode import MAX_EVENT_BYTES, NoValue, classify_error, decode_behavior, decode_inquiry, decode_repayment
from schemas.outputs import MAX_REASON_CHARS, DeadLetter
from streams.dead_letters import dead_letter_for, kafka_time
from streams.simulate.hostile import (
    HOSTILE_KINDS,
    NEAR_RECORD_LIMIT_BYTES,
    NESTING_LEVELS,
    HostileKind,
    hostile_records,
    hostile_value,
)
from streams.simulate.traffic import SimConfig, Traffic

DECODERS: dict[str, Callable[[bytes | None], object]] = {
    topics.BEHAVIOR: decode_behavior,
    topics.REPAYMENT: decode_repayment,
    topics.INQUIRY: decode_inquiry,
}
# What the README promises for each way of being bad (a kind may be caught by more than one check).
EXPECTED_ERROR_KINDS: dict[HostileKind, set[str]] = {
    "truncated": {"not_json"},
    "wrong_type": {"validation", "unknown_event_type"},  # event_type itself may get the wrong type
    "huge_over_limit": {"too_large"},
    "huge_near_record_limit": {"too_large"},
    "deep_nesting": {"not_json"},
    "unknown_event_type": {"unknown_event_type"},
    "invalid_utf8": {"invalid_utf8"},
    "nul_byte": {"not_json", "validation"},  # raw: not JSON; escaped: not an identifier
    "raw_phone_in_id": {"validation"},
    "raw_id_card_in_id": {"validation"},
    "duplicate_key": {"validation", "unknown_event_type"},
    "nan_infinity": {"not_json", "validation"},  # lower-case nan is not JSON at all
    "number_out_of_range": {"validation"},
    "ts_out_of_range": {"validation"},
    "not_an_object": {"validation"},
    "framing": {"not_json"},
    "empty": {"not_json"},
    "tombstone": {"not_json"},
}
SETTINGS = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@cache
def templates() -> tuple[tuple[str, bytes], ...]:
    """Valid simulated events of every input topic, the raw material of the hostile records."""
    traffic = Traffic(SimConfig(customers=300, start=datetime(2026, 1, 5, tzinfo=UTC), hours=6.0, seed=11))
    records = [(r.topic, r.value) for r in traffic.records()]
    assert {topic for topic, _ in records} == set(DECODERS)
    return tuple(records)


@dataclass(frozen=True)
class Refusal:
    kind: str
    reason: str


def refusal(topic: str, raw: bytes | None) -> Refusal:
    """The decoder's refusal of ``raw``; fails the test if it is accepted or anything but a ValueError escapes."""
    try:
        DECODERS[topic](raw)
    except ValueError as exc:  # ValidationError, EventTooLarge and NoValue are all ValueErrors
        kind, reason = classify_error(raw if raw is not None else b"", exc)
        return Refusal(kind, reason)
    pytest.fail(f"accepted a hostile record on {topic}: {raw!r:.300}")


def assert_well_formed(refused: Refusal) -> None:
    assert refused.kind != "processing", refused.reason
    assert refused.reason.startswith(f"{refused.kind}: ") and len(refused.reason) > len(refused.kind) + 2
    assert len(refused.reason) <= MAX_REASON_CHARS


@SETTINGS
@given(kind=st.sampled_from(HOSTILE_KINDS), seed=st.integers(0, 2**32), index=st.integers(0, 10**6))
def test_every_generated_hostile_record_is_refused_with_its_kind_of_reason(
    kind: HostileKind, seed: int, index: int
) -> None:
    topic, raw = templates()[index % len(templates())]
    value = hostile_value(kind, serde.loads(raw), random.Random(seed))
    refused = refusal(topic, value)
    assert_well_formed(refused)
    assert refused.kind in EXPECTED_ERROR_KINDS[kind], refused.reason


def test_a_flood_covers_every_kind_topic_and_partition_and_each_record_is_refused() -> None:
    flood = list(hostile_records(templates(), 3_000, partitions=4, rng=random.Random(5)))
    per_kind = Counter(r.kind for r in flood)
    assert set(per_kind) == set(HOSTILE_KINDS) and max(per_kind.values()) - min(per_kind.values()) <= 1
    assert {(r.topic, r.partition) for r in flood} == {(t, p) for t in DECODERS for p in range(4)}
    bad_keys = [r.key for r in flood if r.key is not None and not _is_utf8(r.key)]
    assert len(bad_keys) > 100 and any(r.key is None for r in flood)
    assert sum(r.timestamp_ms is not None for r in flood) > 50
    for record in flood:
        assert_well_formed(refusal(record.topic, record.value))


def test_the_flood_is_the_same_for_the_same_seed_and_different_for_another() -> None:
    def flood(seed: int) -> list[object]:
        return list(hostile_records(templates(), 200, partitions=3, rng=random.Random(seed)))

    assert flood(1) == flood(1)
    assert flood(1) != flood(2)


def test_sizes_and_depths_are_what_the_flood_promises() -> None:
    rng = random.Random(3)
    event = serde.loads(templates()[0][1])
    near = hostile_value("huge_near_record_limit", event, rng)
    assert near is not None and len(near) == NEAR_RECORD_LIMIT_BYTES and json.loads(near) == event
    over = hostile_value("huge_over_limit", event, rng)
    assert over is not None and MAX_EVENT_BYTES < len(over) < MAX_EVENT_BYTES + 4096 + 1024
    deep = hostile_value("deep_nesting", event, random.Random(0))
    assert deep is not None and deep.count(b"[") + deep.count(b"{") >= NESTING_LEVELS
    with pytest.raises(RecursionError):  # the standard parser gives up; the decoder must refuse it calmly
        json.loads(deep)


@pytest.mark.parametrize("cut", ["key", "string_value", "after_colon", "after_comma", "number", "last_byte"])
def test_truncation_reaches_every_position_class(cut: str) -> None:
    # Each class must show up among truncated values: the last byte before the cut tells which class it is.
    ends: Counter[str] = Counter()
    for seed in range(400):
        topic, raw = templates()[seed % len(templates())]
        value = hostile_value("truncated", serde.loads(raw), random.Random(seed))
        assert value is not None and raw.startswith(value) and len(value) < len(raw)
        ends[_position_class(raw, len(value))] += 1
    assert ends[cut] > 0, ends


def _position_class(raw: bytes, cut: int) -> str:
    text = raw.decode()
    if cut == len(raw) - 1:
        return "last_byte"
    before = text[cut - 1]
    if before == ":":
        return "after_colon"
    if before == ",":
        return "after_comma"
    if before.isdigit() and text[cut].isdigit():
        return "number"
    quotes = text[:cut].count('"')
    if quotes % 2 == 1:
        opening = text.rfind('"', 0, cut)
        return "key" if text[opening - 1] in "{," else "string_value"
    return "other"


def test_a_tombstone_is_refused_as_having_no_value() -> None:
    for decode in DECODERS.values():
        with pytest.raises(NoValue):
            decode(None)
    kind, reason = classify_error(b"", NoValue())
    assert (kind, reason) == ("not_json", "not_json: the message has no value (a tombstone)")


def test_an_unknown_event_type_is_repeated_only_in_part() -> None:
    event = {**serde.loads(templates()[0][1]), "event_type": "x" * 50_000}
    refused = refusal(templates()[0][0], serde.dumps(event))
    assert refused.kind == "unknown_event_type"
    assert refused.reason.count("x") < 100 and "is not one of" in refused.reason


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@SETTINGS
@given(raw=st.binary(max_size=2048), topic=st.sampled_from(sorted(DECODERS)))
def test_arbitrary_bytes_never_raise_anything_but_the_decoders_error(raw: bytes, topic: str) -> None:
    assert_well_formed(refusal(topic, raw))


@SETTINGS
@given(value=json_values, topic=st.sampled_from(sorted(DECODERS)))
def test_arbitrary_json_is_refused_with_a_reason(value: Any, topic: str) -> None:
    assert_well_formed(refusal(topic, json.dumps(value).encode()))


@SETTINGS
@given(index=st.integers(0, 10**6), field=st.text(max_size=3), value=json_values, replace=st.booleans())
def test_a_valid_event_with_one_field_replaced_is_decoded_or_refused_never_crashes(
    index: int, field: str, value: Any, replace: bool
) -> None:
    topic, raw = templates()[index % len(templates())]
    event = serde.loads(raw)
    name = sorted(event)[index % len(event)] if replace else field
    changed = json.dumps({**event, name: value}).encode()
    try:
        DECODERS[topic](changed)
    except ValueError as exc:
        kind, reason = classify_error(changed, exc)
        assert_well_formed(Refusal(kind, reason))


@dataclass(frozen=True)
class FakeMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@pytest.mark.parametrize("timestamp_s", [0.001, 946_684_799.999, 4_102_444_800.0, 1e12, 1e15])
def test_a_dead_letter_is_built_even_when_the_kafka_timestamp_is_outside_the_contracts_range(
    timestamp_s: float,
) -> None:
    # Producers choose their records' timestamps and the broker keeps any age: this once crashed the agent.
    message = FakeMessage(topics.BEHAVIOR, 2, 41, b"\xff\xfe", None)
    letter = dead_letter_for(message, NoValue(), kafka_time(timestamp_s))
    assert MIN_TIME <= letter.received_at < MAX_TIME
    assert letter.received_at == dead_letter_for(message, NoValue(), kafka_time(timestamp_s)).received_at
    assert letter.received_at in (MIN_TIME, datetime(2099, 12, 31, 23, 59, 59, 999000, tzinfo=UTC))
    assert base64.b64decode(letter.key_b64 or "") == b"\xff\xfe" and letter.payload_size == 0
    assert DeadLetter.model_validate_json(serde.dumps(letter)) == letter


def test_a_kafka_timestamp_inside_the_range_is_kept() -> None:
    assert kafka_time(1_767_603_600.25) == datetime(2026, 1, 5, 9, 0, 0, 250000, tzinfo=UTC)


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
