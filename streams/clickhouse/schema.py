"""Create loanwatch's database and tables on a backend, in the form its engine supports."""

from __future__ import annotations

from schemas.clickhouse.ddl import Features, render_ddl
from streams.clickhouse.backend import ClickHouseBackend

__all__ = ["apply_ddl"]


def apply_ddl(backend: ClickHouseBackend, database: str) -> Features:
    """Create ``database`` and every missing table (a second run changes nothing); return the features used.

    Features come from ``SELECT version()``. Existing tables are left as they are: ``IF NOT EXISTS`` does not
    migrate a table created by an older DDL.
    """
    features = Features.for_version(backend.version())
    for statement in render_ddl(database, features):
        backend.execute(statement)
    return features
