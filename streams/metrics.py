"""Prometheus metrics of the worker and the ClickHouse writer, defined in one place (listed in docs/metrics.md).

Each process builds one :class:`WorkerMetrics` or :class:`WriterMetrics` on its own registry (no import-time
globals: tests build as many as they like) and serves it with :func:`start_exporter`. Label values come from
bounded sets only (topics, partitions, tiers, rule ids, actions, dead-letter kinds, tables), never from
payloads or error messages. Hot paths hold on to label children created once (``.labels()`` is a dict lookup
under a lock, too slow to repeat per event).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, get_args
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)

from schemas.outputs import ErrorKind, Tier

__all__ = ["Exporter", "LagGauge", "WorkerMetrics", "WriterMetrics", "consumer_lag", "start_exporter"]

log = logging.getLogger(__name__)

#: Seconds one engine micro-batch takes: batches are up to a few hundred events, normally well under a second.
BATCH_SECONDS_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Events per engine micro-batch (worker_batch_size caps it; 500 by default).
BATCH_EVENTS_BUCKETS: Final = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
#: Rows per writer flush (writer_batch_rows caps it; 5000 by default).
BATCH_ROWS_BUCKETS: Final = (1, 10, 50, 100, 500, 1000, 2500, 5000, 10_000, 25_000, 50_000, 100_000)
#: Seconds one ClickHouse insert takes.
INSERT_SECONDS_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

ENGINE_STAGES: Final = ("engine", "outputs", "state")
"""``engine``: decode and every detector for the batch; ``outputs``: alerts, actions, snapshots and entity
observations sent and acknowledged by the broker; ``state``: state and model checkpoints written and acknowledged
(the batch's delivery order, see streams.engine_agent)."""


def _new_registry() -> CollectorRegistry:
    """A registry with the process, platform and garbage-collector metrics every Prometheus target shows."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def consumer_lag(high: int, committed: int | None, low: int = 0) -> int | None:
    """Records a consumer group still has to process in one partition, or None when that is unknown.

    ``high`` is the partition's high watermark (the offset the next record will get), ``committed`` the group's
    committed offset (the next record it will read; None or negative when the group never committed there:
    it then starts at ``low``, the earliest offset kept, as ``auto.offset.reset=earliest`` says).
    """
    if high < 0:
        return None
    start = committed if committed is not None and committed >= 0 else max(low, 0)
    return max(high - start, 0)


class LagGauge:
    """``loanwatch_consumer_lag_messages`` for one consumer group; forgets partitions it no longer owns."""

    def __init__(self, registry: CollectorRegistry, group: str) -> None:
        self._group = group
        self._gauge = Gauge(
            "loanwatch_consumer_lag_messages",
            "Records of a partition the consumer group has not committed yet (high watermark - committed offset).",
            ["group", "topic", "partition"],
            registry=registry,
        )
        self._seen: set[tuple[str, int]] = set()

    def update(self, lags: Iterable[tuple[str, int, int]]) -> None:
        """Set the lag of every (topic, partition, lag) given and drop the series of partitions not given."""
        current: set[tuple[str, int]] = set()
        for topic, partition, lag in lags:
            self._gauge.labels(self._group, topic, str(partition)).set(lag)
            current.add((topic, partition))
        for topic, partition in self._seen - current:
            self._gauge.remove(self._group, topic, str(partition))
        self._seen = current


class WorkerMetrics:
    """What a Faust worker exposes: input by topic, dead letters, alerts, limit actions, batch latency, lag, models."""

    def __init__(self, group: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else _new_registry()
        r = self.registry
        self._events = Counter(
            "loanwatch_events_consumed_total", "Records the worker took from each input topic.", ["topic"], registry=r
        )
        dead_letters = Counter(
            "loanwatch_dead_letters_total",
            "Records sent to the dead-letter topic, by kind of failure (the DeadLetter's error_kind).",
            ["reason"],
            registry=r,
        )
        # Every kind exists from the start (at 0), so rate() and alerts see the first dead letter as an increase.
        self._dead_letters = {kind: dead_letters.labels(kind) for kind in get_args(ErrorKind)}
        self._alerts = Counter(
            "loanwatch_alerts_total", "Alerts published, by tier and rule id.", ["tier", "rule"], registry=r
        )
        self._alert_children: dict[tuple[str, str], Counter] = {}
        limit_actions = Counter(
            "loanwatch_limit_actions_total", "Limit actions published, by action.", ["action"], registry=r
        )
        self._limit_actions = {a: limit_actions.labels(a) for a in ("freeze", "reduce_limit", "review", "restore")}
        self.snapshots = Counter(
            "loanwatch_profile_snapshots_total", "Profile snapshots published.", registry=r
        )
        stage_seconds = Histogram(
            "loanwatch_engine_batch_seconds",
            "Seconds one micro-batch spent in each stage (engine: decode and detectors; outputs: sends acknowledged; "
            "state: table writes acknowledged).",
            ["stage"],
            buckets=BATCH_SECONDS_BUCKETS,
            registry=r,
        )
        self.engine_seconds = stage_seconds.labels("engine")
        self.outputs_seconds = stage_seconds.labels("outputs")
        self.state_seconds = stage_seconds.labels("state")
        self.batch_events = Histogram(
            "loanwatch_engine_batch_events", "Records per engine micro-batch.", buckets=BATCH_EVENTS_BUCKETS,
            registry=r,
        )
        self._checkpoint_age = Gauge(
            "loanwatch_model_checkpoint_age_seconds",
            "Seconds since the models of an input partition owned by this worker were last checkpointed or loaded.",
            ["partition"],
            registry=r,
        )
        self.lag = LagGauge(r, group)
        self._topic_children: dict[str, Counter] = {}

    def events(self, topic: str, count: int) -> None:
        """Count ``count`` records taken from ``topic``."""
        child = self._topic_children.get(topic)
        if child is None:
            child = self._topic_children[topic] = self._events.labels(topic)
        child.inc(count)

    def dead_letter(self, kind: ErrorKind) -> None:
        """Count one dead letter of ``kind``."""
        self._dead_letters[kind].inc()

    def alert(self, tier: Tier, rule: str) -> None:
        """Count one alert."""
        child = self._alert_children.get((tier, rule))
        if child is None:
            child = self._alert_children[(tier, rule)] = self._alerts.labels(tier, rule)
        child.inc()

    def limit_action(self, action: str) -> None:
        """Count one limit action."""
        self._limit_actions[action].inc()

    def track_checkpoint_age(self, partition: int, age: Callable[[], float]) -> None:
        """Report ``age()`` (read at each scrape) as the checkpoint age of ``partition``'s models."""
        self._checkpoint_age.labels(str(partition)).set_function(age)

    def forget_checkpoint(self, partition: int) -> None:
        """Stop reporting ``partition`` (its models moved to another worker)."""
        try:
            self._checkpoint_age.remove(str(partition))
        except KeyError:
            pass  # never tracked here


class WriterMetrics:
    """What the ClickHouse writer exposes: records in, rows out, batch sizes, insert latency and failures, lag."""

    def __init__(self, group: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else _new_registry()
        r = self.registry
        self._consumed = Counter(
            "loanwatch_writer_records_consumed_total", "Records the writer read, by topic.", ["topic"], registry=r
        )
        self._consumed_children: dict[str, Counter] = {}
        self._rows = Counter(
            "loanwatch_writer_rows_inserted_total", "Rows inserted into ClickHouse, by table.", ["table"], registry=r
        )
        self._insert_seconds = Histogram(
            "loanwatch_writer_insert_seconds", "Seconds one successful ClickHouse insert took, by table.",
            ["table"], buckets=INSERT_SECONDS_BUCKETS, registry=r,
        )
        self._insert_failures = Counter(
            "loanwatch_writer_insert_failures_total",
            "Inserts that failed because ClickHouse was unavailable (each is retried), by table.",
            ["table"],
            registry=r,
        )
        self.batch_rows = Histogram(
            "loanwatch_writer_batch_rows", "Rows per flush, over all tables.", buckets=BATCH_ROWS_BUCKETS,
            registry=r,
        )
        self.unreadable = Counter(
            "loanwatch_writer_unreadable_records_total",
            "Records of output topics the writer could not read; stored as dead_letters rows.",
            registry=r,
        )
        self.skipped_events = Counter(
            "loanwatch_writer_skipped_events_total",
            "Input records that are not valid events; not stored in events (the worker dead-letters them).",
            registry=r,
        )
        self.commits = Counter("loanwatch_writer_commits_total", "Offset commits after inserts.", registry=r)
        self.commit_failures = Counter(
            "loanwatch_writer_commit_failures_total", "Offset commits that failed (records are re-read).", registry=r
        )
        self.paused = Gauge(
            "loanwatch_writer_paused", "1 while the writer has paused its partitions to wait for ClickHouse.",
            registry=r,
        )
        self.lag = LagGauge(r, group)
        self._table_children: dict[str, tuple[Counter, Histogram, Counter]] = {}

    def consumed(self, topic: str) -> None:
        """Count one record read from ``topic``."""
        child = self._consumed_children.get(topic)
        if child is None:
            child = self._consumed_children[topic] = self._consumed.labels(topic)
        child.inc()

    def _table(self, table: str) -> tuple[Counter, Histogram, Counter]:
        children = self._table_children.get(table)
        if children is None:
            children = (
                self._rows.labels(table), self._insert_seconds.labels(table), self._insert_failures.labels(table)
            )
            self._table_children[table] = children
        return children

    def inserted(self, table: str, rows: int, seconds: float) -> None:
        """Record one successful insert of ``rows`` rows into ``table`` that took ``seconds``."""
        counter, histogram, _ = self._table(table)
        counter.inc(rows)
        histogram.observe(seconds)

    def insert_failed(self, table: str) -> None:
        """Count one failed insert into ``table``."""
        self._table(table)[2].inc()


@dataclass
class Exporter:
    """A running ``/metrics`` HTTP endpoint; :meth:`close` stops it."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        """The port it listens on (the one asked for, or the one the system chose for port 0)."""
        return int(self.server.server_address[1])

    def close(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def start_exporter(registry: CollectorRegistry, port: int, addr: str) -> Exporter:
    """Serve ``registry`` at ``http://addr:port/metrics`` from a daemon thread; raises OSError if the port is taken."""
    server, thread = start_http_server(port, addr=addr, registry=registry)
    exporter = Exporter(server, thread)
    log.info("Prometheus metrics at http://%s:%d/metrics", addr, exporter.port)
    return exporter
