"""The documented limit-action consumer on the real broker: duplicates are applied once, offsets are committed."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from examples.limit_actions_consumer import LimitBook, consume
from schemas import serde
from schemas.outputs import LimitAction

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def actions(n: int) -> list[LimitAction]:
    kinds = ["freeze", "review", "reduce_limit", "restore"]
    return [
        LimitAction(
            action_id=f"act_{i:04d}", customer_id=f"c_{i % 7:06d}", action=kinds[i % 4],
            factor=0.5 if kinds[i % 4] == "reduce_limit" else None, grade="D", ts=T0 + timedelta(minutes=i),
        )
        for i in range(n)
    ]


def new_consumer(bootstrap: str, group: str) -> Consumer:
    return Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
         "enable.auto.commit": False}
    )


def test_each_action_is_applied_once_despite_duplicates(kafka_bootstrap: str) -> None:
    topic = f"risk.limit-actions.v1.{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(30)

    sent = actions(40)
    # At-least-once delivery as a worker restart produces it: every action once, then a replay of the last half.
    records = [*sent, *sent[20:]]
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "partitioner": "murmur2_random"})
    for action in records:
        producer.produce(topic, key=action.customer_id.encode(), value=serde.dumps(action))
    assert producer.flush(30) == 0

    group = f"limit-service-{uuid.uuid4().hex[:8]}"
    book = LimitBook()
    consumer = new_consumer(kafka_bootstrap, group)
    consumer.subscribe([topic])
    deadline = time.monotonic() + 60
    try:
        consume(consumer, book, stop=lambda: book.handled >= len(records) or time.monotonic() > deadline)
    finally:
        consumer.close()

    assert book.handled == len(records)
    assert book.changes == len(sent)
    assert sorted(book.applied) == sorted(a.action_id for a in sent)
    assert all(book.applied[a.action_id] == a for a in sent)

    # Offsets were committed after applying: the same group, restarted, has nothing left to read.
    again = LimitBook()
    consumer = new_consumer(kafka_bootstrap, group)
    consumer.subscribe([topic])
    quiet_until = time.monotonic() + 8
    try:
        consume(consumer, again, stop=lambda: time.monotonic() > quiet_until)
    finally:
        consumer.close()
    assert again.handled == 0
