"""The analyst views on both engines (Debian's clickhouse-server 18.16 and chdb), fed through the writer's rows.

Every record goes through the writer's own row builders (streams.clickhouse.rows) and is inserted more than
once, as after a replay; the expected answers are worked out here in Python from the records themselves.
"""

from __future__ import annotations

import base64
import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from schemas import serde
from schemas.clickhouse.analytics import ANALYTICS, DAY_ZONE
from schemas.clickhouse.ddl import TABLES, Features, render_ddl
from streams.clickhouse.backend import ClickHouseBackend
from streams.clickhouse.rows import (
    ALERT_COLUMNS,
    DEAD_LETTER_COLUMNS,
    DECODERS,
    EVENT_COLUMNS,
    PROFILE_SNAPSHOT_COLUMNS,
    RING_COLUMNS,
    Record,
    alert_row,
    dead_letter_row,
    event_row,
    profile_snapshot_row,
    ring_rows,
)
from streams.clickhouse.schema import apply_ddl

pytestmark = pytest.mark.integration

ZONE = ZoneInfo(DAY_ZONE)
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # ingest time only; no view reads it
TIERS = ("notice", "attention", "warning")


@pytest.fixture
def ch(clickhouse: tuple[ClickHouseBackend, str | None]) -> Iterator[ClickHouseBackend]:
    backend, _ = clickhouse
    yield backend
    backend.execute(f"DROP DATABASE IF EXISTS `{backend.database}`")


def select(backend: ClickHouseBackend, sql: str) -> list[tuple[Any, ...]]:
    """Run ``sql`` with ``{db}`` standing for the test's quoted database and ``{name}`` for its name."""
    return backend.query(sql.format(db=f"`{backend.database}`", name=backend.database))


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def record(topic: str, value: dict[str, Any]) -> Record:
    return Record(topic, 0, 0, None, serde.dumps(value))


def insert_twice(backend: ClickHouseBackend, table: str, columns: tuple[str, ...], rows: list[Any]) -> None:
    """Insert ``rows`` in two separate inserts, so the copies sit in two parts until a merge."""
    for _ in range(2):
        backend.insert(table, columns, rows)


def application(event_id: str, customer: str, ts: datetime, product: str) -> dict[str, Any]:
    return {"schema_version": 1, "event_type": "loan_application", "event_id": event_id, "customer_id": customer,
            "ts": iso(ts), "device_id": "d_1", "ip": "10.0.0.1", "channel": "app_android", "product": product,
            "application_id": f"app_{event_id}", "amount": 1000.0, "term_months": 12}


def dpd(event_id: str, customer: str, ts: datetime, loan: str, days: int) -> dict[str, Any]:
    return {"schema_version": 1, "event_type": "dpd_update", "event_id": event_id, "customer_id": customer,
            "ts": iso(ts), "loan_id": loan, "dpd": days}


def alert(alert_id: str, customer: str, rule: str, tier: str, first: datetime, last: datetime,
          evidence: list[str]) -> dict[str, Any]:
    reason = {"code": "x", "message": "m", "feature": "f", "value": 1.0, "threshold": 1.0}
    return {"alert_id": alert_id, "customer_id": customer, "rule_id": rule, "rule_version": 1, "tier": tier,
            "score": 0.5, "reasons": [reason], "evidence_event_ids": evidence, "first_seen": iso(first),
            "last_seen": iso(last)}


def snapshot(customer: str, ts: datetime, tier: str | None, grade: str | None = None) -> dict[str, Any]:
    return {"customer_id": customer, "ts": iso(ts), "features": {"f": 1.0}, "score": 0.3, "tier": tier,
            "grade": grade}


def china_day(t: datetime) -> date:
    return t.astimezone(ZONE).date()


def test_views_are_created_with_the_tables_and_again_harmlessly(ch: ClickHouseBackend) -> None:
    apply_ddl(ch, ch.database)
    apply_ddl(ch, ch.database)
    rows = select(ch, "SELECT name, engine FROM system.tables WHERE database = '{name}' "
                    "AND NOT startsWith(name, '.inner')")
    engines = dict(rows)
    assert set(engines) == set(TABLES) | {o.name for o in ANALYTICS}
    for o in ANALYTICS:
        expected = {"table": "AggregatingMergeTree", "materialized_view": "MaterializedView", "view": "View"}[o.kind]
        assert engines[o.name] == expected, o.name


def test_daily_alerts_count_each_alert_once_and_backfill_what_was_there(ch: ClickHouseBackend) -> None:
    # Tables first, with alerts in them, as on a database created before the views existed.
    for statement in render_ddl(ch.database, Features.for_version(ch.version())):
        ch.execute(statement)
    t0 = datetime(2026, 1, 5, 15, 30, tzinfo=UTC)  # 23:30 in China: the same China day as 01-05
    t1 = datetime(2026, 1, 5, 16, 30, tzinfo=UTC)  # 00:30 on 01-06 in China
    events = [application("e1", "c_000001", t1, "cash_loan"), application("e2", "c_000001", t1, "credit_line"),
              application("e3", "c_000002", t0, "cash_loan")]
    before = [alert("a" * 32, "c_000001", "multi_application_burst", "notice", t1, t1, ["e1", "e2"]),
              alert("b" * 32, "c_000002", "multi_application_burst", "attention", t0, t0, ["e3"])]
    after = [
        # a re-emission of the first alert, later last_seen, more evidence: still one alert
        alert("a" * 32, "c_000001", "multi_application_burst", "notice", t1, t1 + timedelta(minutes=5),
              ["e1", "e2"]),
        alert("c" * 32, "c_000002", "fused_risk", "warning", t0, t0, []),
        alert("d" * 32, "c_000003", "multi_application_burst", "notice", t1, t1, ["e_missing"]),
    ]
    build_event = event_row(DECODERS["behavior"])
    insert_twice(ch, "events", EVENT_COLUMNS, [build_event(record("loan.behavior.v1", e), NOW) for e in events])
    insert_twice(ch, "alerts", ALERT_COLUMNS, [alert_row(record("risk.alerts.v1", a), NOW) for a in before])
    apply_ddl(ch, ch.database)
    insert_twice(ch, "alerts", ALERT_COLUMNS, [alert_row(record("risk.alerts.v1", a), NOW) for a in after])
    apply_ddl(ch, ch.database)  # the backfill runs only when the view is created, so this adds nothing

    ids: dict[tuple[date, str, str], set[str]] = defaultdict(set)
    customers: dict[tuple[date, str, str], set[str]] = defaultdict(set)
    for a in before + after:
        key = (china_day(datetime.fromisoformat(a["first_seen"])), a["tier"], a["rule_id"])
        ids[key].add(a["alert_id"])
        customers[key].add(a["customer_id"])
    daily = select(ch, "SELECT day, tier, rule_id, alerts, customers FROM {db}.alerts_daily")
    assert sorted(daily) == sorted((*k, len(v), len(customers[k])) for k, v in ids.items())

    products = {e["event_id"]: e["product"] for e in events}
    by_product: dict[tuple[date, str, str, str], set[str]] = defaultdict(set)
    for a in before + after:
        for event_id in a["evidence_event_ids"]:
            if event_id in products:
                day = china_day(datetime.fromisoformat(a["first_seen"]))
                by_product[(day, a["tier"], a["rule_id"], products[event_id])].add(a["alert_id"])
    rows = select(ch, "SELECT day, tier, rule_id, product, alerts FROM {db}.alerts_daily_by_product")
    assert sorted(rows) == sorted((*k, len(v)) for k, v in by_product.items())
    assert len(rows) == 3, "c*32 has no evidence and d*32 none stored: neither has a product"


def test_tier_rises_and_the_rises_of_this_week(ch: ClickHouseBackend) -> None:
    apply_ddl(ch, ch.database)
    t = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
    now = datetime.now(UTC).replace(microsecond=0)
    history: dict[str, list[tuple[datetime, str | None]]] = {
        "c_000001": [(t, None), (t + timedelta(minutes=30), "notice"), (t + timedelta(hours=1), "attention"),
                     (t + timedelta(hours=2), "notice"), (t + timedelta(hours=3), "warning")],
        # rose to notice eight days ago (last week), then to warning a moment ago (this week)
        "c_000002": [(now - timedelta(days=8), "notice"), (now - timedelta(seconds=2), "warning")],
        "c_000003": [(now - timedelta(days=8), "attention"), (now - timedelta(seconds=2), "notice")],
    }
    rows = [profile_snapshot_row(record("risk.profiles.v1", snapshot(c, ts, tier)), NOW)
            for c, points in history.items() for ts, tier in points]
    insert_twice(ch, "profile_snapshots", PROFILE_SNAPSHOT_COLUMNS, rows)

    def rank(tier: str | None) -> int:
        return TIERS.index(tier) + 1 if tier else 0

    expected = []
    for customer, points in history.items():
        previous = 0
        for ts, tier in points:
            if rank(tier) > previous:
                expected.append((customer, int(ts.timestamp() * 1000), ("", *TIERS)[previous], tier))
            previous = rank(tier)
    rises = select(ch, "SELECT customer_id, ts_ms, from_tier, to_tier FROM {db}.tier_rises")
    assert sorted(rises) == sorted(expected)

    monday = china_day(now) - timedelta(days=china_day(now).weekday())
    this_week = sorted(c for c, ts_ms, _, _ in expected
                       if china_day(datetime.fromtimestamp(ts_ms / 1000, UTC)) >= monday)
    week = select(ch, "SELECT customer_id, tier_before, top_tier, rises FROM {db}.tier_rises_this_week")
    assert sorted(c for c, *_ in week) == this_week == ["c_000002"]
    assert week == [("c_000002", "notice", "warning", 1)]


def test_roll_rates_by_grade(ch: ClickHouseBackend) -> None:
    apply_ddl(ch, ch.database)
    jan, feb = datetime(2026, 1, 10, 2, 0, tzinfo=UTC), datetime(2026, 2, 10, 2, 0, tzinfo=UTC)
    reports = [  # (customer, loan, ts, dpd)
        ("c_000001", "ln_1", jan, 0), ("c_000001", "ln_1", jan + timedelta(days=5), 5),
        ("c_000001", "ln_1", feb, 40),  # M1 at the end of January, M2 in February: rolled forward
        ("c_000001", "ln_3", jan, 0), ("c_000001", "ln_3", feb, 0),  # M0, stayed
        ("c_000002", "ln_2", jan, 10), ("c_000002", "ln_2", feb, 0),  # M1, cured
        ("c_000002", "ln_4", jan, 70),  # no February report: not counted
    ]
    grades = [("c_000001", jan, "C"), ("c_000001", jan + timedelta(days=3), "D"), ("c_000001", feb, "E")]
    build = event_row(DECODERS["repayment"])
    events = [build(record("loan.repayment.v1", dpd(f"r{i}", c, ts, loan, d)), NOW)
              for i, (c, loan, ts, d) in enumerate(reports)]
    insert_twice(ch, "events", EVENT_COLUMNS, events)
    snapshots = [profile_snapshot_row(record("risk.profiles.v1", snapshot(c, ts, None, g)), NOW)
                 for c, ts, g in grades]
    insert_twice(ch, "profile_snapshots", PROFILE_SNAPSHOT_COLUMNS, snapshots)

    def bucket(days: int) -> int:
        return min(4, (days + 29) // 30)

    def month(ts: datetime) -> date:
        return china_day(ts).replace(day=1)

    last: dict[tuple[str, str, date], tuple[datetime, int]] = {}
    for c, loan, ts, d in reports:
        key = (c, loan, month(ts))
        if key not in last or ts > last[key][0]:
            last[key] = (ts, bucket(d))
    grade_of = {}
    for c, ts, g in sorted(grades, key=lambda x: x[1]):
        grade_of[(c, month(ts))] = g
    counts: dict[tuple[date, str, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    for (c, loan, m), (_, b) in last.items():
        following = last.get((c, loan, (m + timedelta(days=32)).replace(day=1)))
        if following is None:
            continue
        row = counts[(m, grade_of.get((c, m), ""), b)]
        row[0] += 1
        row[1] += following[1] > b
        row[2] += following[1] == 0 < b
    rates = select(ch, "SELECT month, grade, from_bucket, loans, rolled_forward, cured, roll_rate "
                     "FROM {db}.repayment_roll_rates")
    assert sorted(rates) == sorted((*k, n, up, cured, up / n) for k, (n, up, cured) in counts.items())
    assert len(rates) == 3


def test_dead_letters_by_reason_and_ring_sizes(ch: ClickHouseBackend) -> None:
    apply_ddl(ch, ch.database)
    t = datetime(2026, 1, 5, 9, 1, tzinfo=UTC)
    letters = [
        ("1" * 32, "not_json", "not_json: unexpected character", t, 10),
        ("2" * 32, "not_json", "not_json: unexpected character", t + timedelta(minutes=1), 30),
        ("3" * 32, "validation", "validation: ts: Field required", t, 20),
    ]
    insert_twice(ch, "dead_letters", DEAD_LETTER_COLUMNS, [dead_letter_row(record("risk.deadletter.v1", {
        "dead_letter_id": i, "source_topic": "loan.behavior.v1", "partition": 0, "offset": n,
        "payload_b64": base64.b64encode(b"x" * size).decode(), "payload_size": size, "error_kind": kind,
        "reason": reason, "received_at": iso(ts),
    }), NOW) for n, (i, kind, reason, ts, size) in enumerate(letters)])
    by_reason = select(ch, "SELECT day, error_kind, reason, letters, largest_payload "
                         "FROM {db}.dead_letters_by_reason ORDER BY error_kind")
    assert by_reason == [(china_day(t), "not_json", "not_json: unexpected character", 2, 30),
                         (china_day(t), "validation", "validation: ts: Field required", 1, 20)]

    ring = "1ea56c545062f16e"
    changes = [(t, 3, 0.55, "notice"), (t + timedelta(minutes=30), 5, 0.7, "attention"),
               (t + timedelta(minutes=45), 4, 0.6, "attention"), (t + timedelta(hours=1, minutes=4), 2, 0.2, None)]
    snapshots = [ring_rows(record("risk.rings.v1", {
        "ring_id": ring, "ts": iso(ts), "first_seen": iso(t), "size": size, "score": score, "tier": tier,
        "members": [f"c_{i:06d}" for i in range(size)], "entities": [{"kind": "device", "value": "d_9"}],
        "links": size - 1, "dissolved": tier is None,
    }), NOW)["rings"][0] for ts, size, score, tier in changes]
    insert_twice(ch, "rings", RING_COLUMNS, snapshots)
    hourly = select(ch, "SELECT hour, end_size, max_size, end_score, end_tier, end_dissolved, snapshots "
                      "FROM {db}.ring_sizes_hourly WHERE ring_id = '" + ring + "' ORDER BY hour")
    hours: dict[datetime, list[tuple[datetime, int, float, str | None]]] = defaultdict(list)
    for change in changes:
        hours[change[0].replace(minute=0)].append(change)
    assert hourly == [(h, cs[-1][1], max(c[1] for c in cs), cs[-1][2], cs[-1][3] or "", int(cs[-1][3] is None),
                       len(cs)) for h, cs in sorted(hours.items())]



DOCS = Path(__file__).resolve().parents[2] / "docs" / "analytics.md"


def documented_view_queries() -> list[str]:
    """The example queries of docs/analytics.md that read an analyst view."""
    blocks = re.findall(r"```sql\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.DOTALL)
    names = {o.name for o in ANALYTICS}
    return [b for b in blocks if set(re.findall(r"loanwatch\.(\w+)", b)) & names]


def test_every_documented_view_query_runs(ch: ClickHouseBackend) -> None:
    # What analysts copy from the docs must run as written on both engines (here on an empty database).
    queries = documented_view_queries()
    assert queries, "docs/analytics.md shows no query of a view"
    apply_ddl(ch, ch.database)
    for query in queries:
        ch.query(query.replace("loanwatch.", f"`{ch.database}`."))
