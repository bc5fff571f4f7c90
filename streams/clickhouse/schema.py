"""Create loanwatch's database, tables and analyst views on a backend, in the form its engine supports."""

from __future__ import annotations

from schemas.clickhouse.analytics import ANALYTICS, backfill_sql, render_analytics
from schemas.clickhouse.ddl import Features, render_ddl
from streams.clickhouse.backend import ClickHouseBackend, quote_identifier

__all__ = ["apply_ddl"]

_MATERIALIZED: frozenset[str] = frozenset(o.name for o in ANALYTICS if o.kind == "materialized_view")


def apply_ddl(backend: ClickHouseBackend, database: str) -> Features:
    """Create ``database``, every missing table and view (a second run changes nothing); return the features used.

    Features come from ``SELECT version()``. Existing tables and views are left as they are: ``IF NOT EXISTS``
    does not migrate an object created by an older DDL. A materialized view created by this call is backfilled
    from the rows its source already holds (its target keeps sets of ids, so rows the view also saw while the
    backfill ran are not counted twice).
    """
    features = Features.for_version(backend.version())
    for statement in render_ddl(database, features):
        backend.execute(statement)
    existing = _existing(backend, database)
    for name, statement in render_analytics(database, features):
        backend.execute(statement)
        if name in _MATERIALIZED and name not in existing:
            backend.execute(backfill_sql(statement))
    return features


def _existing(backend: ClickHouseBackend, database: str) -> set[str]:
    quote_identifier(database)  # a plain identifier, so it needs no escaping inside the string literal
    rows = backend.query(f"SELECT name FROM system.tables WHERE database = '{database}'")  # noqa: S608
    return {str(name) for (name,) in rows}
