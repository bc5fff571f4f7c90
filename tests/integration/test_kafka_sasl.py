"""Kafka security on a real broker: a SASL/SCRAM listener, every client of the pipeline through it, no secret shown.

A second local broker (KRaft) with a SASL_PLAINTEXT listener and one SCRAM user; the settings object alone tells
confluent-kafka (admin, producer, consumer, the ClickHouse writer) and Faust (the worker, over aiokafka) how to log
in. A wrong password fails with a clear error within a bounded time, and neither password ever appears in a
process's output, a log, ``repr(settings)``, the settings' JSON or an error we raise.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from schemas.outputs import Alert
from streams.clickhouse.backend import open_backend
from streams.clickhouse.embedded import chdb_path_in_use
from streams.kafka_check import KafkaAccessError, check_access
from streams.local.kafka_broker import KafkaBrokerError, LocalKafka
from streams.local.kafka_sasl import ScramUser
from streams.settings import Settings
from tests.integration.expected import expected_alerts
from tests.integration.harness import Pipeline, unique_settings, wait_for
from tests.integration.test_pipeline import application

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
USER = "loanwatch-svc"
# Fresh each session: a leak cannot hide behind a string that appears anywhere else.
PASSWORD = secrets.token_urlsafe(24)
WRONG_PASSWORD = secrets.token_urlsafe(24)
# Bounds every subprocess, so a client that retries forever fails the test instead of hanging it.
PROCESS_TIMEOUT_S = 120.0


@pytest.fixture(scope="module")
def sasl_broker(jars_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A broker of its own with a SCRAM user: SASL_PLAINTEXT at ``sasl_bootstrap``, PLAINTEXT for its own use."""
    home = tmp_path_factory.mktemp("kafka-sasl")
    kafka = LocalKafka(home, jars_dir=jars_dir, scram_users=[ScramUser(USER, PASSWORD)])
    try:
        kafka.start()
    except KafkaBrokerError as exc:
        pytest.fail(f"the local Kafka broker with a SASL listener did not start: {exc}", pytrace=False)
    yield kafka
    kafka.stop()


def sasl_settings(mechanism: str = "SCRAM-SHA-512", password: str = PASSWORD) -> dict[str, Any]:
    """Settings values that log in as the SCRAM user (the bootstrap is the broker's ``sasl_bootstrap``)."""
    return {
        "kafka_security_protocol": "SASL_PLAINTEXT",
        "kafka_sasl_mechanism": mechanism,
        "kafka_sasl_username": USER,
        "kafka_sasl_password": password,
    }


def assert_no_secret(text: str, where: str) -> None:
    assert PASSWORD not in text, f"the SASL password appears in {where}"
    assert WRONG_PASSWORD not in text, f"the wrong SASL password appears in {where}"


def loanwatch(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI as an operator would, configured through LOANWATCH_* variables only."""
    env = {**os.environ, **settings.to_env(), "LOANWATCH_LOG_LEVEL": "INFO"}
    return subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "streams.cli", *args],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S, check=False,
    )


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256"])
def test_confluent_round_trip_through_scram(sasl_broker: LocalKafka, mechanism: str) -> None:
    settings = Settings(kafka_bootstrap=sasl_broker.sasl_bootstrap, **sasl_settings(mechanism))
    topic = f"lwtest-sasl-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(settings.confluent_config())
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(timeout=30)

    sent = [f"record-{i}".encode() for i in range(50)]
    producer = Producer({**settings.confluent_config(), "acks": "all", "enable.idempotence": True})
    failures: list[KafkaError] = []
    for value in sent:
        producer.produce(topic, value=value, on_delivery=lambda err, _msg: failures.append(err) if err else None)
    assert producer.flush(30) == 0 and not failures

    consumer = Consumer({**settings.confluent_config(), "group.id": topic, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    received: list[bytes] = []
    try:
        wait_for(lambda: _poll_into(consumer, received) >= len(sent), 60, f"{len(sent)} records over {mechanism}")
    finally:
        consumer.close()
    assert sorted(received) == sorted(sent)


def _poll_into(consumer: Consumer, out: list[bytes]) -> int:
    message = consumer.poll(0.5)
    if message is not None and message.error() is None:
        out.append(message.value() or b"")
    return len(out)


def test_init_worker_and_writer_work_through_scram(
    sasl_broker: LocalKafka, tmp_path: Path, chdb_dir: Path, capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    database = f"lwtest_{uuid.uuid4().hex[:10]}"
    settings = unique_settings(sasl_broker.sasl_bootstrap, tmp_path, None, database, **sasl_settings())

    init = loanwatch(settings, "init")
    assert init.returncode == 0, init.stderr
    assert "topic(s) created" in init.stderr
    created = set(AdminClient(settings.confluent_config()).list_topics(timeout=30).topics)
    assert {settings.topics.behavior, settings.topics.alerts, settings.topics.deadletter} <= created

    pipeline = Pipeline(settings, open_backend(None, database, chdb_path_in_use() or chdb_dir))
    try:
        pipeline.start_writer()
        pipeline.start_worker()
        values = [application("c_sasl01", i, i * 2) for i in range(5)]
        expected = expected_alerts(values)
        assert sorted(a.tier for a in expected.values()) == ["attention", "notice"]
        pipeline.produce((settings.topics.behavior, b"c_sasl01", v) for v in values)

        on_topic = pipeline.consume_all(settings.topics.alerts, expected=len(expected), timeout=120)
        assert {a.alert_id: a for a in (Alert.model_validate_json(v) for _, v in on_topic)} == expected
        wait_for(
            lambda: pipeline.scalar("SELECT count() FROM {db}.events FINAL") >= len(values),
            90, "the writer to store the events it consumed through SASL",
        )
        pipeline.assert_worker_alive()
    finally:
        pipeline.close()
        pipeline.backend.close()

    worker_log = pipeline.worker_log.read_text(errors="replace")
    captured = capfd.readouterr()
    for text, where in [
        (init.stdout + init.stderr, "`loanwatch init` output"),
        (worker_log, "the worker's log"),
        (captured.out + captured.err, "this process's stdout/stderr"),
        (caplog.text, "this process's log records"),
        (sasl_broker.log_path.read_text(errors="replace"), "the broker's log"),
        (repr(settings) + str(settings), "repr(settings)"),
        (settings.model_dump_json(), "settings.model_dump_json()"),
    ]:
        assert_no_secret(text, where)


def test_wrong_password_is_refused_clearly_and_in_bounded_time(sasl_broker: LocalKafka, tmp_path: Path) -> None:
    wrong = sasl_settings(password=WRONG_PASSWORD)
    settings = unique_settings(sasl_broker.sasl_bootstrap, tmp_path, None, "lwtest_refused", **wrong)
    with pytest.raises(KafkaAccessError) as refused:
        check_access(settings, timeout=30)
    message = str(refused.value)
    assert "refused the credentials" in message and "invalid credentials" in message and USER in message
    assert_no_secret(message, "the error raised")

    init = loanwatch(settings, "init")
    assert init.returncode == 1
    assert "refused the credentials" in init.stderr
    assert_no_secret(init.stdout + init.stderr, "`loanwatch init` output")

    for command in ("worker", "writer"):
        done = loanwatch(settings, command)
        assert done.returncode == 1, f"loanwatch {command} exited {done.returncode}"
        assert "refused the credentials" in done.stdout + done.stderr
        assert_no_secret(done.stdout + done.stderr, f"`loanwatch {command}` output")


def test_a_client_without_credentials_cannot_use_the_sasl_listener(sasl_broker: LocalKafka) -> None:
    """The listener really authenticates: the same round trip without SASL gets nowhere."""
    anonymous = Settings(kafka_bootstrap=sasl_broker.sasl_bootstrap)
    with pytest.raises(KafkaAccessError, match="did not answer within"):
        check_access(anonymous, timeout=5)
