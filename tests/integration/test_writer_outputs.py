"""Limit actions and profile snapshots reach their ClickHouse tables, once per id, on both engines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from schemas import serde
from schemas.outputs import LimitAction, ProfileSnapshot
from streams.clickhouse.backend import ClickHouseBackend
from tests.integration.harness import Pipeline, unique_settings, wait_for

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)


def test_limit_actions_and_snapshots_land_once_each(
    kafka_bootstrap: str, clickhouse: tuple[ClickHouseBackend, str | None], tmp_path: Path
) -> None:
    backend, url = clickhouse
    pipeline = Pipeline(unique_settings(kafka_bootstrap, tmp_path, url, backend.database), backend)
    actions = [
        LimitAction(
            action_id="a" * 32,
            customer_id="c_000001",
            action="reduce_limit",
            factor=0.5,
            grade="D",
            alert_ids=["b" * 32],
            ts=T0,
            expires_at=T0 + timedelta(days=3),
        ),
        LimitAction(action_id="c" * 32, customer_id="c_000002", action="freeze", grade="E", ts=T0),
    ]
    snapshot = ProfileSnapshot(
        customer_id="c_000001",
        ts=T0,
        features={"loan_applications_30m": 4.0, "dpd_max": 0.0},
        score=0.55,
        tier="notice",
        grade="C",
    )
    topics = pipeline.settings.topics
    try:
        pipeline.start_writer()
        # Each record twice, as after a replay: the tables must still show it once with FINAL.
        for _ in range(2):
            pipeline.produce([(topics.limit_actions, a.customer_id.encode(), serde.dumps(a)) for a in actions])
            pipeline.produce([(topics.profiles, b"c_000001", serde.dumps(snapshot))])
        # Wait on what the writer inserted, not on count(): a background merge may fold the copies at any time.
        writer = pipeline.writer
        assert writer is not None
        wait_for(lambda: writer.stats.rows.get("limit_actions", 0) >= 4, 60, "limit action rows inserted")
        wait_for(lambda: writer.stats.rows.get("profile_snapshots", 0) >= 2, 60, "snapshot rows inserted")
        pipeline.stop_writer()
        rows = pipeline.rows(
            "SELECT action_id, action, factor, grade, alert_ids, expires_at_ms FROM {db}.limit_actions FINAL "
            "ORDER BY action_id"
        )
        assert rows == [
            ("a" * 32, "reduce_limit", 0.5, "D", ["b" * 32], int((T0 + timedelta(days=3)).timestamp() * 1000)),
            ("c" * 32, "freeze", None, "E", [], 0),
        ]
        value = pipeline.scalar(
            "SELECT arrayElement(feature_values, indexOf(feature_names, 'loan_applications_30m')) "
            "FROM {db}.profile_snapshots FINAL WHERE customer_id = 'c_000001'"
        )
        assert value == 4.0
        assert pipeline.scalar("SELECT count() FROM {db}.profile_snapshots FINAL") == 1
    finally:
        pipeline.close()
