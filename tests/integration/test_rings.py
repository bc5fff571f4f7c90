"""A fraud ring across partitions on the real broker: found, alerted once, every member raised, all in ClickHouse.

Eight customers on different input partitions share one device and one bank card (bound through
``profile_change``), none of them risky alone; the entity agent links them, the single ring agent joins the
links into one ring, publishes the ring alert and snapshot, and sends every member its ring score, which the
member's own engine step fuses: each member gets one fused alert naming the ring.
"""

from __future__ import annotations

import uuid
import zlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import Consumer

from schemas import serde
from schemas.behavior import Login, ProfileChange
from schemas.entities import EntityLink, RingSnapshot
from schemas.outputs import Alert
from streams.clickhouse.backend import open_backend
from streams.local.clickhouse_server import LocalClickHouseServer
from tests.integration.harness import Pipeline, unique_settings, wait_for

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
MEMBERS = [f"c_ring_{i:02d}" for i in range(8)]
BYSTANDERS = [f"c_solo_{i:02d}" for i in range(6)]



def _events() -> list[tuple[str, bytes]]:
    """Each member logs in on the shared device and binds the shared card; bystanders use their own devices."""
    out: list[tuple[str, bytes]] = []
    for i, customer in enumerate(MEMBERS):
        head = {"customer_id": customer, "device_id": "d_farm_01", "ip": f"10.7.{i}.20", "channel": "app_android"}
        at = T0 + timedelta(minutes=3 * i)
        out.append((customer, serde.dumps(Login(event_id=f"{customer}-l", ts=at, method="sms", success=True,
                                                **head))))
        out.append((customer, serde.dumps(ProfileChange(event_id=f"{customer}-c", ts=at + timedelta(minutes=1),
                                                        field="bank_card", new_value_hash="bc_farm_01", **head))))
    for i, customer in enumerate(BYSTANDERS):
        head = {"customer_id": customer, "device_id": f"d_{customer}", "ip": f"10.8.{i}.20", "channel": "h5"}
        out.append((customer, serde.dumps(Login(event_id=f"{customer}-l", ts=T0 + timedelta(minutes=i),
                                                method="password", success=True, **head))))
    return out


def test_a_ring_across_partitions_is_found_and_every_member_alerted_exactly_once(pipeline: Pipeline) -> None:
    settings = pipeline.settings
    partitions = {zlib.crc32(c.encode()) % settings.partitions for c in MEMBERS}
    assert len(partitions) > 1  # a rough check only: Kafka hashes with murmur2, spread is what matters
    pipeline.start_writer()
    pipeline.start_worker()
    pipeline.produce([(settings.topics.behavior, c.encode(), v) for c, v in _events()])

    # One ring alert naming all eight, then one fused alert per member naming the ring.
    wait_for(lambda: _member_alerts(pipeline, quick=True) >= len(MEMBERS), 150, "a fused alert for every member",
             pipeline.worker_log)
    alerts = [Alert.model_validate_json(v) for _, v in pipeline.consume_all(settings.topics.alerts, expected=9)]
    ring_alerts = [a for a in alerts if a.ring is not None]
    assert ring_alerts, "no ring alert"
    ring_id = ring_alerts[-1].ring.ring_id if ring_alerts[-1].ring else ""
    assert set(ring_alerts[-1].ring.members if ring_alerts[-1].ring else ()) == set(MEMBERS)
    shared = {(e.kind, e.value) for e in ring_alerts[-1].ring.entities} if ring_alerts[-1].ring else set()
    assert {("device", "d_farm_01"), ("bank_card", "bc_farm_01")} <= shared
    fused = [a for a in alerts if a.rule_id == "fused_risk"]
    by_customer = Counter(a.customer_id for a in fused)
    assert set(by_customer) == set(MEMBERS), "only ring members are raised, every one of them"
    for alert in fused:
        assert any(r.code == "ring_member" and ring_id in r.message for r in alert.reasons)
    assert len({a.alert_id for a in alerts}) == len(alerts), "an alert was published twice"

    links = [EntityLink.model_validate_json(v) for _, v in pipeline.consume_all(settings.topics.links, expected=1)]
    assert {link.customer_a for link in links} | {link.customer_b for link in links} == set(MEMBERS)
    snapshots = [RingSnapshot.model_validate_json(v) for _, v in pipeline.consume_all(settings.topics.rings, 1)]
    assert snapshots[-1].ring_id == ring_id and snapshots[-1].size == len(MEMBERS)

    ids = {a.alert_id for a in alerts}
    wait_for(lambda: pipeline.scalar("SELECT uniqExact(alert_id) FROM {db}.alerts") >= len(ids), 90,
             "every alert in ClickHouse", pipeline.worker_log)
    pipeline.stop_writer()
    rows = pipeline.rows("SELECT alert_id, count() FROM {db}.alerts FINAL GROUP BY alert_id")
    assert {r[0] for r in rows} == ids and all(r[1] == 1 for r in rows)
    pipeline.assert_worker_alive()


def _member_alerts(pipeline: Pipeline, quick: bool) -> int:
    values = pipeline.consume_all(pipeline.settings.topics.alerts, expected=0, timeout=5 if quick else 60)
    alerts = [Alert.model_validate_json(v) for _, v in values]
    return len({a.customer_id for a in alerts if a.rule_id == "fused_risk"})



def test_entities_unused_for_the_retention_are_deleted(
    kafka_bootstrap: str, clickhouse_server: LocalClickHouseServer, chdb_dir: Path, tmp_path: Path
) -> None:
    database = f"lwtest_{uuid.uuid4().hex[:10]}"
    backend = open_backend(clickhouse_server.url, database, chdb_dir)
    settings = unique_settings(kafka_bootstrap, tmp_path, clickhouse_server.url, database, entity_sweep_seconds=1.0)
    pipeline = Pipeline(settings, backend)
    try:
        old = T0 - timedelta(days=31)
        head = {"customer_id": "c_gone", "device_id": "d_gone", "ip": "10.9.9.9", "channel": "h5"}
        events = [Login(event_id="gone-l", ts=old, method="sms", success=True, **head)]
        events += [Login(event_id=f"now-{i}", ts=T0 + timedelta(seconds=i), method="sms", success=True,
                         customer_id=f"c_now_{i}", device_id=f"d_now_{i}", ip="10.9.8.1", channel="h5")
                   for i in range(3)]
        pipeline.start_worker()
        pipeline.produce([(settings.topics.behavior, e.customer_id.encode(), serde.dumps(e)) for e in events[:1]])
        changelog = f"{settings.app_id}-entity-state-changelog"
        wait_for(lambda: _has(pipeline, changelog, b"device:d_gone", deleted=False), 90, "the old entity's state",
                 pipeline.worker_log)
        for e in events[1:]:  # a month later, in later batches: the sweep sees event time move on
            pipeline.produce([(settings.topics.behavior, e.customer_id.encode(), serde.dumps(e))])
        wait_for(lambda: _has(pipeline, changelog, b"device:d_gone", deleted=True), 90,
                 "a tombstone for the entity unused for 30 days", pipeline.worker_log)
        assert not _has(pipeline, changelog, b"device:d_now_0", deleted=True), "a live entity was deleted"
        pipeline.assert_worker_alive()
    finally:
        pipeline.close()
        backend.close()


def _has(pipeline: Pipeline, topic: str, key: bytes, deleted: bool) -> bool:
    consumer = Consumer({**pipeline.settings.confluent_config(), "group.id": f"lwtest-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    found = False
    try:
        for _ in range(20):
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            if message.key() == key and (message.value() is None) == deleted:
                found = True
    finally:
        consumer.close()
    return found
