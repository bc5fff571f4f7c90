"""The DDL scripts on real engines: the single-server script runs on 18.16 and chdb, the cluster one parses.

No cluster runs here: chdb's parser checks every cluster statement (``EXPLAIN AST``), the structure is
checked in tests/unit/test_clickhouse_cluster.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.clickhouse.analytics import ANALYTICS
from schemas.clickhouse.ddl import TABLES
from streams.clickhouse.backend import ClickHouseBackend, open_backend
from streams.clickhouse.ddl_script import ddl_script
from streams.clickhouse.embedded import chdb_path_in_use

pytestmark = pytest.mark.integration


def statements(script: str) -> list[str]:
    """The script's statements, without its comment lines."""
    found = []
    for part in script.split(";\n"):
        text = "\n".join(line for line in part.splitlines() if not line.startswith("--")).strip()
        if text:
            found.append(text)
    return found


@pytest.fixture
def ch(clickhouse: tuple[ClickHouseBackend, str | None]) -> Iterator[ClickHouseBackend]:
    backend, _ = clickhouse
    yield backend
    backend.execute(f"DROP DATABASE IF EXISTS `{backend.database}`")


def test_the_single_server_script_runs_twice_on_the_engine_it_was_rendered_for(ch: ClickHouseBackend) -> None:
    version = ".".join(map(str, ch.version()[:2]))
    script = ddl_script(ch.database, version)
    for _ in range(2):
        for statement in statements(script):
            ch.execute(statement)
    sql = "SELECT name FROM system.tables WHERE database = '{}' AND NOT startsWith(name, '.inner')"
    names = ch.query(sql.format(ch.database))
    assert {n for (n,) in names} == set(TABLES) | {o.name for o in ANALYTICS}


def test_every_cluster_statement_parses(chdb_dir: Path) -> None:
    backend = open_backend(None, "lw_parse", chdb_path_in_use() or chdb_dir)
    try:
        parsed = statements(ddl_script("loanwatch", cluster="{cluster}"))
        assert len(parsed) == 1 + 2 * (len(TABLES) + 1) + len(ANALYTICS) - 1
        for statement in parsed:
            ast = backend.query("EXPLAIN AST " + statement)
            assert ast and "CreateQuery" in str(ast[0][0]), statement
    finally:
        backend.close()
