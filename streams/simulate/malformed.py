"""Hostile messages for the behaviour topic: what buggy or malicious producers really send.

Each kind breaks exactly one thing in an otherwise valid loan application (built through the real model), so a
dead-letter test can tell which check caught it. The decoders in :mod:`schemas.decode` must refuse every one.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any, Final, Literal, get_args

from schemas import serde
from schemas.behavior import LoanApplication
from schemas.common import from_ms
from streams.simulate.model import SimRecord
from streams.simulate.population import hex_id

__all__ = ["MALFORMED_KINDS", "MalformedKind", "inject_malformed", "malformed_value"]

MalformedKind = Literal[
    "truncated_json",
    "invalid_utf8",
    "wrong_type",
    "unknown_event_type",
    "missing_field",
    "naive_timestamp",
    "raw_phone_customer_id",
    "json_list",
    "empty",
    "huge",
]
MALFORMED_KINDS: Final[tuple[MalformedKind, ...]] = get_args(MalformedKind)

# Over MAX_EVENT_BYTES (64 KiB) in schemas.decode: such payloads must be refused before parsing.
_HUGE_BYTES: Final = 70 * 1024


def _template(rng: random.Random, event_id: str, customer_id: str, ts_ms: int) -> dict[str, Any]:
    event = LoanApplication(
        event_id=event_id,
        customer_id=customer_id,
        ts=from_ms(ts_ms),
        device_id=hex_id(rng, "d"),
        ip=f"100.{rng.randint(64, 127)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
        channel="app_android",
        product="cash_loan",
        application_id=hex_id(rng, "a"),
        amount=float(rng.randrange(1_000, 20_001, 500)),
        term_months=12,
    )
    return event.model_dump(mode="json")


def malformed_value(
    kind: MalformedKind, rng: random.Random, event_id: str, customer_id: str, ts_ms: int
) -> bytes:
    """Return the bytes of one malformed behaviour message of ``kind``."""
    event = _template(rng, event_id, customer_id, ts_ms)
    valid = serde.dumps(event)
    if kind == "truncated_json":
        return valid[: rng.randint(1, len(valid) - 2)]  # any proper prefix of an object is invalid JSON
    if kind == "invalid_utf8":
        return valid.replace(b'"application_id":"', b'"application_id":"\xff\xfe\xc3(', 1)
    if kind == "wrong_type":
        event["amount"] = "abc"
    elif kind == "unknown_event_type":
        event["event_type"] = rng.choice(("teleport", "loan_apply", "LOGIN"))
    elif kind == "missing_field":
        del event[rng.choice(("customer_id", "ts", "event_id", "device_id", "ip"))]
    elif kind == "naive_timestamp":
        event["ts"] = str(event["ts"]).removesuffix("Z")
    elif kind == "raw_phone_customer_id":
        event["customer_id"] = f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
    elif kind == "json_list":
        return serde.dumps([event])
    elif kind == "empty":
        return b""
    elif kind == "huge":
        event["debug_trace"] = "x" * _HUGE_BYTES
    return serde.dumps(event)


def inject_malformed(
    records: Iterator[SimRecord], share: float, rng: random.Random, topic: str, seed: int
) -> Iterator[SimRecord]:
    """Pass ``records`` through, adding after each one a malformed message with probability ``share``.

    The malformed message carries the same key and event time as the record before it (a broken build of that
    customer's app), so the merged stream stays in event-time order and the expected count is ``share`` times
    the number of valid records.
    """
    n = 0
    for record in records:
        yield record
        if share > 0 and rng.random() < share:
            n += 1
            kind = rng.choice(MALFORMED_KINDS)
            value = malformed_value(kind, rng, f"m{seed}-{n}", record.customer_id or "c_000000", record.ts_ms)
            yield SimRecord(topic, record.key, value, record.ts_ms, "malformed", None, record.customer_id)
