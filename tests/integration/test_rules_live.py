"""Rules as data on the real broker: a pushed rule set and allow-list change a running worker, without restart."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from detectors.engine import EngineConfig
from schemas import serde
from schemas.allowlist import AllowListEntry
from schemas.behavior import LoanApplication
from schemas.outputs import Alert
from streams.clickhouse.backend import open_backend
from streams.local.clickhouse_server import LocalClickHouseServer
from streams.rules_push import PushError, push_allowlist, push_rules, read_live_config, remove_allowlist
from tests.integration.harness import Pipeline, unique_settings, wait_for

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
BURST = "multi_application_burst"


@pytest.fixture
def pipeline(
    kafka_bootstrap: str, clickhouse_server: LocalClickHouseServer, chdb_dir: Path, tmp_path: Path
) -> Iterator[Pipeline]:
    database = f"lwtest_{uuid.uuid4().hex[:10]}"
    backend = open_backend(clickhouse_server.url, database, chdb_dir)
    p = Pipeline(unique_settings(kafka_bootstrap, tmp_path, clickhouse_server.url, database), backend)
    yield p
    p.close()
    backend.close()


def application(customer: str, n: int) -> tuple[bytes, bytes]:
    event = LoanApplication(
        event_id=f"{customer}-app-{n}", customer_id=customer, ts=T0 + timedelta(minutes=n), device_id=f"d_{customer}",
        ip="10.1.2.3", channel="app_android", product="cash_loan", application_id=f"a_{customer}_{n}",
        amount=5000.0, term_months=12,
    )
    return customer.encode(), serde.dumps(event)


def log_has(pipeline: Pipeline, text: str) -> bool:
    return pipeline.worker_log.exists() and text in pipeline.worker_log.read_text(errors="replace")


def burst_alerts(pipeline: Pipeline, expected: int) -> list[Alert]:
    values = pipeline.consume_all(pipeline.settings.topics.alerts, expected, timeout=60)
    alerts = [Alert.model_validate_json(v) for _, v in values]
    return [a for a in alerts if a.rule_id == BURST]


def test_pushed_rules_and_allowlist_apply_to_a_running_worker(pipeline: Pipeline) -> None:
    settings = pipeline.settings
    topic = settings.topics.behavior
    pipeline.start_worker()
    wait_for(lambda: log_has(pipeline, "rule set version 1 and 0 allow-list entries loaded"), 90,
             "the worker to load the (empty) rule topics", pipeline.worker_log)

    stricter = EngineConfig.model_validate(
        {"version": 2, "burst": {"version": 2, "thresholds": {"notice": 2, "attention": 4, "warning": 6}}}
    )
    assert push_rules(settings, stricter) == 0
    with pytest.raises(PushError, match="version 2 is not greater than version 2"):
        push_rules(settings, stricter)
    staff = AllowListEntry(kind="customer", value="c_staff", reason="app release test account", added_by="ops")
    assert push_allowlist(settings, [staff]) == 1
    live = read_live_config(settings)
    assert live.current == stricter and live.allowlist == {"customer:c_staff": staff}
    wait_for(lambda: log_has(pipeline, "rule set version 2 in force"), 30, "the worker to apply version 2",
             pipeline.worker_log)
    wait_for(lambda: log_has(pipeline, "allow-list entry customer:c_staff in force"), 30,
             "the worker to apply the allow-list", pipeline.worker_log)

    # Two applications: a notice under version 2 (the defaults need three). Ten from the allow-listed customer.
    first = [application("c_two", 0), application("c_two", 1), *(application("c_staff", n) for n in range(10))]
    pipeline.produce([(topic, key, value) for key, value in first])
    alerts = burst_alerts(pipeline, expected=1)
    assert [(a.customer_id, a.tier, a.rule_version) for a in alerts] == [("c_two", "notice", 2)]

    # Off the list, the staff account's next application is judged with the whole window: the ten before it
    # were counted while it was listed (the profile kept learning), only their alerts were withheld.
    remove_allowlist(settings, [("customer", "c_staff")])
    wait_for(lambda: log_has(pipeline, "allow-list entry customer:c_staff removed"), 30,
             "the worker to remove the entry", pipeline.worker_log)
    pipeline.produce([(topic, *application("c_staff", 10))])
    alerts = burst_alerts(pipeline, expected=2)
    staff_alerts = [a for a in alerts if a.customer_id == "c_staff"]
    assert [(a.tier, a.rule_version) for a in staff_alerts] == [("warning", 2)]
    assert staff_alerts[0].evidence_event_ids == [f"c_staff-app-{n}" for n in range(11)]
    pipeline.assert_worker_alive()
