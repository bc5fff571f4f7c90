"""What the worker-fault tests read back after a run, and the offline truth they compare it with.

- the worker group's committed progress on the input topics and which member owns which behaviour partition;
- the durable state: the last record of each customer in ``{app_id}-customer-state-changelog`` (what any worker
  would restore) and every model checkpoint in ``{app_id}-model-checkpoints-changelog``;
- the state an uninterrupted run gives: :class:`detectors.engine.Engine` over the same events, each customer's
  events in produced order (one customer's events share a partition, so that is the order the worker saw).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, OFFSET_INVALID, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from detectors.burst import BurstState
from detectors.engine import Engine
from detectors.engine_state import CustomerState
from detectors.models.checkpoint import ModelSet
from detectors.profile import features
from schemas.decode import decode_behavior, decode_inquiry, decode_repayment
from streams.settings import Settings
from streams.simulate.traffic import SimRecord

COORDINATOR_MOVING = (
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
)


def input_partitions(settings: Settings) -> list[TopicPartition]:
    """Every partition of the three input topics."""
    topics = settings.topics
    return [
        TopicPartition(topic, p)
        for topic in (topics.behavior, topics.repayment, topics.inquiry)
        for p in range(settings.partitions)
    ]


def committed_total(settings: Settings) -> int:
    """Input records the worker group has committed, over all input partitions (offsets start at 0)."""
    consumer = Consumer({**settings.confluent_config(), "group.id": settings.app_id, "enable.auto.commit": False})
    try:
        for _ in range(20):
            try:
                committed = consumer.committed(input_partitions(settings), timeout=10)
            except KafkaException as exc:  # the coordinator moves while __consumer_offsets is created: ask again
                if not exc.args[0].retriable() and exc.args[0].code() not in COORDINATOR_MOVING:
                    raise
                time.sleep(0.5)
                continue
            return sum(0 if tp.offset == OFFSET_INVALID else tp.offset for tp in committed)
        raise AssertionError("the group coordinator did not answer")
    finally:
        consumer.close()


def wait_consumed(settings: Settings, produced: int, timeout: float, alive: Callable[[], None]) -> None:
    """Wait until the worker group has committed all ``produced`` input records; ``alive`` asserts the workers."""
    deadline = time.monotonic() + timeout
    done = 0
    while time.monotonic() < deadline:
        done = committed_total(settings)
        if done >= produced:
            return
        alive()
        time.sleep(0.5)
    raise AssertionError(f"the workers committed {done:,} of {produced:,} input records in {timeout:.0f}s")


def behavior_owners(settings: Settings) -> dict[str, set[int]]:
    """Member id → the behaviour-topic partitions assigned to it in the worker group right now."""
    admin = AdminClient(settings.confluent_config())
    try:
        group = admin.describe_consumer_groups([settings.app_id])[settings.app_id].result(timeout=10)
    except KafkaException as exc:  # no group yet, or its coordinator is moving: nobody owns anything for now
        if exc.args[0].code() not in (*COORDINATOR_MOVING, KafkaError.GROUP_ID_NOT_FOUND):
            raise
        return {}
    return {
        member.member_id: {
            tp.partition for tp in member.assignment.topic_partitions if tp.topic == settings.topics.behavior
        }
        for member in group.members
    }


@dataclass(frozen=True)
class ChangelogRecord:
    """One record of a table's changelog topic."""

    partition: int
    offset: int
    timestamp_ms: int
    key: bytes
    value: bytes


def read_changelog(settings: Settings, topic: str, keep: Callable[[bytes], bool]) -> list[ChangelogRecord]:
    """The records of ``topic`` whose key ``keep`` accepts, from the beginning to each partition's current end."""
    consumer = Consumer(
        {**settings.confluent_config(), "group.id": f"{settings.app_id}-reader", "enable.auto.commit": False}
    )
    tps = [TopicPartition(topic, p) for p in range(settings.partitions)]
    try:
        ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10, cached=False)[1] for tp in tps}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(settings.partitions)])
        out: list[ChangelogRecord] = []
        pending = {p for p, end in ends.items() if end > 0}
        deadline = time.monotonic() + 180
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=1.0):
                if message.error() is not None:
                    continue
                partition, offset = message.partition() or 0, message.offset() or 0
                if offset + 1 >= ends[partition]:
                    pending.discard(partition)
                key = message.key() or b""
                if offset < ends[partition] and keep(key):
                    out.append(ChangelogRecord(partition, offset, message.timestamp()[1], key, message.value() or b""))
        assert not pending, f"could not read {topic} to its end in partitions {sorted(pending)}"
        return out
    finally:
        consumer.close()


def latest_states(settings: Settings, customers: set[bytes]) -> dict[bytes, tuple[int, CustomerState]]:
    """Customer key → (changelog partition, last state written) for ``customers``."""
    topic = f"{settings.app_id}-customer-state-changelog"
    latest: dict[bytes, tuple[int, CustomerState]] = {}
    for record in read_changelog(settings, topic, customers.__contains__):
        latest[record.key] = (record.partition, CustomerState.from_bytes(record.value))
    return latest


def replayed_states(
    settings: Settings, records: Iterable[SimRecord], customers: set[bytes]
) -> dict[bytes, CustomerState]:
    """The states an uninterrupted worker reaches for ``customers``: the engine over their events, in order."""
    topics = settings.topics
    decoders = {topics.behavior: decode_behavior, topics.repayment: decode_repayment, topics.inquiry: decode_inquiry}
    engine = Engine()
    states: dict[bytes, CustomerState] = {}
    for record in records:
        if record.key not in customers:
            continue
        event = decoders[record.topic](record.value)
        state = states.get(record.key) or CustomerState.empty(event.customer_id)
        states[record.key] = engine.process(state, event).state
    return states


def learned_part(state: CustomerState) -> tuple[dict[str, float | None], BurstState]:
    """What of a state does not depend on model learning nor on arrival order: profile features, burst state.

    The profile's features at its watermark (counts per horizon, distinct devices, DPD, ...) and the burst state
    (one topic, so one order). Not the profile's bytes: the worker reads the three input topics side by side,
    so a customer's behaviour and repayment events interleave differently from run to run, and the ring of
    recent event ids records that order. ``duplicate_events`` is set aside: it counts the replays that a killed
    worker re-reads and an uninterrupted one never sees.
    """
    profile = state.profile
    values = features(profile, profile.watermark_ms)
    values.pop("duplicate_events")
    shown: dict[str, float | None] = {k: None if math.isnan(v) else v for k, v in values.items()}
    shown["watermark_ms"] = profile.watermark_ms
    return shown, state.burst


def _is_count(name: str) -> bool:
    return not any(part in name for part in ("share", "distinct", "dpd_max", "dpd_bucket", "days_since", "watermark"))


def miscounted(stored: CustomerState, truth: CustomerState) -> tuple[list[str], list[str]]:
    """Count features of the profile below the fault-free replay's (events lost) and above it (counted twice)."""
    got, want = learned_part(stored)[0], learned_part(truth)[0]
    names = [name for name in want if _is_count(name)]
    return (
        [name for name in names if (got[name] or 0) < (want[name] or 0)],
        [name for name in names if (got[name] or 0) > (want[name] or 0)],
    )


def difference(stored: CustomerState, truth: CustomerState) -> str:
    """Which parts of :func:`learned_part` differ between two states of one customer, with both values."""
    (got, burst), (want, want_burst) = learned_part(stored), learned_part(truth)
    parts = [f"{name}: {got[name]} != {want[name]}" for name in want if got.get(name) != want[name]]
    for name in ("applications", "watermark_ms", "late_events", "episode_start_ms", "episode_tier", "emitted"):
        if getattr(burst, name) != getattr(want_burst, name):
            parts.append(f"burst.{name}: {getattr(burst, name)!r} != {getattr(want_burst, name)!r}")
    return f"{stored.customer_id}: " + "; ".join(parts)


def history(settings: Settings, customer: bytes) -> str:
    """Every state the changelog holds for ``customer``, one line each: where, when, a few counts, replays seen,
    the burst episode and the ids of the alerts it sent, the input positions applied."""
    topic = f"{settings.app_id}-customer-state-changelog"
    lines = []
    for record in read_changelog(settings, topic, customer.__eq__):
        state = CustomerState.from_bytes(record.value)
        profile, burst = state.profile, state.burst
        x = features(profile, profile.watermark_ms)
        lines.append(
            f"  partition {record.partition} offset {record.offset} at {record.timestamp_ms}: watermark "
            f"{profile.watermark_ms}, logins_30d {x['logins_30d']:.0f}, page_views_30d {x['page_views_30d']:.0f}, "
            f"replays {profile.duplicate_events}; burst {len(burst.applications)} applications, episode "
            f"{burst.episode_tier}, sent {[e.alert.alert_id[:8] for e in burst.emitted]}; positions "
            f"{[(p.source, p.partition, p.offset) for p in state.positions]}"
        )
    return "\n".join(lines)


def input_records(settings: Settings) -> int:
    """Records on the input topics (their partitions' end offsets): what the producers put there."""
    consumer = Consumer({**settings.confluent_config(), "group.id": f"{settings.app_id}-reader"})
    try:
        return sum(consumer.get_watermark_offsets(tp, timeout=10, cached=False)[1] for tp in input_partitions(settings))
    finally:
        consumer.close()


@dataclass(frozen=True)
class Checkpoint:
    """A partition's model checkpoint as written: when, and how much its models had learned."""

    partition: int
    timestamp_ms: int
    anomaly_learned: int
    delinquency_learned: int


def model_checkpoints(settings: Settings) -> dict[int, list[Checkpoint]]:
    """Partition → every model checkpoint written for it, in order; each one is loaded to read it."""
    topic = f"{settings.app_id}-model-checkpoints-changelog"
    out: dict[int, list[Checkpoint]] = {p: [] for p in range(settings.partitions)}
    for record in read_changelog(settings, topic, lambda _: True):
        models = ModelSet.from_bytes(record.value)
        assert models.partition == record.partition, f"partition {models.partition}'s models in {record.partition}"
        out[record.partition].append(
            Checkpoint(
                record.partition, record.timestamp_ms, models.anomaly.n_learned, models.delinquency.n_learned
            )
        )
    return out
