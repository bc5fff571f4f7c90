"""A ClickHouse server over the native TCP protocol, through clickhouse-driver.

clickhouse-driver drops settings the server does not know with nothing but a log line, so this backend sends
no settings at all: every feature loanwatch uses is chosen from the server's version in the DDL instead
(see :mod:`schemas.clickhouse.ddl`). Driver network errors become :class:`ClickHouseUnavailable`, server
exceptions :class:`ClickHouseQueryError` (or ``ClickHouseUnavailable`` for codes that mean "later").
Inserts are columnar.
"""

from __future__ import annotations

import contextlib
import struct
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Final
from urllib.parse import parse_qsl, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from clickhouse_driver import Client, errors

from streams.clickhouse.backend import as_utc, parse_version, quote_identifier, table_name, to_columns
from streams.clickhouse.errors import ClickHouseQueryError, ClickHouseUnavailable, server_error

__all__ = ["NativeBackend", "NativeTarget", "parse_url"]

_DEFAULT_PORTS: Final = {"clickhouse": 9000, "clickhouses": 9440}
_NETWORK_ERRORS: Final = (
    errors.NetworkError,
    errors.SocketTimeoutError,
    errors.UnexpectedPacketFromServerError,
    errors.UnknownPacketFromServerError,
    EOFError,
    OSError,  # refused, reset, unreachable, TLS handshake: the driver lets some of these through unwrapped
)


@dataclass(frozen=True)
class NativeTarget:
    """Where and how to connect, parsed from a ``clickhouse://`` or ``clickhouses://`` URL."""

    host: str
    port: int
    user: str = "default"
    password: str = field(default="", repr=False)
    database: str = "default"
    secure: bool = False
    verify: bool = True
    ca_certs: str | None = None
    connect_timeout: float = 5.0
    send_receive_timeout: float = 60.0


def parse_url(url: str) -> NativeTarget:
    """Parse ``clickhouse[s]://user:password@host:port/database?option=value``.

    Options: ``connect_timeout`` and ``send_receive_timeout`` (seconds); for ``clickhouses://`` also
    ``verify`` (``true``/``false``) and ``ca_certs`` (a CA bundle path). Any other option is an error rather
    than being passed on as a server setting that might be silently dropped.
    """
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS:
        raise ValueError("a ClickHouse URL starts with clickhouse:// or clickhouses://")
    if not parts.hostname:
        raise ValueError("the ClickHouse URL has no host")
    database = unquote(parts.path.lstrip("/")) or "default"
    quote_identifier(database)
    secure = parts.scheme == "clickhouses"
    options: dict[str, Any] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in ("connect_timeout", "send_receive_timeout"):
            options[key] = float(value)
        elif key == "verify" and secure:
            options[key] = value.lower() not in ("0", "false", "no", "off")
        elif key == "ca_certs" and secure:
            options[key] = value
        else:
            raise ValueError(f"unsupported option in the ClickHouse URL: {key!r}")
    return NativeTarget(
        host=parts.hostname,
        port=parts.port or _DEFAULT_PORTS[parts.scheme],
        user=unquote(parts.username) if parts.username else "default",
        password=unquote(parts.password) if parts.password else "",
        database=database,
        secure=secure,
        **options,
    )


class NativeBackend:
    """:class:`~streams.clickhouse.backend.ClickHouseBackend` on a server, over clickhouse-driver.

    The driver connects lazily and reconnects after a network error, so a backend survives server restarts:
    calls in between raise :class:`ClickHouseUnavailable`. One driver client is not thread-safe, so calls are
    serialised by a lock.
    """

    def __init__(self, target: NativeTarget, database: str) -> None:
        quote_identifier(database)
        self.database = database
        self.target = target
        self._client = Client(
            host=target.host,
            port=target.port,
            user=target.user,
            password=target.password,
            # The URL's database, not ``database``: that one may not exist until the DDL has run.
            database=target.database,
            secure=target.secure,
            verify=target.verify,
            ca_certs=target.ca_certs,
            connect_timeout=target.connect_timeout,
            send_receive_timeout=target.send_receive_timeout,
            sync_request_timeout=target.connect_timeout,
            client_name="loanwatch",
        )
        self._lock = threading.Lock()
        self._version: tuple[int, ...] | None = None
        self._server_zone: tzinfo | None = None

    @classmethod
    def from_url(cls, url: str, database: str) -> NativeBackend:
        """Make a backend for the server at ``url`` (see :func:`parse_url`), with tables in ``database``."""
        return cls(parse_url(url), database)

    def version(self) -> tuple[int, ...]:
        """Return the server's version (asked once, then remembered)."""
        if self._version is None:
            rows = self.query("SELECT version()")
            self._version = parse_version(str(rows[0][0]))
        return self._version

    def execute(self, sql: str) -> None:
        """Run ``sql`` and discard what it returns."""
        with self._lock, self._translated("statement"):
            self._client.execute(sql)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of ``sql``; DateTime values UTC-aware (the driver gives naive ones for zone-less columns)."""
        with self._lock, self._translated("query"):
            rows, types = self._client.execute(sql, with_column_types=True)
            if not any("DateTime" in type_name for _, type_name in types):
                return [tuple(row) for row in rows]
            zone = self._server_timezone()
        dated = [i for i, (_, type_name) in enumerate(types) if "DateTime" in type_name]
        out: list[tuple[Any, ...]] = []
        for row in rows:
            values = list(row)
            for i in dated:
                values[i] = _utc_values(values[i], zone)
            out.append(tuple(values))
        return out

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert ``rows`` as one columnar block."""
        data = to_columns(columns, rows)
        if not rows:
            return
        names = ", ".join(quote_identifier(c) for c in columns)
        sql = f"INSERT INTO {table_name(self.database, table)} ({names}) VALUES"
        with self._lock, self._translated(f"insert into {table}"):
            try:
                self._client.execute(sql, data, columnar=True)
            except (TypeError, ValueError, OverflowError, struct.error) as exc:
                # Raised while encoding, before anything was sent: the data itself is wrong.
                raise ClickHouseQueryError(f"insert into {table}: cannot encode the rows: {exc}") from exc

    def close(self) -> None:
        """Disconnect (a later call would reconnect)."""
        with self._lock:
            self._client.disconnect()

    def _server_timezone(self) -> tzinfo:
        if self._server_zone is None:
            name = self._client.connection.server_info.get_timezone()
            try:
                self._server_zone = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                self._server_zone = ZoneInfo("UTC")
        return self._server_zone

    @contextlib.contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        """Map driver exceptions onto :mod:`streams.clickhouse.errors`."""
        where = f"{self.target.host}:{self.target.port}"
        try:
            yield
        except errors.ServerException as exc:
            raise server_error(exc.code, f"{what} failed on {where}: {_first_part(exc.message)}") from exc
        except _NETWORK_ERRORS as exc:
            message = f"{what}: ClickHouse at {where} unavailable: {exc}"
            raise ClickHouseUnavailable(message, _code(exc)) from exc
        except errors.Error as exc:
            raise ClickHouseQueryError(f"{what} failed: {exc}", _code(exc)) from exc


def _utc_values(value: Any, zone: tzinfo) -> Any:
    if isinstance(value, datetime):
        return as_utc(value, zone)
    if isinstance(value, list | tuple):
        return type(value)(_utc_values(v, zone) for v in value)
    return value


def _first_part(message: str) -> str:
    # Old servers append a native stack trace to every exception; it says nothing to a caller.
    return message.split("Stack trace:", 1)[0].strip()


def _code(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) else None
