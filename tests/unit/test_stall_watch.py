"""The stall watch: records waiting and no commit for too long ends the worker; nothing else does."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest

from streams.metrics import WorkerMetrics
from streams.stall_watch import EXIT_STALLED, StallWatch
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


def test_the_lag_probe_takes_the_partitions_the_agent_applied_as_moving(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    monkeypatch.setattr("streams.worker_lag.time.monotonic", lambda: clock[0])
    tp = TP("in", 0)
    app = FakeApp(FakeConsumer([tp], {tp: 50}, {tp: 20}))
    applied: set[tuple[str, int]] = set()
    exits: list[int] = []
    install_lag_probe(
        app, WorkerMetrics("t").lag, ["in"], StallWatch(60), exits.append, applied=applied  # type: ignore[arg-type]
    )
    [sample] = app.timers
    for _ in range(5):  # 200 s with no commit, the agent applying records of the partition all along
        clock[0] += 40
        applied.add(("in", 0))
        asyncio.run(sample())
        assert applied == set()  # each sample takes what the agent reported
    assert exits == []
    clock[0] += 40
    asyncio.run(sample())
    clock[0] += 20
    asyncio.run(sample())
    assert exits == [EXIT_STALLED]
