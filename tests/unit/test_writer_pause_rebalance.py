"""A rebalance while the writer waits for ClickHouse must not leave a partition paused for good.

The fake consumer keeps librdkafka's pause semantics: a partition's pause outlives a rebalance that takes it away
and gives it back, and a paused or unassigned partition delivers nothing. Rebalances run inside ``poll`` /
``consume`` on the writer's thread, as librdkafka serves its callbacks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from confluent_kafka import TopicPartition

import streams.clickhouse.writer as writer_module
from streams.clickhouse.writer import ClickHouseWriter
from tests.unit.test_clickhouse_writer_routes import SETTINGS, FakeBackend, Log
from tests.unit.test_writer_metrics import page_view, wait

TOPIC = SETTINGS.topics.behavior
Where = tuple[str, int]


@dataclass
class Message:
    """The parts of confluent_kafka.Message the writer reads."""

    where: Where
    at: int
    payload: bytes

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self.where[0]

    def partition(self) -> int:
        return self.where[1]

    def offset(self) -> int:
        return self.at

    def key(self) -> None:
        return None

    def value(self) -> bytes:
        return self.payload

    def timestamp(self) -> tuple[int, int]:
        return (1, 1767603600000)


@dataclass
class PausingConsumer:
    """A group member as librdkafka runs it: eager rebalances, pause flags that outlive them."""

    assigned: set[Where]
    logs: dict[Where, list[Message]] = field(default_factory=dict)
    positions: dict[Where, int] = field(default_factory=dict)
    paused: set[Where] = field(default_factory=set)
    delivered: list[Message] = field(default_factory=list)
    next_assignment: set[Where] | None = None
    on_revoke: Callable[..., None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, where: Where, payload: bytes) -> None:
        with self.lock:
            log = self.logs.setdefault(where, [])
            log.append(Message(where, len(log), payload))

    def rebalance(self, assignment: set[Where]) -> None:
        """Revoke everything and assign ``assignment`` at the writer's next poll."""
        with self.lock:
            self.next_assignment = assignment

    def subscribe(self, topics: list[str], on_revoke: Callable[..., None] | None = None) -> None:
        self.on_revoke = on_revoke

    def _serve_rebalance(self) -> bool:
        with self.lock:
            assignment, self.next_assignment = self.next_assignment, None
        if assignment is None:
            return False
        if self.on_revoke is not None:
            self.on_revoke(self, self.assignment())
        with self.lock:
            self.assigned = set(assignment)
        return True

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        if self._serve_rebalance():
            return []  # a call that serves a rebalance returns before the new partitions have fetched anything
        out: list[Message] = []
        with self.lock:
            for where in sorted(self.assigned - self.paused):
                log, start = self.logs.get(where, []), self.positions.get(where, 0)
                out.extend(log[start : start + num_messages - len(out)])
                self.positions[where] = start + len([m for m in out if m.where == where])
            self.delivered.extend(out)
        if not out:
            time.sleep(min(timeout, 0.01))
        return out

    def poll(self, timeout: float) -> Message | None:
        got = self.consume(1, timeout)
        return got[0] if got else None

    def assignment(self) -> list[TopicPartition]:
        with self.lock:
            return [TopicPartition(t, p) for t, p in sorted(self.assigned)]

    def pause(self, partitions: list[TopicPartition]) -> None:
        with self.lock:
            self.paused.update((tp.topic, tp.partition) for tp in partitions)

    def resume(self, partitions: list[TopicPartition]) -> None:
        with self.lock:
            self.paused.difference_update((tp.topic, tp.partition) for tp in partitions)

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        pass

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, -1001) for tp in partitions]

    def get_watermark_offsets(self, partition: TopicPartition, timeout: float) -> tuple[int, int]:
        with self.lock:
            return 0, len(self.logs.get((partition.topic, partition.partition), []))

    def close(self) -> None:
        pass


class Outage:
    """A writer on the fake consumer whose ClickHouse is down until :meth:`end`."""

    def __init__(self, consumer: PausingConsumer) -> None:
        self.consumer = consumer
        self.down = threading.Event()
        self.log = Log()
        self.writer = ClickHouseWriter(SETTINGS, FakeBackend(self.log, lambda table: self.down.is_set()))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.writer.run, args=(self.stop,), daemon=True)

    def begin(self) -> None:
        """Take ClickHouse down, start the writer and wait until it has paused on a failed insert."""
        self.down.set()
        self.thread.start()
        wait(lambda: self.writer.stats.insert_retries > 0, "a failed insert")

    def end(self) -> None:
        self.down.clear()

    def stored(self) -> set[str]:
        return {str(row[0]) for row in self.log.inserts().get("events", [])}


@pytest.fixture
def outage(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[PausingConsumer], Outage]]:
    started: list[Outage] = []

    def make(consumer: PausingConsumer) -> Outage:
        monkeypatch.setattr(writer_module, "Consumer", lambda config: consumer)
        started.append(Outage(consumer))
        return started[-1]

    yield make
    for o in started:
        o.down.clear()
        o.stop.set()
        o.thread.join(10)
        assert not o.thread.is_alive()


def test_partitions_given_back_by_a_rebalance_during_the_outage_are_consumed_after_it(
    outage: Callable[[PausingConsumer], Outage],
) -> None:
    both = {(TOPIC, 0), (TOPIC, 1)}
    consumer = PausingConsumer(assigned=set(both))
    consumer.put((TOPIC, 0), page_view(0))
    run = outage(consumer)
    run.begin()
    consumer.rebalance(both)  # say another writer joined and left again while ClickHouse was down
    wait(lambda: consumer.next_assignment is None, "the rebalance")
    run.end()
    consumer.put((TOPIC, 0), page_view(1))
    consumer.put((TOPIC, 1), page_view(2))
    wait(lambda: run.stored() >= {"e0", "e1", "e2"}, "the records sent after the outage to be inserted")
    assert run.writer.metrics.paused._value.get() == 0


def test_a_partition_that_left_during_the_outage_is_not_paused_when_it_comes_back_later(
    outage: Callable[[PausingConsumer], Outage],
) -> None:
    consumer = PausingConsumer(assigned={(TOPIC, 0), (TOPIC, 1)})
    consumer.put((TOPIC, 0), page_view(0))
    run = outage(consumer)
    run.begin()
    consumer.rebalance({(TOPIC, 0)})  # partition 1 moves to another writer
    wait(lambda: consumer.next_assignment is None, "the rebalance")
    run.end()
    wait(lambda: "e0" in run.stored(), "the held batch to be inserted")
    consumer.rebalance({(TOPIC, 0), (TOPIC, 1)})  # ... and comes back once that writer leaves
    consumer.put((TOPIC, 1), page_view(1))
    wait(lambda: "e1" in run.stored(), "the returning partition's record to be inserted")


def test_a_partition_assigned_during_the_outage_waits_for_clickhouse_too(
    outage: Callable[[PausingConsumer], Outage],
) -> None:
    consumer = PausingConsumer(assigned={(TOPIC, 0)})
    consumer.put((TOPIC, 0), page_view(0))
    consumer.put((TOPIC, 1), page_view(1))
    run = outage(consumer)
    run.begin()
    consumer.rebalance({(TOPIC, 0), (TOPIC, 1)})
    wait(lambda: consumer.next_assignment is None, "the rebalance")
    wait(lambda: (TOPIC, 1) in consumer.paused, "the new partition to be paused")
    assert [m.where for m in consumer.delivered] == [(TOPIC, 0)], "a partition fetched while ClickHouse was down"
    run.end()
    wait(lambda: run.stored() >= {"e0", "e1"}, "both records to be inserted after the outage")
