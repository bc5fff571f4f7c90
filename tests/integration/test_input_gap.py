"""A worker started past records it never applied reads them directly and applies them: input is never skipped.

The gap is made from outside, the way Faust made it in the fault suite: while the worker is stopped, the group's
committed offset of one input partition is moved past ten records the worker never saw. On restart Faust starts
there; the worker's input progress (``streams.input_progress``) expects the first of the ten, reads them directly
(``streams.partition_fetch``) and applies them before the next record, so the customer's state counts every one.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition

from detectors.profile import features
from schemas import serde
from schemas.behavior import PageView
from streams.clickhouse.backend import open_backend
from streams.local.clickhouse_server import LocalClickHouseServer
from tests.faults.recovery import latest_states
from tests.integration.harness import Pipeline, unique_settings, wait_for

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CUSTOMER = b"c_gap"


def page(i: int) -> PageView:
    return PageView(event_id=f"gap-{i}", ts=T0 + timedelta(seconds=i), page="home", customer_id="c_gap",
                    device_id="d_gap", ip="10.1.2.3", channel="h5")


def page_views(pipeline: Pipeline) -> int:
    """The customer's page views in its last state on the changelog (0 before the changelog exists)."""
    try:
        states = latest_states(pipeline.settings, {CUSTOMER})
    except KafkaException:
        return 0
    if CUSTOMER not in states:
        return 0
    profile = states[CUSTOMER][1].profile
    return int(features(profile, profile.watermark_ms)["page_views_30d"])


def test_records_committed_over_while_the_worker_was_down_are_read_and_applied(
    kafka_bootstrap: str, clickhouse_server: LocalClickHouseServer, chdb_dir: Path, tmp_path: Path
) -> None:
    database = f"lwtest_{uuid.uuid4().hex[:10]}"
    backend = open_backend(clickhouse_server.url, database, chdb_dir)
    settings = unique_settings(kafka_bootstrap, tmp_path, clickhouse_server.url, database)
    pipeline = Pipeline(settings, backend)
    topic = settings.topics.behavior
    try:
        pipeline.start_worker()
        pipeline.produce([(topic, CUSTOMER, serde.dumps(page(i))) for i in range(5)])
        wait_for(lambda: page_views(pipeline) == 5, 120, "the first five page views applied", pipeline.worker_log)
        first, _ = _partition_end(pipeline, topic)
        # Stopped only once it has committed them: a worker stopped inside its first rebalance left the group
        # in a state that kept the next one from consuming within the test's time.
        wait_for(lambda: _committed(pipeline, topic, first) == 5, 120, "the five committed", pipeline.worker_log)
        pipeline.stop_worker()

        pipeline.produce([(topic, CUSTOMER, serde.dumps(page(i))) for i in range(5, 15)])
        partition, end = _partition_end(pipeline, topic)
        _commit(pipeline, topic, partition, end)  # ten records committed over, never seen by the worker

        pipeline.start_worker()
        pipeline.produce([(topic, CUSTOMER, serde.dumps(page(15)))])
        wait_for(lambda: page_views(pipeline) == 16, 240, "all sixteen page views applied", pipeline.worker_log)
        log = pipeline.worker_log.read_text(errors="replace")
        assert f"record {end} arrived where {end - 10} was expected" in log
        pipeline.assert_worker_alive()
    finally:
        pipeline.close()
        backend.close()


def _partition_end(pipeline: Pipeline, topic: str) -> tuple[int, int]:
    """The partition holding the customer's records, and its end offset."""
    consumer = Consumer({**pipeline.settings.confluent_config(), "group.id": f"lwtest-{uuid.uuid4().hex[:8]}"})
    try:
        for p in range(pipeline.settings.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                return p, high
    finally:
        consumer.close()
    raise AssertionError("no records on any partition")


def _committed(pipeline: Pipeline, topic: str, partition: int) -> int:
    """The worker group's committed offset of the partition (-1 while none)."""
    consumer = Consumer({**pipeline.settings.confluent_config(), "group.id": pipeline.settings.app_id,
                         "enable.auto.commit": False})
    try:
        (tp,) = consumer.committed([TopicPartition(topic, partition)], timeout=10)
        return int(tp.offset)
    finally:
        consumer.close()


def _commit(pipeline: Pipeline, topic: str, partition: int, offset: int) -> None:
    """Commit ``offset`` for the worker group (the worker is stopped and the group empty)."""
    consumer = Consumer({**pipeline.settings.confluent_config(), "group.id": pipeline.settings.app_id,
                         "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition(topic, partition, offset)], asynchronous=False)
    finally:
        consumer.close()
