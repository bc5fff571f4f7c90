"""Faust's Kafka consumer, made to commit a partition only past records that were all processed.

Faust commits, per partition, the run of consecutive acknowledged offsets that follows the committed one. Its
check lets that run start one record late (``min(acked) - committed > 1`` refuses two missing records, not one),
so a single record never acknowledged is committed over. That record exists: in a rebalance Faust empties the
agents' queues, and a record the fetcher was handing over at that moment can be processed after the emptying
while the one before it was dropped. The fault suite's join/leave test lost a page view exactly so (the record
at the committed offset dropped, the next one processed, the commit moved past both). Here the record at the
committed offset must itself be acknowledged before the commit moves, so a dropped record is read again from
the committed offset by whoever owns the partition after the rebalance (and a redelivered record changes
nothing: the engine recognises it by its offset). Should the commit still stand behind such a record after
the rebalance (the fault suite saw one), :func:`install_stall_repair` reads the partition again from it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import faust
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import TP

log = logging.getLogger(__name__)

#: How long a partition's commit may stand behind an unacknowledged record before it is read again.
STALL_SECONDS = 20.0
#: How long a paused partition waits before it is moved back (covers a fetch already under way).
FETCH_WAIT_SECONDS = 1.5


class InOrderCommitConsumer(AIOKafkaConsumer):
    """Faust's aiokafka consumer; a partition's commit never passes a record that was not acknowledged."""

    def _new_offset(self, tp: TP) -> int | None:
        committed = self._committed_offset.get(tp)
        acked = self._acked.get(tp)
        if committed is not None and acked and min(acked) > committed:
            return None  # the record at the committed offset is not done (in flight, or dropped and re-read later)
        return super()._new_offset(tp)


def use_in_order_commits(app: faust.App) -> None:
    """Make ``app`` build its consumer from :class:`InOrderCommitConsumer` (before the consumer exists)."""
    # On the instance, not the transport class: that class is shared by every app in the process.
    app.transport.Consumer = InOrderCommitConsumer  # type: ignore[misc]


@dataclass
class StallWatch:
    """Which partitions' commits have stood still behind an unacknowledged record for ``seconds`` or more.

    A record at the committed offset that is in flight is acknowledged within a batch's time; one that Faust
    dropped in a rebalance never is, and every later record of the partition is then processed but never
    committed. Fed the bookkeeping at each check; pure (the caller passes the clock).
    """

    seconds: float
    since: dict[TP, tuple[int, float]] = field(default_factory=dict)

    def stalled(self, now: float, partitions: Mapping[TP, tuple[int | None, list[int]]]) -> list[tuple[TP, int]]:
        """``partitions``: committed offset and acknowledged offsets per partition; returns (partition, offset)."""
        out = []
        for tp, (committed, acked) in partitions.items():
            if committed is None or not acked or min(acked) <= committed:
                self.since.pop(tp, None)
                continue
            first = self.since.get(tp)
            if first is None or first[0] != committed:
                self.since[tp] = (committed, now)
            elif now - first[1] >= self.seconds:
                out.append((tp, committed))
                del self.since[tp]
        return out

    def reset(self) -> None:
        """Forget everything (a rebalance moves partitions and seeks them to their committed offsets anyway)."""
        self.since.clear()


def install_stall_repair(app: faust.App, topics: list[str], seconds: float = STALL_SECONDS) -> StallWatch:
    """Every few seconds, read a stalled input partition again from its committed offset (see :class:`StallWatch`).

    The partition is paused while it is moved back, so records already fetched from further on are not handed
    over after the move (Faust would take them as the new reading position and drop the re-read ones). Reading
    again is safe: the engine recognises records it has applied by their offsets.
    """
    watch = StallWatch(seconds)
    wanted = set(topics)

    @app.timer(interval=max(1.0, seconds / 3))  # type: ignore[untyped-decorator]
    async def repair_stalled_commits() -> None:
        consumer = app.consumer
        if app.rebalancing or not isinstance(consumer, InOrderCommitConsumer):
            watch.reset()
            return
        books = {
            tp: (consumer._committed_offset.get(tp), list(consumer._acked.get(tp, ())))
            for tp in consumer.assignment()
            if tp.topic in wanted
        }
        for tp, offset in watch.stalled(time.monotonic(), books):
            log.warning(
                "%s[%d]: nothing committed past offset %d for %.0f s while later records are done; the record there "
                "was dropped: reading the partition again from it", tp.topic, tp.partition, offset, seconds,
            )
            consumer.pause_partitions([tp])
            await asyncio.sleep(FETCH_WAIT_SECONDS)  # a fetch already under way returns within Faust's 1 s wait
            await consumer.seek(tp, offset)
            consumer.resume_partitions([tp])

    return watch
