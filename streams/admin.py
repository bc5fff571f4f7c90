"""`loanwatch init`, Kafka half: create every topic the pipeline reads or writes, idempotently."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from streams.kafka_check import check_access
from streams.settings import Settings

_WEEK_MS = 7 * 24 * 3600 * 1000
# Kafka's default record limit is 1 MiB; base64 of that plus the envelope stays well under 4 MiB.
DEAD_LETTER_MAX_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class TopicSpec:
    """A topic's name and the config that matters for its role."""

    name: str
    partitions: int
    config: dict[str, str]


class TopicMismatchError(RuntimeError):
    """An existing topic has fewer partitions than the configuration needs."""


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic with its partitions and config: rule and allow-list topics are compacted (latest wins)."""
    t = settings.topics
    n = settings.partitions
    retained = {"cleanup.policy": "delete", "retention.ms": str(4 * _WEEK_MS)}
    compacted = {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}
    internal = {"cleanup.policy": "delete", "retention.ms": str(_WEEK_MS)}
    return [
        TopicSpec(t.behavior, n, retained),
        TopicSpec(t.repayment, n, retained),
        TopicSpec(t.inquiry, n, retained),
        TopicSpec(t.alerts, n, retained),
        TopicSpec(t.limit_actions, n, retained),
        TopicSpec(t.profiles, n, retained),
        TopicSpec(t.links, n, retained),
        TopicSpec(t.rings, n, retained),
        # A dead letter carries the rejected message base64-encoded (4/3 of its size): room for any input record.
        TopicSpec(
            t.deadletter,
            n,
            {
                "cleanup.policy": "delete",
                "retention.ms": str(8 * _WEEK_MS),
                "max.message.bytes": str(DEAD_LETTER_MAX_BYTES),
            },
        ),
        # Configuration is tiny and every worker reads all of it: one partition keeps its order total.
        TopicSpec(t.rules, 1, compacted),
        TopicSpec(t.allowlist, 1, compacted),
        # The worker's own hops: entities re-keyed, links to the single ring agent, ring scores back to members.
        TopicSpec(settings.entity_observations_topic, n, internal),
        TopicSpec(settings.ring_links_topic, 1, internal),
        TopicSpec(settings.ring_membership_topic, n, internal),
    ]


def create_topics(
    settings: Settings, progress: Callable[[str], None] = lambda _: None, timeout: float = 30.0
) -> list[str]:
    """Create missing topics; check existing ones have enough partitions. Returns the names created."""
    check_access(settings, timeout=min(timeout, 15.0))  # a refused login fails here, by name, not as a timeout
    admin = AdminClient(settings.confluent_config())
    specs = topic_specs(settings)
    existing = admin.list_topics(timeout=timeout).topics
    created: list[str] = []
    to_create = [s for s in specs if s.name not in existing]
    for spec in specs:
        if spec.name in existing:
            have = len(existing[spec.name].partitions)
            if have < spec.partitions:
                raise TopicMismatchError(
                    f"topic {spec.name} has {have} partitions but LOANWATCH_PARTITIONS={spec.partitions}; set it to "
                    f"{have}, or move to new topics: adding partitions to a keyed topic moves customers to other "
                    "partitions, away from their state"
                )
    if to_create:
        futures = admin.create_topics(
            [
                NewTopic(
                    s.name,
                    num_partitions=s.partitions,
                    replication_factor=settings.replication_factor,
                    config=s.config,
                )
                for s in to_create
            ],
            request_timeout=timeout,
        )
        for name, future in futures.items():
            try:
                future.result(timeout=timeout)
            except KafkaException as exc:
                # Another process may have created it between our listing and our request.
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
            created.append(name)
            progress(f"created topic {name}")
    return created
