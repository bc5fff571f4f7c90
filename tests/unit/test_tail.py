"""`loanwatch tail` without Kafka: decoding, filtering and formatting of alerts."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len
from rich.console import Console

from schemas import serde
from schemas.outputs import Alert, Tier, alert_id_for
from streams.tail import (
    AlertFilter,
    InvalidRecord,
    alert_cells,
    alert_table,
    china_time,
    decode_alert,
    invalid_line,
    json_line,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "schemas" / "examples" / "alert.json"
T0 = datetime(2026, 1, 5, 9, 1, 12, 5000, tzinfo=UTC)
RING_ID = "3f9c0a1b2c3d4e5f"


def make_alert(
    customer: str = "c_000123", tier: Tier = "attention", rule: str = "multi_application_burst", **extra: Any
) -> Alert:
    return Alert(
        alert_id=alert_id_for(customer, rule, tier, T0),
        customer_id=customer,
        rule_id=rule,
        rule_version=2,
        tier=tier,
        score=0.625,
        reasons=[
            {"code": "top", "message": "5 applications within 30 min", "feature": "apps_30m", "value": 5,
             "threshold": 5},
            {"code": "second", "message": "not shown", "feature": "products", "value": 3, "threshold": 0},
        ],
        evidence_event_ids=[],
        first_seen=T0,
        last_seen=T0 + timedelta(minutes=18),
        **extra,
    )


def ring_alert(members: list[str], tier: Tier = "warning") -> Alert:
    return make_alert(
        members[0], tier, "fraud_ring", ring={"ring_id": RING_ID, "members": members, "entities": []}
    )


def render(alerts: list[Alert], header: bool = False) -> str:
    console = Console(width=200, record=True, color_system=None, file=io.StringIO())
    console.print(alert_table(alerts, header=header))
    return console.export_text()


# -- filter ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("min_tier", "shown"),
    [("notice", {"notice", "attention", "warning"}), ("attention", {"attention", "warning"}), ("warning", {"warning"})],
)
def test_min_tier_shows_that_tier_and_above(min_tier: str, shown: set[str]) -> None:
    flt = AlertFilter.of(min_tier)
    assert {t for t in ("notice", "attention", "warning") if flt.matches(make_alert(tier=t))} == shown  # type: ignore[arg-type]


def test_unknown_tier_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown tier 'critical'"):
        AlertFilter.of("critical")


def test_rules_are_any_of() -> None:
    flt = AlertFilter.of(rules=["multi_application_burst", "night_limit_exhaustion"])
    assert flt.matches(make_alert(rule="multi_application_burst"))
    assert flt.matches(make_alert(rule="night_limit_exhaustion"))
    assert not flt.matches(make_alert(rule="fraud_ring"))
    assert AlertFilter.of().matches(make_alert(rule="fraud_ring"))  # no --rule: any rule


def test_customers_match_the_alert_customer() -> None:
    flt = AlertFilter.of(customers=["c_000001", "c_000002"])
    assert flt.matches(make_alert("c_000002"))
    assert not flt.matches(make_alert("c_000003"))


def test_customers_match_ring_members() -> None:
    ring = ring_alert(["c_ring_00", "c_ring_01", "c_ring_02"])
    assert ring.customer_id == "c_ring_00"
    assert AlertFilter.of(customers=["c_ring_02"]).matches(ring)
    assert not AlertFilter.of(customers=["c_solo_01"]).matches(ring)


def test_conditions_combine() -> None:
    ring = ring_alert(["c_ring_00", "c_ring_01"], tier="attention")
    assert AlertFilter.of("attention", ["fraud_ring"], ["c_ring_01"]).matches(ring)
    assert not AlertFilter.of("warning", ["fraud_ring"], ["c_ring_01"]).matches(ring)
    assert not AlertFilter.of("attention", ["multi_application_burst"], ["c_ring_01"]).matches(ring)


# -- formatting -----------------------------------------------------------------------------------------------


def test_china_time_is_utc_plus_8() -> None:
    assert china_time(datetime(2026, 1, 5, 16, 30, 1, tzinfo=UTC)) == "2026-01-06 00:30:01"


def test_normal_alert_row() -> None:
    cells = alert_cells(make_alert())
    assert [c.plain for c in cells] == [
        "2026-01-05 17:19:12",
        "关注 attention",
        "c_000123",
        "multi_application_burst v2",
        "0.62",
        "",
        "5 applications within 30 min",
    ]
    assert cells[1].style == "dark_orange"


@pytest.mark.parametrize(("tier", "style"), [("notice", "yellow"), ("attention", "dark_orange"), ("warning", "red")])
def test_tier_colours(tier: Tier, style: str) -> None:
    assert style in str(alert_cells(make_alert(tier=tier))[1].style)


def test_ring_alert_row_names_ring_and_member_count() -> None:
    alert = ring_alert([f"c_ring_{i:02d}" for i in range(8)])
    cells = alert_cells(alert)
    assert cells[1].plain == "预警 warning"
    assert cells[3].plain == "fraud_ring v2"
    assert cells[5].plain == f"{RING_ID} ×8"
    text = render([alert])
    assert f"{RING_ID} ×8" in text and "c_ring_00" in text and "预警 warning" in text


def test_long_ring_id_is_cut() -> None:
    ring = {"ring_id": "a" * 64, "members": ["c_ring_00", "c_x"], "entities": []}
    alert = make_alert("c_ring_00", "warning", "fraud_ring", ring=ring)
    assert alert_cells(alert)[5].plain == "a" * 15 + "… ×2"


def test_tables_line_up_and_header_has_titles() -> None:
    header = render([], header=True)
    assert "event time (UTC+8)" in header and "top reason" in header
    rows = render([make_alert("c_000001"), make_alert("c_000002", "warning")]).splitlines()
    one = render([make_alert("c_000001")]).splitlines()
    assert rows[0] == one[0]  # the same row printed alone or in a table: fixed column widths
    assert "关注 attention" in rows[0] and "预警 warning" in rows[1]  # the tier column is wide enough

    def column(line: str, text: str) -> int:  # in terminal cells: CJK characters are two wide
        return cell_len(line[: line.index(text)])

    assert column(rows[1], "c_000002") == column(rows[0], "c_000001") == column(header, "customer")
    assert column(rows[1], "0.62") == column(rows[0], "0.62")


def test_json_line_round_trips() -> None:
    alert = ring_alert(["c_ring_00", "c_ring_01"])
    line = json_line(alert)
    assert "\n" not in line
    assert Alert.model_validate_json(line) == alert
    assert serde.loads(line)["tier_label"] == "预警"


# -- invalid records ------------------------------------------------------------------------------------------


def test_decode_example_alert() -> None:
    decoded = decode_alert(EXAMPLE.read_bytes())
    assert isinstance(decoded, Alert) and decoded.alert_id == "4d91dba4a8cf198b716c3683e0995fc3"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (None, "tombstone"),
        (b"", "Invalid JSON"),
        (b"\xff\xfe not utf8", "Invalid JSON"),
        (b"[1, 2]", "object"),
        (b'{"alert_id": "x"}', "more"),
    ],
)
def test_invalid_records_are_described_not_raised(value: bytes | None, says: str) -> None:
    decoded = decode_alert(value, partition=3, offset=42)
    assert isinstance(decoded, InvalidRecord)
    assert (decoded.partition, decoded.offset) == (3, 42)
    assert says in decoded.reason


def test_wrong_tier_label_is_invalid() -> None:
    data = serde.loads(EXAMPLE.read_bytes())
    data["tier_label"] = "预警"
    decoded = decode_alert(serde.dumps(data), 0, 7)
    assert isinstance(decoded, InvalidRecord) and "tier_label" in decoded.reason


def test_invalid_line_is_one_dim_line() -> None:
    line = invalid_line(InvalidRecord(1, 99, "tier: Input should be 'notice', 'attention' or 'warning'"))
    assert line.style == "dim" and "\n" not in line.plain
    assert line.plain.startswith("skipped partition 1 offset 99: not an alert")
