"""The console's pure parts: request checks, SQL literals, chart windows and SVG, page escaping."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from schemas.outputs import TIERS, Tier
from streams.console.chart import (
    CHINA_OFFSET_MS,
    HOUR_MS,
    MINUTE_MS,
    NICE_BUCKETS_MS,
    bucket_ms_for,
    chart_window,
    fill_series,
    score_svg,
    tier_chart_svg,
)
from streams.console.filters import MAX_FEED_ROWS, FeedFilter, InvalidParameter, customer_id_or_error, sql_string
from streams.console.pages import alert_json, customer_page, event_summary, feed_page, shown_time
from streams.console.profile_client import ProfileLookup
from streams.console.queries import AlertRow, CustomerRecord, EventRow, LimitActionRow, SnapshotRow

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x")</script>&\'"'


def test_sql_string_escapes_quote_and_backslash_only() -> None:
    assert sql_string("c_000123") == "'c_000123'"
    literal = sql_string("a'b\\c")
    # Undo ClickHouse's two escapes by hand: the body must read back as the input.
    body = literal[1:-1]
    assert body.replace("\\'", "'").replace("\\\\", "\\") == "a'b\\c"
    assert "'" not in body.replace("\\'", "")


@pytest.mark.parametrize("value", ["a\nb", "nul\x00", "tab\t", "del\x7f"])
def test_sql_string_refuses_control_characters(value: str) -> None:
    with pytest.raises(InvalidParameter):
        sql_string(value)


def test_feed_filter_reads_and_checks_the_query_string() -> None:
    f = FeedFilter.from_query({"tier": "warning", "rule": "fraud_ring", "product": "cash_loan", "limit": "20"})
    assert (f.tier, f.rule, f.product, f.limit) == ("warning", "fraud_ring", "cash_loan", 20)
    assert f.as_query() == {"tier": "warning", "rule": "fraud_ring", "product": "cash_loan"}
    empty = FeedFilter.from_query({"tier": "", "rule": "", "product": ""})
    assert (empty.tier, empty.rule, empty.product) == (None, None, None)
    assert empty.as_query() == {}


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"tier": "critical"}, "tier"),
        ({"rule": "Fraud-Ring"}, "rule"),
        ({"rule": "x' OR 1=1 --"}, "rule"),
        ({"product": "cash loan"}, "product"),
        ({"product": "p" * 33}, "product"),
        ({"rule": "fraud_ring\n"}, "rule"),  # `$` alone would let a trailing newline through
        ({"product": "cash_loan\n"}, "product"),
        ({"limit": "0"}, "limit"),
        ({"limit": str(MAX_FEED_ROWS + 1)}, "limit"),
        ({"limit": "-5"}, "limit"),
        ({"limit": "²"}, "limit"),  # a digit to str.isdigit(), not a number to int()
    ],
)
def test_feed_filter_refuses_values_outside_the_contracts(query: dict[str, str], named: str) -> None:
    with pytest.raises(InvalidParameter, match=named):
        FeedFilter.from_query(query)


@pytest.mark.parametrize("value", ["c_000123", "A.b:c-d_9", "x" * 128])
def test_customer_ids_of_the_contract_pass(value: str) -> None:
    assert customer_id_or_error(value) == value


@pytest.mark.parametrize("value", ["", "x" * 129, "c_1'", "c 1", "<b>", "c_1\\", "客户", "c_1\n"])
def test_other_customer_ids_are_refused(value: str) -> None:
    with pytest.raises(InvalidParameter, match="customer id"):
        customer_id_or_error(value)


@pytest.mark.parametrize("span_ms", [0, MINUTE_MS, 3 * HOUR_MS, 10 * HOUR_MS, 30 * 24 * HOUR_MS])
def test_bucket_width_is_nice_and_bounds_the_bucket_count(span_ms: int) -> None:
    width = bucket_ms_for(span_ms, max_buckets=48)
    assert width in NICE_BUCKETS_MS
    narrower = [w for w in NICE_BUCKETS_MS if w < width]
    if width != NICE_BUCKETS_MS[-1]:
        assert span_ms <= width * 48
    assert all(span_ms > w * 48 for w in narrower)


def test_chart_window_covers_oldest_to_newest_on_china_time_boundaries() -> None:
    oldest = int(datetime(2026, 1, 5, 1, 7, tzinfo=UTC).timestamp() * 1000)
    newest = oldest + 7 * HOUR_MS + 13 * MINUTE_MS
    window = chart_window(oldest, newest, max_span_ms=24 * HOUR_MS)
    assert window.start_ms <= oldest < window.start_ms + window.bucket_ms
    assert window.end_ms - window.bucket_ms <= newest < window.end_ms
    assert (window.start_ms + CHINA_OFFSET_MS) % window.bucket_ms == 0
    assert window.buckets == sorted(window.buckets) and len(window.buckets) == window.count


def test_chart_window_keeps_only_the_newest_span() -> None:
    newest = 1_767_600_000_000
    window = chart_window(newest - 100 * 24 * HOUR_MS, newest, max_span_ms=6 * HOUR_MS)
    assert window.end_ms - window.start_ms <= 6 * HOUR_MS + 2 * window.bucket_ms
    assert window.end_ms > newest


def test_fill_series_places_counts_in_their_buckets_and_ignores_the_rest() -> None:
    window = chart_window(0 - CHINA_OFFSET_MS, 4 * HOUR_MS - CHINA_OFFSET_MS, 24 * HOUR_MS)
    second = window.buckets[1]
    rows = [("notice", second, 4), ("warning", window.buckets[0], 1), ("notice", second + 1, 9),
            ("unknown", second, 5), ("attention", window.end_ms, 7)]
    series = fill_series(rows, window)
    assert set(series) == set(TIERS)
    assert series["notice"][1] == 4 and sum(series["notice"]) == 4
    assert series["warning"][0] == 1 and sum(series["warning"]) == 1
    assert sum(series["attention"]) == 0
    assert all(len(counts) == window.count for counts in series.values())


def _svg(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # noqa: S314 — markup drawn by the code under test, not outside input


def test_tier_chart_has_one_series_per_tier_with_a_point_per_bucket() -> None:
    window = chart_window(0, 10 * HOUR_MS, 24 * HOUR_MS)
    series: dict[Tier, list[int]] = {
        tier: [(i * (n + 1)) % 5 for i in range(window.count)] for n, tier in enumerate(TIERS)
    }
    groups = _svg(tier_chart_svg(series, window)).findall(f"{SVG}g")
    assert [g.get("data-tier") for g in groups] == list(TIERS)
    for group, tier in zip(groups, TIERS, strict=True):
        points = group.findall(f"{SVG}circle")
        counts = series[tier]
        assert [int(p.get("data-count", "-1")) for p in points] == counts
        assert group.get("data-total") == str(sum(counts))
        heights = [float(p.get("cy", "0")) for p in points]
        # A larger count is drawn higher (a smaller y), equal counts at one height.
        for i in range(len(counts)):
            for j in range(len(counts)):
                if counts[i] > counts[j]:
                    assert heights[i] < heights[j]
                elif counts[i] == counts[j]:
                    assert heights[i] == heights[j]


def test_score_chart_draws_every_snapshot_and_handles_none() -> None:
    points = [(1_767_600_000_000 + i * 1_800_000, s) for i, s in enumerate((0.1, 0.5, 0.9))]
    assert len(_svg(score_svg(points)).findall(f"{SVG}g/{SVG}circle")) == 3
    assert _svg(score_svg([])).findall(f"{SVG}g") == []


def test_shown_time_is_china_time() -> None:
    at = datetime(2026, 1, 5, 9, 19, 40, tzinfo=UTC)
    assert shown_time(int(at.timestamp() * 1000)) == (at + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S")


def test_event_summary_leaves_out_the_envelope_and_stays_short() -> None:
    payload = {"schema_version": 1, "event_id": "e1", "event_type": "drawdown", "customer_id": "c_1",
               "ts": "2026-01-05T09:00:00.000Z", "amount": 9000, "product": "cash_loan", "session_id": None}
    assert event_summary(payload) == "amount=9000 product=cash_loan"
    assert len(event_summary({"note": "x" * 1000})) <= 160


def _alert(**changes: object) -> AlertRow:
    values: dict[str, object] = {
        "alert_id": "a" * 32, "customer_id": "c_1", "rule_id": "multi_application_burst", "rule_version": 2,
        "tier": "warning", "tier_label": "预警", "score": 0.91234, "top_reason": "8 applications in 30 min",
        "first_seen_ms": 1_767_600_000_000, "last_seen_ms": 1_767_600_600_000, "product": "cash_loan",
    }
    values.update(changes)
    return AlertRow(**values)  # type: ignore[arg-type]


def test_alert_json_links_the_customer_page_with_the_id_encoded() -> None:
    data = alert_json(_alert(customer_id="c:1.x"))
    assert data["customer_href"] == "/customers/c%3A1.x"
    assert data["last_seen"] == shown_time(1_767_600_600_000)
    assert data["score"] == pytest.approx(0.912)


def test_customer_page_escapes_everything_from_data() -> None:
    record = CustomerRecord(
        customer_id="c_1",
        events=[EventRow("e<1>", "login", 1_767_600_000_000, {"device_id": HOSTILE})],
        snapshots=[SnapshotRow(1_767_600_000_000, 0.5, "notice", "C", {"loan_applications_30m": 3.0})],
        alerts=[_alert(top_reason=HOSTILE, product=HOSTILE)],
        limit_actions=[LimitActionRow("act1", "freeze", None, "E", ["a" * 32], 1_767_600_000_000, 0)],
        rings=[],
    )
    lookup = ProfileLookup("ok", "from the worker", {"customer_id": "c_1", "tier": HOSTILE,
                                                     "features": {"30m": {"x": 1.0}}, "ring": {"id": HOSTILE}})
    page = customer_page(record, lookup, engine=HOSTILE)
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "until restore" in page and "loan_applications_30m" in page
    assert page.count("<svg") == 1


def test_feed_page_escapes_filter_values_and_menu_entries() -> None:
    page = feed_page(FeedFilter(rule="fraud_ring"), [HOSTILE], ["cash_loan"], engine="chdb 26.9")
    assert "<script>alert" not in page
    assert '<option value="fraud_ring" selected>' in page
    assert 'src="/static/console.js"' in page
