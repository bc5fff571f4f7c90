"""The writer's consumer lag per partition, sampled every few seconds from the broker (committed vs high watermark).

The broker is asked, not librdkafka's cache: while ClickHouse is down the writer pauses its partitions, the cache
stops moving, and that is exactly when the lag matters.
"""

from __future__ import annotations

import logging
import time
from typing import Final

from confluent_kafka import Consumer, KafkaException, TopicPartition

from streams.metrics import LagGauge, consumer_lag

__all__ = ["LAG_SAMPLE_SECONDS", "LagProbe"]

log = logging.getLogger(__name__)

#: How often the lag is sampled: one offsets request and one watermark request per partition each time.
LAG_SAMPLE_SECONDS: Final = 5.0


class LagProbe:
    """Sets ``gauge`` from a consumer at most every ``every`` seconds; a broker hiccup skips one sample."""

    def __init__(self, gauge: LagGauge, every: float = LAG_SAMPLE_SECONDS) -> None:
        self._gauge = gauge
        self._every = every
        self._next = 0.0

    def maybe_sample(self, consumer: Consumer) -> None:
        """Sample now if the last sample is at least ``every`` seconds old."""
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self._every
        try:
            lags = self._lags(consumer)
        except KafkaException as exc:
            log.debug("consumer lag not sampled: %s", exc)
            return
        if lags is not None:
            self._gauge.update(lags)

    @staticmethod
    def _lags(consumer: Consumer) -> list[tuple[str, int, int]] | None:
        assignment = consumer.assignment()
        if not assignment:
            return []
        lags: list[tuple[str, int, int]] = []
        for tp in consumer.committed(assignment, timeout=2.0):
            watermarks = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=1.0)
            if watermarks is None:
                return None  # the broker did not answer in time: keep the last sample
            low, high = watermarks
            lag = consumer_lag(high, tp.offset, low)
            if lag is not None:
                lags.append((tp.topic, tp.partition, lag))
        return lags
