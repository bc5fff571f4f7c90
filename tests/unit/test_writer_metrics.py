"""The writer's metrics follow what it does: records in, rows out, failed inserts, pause, commits and lag.

Same fakes as the routing tests: a queued consumer and a backend that can refuse inserts; the real writer loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import TopicPartition
from prometheus_client import CollectorRegistry

import streams.clickhouse.writer as writer_module
from schemas import serde
from schemas.behavior import PageView
from streams.clickhouse.writer import ClickHouseWriter
from streams.metrics import WriterMetrics
from tests.unit.test_clickhouse_writer_routes import SETTINGS, FakeBackend, FakeConsumer, FakeMessage, Log

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TOPIC = SETTINGS.topics.behavior


def page_view(n: int) -> bytes:
    return serde.dumps(
        PageView(
            event_id=f"e{n}", customer_id="c_000001", ts=T0 + timedelta(seconds=n), device_id="d_1",
            ip="10.0.0.1", channel="h5", page="home",
        )
    )


def wait(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def test_counts_match_what_went_through_an_outage(monkeypatch: pytest.MonkeyPatch) -> None:
    log = Log()
    consumer = FakeConsumer(log)
    monkeypatch.setattr(writer_module, "Consumer", lambda config: consumer)
    refusals = 3
    refused: list[str] = []

    def fail(table: str) -> bool:
        if len(refused) < refusals:
            refused.append(table)
            return True
        return False

    valid, invalid = 7, 2
    for n in range(valid):
        consumer.put(FakeMessage(TOPIC, n, page_view(n)))
    for n in range(valid, valid + invalid):
        consumer.put(FakeMessage(TOPIC, n, b"not json"))
    metrics = WriterMetrics(SETTINGS.writer_group, CollectorRegistry())
    writer = ClickHouseWriter(SETTINGS, FakeBackend(log, fail), metrics=metrics)
    def sample(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    stop = threading.Event()
    thread = threading.Thread(target=writer.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait(lambda: sample("loanwatch_writer_paused") == 1, "the writer to pause during the outage")
        wait(lambda: log.commits() != [], "a commit")
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()

    inserted = log.inserts()
    assert sample("loanwatch_writer_paused") == 0
    assert sample("loanwatch_writer_records_consumed_total", topic=TOPIC) == valid + invalid
    assert sample("loanwatch_writer_rows_inserted_total", table="events") == len(inserted["events"]) == valid
    assert sample("loanwatch_writer_skipped_events_total") == invalid
    assert sample("loanwatch_writer_insert_failures_total", table="events") == refusals
    assert sample("loanwatch_writer_insert_seconds_count", table="events") == 1
    assert sample("loanwatch_writer_batch_rows_count") == 1
    assert sample("loanwatch_writer_batch_rows_sum") == valid
    assert sample("loanwatch_writer_commits_total") == len(log.commits())


def test_lag_is_sampled_from_committed_offsets_and_watermarks(monkeypatch: pytest.MonkeyPatch) -> None:
    log = Log()
    consumer = FakeConsumer(log)
    monkeypatch.setattr(writer_module, "Consumer", lambda config: consumer)
    # Nothing committed yet and 5 records behind: the first sample (at start) sees all of them.
    consumer.high[TOPIC] = 5
    metrics = WriterMetrics(SETTINGS.writer_group, CollectorRegistry())
    writer = ClickHouseWriter(SETTINGS, FakeBackend(log), metrics=metrics)
    stop = threading.Event()
    thread = threading.Thread(target=writer.run, args=(stop,), daemon=True)
    labels = {"group": SETTINGS.writer_group, "topic": TOPIC, "partition": "0"}
    thread.start()
    try:
        wait(lambda: metrics.registry.get_sample_value("loanwatch_consumer_lag_messages", labels) == 5, "lag 5")
    finally:
        stop.set()
        thread.join(10)
    other = {**labels, "topic": SETTINGS.topics.alerts}
    assert metrics.registry.get_sample_value("loanwatch_consumer_lag_messages", other) == 0


def test_a_slow_broker_answer_to_the_lag_probe_never_holds_up_the_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    # Watermark requests that do not return until the test says so (on the writer's own consumer they used to
    # wait out every idle partition's long poll): rows must still be inserted and committed meanwhile.
    release = threading.Event()
    asked = threading.Event()

    class StuckWatermarks(FakeConsumer):
        def get_watermark_offsets(self, partition: TopicPartition, timeout: float) -> tuple[int, int]:
            asked.set()
            release.wait(30)
            return super().get_watermark_offsets(partition, timeout)

    log = Log()
    consumer = StuckWatermarks(log)
    monkeypatch.setattr(writer_module, "Consumer", lambda config: consumer)
    metrics = WriterMetrics(SETTINGS.writer_group, CollectorRegistry())
    writer = ClickHouseWriter(SETTINGS, FakeBackend(log), metrics=metrics)
    stop = threading.Event()
    thread = threading.Thread(target=writer.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait(asked.is_set, "the probe to ask for watermarks")
        for n in range(3):
            consumer.put(FakeMessage(TOPIC, n, page_view(n)))
        wait(lambda: log.commits() != [], "a commit while the probe waits for the broker")
        assert len(log.inserts()["events"]) == 3
    finally:
        release.set()
        stop.set()
        thread.join(20)
    assert not thread.is_alive()
