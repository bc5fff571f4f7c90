"""The ring agent: one detector over every link, ring alerts and snapshots, and each member's ring score.

Rings join customers from any partition, so one :class:`~detectors.entities.rings.RingDetector` sees the whole
link stream: the entity agents send their links, batched, to the single-partition topic ``<app>-ring-links``,
and whichever worker holds that partition runs this agent. That is enough because links are rare next to raw
events (an entity links customers only when it is shared, and a pair is sent once per horizon plus refreshes);
``bench/bench_rings.py`` measures the detector's link rate.

Per batch the agent feeds the links to the detector, then publishes:

- ring alerts (rule ``ring_membership``... see :class:`~detectors.entities.config.RingConfig`) on
  ``risk.alerts.v1``, one per ring episode and tier, naming every member and the shared entities;
- a :class:`~schemas.entities.RingSnapshot` on ``risk.rings.v1`` for every ring that changed (and a dissolved
  one when a ring's links expired);
- a :class:`~schemas.entities.RingMembership` for every member of a changed ring (score 0 for a customer who
  left), keyed by customer to the membership topic the profile agent reads: the member's own engine step fuses
  the ring score with its other detectors (risk propagation).

The detector is checkpointed into the table ``ring-state`` after every batch that changed it, so a restarted or
moved agent resumes from it; links replayed after a crash are idempotent in the detector.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import faust

from detectors.entities.events import EntityEvent, event_from_dict
from detectors.entities.publish import RingPublisher
from detectors.entities.rings import RingDetector
from schemas import serde
from schemas.entities import RingMembership, RingSnapshot
from schemas.outputs import Alert, Tier
from streams.batch_guard import run_to_end
from streams.config_feed import ConfigFeed
from streams.faust_context import event_context
from streams.faust_tables import changelogs_delivered
from streams.settings import Settings

__all__ = ["RingOutputs", "install_ring_agent"]

log = logging.getLogger(__name__)

_STATE_KEY = b"rings"
RING_STATE_MAX_BYTES = 16 * 1024 * 1024


@dataclass
class RingOutputs:
    """Where the ring agent's results go."""

    alert: Callable[[Alert], Awaitable[None]]
    snapshot: Callable[[RingSnapshot], Awaitable[None]]
    membership: Callable[[RingMembership], Awaitable[None]]


SendLinks = Callable[[list[EntityEvent]], Awaitable[None]]
SendTiers = Callable[[list[tuple[str, Tier | None]]], Awaitable[None]]


def install_ring_agent(
    app: faust.App, settings: Settings, feed: ConfigFeed, outputs: RingOutputs, counters: Any
) -> tuple[SendLinks, SendTiers]:
    """Register the ring input topic, the ring-state table and the agent; return its two senders.

    The entity agents send links; the profile agent sends each customer's own tier (without ring propagation)
    when it changes, which the ring score weighs members by.
    """
    topic = app.topic(
        settings.ring_links_topic, key_type=bytes, value_type=bytes, key_serializer="raw",
        value_serializer="raw", partitions=1, internal=True,
    )
    table = app.Table(
        "ring-state", default=None, partitions=1, key_type=bytes, value_type=bytes,
        extra_topic_configs={"max.message.bytes": str(RING_STATE_MAX_BYTES)},
    )
    holder: dict[str, RingDetector] = {}
    tiers: dict[str, Tier] = {}
    publisher = RingPublisher()

    async def send_links(links: list[EntityEvent]) -> None:
        await topic.send(key=b"links", value=serde.dumps({"links": [link.to_dict() for link in links]}), partition=0)

    async def send_tiers(changes: list[tuple[str, Tier | None]]) -> None:
        await topic.send(key=b"tiers", value=serde.dumps({"tiers": changes}), partition=0)

    def detector() -> RingDetector:
        config = feed.live.current.rings
        current = holder.get("d")
        if current is None:
            stored: bytes | None = table.get(_STATE_KEY)
            saved = serde.loads(stored) if stored else None
            current = RingDetector.from_dict(saved["detector"], config) if saved else RingDetector(config)
            tiers.clear()
            tiers.update(saved["tiers"] if saved else {})
            holder["d"] = current
        elif current.config != config:
            current = RingDetector.from_dict(current.to_dict(), config)  # a pushed rule set: same graph, new config
            holder["d"] = current
        return current

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def drop(sender: Any, revoked: set[Any], **_: Any) -> None:
        if any(tp.topic == topic.get_topic_name() for tp in revoked):
            holder.clear()  # the next owner resumes from the table
            publisher.published.clear()

    @app.agent(topic, name="rings")
    async def ring_agent(stream: faust.StreamT[bytes]) -> None:
        batches = cast(faust.Stream[bytes], stream).take_events(
            settings.worker_batch_size, within=settings.worker_batch_seconds
        )

        async def handle(batch: list[faust.EventT[bytes]]) -> None:
            rings = detector()
            for event in batch:
                record = serde.loads(event.value)
                for item in record.get("links", ()):
                    rings.learn_one(event_from_dict(item))
                for customer, tier in record.get("tiers", ()):
                    if tier is None:
                        tiers.pop(customer, None)
                    else:
                        tiers[customer] = tier
            changes = publisher.changes(rings, tiers)
            counters.rings += len(changes.alerts)
            for alert in changes.alerts:
                await outputs.alert(alert)
            for snapshot in changes.snapshots:
                await outputs.snapshot(snapshot)
            for update in changes.memberships:
                await outputs.membership(update)
            with event_context(batch[-1]):
                table[_STATE_KEY] = serde.dumps({"detector": rings.to_dict(), "tiers": tiers})
            await changelogs_delivered(table)  # before the batch is acknowledged: see streams.faust_tables

        async for batch in batches:
            await run_to_end(handle(list(batch)), len(batch), "rings")

    return send_links, send_tiers
