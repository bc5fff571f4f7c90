"""The Faust table class every worker table uses: Faust's own, plus a wait for its changelog and one fix.

**Changelog delivery.** A table write queues its changelog record in Faust's producer buffer and returns.
Faust commits source offsets on its own timer, and the buffer flush it does first gives up after 0.1 s without
progress. So under load an offset can be committed while the state it produced is still in the buffer. A worker
killed then, or handing its partitions over in a rebalance (the next owner restores the changelog before the late
record lands), loses those events for good: the fault suite's join/leave test showed a customer's state restored
without its last page views. :meth:`Table.changelog_delivered` waits until every record this table has written
so far is acknowledged by the broker. An agent awaits it before its batch is acknowledged, so every committed
offset has its state durable; a record the broker refuses raises there (the agent dies, the worker exits and is
restarted, the batch is replayed) instead of being logged and lost.

**Partition check after a broker restart.** Faust checks, at a table's first write from each source topic, that
the changelog has as many partitions as the source, reading both counts from the consumer's cached metadata. For
a moment after a broker restart that metadata lists topics with no partitions (their leaders are not elected
yet), so a table first written then sees a changelog of 0 partitions, raises ``PartitionsMismatch`` inside the
agent, and the agent dies while the worker process stays up and consumes nothing: the fault suite's broker
restart showed exactly that. A topic of 0 partitions does not exist in Kafka, so here a 0 means "not known yet":
the check is left for the next write, and a real mismatch (two different positive counts) still raises.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from faust.types import FutureMessage


class Table(faust.Table[Any, Any]):
    """``faust.Table`` whose changelog writes can be awaited, checking partitions once both counts are known."""

    _undelivered: set[FutureMessage] | None = None

    def send_changelog(self, *args: Any, **kwargs: Any) -> FutureMessage:
        """Faust's changelog write, remembered until the broker acknowledges it."""
        sent = super().send_changelog(*args, **kwargs)
        if self._undelivered is None:
            self._undelivered = set()
        self._undelivered.add(sent)
        sent.add_done_callback(self._undelivered.discard)
        return sent

    async def changelog_delivered(self) -> None:
        """Return once every changelog record written so far is acknowledged; raise the first send error."""
        if self._undelivered:
            await asyncio.gather(*list(self._undelivered))

    def _verify_source_topic_partitions(self, source_topic: str) -> None:
        consumer = self.app.consumer
        counts = (consumer.topic_partitions(source_topic), consumer.topic_partitions(self.changelog_topic_name))
        if 0 in counts:
            return  # metadata still loading: not verified, so not remembered as verified either
        super()._verify_source_topic_partitions(source_topic)


async def changelogs_delivered(*tables: Any) -> None:
    """Wait for the changelog records each table has written so far (tables of the app built with ``Table``)."""
    for table in tables:
        if not isinstance(table, Table):
            raise TypeError(f"{type(table).__name__} cannot wait for its changelog: build the app with Table=Table")
        await table.changelog_delivered()
