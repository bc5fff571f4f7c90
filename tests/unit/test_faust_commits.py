"""The worker's consumer never commits over a record that was not acknowledged; Faust's own does, by one."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, cast

import pytest
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import TP
from intervaltree import IntervalTree  # type: ignore[import-untyped]  # Faust's own dependency, untyped

from streams.faust_commits import InOrderCommitConsumer

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
