"""Rows for the console's browser test, built from contract objects by the writer's own row builders.

Every row goes through :mod:`streams.clickhouse.rows` exactly as a Kafka record would in the writer, so the
console reads what production writes. The expected figures are computed from :data:`ALERTS` here, not from
the console.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas import serde
from schemas.decode import decode_behavior
from schemas.entities import RingSnapshot
from schemas.outputs import Alert, EntityRef, LimitAction, ProfileSnapshot, Tier, alert_id_for
from streams.clickhouse import rows
from streams.clickhouse.backend import ClickHouseBackend

T0 = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
NOW = datetime(2026, 1, 6, tzinfo=UTC)
CUSTOMERS = ("c_con_1", "c_con_2", "c_con_3")
PRODUCT_OF = {"c_con_1": "cash_loan", "c_con_2": "credit_line", "c_con_3": "cash_loan"}
RING_ID = "ab12cd34ef56ab78"
HOSTILE_REASON = '<img src=x onerror="window.__xss=1"> 8 applications & more'
APPLICATIONS = 4


def event_id(customer: str, k: int) -> str:
    return f"e_{customer}_{k}"


@dataclass(frozen=True)
class SeedAlert:
    """One alert to write: who, which rule and tier, when (hours after T0) and which events are its evidence."""

    customer: str
    rule: str
    tier: Tier
    hours: float
    evidence: tuple[int, ...]
    reason: str = "applications in the window"

    @property
    def first_seen(self) -> datetime:
        return T0 + timedelta(hours=self.hours)

    @property
    def alert_id(self) -> str:
        return alert_id_for(self.customer, self.rule, self.tier, self.first_seen)


ALERTS = (
    SeedAlert("c_con_1", "multi_application_burst", "notice", 0.0, (0, 1, 2)),
    SeedAlert("c_con_1", "multi_application_burst", "attention", 0.2, (0, 1, 2, 3)),
    SeedAlert("c_con_2", "multi_application_burst", "warning", 1.0, (0, 1, 2, 3)),
    SeedAlert("c_con_3", "multi_lending", "attention", 2.0, (0,)),
    SeedAlert("c_con_3", "limit_exhaustion", "notice", 3.0, ()),
    SeedAlert("c_con_1", "fused_risk", "warning", 4.0, (3,), HOSTILE_REASON),
    SeedAlert("c_con_2", "fused_risk", "notice", 5.0, (0,)),
)
FRESH = SeedAlert("c_con_3", "fused_risk", "warning", 6.0, (1,))
SCORES = (0.2, 0.55, 0.9)


def by_tier(alerts: tuple[SeedAlert, ...]) -> Counter[str]:
    return Counter(a.tier for a in alerts)


def by_rule(alerts: tuple[SeedAlert, ...]) -> Counter[str]:
    return Counter(a.rule for a in alerts)


def _record(topic: str, offset: int, value: Any) -> rows.Record:
    data = value.model_dump(mode="json") if hasattr(value, "model_dump") else value
    return rows.Record(topic, 0, offset, None, serde.dumps(data))


def alert_of(seed: SeedAlert) -> Alert:
    return Alert.model_validate({
        "alert_id": seed.alert_id, "customer_id": seed.customer, "rule_id": seed.rule, "rule_version": 3,
        "tier": seed.tier, "score": {"notice": 0.45, "attention": 0.65, "warning": 0.9}[seed.tier],
        "reasons": [{"code": "seeded", "message": seed.reason, "feature": "applications_30m", "value": 5.0,
                     "threshold": 3.0}],
        "evidence_event_ids": [event_id(seed.customer, k) for k in seed.evidence],
        "first_seen": seed.first_seen, "last_seen": seed.first_seen + timedelta(minutes=10),
    })


def insert_alerts(backend: ClickHouseBackend, alerts: tuple[SeedAlert, ...], offset: int = 0) -> None:
    built = [rows.alert_row(_record("risk.alerts.v1", offset + i, alert_of(a)), NOW) for i, a in enumerate(alerts)]
    backend.insert("alerts", rows.ALERT_COLUMNS, built)


def seed(backend: ClickHouseBackend) -> None:
    """Events, alerts (one written twice, as a replay would), snapshots, a limit action and a ring."""
    events = []
    for i, customer in enumerate(CUSTOMERS):
        for k in range(APPLICATIONS):
            events.append({
                "schema_version": 1, "event_type": "loan_application", "event_id": event_id(customer, k),
                "customer_id": customer, "ts": (T0 + timedelta(minutes=10 * i + k)).isoformat(),
                "device_id": f"d_{customer}", "ip": "10.23.4.17", "channel": "app_android",
                "product": PRODUCT_OF[customer], "application_id": f"app_{customer}_{k}", "amount": 5000.0,
                "term_months": 12,
            })
    build_event = rows.event_row(decode_behavior)
    backend.insert("events", rows.EVENT_COLUMNS, [
        row for n, e in enumerate(events) if (row := build_event(_record("loan.behavior.v1", n, e), NOW))
    ])
    insert_alerts(backend, ALERTS)
    insert_alerts(backend, ALERTS[:1], offset=100)  # a replayed alert: same id, must count once
    snapshots = [
        ProfileSnapshot.model_validate({
            "customer_id": "c_con_1", "ts": T0 + timedelta(hours=n), "score": score,
            "tier": [None, "notice", "warning"][n], "grade": "D",
            "features": {"applications_30m": float(n + 2), "inquiries_nonbank_30d": 1.0},
        })
        for n, score in enumerate(SCORES)
    ]
    backend.insert("profile_snapshots", rows.PROFILE_SNAPSHOT_COLUMNS, [
        rows.profile_snapshot_row(_record("risk.profiles.v1", n, s), NOW) for n, s in enumerate(snapshots)
    ])
    action = LimitAction.model_validate({
        "action_id": "act_c_con_1_1", "customer_id": "c_con_1", "action": "freeze", "grade": "E",
        "alert_ids": [ALERTS[5].alert_id], "ts": T0 + timedelta(hours=4, minutes=11),
    })
    backend.insert("limit_actions", rows.LIMIT_ACTION_COLUMNS,
                   [rows.limit_action_row(_record("risk.limit-actions.v1", 0, action), NOW)])
    ring = RingSnapshot(
        ring_id=RING_ID, ts=T0 + timedelta(hours=2), first_seen=T0, size=3, score=0.7, tier="attention",
        members=list(CUSTOMERS), entities=[EntityRef(kind="device", value="d_shared_1")], links=3,
    )
    for table, table_rows in rows.ring_rows(_record("risk.rings.v1", 0, ring), NOW).items():
        columns = rows.RING_COLUMNS if table == "rings" else rows.RING_MEMBER_COLUMNS
        backend.insert(table, columns, table_rows)
