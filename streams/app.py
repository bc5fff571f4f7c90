"""The Faust application factory: topics, tables and the agent, built from one Settings object.

No module-level app: every caller (the worker command, tests) builds a fresh one with :func:`create_app`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

import faust

from detectors.engine import EngineConfig
from schemas import serde
from schemas.entities import EntityLink, RingMembership, RingSnapshot
from schemas.outputs import Alert, LimitAction, ProfileSnapshot
from streams.config_feed import ConfigFeed
from streams.dead_letters import dead_letter_for, kafka_time
from streams.engine_agent import MODEL_CHECKPOINT_MAX_BYTES, install_engine_agent
from streams.entity_agent import install_entity_agent
from streams.faust_tables import Table
from streams.kafka_auth import faust_credentials
from streams.kafka_check import kafka_reachable
from streams.metrics import WorkerMetrics
from streams.profile_api import install_profile_api
from streams.ring_agent import RingOutputs, install_ring_agent
from streams.settings import Settings
from streams.stall_watch import AgentActivity, StallWatch
from streams.worker_lag import install_lag_probe

log = logging.getLogger(__name__)


@dataclass
class WorkerCounters:
    """What the agents have done since start; logged periodically, read by tests."""

    events: int = 0
    dead_letters: int = 0
    alerts: int = 0
    limit_actions: int = 0
    snapshots: int = 0
    allowlisted: int = 0
    links: int = 0
    public_entities: int = 0
    rings: int = 0
    by_tier: dict[str, int] = field(default_factory=dict)


def create_app(
    settings: Settings,
    rules: EngineConfig,
    counters: WorkerCounters | None = None,
    metrics: WorkerMetrics | None = None,
) -> faust.App:
    """Build the worker's Faust app: decode, dead-letter, the risk engine, alerts / limit actions / snapshots.

    ``rules`` is the fallback rule set (the rules file, or the defaults), in force until ``risk.rules.v1`` holds
    one; the allow-list comes from ``risk.allowlist.v1`` only. ``metrics`` receives the Prometheus counts.
    """
    counters = counters if counters is not None else WorkerCounters()
    metrics = metrics if metrics is not None else WorkerMetrics(settings.app_id)
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{host}" for host in settings.bootstrap().split(",")],
        broker_credentials=faust_credentials(settings),
        store=settings.store,
        datadir=str(settings.home / "faust"),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        # Input topics are created by `loanwatch init` with the partition count the tables rely on.
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=settings.worker_commit_interval,
        # The profile API: requests for a customer are forwarded to the worker at the owner's web_host:web_port.
        web_enabled=settings.web_port is not None,
        web_port=settings.web_port or 6066,
        web_bind=settings.web_bind,
        web_host=settings.web_host,
        web_tables_enabled=False,  # /table/... would serve every customer's raw state
        # Model checkpoints and dead letters (rejected bytes in base64) may be larger than any input record.
        producer_max_request_size=MODEL_CHECKPOINT_MAX_BYTES,
        producer_acks=-1,
        table_cleanup_interval=60.0,
        Table=Table,  # tolerates the empty metadata of a broker that just restarted (see streams.faust_tables)
    )

    def raw_topic(name: str) -> faust.TopicT:
        return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    alerts = raw_topic(settings.topics.alerts)
    deadletter = raw_topic(settings.topics.deadletter)
    limit_actions = raw_topic(settings.topics.limit_actions)
    profiles = raw_topic(settings.topics.profiles)

    async def send_dead_letter(event: faust.EventT[bytes], exc: Exception) -> None:
        letter = dead_letter_for(event.message, exc, kafka_time(event.message.timestamp))
        counters.dead_letters += 1
        metrics.dead_letter(letter.error_kind)
        await deadletter.send(key=letter.dead_letter_id.encode(), value=serde.dumps(letter))

    async def send_output(output: Alert | LimitAction | ProfileSnapshot) -> Awaitable[Any]:
        """Send at once (``force``: not held back until Faust commits), returning the delivery to await."""
        if isinstance(output, Alert):
            counters.alerts += 1
            counters.by_tier[output.tier] = counters.by_tier.get(output.tier, 0) + 1
            metrics.alert(output.tier, output.rule_id)
            topic = alerts
        elif isinstance(output, LimitAction):
            counters.limit_actions += 1
            metrics.limit_action(output.action)
            topic = limit_actions
        else:
            counters.snapshots += 1
            metrics.snapshots.inc()
            topic = profiles
        return await topic.send(key=output.customer_id.encode(), value=serde.dumps(output), force=True)

    async def publish(alert: Alert) -> None:
        await send_output(alert)

    feed = ConfigFeed(settings, rules)
    links_topic = raw_topic(settings.topics.links)
    rings_topic = raw_topic(settings.topics.rings)
    membership = app.topic(
        settings.ring_membership_topic, key_type=bytes, value_type=bytes, key_serializer="raw",
        value_serializer="raw", partitions=settings.partitions, internal=True,
    )

    async def publish_link(link: EntityLink) -> None:
        await links_topic.send(key=link.link_id.encode(), value=serde.dumps(link))

    async def publish_ring(snapshot: RingSnapshot) -> None:
        await rings_topic.send(key=snapshot.ring_id.encode(), value=serde.dumps(snapshot))

    async def send_membership(update: RingMembership) -> None:
        # Keyed by customer: the default (murmur2) partitioner puts it in the customer's input partition.
        await membership.send(key=update.customer_id.encode(), value=serde.dumps(update))

    send_links, send_tiers = install_ring_agent(
        app, settings, feed, RingOutputs(alert=publish, snapshot=publish_ring, membership=send_membership), counters
    )
    fanout = install_entity_agent(app, settings, feed, publish_link, send_links, counters)
    inputs = [settings.topics.behavior, settings.topics.repayment, settings.topics.inquiry]
    # What the engine agent applied and whether it is mid-batch: the stall watch's sign of life.
    activity = AgentActivity(frozenset([*inputs, membership.get_topic_name()]))
    states = install_engine_agent(
        app,
        settings,
        feed,
        inputs,
        send_output,
        send_dead_letter,
        counters,
        fanout=fanout,
        membership_topic=membership.get_topic_name(),
        report_tiers=send_tiers,
        metrics=metrics,
        activity=activity,
    )
    committed_topics = [*inputs, membership.get_topic_name(), settings.entity_observations_topic]
    install_lag_probe(
        app,
        metrics.lag,
        [*committed_topics, settings.ring_links_topic],
        StallWatch(settings.worker_stall_seconds),
        activity=activity,
        broker_reachable=lambda: kafka_reachable(settings),
    )
    if settings.web_port is not None:
        install_profile_api(app, states)
    return app
