"""Reading a range of one partition directly, on the real broker: what the profile agent fills a gap with."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import Producer

from streams.admin import create_topics
from streams.partition_fetch import fetch_range
from tests.integration.harness import unique_settings

pytestmark = pytest.mark.integration


def test_a_range_is_read_in_order_with_keys_values_and_timestamps(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = unique_settings(kafka_bootstrap, tmp_path, None, "unused")
    create_topics(settings)
    topic = settings.topics.inquiry
    producer = Producer({**settings.confluent_config(), "enable.idempotence": True})
    for i in range(30):
        producer.produce(topic, key=b"k%d" % i, value=b"v%d" % i, partition=2, timestamp=1_700_000_000_000 + i)
    assert producer.flush(30) == 0

    fetched = fetch_range(settings, topic, 2, 5, 12)
    assert [f.message.offset for f in fetched] == list(range(5, 12))
    assert [f.value for f in fetched] == [b"v%d" % i for i in range(5, 12)]
    assert fetched[0].message.key == b"k5" and fetched[0].message.timestamp == 1_700_000_000.005
    assert (fetched[0].message.topic, fetched[0].message.partition) == (topic, 2)
    # A range running past the end stops at the end instead of waiting for records that are not there.
    assert [f.message.offset for f in fetch_range(settings, topic, 2, 28, 40, timeout=20)] == [28, 29]
