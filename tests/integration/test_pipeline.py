"""Event → alert on the topic and exactly one row in ClickHouse; malformed input; a worker killed mid-stream.

Real Apache Kafka broker, the worker as its own process, ClickHouse as Debian's 18.16 server (native protocol)
and as embedded chdb.
"""

from __future__ import annotations

import base64
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from schemas import serde
from schemas.behavior import LoanApplication, PageView
from schemas.outputs import Alert, DeadLetter
from streams.simulate.traffic import SimConfig, SimRecord, Traffic
from tests.integration.expected import expected_alerts
from tests.integration.harness import Pipeline, wait_for

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
BURST = "multi_application_burst"



def application(customer: str, n: int, minute: float, product: str = "cash_loan") -> bytes:
    return serde.dumps(
        LoanApplication(
            event_id=f"{customer}-app-{n}",
            customer_id=customer,
            ts=T0 + timedelta(minutes=minute),
            device_id=f"d_{customer}",
            ip="10.1.2.3",
            channel="app_android",
            product=product,
            application_id=f"a_{customer}_{n}",
            amount=5000.0,
            term_months=12,
        )
    )


def page_view(customer: str, n: int, minute: float) -> bytes:
    return serde.dumps(
        PageView(
            event_id=f"{customer}-pv-{n}",
            customer_id=customer,
            ts=T0 + timedelta(minutes=minute),
            device_id=f"d_{customer}",
            ip="10.1.2.3",
            channel="h5",
            page="home",
        )
    )


def test_burst_becomes_one_alert_per_tier_on_topic_and_one_row_each_in_clickhouse(pipeline: Pipeline) -> None:
    topic = pipeline.settings.topics.behavior
    values = [application("c_000001", i, i * 2, product=("cash_loan", "consumer_loan")[i % 2]) for i in range(5)]
    values += [page_view("c_000002", i, i) for i in range(20)]
    values += [application("c_000003", i, i * 20) for i in range(3)]  # spread out: no burst
    expected = expected_alerts(values)
    assert sorted(a.tier for a in expected.values()) == ["attention", "notice"]

    pipeline.start_writer()
    pipeline.start_worker()
    pipeline.produce((topic, serde.loads(v)["customer_id"].encode(), v) for v in values)

    on_topic = pipeline.consume_all(pipeline.settings.topics.alerts, expected=len(expected), timeout=120)
    alerts = [Alert.model_validate_json(v) for _, v in on_topic]
    assert Counter(a.alert_id for a in alerts) == Counter(list(expected)), "each expected alert exactly once"
    assert {a.alert_id: a for a in alerts} == expected
    assert all(key == b"c_000001" for key, _ in on_topic)

    wait_for(
        lambda: pipeline.scalar("SELECT count() FROM {db}.alerts FINAL") >= len(expected),
        60,
        "alerts in ClickHouse",
        pipeline.worker_log,
    )
    wait_for(
        lambda: pipeline.scalar("SELECT count() FROM {db}.events FINAL") >= len(values),
        60,
        "events in ClickHouse",
        pipeline.worker_log,
    )
    pipeline.stop_writer()
    rows = pipeline.rows(
        "SELECT alert_id, tier, tier_label, rule_version, count() FROM {db}.alerts FINAL "
        "GROUP BY alert_id, tier, tier_label, rule_version ORDER BY tier"
    )
    assert {(r[0], r[1], r[2], r[3], r[4]) for r in rows} == {
        (a.alert_id, a.tier, a.tier_label, a.rule_version, 1) for a in expected.values()
    }
    # Without FINAL too: nothing was replayed, so nothing is there twice even before merges.
    assert pipeline.scalar("SELECT count() FROM {db}.alerts") == len(expected)
    assert pipeline.scalar("SELECT count() FROM {db}.events") == len(values)
    assert pipeline.scalar("SELECT count() FROM {db}.dead_letters") == 0
    pipeline.assert_worker_alive()


def _dead_letters(pipeline: Pipeline, expected: int) -> list[DeadLetter]:
    raw = pipeline.consume_all(pipeline.settings.topics.deadletter, expected=expected, timeout=180)
    return [DeadLetter.model_validate_json(v) for _, v in raw]


def _traffic(pipeline: Pipeline, **config: object) -> Traffic:
    topics = pipeline.settings.topics
    return Traffic(
        SimConfig(
            start=T0,
            behavior_topic=topics.behavior,
            repayment_topic=topics.repayment,
            inquiry_topic=topics.inquiry,
            **config,
        )
    )


def test_malformed_messages_all_dead_lettered_and_valid_traffic_still_processed(pipeline: Pipeline) -> None:
    records = list(_traffic(pipeline, customers=1000, hours=4.0, burst_share=0.05, malformed_share=0.5).records())
    # Near Kafka's 1 MiB record limit: its dead letter (base64) is bigger than the default limit.
    huge = SimRecord(pipeline.settings.topics.behavior, b"c_000001", b'{"x":"' + b"A" * 900_000 + b'"}', 0, "malformed")
    records.insert(len(records) // 2, huge)
    malformed = [r for r in records if r.label == "malformed"]
    valid = [r for r in records if r.label != "malformed"]
    assert len(malformed) >= 1000, "the test needs at least 1,000 malformed messages"
    expected = expected_alerts(r.value for r in valid if r.topic == pipeline.settings.topics.behavior)
    assert expected, "the traffic should contain bursts"

    pipeline.start_writer()
    pipeline.start_worker()
    pipeline.produce((r.topic, r.key, r.value) for r in records)

    letters = _dead_letters(pipeline, expected=len(malformed))
    # Every malformed message exactly once, with its original bytes, and nothing valid among them.
    assert Counter(base64.b64decode(d.payload_b64) for d in letters) == Counter(r.value for r in malformed)
    assert all(d.reason and d.error_kind != "processing" for d in letters)
    assert {d.source_topic for d in letters} == {pipeline.settings.topics.behavior}
    kinds = Counter(d.error_kind for d in letters)
    assert {"not_json", "invalid_utf8", "validation", "unknown_event_type", "too_large"} <= set(kinds)

    alerts = [
        Alert.model_validate_json(v) for _, v in pipeline.consume_all(pipeline.settings.topics.alerts, len(expected))
    ]
    assert {a.alert_id for a in alerts if a.rule_id == BURST} == set(expected)
    distinct_alerts = len({a.alert_id for a in alerts})

    wait_for(
        lambda: pipeline.scalar("SELECT count() FROM {db}.dead_letters FINAL") >= len(malformed),
        120,
        "dead letters in ClickHouse",
        pipeline.worker_log,
    )
    wait_for(
        lambda: pipeline.scalar("SELECT count() FROM {db}.events FINAL") >= len(valid),
        120,
        "events in ClickHouse",
        pipeline.worker_log,
    )
    wait_for(
        lambda: pipeline.scalar("SELECT count() FROM {db}.alerts FINAL") >= distinct_alerts, 60, "alerts in ClickHouse"
    )
    pipeline.stop_writer()
    assert pipeline.scalar("SELECT count() FROM {db}.dead_letters FINAL") == len(malformed)
    assert pipeline.scalar("SELECT count() FROM {db}.events FINAL") == len(valid)
    assert pipeline.scalar("SELECT count() FROM {db}.alerts FINAL") == distinct_alerts
    assert pipeline.scalar("SELECT countIf(reason = '') FROM {db}.dead_letters") == 0
    pipeline.assert_worker_alive()


def test_worker_killed_mid_stream_loses_no_alert_and_doubles_none_in_clickhouse(pipeline: Pipeline) -> None:
    records = list(_traffic(pipeline, customers=1500, hours=4.0, burst_share=0.08).records())
    behavior = [r for r in records if r.topic == pipeline.settings.topics.behavior]
    expected = expected_alerts(r.value for r in behavior)
    assert len(expected) >= 100

    pipeline.start_writer()
    pipeline.start_worker()
    # Traffic flows at a steady rate while the worker is killed with SIGKILL (no clean shutdown, no final
    # commit) and started again: events keep arriving before, during and after the gap.
    producer = threading.Thread(
        target=pipeline.produce, args=(((r.topic, r.key, r.value) for r in records),), kwargs={"rate": 400.0}
    )
    producer.start()
    wait_for(
        lambda: pipeline.scalar("SELECT count() FROM {db}.alerts") >= 10,
        120,
        "first alerts",
        pipeline.worker_log,
    )
    pipeline.kill_worker()
    time.sleep(3)
    pipeline.start_worker()
    producer.join(300)
    assert not producer.is_alive()

    on_topic = [
        Alert.model_validate_json(v)
        for _, v in pipeline.consume_all(pipeline.settings.topics.alerts, expected=len(expected), timeout=240)
    ]
    seen = {a.alert_id for a in on_topic if a.rule_id == BURST}
    assert seen == set(expected), f"missing {len(set(expected) - seen)}, unexpected {len(seen - set(expected))}"
    all_ids = {a.alert_id for a in on_topic}
    assert len(all_ids) > len(seen), "the other scenarios raise fused alerts too"
    wait_for(
        lambda: pipeline.scalar("SELECT uniqExact(alert_id) FROM {db}.alerts") >= len(all_ids),
        120,
        "every alert in ClickHouse",
        pipeline.worker_log,
    )
    pipeline.stop_writer()
    rows = pipeline.rows("SELECT alert_id, count() FROM {db}.alerts FINAL GROUP BY alert_id")
    assert {r[0] for r in rows} == all_ids
    assert all(r[1] == 1 for r in rows), "an alert is doubled after FINAL"
    pipeline.assert_worker_alive()

    # State stays co-partitioned with its input even though the agent works on mixed-partition batches: every
    # changelog record of a customer is in the partition that customer's events arrive on.
    inputs: dict[bytes | None, set[int]] = {}
    topics = pipeline.settings.topics
    for topic in (topics.behavior, topics.repayment, topics.inquiry):
        sent = sum(1 for r in records if r.topic == topic)
        for part, key, _ in pipeline.consume_with_partitions(topic, expected=sent):
            inputs.setdefault(key, set()).add(part)
    assert all(len(parts) == 1 for parts in inputs.values()), "a customer's events arrived on several partitions"
    changelog = f"{pipeline.settings.app_id}-customer-state-changelog"
    writes = pipeline.consume_with_partitions(changelog, expected=1, timeout=60)
    assert writes, "the state table wrote nothing"
    misplaced = [(key, part) for part, key, _ in writes if inputs.get(key) != {part}]
    assert not misplaced, f"{len(misplaced)} state records in another partition than their customer's events"
