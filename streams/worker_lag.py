"""The worker's consumer lag per partition: a Faust timer compares each owned partition's highwater with its commit.

Both numbers come from the worker's own consumer, without asking the broker: the highwater arrives with every
fetch response (``Consumer.highwater``), and the committed offsets are those Faust read from the group at
assignment and has committed since. Faust keeps the latter in ``Consumer._committed_offset`` (no public
accessor); its Monitor's public ``tp_committed_offsets`` only learns a partition at the first commit after start,
so a worker stuck before its first commit would report nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

import faust

from streams.agent_watchdog import exit_now
from streams.metrics import LagGauge, consumer_lag
from streams.stall_watch import EXIT_STALLED, AgentActivity, StallWatch

__all__ = ["LAG_SAMPLE_SECONDS", "install_lag_probe", "worker_lags"]

log = logging.getLogger(__name__)

#: How often the lag is sampled (cheap: no broker round trip).
LAG_SAMPLE_SECONDS = 5.0


def worker_lags(
    assignment: Iterable[Any], highwater: Any, committed: Mapping[Any, int | None], topics: Collection[str]
) -> list[tuple[str, int, int]]:
    """(topic, partition, lag) of every assigned partition of ``topics`` whose highwater is known.

    ``highwater(tp)`` may return None (nothing fetched yet) or raise AssertionError (the partition is being
    revoked); such partitions are left out of this sample.
    """
    out: list[tuple[str, int, int]] = []
    for tp in assignment:
        if tp.topic not in topics:
            continue  # changelogs and other internal topics are read, never committed
        try:
            high = highwater(tp)
        except AssertionError:
            continue
        if high is None:
            continue
        lag = consumer_lag(high, committed.get(tp))
        if lag is not None:
            out.append((tp.topic, tp.partition, lag))
    return out


def install_lag_probe(
    app: faust.App,
    gauge: LagGauge,
    topics: Collection[str],
    stall: StallWatch | None = None,
    exit_process: Callable[[int], None] = exit_now,
    activity: AgentActivity | None = None,
    broker_reachable: Callable[[], bool] | None = None,
) -> None:
    """Sample the lag of ``topics``' owned partitions into ``gauge`` every :data:`LAG_SAMPLE_SECONDS`.

    With ``stall``, a worker whose owned partitions have had records waiting and neither a commit nor a record
    applied for its ``stall_seconds`` logs them and ends with :data:`streams.stall_watch.EXIT_STALLED`.
    ``activity`` is the engine agent's (the partitions it applied records of, whether it is inside a batch); each
    sample takes and empties it.
    ``broker_reachable`` (blocking; run on a thread) is asked before a stall ends the worker: during a Kafka
    outage nothing commits, and the worker waits the outage out instead.
    """

    @app.timer(interval=LAG_SAMPLE_SECONDS)  # type: ignore[untyped-decorator]
    async def sample_lag() -> None:
        consumer = app.consumer
        committed: Mapping[Any, int | None] = {
            **app.monitor.tp_committed_offsets,
            **getattr(consumer, "_committed_offset", {}),
        }
        lags = worker_lags(consumer.assignment(), consumer.highwater, committed, topics)
        gauge.update(lags)
        if stall is None:
            return
        by_key = {(tp.topic, tp.partition): offset for tp, offset in committed.items()}
        restoring = bool(getattr(app, "in_recovery", False) or getattr(app, "rebalancing", False))
        moved = activity.take_moving((t, p) for t, p, _ in lags) if activity is not None else set()
        stalled = stall.observe(
            time.monotonic(), [(topic, p, lag, by_key.get((topic, p))) for topic, p, lag in lags], restoring, moved
        )
        if stalled and broker_reachable is not None and not await asyncio.to_thread(broker_reachable):
            log.warning("%.0fs without progress on partitions with records waiting, and Kafka does not answer: waiting",
                        max(s.seconds for s in stalled))
            stall.hold(time.monotonic())
            return
        if stalled:
            log.critical(
                "%.0fs without progress on partitions with records waiting: %s; ending the worker (exit %d) for its "
                "supervisor to start it again (it re-reads from the last commit)",
                max(s.seconds for s in stalled),
                ", ".join(f"{s.topic}[{s.partition}] lag {s.lag} at {s.committed}" for s in stalled),
                EXIT_STALLED,
            )
            exit_process(EXIT_STALLED)
