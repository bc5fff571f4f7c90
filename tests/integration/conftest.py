"""Real services for the integration suite: one Kafka broker and one ClickHouse 18.16 server per session.

A service that cannot start fails the tests that need it, with its log; nothing here skips.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.clickhouse.backend import ClickHouseBackend, open_backend
from streams.clickhouse.embedded import chdb_path_in_use
from streams.local.clickhouse_server import LocalClickHouseServer
from streams.local.kafka_broker import KAFKA_VERSION, KafkaBrokerError, LocalKafka
from tests.integration.harness import Pipeline, unique_settings

REPO = Path(__file__).resolve().parents[2]


def say(message: str) -> None:
    print(f"[services] {message}", file=sys.stderr, flush=True)


@pytest.fixture(scope="session")
def jars_dir() -> Path:
    """The shared jar cache, fetched once (mvn) if it is not there yet."""
    home = Path(os.environ.get("LOANWATCH_HOME") or REPO / ".loanwatch")
    jars = (home / "kafka" / "jars" / KAFKA_VERSION).absolute()
    try:
        return LocalKafka(home / "kafka", progress=say, jars_dir=jars).ensure_jars()
    except KafkaBrokerError as exc:
        pytest.fail(f"could not fetch the Kafka jars: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def kafka_bootstrap(jars_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real single-node broker for the session."""
    kafka = LocalKafka(tmp_path_factory.mktemp("kafka"), progress=say, jars_dir=jars_dir)
    started = time.monotonic()
    try:
        bootstrap = kafka.start()
    except KafkaBrokerError as exc:
        pytest.fail(f"the local Kafka broker did not start: {exc}", pytrace=False)
    say(f"Kafka {KAFKA_VERSION} at {bootstrap} up in {time.monotonic() - started:.1f}s")
    yield bootstrap
    kafka.stop()


@pytest.fixture(scope="session")
def clickhouse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalClickHouseServer]:
    """Debian's clickhouse-server (18.16) on a free port; its log is in the error when it cannot start."""
    server = LocalClickHouseServer(tmp_path_factory.mktemp("clickhouse-server"))
    server.start(timeout=90)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """chdb serves one data path per process: every test shares this one (each in its own database)."""
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture(params=["server", "chdb"])
def clickhouse(
    request: pytest.FixtureRequest, chdb_dir: Path
) -> Iterator[tuple[ClickHouseBackend, str | None]]:
    """A backend on a fresh database, and the server URL (None for chdb) for processes that need their own."""
    database = f"lwtest_{uuid.uuid4().hex[:10]}"
    url: str | None = None
    if request.param == "server":
        server: LocalClickHouseServer = request.getfixturevalue("clickhouse_server")
        url = server.url
    backend = open_backend(url, database, chdb_path_in_use() or chdb_dir)
    try:
        yield backend, url
    finally:
        backend.close()


@pytest.fixture
def pipeline(
    kafka_bootstrap: str, clickhouse: tuple[ClickHouseBackend, str | None], tmp_path: Path
) -> Iterator[Pipeline]:
    """A pipeline (topics, tables, worker and writer on demand) on both ClickHouse engines, closed afterwards."""
    backend, url = clickhouse
    p = Pipeline(unique_settings(kafka_bootstrap, tmp_path, url, backend.database), backend)
    yield p
    p.close()
