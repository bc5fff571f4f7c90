"""The writer's consumer lag per partition, sampled every few seconds from the broker (committed vs high watermark).

The broker is asked, not librdkafka's cache: while ClickHouse is down the writer pauses its partitions, the cache
stops moving, and that is exactly when the lag matters.

The questions go through a consumer of the probe's own, on a thread of its own. On the writer's consumer they
queued behind its long-poll fetches: with idle partitions each watermark request waited out ``fetch.wait.max.ms``
(500 ms), about 18 s for the writer's 36 partitions, and the writer's loop stood still for that long every sample.
The probe's consumer never subscribes, so it never joins the group; it only reads the group's committed offsets.
The writer tells it which partitions it holds (:meth:`LagProbe.track`), a local call that costs nothing.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any, Final

from confluent_kafka import KafkaException, TopicPartition

from streams.metrics import LagGauge, consumer_lag

__all__ = ["LAG_SAMPLE_SECONDS", "LagProbe", "partition_lags"]

log = logging.getLogger(__name__)

#: How often the lag is sampled: one offsets request and one watermark request per partition each time.
LAG_SAMPLE_SECONDS: Final = 5.0


def partition_lags(consumer: Any, partitions: Sequence[TopicPartition]) -> list[tuple[str, int, int]]:
    """(topic, partition, lag) of ``partitions`` for ``consumer``'s group; raises ``KafkaException`` on a timeout."""
    if not partitions:
        return []
    lags: list[tuple[str, int, int]] = []
    for tp in consumer.committed(list(partitions), timeout=5.0):
        low, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=2.0)
        lag = consumer_lag(high, tp.offset, low)
        if lag is not None:
            lags.append((tp.topic, tp.partition, lag))
    return lags


class LagProbe:
    """Sets ``gauge`` every ``every`` seconds on its own thread, from a consumer made by ``open_consumer``.

    ``every`` = ``math.inf`` switches the probe off. A broker hiccup skips one sample and keeps the last values.
    """

    def __init__(self, gauge: LagGauge, open_consumer: Callable[[], Any], every: float = LAG_SAMPLE_SECONDS) -> None:
        self._gauge = gauge
        self._open_consumer = open_consumer
        self._every = every
        self._lock = threading.Lock()
        self._partitions: tuple[tuple[str, int], ...] = ()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def track(self, assignment: Sequence[TopicPartition]) -> None:
        """The partitions the writer holds now; a change is sampled at once rather than at the next tick."""
        partitions = tuple(sorted((tp.topic, tp.partition) for tp in assignment))
        with self._lock:
            changed = partitions != self._partitions
            self._partitions = partitions
        if changed:
            self._wake.set()

    def start(self) -> None:
        """Start sampling on a daemon thread (no-op when switched off or already started)."""
        if self._thread is not None or not math.isfinite(self._every):
            return
        self._thread = threading.Thread(target=self._run, name="writer-lag-probe", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling and close the probe's consumer."""
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(15)
            self._thread = None

    def _run(self) -> None:
        consumer = self._open_consumer()
        try:
            while not self._stopped.is_set():
                self._wake.clear()
                self.sample(consumer)
                self._wake.wait(self._every)
        finally:
            consumer.close()

    def sample(self, consumer: Any) -> None:
        """Ask the broker once and set the gauge (kept as it was when the broker does not answer)."""
        with self._lock:
            partitions = [TopicPartition(topic, partition) for topic, partition in self._partitions]
        try:
            lags = partition_lags(consumer, partitions)
        except KafkaException as exc:
            log.debug("consumer lag not sampled: %s", exc)
            return
        self._gauge.update(lags)
