"""One small interface over the two ClickHouse engines loanwatch runs on, and the factory that picks one.

- a ClickHouse server over the native protocol (clickhouse-driver), see :mod:`streams.clickhouse.native`;
- embedded chdb at a local data path, see :mod:`streams.clickhouse.embedded`.

Both take and give the same Python values: ``str``, ``int``, ``float``, ``list`` (arrays) and UTC-aware
``datetime``. Naive datetimes are refused on insert (their zone would be a guess); datetimes read back are
always aware and in UTC. Errors are those of :mod:`streams.clickhouse.errors`.

Example::

    backend = open_backend(None, "loanwatch", Path(".loanwatch/chdb"))
    backend.insert("events", ("event_id", "ts"), [("e1", datetime.now(UTC))])
    backend.query("SELECT count() FROM loanwatch.events FINAL")  # [(1,)]
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, Final, Protocol

__all__ = [
    "ClickHouseBackend",
    "as_utc",
    "open_backend",
    "parse_version",
    "quote_identifier",
    "table_name",
    "to_columns",
]

_IDENTIFIER: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class ClickHouseBackend(Protocol):
    """What the rest of loanwatch needs from ClickHouse; both engines implement it.

    ``database`` is where loanwatch's tables live: :meth:`insert` puts unqualified table names there, while
    SQL passed to :meth:`execute` and :meth:`query` names its database itself. Threads may share a backend.
    """

    database: str

    def version(self) -> tuple[int, ...]:
        """Ask the engine for its version: ``(18, 16, 1)``, ``(26, 9, 2, 1)``, ..."""
        ...

    def execute(self, sql: str) -> None:
        """Run a statement that returns nothing worth reading (DDL, ``OPTIMIZE``, ...)."""
        ...

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Run a query and return its rows; DateTime values come back UTC-aware."""
        ...

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert ``rows`` (each in the order of ``columns``) in one batch; an empty batch does nothing."""
        ...

    def close(self) -> None:
        """Release the connection or session; closing twice is harmless."""
        ...


def open_backend(url: str | None, database: str, chdb_path: Path) -> ClickHouseBackend:
    """Open the server at ``url`` (native protocol), or embedded chdb at ``chdb_path`` when ``url`` is None.

    ``url`` is ``clickhouse://user:password@host:port/database`` (``clickhouses://`` for TLS); its database is
    only the connection's default, while ``database`` is where loanwatch's tables go (it need not exist yet).
    Nothing is created here: see :func:`streams.clickhouse.schema.apply_ddl`.
    """
    quote_identifier(database)
    # Imported here: chdb loads a large native library, which a server deployment never needs.
    if url is not None:
        from streams.clickhouse.native import NativeBackend

        return NativeBackend.from_url(url, database)
    from streams.clickhouse.embedded import EmbeddedBackend

    return EmbeddedBackend.open(chdb_path, database)


def quote_identifier(name: str) -> str:
    """``name`` in backquotes, after checking it is a plain identifier (so no quoting rules are needed)."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain ClickHouse identifier: {name!r} (letters, digits, underscore)")
    return f"`{name}`"


def table_name(database: str, table: str) -> str:
    """Quote ``database.table``; a ``table`` that already names its database keeps it."""
    db, _, name = table.rpartition(".")
    return f"{quote_identifier(db or database)}.{quote_identifier(name)}"


def parse_version(text: str) -> tuple[int, ...]:
    """``"18.16.1"`` → ``(18, 16, 1)``; anything after the leading dotted numbers is ignored."""
    match = re.match(r"\s*(\d+(?:\.\d+)*)", text)
    if match is None:
        raise ValueError(f"not a ClickHouse version: {text!r}")
    return tuple(int(part) for part in match.group(1).split("."))


def to_columns(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """``rows`` turned into one list per column, after checking their width and that datetimes are aware."""
    if not rows:
        return [[] for _ in columns]
    try:
        data = [list(column) for column in zip(*rows, strict=True)]
    except ValueError as exc:
        raise ValueError(f"rows differ in length; every row needs {len(columns)} values") from exc
    if len(data) != len(columns):
        raise ValueError(f"rows have {len(data)} values but {len(columns)} columns were named")
    for name, values in zip(columns, data, strict=True):
        # A column is of one type: probing its first value keeps the check off every other column.
        first = next((v for v in values if v is not None), None)
        if isinstance(first, datetime) and any(
            isinstance(v, datetime) and v.tzinfo is None for v in values
        ):
            raise ValueError(f"column {name!r} has a naive datetime; pass timezone-aware (UTC) datetimes")
    return data


def as_utc(value: datetime, naive_zone: tzinfo = UTC) -> datetime:
    """``value`` as an aware UTC datetime; a naive one is read as wall time in ``naive_zone``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=naive_zone)
    return value.astimezone(UTC)
