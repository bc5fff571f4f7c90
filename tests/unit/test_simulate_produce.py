"""produce(): every record accounted for, labels written as ground truth, pacing and stopping (fake producer).

One test builds the real confluent_kafka.Producer to prove librdkafka accepts the settings (no broker needed).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest

from streams.simulate.produce import (
    ProduceError,
    ProduceStats,
    _confluent_producer,
    bursts_path_for,
    episodes_path_for,
    produce,
)
from streams.simulate.traffic import SimConfig, SimRecord, Traffic

START = datetime(2026, 1, 5, tzinfo=UTC)


class FakeMessage:
    def __init__(self, topic: str) -> None:
        self._topic = topic

    def topic(self) -> str:
        return self._topic


class FakeProducer:
    """Queues messages and delivers them on poll/flush; can refuse (BufferError) or fail deliveries."""

    def __init__(
        self,
        settings: dict[str, Any],
        buffer_full_every: int = 0,
        fail_every: int = 0,
        stuck: int = 0,
    ) -> None:
        self.settings = settings
        self.buffer_full_every = buffer_full_every
        self.fail_every = fail_every
        self.stuck = stuck
        self.queue: list[tuple[str, bytes | None, bytes, Callable[[Any, Any], None]]] = []
        self.delivered: list[tuple[str, bytes | None, bytes]] = []
        self.attempts = 0
        self.refusals = 0
        self.served = 0

    def produce(
        self, topic: str, value: bytes, key: bytes | None, on_delivery: Callable[[Any, Any], None]
    ) -> None:
        self.attempts += 1
        if self.buffer_full_every and self.attempts % self.buffer_full_every == 0:
            self.refusals += 1
            raise BufferError("Local: Queue full")
        self.queue.append((topic, key, value, on_delivery))

    def poll(self, timeout: float) -> int:
        served = 0
        while self.queue:
            topic, key, value, callback = self.queue.pop(0)
            served += 1
            self.served += 1
            if self.fail_every and self.served % self.fail_every == 0:
                callback("KafkaError{code=MSG_TIMED_OUT}", FakeMessage(topic))
            else:
                self.delivered.append((topic, key, value))
                callback(None, FakeMessage(topic))
        return served

    def flush(self, timeout: float) -> int:
        self.poll(0)
        return self.stuck


def _traffic() -> Traffic:
    return Traffic(SimConfig(customers=150, start=START, hours=3, burst_share=0.04, malformed_share=0.05))


def test_every_record_is_sent_counted_and_labelled(tmp_path: Path) -> None:
    traffic = _traffic()
    records = list(traffic.records())
    fakes: list[FakeProducer] = []

    def factory(settings: dict[str, Any]) -> FakeProducer:
        fakes.append(FakeProducer(settings))
        return fakes[0]

    labels = tmp_path / "labels.jsonl"
    seen: list[ProduceStats] = []
    stats = produce(
        {"bootstrap.servers": "broker:9092"},
        iter(records),
        labels_path=labels,
        progress=seen.append,
        producer_factory=factory,
    )
    assert stats.sent == stats.delivered == len(records) and stats.failed == 0
    assert fakes[0].delivered == [(r.topic, r.key, r.value) for r in records]
    assert sum(stats.by_label.values()) == sum(stats.by_topic.values()) == len(records)
    assert stats.by_label["malformed"] > 0 and stats.by_label["multi_application_burst"] > 0
    assert seen and seen[-1].delivered == len(records)

    lines = labels.read_bytes().splitlines()
    assert len(lines) == len(records)
    for line, record in zip(lines, records, strict=True):
        row = json.loads(line)
        assert (row["topic"], row["ts_ms"], row["label"], row["episode_id"], row["customer_id"]) == (
            record.topic,
            record.ts_ms,
            record.label,
            record.episode_id,
            record.customer_id,
        )
        assert row["scenario"] == (None if record.label in ("normal", "malformed") else record.label)
        assert row["key"] == (record.key.decode() if record.key is not None else None)
        if record.label == "malformed":
            assert base64.b64decode(row["raw_b64"]) == record.value and "event" not in row
        else:
            assert row["event"] == json.loads(record.value)
    bursts = json.loads(bursts_path_for(labels).read_bytes())
    assert bursts == [b.to_json() for b in traffic.bursts] and len(bursts) == 6
    # Without the plan, every episode is described from its sent records.
    episodes = json.loads(episodes_path_for(labels).read_bytes())
    sent = Counter(r.episode_id for r in records if r.episode_id is not None)
    assert {e["episode_id"]: e["records_sent"] for e in episodes} == sent
    planned = {e.episode_id: e for e in traffic.episodes}
    assert len({e["scenario"] for e in episodes}) >= 5
    for entry in episodes:
        episode = planned[entry["episode_id"]]
        assert (entry["scenario"], entry["customer_id"]) == (episode.scenario, episode.customer_id)
        if episode.customer_id is not None:
            assert (entry["start_ms"], entry["end_ms"]) == (episode.start_ms, episode.end_ms)


def test_planned_episodes_are_written_with_their_details(tmp_path: Path) -> None:
    traffic = _traffic()
    records = list(traffic.records())
    labels = tmp_path / "labels.jsonl"
    produce({}, iter(records), labels_path=labels, producer_factory=FakeProducer, episodes=traffic.episodes)
    episodes = json.loads(episodes_path_for(labels).read_bytes())
    sent = {r.episode_id for r in records if r.episode_id is not None}
    expected = [{**e.to_json(), "records_sent": ANY} for e in traffic.episodes if e.episode_id in sent]
    assert episodes == expected and len(expected) == len(sent)


def test_settings_keep_connection_options_and_force_the_partitioner() -> None:
    fakes: list[FakeProducer] = []

    def factory(settings: dict[str, Any]) -> FakeProducer:
        fakes.append(FakeProducer(settings))
        return fakes[0]

    user = {
        "bootstrap.servers": "b:9093",
        "security.protocol": "SASL_SSL",
        "partitioner": "consistent_random",
        "linger.ms": "50",
    }
    produce(user, iter(()), producer_factory=factory)
    settings = fakes[0].settings
    assert settings["partitioner"] == "murmur2_random"
    assert settings["enable.idempotence"] is True
    assert settings["compression.type"] == "lz4"
    assert settings["bootstrap.servers"] == "b:9093" and settings["security.protocol"] == "SASL_SSL"
    assert settings["linger.ms"] == "50"  # tuning is the caller's to change


def test_buffer_full_is_retried_not_dropped() -> None:
    records = list(_traffic().records())
    fake = FakeProducer({}, buffer_full_every=7)
    stats = produce({}, iter(records), producer_factory=lambda s: fake)
    assert fake.refusals > 0
    assert stats.sent == stats.delivered == len(records)
    assert [v for _, _, v in fake.delivered] == [r.value for r in records]


def test_failed_deliveries_raise_with_the_counts() -> None:
    records = list(_traffic().records())[:100]
    with pytest.raises(ProduceError) as caught:
        produce({}, iter(records), producer_factory=lambda s: FakeProducer(s, fail_every=10))
    stats = caught.value.stats
    assert stats.failed == 10 and stats.delivered == 90 and stats.sent == 100
    assert stats.errors and "MSG_TIMED_OUT" in stats.errors[0]


def test_messages_still_queued_after_flush_raise() -> None:
    records = list(_traffic().records())[:10]
    with pytest.raises(ProduceError, match="3 still undelivered"):
        produce({}, iter(records), producer_factory=lambda s: FakeProducer(s, stuck=3), flush_timeout_s=0.05)


def test_stop_ends_the_run_and_what_was_sent_is_flushed() -> None:
    stop = threading.Event()
    records = list(_traffic().records())

    def stream() -> Iterator[SimRecord]:
        for n, record in enumerate(records):
            if n == 25:
                stop.set()
            yield record

    fake = FakeProducer({})
    stats = produce({}, stream(), stop=stop, producer_factory=lambda s: fake)
    assert stats.sent == stats.delivered == len(fake.delivered) == 25


def test_rate_paces_sending() -> None:
    records = list(_traffic().records())[:80]
    began = time.monotonic()
    stats = produce({}, iter(records), rate=400.0, producer_factory=lambda s: FakeProducer(s))
    # 80 records at 400/s with a 40-record bucket: at least ~0.1 s (loose bound: no timing precision claimed).
    assert time.monotonic() - began >= 0.08
    assert stats.delivered == 80
    with pytest.raises(ValueError):
        produce({}, iter(records), rate=0.0, producer_factory=lambda s: FakeProducer(s))


def test_librdkafka_accepts_the_settings() -> None:
    producer = _confluent_producer(
        {
            "bootstrap.servers": "127.0.0.1:9",
            "partitioner": "murmur2_random",
            "enable.idempotence": True,
            "linger.ms": 20,
            "compression.type": "lz4",
        }
    )
    assert producer.flush(0) == 0
