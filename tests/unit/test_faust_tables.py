"""The worker's table class: a changelog of 0 partitions (metadata still loading) is not a mismatch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import faust
import pytest
from faust.exceptions import PartitionsMismatch

from streams.faust_tables import Table

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
