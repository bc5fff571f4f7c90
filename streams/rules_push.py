"""Publish rule sets and allow-list entries to their compacted topics (``loanwatch rules`` / ``loanwatch allowlist``).

A rule set is validated before it is sent, and its ``version`` must be greater than the one on the topic: every
alert records the version that raised it, so two different rule sets under one version would make an alert
impossible to explain afterwards. ``force`` allows a rollback to an older version on purpose.

Sends wait for the broker's acknowledgement (``acks=all``, idempotent producer); a failed send raises, so the
command exits non-zero and the operator knows the change did not land.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from detectors.engine import EngineConfig
from schemas import serde
from schemas.allowlist import AllowListEntry, allowlist_key
from streams.config_feed import RULES_KEY, LiveConfig
from streams.settings import Settings

__all__ = ["PushError", "push_allowlist", "push_rules", "read_live_config", "remove_allowlist"]


class PushError(RuntimeError):
    """The change was refused or not acknowledged by Kafka; nothing was changed, or the message says what was."""


def read_live_config(settings: Settings, timeout: float = 30.0) -> LiveConfig:
    """The rule set and allow-list as the workers see them now: both topics read to their end."""
    live = LiveConfig(fallback=EngineConfig())
    topics = {settings.topics.rules: live.apply_rules, settings.topics.allowlist: live.apply_allowlist}
    consumer = Consumer(settings.reader_config("rules-cli"))
    try:
        metadata = consumer.list_topics(timeout=timeout)
        missing = [t for t in topics if t not in metadata.topics or metadata.topics[t].error is not None]
        if missing:
            raise PushError(f"topic {', '.join(missing)} does not exist; run `loanwatch init` first")
        parts = [TopicPartition(t, p, OFFSET_BEGINNING) for t in topics for p in metadata.topics[t].partitions]
        consumer.assign(parts)
        pending = {(tp.topic, tp.partition) for tp in parts}
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise PushError(f"could not read {', '.join(sorted({t for t, _ in pending}))} within {timeout:.0f} s")
            for message in consumer.consume(num_messages=500, timeout=0.5):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        pending.discard((str(message.topic()), int(message.partition() or 0)))
                    continue
                where = f"{message.topic()}[{message.partition()}]@{message.offset()}"
                topics[str(message.topic())](message.key(), message.value(), where)
    finally:
        consumer.close()
    return live


def _send(settings: Settings, topic: str, records: Iterable[tuple[bytes, bytes | None]], timeout: float) -> int:
    producer = Producer({**settings.confluent_config(), "acks": "all", "enable.idempotence": True})
    failures: list[str] = []

    def on_delivery(error: KafkaError | None, message: object) -> None:
        if error is not None:
            failures.append(str(error))

    count = 0
    for key, value in records:
        producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
        count += 1
    left = producer.flush(timeout)
    if left or failures:
        raise PushError(f"{topic}: {left} record(s) unacknowledged, {len(failures)} failed: {'; '.join(failures)}")
    return count


def push_rules(settings: Settings, config: EngineConfig, *, force: bool = False, timeout: float = 30.0) -> int:
    """Publish ``config`` as the rule set in force; returns the version it replaced (0: none on the topic)."""
    current = read_live_config(settings, timeout).rules
    before = current.version if current is not None else 0
    if current is not None and config.version <= before and not force:
        raise PushError(
            f"version {config.version} is not greater than version {before} in force; raise `version` "
            "(every alert records it), or pass --force to roll back on purpose"
        )
    _send(settings, settings.topics.rules, [(RULES_KEY, serde.dumps(config.model_dump(mode="json")))], timeout)
    return before


def push_allowlist(settings: Settings, entries: Iterable[AllowListEntry], timeout: float = 30.0) -> int:
    """Add or replace allow-list entries; returns how many were sent."""
    records = [(allowlist_key(e.kind, e.value).encode(), serde.dumps(e)) for e in entries]
    return _send(settings, settings.topics.allowlist, records, timeout)


def remove_allowlist(settings: Settings, keys: Iterable[tuple[str, str]], timeout: float = 30.0) -> int:
    """Remove allow-list entries by (kind, value) with tombstones; returns how many were sent."""
    records: list[tuple[bytes, bytes | None]] = [(allowlist_key(k, v).encode(), None) for k, v in keys]
    return _send(settings, settings.topics.allowlist, records, timeout)
