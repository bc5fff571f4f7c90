"""The entity agent: behaviour events re-keyed by device / IP / network / card / phone / address book, links.

The profile agent already decodes every behaviour event; per micro-batch it sends the entities those events
carry to the internal topic ``<app>-entity-observations``, one record per target partition (a list of
``[kind, value, customer, ts_ms]``), the partition chosen by a stable hash of ``kind:value``. So every
observation of one entity lands in one partition, whichever customer partition it came from, and the
re-keying costs at most one record per partition per batch rather than one per entity.

This agent keeps one :class:`~detectors.entities.entity_state.EntityState` per entity in the Faust table
``entity-state`` (its changelog partition is the observation partition, so an entity's state moves with it),
applies the batch's observations in event-time order, writes each touched entity once, and publishes the
links it emits to ``risk.links.v1`` and, batched, to the ring agent's single-partition input. Every
``LOANWATCH_ENTITY_SWEEP_SECONDS`` (600) it deletes the states of entities nobody used within the retention
(30 days of event time by default).
"""

from __future__ import annotations

import logging
import time
import zlib
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, cast

import faust

from detectors.entities.entity_state import EntityState, observe
from detectors.entities.events import EntityEvent, LinkEvent, PublicEntity, entity_from
from detectors.entities.keys import entity_keys
from schemas import serde
from schemas.behavior import BehaviorBase
from schemas.common import from_ms, to_ms
from schemas.entities import EntityLink, EntityRef
from streams.batch_guard import run_to_end
from streams.config_feed import ConfigFeed
from streams.faust_context import event_context
from streams.faust_tables import changelogs_delivered
from streams.settings import Settings

__all__ = ["EntityFanout", "install_entity_agent", "observation_partition", "to_contract"]

log = logging.getLogger(__name__)

Observation = tuple[str, str, str, int]
"""(kind, value, customer_id, ts_ms)."""


def observation_partition(kind: str, value: str, partitions: int) -> int:
    """The partition of an entity: a hash that is the same in every process (unlike ``hash()``)."""
    return zlib.crc32(f"{kind}:{value}".encode()) % partitions


def to_contract(link: LinkEvent) -> EntityLink:
    """The published form of a link."""
    return EntityLink(
        customer_a=link.customer_a, customer_b=link.customer_b,
        entity=EntityRef(kind=link.entity.kind, value=link.entity.value),
        first_seen=from_ms(link.first_seen_ms), last_seen=from_ms(link.last_seen_ms), refresh=link.refresh,
    )


class EntityFanout:
    """Collects one batch's entity observations in the profile agent and sends them, one record per partition.

    ``min_contacts`` reads the smallest address book that names an entity from the rule set in force: only the
    event carries the book's size, so that threshold applies here, before the entity agent.
    """

    def __init__(self, topic: faust.TopicT, partitions: int, min_contacts: Callable[[], int]) -> None:
        self._topic = topic
        self._partitions = partitions
        self._min_contacts = min_contacts
        self._pending: dict[int, list[Observation]] = defaultdict(list)

    def add(self, event: BehaviorBase) -> None:
        """Remember the entities ``event`` carries."""
        ts = to_ms(event.ts)
        for key in entity_keys(event, self._min_contacts()):
            p = observation_partition(key.kind, key.value, self._partitions)
            self._pending[p].append((key.kind, key.value, event.customer_id, ts))

    async def flush(self) -> int:
        """Send what the batch collected; returns the number of observations sent."""
        sent = 0
        for partition, items in self._pending.items():
            await self._topic.send(key=str(partition).encode(), value=serde.dumps(items), partition=partition)
            sent += len(items)
        self._pending.clear()
        return sent


Publish = Callable[[EntityLink], Awaitable[None]]
ForwardLinks = Callable[[list[EntityEvent]], Awaitable[None]]


def install_entity_agent(
    app: faust.App, settings: Settings, feed: ConfigFeed, publish: Publish, forward: ForwardLinks, counters: Any
) -> EntityFanout:
    """Register the observation topic, the entity table and agent; return the fan-out for the profile agent."""
    topic = app.topic(
        settings.entity_observations_topic, key_type=bytes, value_type=bytes, key_serializer="raw",
        value_serializer="raw", partitions=settings.partitions, internal=True,
    )
    states = app.Table("entity-state", default=None, partitions=settings.partitions, key_type=bytes, value_type=bytes)
    owned: dict[int, faust.EventT[bytes]] = {}  # partition -> its latest event (the context to delete keys in)
    clock = {"wm": 0, "swept": time.monotonic()}

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def forget(sender: Any, revoked: set[Any], **_: Any) -> None:
        for tp in revoked:
            if tp.topic == topic.get_topic_name():
                owned.pop(tp.partition, None)

    def sweep(retention_ms: int) -> int:
        """Delete the states of entities nobody used within the retention (most devices and IPs, eventually)."""
        cutoff = clock["wm"] - retention_ms
        stale = []
        for key, value in list(states.items()):
            kind, _, rest = key.decode().partition(":")
            partition = observation_partition(kind, rest, settings.partitions)
            if partition in owned and (serde.loads(value).get("wm") or 0) < cutoff:
                stale.append((key, partition))
        for key, partition in stale:
            with event_context(owned[partition]):
                del states[key]
        return len(stale)

    @app.agent(topic, name="entities")
    async def entity_agent(stream: faust.StreamT[bytes]) -> None:
        batches = cast(faust.Stream[bytes], stream).take_events(
            settings.worker_batch_size, within=settings.worker_batch_seconds
        )

        async def handle(batch: list[faust.EventT[bytes]]) -> None:
            live = feed.live
            config = live.current.entities
            by_key: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
            source: dict[tuple[str, str], faust.EventT[bytes]] = {}
            for event in batch:
                owned[event.message.partition] = event
                for kind, value, customer, ts in serde.loads(event.value):
                    by_key[(kind, value)].append((int(ts), str(customer)))
                    source[(kind, value)] = event
            newest = max((ts for items in by_key.values() for ts, _ in items), default=0)
            allow = live.entity_allowlist(newest)
            links: list[LinkEvent] = []
            forwarded: list[EntityEvent] = []
            for (kind, value), items in by_key.items():
                key = f"{kind}:{value}".encode()
                stored: bytes | None = states.get(key)
                state = EntityState.from_dict(serde.loads(stored)) if stored else EntityState(entity_from(kind, value))
                for ts, customer in sorted(items):
                    state, emitted = observe(state, customer, ts, config, allow)
                    links.extend(e for e in emitted if isinstance(e, LinkEvent))
                    forwarded.extend(emitted)
                    for e in emitted:
                        if isinstance(e, PublicEntity):
                            counters.public_entities += 1
                            log.info("entity %s is public: %d customers within its link horizon", e.entity,
                                     e.customers)
                with event_context(source[(kind, value)]):
                    states[key] = serde.dumps(state.to_dict())
            counters.links += len(links)
            for link in links:
                await publish(to_contract(link))
            if forwarded:  # public-entity notices too: the ring detector drops links through a public entity
                await forward(forwarded)
            clock["wm"] = max(clock["wm"], newest)
            # Single-customer devices and IPs are most entities: without a sweep the table would only ever grow.
            if time.monotonic() - clock["swept"] >= settings.entity_sweep_seconds:
                clock["swept"] = time.monotonic()
                removed = sweep(config.retention_ms)
                if removed:
                    log.info("entity states: %d unused for %d days removed", removed, config.retention_ms // 86_400_000)
            await changelogs_delivered(states)  # before the batch is acknowledged: see streams.faust_tables

        async for batch in batches:
            await run_to_end(handle(list(batch)), len(batch), "entities")

    return EntityFanout(topic, settings.partitions, lambda: feed.live.current.entities.contact_list.min_contacts)
