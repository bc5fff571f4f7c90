"""The DDL renderer: plain types for ClickHouse 18.16, DateTime64/TTL/codecs/LowCardinality for newer."""

from __future__ import annotations

import re

import pytest

from schemas.clickhouse.ddl import TABLES, Features, render_ddl
from streams.clickhouse.backend import parse_version
from streams.clickhouse.rows import CUSTOMER_LINK_COLUMNS, LINK_COLUMNS, RING_COLUMNS, RING_MEMBER_COLUMNS

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
    # events, alerts, dead_letters, limit_actions, profile_snapshots, links, customer_links, rings, ring_members
    assert text.count("DateTime('UTC')") == 2 + 3 + 1 + 2 + 2 + 3 + 3 + 3 + 2


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
    # (partition column or None for one partition, id column)
    keys = {"events": ("ts", "event_id"), "alerts": ("first_seen", "alert_id"),
            "dead_letters": ("received_at", "dead_letter_id"), "limit_actions": ("ts", "action_id"),
            "profile_snapshots": ("ts", "ts_ms"), "links": (None, "link_id"), "customer_links": (None, "link_id"),
            "rings": ("ts", "ts_ms"), "ring_members": ("ts", "ts_ms")}
    assert set(keys) == set(TABLES)
    for name, statement in zip(TABLES, tables, strict=True):
        assert statement.startswith(f"CREATE TABLE IF NOT EXISTS `lw_test`.{name}\n")
        assert "ENGINE = ReplacingMergeTree(" in statement
        partition_column, id_column = keys[name]
        if partition_column is None:
            assert "PARTITION BY" not in statement
        else:
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


def _table(statements: list[str], name: str) -> str:
    (statement,) = [s for s in statements if s.startswith(f"CREATE TABLE IF NOT EXISTS `lw`.{name}\n")]
    return statement


def _order_by(statement: str) -> list[str]:
    match = re.search(r"^ORDER BY \((.*)\)$", statement, re.MULTILINE)
    assert match is not None
    return match.group(1).split(", ")


@pytest.mark.parametrize("features", [Features.none(), Features.all()], ids=["old", "modern"])
def test_link_tables_keep_the_latest_refresh_and_serve_both_sides(features: Features) -> None:
    statements = render_ddl("lw", features)
    links, sides = _table(statements, "links"), _table(statements, "customer_links")
    for statement in (links, sides):
        # A refresh (same link_id, later last_seen) replaces the row, whatever order the copies arrive in.
        assert "ENGINE = ReplacingMergeTree(last_seen_ms)" in statement
        assert "last_seen_ms Int64" in statement and "first_seen_ms Int64" in statement
        assert _order_by(statement)[-1] == "link_id"
        # A re-formed link keeps its id but not its first_seen: one partition, so every copy can be merged.
        assert "PARTITION BY" not in statement
    assert _order_by(links) == ["entity_kind", "entity_value", "link_id"]
    assert _order_by(sides) == ["customer_id", "link_id"], "a customer's neighbourhood is one key range"
    assert "refresh UInt8" in links and "payload String" in links
    assert "neighbour_id String" in sides and "payload" not in sides
    zone = "DateTime64(3, 'UTC')" if features.datetime64 else "DateTime('UTC')"
    for column in ("first_seen", "last_seen", "ingested_at"):
        assert f"{column} {zone}" in links and f"{column} {zone}" in sides


@pytest.mark.parametrize("features", [Features.none(), Features.all()], ids=["old", "modern"])
def test_ring_tables_keep_one_row_per_snapshot_and_member(features: Features) -> None:
    statements = render_ddl("lw", features)
    rings, members = _table(statements, "rings"), _table(statements, "ring_members")
    assert _order_by(rings) == ["ring_id", "ts_ms"]
    assert _order_by(members) == ["customer_id", "ring_id", "ts_ms"]
    for statement in (rings, members):
        assert "ENGINE = ReplacingMergeTree()" in statement
        assert "PARTITION BY toYYYYMM(ts)" in statement
        assert "dissolved UInt8" in statement and "size UInt32" in statement and "score Float64" in statement
    assert "members Array(String)" in rings and "entity_values Array(String)" in rings
    if features.low_cardinality:
        assert "entity_kinds Array(LowCardinality(String))" in rings
        assert "tier LowCardinality(String)" in members
    else:
        assert "entity_kinds Array(String)" in rings
        assert "tier String" in members
    if features.codecs:
        assert "ts DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1))" in rings
        assert "ts_ms Int64 CODEC(Delta, ZSTD(1))" in members
        assert "payload String CODEC(ZSTD(3))" in rings
    else:
        assert "ts DateTime('UTC')," in rings and "first_seen DateTime('UTC')," in rings
        assert "ts_ms Int64," in members


def test_link_and_ring_tables_match_the_writers_columns() -> None:
    statements = render_ddl("lw", Features.all())
    expected = {"links": LINK_COLUMNS, "customer_links": CUSTOMER_LINK_COLUMNS, "rings": RING_COLUMNS,
                "ring_members": RING_MEMBER_COLUMNS}
    for name, columns in expected.items():
        body = _table(statements, name).split("(", 1)[1].split("\n)\n", 1)[0]
        declared = [line.split()[0].strip("`") for line in body.strip().splitlines()]
        assert tuple(declared) == columns, name
