"""A flood of hostile input: valid simulated events broken in every way a buggy or malicious producer can.

Each :data:`HostileKind` takes a valid event (as its JSON object) and breaks it so that the decoders in
:mod:`schemas.decode` must refuse it: truncated JSON at every kind of position, wrong JSON types, payloads over
the decoder's limit (up to 900 KiB, under Kafka's default 1 MiB record limit), 10,000 levels of nesting, unknown
event types, invalid UTF-8, NUL bytes, raw phone / ID-card numbers in pseudonymous fields, duplicate keys whose
last value is bad, NaN / Infinity, numbers out of range, timestamps far in the past or future, empty values and
tombstones (no value at all). :func:`hostile_records` spreads them over topics and partitions, some with keys
that are not UTF-8 and some with Kafka timestamps outside the contracts' time range.

Pure and seeded: the same ``random.Random`` state gives the same bytes. Nothing here checks its output
against the decoders: the tests do that.

Example:
    >>> import random
    >>> event = {"event_type": "login", "event_id": "e1", "customer_id": "c_1", "ts": "2026-01-05T00:00:00.000Z"}
    >>> hostile_value("tombstone", event, random.Random(1)) is None
    True
    >>> hostile_value("empty", event, random.Random(1))
    b''
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

from schemas import serde
from schemas.decode import MAX_EVENT_BYTES

__all__ = ["HOSTILE_KINDS", "HostileKind", "HostileRecord", "hostile_records", "hostile_value"]

HostileKind = Literal[
    "truncated",
    "wrong_type",
    "huge_over_limit",
    "huge_near_record_limit",
    "deep_nesting",
    "unknown_event_type",
    "invalid_utf8",
    "nul_byte",
    "raw_phone_in_id",
    "raw_id_card_in_id",
    "duplicate_key",
    "nan_infinity",
    "number_out_of_range",
    "ts_out_of_range",
    "not_an_object",
    "framing",
    "empty",
    "tombstone",
]
HOSTILE_KINDS: Final[tuple[HostileKind, ...]] = get_args(HostileKind)

#: The largest hostile payload: close to Kafka's default record limit (1 MiB), which the input topics keep.
NEAR_RECORD_LIMIT_BYTES: Final = 900 * 1024
#: Levels of nesting in ``deep_nesting``: far past any JSON parser's recursion limit.
NESTING_LEVELS: Final = 10_000
#: Kafka timestamps (ms) of records outside the contracts' time range (2000-2100): 1970 and just before 2000.
OUT_OF_RANGE_KAFKA_TIMESTAMPS_MS: Final = (1, 946_684_799_999)

# Fields holding people's and devices' pseudonymous identifiers (schemas.ids.PseudoId).
_PSEUDO_ID_FIELDS: Final = ("customer_id", "device_id", "new_value_hash", "contacts_hash", "institution_id")
_UNKNOWN_TYPES: Final = ("teleport", "LOGIN", " login", "login\u200b", "loan_application_v2", "", "贷款申请", "null")
# A stray byte, a BOM-like pair, a lone continuation, an overlong '/', a surrogate, a cut CJK char, 5 bytes.
_INVALID_UTF8: Final = (
    b"\xff", b"\xfe\xff", b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe4\xb8", b"\xf8\x88\x80\x80\x80",
)
_BAD_NUMBERS: Final = (b"NaN", b"Infinity", b"-Infinity", b"+Infinity", b"nan")
_TS_OUT_OF_RANGE: Final = (  # raw JSON: some of these integers are too big for a serialiser
    b'"9999-12-31T23:59:59.999Z"', b'"1900-01-01T00:00:00Z"', b'"1999-12-31T23:59:59.999Z"',
    b'"2100-01-01T00:00:00Z"', b'"+275760-09-13T00:00:00Z"', str(10**16).encode(), b"-1", b"0",
    b"946684799999", str(2**63).encode(), str(-(2**63) - 1).encode(), str(10**40).encode(),
)
_NOT_OBJECTS: Final = (b"[]", b"null", b"true", b"0", b'"login"', b"-1e999", b"[{}]", b"{}")
_TRUNCATION_CLASSES: Final = ("key", "string_value", "after_colon", "after_comma", "number", "last_byte", "first_byte")

# Wrong JSON types: for a string field anything but a string; for a number anything a number cannot come from.
_NOT_STRINGS: Final[tuple[object, ...]] = (123, 1.5, True, False, [], ["c_1"], {}, {"id": "c_1"})
_NOT_NUMBERS: Final[tuple[object, ...]] = ("abc", "", "12abc", [], [1], {}, {"value": 1})


@dataclass(frozen=True, slots=True)
class HostileRecord:
    """One hostile Kafka record: where it goes, its key and value (None: a tombstone) and Kafka timestamp.

    ``timestamp_ms`` None lets the producer stamp the record; otherwise it is the record's CreateTime.
    """

    topic: str
    partition: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None
    kind: HostileKind


def hostile_value(kind: HostileKind, event: dict[str, Any], rng: random.Random) -> bytes | None:
    """Return ``event`` (a valid event's JSON object, left unchanged) broken as ``kind`` says; None for a tombstone."""
    event = dict(event)
    valid = serde.dumps(event)
    if kind == "tombstone":
        return None
    if kind == "empty":
        return rng.choice((b"", b" ", b"\n\t "))
    if kind == "truncated":
        return _truncate(valid, rng)
    if kind == "framing":
        return rng.choice((b"\xef\xbb\xbf" + valid, valid + b"x", valid + valid, b"//\n" + valid, valid[:-1] + b",}"))
    if kind == "not_an_object":
        return rng.choice(_NOT_OBJECTS) if rng.random() < 0.5 else serde.dumps([event])
    if kind == "wrong_type":
        # Only fields whose type the value shows: a null or a list may stand for several types.
        name = rng.choice(sorted(k for k, v in event.items() if isinstance(v, str | int | float)))
        event[name] = rng.choice(_NOT_STRINGS if isinstance(event[name], str) else _NOT_NUMBERS)
        return serde.dumps(event)
    if kind == "huge_over_limit":
        event["padding"] = "x" * (MAX_EVENT_BYTES + rng.randrange(1, 4096))
        return serde.dumps(event)
    if kind == "huge_near_record_limit":
        # Whitespace is valid JSON: only the size is wrong, so the size check is what must catch it.
        return valid[:-1] + b" " * (NEAR_RECORD_LIMIT_BYTES - len(valid)) + b"}"
    if kind == "deep_nesting":
        open_, close = rng.choice(((b"[", b"]"), (b'{"a":', b"}")))
        nested = open_ * NESTING_LEVELS + b"1" + close * NESTING_LEVELS
        if rng.random() < 0.5:
            return nested
        return valid[:-1] + b',"nested":' + nested + b"}"
    if kind == "unknown_event_type":
        event["event_type"] = rng.choice((*_UNKNOWN_TYPES, "x" * rng.randrange(100, 5000)))
        return serde.dumps(event)
    if kind == "invalid_utf8":
        return _inside_a_string(valid, rng.choice(_INVALID_UTF8), rng)
    if kind == "nul_byte":
        if rng.random() < 0.5:
            return _inside_a_string(valid, b"\x00", rng)  # a raw control character: not JSON
        event["customer_id"] = f"{event['customer_id']}\u0000"  # escaped: JSON, but no identifier
        return serde.dumps(event)
    if kind in ("raw_phone_in_id", "raw_id_card_in_id"):
        name = rng.choice([f for f in _PSEUDO_ID_FIELDS if f in event])
        event[name] = _raw_phone(rng) if kind == "raw_phone_in_id" else _raw_id_card(rng)
        return serde.dumps(event)
    if kind == "duplicate_key":
        # The last value wins in JSON parsers that accept duplicates, so the bad one comes last.
        bad = rng.choice((b'"customer_id":"' + _raw_phone(rng).encode() + b'"', b'"event_type":"teleport"'))
        return valid[:-1] + b"," + bad + b"}"
    if kind == "nan_infinity":
        return _replace_number(event, rng.choice(_BAD_NUMBERS), rng)
    if kind == "number_out_of_range":
        return _replace_number(event, rng.choice((b"1e400", b"-1e400", b"1" + b"0" * 400, b"-" + b"9" * 40)), rng)
    if kind == "ts_out_of_range":
        return _with_literal(event, "ts", rng.choice(_TS_OUT_OF_RANGE))
    raise ValueError(f"unknown hostile kind {kind!r}")


def hostile_records(
    templates: Sequence[tuple[str, bytes]],
    count: int,
    partitions: int,
    rng: random.Random,
    kinds: Sequence[HostileKind] = HOSTILE_KINDS,
) -> Iterator[HostileRecord]:
    """``count`` hostile records, ``kinds`` in turn, built from randomly chosen ``(topic, valid value)`` templates.

    Records go to every partition in turn; about one in eight has a key that is not UTF-8 and one in twenty a
    Kafka timestamp outside the contracts' time range. A template's topic is kept, so every input topic gets
    the hostile versions of its own events. Repeat a kind in ``kinds`` to weigh it (900 KiB records are costly).
    """
    if not templates or not kinds:
        raise ValueError("need at least one valid event to break and one kind of breaking it")
    for n in range(count):
        topic, raw = rng.choice(templates)
        kind = kinds[n % len(kinds)]
        event = serde.loads(raw)
        key: bytes | None = str(event.get("customer_id", "")).encode()
        roll = rng.random()
        if roll < 0.125:
            key = rng.choice(_INVALID_UTF8) + str(event.get("customer_id", "")).encode()
        elif roll < 0.15:
            key = None
        timestamp = rng.choice(OUT_OF_RANGE_KAFKA_TIMESTAMPS_MS) if rng.random() < 0.05 else None
        yield HostileRecord(topic, n % partitions, key, hostile_value(kind, event, rng), timestamp, kind)


def _truncate(valid: bytes, rng: random.Random) -> bytes:
    """A proper prefix of ``valid`` ending in a position of a randomly chosen class (any prefix is invalid)."""
    positions = _positions(valid)
    wanted = rng.choice(_TRUNCATION_CLASSES)
    cut = rng.choice(positions.get(wanted) or positions["last_byte"])
    return valid[:cut]


def _positions(valid: bytes) -> dict[str, list[int]]:
    """Cut positions by class in compact JSON of one flat-ish object (strings without escapes assumed)."""
    out: dict[str, list[int]] = {c: [] for c in _TRUNCATION_CLASSES}
    out["last_byte"].append(len(valid) - 1)
    out["first_byte"].append(1)
    in_string = False
    is_key = False
    previous = 0
    for i, byte in enumerate(valid):
        char = chr(byte)
        if in_string:
            if char == '"':
                in_string = False
            else:
                out["key" if is_key else "string_value"].append(i)
        elif char == '"':
            in_string = True
            is_key = chr(previous) in "{,"
        elif char == ":":
            out["after_colon"].append(i + 1)
        elif char == ",":
            out["after_comma"].append(i + 1)
        elif char in "0123456789" and chr(previous) in "0123456789.-e":
            out["number"].append(i)
        previous = byte
    return out


def _inside_a_string(valid: bytes, insert: bytes, rng: random.Random) -> bytes:
    """``insert`` put inside one of the string values of ``valid``."""
    cut = rng.choice(_positions(valid)["string_value"] or [len(valid) - 1])
    return valid[:cut] + insert + valid[cut:]


def _replace_number(event: dict[str, Any], literal: bytes, rng: random.Random) -> bytes:
    """``event`` with one number field (``schema_version`` at least) replaced by a raw JSON ``literal``."""
    numbers = [k for k, v in event.items() if isinstance(v, int | float) and not isinstance(v, bool)]
    return _with_literal(event, rng.choice(numbers or ["schema_version"]), literal)


def _with_literal(event: dict[str, Any], name: str, literal: bytes) -> bytes:
    """``event`` serialised with field ``name`` set to raw JSON text (which a serialiser may not write)."""
    event[name] = "\x00marker\x00"
    return serde.dumps(event).replace(b'"\\u0000marker\\u0000"', literal, 1)


def _raw_phone(rng: random.Random) -> str:
    number = f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
    return rng.choice((number, f"+86{number}", f"0086{number}", f"{number[:3]}-{number[3:7]}-{number[7:]}"))


def _raw_id_card(rng: random.Random) -> str:
    """A resident ID number with a valid check character (18 digits) or the old 15-digit form."""
    region = f"{rng.randrange(110000, 660000)}"
    birth = f"{rng.randrange(1940, 2006)}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}"
    body = f"{region}{birth}{rng.randrange(1000):03d}"
    if rng.random() < 0.2:
        return body[:6] + body[8:]  # 15-digit form: two-digit year, no check character
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]
