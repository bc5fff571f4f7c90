"""Open the ClickHouse backend that the settings name: a server over the native protocol, or embedded chdb."""

from __future__ import annotations

from streams.clickhouse.backend import ClickHouseBackend, open_backend
from streams.settings import Settings


def open_for_settings(settings: Settings) -> ClickHouseBackend:
    """The server at LOANWATCH_CLICKHOUSE_URL when set, else chdb under LOANWATCH_HOME."""
    url = settings.clickhouse_url.get_secret_value() if settings.clickhouse_url is not None else None
    return open_backend(url, settings.clickhouse_database, settings.chdb_path)
