"""Turn a message that could not be processed into a DeadLetter that keeps its bytes, its origin and the reason."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Protocol

from schemas.common import MAX_TIME, MIN_TIME
from schemas.decode import classify_error
from schemas.outputs import DeadLetter, dead_letter_id_for

_MS = timedelta(milliseconds=1)


class MessageLike(Protocol):
    """The parts of a Kafka message a dead letter records (Faust's Message and our own tuples both fit)."""

    @property
    def topic(self) -> str: ...  # noqa: D102

    @property
    def partition(self) -> int: ...  # noqa: D102

    @property
    def offset(self) -> int: ...  # noqa: D102

    @property
    def key(self) -> bytes | None: ...  # noqa: D102

    @property
    def value(self) -> bytes | None: ...  # noqa: D102


def kafka_time(timestamp_s: float | None) -> datetime:
    """A Kafka record timestamp (seconds) as a UTC datetime; the clock stands in when a record has none.

    A producer sets its records' timestamps, and brokers accept any age by default: a timestamp outside the
    contracts' range (2000 to 2100) is pinned to the nearest end of it, so the dead letter can still be built
    and stays the same on a replay.
    """
    if timestamp_s is None or timestamp_s <= 0:
        return datetime.now(UTC)
    earliest, latest = MIN_TIME.timestamp(), (MAX_TIME - _MS).timestamp()
    return datetime.fromtimestamp(min(max(timestamp_s, earliest), latest), UTC)


def dead_letter_for(message: MessageLike, exc: Exception, received_at: datetime) -> DeadLetter:
    """Build the dead letter for ``message`` that failed with ``exc``.

    ``received_at`` should be the Kafka record's own timestamp: with the id (topic, partition, offset) it makes
    a replayed dead letter identical to the first, so it lands in the same ClickHouse partition and dedupes.
    """
    raw = message.value or b""
    kind, reason = classify_error(raw, exc)
    return DeadLetter(
        dead_letter_id=dead_letter_id_for(message.topic, message.partition, message.offset),
        source_topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key_b64=base64.b64encode(message.key).decode("ascii") if message.key is not None else None,
        payload_b64=base64.b64encode(raw).decode("ascii"),
        payload_size=len(raw),
        error_kind=kind,
        reason=reason,
        received_at=received_at,
    )
