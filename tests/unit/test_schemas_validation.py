"""What the contracts refuse, and how they say it; event time, money, ids, alerts, limit actions, rules."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from detectors.engine import EngineConfig
from schemas.behavior import LoanApplication, Login
from schemas.common import EventTime, Money, from_ms, to_ms
from schemas.decode import decode_behavior
from schemas.ids import IpAddress, PseudoId
from schemas.outputs import (
    MAX_REASON_CHARS,
    TIER_LABELS,
    TIER_ORDER,
    Alert,
    DeadLetter,
    LimitAction,
    ProfileSnapshot,
    Reason,
    Tier,
    alert_id_for,
    dead_letter_id_for,
)
from schemas.rules import BurstRuleConfig, TierThresholds

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
T0_MS = 1767603600000
BASE: dict[str, Any] = {
    "event_id": "e1",
    "customer_id": "c_000123",
    "ts": "2026-01-05T09:00:00Z",
    "device_id": "d_9f2c",
    "ip": "10.0.0.1",
    "channel": "h5",
}
PHONE_MESSAGE = "identifier fields must be pseudonymous: value looks like a raw mobile phone number"
ID_CARD_MESSAGE = "identifier fields must be pseudonymous: value looks like a raw resident ID card number"


def login(**changes: Any) -> Login:
    return Login.model_validate({**BASE, "method": "sms", "success": True, **changes})


def only_error(exc: pytest.ExceptionInfo[ValidationError]) -> tuple[tuple[int | str, ...], str]:
    errors = exc.value.errors()
    assert len(errors) == 1, errors
    return errors[0]["loc"], errors[0]["msg"]


# --- event time ---


def test_epoch_ms_and_iso_strings_give_the_same_ts() -> None:
    assert (
        login(ts=T0_MS).ts == login(ts="2026-01-05T09:00:00Z").ts == login(ts="2026-01-05T17:00:00+08:00").ts
    )
    assert login(ts=T0_MS).ts == T0
    assert login(ts="2026-01-05T17:00:00+08:00").ts.tzinfo is UTC


def test_ts_is_truncated_to_milliseconds() -> None:
    assert login(ts="2026-01-05T09:00:00.123999Z").ts == T0 + timedelta(milliseconds=123)
    assert login(ts=T0 + timedelta(microseconds=999)).ts == T0
    assert to_ms(login(ts="2026-01-05T09:00:00.123999Z").ts) == T0_MS + 123


def test_naive_timestamp_is_refused() -> None:
    with pytest.raises(ValidationError) as exc:
        login(ts="2026-01-05T09:00:00")
    assert only_error(exc) == (("ts",), "ts must carry a timezone")
    with pytest.raises(ValidationError, match="ts must carry a timezone"):
        login(ts=datetime(2026, 1, 5, 9, 0))  # noqa: DTZ001 — the point of the test


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1767603600, "ts must be epoch milliseconds between 2000 and 2100 (looks like epoch seconds)"),
        ("1767603600000", "ts must be ISO-8601 if a string; send epoch milliseconds as a JSON integer"),
        (1767603600000.0, "ts must be an ISO-8601 string or integer epoch milliseconds, not a float"),
        ("yesterday", "ts is not a valid ISO-8601 date-time"),
        ("1999-12-31T23:59:59Z", "ts must lie between 2000-01-01 and 2100-01-01"),
    ],
)
def test_ambiguous_or_implausible_times_are_refused(value: object, message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        login(ts=value)
    assert only_error(exc) == (("ts",), message)


def test_event_time_serialises_as_utc_millis_with_z() -> None:
    assert login(ts="2026-01-05T17:00:00.5+08:00").model_dump(mode="json")["ts"] == "2026-01-05T09:00:00.500Z"
    assert login(ts=T0_MS).model_dump()["ts"] == T0  # python mode keeps the datetime
    assert TypeAdapter(EventTime).dump_json(T0) == b'"2026-01-05T09:00:00.000Z"'


def test_to_ms_is_exact_and_refuses_naive() -> None:
    dt = datetime(2026, 1, 5, 17, 0, 0, 1000, tzinfo=timezone(timedelta(hours=8)))
    assert to_ms(dt) == T0_MS + 1
    assert from_ms(to_ms(dt)) == dt
    with pytest.raises(ValueError, match="naive"):
        to_ms(datetime(2026, 1, 5))  # noqa: DTZ001


# --- ids ---


@pytest.mark.parametrize(
    "value",
    [
        "13800138000",
        "+8613800138000",
        "8613800138000",
        "+86 138 0013 8000",
        "138-0013-8000",
        "phone:15912345678",
    ],
)
@pytest.mark.parametrize("field", ["customer_id", "device_id"])
def test_raw_phone_numbers_are_refused_in_id_fields(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as exc:
        login(**{field: value})
    assert only_error(exc) == ((field,), PHONE_MESSAGE)
    assert value not in str(exc.value)  # the refused value never reaches logs


@pytest.mark.parametrize(
    "value", ["11010519491231002X", "440308199901011234", "110105491231002", "c_11010519491231002x"]
)
def test_resident_id_card_numbers_are_refused(value: str) -> None:
    with pytest.raises(ValidationError) as exc:
        login(customer_id=value)
    assert only_error(exc) == (("customer_id",), ID_CARD_MESSAGE)


@pytest.mark.parametrize(
    "value",
    [
        "c_000123",
        "d_9f2c4e8a1b7d13800138000aa",  # digits inside a hash are not a phone number
        "12345678901",  # 11 digits, but not a mobile prefix
        "123456789012345678",  # 18 digits without an ID card's date and check digit
        "h_5f1e0c9a2b7d4e6f8a0b1c2d3e4f5a6b",
    ],
)
def test_pseudonymous_ids_are_accepted(value: str) -> None:
    assert TypeAdapter(PseudoId).validate_python(value) == value


def test_id_outside_the_character_set_is_refused() -> None:
    with pytest.raises(ValidationError) as exc:
        login(customer_id="张三")
    assert exc.value.errors()[0]["type"] == "string_pattern_mismatch"
    with pytest.raises(ValidationError):
        login(customer_id="c" * 129)


@pytest.mark.parametrize("value", ["999.1.1.1", "10.0.0", "not-an-ip", "10.0.0.1/24", "", "192.168.001.1"])
def test_bad_ip_is_refused(value: str) -> None:
    with pytest.raises(ValidationError) as exc:
        login(ip=value)
    assert only_error(exc) == (("ip",), "value is not a valid IPv4 or IPv6 address")


def test_ip_is_stored_in_canonical_form() -> None:
    ip = TypeAdapter(IpAddress)
    assert ip.validate_python("2001:DB8:0:0:0:0:0:1") == "2001:db8::1"
    assert ip.validate_python(" 10.0.0.1 ") == "10.0.0.1"
    assert ip.validate_python("192.168.1.1") == "192.168.1.1"


# --- shape ---


def test_extra_field_is_refused() -> None:
    with pytest.raises(ValidationError) as exc:
        login(nickname="x")
    assert only_error(exc) == (("nickname",), "Extra inputs are not permitted")


def test_models_are_frozen() -> None:
    event = login()
    with pytest.raises(ValidationError, match="frozen"):
        setattr(event, "success", False)  # noqa: B010 — bypass the type checker on purpose
    assert event.success is True
    assert hash(event) == hash(login())  # frozen models are hashable values


def test_negative_amount_is_refused_with_location() -> None:
    raw = (
        b'{"event_type":"loan_application","event_id":"e1","customer_id":"c_1","ts":1767603600000,'
        b'"device_id":"d_1","ip":"10.0.0.1","channel":"h5","product":"p1","application_id":"a1",'
        b'"amount":-5,"term_months":12}'
    )
    with pytest.raises(ValidationError) as exc:
        decode_behavior(raw)
    assert only_error(exc) == (("loan_application", "amount"), "Input should be greater than or equal to 0")


@pytest.mark.parametrize("amount", [12.345, float("inf"), float("nan")])
def test_money_needs_finite_yuan_with_cents(amount: float) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Money).validate_python(amount)


def test_money_accepts_cents_despite_float_representation() -> None:
    money = TypeAdapter(Money)
    assert money.validate_python(0.1 + 0.2) == pytest.approx(0.3)
    assert money.validate_python(12345678.91) == 12345678.91
    assert money.validate_python(5000) == 5000.0


def test_loan_application_requires_product() -> None:
    with pytest.raises(ValidationError) as exc:
        LoanApplication.model_validate({**BASE, "application_id": "a1", "amount": 100, "term_months": 12})
    assert only_error(exc) == (("product",), "Field required")


# --- outputs ---


def alert(**changes: Any) -> Alert:
    fields: dict[str, Any] = {
        "alert_id": alert_id_for("c_1", "multi_application_burst", "notice", T0),
        "customer_id": "c_1",
        "rule_id": "multi_application_burst",
        "rule_version": 1,
        "tier": "notice",
        "score": 0.4,
        "reasons": [
            Reason(code="n", message="3 applications", feature="applications_30m", value=3, threshold=3)
        ],
        "evidence_event_ids": ["e1", "e2", "e3"],
        "first_seen": T0,
        "last_seen": T0 + timedelta(minutes=4),
    }
    return Alert(**{**fields, **changes})


def test_alert_id_for_is_deterministic_and_distinct() -> None:
    base: tuple[str, str, Tier, datetime] = ("c_1", "multi_application_burst", "notice", T0)
    assert alert_id_for(*base) == alert_id_for("c_1", "multi_application_burst", "notice", T0_MS)
    assert alert_id_for(*base) == alert_id_for(
        "c_1", "multi_application_burst", "notice", T0.astimezone(timezone(timedelta(hours=8)))
    )
    variants = {
        alert_id_for(*base),
        alert_id_for("c_2", "multi_application_burst", "notice", T0),
        alert_id_for("c_1", "multi_lending", "notice", T0),
        alert_id_for("c_1", "multi_application_burst", "warning", T0),
        alert_id_for("c_1", "multi_application_burst", "notice", T0_MS + 1),
    }
    assert len(variants) == 5
    assert all(len(v) == 32 and int(v, 16) >= 0 for v in variants)
    with pytest.raises(ValueError, match="unknown tier"):
        alert_id_for("c_1", "r", "severe", T0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="naive"):
        alert_id_for("c_1", "r", "notice", datetime(2026, 1, 5))  # noqa: DTZ001


def test_tier_label_is_derived_and_must_match() -> None:
    assert alert().tier_label == "提示"
    assert alert(tier="warning", tier_label="预警").tier_label == TIER_LABELS["warning"]
    with pytest.raises(ValidationError) as exc:
        alert(tier="warning", tier_label="提示")
    assert only_error(exc) == (("tier_label",), "tier_label must be '预警' for tier 'warning'")
    assert [t for t, _ in sorted(TIER_ORDER.items(), key=lambda kv: kv[1])] == [
        "notice",
        "attention",
        "warning",
    ]


def test_alert_refuses_inconsistent_content() -> None:
    with pytest.raises(ValidationError, match="last_seen must not be earlier than first_seen"):
        alert(last_seen=T0 - timedelta(seconds=1))
    with pytest.raises(ValidationError, match="at least 1 item"):
        alert(reasons=[])
    with pytest.raises(ValidationError, match="at most 50 items"):
        alert(evidence_event_ids=[f"e{i}" for i in range(51)])
    with pytest.raises(ValidationError, match="previous_alert_id must differ from alert_id"):
        alert(previous_alert_id=alert().alert_id)
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        alert(score=1.01)


def limit_action(**changes: Any) -> LimitAction:
    fields: dict[str, Any] = {
        "action_id": "a1",
        "customer_id": "c_1",
        "action": "freeze",
        "grade": "E",
        "ts": T0,
    }
    return LimitAction(**{**fields, **changes})


def test_reduce_limit_requires_a_factor() -> None:
    with pytest.raises(ValidationError) as exc:
        limit_action(action="reduce_limit")
    assert only_error(exc) == (("factor",), "factor is required when action is 'reduce_limit'")
    assert limit_action(action="reduce_limit", factor=0.5).factor == 0.5
    with pytest.raises(ValidationError) as exc:
        limit_action(action="freeze", factor=0.5)
    assert only_error(exc) == (
        ("factor",),
        "factor is only allowed when action is 'reduce_limit', not 'freeze'",
    )
    for bad in (0.0, 1.0):
        with pytest.raises(ValidationError):
            limit_action(action="reduce_limit", factor=bad)


def test_limit_action_expiry_is_after_ts() -> None:
    assert limit_action(expires_at=T0 + timedelta(days=7)).expires_at == T0 + timedelta(days=7)
    with pytest.raises(ValidationError, match="expires_at must be later than ts"):
        limit_action(expires_at=T0)


def test_profile_snapshot_refuses_non_finite_features() -> None:
    snap = ProfileSnapshot(customer_id="c_1", ts=T0, features={"applications_30m": 3.0}, score=0.2)
    assert snap.tier is None and snap.grade is None
    with pytest.raises(ValidationError):
        ProfileSnapshot(customer_id="c_1", ts=T0, features={"x": float("nan")}, score=0.2)
    with pytest.raises(ValidationError):
        ProfileSnapshot(customer_id="c_1", ts=T0, features={"Bad Name": 1.0}, score=0.2)


def dead_letter(payload: bytes, **changes: Any) -> DeadLetter:
    fields: dict[str, Any] = {
        "dead_letter_id": dead_letter_id_for("loan.behavior.v1", 0, 7),
        "source_topic": "loan.behavior.v1",
        "partition": 0,
        "offset": 7,
        "payload_b64": base64.b64encode(payload).decode(),
        "payload_size": len(payload),
        "error_kind": "invalid_utf8",
        "reason": "invalid_utf8: ...",
        "received_at": T0,
    }
    return DeadLetter(**{**fields, **changes})


def test_dead_letter_keeps_invalid_utf8_bytes_losslessly() -> None:
    payload = b'{"a":"\xff\xfe"}'
    letter = DeadLetter.model_validate_json(dead_letter(payload).model_dump_json())
    assert base64.b64decode(letter.payload_b64) == payload


def test_dead_letter_id_is_deterministic_per_record() -> None:
    assert dead_letter_id_for("t", 1, 2) == dead_letter_id_for("t", 1, 2)
    assert (
        len({dead_letter_id_for("t", 1, 2), dead_letter_id_for("t", 2, 1), dead_letter_id_for("u", 1, 2)})
        == 3
    )


def test_dead_letter_cuts_long_reasons_and_checks_the_size() -> None:
    letter = dead_letter(b"x", reason="r" * 5000)
    assert len(letter.reason) == MAX_REASON_CHARS and letter.reason.endswith("…")
    with pytest.raises(ValidationError, match="payload_size 5 does not match"):
        dead_letter(b"x", payload_size=5)


# --- rules ---


def test_rule_defaults() -> None:
    rules = EngineConfig()
    assert (rules.burst.window_minutes, rules.burst.cooldown_minutes, rules.burst.enabled) == (30, 30, True)
    assert (
        rules.burst.thresholds.notice,
        rules.burst.thresholds.attention,
        rules.burst.thresholds.warning,
    ) == (
        3,
        5,
        8,
    )


def test_thresholds_out_of_order_are_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as exc:
        TierThresholds(notice=5, attention=5, warning=8)
    assert only_error(exc) == (("attention",), "attention (5) must be greater than notice (5)")
    with pytest.raises(ValidationError) as exc:
        EngineConfig.model_validate({"burst": {"thresholds": {"notice": 2, "attention": 6, "warning": 4}}})
    assert only_error(exc) == (
        ("burst", "thresholds", "warning"),
        "warning (4) must be greater than attention (6)",
    )


def test_rule_fields_are_range_checked_with_their_names() -> None:
    with pytest.raises(ValidationError) as exc:
        BurstRuleConfig(window_minutes=0)
    assert only_error(exc) == (("window_minutes",), "Input should be greater than or equal to 1")
    with pytest.raises(ValidationError) as exc:
        EngineConfig.model_validate({"burst": {"rule_id": "other"}})
    assert only_error(exc)[0] == ("burst", "rule_id")
    with pytest.raises(ValidationError) as exc:
        EngineConfig.model_validate({"burst": {"window": 10}})
    assert only_error(exc) == (("burst", "window"), "Extra inputs are not permitted")
