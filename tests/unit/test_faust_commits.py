"""The worker's consumer never commits over a record that was not acknowledged; Faust's own does, by one."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, cast

import pytest
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import TP
from intervaltree import IntervalTree  # type: ignore[import-untyped]  # Faust's own dependency, untyped

from streams.faust_commits import InOrderCommitConsumer, StallWatch

BEHAVIOR = TP("loan.behavior.v1", 1)


def bookkeeping(cls: type[AIOKafkaConsumer], committed: int | None, acked: list[int]) -> AIOKafkaConsumer:
    """A consumer of ``cls`` holding only the commit bookkeeping (no broker): committed = next offset to read."""
    consumer = cast(Any, object.__new__(cls))
    consumer._committed_offset = defaultdict(lambda: None, {BEHAVIOR: committed})
    consumer._acked = defaultdict(list, {BEHAVIOR: sorted(acked)})
    consumer._acked_index = defaultdict(set, {BEHAVIOR: set(acked)})
    consumer._gap = defaultdict(IntervalTree)
    return cast(AIOKafkaConsumer, consumer)


def test_faust_commits_over_one_record_that_was_never_acknowledged() -> None:
    # Why the class exists: if Faust stops doing this, it can go.
    assert bookkeeping(AIOKafkaConsumer, 100, [101, 102])._new_offset(BEHAVIOR) == 103


def test_the_commit_waits_for_the_record_at_the_committed_offset() -> None:
    consumer = bookkeeping(InOrderCommitConsumer, 100, [101, 102])
    assert consumer._new_offset(BEHAVIOR) is None
    consumer._acked[BEHAVIOR].insert(0, 100)
    consumer._acked_index[BEHAVIOR].add(100)
    assert consumer._new_offset(BEHAVIOR) == 103


@pytest.mark.parametrize(("committed", "acked", "expected"), [(100, [100, 101, 103], 102), (None, [5, 6], 7)])
def test_otherwise_it_commits_as_faust_does(committed: int | None, acked: list[int], expected: int) -> None:
    ours = bookkeeping(InOrderCommitConsumer, committed, acked)._new_offset(BEHAVIOR)
    assert ours == bookkeeping(AIOKafkaConsumer, committed, acked)._new_offset(BEHAVIOR) == expected


P0, P1 = TP("loan.behavior.v1", 0), TP("loan.behavior.v1", 1)


def test_a_commit_standing_behind_an_unacknowledged_record_is_reported_once_the_time_has_passed() -> None:
    watch = StallWatch(seconds=20)
    behind = {P0: (100, [101, 102]), P1: (50, [50, 51])}  # P1's record at the commit is done: it will move
    assert watch.stalled(0.0, behind) == []
    assert watch.stalled(19.0, behind) == []
    assert watch.stalled(20.0, behind) == [(P0, 100)]
    assert watch.stalled(21.0, behind) == [], "reported once, then timed afresh"
    assert watch.stalled(41.0, behind) == [(P0, 100)]


def test_a_commit_that_moves_or_catches_up_is_not_stalled() -> None:
    watch = StallWatch(seconds=20)
    assert watch.stalled(0.0, {P0: (100, [101])}) == []
    assert watch.stalled(15.0, {P0: (102, [103])}) == [], "it moved: the time starts again"
    assert watch.stalled(30.0, {P0: (102, [103])}) == []
    assert watch.stalled(31.0, {P0: (103, [])}) == [], "caught up"
    assert watch.stalled(60.0, {P0: (103, [104])}) == []
    watch.reset()
    assert watch.stalled(79.0, {P0: (103, [104])}) == [], "a rebalance starts every clock again"
