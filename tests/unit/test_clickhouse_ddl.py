"""The DDL renderer: plain types for ClickHouse 18.16, DateTime64/TTL/codecs/LowCardinality for newer."""

from __future__ import annotations

import re

import pytest

from schemas.clickhouse.ddl import TABLES, Features, render_ddl
from streams.clickhouse.backend import parse_version

MODERN_ONLY = ("DateTime64", "TTL", "CODEC", "LowCardinality")


def test_versions_map_to_features() -> None:
    assert Features.for_version(parse_version("18.16.1")) == Features.none()
    assert Features.for_version(parse_version("26.9.2.1")) == Features.all()
    assert Features.for_version((20, 1, 2)) == Features.all()
    partial = Features.for_version((19, 6, 1))
    assert (partial.ttl, partial.codecs, partial.low_cardinality) == (True, True, True)
    assert not partial.datetime64


def test_old_engines_get_plain_types_only() -> None:
    statements = render_ddl("lw", Features.none())
    text = "\n".join(statements)
    for keyword in MODERN_ONLY:
        assert keyword not in text, keyword
    # events, alerts, dead_letters, limit_actions, profile_snapshots
    assert text.count("DateTime('UTC')") == 2 + 3 + 1 + 2 + 2


def test_modern_engines_get_every_feature() -> None:
    statements = dict(zip(("database", *TABLES), render_ddl("lw", Features.all()), strict=True))
    events, alerts, dead_letters = statements["events"], statements["alerts"], statements["dead_letters"]
    assert "ts DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1))" in events
    assert "ts_ms Int64 CODEC(Delta, ZSTD(1))" in events
    assert "event_type LowCardinality(String)" in events
    assert "payload String CODEC(ZSTD(3))" in events
    assert events.rstrip().endswith("TTL toDateTime(ts) + INTERVAL 400 DAY")
    assert "tier LowCardinality(String)" in alerts
    assert "first_seen DateTime64(3, 'UTC')" in alerts
    assert "received_at DateTime64(3, 'UTC')" in dead_letters
    assert "TTL" not in alerts and "TTL" not in dead_letters


@pytest.mark.parametrize("features", [Features.none(), Features.all()], ids=["old", "modern"])
def test_every_table_is_idempotent_by_its_id(features: Features) -> None:
    database, *tables = render_ddl("lw_test", features)
    assert database == "CREATE DATABASE IF NOT EXISTS `lw_test`"
    keys = {"events": ("ts", "event_id"), "alerts": ("first_seen", "alert_id"),
            "dead_letters": ("received_at", "dead_letter_id"), "limit_actions": ("ts", "action_id"),
            "profile_snapshots": ("ts", "ts_ms")}
    for name, statement in zip(TABLES, tables, strict=True):
        assert statement.startswith(f"CREATE TABLE IF NOT EXISTS `lw_test`.{name}\n")
        assert "ENGINE = ReplacingMergeTree(" in statement
        partition_column, id_column = keys[name]
        assert f"PARTITION BY toYYYYMM({partition_column})" in statement
        order_by = re.search(r"ORDER BY \((.*)\)", statement)
        assert order_by is not None and id_column in order_by.group(1).split(", ")
        assert "$" not in statement and "--" not in statement, "placeholders and comments are rendered away"


def test_alerts_keep_the_newest_emission() -> None:
    (alerts,) = [s for s in render_ddl("lw", Features.none()) if ".alerts\n" in s]
    assert "ReplacingMergeTree(last_seen_ms)" in alerts


def test_database_name_must_be_a_plain_identifier() -> None:
    with pytest.raises(ValueError, match="identifier"):
        render_ddl("lw`; DROP DATABASE x; --", Features.all())
