"""`loanwatch writer`: a confluent-kafka consumer group that batches records into ClickHouse.

Offsets are committed only after every row their records carried is in ClickHouse (a link or ring record gives
rows in two tables: all of them are inserted before its offset is committed). ClickHouse being down pauses the
consumer and retries with backoff, forever: the worst a crash or an outage can do is insert a batch twice, and
every table is a ReplacingMergeTree keyed by the record's id, so a replay never shows up doubled with FINAL.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from pydantic import ValidationError

from streams.clickhouse.backend import ClickHouseBackend
from streams.clickhouse.errors import ClickHouseUnavailable
from streams.clickhouse.rows import (
    ALERT_COLUMNS,
    CUSTOMER_LINK_COLUMNS,
    DEAD_LETTER_COLUMNS,
    DECODERS,
    EVENT_COLUMNS,
    LIMIT_ACTION_COLUMNS,
    LINK_COLUMNS,
    PROFILE_SNAPSHOT_COLUMNS,
    RING_COLUMNS,
    RING_MEMBER_COLUMNS,
    Record,
    Row,
    RowBuilder,
    RowsBuilder,
    TableRows,
    alert_row,
    dead_letter_row,
    dead_letter_tuple,
    event_row,
    limit_action_row,
    link_rows,
    profile_snapshot_row,
    ring_rows,
)
from streams.clickhouse.writer_lag import LagProbe
from streams.dead_letters import dead_letter_for, kafka_time
from streams.metrics import WriterMetrics
from streams.settings import Settings

log = logging.getLogger("loanwatch.writer")


@dataclass(frozen=True)
class Route:
    """Where one topic's records go: one row each, in ``table`` (None from ``build``: no row, skipped)."""

    table: str
    columns: tuple[str, ...]
    build: RowBuilder

    @property
    def tables(self) -> Mapping[str, tuple[str, ...]]:
        """The table this route writes, with its columns."""
        return {self.table: self.columns}

    def rows(self, record: Record, now: datetime) -> TableRows | None:
        """The record's row, by table; None when the builder skips it."""
        row = self.build(record, now)
        return None if row is None else {self.table: [row]}


@dataclass(frozen=True)
class FanOutRoute:
    """Where one topic's records go when each gives rows in several tables (any number per table).

    ``build`` makes all of a record's rows from one parse, or raises: the writer buffers them together with the
    record's offset, so either every row of the record is inserted before the offset is committed, or none is
    buffered at all.
    """

    tables: Mapping[str, tuple[str, ...]]
    build: RowsBuilder

    def rows(self, record: Record, now: datetime) -> TableRows:
        """The record's rows, by table (only tables of this route)."""
        out = self.build(record, now)
        unknown = set(out) - set(self.tables)
        if unknown:
            raise RuntimeError(f"row builder made rows for tables its route does not name: {sorted(unknown)}")
        return out


@dataclass
class WriterStats:
    """Counts since start, for progress output and tests."""

    consumed: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    skipped_invalid_events: int = 0
    unreadable_outputs: int = 0
    batches: int = 0
    insert_retries: int = 0
    commits: int = 0


def routes(settings: Settings) -> dict[str, Route | FanOutRoute]:
    """Topic → table routing: raw inputs to ``events``, every output topic to its table(s).

    Links go to ``links`` and, once per side, to ``customer_links``; ring snapshots to ``rings`` and, once per
    member, to ``ring_members``.
    """
    t = settings.topics
    return {
        t.behavior: Route("events", EVENT_COLUMNS, event_row(DECODERS["behavior"])),
        t.repayment: Route("events", EVENT_COLUMNS, event_row(DECODERS["repayment"])),
        t.inquiry: Route("events", EVENT_COLUMNS, event_row(DECODERS["inquiry"])),
        t.alerts: Route("alerts", ALERT_COLUMNS, alert_row),
        t.deadletter: Route("dead_letters", DEAD_LETTER_COLUMNS, dead_letter_row),
        t.limit_actions: Route("limit_actions", LIMIT_ACTION_COLUMNS, limit_action_row),
        t.profiles: Route("profile_snapshots", PROFILE_SNAPSHOT_COLUMNS, profile_snapshot_row),
        t.links: FanOutRoute({"links": LINK_COLUMNS, "customer_links": CUSTOMER_LINK_COLUMNS}, link_rows),
        t.rings: FanOutRoute({"rings": RING_COLUMNS, "ring_members": RING_MEMBER_COLUMNS}, ring_rows),
    }


def table_columns(routing: Mapping[str, Route | FanOutRoute]) -> dict[str, tuple[str, ...]]:
    """Every table the routes write, with its columns; a table named twice must have one column list."""
    columns: dict[str, tuple[str, ...]] = {"dead_letters": DEAD_LETTER_COLUMNS}
    for route in routing.values():
        for table, names in route.tables.items():
            if columns.setdefault(table, names) != names:
                raise ValueError(f"table {table!r} is routed with two different column lists")
    return columns


class ClickHouseWriter:
    """Consume, batch by size or time, insert, then commit; see the module docstring for the guarantees."""

    def __init__(
        self,
        settings: Settings,
        backend: ClickHouseBackend,
        progress: Callable[[WriterStats], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        metrics: WriterMetrics | None = None,
    ) -> None:
        self._settings = settings
        self.metrics = metrics if metrics is not None else WriterMetrics(settings.writer_group)
        self._lag = LagProbe(self.metrics.lag, lambda: Consumer(self._probe_config()))
        self._backend = backend
        self._progress = progress
        self._clock = clock
        self._routes = routes(settings)
        self._columns = table_columns(self._routes)
        self.stats = WriterStats()
        self._pending: dict[str, list[Row]] = {}
        self._pending_rows = 0
        self._offsets: dict[tuple[str, int], int] = {}
        self._revoked: set[tuple[str, int]] = set()
        # Partitions this writer has paused while it waits for ClickHouse; None while it is not waiting.
        self._paused: set[tuple[str, int]] | None = None
        self._consumer: Consumer | None = None

    def _consumer_config(self) -> dict[str, Any]:
        return {
            **self._settings.confluent_config(),
            "group.id": self._settings.writer_group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            # ClickHouse outages are survived by pausing and polling; this only bounds a stuck process.
            "max.poll.interval.ms": 600_000,
        }

    def _probe_config(self) -> dict[str, Any]:
        # The lag probe's own consumer: same group, to read its committed offsets; it never subscribes or commits.
        return {**self._settings.confluent_config(), "group.id": self._settings.writer_group,
                "enable.auto.commit": False}

    def run(self, stop: threading.Event) -> WriterStats:
        """Run until ``stop`` is set, then insert and commit what is buffered and leave the group."""
        consumer = Consumer(self._consumer_config())
        self._consumer = consumer
        consumer.subscribe(list(self._routes), on_revoke=self._on_revoke)
        self._lag.start()
        last_flush = time.monotonic()
        try:
            while not stop.is_set():
                for message in consumer.consume(num_messages=1000, timeout=0.2):
                    self._add(message)
                self._lag.track(consumer.assignment())
                due = time.monotonic() - last_flush >= self._settings.writer_batch_seconds
                if self._pending_rows >= self._settings.writer_batch_rows or (due and self._offsets):
                    self._flush_and_commit(stop)
                    last_flush = time.monotonic()
            self._flush_and_commit(stop=None)
        finally:
            self._lag.stop()
            consumer.close()
            self._consumer = None
        return self.stats

    def _add(self, message: Message) -> None:
        error = message.error()
        if error is not None:
            if error.fatal():
                raise KafkaException(error)
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("consumer error: %s", error)
            return
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        assert topic is not None and partition is not None and offset is not None  # noqa: S101 — set on data
        _, timestamp_ms = message.timestamp()
        record = Record(topic, partition, offset, message.key(), message.value() or b"", timestamp_ms / 1000)
        self.stats.consumed += 1
        self.metrics.consumed(topic)
        route = self._routes[topic]
        try:
            # Every row of the record, in every table, is built before any is buffered: all or nothing.
            rows = route.rows(record, self._clock())
        except (ValidationError, UnicodeDecodeError, ValueError) as exc:
            # One of our own output topics holds something we cannot read: keep it as a dead letter row.
            self.stats.unreadable_outputs += 1
            self.metrics.unreadable.inc()
            rows = {"dead_letters": [dead_letter_tuple(dead_letter_for(record, exc, kafka_time(record.timestamp_s)))]}
        if rows is None:
            self.stats.skipped_invalid_events += 1
            self.metrics.skipped_events.inc()
        else:
            for table, table_rows in rows.items():
                self._pending.setdefault(table, []).extend(table_rows)
                self._pending_rows += len(table_rows)
        self._offsets[(topic, partition)] = offset + 1
        self._revoked.discard((topic, partition))

    def _flush_and_commit(self, stop: threading.Event | None) -> None:
        # The batch is what was read before this flush: records read while an insert is retried (_wait) start
        # the next batch, rows and offsets together. Otherwise a record whose rows went to a table already
        # inserted in this flush would be committed with its rows dropped.
        pending, offsets = self._pending, self._offsets
        self._pending, self._offsets, self._pending_rows = {}, {}, 0
        for table, rows in pending.items():
            if rows:
                self._insert_with_retry(table, rows, stop)
                self.stats.rows[table] = self.stats.rows.get(table, 0) + len(rows)
        if any(pending.values()):
            self.stats.batches += 1
            self.metrics.batch_rows.observe(sum(len(rows) for rows in pending.values()))
        self._commit(offsets)
        if self._progress is not None:
            self._progress(self.stats)

    def _insert_with_retry(self, table: str, rows: Sequence[Row], stop: threading.Event | None) -> None:
        columns = self._columns_for(table)
        delay = 0.5
        while True:
            started = time.monotonic()
            try:
                self._backend.insert(table, columns, rows)
                self.metrics.inserted(table, len(rows), time.monotonic() - started)
                break
            except ClickHouseUnavailable as exc:
                self.stats.insert_retries += 1
                self.metrics.insert_failed(table)
                log.warning(
                    "ClickHouse unavailable (%s); %d rows for %s kept, retry in %.1fs",
                    exc,
                    len(rows),
                    table,
                    delay,
                )
                self._pause_assigned()
                self._wait(delay, stop)
                delay = min(delay * 2, self._settings.writer_retry_max_seconds)
        self._resume_assigned()

    def _pause_assigned(self) -> None:
        """Pause every partition assigned now that is not paused yet (all of them at the first failed insert)."""
        if self._consumer is None:
            return
        if self._paused is None:
            self._paused = set()
            self.metrics.paused.set(1)
        fresh = [tp for tp in self._consumer.assignment() if (tp.topic, tp.partition) not in self._paused]
        if fresh:
            self._consumer.pause(fresh)
            self._paused.update((tp.topic, tp.partition) for tp in fresh)

    def _resume_assigned(self) -> None:
        """Resume every partition assigned now, not a list taken when the outage began.

        librdkafka keeps a partition's pause across a rebalance that takes it away and gives it back, while a
        rebalance during the wait may have added, dropped or re-assigned partitions: only the current assignment
        says what must fetch again.
        """
        if self._paused is None or self._consumer is None:
            return
        self._consumer.resume(self._consumer.assignment())
        self._paused = None
        self.metrics.paused.set(0)

    def _wait(self, seconds: float, stop: threading.Event | None) -> None:
        # Keep serving the group while waiting (heartbeats, rebalances); paused partitions deliver nothing new,
        # and anything already fetched is kept, never dropped.
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self._consumer is not None:
                message = self._consumer.poll(0.1)
                if message is not None:
                    self._add(message)
                self._pause_assigned()  # a rebalance inside poll() may have assigned partitions that fetch
                self._lag.track(self._consumer.assignment())
            else:
                time.sleep(0.1)
        del stop  # an outage is waited out even during shutdown: buffered rows must land first

    def _columns_for(self, table: str) -> tuple[str, ...]:
        return self._columns[table]

    def _commit(self, batch: Mapping[tuple[str, int], int]) -> None:
        offsets = [TopicPartition(t, p, o) for (t, p), o in batch.items() if (t, p) not in self._revoked]
        if not offsets or self._consumer is None:
            return
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
            self.stats.commits += 1
            self.metrics.commits.inc()
        except KafkaException as exc:
            self.metrics.commit_failures.inc()
            # The rows are in ClickHouse; uncommitted records come again and dedupe by id.
            log.warning("offset commit failed (%s); records will be re-read and deduplicated", exc)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Buffered rows of revoked partitions would be committed by nobody: the new owner re-reads them from
        # the last commit. Dropping the offsets (not the already-inserted rows) keeps that at-least-once.
        self._revoked.update((tp.topic, tp.partition) for tp in partitions)
        for tp in partitions:
            self._offsets.pop((tp.topic, tp.partition), None)
        if self._paused is not None:
            # librdkafka would keep these paused even when they come back after the outage; resume them while
            # they are still assigned, and pause them again if this rebalance gives them back during the wait.
            leaving = [tp for tp in partitions if (tp.topic, tp.partition) in self._paused]
            if leaving:
                consumer.resume(leaving)
                self._paused.difference_update((tp.topic, tp.partition) for tp in leaving)
