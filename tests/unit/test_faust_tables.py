"""The worker's table class: its changelog writes can be awaited; a changelog of 0 partitions is not a mismatch."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

import faust
import pytest
from faust.exceptions import PartitionsMismatch
from faust.types import FutureMessage

from streams.faust_tables import Table, changelogs_delivered

SOURCE = "loan.repayment.v1"


@dataclass
class FakeConsumer:
    """The one consumer call the check makes: partitions per topic from cached metadata."""

    partitions: dict[str, int | None] = field(default_factory=dict)

    def topic_partitions(self, topic: str) -> int | None:
        return self.partitions.get(topic)


def table_with(consumer: FakeConsumer) -> Table:
    app = faust.App("lwunit-tables", broker="kafka://127.0.0.1:1", Table=Table)
    app.consumer = cast(Any, consumer)
    table = app.Table("model-checkpoints", default=None, partitions=4)
    assert isinstance(table, Table)
    return table


def test_a_changelog_of_zero_partitions_is_checked_again_later_not_taken_for_a_mismatch() -> None:
    consumer = FakeConsumer()
    table = table_with(consumer)
    consumer.partitions = {SOURCE: 4, table.changelog_topic_name: 0}
    table._verify_source_topic_partitions(SOURCE)
    assert SOURCE not in table._verified_source_topics_for_partitions

    consumer.partitions[table.changelog_topic_name] = 4
    table._verify_source_topic_partitions(SOURCE)
    assert SOURCE in table._verified_source_topics_for_partitions


def test_a_real_mismatch_still_raises() -> None:
    consumer = FakeConsumer()
    table = table_with(consumer)
    consumer.partitions = {SOURCE: 4, table.changelog_topic_name: 8}
    with pytest.raises(PartitionsMismatch):
        table._verify_source_topic_partitions(SOURCE)


def test_faust_itself_raises_on_the_zero_this_class_tolerates() -> None:
    # The reason for the class: if Faust stops raising here, it can go.
    consumer = FakeConsumer()
    app = faust.App("lwunit-tables-plain", broker="kafka://127.0.0.1:1")
    app.consumer = cast(Any, consumer)
    table = cast(faust.Table[Any, Any], app.Table("model-checkpoints", default=None, partitions=4))
    consumer.partitions = {SOURCE: 4, table.changelog_topic_name: 0}
    with pytest.raises(PartitionsMismatch):
        table._verify_source_topic_partitions(SOURCE)


def pending_sends(monkeypatch: pytest.MonkeyPatch) -> list[FutureMessage]:
    """Faust's changelog send replaced by one that returns a future the test resolves (no producer)."""
    sent: list[FutureMessage] = []

    def send(self: Any, *args: Any, **kwargs: Any) -> FutureMessage:
        sent.append(FutureMessage(cast(Any, None)))
        return sent[-1]

    monkeypatch.setattr(faust.Table, "send_changelog", send)
    return sent


def test_changelog_delivered_waits_for_every_record_written_so_far(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        sent = pending_sends(monkeypatch)
        table = table_with(FakeConsumer())
        await table.changelog_delivered()  # nothing written: returns at once
        table.send_changelog(0, b"c_1", b"state 1")
        table.send_changelog(1, b"c_2", b"state 2")
        waiting = asyncio.ensure_future(changelogs_delivered(table))
        await asyncio.sleep(0.01)
        sent[0].set_result(cast(Any, "ack"))
        await asyncio.sleep(0.01)
        assert not waiting.done(), "returned with a record still unacknowledged"
        sent[1].set_result(cast(Any, "ack"))
        await asyncio.wait_for(waiting, 1)
        assert not table._undelivered, "acknowledged records are forgotten"

    asyncio.run(scenario())


def test_a_refused_changelog_record_raises_instead_of_being_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        sent = pending_sends(monkeypatch)
        table = table_with(FakeConsumer())
        table.send_changelog(0, b"c_1", b"state 1")
        sent[0].set_exception(RuntimeError("MessageSizeTooLarge"))
        with pytest.raises(RuntimeError, match="MessageSizeTooLarge"):
            await table.changelog_delivered()

    asyncio.run(scenario())


def test_a_table_of_another_class_is_refused_rather_than_not_waited_for() -> None:
    app = faust.App("lwunit-tables-other", broker="kafka://127.0.0.1:1")
    plain = app.Table("customer-state", default=None, partitions=4)
    with pytest.raises(TypeError, match="Table=Table"):
        asyncio.run(changelogs_delivered(plain))
