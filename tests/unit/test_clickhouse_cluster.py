"""The cluster DDL: derived from the single-node tables, replicated per shard, Distributed by the id's column."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from schemas.clickhouse.analytics import ANALYTICS, render_analytics
from schemas.clickhouse.cluster import SHARD_KEYS, render_cluster_ddl
from schemas.clickhouse.ddl import TABLES, Features, render_ddl
from streams.clickhouse.ddl_script import ddl_script

REPO = Path(__file__).resolve().parents[2]
STATE_TABLES = tuple(o.name for o in ANALYTICS if o.kind == "table")


def by_name(statements: list[str]) -> dict[str, str]:
    named = {}
    for statement in statements:
        match = re.match(r"CREATE (?:TABLE|VIEW|MATERIALIZED VIEW|DATABASE) IF NOT EXISTS `lw`(?:\.(\w+))?", statement)
        assert match is not None, statement
        named[match.group(1) or ""] = statement
    return named


@pytest.mark.parametrize("features", [Features.none(), Features.all()], ids=["old", "modern"])
def test_every_table_gets_a_replicated_local_table_and_a_distributed_one(features: Features) -> None:
    statements = render_cluster_ddl("lw", features, cluster="main")
    named = by_name(statements)
    single = dict(zip(TABLES, render_ddl("lw", features)[1:], strict=True))
    single.update((n, s) for n, s in render_analytics("lw", features) if n in STATE_TABLES)
    assert set(SHARD_KEYS) == set(single)
    assert len(statements) == 1 + 2 * len(single) + len(ANALYTICS) - len(STATE_TABLES)
    for name, original in single.items():
        local, distributed = named[f"{name}_local"], named[name]
        assert local.splitlines()[0] == f"CREATE TABLE IF NOT EXISTS `lw`.{name}_local ON CLUSTER 'main'"
        engine = re.search(r"^ENGINE = (\w+)\((.*)\)$", original, re.MULTILINE)
        assert engine is not None
        args = [f"'/clickhouse/tables/{{shard}}/lw/{name}_local'", "'{replica}'"] + [a for a in [engine.group(2)] if a]
        assert f"ENGINE = Replicated{engine.group(1)}({', '.join(args)})" in local
        # the columns, keys, partitions and TTL are the single-node table's, line for line
        def body(statement: str) -> list[str]:
            return [line for line in statement.splitlines()[1:] if not line.startswith("ENGINE")]

        assert body(local) == body(original)
        assert distributed == (f"CREATE TABLE IF NOT EXISTS `lw`.{name} ON CLUSTER 'main'\nAS `lw`.{name}_local\n"
                               f"ENGINE = Distributed('main', 'lw', '{name}_local', {SHARD_KEYS[name]})")


def test_shard_keys_are_sort_key_columns_so_every_copy_of_a_row_meets_on_one_shard() -> None:
    single = dict(zip(TABLES, render_ddl("lw", Features.all())[1:], strict=True))
    for name, statement in single.items():
        order_by = re.search(r"^ORDER BY \((.*)\)$", statement, re.MULTILINE)
        assert order_by is not None
        column = re.fullmatch(r"cityHash64\((\w+)\)", SHARD_KEYS[name])
        assert column is not None and column.group(1) in order_by.group(1).split(", "), name


def test_views_follow_the_tables_on_the_cluster() -> None:
    named = by_name(render_cluster_ddl("lw", Features.all()))
    for o in ANALYTICS:
        if o.kind != "table":
            assert " ON CLUSTER '{cluster}'" in named[o.name].splitlines()[0], o.name
    assert "FROM `lw`.alerts_local" in named["alerts_daily_mv"]
    assert "TO `lw`.alerts_daily_state_local" in named["alerts_daily_mv"]
    assert "FROM `lw`.alerts_daily_state\n" in named["alerts_daily"]


def test_deploy_cluster_sql_is_the_generated_script() -> None:
    expected = ddl_script("loanwatch", cluster="{cluster}")
    assert (REPO / "deploy/clickhouse/cluster.sql").read_text(encoding="utf-8") == expected, (
        "regenerate: python -m streams.clickhouse.ddl_script --cluster '{cluster}' > deploy/clickhouse/cluster.sql"
    )


def test_the_cli_prints_the_same_script() -> None:
    from typer.testing import CliRunner

    from streams.cli import app

    result = CliRunner().invoke(app, ["clickhouse", "ddl", "--cluster", "main", "--database", "lw"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ddl_script("lw", cluster="main")
    refused = CliRunner().invoke(app, ["clickhouse", "ddl", "--database", "bad-name"])
    assert refused.exit_code == 2
