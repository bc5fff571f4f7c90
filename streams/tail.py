"""`loanwatch tail`: a live view of the alert topic, as a table for operators or as JSON lines for pipes.

The pure parts (decoding, filtering, formatting) are separate from the Kafka loop so they are tested without a
broker. The consumer uses a throwaway group id, never commits and assigns every partition explicitly: at its
end (only new alerts) or at its beginning (``--from-beginning``), so no other consumer group is disturbed and no
subscribe/rebalance race decides where reading starts.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Final

from pydantic import ValidationError
from rich.console import JustifyMethod
from rich.table import Table
from rich.text import Text

from schemas import serde
from schemas.outputs import TIER_ORDER, TIERS, Alert, Tier
from streams.settings import Settings

__all__ = [
    "CHINA_TZ",
    "TIER_STYLES",
    "AlertFilter",
    "InvalidRecord",
    "TailError",
    "alert_cells",
    "alert_table",
    "china_time",
    "decode_alert",
    "invalid_line",
    "json_line",
    "tail_alerts",
]

CHINA_TZ: Final = timezone(timedelta(hours=8), "UTC+8")
"""The lender's clock (China Standard Time, no daylight saving): the time operators read."""

TIER_STYLES: Final[dict[Tier, str]] = {"notice": "yellow", "attention": "dark_orange", "warning": "bold red"}
"""Colour of each tier label in the table."""

_RING_ID_CHARS: Final = 16
_COLUMNS: Final[tuple[tuple[str, int | None, JustifyMethod], ...]] = (
    # header, width (None = the rest of the line), justify
    ("event time (UTC+8)", 19, "left"),
    ("tier", 14, "left"),  # "关注 attention": CJK characters are two cells wide
    ("customer", 14, "left"),
    ("rule", 30, "left"),
    ("score", 5, "right"),
    ("ring", 23, "left"),
    ("top reason", None, "left"),
)


class TailError(Exception):
    """The alert topic cannot be read (missing topic, broker unreachable)."""


@dataclass(frozen=True)
class InvalidRecord:
    """A record on the alert topic that is not a valid :class:`Alert`, with where it is and why."""

    partition: int
    offset: int
    reason: str


@dataclass(frozen=True)
class AlertFilter:
    """Which alerts to show: at least ``min_tier``, one of ``rules`` and about one of ``customers``.

    Empty ``rules`` / ``customers`` mean any. A customer matches an alert about them and a ring alert naming
    them among the ring's members (a ring alert is anchored on one member only).
    """

    min_tier: Tier = "notice"
    rules: frozenset[str] = field(default_factory=frozenset)
    customers: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, min_tier: str = "notice", rules: Iterable[str] = (), customers: Iterable[str] = ()) -> AlertFilter:
        """A filter from command-line values; raises ``ValueError`` on an unknown tier."""
        for tier in TIERS:
            if tier == min_tier:
                return cls(tier, frozenset(rules), frozenset(customers))
        raise ValueError(f"unknown tier {min_tier!r}: expected one of {', '.join(TIERS)}")

    def matches(self, alert: Alert) -> bool:
        """Whether ``alert`` passes every condition."""
        if TIER_ORDER[alert.tier] < TIER_ORDER[self.min_tier]:
            return False
        if self.rules and alert.rule_id not in self.rules:
            return False
        if self.customers:
            about = {alert.customer_id, *(alert.ring.members if alert.ring is not None else ())}
            if self.customers.isdisjoint(about):
                return False
        return True


def decode_alert(value: bytes | None, partition: int = 0, offset: int = 0) -> Alert | InvalidRecord:
    """The alert in a record value, or an :class:`InvalidRecord` saying why it is not one (never raises)."""
    if value is None:
        return InvalidRecord(partition, offset, "empty value (tombstone)")
    try:
        return Alert.model_validate_json(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "value"
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return InvalidRecord(partition, offset, f"{where}: {first['msg']}{more}")
    except ValueError as exc:  # pragma: no cover - pydantic reports bad JSON as a ValidationError
        return InvalidRecord(partition, offset, str(exc))


def china_time(at: datetime) -> str:
    """An aware time as operators read it: China time, to the second (``2026-01-05 17:19:40``)."""
    return at.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")


def _ring_cell(alert: Alert) -> Text:
    if alert.ring is None:
        return Text("")
    ring_id = alert.ring.ring_id
    if len(ring_id) > _RING_ID_CHARS:
        ring_id = ring_id[: _RING_ID_CHARS - 1] + "…"
    return Text(f"{ring_id} ×{len(alert.ring.members)}", style="magenta")


def alert_cells(alert: Alert) -> tuple[Text, ...]:
    """One table row: event time (China), tier, customer, rule and version, score, ring, top reason.

    The event time is ``last_seen``, the newest evidence (when the alert fired in event time).
    """
    return (
        Text(china_time(alert.last_seen)),
        Text(f"{alert.tier_label} {alert.tier}", style=TIER_STYLES[alert.tier]),
        Text(alert.customer_id, style="bold"),
        Text(f"{alert.rule_id} v{alert.rule_version}"),
        Text(f"{alert.score:.2f}"),
        _ring_cell(alert),
        Text(alert.reasons[0].message),
    )


def alert_table(alerts: Iterable[Alert], *, header: bool) -> Table:
    """A table of ``alerts`` with fixed column widths, so tables printed one after another line up."""
    table = Table(box=None, show_header=header, header_style="bold", expand=True, pad_edge=False)
    for title, width, justify in _COLUMNS:
        table.add_column(
            title, width=width, min_width=width, ratio=None if width else 1, no_wrap=True, overflow="ellipsis",
            justify=justify,
        )
    for alert in alerts:
        table.add_row(*alert_cells(alert))
    return table


def json_line(alert: Alert) -> str:
    """The alert as one compact JSON line (the wire form), for piping."""
    return serde.dumps(alert).decode()


def invalid_line(record: InvalidRecord) -> Text:
    """A dim one-line warning about a record that is not an alert."""
    return Text(f"skipped partition {record.partition} offset {record.offset}: not an alert — {record.reason}",
                style="dim", no_wrap=True, overflow="ellipsis")


def tail_alerts(
    settings: Settings,
    alert_filter: AlertFilter,
    *,
    show: Callable[[Alert], None],
    skip: Callable[[InvalidRecord], None],
    stop: threading.Event,
    from_beginning: bool = False,
    limit: int = 0,
    ready: Callable[[str], None] = lambda _: None,
    timeout: float = 15.0,
) -> int:
    """Read the alert topic until ``stop`` is set or ``limit`` alerts matched (0 = no limit); returns the count.

    ``show`` gets each matching alert, ``skip`` each record that is not an alert. ``ready`` is told once every
    partition is assigned: alerts written after that are shown. Raises :class:`TailError` when the topic is
    missing or the broker does not answer within ``timeout`` seconds.
    """
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

    topic = settings.topics.alerts
    consumer = Consumer(
        {
            **settings.confluent_config(),
            "group.id": f"{settings.app_id}-tail-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest" if from_beginning else "latest",
        }
    )
    shown = 0
    try:
        try:
            metadata = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        except KafkaException as exc:
            raise TailError(f"cannot reach Kafka at {settings.bootstrap()}: {exc}") from None
        if metadata is None or metadata.error is not None or not metadata.partitions:
            raise TailError(f"topic {topic} does not exist; create it with `loanwatch init`")
        assignment = []
        for partition in sorted(metadata.partitions):
            if from_beginning:
                offset = OFFSET_BEGINNING
            else:
                try:
                    _, offset = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)
                except KafkaException as exc:
                    raise TailError(f"cannot read the end of {topic} [{partition}]: {exc}") from None
            assignment.append(TopicPartition(topic, partition, offset))
        consumer.assign(assignment)
        start = "from the beginning" if from_beginning else "from the end (new alerts only)"
        ready(f"tailing {topic} ({len(assignment)} partitions) {start}")
        while not stop.is_set() and (limit == 0 or shown < limit):
            message = consumer.poll(0.25)
            if message is None:
                continue
            if message.error() is not None:
                skip(InvalidRecord(message.partition() or 0, message.offset() or 0, f"Kafka: {message.error()}"))
                continue
            decoded = decode_alert(message.value(), message.partition() or 0, message.offset() or 0)
            if isinstance(decoded, InvalidRecord):
                skip(decoded)
            elif alert_filter.matches(decoded):
                show(decoded)
                shown += 1
    finally:
        consumer.close()
    return shown
