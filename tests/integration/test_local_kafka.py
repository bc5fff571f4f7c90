"""The local Kafka broker: real jars from Maven Central, a real JVM, real clients.

The jar cache is shared by every test (and with ``deploy/local/run.sh``): ``$LOANWATCH_HOME/kafka/jars``,
else ``<repo>/.loanwatch/kafka/jars``. Broker data lives in pytest's tmp folders. A broker that does not
come up fails the test with its log; nothing here is skipped.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET  # noqa: S405 - parses our own pom
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from streams.kafka_check import kafka_reachable
from streams.local.kafka_broker import KAFKA_VERSION, POM_PATH, KafkaBrokerError, LocalKafka
from streams.settings import Settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _say(message: str) -> None:
    print(f"[kafka] {message}", file=sys.stderr, flush=True)


@pytest.fixture(scope="session")
def jars_dir() -> Path:
    """The shared jar cache, fetched once (mvn) if it is not there yet."""
    home = Path(os.environ.get("LOANWATCH_HOME") or REPO / ".loanwatch")
    jars = (home / "kafka" / "jars" / KAFKA_VERSION).absolute()
    started = time.monotonic()
    try:
        path = LocalKafka(home / "kafka", progress=_say, jars_dir=jars).ensure_jars()
    except KafkaBrokerError as exc:
        pytest.fail(f"could not fetch the Kafka jars: {exc}", pytrace=False)
    _say(f"jar cache {path} ready in {time.monotonic() - started:.1f}s")
    return path


def start_or_fail(kafka: LocalKafka, **kwargs: bool) -> str:
    """Start the broker; a broker that does not come up fails the test with its log."""
    started = time.monotonic()
    try:
        bootstrap = kafka.start(**kwargs)
    except KafkaBrokerError as exc:
        pytest.fail(f"the local Kafka broker did not start: {exc}", pytrace=False)
    _say(f"broker {bootstrap} up in {time.monotonic() - started:.1f}s")
    return bootstrap


@pytest.fixture(scope="module")
def broker(jars_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    kafka = LocalKafka(tmp_path_factory.mktemp("kafka"), progress=_say, jars_dir=jars_dir)
    start_or_fail(kafka)
    yield kafka
    kafka.stop()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_topic(bootstrap: str, topic: str, partitions: int = 1) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    for future in futures.values():
        future.result(timeout=30)


def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    for i, value in enumerate(values):
        producer.produce(topic, key=str(i).encode(), value=value)
    assert producer.flush(30) == 0, "messages left unsent"


def consume(bootstrap: str, topic: str, count: int, group: str = "", timeout: float = 30.0) -> list[bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group or unique("reader"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error() is not None:
                raise KafkaException(message.error())
            value = message.value()
            assert value is not None
            got.append(value)
        if got:
            consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return got


def topic_names(bootstrap: str) -> set[str]:
    names: set[str] = set(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics)
    return names


def test_pom_pins_the_same_kafka_version() -> None:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    root = ET.parse(POM_PATH).getroot()  # noqa: S314 - our own file
    assert root.findtext("m:properties/m:kafka.version", namespaces=ns) == KAFKA_VERSION


def test_confluent_round_trip(broker: LocalKafka) -> None:
    topic = unique("ck")
    create_topic(broker.bootstrap, topic, partitions=3)
    values = [f"value-{i}".encode() for i in range(100)]
    produce(broker.bootstrap, topic, values)
    group = unique("ck-group")
    assert sorted(consume(broker.bootstrap, topic, len(values), group=group)) == sorted(values)
    # The group's commit holds: the same group sees nothing new.
    assert consume(broker.bootstrap, topic, 1, group=group, timeout=3.0) == []


def test_auto_create_is_off(broker: LocalKafka) -> None:
    topic = unique("nope")
    producer = Producer({"bootstrap.servers": broker.bootstrap, "message.timeout.ms": 3000})
    producer.produce(topic, value=b"x")
    producer.flush(10)
    assert topic not in topic_names(broker.bootstrap)


def test_aiokafka_round_trip_with_group_commit(broker: LocalKafka) -> None:
    topic = unique("ak")
    create_topic(broker.bootstrap, topic, partitions=2)
    group = unique("ak-group")

    async def run() -> tuple[list[bytes], int, int]:
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", enable_idempotence=True)
        await producer.start()
        try:
            for i in range(50):
                await producer.send_and_wait(topic, f"a{i}".encode(), key=str(i).encode())
        finally:
            await producer.stop()

        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=broker.bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        got: list[bytes] = []
        try:
            deadline = time.monotonic() + 30
            while len(got) < 50 and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                got.extend(message.value for messages in batches.values() for message in messages)
            await consumer.commit()
            committed = [await consumer.committed(TopicPartition(topic, p)) or 0 for p in (0, 1)]
        finally:
            await consumer.stop()

        again = AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group)
        await again.start()
        try:
            leftover = sum(len(v) for v in (await again.getmany(timeout_ms=2000)).values())
        finally:
            await again.stop()
        return got, sum(committed), leftover

    got, committed, leftover = asyncio.run(run())
    assert sorted(got) == sorted(f"a{i}".encode() for i in range(50))
    assert committed == 50
    assert leftover == 0


def test_stop_then_start_again_keeps_data(jars_dir: Path, tmp_path: Path) -> None:
    kafka = LocalKafka(tmp_path / "kafka", progress=_say, jars_dir=jars_dir)
    first = start_or_fail(kafka)
    topic = unique("restart")
    create_topic(first, topic)
    produce(first, topic, [b"before"])
    pid = kafka.pid

    kafka.stop()
    kafka.stop()  # idempotent
    assert not kafka.is_running()
    assert not kafka.pid_path.exists()
    assert pid is not None and not Path(f"/proc/{pid}").exists()

    second = start_or_fail(kafka)
    try:
        assert second == first, "the port is kept across restarts while it is free"
        assert topic in topic_names(second)
        produce(second, topic, [b"after"])
        assert sorted(consume(second, topic, 2)) == [b"after", b"before"]
    finally:
        kafka.stop()


def test_start_after_kill_9(jars_dir: Path, tmp_path: Path) -> None:
    home = tmp_path / "kafka"
    crashed = LocalKafka(home, progress=_say, jars_dir=jars_dir)
    bootstrap = start_or_fail(crashed)
    topic = unique("crash")
    create_topic(bootstrap, topic)
    produce(bootstrap, topic, [b"survives"])
    pid = crashed.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert crashed.wait() == -signal.SIGKILL
    pid_file = home / "broker.pid"
    pid_file.write_text(f"{pid}\n")  # as a crashed supervisor would leave it: stale

    fresh = LocalKafka(home, progress=_say, jars_dir=jars_dir)
    bootstrap = start_or_fail(fresh)
    try:
        assert consume(bootstrap, topic, 1) == [b"survives"]
    finally:
        fresh.stop()


def test_start_stops_a_broker_left_running(jars_dir: Path, tmp_path: Path) -> None:
    home = tmp_path / "kafka"
    orphan = LocalKafka(home, progress=_say, jars_dir=jars_dir)
    start_or_fail(orphan)
    orphan_pid = orphan.pid
    assert orphan_pid is not None

    # A new run on the same home (its owner "crashed"): the old broker is still alive and holds the data.
    successor = LocalKafka(home, progress=_say, jars_dir=jars_dir)
    bootstrap = start_or_fail(successor, fresh=True)
    try:
        assert orphan.wait() is not None, "the old broker was stopped"
        assert successor.pid != orphan_pid
        topic = unique("successor")
        create_topic(bootstrap, topic)
        produce(bootstrap, topic, [b"ok"])
        assert consume(bootstrap, topic, 1) == [b"ok"]
    finally:
        successor.stop()
        orphan.stop()


def test_failed_start_raises_with_the_log(jars_dir: Path, tmp_path: Path) -> None:
    kafka = LocalKafka(tmp_path / "kafka", jars_dir=jars_dir, heap="1m")  # the JVM refuses so small a heap
    with pytest.raises(KafkaBrokerError, match="broker log") as info:
        kafka.start(timeout=60)
    assert "heap" in str(info.value).lower()
    assert not kafka.is_running()


def test_context_manager(jars_dir: Path, tmp_path: Path) -> None:
    kafka = LocalKafka(tmp_path / "kafka", jars_dir=jars_dir)
    try:
        with kafka:
            assert kafka.is_running()
            assert kafka.bootstrap.startswith("127.0.0.1:")
            pid = kafka.pid
    except KafkaBrokerError as exc:
        pytest.fail(f"the local Kafka broker did not start: {exc}", pytrace=False)
    assert not kafka.is_running()
    assert pid is not None and not Path(f"/proc/{pid}").exists()


def test_kafka_sh_start_and_stop(jars_dir: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "kafka" / "jars").mkdir(parents=True)
    (home / "kafka" / "jars" / KAFKA_VERSION).symlink_to(jars_dir, target_is_directory=True)
    env = {**os.environ, "LOANWATCH_HOME": str(home), "LOANWATCH_VENV": sys.prefix}
    script = str(REPO / "deploy" / "local" / "kafka.sh")
    log = tmp_path / "kafka-sh.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(["bash", script, "start"], env=env, stdout=subprocess.PIPE, stderr=err)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode().strip()  # the bootstrap, once the broker answers
        if not line.startswith("127.0.0.1:"):
            pytest.fail(f"kafka.sh start printed {line!r}:\n{log.read_text()}", pytrace=False)
        assert (home / "kafka" / "broker.pid").is_file()
        create_topic(line, "via-script")
        assert "via-script" in topic_names(line)
        stop = subprocess.run(["bash", script, "stop"], env=env, capture_output=True, timeout=60, check=False)
        assert stop.returncode == 0, stop.stderr.decode()
        assert proc.wait(timeout=60) == 0, log.read_text()
        assert not (home / "kafka" / "broker.pid").exists()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)


def test_kafka_reachable_answers_for_a_running_broker_and_not_for_a_stopped_one(
    jars_dir: Path, tmp_path: Path
) -> None:
    # The stall watch asks this before it ends a worker: during an outage the worker must wait, not exit.
    kafka = LocalKafka(tmp_path / "kafka", progress=_say, jars_dir=jars_dir)
    bootstrap = start_or_fail(kafka)
    settings = Settings(kafka_bootstrap=bootstrap)
    try:
        assert kafka_reachable(settings, timeout=10)
    finally:
        kafka.stop()
    started = time.monotonic()
    assert not kafka_reachable(settings, timeout=3)
    assert time.monotonic() - started < 10
