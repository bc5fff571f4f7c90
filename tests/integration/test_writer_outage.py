"""The writer during a ClickHouse outage: keeps its batch, commits nothing, inserts everything once back."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from schemas import serde
from schemas.behavior import PageView
from streams.clickhouse.backend import ClickHouseBackend
from streams.clickhouse.errors import ClickHouseUnavailable
from tests.integration.harness import Pipeline, unique_settings, wait_for

pytestmark = pytest.mark.integration


class OutageBackend:
    """A real backend whose inserts fail as 'unavailable' until the outage ends (fault injection)."""

    def __init__(self, real: ClickHouseBackend) -> None:
        self.real = real
        self.database = real.database
        self.outage_over = threading.Event()
        self.refused = 0

    def version(self) -> tuple[int, ...]:
        return self.real.version()

    def execute(self, sql: str) -> None:
        self.real.execute(sql)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return self.real.query(sql)

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not self.outage_over.is_set():
            self.refused += 1
            raise ClickHouseUnavailable("injected outage: connection refused")
        self.real.insert(table, columns, rows)

    def close(self) -> None:
        self.real.close()


def committed(pipeline: Pipeline, topic: str) -> int:
    consumer = Consumer({**pipeline.settings.confluent_config(), "group.id": pipeline.settings.writer_group})
    try:
        parts = [TopicPartition(topic, p) for p in range(pipeline.settings.partitions)]
        return sum(max(tp.offset, 0) for tp in consumer.committed(parts, timeout=10))
    finally:
        consumer.close()


def test_outage_keeps_rows_and_commits_only_after_insert(
    kafka_bootstrap: str, clickhouse: tuple[ClickHouseBackend, str | None], tmp_path: Path
) -> None:
    real, url = clickhouse
    backend = OutageBackend(real)
    pipeline = Pipeline(unique_settings(kafka_bootstrap, tmp_path, url, real.database), backend)
    topic = pipeline.settings.topics.behavior
    t0 = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
    values = [
        serde.dumps(
            PageView(
                event_id=f"pv-{uuid.uuid4().hex}",
                customer_id=f"c_{i % 50:06d}",
                ts=t0 + timedelta(seconds=i),
                device_id="d_1",
                ip="10.0.0.1",
                channel="h5",
                page="home",
            )
        )
        for i in range(500)
    ]
    try:
        pipeline.start_writer()
        pipeline.produce((topic, None, v) for v in values)
        wait_for(lambda: backend.refused >= 3, 60, "the writer to try and fail three inserts")
        assert pipeline.writer is not None
        assert pipeline.writer.stats.insert_retries >= 3
        assert committed(pipeline, topic) == 0, "nothing may be committed while the rows are not in ClickHouse"

        backend.outage_over.set()
        wait_for(lambda: pipeline.scalar("SELECT count() FROM {db}.events") >= len(values), 120, "rows after outage")
        wait_for(lambda: committed(pipeline, topic) == len(values), 60, "offsets committed after the insert")
        pipeline.stop_writer()
        assert pipeline.scalar("SELECT count() FROM {db}.events") == len(values)
        assert pipeline.scalar("SELECT uniqExact(event_id) FROM {db}.events") == len(values)
    finally:
        pipeline.close()
