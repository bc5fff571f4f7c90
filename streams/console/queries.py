"""Every query the console runs, on either ClickHouse engine (18.16 over the native protocol, or chdb).

Tables are ``ReplacingMergeTree``: lists read with ``FINAL`` and counts use ``uniqExact`` on the id, so a replayed
row never shows twice. Times are read from the ``*_ms`` columns (exact on every engine, no zone to guess).
Values from requests are checked (:mod:`streams.console.filters`) and written as literals by
:func:`~streams.console.filters.sql_string`; the SQL here uses nothing newer than ClickHouse 18.16.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from schemas import serde
from schemas.outputs import TIERS
from streams.clickhouse.backend import ClickHouseBackend, table_name
from streams.console.chart import CHINA_OFFSET_MS, ChartWindow, chart_window
from streams.console.filters import FeedFilter, sql_string

__all__ = [
    "AlertRow",
    "CustomerRecord",
    "EventRow",
    "LimitActionRow",
    "RingRow",
    "RuleCount",
    "SnapshotRow",
    "customer_record",
    "feed_alerts",
    "filter_options",
    "tier_counts",
    "top_rules",
]

_ALERT_COLUMNS: Final = (
    "alert_id, customer_id, rule_id, rule_version, tier, tier_label, score, reasons, evidence_event_ids, "
    "first_seen_ms, last_seen_ms"
)
_CUSTOMER_ROWS: Final = 200

# The SQL, as templates filled by _sql(): table names come quoted from table_name(), values from sql_string(),
# numbers from int(); nothing else is ever put into a query.
_PRODUCT_CONDITION: Final = (
    "alert_id IN (SELECT alert_id FROM {alerts} ARRAY JOIN evidence_event_ids AS evidence_id "
    "WHERE evidence_id IN (SELECT event_id FROM {events} "
    "WHERE visitParamExtractString(payload, 'product') = {product}))"
)
_EVIDENCE_PRODUCTS: Final = (
    "SELECT event_id, visitParamExtractString(payload, 'product') FROM {events} "
    "WHERE customer_id IN ({customers}) AND event_id IN ({evidence})"
)
_FEED: Final = "SELECT {columns} FROM {alerts} FINAL {where} ORDER BY last_seen_ms DESC, alert_id LIMIT {limit}"
_SPAN: Final = "SELECT min(first_seen_ms), max(first_seen_ms), count() FROM {alerts} {where}"
_TIER_BUCKETS: Final = (
    "SELECT tier, intDiv(first_seen_ms + {offset}, {width}) * {width} - {offset} AS bucket, uniqExact(alert_id) "
    "FROM {alerts} {where} AND first_seen_ms >= {start} GROUP BY tier, bucket"
)
_TOP_RULES: Final = (
    "SELECT rule_id, uniqExact(alert_id) AS alerts, uniqExact(customer_id), {per_tier} FROM {alerts} {where} "
    "GROUP BY rule_id ORDER BY alerts DESC, rule_id LIMIT {limit}"
)
_RULES: Final = "SELECT DISTINCT rule_id FROM {alerts} ORDER BY rule_id LIMIT 100"
_PRODUCTS: Final = (
    "SELECT DISTINCT visitParamExtractString(payload, 'product') AS product FROM {events} "
    "WHERE event_type IN ('loan_application', 'drawdown') AND product != '' ORDER BY product LIMIT 100"
)
_CUSTOMER_EVENTS: Final = (
    "SELECT event_id, event_type, ts_ms, payload FROM {events} FINAL WHERE customer_id = {customer} "
    "ORDER BY ts_ms DESC, event_id LIMIT {limit}"
)
_CUSTOMER_SNAPSHOTS: Final = (
    "SELECT ts_ms, score, tier, grade, feature_names, feature_values FROM {snapshots} FINAL "
    "WHERE customer_id = {customer} ORDER BY ts_ms DESC LIMIT {limit}"
)
_CUSTOMER_ALERTS: Final = (
    "SELECT {columns} FROM {alerts} FINAL WHERE customer_id = {customer} "
    "ORDER BY last_seen_ms DESC, alert_id LIMIT {limit}"
)
_CUSTOMER_ACTIONS: Final = (
    "SELECT action_id, action, factor, grade, alert_ids, ts_ms, expires_at_ms FROM {actions} FINAL "
    "WHERE customer_id = {customer} ORDER BY ts_ms DESC, action_id LIMIT {limit}"
)
# A ring's latest state per member row: argMax by event time (rows of one snapshot are identical, so no FINAL).
_CUSTOMER_RINGS: Final = (
    "SELECT ring_id, argMax(size, ts_ms), argMax(score, ts_ms), argMax(tier, ts_ms), argMax(dissolved, ts_ms), "
    "min(ts_ms), max(ts_ms) AS last FROM {members} WHERE customer_id = {customer} "
    "GROUP BY ring_id ORDER BY last DESC, ring_id LIMIT 20"
)


@dataclass(frozen=True)
class AlertRow:
    """An alert as the console lists it; ``product`` is that of its newest evidence event naming one ('' if none)."""

    alert_id: str
    customer_id: str
    rule_id: str
    rule_version: int
    tier: str
    tier_label: str
    score: float
    top_reason: str
    first_seen_ms: int
    last_seen_ms: int
    product: str


@dataclass(frozen=True)
class RuleCount:
    """How many distinct alerts and customers a rule raised, in total and per tier."""

    rule_id: str
    alerts: int
    customers: int
    by_tier: dict[str, int]


@dataclass(frozen=True)
class EventRow:
    """One raw input event of a customer, with its JSON payload decoded."""

    event_id: str
    event_type: str
    ts_ms: int
    payload: dict[str, Any]


@dataclass(frozen=True)
class SnapshotRow:
    """One profile snapshot: score, tier, grade and the features at that event time."""

    ts_ms: int
    score: float
    tier: str
    grade: str
    features: dict[str, float]


@dataclass(frozen=True)
class LimitActionRow:
    """One recommended limit action; ``expires_at_ms`` 0 means it stands until a restore."""

    action_id: str
    action: str
    factor: float | None
    grade: str
    alert_ids: list[str]
    ts_ms: int
    expires_at_ms: int


@dataclass(frozen=True)
class RingRow:
    """A ring the customer is or was in, as its latest snapshot described it."""

    ring_id: str
    size: int
    score: float
    tier: str
    dissolved: bool
    first_ms: int
    last_ms: int


@dataclass(frozen=True)
class CustomerRecord:
    """Everything ClickHouse knows about one customer, newest first in every list."""

    customer_id: str
    events: list[EventRow]
    snapshots: list[SnapshotRow]
    alerts: list[AlertRow]
    limit_actions: list[LimitActionRow]
    rings: list[RingRow]

    @property
    def known(self) -> bool:
        """True when any table has a row about the customer."""
        return bool(self.events or self.snapshots or self.alerts or self.limit_actions or self.rings)


def _sql(template: str, **parts: str | int) -> str:
    """``template`` filled with quoted table names, :func:`sql_string` literals and integers."""
    return template.format(**{k: str(int(v)) if isinstance(v, int) else v for k, v in parts.items()})


def _where(backend: ClickHouseBackend, f: FeedFilter) -> str:
    """The feed filter as a WHERE clause on ``alerts`` (``WHERE 1`` when nothing is filtered)."""
    conditions = []
    if f.tier is not None:
        conditions.append(f"tier = {sql_string(f.tier)}")
    if f.rule is not None:
        conditions.append(f"rule_id = {sql_string(f.rule)}")
    if f.product is not None:
        # An alert is about a product when any of its evidence events names it.
        conditions.append(_sql(
            _PRODUCT_CONDITION, alerts=table_name(backend.database, "alerts"),
            events=table_name(backend.database, "events"), product=sql_string(f.product),
        ))
    return "WHERE " + (" AND ".join(conditions) if conditions else "1")


def _top_reason(reasons_json: str) -> str:
    try:
        reasons = serde.loads(reasons_json)
    except serde.JSONDecodeError:
        return ""
    if isinstance(reasons, list) and reasons and isinstance(reasons[0], dict):
        return str(reasons[0].get("message", ""))
    return ""


def _alert_rows(backend: ClickHouseBackend, rows: Sequence[tuple[Any, ...]]) -> list[AlertRow]:
    products = _evidence_products(backend, rows)
    out = []
    for alert_id, customer, rule, version, tier, label, score, reasons, evidence, first_ms, last_ms in rows:
        product = next((products[e] for e in reversed(evidence) if products.get(e)), "")
        out.append(
            AlertRow(str(alert_id), str(customer), str(rule), int(version), str(tier), str(label), float(score),
                     _top_reason(reasons), int(first_ms), int(last_ms), product)
        )
    return out


def _evidence_products(backend: ClickHouseBackend, rows: Sequence[tuple[Any, ...]]) -> dict[str, str]:
    """Product named by each evidence event of ``rows`` (alert rows: customer second, evidence ninth)."""
    evidence = sorted({e for row in rows for e in row[8]})
    if not evidence:
        return {}
    customers = sorted({row[1] for row in rows})  # the sorting key's prefix: only their parts are read
    result = backend.query(_sql(
        _EVIDENCE_PRODUCTS, events=table_name(backend.database, "events"),
        customers=", ".join(map(sql_string, customers)), evidence=", ".join(map(sql_string, evidence)),
    ))
    return {str(event_id): str(product) for event_id, product in result}


def feed_alerts(backend: ClickHouseBackend, f: FeedFilter) -> list[AlertRow]:
    """The newest alerts (by event time) that pass the filter, at most ``f.limit``."""
    alerts = table_name(backend.database, "alerts")
    rows = backend.query(_sql(_FEED, columns=_ALERT_COLUMNS, alerts=alerts, where=_where(backend, f), limit=f.limit))
    return _alert_rows(backend, rows)


def tier_counts(
    backend: ClickHouseBackend, f: FeedFilter, max_span_ms: int
) -> tuple[ChartWindow, list[tuple[str, int, int]]] | None:
    """Distinct alerts per (tier, bucket of episode start) over the newest ``max_span_ms``; None without alerts."""
    alerts = table_name(backend.database, "alerts")
    where = _where(backend, f)
    ((oldest, newest, count),) = backend.query(_sql(_SPAN, alerts=alerts, where=where))
    if not count:
        return None
    window = chart_window(int(oldest), int(newest), max_span_ms)
    rows = backend.query(_sql(
        _TIER_BUCKETS, alerts=alerts, where=where, offset=CHINA_OFFSET_MS, width=window.bucket_ms,
        start=window.start_ms,
    ))
    return window, [(str(tier), int(bucket), int(n)) for tier, bucket, n in rows]


def top_rules(backend: ClickHouseBackend, f: FeedFilter, limit: int = 10) -> list[RuleCount]:
    """Rules by distinct alerts raised (most first), with distinct customers and per-tier counts."""
    per_tier = ", ".join(f"uniqExactIf(alert_id, tier = {sql_string(t)})" for t in TIERS)
    rows = backend.query(_sql(
        _TOP_RULES, per_tier=per_tier, alerts=table_name(backend.database, "alerts"), where=_where(backend, f),
        limit=limit,
    ))
    return [
        RuleCount(str(rule), int(n), int(customers), {t: int(c) for t, c in zip(TIERS, tiers, strict=True)})
        for rule, n, customers, *tiers in rows
    ]


def filter_options(backend: ClickHouseBackend) -> tuple[list[str], list[str]]:
    """Rule ids that raised alerts, and product codes named by events (for the filter menus)."""
    rules = backend.query(_sql(_RULES, alerts=table_name(backend.database, "alerts")))
    products = backend.query(_sql(_PRODUCTS, events=table_name(backend.database, "events")))
    return [str(r) for (r,) in rules], [str(p) for (p,) in products]


def customer_record(backend: ClickHouseBackend, customer_id: str) -> CustomerRecord:
    """A customer's events, snapshots, alerts, limit actions and rings (``customer_id`` already checked)."""
    db = backend.database
    who: dict[str, str | int] = {"customer": sql_string(customer_id), "limit": _CUSTOMER_ROWS}
    events = [
        EventRow(str(event_id), str(kind), int(ts_ms), _object(payload))
        for event_id, kind, ts_ms, payload in backend.query(
            _sql(_CUSTOMER_EVENTS, events=table_name(db, "events"), **who)
        )
    ]
    snapshots = [
        SnapshotRow(int(ts_ms), float(score), str(tier), str(grade), dict(zip(names, values, strict=True)))
        for ts_ms, score, tier, grade, names, values in backend.query(
            _sql(_CUSTOMER_SNAPSHOTS, snapshots=table_name(db, "profile_snapshots"), **who)
        )
    ]
    alerts = _alert_rows(
        backend, backend.query(_sql(_CUSTOMER_ALERTS, columns=_ALERT_COLUMNS, alerts=table_name(db, "alerts"), **who))
    )
    actions = [
        LimitActionRow(str(a), str(kind), None if factor is None else float(factor), str(grade), list(ids),
                       int(ts_ms), int(expires))
        for a, kind, factor, grade, ids, ts_ms, expires in backend.query(
            _sql(_CUSTOMER_ACTIONS, actions=table_name(db, "limit_actions"), **who)
        )
    ]
    rings = [
        RingRow(str(ring), int(size), float(score), str(tier), bool(dissolved), int(first), int(last))
        for ring, size, score, tier, dissolved, first, last in backend.query(
            _sql(_CUSTOMER_RINGS, members=table_name(db, "ring_members"), **who)
        )
    ]
    return CustomerRecord(customer_id, events, snapshots, alerts, actions, rings)


def _object(payload: str) -> dict[str, Any]:
    try:
        value = serde.loads(payload)
    except serde.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
