"""The Faust application factory: topics, the burst-state table and the agents, built from one Settings object.

No module-level app: every caller (the worker command, tests) builds a fresh one with :func:`create_app`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import faust

from detectors.burst import Application, BurstState
from detectors.burst import update as burst_update
from schemas import serde
from schemas.behavior import LoanApplication
from schemas.common import to_ms
from schemas.decode import decode_behavior, decode_inquiry, decode_repayment
from schemas.outputs import Alert
from schemas.rules import RuleSet
from streams.admin import DEAD_LETTER_MAX_BYTES
from streams.dead_letters import dead_letter_for, kafka_time
from streams.faust_context import event_context
from streams.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class WorkerCounters:
    """What the agents have done since start; logged periodically, read by tests."""

    events: int = 0
    dead_letters: int = 0
    alerts: int = 0
    late_applications: int = 0
    duplicates: int = 0
    by_tier: dict[str, int] = field(default_factory=dict)


def _credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    if not settings.kafka_security_protocol.startswith("SASL"):
        return None
    assert settings.kafka_sasl_username is not None and settings.kafka_sasl_password is not None  # noqa: S101
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password.get_secret_value(),
        mechanism=settings.kafka_sasl_mechanism,
    )


def create_app(settings: Settings, rules: RuleSet, counters: WorkerCounters | None = None) -> faust.App:
    """Build the worker's Faust app: decode, dead-letter, burst detection, alert publishing."""
    counters = counters if counters is not None else WorkerCounters()
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{host}" for host in settings.bootstrap().split(",")],
        broker_credentials=_credentials(settings),
        store=settings.store,
        datadir=str(settings.home / "faust"),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        # Input topics are created by `loanwatch init` with the partition count the tables rely on.
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=settings.worker_commit_interval,
        web_enabled=False,
        # Dead letters hold the rejected bytes base64-encoded, so they may be larger than any input record.
        producer_max_request_size=DEAD_LETTER_MAX_BYTES,
        producer_acks=-1,
        table_cleanup_interval=60.0,
    )

    def raw_topic(name: str) -> faust.TopicT:
        return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    behavior = raw_topic(settings.topics.behavior)
    repayment = raw_topic(settings.topics.repayment)
    inquiry = raw_topic(settings.topics.inquiry)
    alerts = raw_topic(settings.topics.alerts)
    deadletter = raw_topic(settings.topics.deadletter)
    # Bytes in and out, encoded by schemas.serde: one JSON codec for the whole project.
    burst_table = app.Table(
        "burst-state", default=None, partitions=settings.partitions, key_type=bytes, value_type=bytes
    )

    async def send_dead_letter(event: faust.EventT[bytes], exc: Exception) -> None:
        letter = dead_letter_for(event.message, exc, kafka_time(event.message.timestamp))
        counters.dead_letters += 1
        await deadletter.send(key=letter.dead_letter_id.encode(), value=serde.dumps(letter))

    async def publish(alert: Alert) -> None:
        counters.alerts += 1
        counters.by_tier[alert.tier] = counters.by_tier.get(alert.tier, 0) + 1
        await alerts.send(key=alert.customer_id.encode(), value=serde.dumps(alert))

    async def on_customer(key: bytes, items: list[tuple[faust.EventT[bytes], LoanApplication]]) -> None:
        # One table read and one table write per customer per batch, whatever the number of its events.
        stored: bytes | None = burst_table.get(key)
        state = BurstState() if stored is None else BurstState.from_dict(serde.loads(stored))
        before = state
        raised: list[Alert] = []
        for _, application in items:
            result = burst_update(
                state,
                application.customer_id,
                Application(application.event_id, to_ms(application.ts), application.product, application.channel),
                rules.burst,
            )
            if result.outcome == "duplicate":
                counters.duplicates += 1
            elif result.outcome == "late":
                counters.late_applications += 1
            state = result.state
            raised.extend(result.alerts)
        if state is not before:
            with event_context(items[-1][0]):
                burst_table[key] = serde.dumps(state.to_dict())
        for alert in raised:
            await publish(alert)

    @app.agent(behavior, name="profile")
    async def profile_agent(stream: faust.StreamT[bytes]) -> None:
        # take_events acks a batch only after this body has handled it, so a crash mid-batch replays it.
        batches = cast(faust.Stream[bytes], stream).take_events(
            settings.worker_batch_size, within=settings.worker_batch_seconds
        )
        async for batch in batches:
            by_customer: dict[bytes, list[tuple[faust.EventT[bytes], LoanApplication]]] = {}
            for event in batch:
                counters.events += 1
                try:
                    decoded = decode_behavior(event.value)
                except Exception as exc:  # noqa: BLE001 — whatever the bytes are, they go to the dead-letter topic.
                    await send_dead_letter(event, exc)
                    continue
                if isinstance(decoded, LoanApplication):
                    by_customer.setdefault(decoded.customer_id.encode(), []).append((event, decoded))
            for key, items in by_customer.items():
                try:
                    await on_customer(key, items)
                except Exception as exc:  # noqa: BLE001 — an agent that raises dies silently; keep the events.
                    log.exception("processing failed for customer %s", key.decode())
                    for event, _ in items:
                        await send_dead_letter(event, exc)

    def validating_agent(topic: faust.TopicT, decode: Callable[[bytes], object], name: str) -> None:
        # Repayment and inquiry events feed the profile in the risk engine; until then they are still
        # validated here so that a malformed one reaches the dead-letter topic instead of vanishing.
        @app.agent(topic, name=name)
        async def agent(stream: faust.StreamT[bytes]) -> None:
            async for event in stream.events():
                counters.events += 1
                try:
                    decode(event.value)
                except Exception as exc:  # noqa: BLE001
                    await send_dead_letter(event, exc)

    validating_agent(repayment, decode_repayment, "repayment")
    validating_agent(inquiry, decode_inquiry, "inquiry")
    return app
