"""`loanwatch init`: topics in Kafka and tables in ClickHouse, both idempotent."""

from __future__ import annotations

from collections.abc import Callable

from streams.admin import create_topics
from streams.clickhouse.backend import ClickHouseBackend
from streams.clickhouse.connect import open_for_settings
from streams.clickhouse.schema import apply_ddl
from streams.settings import Settings


def initialise(
    settings: Settings, progress: Callable[[str], None], backend: ClickHouseBackend | None = None
) -> None:
    """Create what is missing; a second run changes nothing."""
    created = create_topics(settings, progress=progress)
    progress(f"Kafka: {len(created)} topic(s) created, the rest already existed")
    own = backend is None
    ch = open_for_settings(settings) if backend is None else backend
    try:
        features = apply_ddl(ch, settings.clickhouse_database)
        progress(f"ClickHouse {'.'.join(map(str, ch.version()))}: tables ready ({features})")
    finally:
        if own:
            ch.close()
