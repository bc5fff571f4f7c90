"""The analyst views' renderer: one statement per object, in an order where each reads only what exists."""

from __future__ import annotations

import re

import pytest

from schemas.clickhouse.analytics import ANALYTICS, DAY_ZONE, backfill_sql, quote_string, render_analytics
from schemas.clickhouse.ddl import TABLES, Features

CREATE = {"table": "CREATE TABLE IF NOT EXISTS", "materialized_view": "CREATE MATERIALIZED VIEW IF NOT EXISTS",
          "view": "CREATE VIEW IF NOT EXISTS"}


@pytest.mark.parametrize("features", [Features.none(), Features.all()], ids=["old", "modern"])
def test_every_object_is_created_once_and_reads_only_earlier_objects(features: Features) -> None:
    rendered = render_analytics("lw", features)
    assert [name for name, _ in rendered] == [o.name for o in ANALYTICS]
    known = set(TABLES)
    for obj, (name, statement) in zip(ANALYTICS, rendered, strict=True):
        assert statement.startswith(f"{CREATE[obj.kind]} `lw`.{name}"), name
        assert "$" not in statement and "ON CLUSTER" not in statement and "_local" not in statement
        read = set(re.findall(r"`lw`\.(\w+)", statement)) - {name}
        assert read <= known, f"{name} reads {read - known} before it exists"
        known.add(name)


def test_views_never_rely_on_final_and_bucket_days_in_the_lenders_zone() -> None:
    rendered = dict(render_analytics("lw", Features.none()))
    for name, statement in rendered.items():
        assert "FINAL" not in statement, name
        assert "toDate(" not in statement or f"'{DAY_ZONE}'" in statement, name


def test_the_materialized_view_keeps_sets_of_ids_so_copies_cannot_inflate_it() -> None:
    rendered = dict(render_analytics("lw", Features.all()))
    assert "AggregateFunction(uniqExact, String)" in rendered["alerts_daily_state"]
    assert "ENGINE = AggregatingMergeTree()" in rendered["alerts_daily_state"]
    assert "uniqExactState(alert_id)" in rendered["alerts_daily_mv"]
    assert "count()" not in rendered["alerts_daily_mv"] and "sum(" not in rendered["alerts_daily_mv"]
    assert "uniqExactMerge(alerts)" in rendered["alerts_daily"]


def test_backfill_inserts_the_views_select_into_its_target() -> None:
    mv = dict(render_analytics("lw", Features.all()))["alerts_daily_mv"]
    backfill = backfill_sql(mv)
    assert backfill.startswith("INSERT INTO `lw`.alerts_daily_state\nSELECT\n")
    assert backfill.endswith(mv.split("\nAS ", 1)[1])
    with pytest.raises(ValueError, match="MATERIALIZED VIEW"):
        backfill_sql("CREATE VIEW x AS SELECT 1")


def test_cluster_rendering_uses_local_tables_only_in_the_materialized_view() -> None:
    rendered = dict(render_analytics("lw", Features.all(), cluster="main"))
    for name, statement in rendered.items():
        assert " ON CLUSTER 'main'" in statement.splitlines()[0] or name == "alerts_daily_state", name
    assert "FROM `lw`.alerts_local\n" in rendered["alerts_daily_mv"]
    assert "TO `lw`.alerts_daily_state_local\n" in rendered["alerts_daily_mv"]
    assert "_local" not in rendered["alerts_daily"], "views read the Distributed tables"


def test_string_literals_are_escaped() -> None:
    assert quote_string("{cluster}") == "'{cluster}'"
    assert quote_string("it's\\") == "'it\\'s\\\\'"
