"""The profile agent: every input event through the risk engine, state in a Faust table, models per partition.

Per micro-batch the agent decodes each event (dead-lettering what does not decode), runs the engine on it in
arrival order — per event, so results do not depend on where batch boundaries fall and a replay reproduces them —
keeps each touched customer's state in memory for the batch, writes it back once per customer, and publishes the
alerts, limit actions and snapshots. Each event's input offset goes to the engine, which recognises a
redelivered event by it. Order within a batch: outputs delivered, then state written and its changelog
delivered, then the batch acknowledged — so a committed offset never outruns what it produced
(``streams.faust_tables``), and a batch cut off by a stopping worker runs to its end first
(``streams.batch_guard``).

Models travel with partitions: each input partition has one ModelSet, checkpointed into a Faust table keyed by
partition (its changelog is co-partitioned, so a partition's models are restored wherever the partition goes).
On revocation the in-memory copy is dropped, and the next owner starts from the last checkpoint: learning since
then (at most ``settings.model_checkpoint_seconds``) is lost, never state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, cast

import faust

from detectors.engine_state import CustomerState, Position
from detectors.models.checkpoint import ModelSet
from schemas.behavior import BehaviorBase
from schemas.common import to_ms
from schemas.decode import decode_behavior, decode_inquiry, decode_repayment
from schemas.entities import RingMembership
from schemas.outputs import Alert, LimitAction, ProfileSnapshot, Tier
from streams.batch_guard import run_to_end
from streams.config_feed import ConfigFeed
from streams.entity_agent import EntityFanout
from streams.faust_context import event_context
from streams.faust_tables import changelogs_delivered
from streams.input_progress import InputProgress, Verdict
from streams.metrics import WorkerMetrics
from streams.partition_fetch import FetchedEvent, fetch_range
from streams.settings import Settings
from streams.stall_watch import AgentActivity

log = logging.getLogger(__name__)

# Records read directly per part when a gap is filled (a long gap, e.g. offsets moved forward by hand, is read in
# parts, each applied before the next is read).
MAX_FETCH = 5000
# Model checkpoints can hold many pending repayment outcomes: allow their changelog records to be large.
MODEL_CHECKPOINT_MAX_BYTES = 16 * 1024 * 1024

# Sends one output and returns its delivery (awaited before the batch's state is written).
Publish = Callable[[Alert | LimitAction | ProfileSnapshot], Awaitable[Awaitable[Any]]]
DeadLetter = Callable[[faust.EventT[bytes], Exception], Awaitable[None]]


def install_engine_agent(
    app: faust.App,
    settings: Settings,
    feed: ConfigFeed,
    topics: list[str],
    publish: Publish,
    dead_letter: DeadLetter,
    counters: Any,
    fanout: EntityFanout | None = None,
    membership_topic: str | None = None,
    report_tiers: Callable[[list[tuple[str, Tier | None]]], Awaitable[None]] | None = None,
    metrics: WorkerMetrics | None = None,
    activity: AgentActivity | None = None,
) -> faust.types.TableT[bytes, bytes]:
    """Register the state and model tables and the agent on ``app``; returns the customer-state table.

    ``fanout`` receives every decoded behaviour event's entities (the entity agent's input); ``membership_topic``
    carries ring memberships keyed by customer, read alongside the input topics; ``report_tiers`` receives
    each batch's changes of customers' own tiers (for the ring agent); ``metrics`` receives input counts by
    topic, batch sizes and stage latencies, and each owned partition's model checkpoint age; ``activity``
    receives the (topic, partition) of every record applied and whether a batch is running (the stall watch's
    sign of life).
    """
    metrics = metrics if metrics is not None else WorkerMetrics(settings.app_id)
    decoders: dict[str, Callable[[bytes], Any]] = {
        settings.topics.behavior: decode_behavior,
        settings.topics.repayment: decode_repayment,
        settings.topics.inquiry: decode_inquiry,
    }
    if membership_topic is not None:
        decoders[membership_topic] = RingMembership.model_validate_json
        topics = [*topics, membership_topic]
    source = app.topic(*topics, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    states = app.Table(
        "customer-state", default=None, partitions=settings.partitions, key_type=bytes, value_type=bytes
    )
    checkpoints = app.Table(
        "model-checkpoints",
        default=None,
        partitions=settings.partitions,
        key_type=bytes,
        value_type=bytes,
        extra_topic_configs={"max.message.bytes": str(MODEL_CHECKPOINT_MAX_BYTES)},
    )
    models: dict[int, ModelSet] = {}
    saved_at: dict[int, float] = {}
    # The next offset to apply per input partition (see streams.input_progress), co-partitioned with the input.
    progress_table = app.Table(
        "input-progress", default=None, partitions=settings.partitions, key_type=bytes, value_type=bytes
    )
    progress = InputProgress()

    def judge(message: Any) -> Verdict:
        key = (message.topic, message.partition)
        if key not in progress.expected:
            stored: bytes | None = progress_table.get(_progress_key(*key))
            if stored:
                progress.skip_to(*key, int(stored))
        return progress.judge(
            message.topic, message.partition, message.offset, lambda: _end_offset(app, message.tp)
        )

    async def missing_before(event: faust.EventT[bytes]) -> list[faust.EventT[bytes]]:
        """The records between the expected offset and ``event``'s, read directly; the ones gone are given up."""
        message = event.message
        expected = progress.expected[(message.topic, message.partition)]
        log.warning("%s[%d]: record %d arrived where %d was expected: reading records %d to %d directly",
                    message.topic, message.partition, message.offset, expected, expected, message.offset - 1)
        end = min(message.offset, expected + MAX_FETCH)  # a long gap is read in parts, each applied before the next
        fetched = await asyncio.to_thread(fetch_range, settings, message.topic, message.partition, expected, end)
        first = fetched[0].message.offset if fetched else end
        if first > expected:
            log.error("%s[%d]: records %d to %d no longer exist (deleted by retention?); going on from %d",
                      message.topic, message.partition, expected, first - 1, first)
            progress.skip_to(message.topic, message.partition, first)
        return cast(list[faust.EventT[bytes]], fetched)

    def models_for(partition: int) -> ModelSet:
        if partition not in models:
            stored: bytes | None = checkpoints.get(str(partition).encode())
            models[partition] = ModelSet.from_bytes(stored) if stored else feed.engine().new_models(partition)
            saved_at[partition] = time.monotonic()
            metrics.track_checkpoint_age(partition, _seconds_since(saved_at, partition))
        return models[partition]

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def drop_models(sender: Any, revoked: set[Any], **_: Any) -> None:
        for tp in revoked:
            if tp.topic in decoders:
                models.pop(tp.partition, None)
                metrics.forget_checkpoint(tp.partition)
                progress.expected.pop((tp.topic, tp.partition), None)  # the next owner's table is the truth

    async def handle(batch: list[faust.EventT[bytes]]) -> None:
        """One micro-batch: engine per event, then outputs delivered, then state written and delivered."""
        started = time.perf_counter()
        engine = feed.engine()  # the rule set in force for this batch
        live = feed.live
        cache: dict[bytes, CustomerState] = {}
        last_event: dict[bytes, faust.EventT[bytes]] = {}
        by_partition: dict[int, faust.EventT[bytes]] = {}
        outputs: list[Alert | LimitAction | ProfileSnapshot] = []
        tier_changes: dict[str, Tier | None] = {}
        replays: Counter[tuple[str, int]] = Counter()
        advanced: dict[tuple[str, int], faust.EventT[bytes]] = {}
        queue = list(reversed(batch))  # popped from the end: records read directly are pushed in front
        filled: dict[int, int | None] = {}  # event → the expected offset its gap was last read from
        read_directly: list[Any] = []  # messages of records read directly, to acknowledge to Faust at the end
        while queue:
            event = queue.pop()
            message = event.message
            verdict = judge(message)
            if verdict == "replay":
                replays[(message.topic, message.partition)] += 1
                continue
            at = progress.expected.get((message.topic, message.partition))
            if verdict == "gap" and (isinstance(event, FetchedEvent) or filled.get(id(event)) == at):
                # Read directly and still not the expected offset: those offsets hold no record to apply.
                log.error("%s[%d]: offsets %d to %d hold no record; going on from %d", message.topic,
                          message.partition, progress.expected[(message.topic, message.partition)],
                          message.offset - 1, message.offset)
                progress.skip_to(message.topic, message.partition, message.offset)
                verdict = judge(message)
            if verdict == "gap":
                filled[id(event)] = at
                queue.append(event)
                fetched = await missing_before(event)
                read_directly.extend(f.message for f in fetched)
                queue.extend(reversed(fetched))
                continue
            counters.events += 1
            advanced[(message.topic, message.partition)] = event
            if activity is not None:
                activity.applied.add((message.topic, message.partition))
            try:
                decoded = decoders[message.topic](event.value)
            except Exception as exc:  # noqa: BLE001 — whatever the bytes are, they go to the dead-letter topic.
                await dead_letter(event, exc)
                continue
            if fanout is not None and isinstance(decoded, BehaviorBase):
                fanout.add(decoded)
            key = decoded.customer_id.encode()
            try:
                state = cache.get(key)
                if state is None:
                    stored: bytes | None = states.get(key)
                    state = CustomerState.from_bytes(stored) if stored else CustomerState.empty(decoded.customer_id)
                listed = live.customer_allowlisted(decoded.customer_id, to_ms(decoded.ts))
                if listed:
                    counters.allowlisted += 1
                position = Position(message.topic, message.partition, message.offset)
                step = engine.process(state, decoded, models_for(message.partition), listed, position)
            except Exception as exc:  # noqa: BLE001 — an agent that raises dies silently; keep the event.
                log.exception("engine failed on %s", decoded.event_id)
                await dead_letter(event, exc)
                continue
            cache[key] = step.state
            if step.own_tier_changed:
                tier_changes[decoded.customer_id] = step.state.own_tier
            last_event[key] = event
            by_partition[message.partition] = event
            outputs.extend(step.alerts)
            outputs.extend(step.actions)
            if step.snapshot is not None:
                outputs.append(step.snapshot)
        engine_done = time.perf_counter()
        # Outputs reach the broker before the state that remembers them as sent: a crash in between replays the
        # batch and sends them again (same ids), where the other order could leave an alert never sent.
        await asyncio.gather(*[await publish(output) for output in outputs])
        if fanout is not None:
            await fanout.flush()
        if report_tiers is not None and tier_changes:
            await report_tiers(sorted(tier_changes.items()))
        outputs_done = time.perf_counter()
        for key, state in cache.items():
            with event_context(last_event[key]):
                states[key] = state.to_bytes()
        now = time.monotonic()
        for partition, event in by_partition.items():
            if now - saved_at.get(partition, now) >= settings.model_checkpoint_seconds and partition in models:
                with event_context(event):
                    checkpoints[str(partition).encode()] = models[partition].to_bytes()
                saved_at[partition] = now
        # Before the batch is acknowledged (and its offsets become committable): see streams.faust_tables.
        await changelogs_delivered(states, checkpoints)
        # Then, and only then, the progress: records it counts as applied have their state on the broker.
        for (topic, partition), event in advanced.items():
            with event_context(event):
                progress_table[_progress_key(topic, partition)] = str(progress.expected[(topic, partition)]).encode()
        await changelogs_delivered(progress_table)
        # Faust never handed these over, so its commit would stand before them for good: acknowledge them to it.
        for skipped in read_directly:
            app.consumer.ack(skipped)
        for (topic, partition), count in replays.items():
            log.info("%s[%d]: %d records applied before were delivered again: skipped", topic, partition, count)
        # Per batch, not per event: a labelled child's inc() takes a lock.
        for topic, count in Counter(event.message.topic for event in batch).items():
            metrics.events(topic, count)
        metrics.batch_events.observe(len(batch))
        metrics.engine_seconds.observe(engine_done - started)
        metrics.outputs_seconds.observe(outputs_done - engine_done)
        metrics.state_seconds.observe(time.perf_counter() - outputs_done)

    @app.agent(source, name="profile")
    async def profile_agent(stream: faust.StreamT[bytes]) -> None:
        await _wait_for_rules(feed)
        # Table writes queue in Faust's producer buffer, which stalls the stream (logging "producer buffer full")
        # past 100 pending records; one batch writes up to one state per customer, so allow two batches' worth.
        app.producer.buffer.max_messages = max(100, 2 * settings.worker_batch_size)
        batches = cast(faust.Stream[bytes], stream).take_events(
            settings.worker_batch_size, within=settings.worker_batch_seconds
        )
        async for batch in batches:
            if activity is not None:
                activity.in_batch = True
            try:
                await run_to_end(handle(list(batch)), len(batch), "profile")
            finally:
                if activity is not None:
                    activity.in_batch = False

    return states


def _progress_key(topic: str, partition: int) -> bytes:
    return f"{topic}:{partition}".encode()


def _end_offset(app: faust.App, tp: Any) -> int | None:
    """The partition's end offset as the consumer last saw it (None before its first fetch)."""
    try:
        end = app.consumer.highwater(tp)
    except Exception:  # noqa: BLE001 — unknown is an acceptable answer; the check it feeds is a safeguard
        return None
    return end if isinstance(end, int) and end >= 0 else None


def _seconds_since(saved_at: dict[int, float], partition: int) -> Callable[[], float]:
    """Seconds since ``saved_at[partition]`` (monotonic), read when called: at each metrics scrape."""
    return lambda: time.monotonic() - saved_at.get(partition, time.monotonic())


async def _wait_for_rules(feed: ConfigFeed) -> None:
    """Start the config feed and wait until it has read the rule set and allow-list (Kafka may be slow)."""
    feed.start()
    started = last_note = time.monotonic()
    while not feed.ready.is_set():
        if not feed.alive:
            raise RuntimeError("the rule-set reader stopped before it loaded the rule set; see the log above")
        await asyncio.sleep(0.1)
        if time.monotonic() - last_note >= 10:
            last_note = time.monotonic()
            log.warning("still reading the rule set and allow-list after %.0f s", last_note - started)
