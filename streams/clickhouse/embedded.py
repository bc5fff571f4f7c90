"""Embedded ClickHouse (chdb) at a local data path: no server to run, the same SQL and table engines.

chdb's constraints, as measured with chdb 4.4 (engine 26.9) and enforced here:

- **One engine per process, bound to one data path.** Every ``chdb.session.Session`` of a process shares one
  embedded server. Sessions on the *same* path coexist and see each other's data; opening a *different*
  path (``:memory:`` included) while any session is open fails with ``EmbeddedServer already initialized
  with path ...``. Once the last session is closed the engine shuts down (in milliseconds) and another path
  may be opened. This module keeps a process-wide registry: every :class:`EmbeddedBackend` on a path shares
  one session, the engine is closed with the last of them, and asking for another path raises
  :class:`EmbeddedPathInUse` naming the path that is open (see :func:`chdb_path_in_use`).
- **One process per data path.** The engine takes an exclusive ``flock`` on ``<path>/status``; a second
  process fails with an unhelpful "Error initializing EmbeddedServer" (the real reason only goes to stderr).
  That case is detected and reported as :class:`EmbeddedPathInUse` with the other process's pid.
- **Not fork-safe.** Open the backend in the process that uses it, after any ``fork``.
- Queries from several threads are safe, but a statement issued while another is still streaming on the same
  connection returns an empty result, so calls on one path are serialised by a lock.

Values travel as JSON: inserts as one ``FORMAT JSONCompactColumns`` document encoded by schemas.serde (exact for any
string: quotes, backslashes, newlines, NUL, unicode; datetimes as RFC 3339 with ``Z``), results as
``JSONCompactEachRowWithNamesAndTypes`` converted back by column type. The session runs in UTC.
Non-finite floats cannot be inserted (JSON has no NaN); strings must be valid unicode (no lone surrogates).
"""

from __future__ import annotations

import fcntl
import math
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

from schemas import serde
from streams.clickhouse.backend import parse_version, quote_identifier, table_name, to_columns
from streams.clickhouse.errors import ClickHouseError, ClickHouseQueryError, EmbeddedPathInUse, server_error

__all__ = ["EmbeddedBackend", "chdb_path_in_use"]

#: Session settings, passed in the connection string (they apply to the session only).
_SESSION_SETTINGS: Final = (
    "session_timezone=UTC",  # zone-less DateTime values and now() in UTC, whatever the machine's zone
    "date_time_input_format=best_effort",  # accept RFC 3339 ("...T09:00:00.250Z") as schemas.serde writes it
    "output_format_json_quote_denormals=1",  # nan/inf as strings instead of null
    "output_format_json_quote_decimals=1",  # decimals as exact strings instead of doubles
    "output_format_json_validate_utf8=1",  # invalid UTF-8 in a String never breaks JSON parsing
)
_RESULT_FORMAT: Final = "JSONCompactEachRowWithNamesAndTypes"
_SERVER_CODE: Final = re.compile(r"Code: (\d+)\.")
_MESSAGE_LIMIT: Final = 4000


@dataclass
class _Engine:
    """The one chdb session of this process, shared by every backend on its path."""

    path: Path
    session: Any
    users: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


_registry_lock = threading.Lock()
_engine: _Engine | None = None


def chdb_path_in_use() -> Path | None:
    """Return the data path this process's chdb engine is open on through this module, or None."""
    with _registry_lock:
        return _engine.path if _engine is not None else None


class EmbeddedBackend:
    """:class:`~streams.clickhouse.backend.ClickHouseBackend` on embedded chdb; make one with :meth:`open`."""

    def __init__(self, engine: _Engine, database: str) -> None:
        quote_identifier(database)
        self.database = database
        self.path = engine.path
        self._engine: _Engine | None = engine
        self._version: tuple[int, ...] | None = None

    @classmethod
    def open(cls, path: Path, database: str) -> EmbeddedBackend:
        """Open the chdb data at ``path`` (created if missing), keeping tables in ``database``.

        Raise :class:`EmbeddedPathInUse` when this process already has chdb open on another path, or another
        process holds ``path``.
        """
        global _engine
        resolved = Path(path).expanduser().resolve()
        if "?" in str(resolved):
            raise ValueError(f"a chdb data path cannot contain '?': {resolved}")
        with _registry_lock:
            if _engine is not None and _engine.path != resolved:
                raise EmbeddedPathInUse(
                    f"chdb is already open on {_engine.path} in this process; it serves one data path per "
                    f"process, so {resolved} cannot be opened until every backend on the first is closed"
                )
            if _engine is None:
                _engine = _Engine(resolved, _connect(resolved))
            _engine.users += 1
            return cls(_engine, database)

    def version(self) -> tuple[int, ...]:
        """Return the embedded engine's version, e.g. ``(26, 9, 2, 1)``."""
        if self._version is None:
            self._version = parse_version(str(self.query("SELECT version()")[0][0]))
        return self._version

    def execute(self, sql: str) -> None:
        """Run ``sql`` and discard what it returns."""
        self._run(sql, "CSV")

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of ``sql``, converted back to Python values by column type (DateTime: UTC-aware)."""
        return _parse_result(self._run(sql, _RESULT_FORMAT))

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert ``rows`` as one JSONCompactColumns document."""
        data = to_columns(columns, rows)
        if not rows:
            return
        for name, values in zip(columns, data, strict=True):
            if isinstance(next((v for v in values if v is not None), None), float) and not all(
                math.isfinite(v) for v in values if isinstance(v, float)
            ):
                raise ClickHouseQueryError(f"insert into {table}: column {name!r} has NaN or infinity, "
                                           "which chdb's JSON input cannot carry")
        try:
            body = serde.dumps(data)  # datetimes as the contracts write them: RFC 3339, ms, "Z"
        except serde.JSONEncodeError as exc:
            raise ClickHouseQueryError(f"insert into {table}: cannot encode the rows: {exc}") from exc
        names = ", ".join(quote_identifier(c) for c in columns)
        head = f"INSERT INTO {table_name(self.database, table)} ({names}) FORMAT JSONCompactColumns\n"
        self._run(head + body.decode("utf-8"), "CSV")

    def close(self) -> None:
        """Release this backend; the engine shuts down with the last backend on its path."""
        global _engine
        with _registry_lock:
            engine, self._engine = self._engine, None
            if engine is None:
                return
            engine.users -= 1
            if engine.users == 0:
                with engine.lock:
                    engine.session.close()
                if _engine is engine:
                    _engine = None

    def _run(self, sql: str, fmt: str) -> bytes:
        engine = self._engine
        if engine is None:
            raise ClickHouseError("this chdb backend is closed")
        with engine.lock:
            try:
                result = engine.session.query(sql, fmt)
            except RuntimeError as exc:  # chdb's ChdbError is a RuntimeError
                message = str(exc)
                match = _SERVER_CODE.search(message)
                code = int(match.group(1)) if match else None
                raise server_error(code, f"chdb: {message[:_MESSAGE_LIMIT]}") from exc
        return bytes(result.bytes()) if result is not None else b""


def _connect(path: Path) -> Any:
    """Open a chdb session on ``path``, or raise :class:`EmbeddedPathInUse` saying why there cannot be one."""
    from chdb.session import Session  # imported on first use: the engine library is large

    path.mkdir(parents=True, exist_ok=True)
    try:
        return Session(f"{path}?{'&'.join(_SESSION_SETTINGS)}")  # type: ignore[no-untyped-call]
    except RuntimeError as exc:
        message = str(exc)
        if "already initialized with path" in message:
            raise EmbeddedPathInUse(f"chdb is open on another path outside this module: {message}") from exc
        holder = _status_lock_holder(path)
        if holder is not None:
            raise EmbeddedPathInUse(
                f"chdb data at {path} is in use by another process ({holder}); only one process may open a "
                f"chdb path at a time"
            ) from exc
        raise ClickHouseError(f"chdb could not open {path}: {message}") from exc


def _status_lock_holder(path: Path) -> str | None:
    """Tell who holds the engine's lock on ``<path>/status`` (its pid line); None if nobody does."""
    status = path / "status"
    try:
        fd = os.open(status, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        text = status.read_text(encoding="utf-8", errors="replace")
        return next((line.strip() for line in text.splitlines() if line.startswith("PID")), "pid unknown")
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


# -- results -------------------------------------------------------------------------------------------

Converter = Callable[[Any], Any]


def _parse_result(raw: bytes) -> list[tuple[Any, ...]]:
    lines = raw.split(b"\n")
    if len(lines) < 2:
        return []
    converters = [_converter(type_name) for type_name in serde.loads(lines[1])]
    rows: list[tuple[Any, ...]] = []
    for line in lines[2:]:
        if line:
            values = serde.loads(line)
            rows.append(tuple(v if c is None else c(v) for c, v in zip(converters, values, strict=True)))
    return rows


def _converter(type_name: str) -> Converter | None:
    """How to turn a JSON value of ClickHouse type ``type_name`` into Python; None means "as decoded"."""
    t = type_name.strip()
    for wrapper in ("Nullable(", "LowCardinality("):
        if t.startswith(wrapper):
            inner = _converter(t[len(wrapper):-1])
            return None if inner is None else _none_safe(inner)
    if t.startswith("Array("):
        element = _converter(t[len("Array("):-1])
        return None if element is None else _each(element)
    if t.startswith("DateTime"):
        return _datetime_parser(_zone_of(t))
    if t in ("Date", "Date32"):
        return date.fromisoformat
    if re.fullmatch(r"U?Int\d+", t):
        return int  # 64-bit values may arrive quoted
    if t.startswith("Float"):
        return float  # "nan", "inf" arrive quoted
    if t.startswith("Decimal"):
        return Decimal
    return None


def _none_safe(convert: Converter) -> Converter:
    return lambda value: None if value is None else convert(value)


def _each(convert: Converter) -> Converter:
    return lambda values: [convert(v) for v in values]


def _zone_of(type_name: str) -> tzinfo:
    match = re.search(r"'([^']+)'", type_name)
    return ZoneInfo(match.group(1)) if match else UTC  # zone-less: the session's, which is UTC


def _datetime_parser(zone: tzinfo) -> Converter:
    def parse(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=zone).astimezone(UTC)

    return parse
