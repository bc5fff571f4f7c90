"""The stall watch: records waiting and no commit for too long ends the worker; nothing else does."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest

from streams.metrics import WorkerMetrics
from streams.stall_watch import EXIT_STALLED, AgentActivity, StallWatch
from streams.worker_lag import install_lag_probe


def test_records_waiting_with_no_commit_for_the_limit_is_a_stall() -> None:
    watch = StallWatch(stall_seconds=60)
    assert watch.observe(0, [("in", 0, 5, 100)]) == []
    assert watch.observe(59, [("in", 0, 9, 100)]) == []
    [stalled] = watch.observe(60, [("in", 0, 12, 100)])
    assert (stalled.topic, stalled.partition, stalled.lag, stalled.committed, stalled.seconds) == ("in", 0, 12, 100, 60)


def test_a_moving_commit_or_nothing_waiting_restarts_the_clock() -> None:
    watch = StallWatch(stall_seconds=60)
    watch.observe(0, [("in", 0, 5, 100), ("in", 1, 4, 7)])
    watch.observe(20, [("in", 0, 5, 100), ("in", 1, 0, 7)])  # partition 1 has nothing waiting
    watch.observe(50, [("in", 0, 5, 140), ("in", 1, 3, 7)])  # partition 0 committed
    assert watch.observe(79, [("in", 0, 5, 140), ("in", 1, 3, 7)]) == []
    assert [s.partition for s in watch.observe(80, [("in", 0, 5, 140), ("in", 1, 3, 7)])] == [1]
    assert [s.partition for s in watch.observe(110, [("in", 0, 5, 140), ("in", 1, 3, 7)])] == [0, 1]


def test_records_applied_without_a_commit_count_as_moving() -> None:
    # A long gap read directly is one batch: its records are applied long before its commit.
    watch = StallWatch(stall_seconds=60)
    watch.observe(0, [("in", 0, 5000, 100), ("in", 1, 10, 7)])
    assert watch.observe(50, [("in", 0, 5000, 100), ("in", 1, 10, 7)], applied={("in", 0)}) == []
    assert [s.partition for s in watch.observe(100, [("in", 0, 5000, 100), ("in", 1, 10, 7)])] == [1]
    assert [s.partition for s in watch.observe(110, [("in", 0, 5000, 100), ("in", 1, 10, 7)])] == [0, 1]


def test_restoring_or_rebalancing_holds_every_clock() -> None:
    watch = StallWatch(stall_seconds=60)
    watch.observe(0, [("in", 0, 5, None)])
    assert watch.observe(500, [("in", 0, 5, None)], restoring=True) == []
    assert watch.observe(559, [("in", 0, 5, None)]) == []
    assert len(watch.observe(560, [("in", 0, 5, None)])) == 1


def test_a_partition_given_up_and_handed_back_starts_afresh_and_zero_watches_nothing() -> None:
    watch = StallWatch(stall_seconds=60)
    watch.observe(0, [("in", 0, 5, 1)])
    watch.observe(30, [])  # revoked
    assert watch.observe(70, [("in", 0, 5, 1)]) == []
    off = StallWatch(stall_seconds=0)
    off.observe(0, [("in", 0, 5, 1)])
    assert off.observe(10_000, [("in", 0, 5, 1)]) == []


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


@dataclass
class FakeConsumer:
    owned: list[TP]
    high: dict[TP, int]
    _committed_offset: dict[TP, int] = field(default_factory=dict)

    def assignment(self) -> list[TP]:
        return self.owned

    def highwater(self, tp: TP) -> int:
        return self.high[tp]


@dataclass
class FakeMonitor:
    tp_committed_offsets: dict[TP, int] = field(default_factory=dict)


@dataclass
class FakeApp:
    """Only what the lag probe touches: its timer, consumer, monitor and the recovery flags."""

    consumer: FakeConsumer
    monitor: FakeMonitor = field(default_factory=FakeMonitor)
    in_recovery: bool = False
    rebalancing: bool = False
    timers: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)

    def timer(self, interval: float) -> Callable[[Callable[[], Coroutine[Any, Any, None]]], Any]:
        def register(fn: Callable[[], Coroutine[Any, Any, None]]) -> Any:
            self.timers.append(fn)
            return fn

        return register


def test_the_lag_probe_ends_a_stalled_worker_and_not_a_restoring_one(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr("streams.worker_lag.time.monotonic", lambda: clock[0])
    tp = TP("in", 0)
    consumer = FakeConsumer([tp], {tp: 50}, {tp: 20})
    app = FakeApp(consumer)
    exits: list[int] = []
    install_lag_probe(app, WorkerMetrics("t").lag, ["in"], StallWatch(60), exits.append)  # type: ignore[arg-type]
    [sample] = app.timers

    def tick(seconds: float) -> None:
        clock[0] += seconds
        asyncio.run(sample())

    tick(0)
    app.in_recovery = True
    tick(100)
    assert exits == []
    app.in_recovery = False
    tick(30)
    consumer._committed_offset[tp] = 30  # a commit: the clock starts again
    tick(40)
    tick(59)
    assert exits == []
    tick(1)
    assert exits == [EXIT_STALLED]


def test_inside_a_batch_that_applies_records_every_partition_of_the_agent_is_moving() -> None:
    activity = AgentActivity(frozenset({"in"}))
    owned = [("in", 0), ("in", 1), ("other", 0)]
    activity.in_batch = True
    activity.applied.add(("in", 0))  # a long gap read on partition 0 holds partition 1's commits back too
    assert activity.take_moving(owned) == {("in", 0), ("in", 1)}
    assert activity.applied == set()
    assert activity.take_moving(owned) == set()  # inside a batch that applied nothing: stuck, not moving


def test_between_batches_only_the_partitions_applied_are_moving() -> None:
    activity = AgentActivity(frozenset({"in"}))
    activity.applied.update({("in", 0)})  # partition 1 is no longer fetched while partition 0 flows
    assert activity.take_moving([("in", 0), ("in", 1)]) == {("in", 0)}


def test_the_lag_probe_takes_a_long_batch_as_moving_and_a_stuck_one_not(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    monkeypatch.setattr("streams.worker_lag.time.monotonic", lambda: clock[0])
    tp0, tp1 = TP("in", 0), TP("in", 1)
    app = FakeApp(FakeConsumer([tp0, tp1], {tp0: 50, tp1: 50}, {tp0: 20, tp1: 20}))
    activity = AgentActivity(frozenset({"in"}))
    exits: list[int] = []
    install_lag_probe(
        app, WorkerMetrics("t").lag, ["in"], StallWatch(60), exits.append, activity=activity  # type: ignore[arg-type]
    )
    [sample] = app.timers
    activity.in_batch = True
    for _ in range(5):  # 200 s in one batch applying records of partition 0: no commit anywhere
        clock[0] += 40
        activity.applied.add(("in", 0))
        asyncio.run(sample())
    assert exits == []
    clock[0] += 40  # the batch applies nothing any more
    asyncio.run(sample())
    clock[0] += 20
    asyncio.run(sample())
    assert exits == [EXIT_STALLED]


def test_a_stall_while_kafka_does_not_answer_waits_and_restarts_the_clocks(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    monkeypatch.setattr("streams.worker_lag.time.monotonic", lambda: clock[0])
    tp = TP("in", 0)
    app = FakeApp(FakeConsumer([tp], {tp: 50}, {tp: 20}))
    answers = [False]
    asked: list[float] = []

    def reachable() -> bool:
        asked.append(clock[0])
        return answers[0]

    exits: list[int] = []
    install_lag_probe(
        app, WorkerMetrics("t").lag, ["in"], StallWatch(60), exits.append,  # type: ignore[arg-type]
        broker_reachable=reachable,
    )
    [sample] = app.timers
    for _ in range(4):  # samples at 0, 30, 60 and 90 s: at 60 s Kafka is asked, does not answer, clocks restart
        asyncio.run(sample())
        clock[0] += 30
    assert asked == [60.0] and exits == []
    answers[0] = True  # Kafka answers again, and the partition still does not move
    clock[0] += 30
    asyncio.run(sample())  # 150 s: 90 s since the restarted clock
    assert asked == [60.0, 150.0] and exits == [EXIT_STALLED]
