"""The writer's routes: a link or ring record gives rows in two tables, and its offset is committed only after all.

The Kafka consumer is a fake (queued messages, recorded commits); the writer runs its real loop in a thread.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from confluent_kafka import TopicPartition

import streams.clickhouse.writer as writer_module
from schemas import serde
from schemas.clickhouse.ddl import TABLES
from schemas.entities import EntityLink, EntityRef, RingSnapshot
from streams.clickhouse.errors import ClickHouseUnavailable
from streams.clickhouse.rows import DEAD_LETTER_COLUMNS, RING_COLUMNS, RING_MEMBER_COLUMNS, Record
from streams.clickhouse.writer import ClickHouseWriter, FanOutRoute, Route, routes, table_columns
from streams.settings import Settings

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


@dataclass
class FakeMessage:
    """The parts of confluent_kafka.Message the writer reads."""

    _topic: str
    _offset: int
    _value: bytes

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return None

    def value(self) -> bytes:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return (1, 1767603600000)


class Log:
    """Inserts and commits in the order they happened."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, Any]] = []
        self.lock = threading.Lock()

    def add(self, kind: str, what: Any) -> None:
        with self.lock:
            self.entries.append((kind, what))

    def inserts(self) -> dict[str, list[tuple[Any, ...]]]:
        out: dict[str, list[tuple[Any, ...]]] = {}
        with self.lock:
            for kind, what in self.entries:
                if kind == "insert":
                    out.setdefault(what[0], []).extend(what[1])
        return out

    def commits(self) -> list[list[tuple[str, int]]]:
        with self.lock:
            return [what for kind, what in self.entries if kind == "commit"]


class FakeConsumer:
    """Serves queued messages from partition 0 of each topic and records commits."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.queue: deque[FakeMessage] = deque()
        self.lock = threading.Lock()
        self.topics: list[str] = []
        self.high: dict[str, int] = {}
        self.committed_offsets: dict[str, int] = {}

    def put(self, message: FakeMessage) -> None:
        with self.lock:
            self.queue.append(message)
            self.high[message.topic()] = max(self.high.get(message.topic(), 0), message.offset() + 1)

    def subscribe(self, topics: list[str], on_revoke: Callable[..., None] | None = None) -> None:
        self.topics = topics

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        with self.lock:
            out = [self.queue.popleft() for _ in range(min(num_messages, len(self.queue)))]
        if not out:
            time.sleep(min(timeout, 0.02))
        return out

    def poll(self, timeout: float) -> FakeMessage | None:
        with self.lock:
            if self.queue:
                return self.queue.popleft()
        time.sleep(min(timeout, 0.02))
        return None

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(t, 0) for t in self.topics]

    def pause(self, partitions: list[TopicPartition]) -> None:
        pass

    def resume(self, partitions: list[TopicPartition]) -> None:
        pass

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        with self.lock:
            self.committed_offsets.update((tp.topic, tp.offset) for tp in offsets)
        self.log.add("commit", sorted((tp.topic, tp.offset) for tp in offsets))

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        """The group's committed offsets; -1001 (librdkafka's 'invalid') where nothing was committed."""
        with self.lock:
            return [TopicPartition(tp.topic, 0, self.committed_offsets.get(tp.topic, -1001)) for tp in partitions]

    def get_watermark_offsets(self, partition: TopicPartition, timeout: float) -> tuple[int, int]:
        with self.lock:
            return 0, self.high.get(partition.topic, 0)

    def close(self) -> None:
        pass


class FakeBackend:
    """Records inserts; ``fail`` decides, per call, whether ClickHouse is 'unavailable'."""

    database = "lw"

    def __init__(self, log: Log, fail: Callable[[str], bool] = lambda table: False) -> None:
        self.log = log
        self.fail = fail

    def version(self) -> tuple[int, ...]:
        return (26, 9)

    def execute(self, sql: str) -> None:
        pass

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return []

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if self.fail(table):
            raise ClickHouseUnavailable("injected: connection refused")
        self.log.add("insert", (table, [tuple(r) for r in rows]))

    def close(self) -> None:
        pass


SETTINGS = Settings(kafka_bootstrap="127.0.0.1:9092", writer_batch_seconds=0.05, writer_retry_max_seconds=0.2)
TOPICS = SETTINGS.topics


def link(a: str, b: str, minutes: int = 0, refresh: bool = False) -> bytes:
    return serde.dumps(
        EntityLink(
            customer_a=a,
            customer_b=b,
            entity=EntityRef(kind="device", value="d_9"),
            first_seen=T0,
            last_seen=T0 + timedelta(minutes=minutes),
            refresh=refresh,
        )
    )


def ring(members: list[str], minutes: int = 5) -> bytes:
    return serde.dumps(
        RingSnapshot(
            ring_id="ab" * 8,
            ts=T0 + timedelta(minutes=minutes),
            first_seen=T0,
            size=len(members),
            score=0.5,
            tier="notice",
            members=members,
            entities=[EntityRef(kind="device", value="d_9")],
            links=len(members) - 1,
        )
    )


@pytest.fixture
def log() -> Log:
    return Log()


@pytest.fixture
def consumer(log: Log, monkeypatch: pytest.MonkeyPatch) -> FakeConsumer:
    fake = FakeConsumer(log)
    monkeypatch.setattr(writer_module, "Consumer", lambda config: fake)
    return fake


class Running:
    def __init__(self, writer: ClickHouseWriter) -> None:
        self.writer = writer
        self.stop = threading.Event()
        self.thread = threading.Thread(target=writer.run, args=(self.stop,), daemon=True)

    def wait(self, predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.01)
        raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def run(log: Log) -> Iterator[Callable[[FakeBackend], Running]]:
    started: list[Running] = []

    def start(backend: FakeBackend) -> Running:
        running = Running(ClickHouseWriter(SETTINGS, backend, clock=lambda: NOW))
        running.thread.start()
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop.set()
        running.thread.join(10)
        assert not running.thread.is_alive()


def test_every_table_of_the_ddl_is_routed_once_with_one_column_list() -> None:
    routing = routes(SETTINGS)
    assert set(table_columns(routing)) == set(TABLES)
    links, rings = routing[TOPICS.links], routing[TOPICS.rings]
    assert isinstance(links, FanOutRoute) and set(links.tables) == {"links", "customer_links"}
    assert isinstance(rings, FanOutRoute) and dict(rings.tables) == {
        "rings": RING_COLUMNS,
        "ring_members": RING_MEMBER_COLUMNS,
    }
    assert isinstance(routing[TOPICS.alerts], Route)


def test_two_column_lists_for_one_table_are_refused() -> None:
    clash: dict[str, Route | FanOutRoute] = {
        "a": Route("t", ("x",), lambda record, now: ("x",)),
        "b": FanOutRoute({"t": ("x", "y")}, lambda record, now: {}),
    }
    with pytest.raises(ValueError, match="two different column lists"):
        table_columns(clash)


def test_a_fan_out_builder_may_only_fill_its_own_tables() -> None:
    route = FanOutRoute({"rings": RING_COLUMNS}, lambda record, now: {"rings": [], "other": [("x",)]})
    with pytest.raises(RuntimeError, match="other"):
        route.rows(Record("t", 0, 0, None, b""), NOW)


def test_a_ring_record_lands_in_both_tables_before_its_offset_is_committed(
    log: Log, consumer: FakeConsumer, run: Callable[[FakeBackend], Running]
) -> None:
    consumer.put(FakeMessage(TOPICS.rings, 7, ring(["c_000001", "c_000002", "c_000003"])))
    consumer.put(FakeMessage(TOPICS.links, 3, link("c_000001", "c_000002")))
    running = run(FakeBackend(log))
    running.wait(lambda: len(log.commits()) >= 1, "a commit")
    inserts = log.inserts()
    assert [len(inserts[t]) for t in ("rings", "ring_members", "links", "customer_links")] == [1, 3, 1, 2]
    assert [r[1] for r in inserts["ring_members"]] == ["c_000001", "c_000002", "c_000003"]
    kinds = [kind for kind, _ in log.entries]
    assert kinds == ["insert"] * 4 + ["commit"], "every table's rows are inserted before the commit"
    assert log.commits()[0] == sorted([(TOPICS.links, 4), (TOPICS.rings, 8)])
    assert running.writer.stats.rows == {"rings": 1, "ring_members": 3, "links": 1, "customer_links": 2}


def test_records_read_during_an_insert_retry_are_committed_only_with_their_own_rows(
    log: Log, consumer: FakeConsumer, run: Callable[[FakeBackend], Running]
) -> None:
    outage = threading.Event()
    outage.set()
    refused: list[str] = []

    def fail(table: str) -> bool:
        if table == "ring_members" and outage.is_set():
            if not refused:
                # While the writer waits to retry, a link record arrives: its rows go to tables that this
                # flush has already inserted or never had; its offset must wait for its own flush.
                consumer.put(FakeMessage(TOPICS.links, 0, link("c_000001", "c_000002", minutes=40, refresh=True)))
            refused.append(table)
            return True
        return False

    consumer.put(FakeMessage(TOPICS.rings, 0, ring(["c_000001", "c_000002"])))
    running = run(FakeBackend(log, fail))
    running.wait(lambda: len(refused) >= 3, "three refused inserts")
    assert log.commits() == [], "nothing is committed while ring_members is not inserted"
    assert "rings" in log.inserts() and "ring_members" not in log.inserts()
    outage.clear()
    running.wait(lambda: len(log.commits()) >= 2, "two commits")
    commits = log.commits()
    assert commits[0] == [(TOPICS.rings, 1)], "the first batch is the ring record alone"
    assert commits[1] == [(TOPICS.links, 1)]
    inserts = log.inserts()
    assert len(inserts["links"]) == 1 and len(inserts["customer_links"]) == 2, "the link's rows were not dropped"
    assert len(inserts["ring_members"]) == 2
    first_commit = log.entries.index(("commit", commits[0]))
    assert [what[0] for kind, what in log.entries[:first_commit] if kind == "insert"] == ["rings", "ring_members"]


def test_an_unreadable_ring_record_becomes_one_dead_letter_and_no_ring_rows(
    log: Log, consumer: FakeConsumer, run: Callable[[FakeBackend], Running]
) -> None:
    consumer.put(FakeMessage(TOPICS.rings, 5, b'{"ring_id": "ab", "members": ["c_1"]}'))
    running = run(FakeBackend(log))
    running.wait(lambda: len(log.commits()) >= 1, "a commit")
    inserts = log.inserts()
    assert set(inserts) == {"dead_letters"}
    letter = dict(zip(DEAD_LETTER_COLUMNS, inserts["dead_letters"][0], strict=True))
    assert (letter["source_topic"], letter["offset"], letter["error_kind"]) == (TOPICS.rings, 5, "validation")
    assert log.commits() == [[(TOPICS.rings, 6)]]
    assert running.writer.stats.unreadable_outputs == 1
