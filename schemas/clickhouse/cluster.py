"""The same tables and views for a ClickHouse cluster: replicated shard-local tables behind Distributed ones.

Derived from the single-node statements (:func:`.ddl.render_ddl`, :func:`.analytics.render_analytics`), never
kept by hand. For each table ``t``:

- ``t_local`` on every node (``ON CLUSTER``), the engine made ``Replicated*MergeTree`` with the usual
  ``/clickhouse/tables/{shard}/<database>/t_local`` path and ``{replica}`` macro (from each server's macros);
- ``t`` as ``Distributed`` over ``t_local``, sharded by the column that fixes the row's id (customer, link,
  ring or dead letter). Every copy of a row lands on one shard, so ReplacingMergeTree still folds replays
  together and a per-id count over the Distributed table stays exact.

The writer and the views keep using the plain names. The materialized view reads ``alerts_local`` and writes
``alerts_daily_state_local`` on each shard (an insert through a Distributed table reaches only the shards'
local tables); ``alerts_daily_state`` is the Distributed table over those states.

Pure: nothing here touches a database. Nothing here has been run on a cluster; the statements are parsed by a
real engine in the tests.
"""

from __future__ import annotations

import re
from typing import Final

from schemas.clickhouse.analytics import ANALYTICS, quote_string, render_analytics
from schemas.clickhouse.ddl import TABLES, Features, render_ddl

__all__ = ["DEFAULT_CLUSTER", "SHARD_KEYS", "render_cluster_ddl"]

#: The cluster macro: each server's ``<macros><cluster>`` names its cluster.
DEFAULT_CLUSTER: Final = "{cluster}"

#: Sharding expression per table: the column that fixes the id, so all copies of a row meet on one shard.
SHARD_KEYS: Final[dict[str, str]] = {
    "events": "cityHash64(customer_id)",
    "alerts": "cityHash64(customer_id)",
    "dead_letters": "cityHash64(dead_letter_id)",
    "limit_actions": "cityHash64(customer_id)",
    "profile_snapshots": "cityHash64(customer_id)",
    "links": "cityHash64(link_id)",
    "customer_links": "cityHash64(customer_id)",
    "rings": "cityHash64(ring_id)",
    "ring_members": "cityHash64(customer_id)",
    # Only its materialized view writes it, on each shard locally; the key serves direct inserts only.
    "alerts_daily_state": "rand()",
}

_HEADER: Final = re.compile(r"\ACREATE TABLE IF NOT EXISTS (?P<db>`\w+`)\.(?P<name>\w+)\n")
_ENGINE: Final = re.compile(r"^ENGINE = (?P<engine>\w*MergeTree)\((?P<args>[^)]*)\)$", re.MULTILINE)


def render_cluster_ddl(database: str, features: Features, cluster: str = DEFAULT_CLUSTER) -> list[str]:
    """Return every statement for ``cluster``: database, local and Distributed tables, then the views."""
    on = f" ON CLUSTER {quote_string(cluster)}"
    create_db, *tables = render_ddl(database, features)
    statements = [create_db + on]
    analytics = render_analytics(database, features, cluster=cluster)
    kinds = {o.name: o.kind for o in ANALYTICS}
    table_statements = list(zip(TABLES, tables, strict=True))
    table_statements += [(name, sql) for name, sql in analytics if kinds[name] == "table"]
    for name, statement in table_statements:
        statements.append(_replicated(statement, name, database, on))
        statements.append(_distributed(name, database, cluster, on))
    statements += [sql for name, sql in analytics if kinds[name] != "table"]
    return statements


def _replicated(statement: str, name: str, database: str, on: str) -> str:
    header = _HEADER.match(statement)
    if header is None or header.group("name") != name:
        raise ValueError(f"the DDL of {name} does not start with CREATE TABLE IF NOT EXISTS <database>.{name}")
    engine = _ENGINE.search(statement)
    if engine is None:
        raise ValueError(f"the DDL of {name} has no single-line *MergeTree engine")
    local = f"{name}_local"
    path = quote_string(f"/clickhouse/tables/{{shard}}/{database}/{local}")
    args = ", ".join(a for a in (path, "'{replica}'", engine.group("args")) if a)
    text = _ENGINE.sub(f"ENGINE = Replicated{engine.group('engine')}({args})", statement, count=1)
    return _HEADER.sub(f"CREATE TABLE IF NOT EXISTS {header.group('db')}.{local}{on}\n", text, count=1)


def _distributed(name: str, database: str, cluster: str, on: str) -> str:
    args = ", ".join((quote_string(cluster), quote_string(database), quote_string(f"{name}_local"), SHARD_KEYS[name]))
    return (
        f"CREATE TABLE IF NOT EXISTS `{database}`.{name}{on}\nAS `{database}`.{name}_local\n"
        f"ENGINE = Distributed({args})"
    )
