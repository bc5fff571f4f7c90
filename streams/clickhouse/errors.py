"""What a ClickHouse backend raises, whichever engine is behind it.

- :class:`ClickHouseUnavailable`: the server could not be reached or asked us to back off (refused connection,
  timeout, too many parts, ...). The statement may be retried unchanged; callers wait and retry.
- :class:`ClickHouseQueryError`: the server (or the client, before sending) rejected the statement or its
  data. Retrying the same thing fails the same way.
- :class:`EmbeddedPathInUse`: embedded chdb cannot open the requested data path in this process.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "TRANSIENT_SERVER_CODES",
    "ClickHouseError",
    "ClickHouseQueryError",
    "ClickHouseUnavailable",
    "EmbeddedPathInUse",
    "server_error",
]

#: Server error codes that mean "not now" rather than "never": the same statement can succeed later.
TRANSIENT_SERVER_CODES: Final[frozenset[int]] = frozenset({
    159,  # TIMEOUT_EXCEEDED
    202,  # TOO_MANY_SIMULTANEOUS_QUERIES
    203,  # NO_FREE_CONNECTION
    209,  # SOCKET_TIMEOUT
    210,  # NETWORK_ERROR
    241,  # MEMORY_LIMIT_EXCEEDED
    242,  # TABLE_IS_READ_ONLY (a replica that lost ZooKeeper)
    252,  # TOO_MANY_PARTS: insert back-pressure
    319,  # UNKNOWN_STATUS_OF_INSERT
    999,  # KEEPER_EXCEPTION
})


class ClickHouseError(Exception):
    """Root of every error a backend raises; ``code`` is the server's error code when known."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class ClickHouseUnavailable(ClickHouseError):
    """ClickHouse cannot take the statement now (down, unreachable, timing out, overloaded): retry later."""


class ClickHouseQueryError(ClickHouseError):
    """ClickHouse rejected the statement or its data; retrying it unchanged will not help."""


class EmbeddedPathInUse(ClickHouseError):
    """chdb's data path is taken: another path is open in this process, or another process holds this one."""


def server_error(code: int | None, message: str) -> ClickHouseError:
    """Classify a server exception: :class:`ClickHouseUnavailable` if transient, else a query error."""
    if code is not None and code in TRANSIENT_SERVER_CODES:
        return ClickHouseUnavailable(message, code)
    return ClickHouseQueryError(message, code)
