"""Send simulated records to Kafka with confluent-kafka, paced, counted, and optionally written out as labels.

Every message is accounted for: the delivery callback counts delivered and failed messages, the producer is
flushed at the end, and :class:`ProduceError` is raised if anything failed or is still undelivered. Nothing is
dropped silently.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Protocol, cast

from confluent_kafka import Producer

from schemas import serde
from schemas.decode import decode_behavior
from streams.simulate.model import InjectedBurst, InjectedEpisode, ScenarioName, SimRecord, scenario_of

__all__ = ["ProduceError", "ProduceStats", "ProducerLike", "bursts_path_for", "episodes_path_for", "produce"]

# Settings we rely on; the caller's connection settings (bootstrap, SASL, ...) are merged over the defaults.
_DEFAULTS: dict[str, str | int | float | bool] = {
    # Batch for ~20 ms: large lz4 batches at simulator rates with no noticeable delay.
    "linger.ms": 20,
    "compression.type": "lz4",
}
_REQUIRED: dict[str, str | int | float | bool] = {
    # librdkafka's default partitioner is consistent_random (CRC32). Java clients, aiokafka (hence Faust) and
    # kafka-python hash keys with murmur2; using the same hash puts a customer's events in the partition every
    # other client (and the Faust tables' changelogs) expects, so co-partitioned topics stay co-partitioned.
    "partitioner": "murmur2_random",
    # Retries after a timeout must not duplicate or reorder a customer's events.
    "enable.idempotence": True,
}
_MAX_ERRORS_KEPT = 10


class ProduceError(RuntimeError):
    """Some messages were not delivered; ``stats`` says how many and ``stats.errors`` why."""

    def __init__(self, message: str, stats: ProduceStats) -> None:
        super().__init__(message)
        self.stats = stats


@dataclass
class ProduceStats:
    """Counts of one run: ``sent`` = handed to the producer; ``delivered`` / ``failed`` = acknowledged."""

    sent: int = 0
    delivered: int = 0
    failed: int = 0
    by_topic: dict[str, int] = field(default_factory=dict)
    by_label: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    errors: list[str] = field(default_factory=list)

    def snapshot(self) -> ProduceStats:
        """Return an independent copy (for progress callbacks that keep it)."""
        return replace(
            self, by_topic=dict(self.by_topic), by_label=dict(self.by_label), errors=list(self.errors)
        )


class ProducerLike(Protocol):
    """The part of ``confluent_kafka.Producer`` this module uses (a fake in unit tests)."""

    def produce(
        self, topic: str, value: bytes, key: bytes | None, on_delivery: Callable[[Any, Any], None]
    ) -> None:
        """Queue one message; raise BufferError when the local queue is full."""

    def poll(self, timeout: float) -> int:
        """Serve delivery callbacks."""

    def flush(self, timeout: float) -> int:
        """Wait for outstanding messages; return how many are still queued."""


class _Pacer:
    """Token bucket on the monotonic clock: ``rate`` tokens a second, bursts of up to 0.1 s worth."""

    def __init__(self, rate: float, stop: threading.Event | None) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate / 10)
        self.tokens = self.capacity
        self.last = time.monotonic()
        self.stop = stop

    def acquire(self, serve: Callable[[], None]) -> None:
        """Take one token, waiting (and serving callbacks) while the bucket is empty."""
        while True:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
            self.last = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return
            serve()
            wait = (1.0 - self.tokens) / self.rate
            if self.stop is not None:
                if self.stop.wait(wait):
                    return  # the caller checks stop before the next record
            else:
                time.sleep(wait)


class _Labels:
    """The ground-truth JSONL writer and the episodes (and bursts) seen in what was actually sent."""

    def __init__(self, path: Path, planned: Iterable[InjectedEpisode] | None) -> None:
        self.path = path
        self.out: IO[bytes] = path.open("wb")
        self.bursts: dict[str, InjectedBurst] = {}
        self.planned = {e.episode_id: e for e in planned} if planned is not None else None
        self.seen: dict[str, InjectedEpisode] = {}
        self.counts: dict[str, int] = {}

    def write(self, record: SimRecord) -> None:
        head: dict[str, Any] = {
            "topic": record.topic,
            "key": record.key.decode("utf-8", "replace") if record.key is not None else None,
            "ts_ms": record.ts_ms,
            "label": record.label,
            "scenario": scenario_of(record.label),
            "episode_id": record.episode_id,
            "customer_id": record.customer_id,
        }
        if record.label == "malformed":
            head["raw_b64"] = base64.b64encode(record.value).decode("ascii")
            self.out.write(serde.dumps(head) + b"\n")
        else:
            # A valid record's value is one compact JSON object built by serde: splice it in as-is rather than
            # parse and re-serialise it, so the label file carries exactly the bytes that went to Kafka.
            self.out.write(serde.dumps(head)[:-1] + b',"event":' + record.value + b"}\n")
        scenario = scenario_of(record.label)
        if record.episode_id is not None and scenario is not None:
            self._count_episode(record, scenario)
            if record.label == "multi_application_burst":
                self._count_burst(record)

    def _count_episode(self, record: SimRecord, scenario: ScenarioName) -> None:
        assert record.episode_id is not None  # noqa: S101 — checked by the caller
        episode_id = record.episode_id
        self.counts[episode_id] = self.counts.get(episode_id, 0) + 1
        seen = self.seen.get(episode_id)
        if seen is None:
            # Population-level episodes span many customers: the record's customer is not the episode's.
            customer = None if scenario == "population_drift" else record.customer_id
            self.seen[episode_id] = InjectedEpisode(scenario, episode_id, customer, record.ts_ms, record.ts_ms)
        else:
            self.seen[episode_id] = replace(
                seen, start_ms=min(seen.start_ms, record.ts_ms), end_ms=max(seen.end_ms, record.ts_ms)
            )

    def _count_burst(self, record: SimRecord) -> None:
        assert record.episode_id is not None  # noqa: S101 — checked by the caller
        product = str(getattr(decode_behavior(record.value), "product", ""))
        seen = self.bursts.get(record.episode_id)
        if seen is None:
            self.bursts[record.episode_id] = InjectedBurst(
                record.episode_id, record.customer_id or "", record.ts_ms, record.ts_ms, 1, (product,)
            )
            return
        products = seen.products if product in seen.products else (*seen.products, product)
        self.bursts[record.episode_id] = replace(
            seen,
            start_ms=min(seen.start_ms, record.ts_ms),
            end_ms=max(seen.end_ms, record.ts_ms),
            applications=seen.applications + 1,
            products=products,
        )

    def episodes(self) -> list[dict[str, Any]]:
        """Every episode with at least one record sent: as planned if the plan is known, else as seen."""
        out = []
        for episode_id, seen in self.seen.items():
            known = self.planned.get(episode_id) if self.planned is not None else None
            entry = (known or seen).to_json()
            entry["records_sent"] = self.counts[episode_id]
            out.append(entry)
        return sorted(out, key=lambda e: (e["start_ms"], e["episode_id"]))

    def close(self) -> None:
        self.out.close()
        bursts = sorted(self.bursts.values(), key=lambda b: (b.start_ms, b.episode_id))
        bursts_path_for(self.path).write_bytes(serde.dumps([b.to_json() for b in bursts]) + b"\n")
        episodes_path_for(self.path).write_bytes(serde.dumps(self.episodes()) + b"\n")


def bursts_path_for(labels_path: Path) -> Path:
    """Where the bursts companion of a labels file goes: ``<labels_path>.bursts.json``."""
    return labels_path.with_name(labels_path.name + ".bursts.json")


def episodes_path_for(labels_path: Path) -> Path:
    """Where the episodes companion of a labels file goes: ``<labels_path>.episodes.json``."""
    return labels_path.with_name(labels_path.name + ".episodes.json")


def produce(
    config: Mapping[str, str | int | float | bool],
    records: Iterable[SimRecord],
    rate: float | None = None,
    stop: threading.Event | None = None,
    progress: Callable[[ProduceStats], None] | None = None,
    labels_path: Path | None = None,
    *,
    flush_timeout_s: float = 120.0,
    producer_factory: Callable[[dict[str, str | int | float | bool]], ProducerLike] | None = None,
    episodes: Iterable[InjectedEpisode] | None = None,
) -> ProduceStats:
    """Produce ``records`` to Kafka; raise :class:`ProduceError` if any was not delivered.

    ``rate`` is events per wall-clock second (None = as fast as the producer takes them). Setting ``stop``
    ends the run early (what was sent is still flushed and counted). ``progress`` gets a snapshot about once
    a second.
    With ``labels_path``, every sent record is written there as one JSON line (the ground truth, with its
    ``label``, ``scenario`` and ``episode_id``); every episode with at least one record sent goes to
    :func:`episodes_path_for` ``(labels_path)`` and the bursts whose applications were sent, in their older
    form, to :func:`bursts_path_for` ``(labels_path)``. Pass the planned ``episodes`` (``Traffic.episodes``) to
    write them with their details; without them each episode is described from its sent records (window,
    scenario, customer).

    The Kafka message timestamp is left to the producer (wall clock, CreateTime): event time travels in the
    payload. Stamping messages with simulated event time would break on brokers that reject timestamps more
    than an hour ahead (Kafka 4.0's ``message.timestamp.after.max.ms`` default) and let retention delete
    back-dated traffic at once.
    """
    if rate is not None and rate <= 0:
        raise ValueError("rate must be positive, or None for as fast as possible")
    settings: dict[str, str | int | float | bool] = {**_DEFAULTS, **config, **_REQUIRED}
    producer = (producer_factory or _confluent_producer)(settings)
    stats = ProduceStats()
    started = time.monotonic()
    next_progress = started + 1.0

    def on_delivery(err: Any, msg: Any) -> None:
        if err is None:
            stats.delivered += 1
            return
        stats.failed += 1
        if len(stats.errors) < _MAX_ERRORS_KEPT:
            stats.errors.append(f"{msg.topic() if msg is not None else '?'}: {err}")

    def serve() -> None:
        producer.poll(0)

    pacer = _Pacer(rate, stop) if rate is not None else None
    labels = _Labels(labels_path, episodes) if labels_path is not None else None
    try:
        for record in records:
            if stop is not None and stop.is_set():
                break
            if pacer is not None:
                pacer.acquire(serve)
                if stop is not None and stop.is_set():
                    break
            while True:
                try:
                    producer.produce(
                        record.topic, value=record.value, key=record.key, on_delivery=on_delivery
                    )
                    break
                except BufferError:
                    # Local queue full: serve delivery reports until there is room, then retry this record.
                    producer.poll(0.1)
            stats.sent += 1
            stats.by_topic[record.topic] = stats.by_topic.get(record.topic, 0) + 1
            stats.by_label[record.label] = stats.by_label.get(record.label, 0) + 1
            if labels is not None:
                labels.write(record)
            serve()
            now = time.monotonic()
            if progress is not None and now >= next_progress:
                stats.elapsed_s = now - started
                progress(stats.snapshot())
                next_progress = now + 1.0
    finally:
        if labels is not None:
            labels.close()
        remaining = _flush(producer, flush_timeout_s)
        stats.elapsed_s = time.monotonic() - started
    if progress is not None:
        progress(stats.snapshot())
    if stats.failed or remaining:
        raise ProduceError(
            f"{stats.failed} message(s) failed and {remaining} still undelivered of {stats.sent} sent; "
            f"first errors: {stats.errors}",
            stats,
        )
    return stats


def _confluent_producer(settings: dict[str, str | int | float | bool]) -> ProducerLike:
    return cast(ProducerLike, Producer(settings))


def _flush(producer: ProducerLike, timeout_s: float) -> int:
    """Flush in short steps (so delivery callbacks keep flowing); return how many are still undelivered."""
    deadline = time.monotonic() + timeout_s
    remaining = producer.flush(min(1.0, timeout_s))
    while remaining and time.monotonic() < deadline:
        remaining = producer.flush(min(1.0, max(0.0, deadline - time.monotonic())))
    return int(remaining)
