"""Faust's Kafka consumer, made to commit a partition only past records that were all processed.

Faust commits, per partition, the run of consecutive acknowledged offsets that follows the committed one. Its
check lets that run start one record late (``min(acked) - committed > 1`` refuses two missing records, not one),
so a single record never acknowledged is committed over. That record exists: in a rebalance Faust empties the
agents' queues, and a record the fetcher was handing over at that moment can be processed after the emptying
while the one before it was dropped. The fault suite's join/leave test lost a page view exactly so (the record
at the committed offset dropped, the next one processed, the commit moved past both). Here the record at the
committed offset must itself be acknowledged before the commit moves, so a dropped record is read again from
the committed offset by whoever owns the partition after the rebalance (and a redelivered record changes
nothing: the engine recognises it by its offset).
"""

from __future__ import annotations

import faust
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import TP


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
