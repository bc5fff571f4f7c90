"""Services for the fault-injection suite: a Kafka broker of its own and embedded ClickHouse (chdb).

The broker is package-scoped: it stops when this suite is done, so it is never up alongside the integration
suite's broker in a full run. The jar cache is the integration suite's. A service that cannot start fails the
test with its log; nothing here skips.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.clickhouse.backend import open_backend
from streams.clickhouse.embedded import chdb_path_in_use
from streams.local.kafka_broker import KAFKA_VERSION, KafkaBrokerError, LocalKafka
from tests.integration.conftest import jars_dir, say
from tests.integration.harness import Pipeline, unique_settings

__all__ = ["faults_kafka", "jars_dir", "pipeline"]


@pytest.fixture(scope="package")
def faults_kafka(jars_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real single-node broker for this suite."""
    kafka = LocalKafka(tmp_path_factory.mktemp("faults-kafka"), progress=say, jars_dir=jars_dir)
    started = time.monotonic()
    try:
        bootstrap = kafka.start()
    except KafkaBrokerError as exc:
        pytest.fail(f"the local Kafka broker did not start: {exc}", pytrace=False)
    say(f"Kafka {KAFKA_VERSION} at {bootstrap} up in {time.monotonic() - started:.1f}s (fault suite)")
    yield bootstrap
    kafka.stop()


@pytest.fixture
def pipeline(faults_kafka: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """Topics, tables (chdb) and a worker on demand, closed afterwards; ClickHouse is not what is under test here."""
    database = f"lwfault_{uuid.uuid4().hex[:10]}"
    backend = open_backend(None, database, chdb_path_in_use() or tmp_path_factory.mktemp("chdb"))
    p = Pipeline(unique_settings(faults_kafka, tmp_path, None, database), backend)
    try:
        yield p
    finally:
        p.close()
        backend.close()
