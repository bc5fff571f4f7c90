"""Read a range of one partition's records directly, outside Faust and any consumer group.

The profile agent uses it to fill a gap Faust left in an input partition (see ``streams.input_progress``): the
missing records are read here and applied in order before the record that revealed the gap. Faust's own
consumer cannot be trusted with it: moved back with a seek, it dropped the re-read records again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, TopicPartition
from faust.types import Message

from streams.settings import Settings

#: How long a fetch may take before it gives up (the worker then ends and is restarted: nothing is skipped).
FETCH_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class FetchedEvent:
    """What the agent reads of a Faust event: the message and its value."""

    message: Message

    @property
    def value(self) -> bytes | None:
        """The record's value."""
        return self.message.value


class FetchError(RuntimeError):
    """The range could not be read in time."""


def fetch_range(
    settings: Settings, topic: str, partition: int, start: int, end: int, timeout: float = FETCH_TIMEOUT_SECONDS
) -> list[FetchedEvent]:
    """Records ``start`` to ``end - 1`` of ``topic``/``partition``, in order.

    Records gone (deleted by retention) are simply absent: the first one returned then lies beyond ``start``.
    Raises :class:`FetchError` when the range cannot be read within ``timeout`` seconds.
    """
    consumer = Consumer(settings.reader_config("gap-fetch"))
    try:
        consumer.assign([TopicPartition(topic, partition, start)])
        fetched: list[FetchedEvent] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = consumer.poll(0.5)
            if record is None:
                continue
            error = record.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    return fetched
                continue  # transient: librdkafka retries by itself
            offset = record.offset() or 0
            if offset >= end:
                return fetched
            _, ms = record.timestamp()
            fetched.append(FetchedEvent(Message(
                topic, partition, offset, ms / 1000, 0, None, record.key(), record.value(),
                None,
            )))
            if offset == end - 1:
                return fetched
        raise FetchError(f"{topic}[{partition}]: records {start} to {end - 1} not read within {timeout:.0f} s")
    finally:
        consumer.close()
