"""The rolling profile: expectations below are worked out by hand from the event times, not read off the code."""

from __future__ import annotations

import doctest
import re
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest

import detectors.profile as profile_module
from detectors.profile import SEEN_IDS, TAIL_SIZE, InputEvent, Profile, features, update
from detectors.profile_features import FEATURE_NAMES
from schemas.behavior import Drawdown, LimitQuery, LoanApplication, Login, PageView, ProfileChange
from schemas.common import to_ms
from schemas.inquiry import CreditInquiry
from schemas.repayment import DpdUpdate, InstallmentMissed, Payment

# 2026-01-05 04:00 UTC is 12:00 in China: mid-day, far from both day boundaries and the night window.
T0 = datetime(2026, 1, 5, 4, 0, tzinfo=UTC)
_ids = count()


def _eid() -> str:
    return f"e{next(_ids)}"


def app(
    at: datetime, product: str = "cash_loan", channel: str = "h5", device: str = "d_1", eid: str = ""
) -> LoanApplication:
    return LoanApplication(
        event_id=eid or _eid(), customer_id="c_1", ts=at, device_id=device, ip="10.0.0.1", channel=channel,
        product=product, application_id="a1", amount=5000, term_months=12,
    )


def drawdown(at: datetime, amount: float, limit: float, device: str = "d_1") -> Drawdown:
    return Drawdown(
        event_id=_eid(), customer_id="c_1", ts=at, device_id=device, ip="10.0.0.1", channel="app_ios",
        product="credit_line", loan_id="l1", amount=amount, available_limit_before=limit, term_months=6,
    )


def change(at: datetime, field: str, device: str = "d_1") -> ProfileChange:
    return ProfileChange(
        event_id=_eid(), customer_id="c_1", ts=at, device_id=device, ip="10.0.0.2", channel="app_ios", field=field,
    )


def login(at: datetime, device: str = "d_1") -> Login:
    return Login(
        event_id=_eid(), customer_id="c_1", ts=at, device_id=device, ip="10.0.0.3", channel="app_ios",
        method="sms", success=True,
    )


def inquiry(at: datetime, kind: str) -> CreditInquiry:
    return CreditInquiry(
        event_id=_eid(), customer_id="c_1", ts=at, institution_kind=kind, institution_id="i1",
        purpose="loan_application",
    )


def dpd(at: datetime, days: int, loan: str = "l1") -> DpdUpdate:
    return DpdUpdate(event_id=_eid(), customer_id="c_1", ts=at, loan_id=loan, dpd=days)


def build(*events: InputEvent) -> Profile:
    p = Profile.empty("c_1")
    for e in events:
        update(p, e)
    return p


def at(p: Profile, when: datetime) -> dict[str, float]:
    return features(p, to_ms(when))


def test_module_doctests() -> None:
    assert doctest.testmod(profile_module).failed == 0


def test_features_have_every_documented_name_even_when_empty() -> None:
    f = features(Profile.empty("c_1"), to_ms(T0))
    assert tuple(f) == FEATURE_NAMES
    assert f["days_since_on_time_payment"] == -1.0
    assert all(v == 0.0 for k, v in f.items() if k != "days_since_on_time_payment")
    doc = profile_module.__doc__ or ""
    for name in FEATURE_NAMES:  # every feature is in the module's table, by full name or as stem_h
        stem = re.sub(r"_(30m|24h|7d|30d)$", "_h", name)
        assert name in doc or stem in doc or stem.removeprefix("profile_changes") in doc, name


def test_thirty_minute_window_boundary() -> None:
    # minute buckets 09:00, 09:10, 09:29 (UTC 04:xx): at 04:29:59 the window is minutes 04:00..04:29 -> all 3;
    # at 04:30:00 it is 04:01..04:30 -> the 04:00 one has left.
    p = build(app(T0), app(T0 + timedelta(minutes=10)), app(T0 + timedelta(minutes=29, seconds=59)))
    assert at(p, T0 + timedelta(minutes=29, seconds=59))["loan_applications_30m"] == 3
    assert at(p, T0 + timedelta(minutes=30))["loan_applications_30m"] == 2
    assert at(p, T0 + timedelta(minutes=30))["loan_applications_24h"] == 3
    # A query time before an event leaves that event out.
    assert at(p, T0 + timedelta(minutes=5))["loan_applications_30m"] == 1


def test_out_of_order_and_late_events_land_in_their_buckets() -> None:
    p = build(app(T0 + timedelta(minutes=25)), app(T0 + timedelta(minutes=20)))  # 5 minutes out of order
    assert at(p, T0 + timedelta(minutes=25))["loan_applications_30m"] == 2
    # 60 minutes late: its minute bucket is gone (watermark 05:25), its hour and day buckets are kept.
    update(p, app(T0 + timedelta(minutes=25 - 60)))
    f = at(p, T0 + timedelta(minutes=25))
    assert (f["loan_applications_30m"], f["loan_applications_24h"], f["loan_applications_30d"]) == (2, 3, 3)
    assert f["late_events"] == 0


def test_longest_horizon_boundary_counts_late_events() -> None:
    p = build(app(T0))  # China day 2026-01-05
    update(p, app(T0 - timedelta(days=29)))  # day 2025-12-07: 29 days behind, still in the 30-day window
    update(p, app(T0 - timedelta(days=30)))  # 30 days behind: past the horizon
    f = at(p, T0)
    assert f["loan_applications_30d"] == 2
    assert f["late_events"] == 1


def test_day_buckets_follow_china_time() -> None:
    # 15:59 UTC is 23:59 China on Jan 5, 16:00 UTC is 00:00 China on Jan 6: different days, one 24h window.
    p = build(inquiry(datetime(2026, 1, 5, 15, 59, tzinfo=UTC), "bank"))
    late_evening = datetime(2026, 1, 11, 16, 0, tzinfo=UTC)  # China Jan 12 00:00: Jan 5 is 7 days back
    assert at(p, late_evening)["inquiries_bank_7d"] == 0
    assert at(p, late_evening - timedelta(minutes=1))["inquiries_bank_7d"] == 1


def test_replay_does_not_double_count_within_the_id_ring() -> None:
    first = app(T0, eid="same")
    p = build(first, app(T0 + timedelta(minutes=1)), first)
    f = at(p, T0 + timedelta(minutes=1))
    assert (f["loan_applications_30m"], f["duplicate_events"]) == (2, 1)


def test_replay_older_than_the_id_ring_counts_again() -> None:
    # The documented consequence of the bound: after SEEN_IDS newer events the id is forgotten.
    first = app(T0, eid="old")
    p = build(first, *(login(T0 + timedelta(seconds=i + 1)) for i in range(SEEN_IDS)))
    update(p, first)
    assert at(p, T0 + timedelta(minutes=1))["loan_applications_30m"] == 2


def test_products_channels_devices_and_ips() -> None:
    p = build(
        app(T0, "cash_loan", "h5", device="d_1"),
        app(T0 + timedelta(minutes=1), "salary_advance", "app_ios", device="d_2"),
        app(T0 + timedelta(minutes=2), "cash_loan", "h5", device="d_1"),
        login(T0 + timedelta(minutes=3)),
    )
    f = at(p, T0 + timedelta(minutes=3))
    assert f["distinct_products_applied_30m"] == 2
    assert f["distinct_channels_applied_30m"] == 2
    assert f["distinct_devices_30m"] == 2
    assert f["distinct_ips_30m"] == 2  # 10.0.0.1 (applications) and 10.0.0.3 (login)
    assert f["logins_30m"] == 1


def test_drawdown_limit_shares_amounts_and_night() -> None:
    night = datetime(2026, 1, 5, 17, 30, tzinfo=UTC)  # 01:30 China time, Jan 6
    p = build(
        drawdown(night - timedelta(hours=4), 1000, 2000),  # 21:30 China: evening, not night
        drawdown(night, 8000, 10000),
        login(night + timedelta(minutes=1)),
        login(night + timedelta(minutes=2)),
    )
    f = at(p, night + timedelta(minutes=2))
    assert f["drawdowns_24h"] == 2
    assert f["drawdown_amount_24h"] == 9000
    assert f["drawdown_limit_share_max_24h"] == pytest.approx(0.8)
    assert f["drawdown_limit_share_total_24h"] == pytest.approx(0.9)  # 9000 of the largest limit, 10000
    assert f["drawdown_limit_share_max_30m"] == pytest.approx(0.8)
    assert f["night_drawdowns_24h"] == 1
    assert f["night_events_24h"] == 3
    assert f["night_share_24h"] == pytest.approx(3 / 4)


def test_profile_changes_by_field_and_inquiries_by_kind() -> None:
    p = build(
        inquiry(T0 - timedelta(days=10), "bank"),
        inquiry(T0 - timedelta(days=2), "non_bank"),
        inquiry(T0 - timedelta(days=1), "non_bank"),
        change(T0, "phone"),
        change(T0 + timedelta(minutes=1), "bank_card"),
        change(T0 + timedelta(minutes=2), "phone"),
    )
    f = at(p, T0 + timedelta(minutes=2))
    assert (f["inquiries_bank_7d"], f["inquiries_non_bank_7d"], f["inquiries_7d"]) == (0, 2, 2)
    assert (f["inquiries_bank_30d"], f["inquiries_non_bank_30d"], f["inquiries_30d"]) == (1, 2, 3)
    assert (f["profile_changes_phone_30m"], f["profile_changes_bank_card_30m"]) == (2, 1)
    assert (f["profile_changes_address_30d"], f["profile_changes_30m"]) == (0, 3)


def test_repayment_state_rolls_and_cure() -> None:
    p = build(
        Payment(event_id=_eid(), customer_id="c_1", ts=T0, loan_id="l1", installment_no=1, amount=500,
                kind="full", on_time=True),
        InstallmentMissed(event_id=_eid(), customer_id="c_1", ts=T0 + timedelta(days=40), loan_id="l1",
                          installment_no=2, amount_due=500),
        dpd(T0 + timedelta(days=41), 1),  # M0 -> M1: roll (window at day 61: days 32..61)
        Payment(event_id=_eid(), customer_id="c_1", ts=T0 + timedelta(days=42), loan_id="l1", installment_no=2,
                amount=100, kind="partial", on_time=False),
        dpd(T0 + timedelta(days=61), 31),  # M1 -> M2: roll
        dpd(T0 + timedelta(days=61), 3, loan="l2"),  # another loan, M1: max stays 31
    )
    f = at(p, T0 + timedelta(days=61))
    assert (f["dpd_max"], f["dpd_bucket"], f["dpd_rolls_30d"]) == (31, 2, 2)
    assert (f["missed_payments_30d"], f["partial_payments_30d"], f["on_time_payments_30d"]) == (1, 1, 0)
    assert f["days_since_on_time_payment"] == 61
    update(p, dpd(T0 + timedelta(days=62), 0))
    update(p, dpd(T0 + timedelta(days=62), 0, loan="l2"))  # both current again: one cure
    f = at(p, T0 + timedelta(days=62))
    assert (f["dpd_max"], f["dpd_bucket"], f["dpd_bucket_max_30d"], f["dpd_cures_30d"]) == (0, 0, 2, 1)


def test_tail_keeps_sequence_events_in_time_order_and_is_bounded() -> None:
    p = build(
        login(T0, device="d_1"),  # first device: baseline, and a login from it is not a sequence event
        PageView(event_id=_eid(), customer_id="c_1", ts=T0, device_id="d_9", ip="10.0.0.1", channel="h5", page="home"),
        change(T0 + timedelta(minutes=2), "phone"),
        login(T0 + timedelta(minutes=3), device="d_2"),  # new device
        LimitQuery(event_id=_eid(), customer_id="c_1", ts=T0 + timedelta(minutes=1), device_id="d_1",
                   ip="10.0.0.1", channel="h5", available_limit=20000),  # late: slots in before the change
        drawdown(T0 + timedelta(minutes=4), 19000, 20000, device="d_2"),
    )
    tail = p.tail_events()
    assert [(e.event_type, e.field, e.new_device) for e in tail] == [
        ("limit_query", None, False),
        ("profile_change", "phone", False),
        ("login", None, True),
        ("drawdown", None, False),
    ]
    assert tail[-1].amount == 19000 and tail[-1].limit_share == pytest.approx(0.95)
    for i in range(TAIL_SIZE + 3):
        update(p, change(T0 + timedelta(minutes=10 + i), "address"))
    assert len(p.tail_events()) == TAIL_SIZE
    assert all(e.field == "address" for e in p.tail_events())


def test_serialisation_round_trip_and_determinism() -> None:
    events: list[InputEvent] = [
        app(T0), drawdown(T0 + timedelta(minutes=1), 3000, 5000), change(T0 + timedelta(minutes=2), "phone"),
        inquiry(T0, "non_bank"), dpd(T0, 12), login(T0 + timedelta(minutes=3), device="d_2"),
    ]
    p = build(*events)
    data = p.to_bytes()
    q = Profile.from_bytes(data)
    assert q.to_bytes() == data and q == p and q.customer_id == "c_1"
    assert at(q, T0 + timedelta(minutes=3)) == at(p, T0 + timedelta(minutes=3))
    assert q.tail_events() == p.tail_events()
    assert build(*events).to_bytes() == data  # same events, same bytes
    with pytest.raises(ValueError, match="version"):
        Profile.from_bytes(b"\x09" + data[1:])
    with pytest.raises(ValueError, match="truncated"):
        Profile.from_bytes(data[:-1])


def test_features_do_not_change_the_profile() -> None:
    p = build(app(T0), drawdown(T0, 100, 1000))
    before = p.to_bytes()
    features(p, to_ms(T0))
    assert p.to_bytes() == before
