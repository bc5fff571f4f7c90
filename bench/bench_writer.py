"""Rows per second that the real ClickHouse writer puts into ClickHouse, from records already on the topics.

Used by ``python -m bench.run_all``: it points ``streams.clickhouse.writer.ClickHouseWriter`` (the code
``loanwatch writer`` runs) at the topics a worker read and wrote during the memory bench, in a fresh consumer
group and a fresh database, once into Debian's clickhouse-server 18.16 (``LocalClickHouseServer``, native
protocol) and once into embedded chdb. The writer runs in a thread of this process with its default batch
settings until it has consumed every record; rows/s is measured from its first to its last insert-and-commit
(the first batch, which includes connecting and the group join, is left out), and the rows are counted back
in ClickHouse.

Each engine is measured twice, each time in a fresh database: the writer as shipped, for at most
``shipped_seconds``, and the writer with its consumer-lag probe switched off, on every record. The probe
(``streams.clickhouse.writer_lag``) asks the broker for the committed offset and the watermarks of every
assigned partition every 5 s, on a thread and a consumer of its own; the second figure shows what it still costs.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.bench_pipeline import high_watermarks, say
from streams.clickhouse.backend import ClickHouseBackend, open_backend
from streams.clickhouse.schema import apply_ddl
from streams.clickhouse.writer import ClickHouseWriter, WriterStats, routes
from streams.clickhouse.writer_lag import LagProbe
from streams.local.clickhouse_server import LocalClickHouseServer
from streams.settings import Settings


def measure_writer(
    settings: Settings,
    backend: ClickHouseBackend,
    *,
    lag_probe: bool = True,
    max_seconds: float | None = None,
    timeout: float = 1200.0,
) -> dict[str, Any]:
    """Write the records of ``settings``' routed topics into ``backend`` (all, or for ``max_seconds``)."""
    apply_ddl(backend, backend.database)
    records = sum(high_watermarks(settings, list(routes(settings))).values())
    own = settings.model_copy(update={"writer_group": f"lwbench-writer-{uuid.uuid4().hex[:8]}"})
    flushes: list[tuple[float, int]] = []

    def on_flush(stats: WriterStats) -> None:
        flushes.append((time.monotonic(), sum(stats.rows.values())))

    writer = ClickHouseWriter(own, backend, progress=on_flush)
    if not lag_probe:
        # Switched off: a diagnostic, not a setting.
        writer._lag = LagProbe(writer.metrics.lag, lambda: None, every=math.inf)
    stop = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            writer.run(stop)
        except BaseException as exc:  # noqa: BLE001 — reported by the waiting thread
            failure.append(exc)

    started = time.monotonic()
    thread = threading.Thread(target=run, name="bench-writer", daemon=True)
    thread.start()
    last_note = started
    while writer.stats.consumed < records and thread.is_alive():
        if max_seconds is not None and time.monotonic() - started > max_seconds:
            break
        if time.monotonic() - started > timeout:
            stop.set()
            raise RuntimeError(f"writer: {writer.stats.consumed:,} of {records:,} records after {timeout:.0f}s")
        if time.monotonic() - last_note >= 5:
            last_note = time.monotonic()
            say(f"writer: consumed {writer.stats.consumed:,} / {records:,}")
        time.sleep(0.1)
    stop.set()
    thread.join(120)
    if failure:
        raise RuntimeError(f"writer failed: {failure[0]!r}") from failure[0]
    rows = sum(writer.stats.rows.values())
    in_db = {table: _count(backend, table) for table in writer.stats.rows}
    return {
        "engine_version": ".".join(map(str, backend.version())),
        "lag_probe": lag_probe,
        "consumed": writer.stats.consumed,
        "records": records,
        "rows": rows,
        "rows_by_table": dict(writer.stats.rows),
        "rows_in_clickhouse": in_db,
        "batches": writer.stats.batches,
        "batch_rows": own.writer_batch_rows,
        "batch_seconds": own.writer_batch_seconds,
        "rows_per_s": steady_rate(flushes),
        "rows_per_s_from_start": round(rows / (flushes[-1][0] - started)) if flushes else None,
        "elapsed_s": round(time.monotonic() - started, 1),
    }


def steady_rate(flushes: list[tuple[float, int]]) -> float | None:
    """Rows/s between the first and the last flush (time, rows so far); None with fewer than two."""
    if len(flushes) < 2 or flushes[-1][0] <= flushes[0][0]:
        return None
    return round((flushes[-1][1] - flushes[0][1]) / (flushes[-1][0] - flushes[0][0]))


def _count(backend: ClickHouseBackend, table: str) -> int:
    return int(backend.query(f"SELECT count() FROM {backend.database}.{table}")[0][0])  # noqa: S608 — identifiers


def measure_both(settings: Settings, run_dir: Path, shipped_seconds: float = 120.0) -> dict[str, Any]:
    """The writer into clickhouse-server and into chdb, as shipped and without the lag probe (see the module doc).

    Each measurement fails alone, with its error.
    """
    out: dict[str, Any] = {"shipped_seconds": shipped_seconds}

    def attempt(name: str, body: Callable[[], dict[str, Any]]) -> None:
        say(f"writer: {name}")
        try:
            out[name] = body()
            say(f"writer: {name}: {out[name]['rows_per_s']} rows/s")
        except Exception as exc:  # noqa: BLE001 — one engine failing must not hide the other's figure
            out[name] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}

    def both_ways(url: str | None, engine: str) -> None:
        for lag_probe in (True, False):
            name = engine if lag_probe else f"{engine}, lag probe off"
            database = f"lwbench_{uuid.uuid4().hex[:8]}"
            limit = shipped_seconds if lag_probe else None

            def body(database: str = database, lag_probe: bool = lag_probe, limit: float | None = limit) -> Any:
                with contextlib.closing(open_backend(url, database, run_dir / "chdb")) as backend:
                    return measure_writer(settings, backend, lag_probe=lag_probe, max_seconds=limit)

            attempt(name, body)

    try:
        with LocalClickHouseServer(run_dir / "clickhouse-server", progress=say) as server:
            both_ways(server.url, "clickhouse-server")
    except Exception as exc:  # noqa: BLE001 — the server not starting is a figure missing, not a crashed suite
        out["clickhouse-server"] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
    both_ways(None, "chdb")
    return out
