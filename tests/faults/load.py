"""Steady simulated load for the service-outage tests, and what they watch while it flows.

- :func:`simulated_load`: seeded simulator traffic (bursts, every scenario, a few malformed messages), as many
  records as asked for, in consecutive spans of event time.
- :class:`SteadyProducer`: produces those records at a fixed rate from a thread, with an idempotent producer
  that buffers and retries for minutes, so a broker outage loses nothing on the test's own side; it records
  the coordinates the broker gave each record (the ground truth).
- :class:`TopicWatch`: a live reader of one topic that notes when each record arrived (a stalled worker shows
  as a gap).
- :class:`Offsets`: a consumer group's committed offsets and the topics' ends, read from the broker.
- :class:`WriterProcess`: ``loanwatch writer`` as a real process, as it is deployed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaException, Producer, TopicPartition

from streams.settings import Settings
from streams.simulate.model import SimRecord
from streams.simulate.traffic import SimConfig, Traffic

Where = tuple[str, int]
SPAN_HOURS = 4.0
SPAN_CUSTOMERS = 2000


def simulated_load(
    settings: Settings, count: int, seed: int, start: datetime, malformed_share: float
) -> list[SimRecord]:
    """At least ``count`` simulated records: consecutive 4-hour spans of 2,000 customers, one seed each."""
    topics = settings.topics
    records: list[SimRecord] = []
    span = 0
    while len(records) < count:
        config = SimConfig(
            customers=SPAN_CUSTOMERS,
            seed=seed + span,
            start=start + timedelta(hours=SPAN_HOURS * span),
            hours=SPAN_HOURS,
            burst_share=0.05,  # about one burst per 75 records: alerts flow all the time
            malformed_share=malformed_share,
            behavior_topic=topics.behavior,
            repayment_topic=topics.repayment,
            inquiry_topic=topics.inquiry,
        )
        records.extend(Traffic(config).records())
        span += 1
    return records[:count]


@dataclass(frozen=True)
class Delivered:
    """A record the broker acknowledged, where it put it."""

    record: SimRecord
    partition: int
    offset: int


class SteadyProducer(threading.Thread):
    """Produce ``records`` in order at ``rate`` per second until :meth:`finish`; buffer while the broker is away."""

    def __init__(self, settings: Settings, records: Sequence[SimRecord], rate: float) -> None:
        super().__init__(name="steady-producer", daemon=True)
        self._records = records
        self._rate = rate
        self._producer = Producer(
            {
                **settings.confluent_config(),
                "partitioner": "murmur2_random",  # the Java client's: a customer's events stay in one partition
                "linger.ms": 10,
                "compression.type": "lz4",
                # Retried sends are neither lost nor doubled nor reordered, for as long as a broker outage lasts.
                "enable.idempotence": True,
                "delivery.timeout.ms": 900_000,
                "queue.buffering.max.messages": 1_000_000,
            }
        )
        self.delivered: list[Delivered] = []
        self.failures: list[str] = []
        self.sent = 0
        self._lock = threading.Lock()
        self._enough = threading.Event()

    def run(self) -> None:
        """Produce every record on schedule, then wait for every acknowledgement."""
        started = time.monotonic()
        for index, record in enumerate(self._records):
            if self._enough.is_set():
                break
            ahead = index / self._rate - (time.monotonic() - started)
            if ahead > 0:
                self._producer.poll(ahead)
            while True:
                try:
                    self._producer.produce(
                        record.topic, record.value, record.key, on_delivery=self._on_delivery(record)
                    )
                    break
                except BufferError:
                    self._producer.poll(0.1)
            self.sent = index + 1
            self._producer.poll(0)
        while self._producer.flush(1.0) > 0:
            pass

    def _on_delivery(self, record: SimRecord) -> Any:
        def on_delivery(error: Any, message: Any) -> None:
            with self._lock:
                if error is not None:
                    self.failures.append(str(error))
                else:
                    self.delivered.append(Delivered(record, message.partition(), message.offset()))

        return on_delivery

    def finish(self, timeout: float) -> list[Delivered]:
        """Stop producing, wait for the last acknowledgement; return every record sent (fails if one was lost)."""
        self._enough.set()
        self.join(timeout)
        assert not self.is_alive(), f"the producer did not finish in {timeout:.0f}s ({self.sent} sent)"
        assert not self.failures, f"records were lost on the producer's side: {self.failures[:3]}"
        assert len(self.delivered) == self.sent
        return list(self.delivered)


class TopicWatch(threading.Thread):
    """Read ``topic`` from the start while the test runs; note each record's arrival (monotonic seconds)."""

    def __init__(self, settings: Settings, topic: str) -> None:
        super().__init__(name=f"watch-{topic}", daemon=True)
        self._consumer = Consumer(
            {
                **settings.confluent_config(),
                "group.id": f"lwtest-watch-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        self._consumer.subscribe([topic])
        self._halt = threading.Event()
        self.arrivals: list[tuple[float, bytes]] = []

    def run(self) -> None:
        """Poll until stopped; errors while the broker is away are retried by the client."""
        try:
            while not self._halt.is_set():
                message = self._consumer.poll(0.2)
                if message is not None and message.error() is None:
                    self.arrivals.append((time.monotonic(), message.value() or b""))
        finally:
            self._consumer.close()

    def between(self, start: float, end: float) -> list[float]:
        """Arrival times inside ``[start, end]``."""
        return [t for t, _ in list(self.arrivals) if start <= t <= end]

    def stop(self) -> list[bytes]:
        """Stop reading; return every value read, in arrival order."""
        self._halt.set()
        self.join(30)
        return [value for _, value in self.arrivals]


def longest_gap(times: Sequence[float], start: float, end: float) -> float:
    """The longest stretch of ``[start, end]`` with no arrival in it."""
    points = [start, *sorted(times), end]
    return max(b - a for a, b in zip(points, points[1:], strict=False))


class Offsets:
    """Committed offsets of one consumer group and the ends of its topics, read from the broker."""

    def __init__(self, settings: Settings, group: str, topics: Sequence[str]) -> None:
        self._consumer = Consumer({**settings.confluent_config(), "group.id": group, "enable.auto.commit": False})
        self._partitions = [TopicPartition(t, p) for t in topics for p in range(settings.partitions)]

    def committed(self) -> dict[Where, int] | None:
        """Committed offset per partition (0 where none yet); None while the broker cannot answer."""
        try:
            found = self._consumer.committed(self._partitions, timeout=5)
        except KafkaException:
            return None
        return {(tp.topic, tp.partition): 0 if tp.offset == OFFSET_INVALID else tp.offset for tp in found}

    def ends(self) -> dict[Where, int] | None:
        """The end (high watermark) of every partition; None while the broker cannot answer."""
        try:
            return {
                (tp.topic, tp.partition): self._consumer.get_watermark_offsets(tp, timeout=5, cached=False)[1]
                for tp in self._partitions
            }
        except KafkaException:
            return None

    def lag(self) -> int | None:
        """Records not yet committed, over all partitions; None while the broker cannot answer."""
        done, ends = self.committed(), self.ends()
        if done is None or ends is None:
            return None
        return sum(ends[w] - done[w] for w in ends)

    def close(self) -> None:
        """Leave the broker (the group is only read, never joined)."""
        self._consumer.close()


class WriterProcess:
    """``loanwatch writer`` in a process of its own, with its log in ``home/writer.log``."""

    def __init__(self, settings: Settings) -> None:
        self.log = settings.home / "writer.log"
        env = {**os.environ, **settings.to_env(), "LOANWATCH_LOG_LEVEL": "INFO"}
        with self.log.open("ab") as out:
            self._proc = subprocess.Popen(  # noqa: S603 — our interpreter, our module
                [sys.executable, "-m", "streams.cli", "writer"], env=env, stdout=out, stderr=subprocess.STDOUT
            )
        self.pid = self._proc.pid

    def assert_alive(self) -> None:
        """Fail with the log's tail if the writer exited."""
        assert self._proc.poll() is None, tail(self.log, "the writer exited")

    def stop(self) -> None:
        """SIGTERM (the writer inserts and commits what it holds), SIGKILL after a minute."""
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(60)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


def tail(log: Path, what: str, lines: int = 60) -> str:
    """``what`` followed by the last lines of ``log``."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return what + "\n" + "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env_seconds(name: str, default: float) -> float:
    """A duration from the environment (seconds), or ``default``."""
    raw = os.environ.get(name)
    return float(raw) if raw else default
