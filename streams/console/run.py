"""``loanwatch console``: open the ClickHouse the settings name and serve the console until Ctrl-C / SIGTERM."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from streams.clickhouse.connect import open_for_settings
from streams.console.server import ConsoleConfig, create_console_app
from streams.settings import Settings

__all__ = ["engine_label", "run_console"]


def engine_label(settings: Settings, version: tuple[int, ...]) -> str:
    """How the page names its ClickHouse: engine, version and database, never the URL (it holds a password)."""
    kind = "server" if settings.clickhouse_url is not None else "embedded chdb"
    return f"{kind} {'.'.join(map(str, version))}, database {settings.clickhouse_database}"


def run_console(settings: Settings, host: str, port: int, progress: Callable[[str], None] = print) -> None:
    """Serve the console on ``host:port``; the ClickHouse backend is closed when the server stops.

    Embedded chdb allows one process per data path: while a writer (or ``loanwatch demo``) holds it, point the
    console at a ClickHouse server instead, or start it once that process has stopped.
    """
    backend = open_for_settings(settings)
    try:
        config = ConsoleConfig(backend, engine_label(settings, backend.version()), settings.profile_api_url)
        progress(f"loanwatch console on http://{host}:{port}/ (ClickHouse: {config.engine})")
        web.run_app(create_console_app(config), host=host, port=port, print=None, access_log=None)
    finally:
        backend.close()
