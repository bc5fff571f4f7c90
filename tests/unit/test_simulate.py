"""The simulator's traffic: deterministic, valid by the real decoders, ordered, realistic, honestly labelled.

Properties are computed from the records themselves (decoded with schemas.decode), never from the generator's
own bookkeeping.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import topics
from schemas.behavior import Drawdown, LoanApplication
from schemas.common import to_ms
from schemas.decode import classify_error, decode_behavior, decode_inquiry, decode_repayment
from streams.simulate.malformed import malformed_value
from streams.simulate.rhythm import MINUTE_MS, NIGHT_HOURS, PEAK_HOURS, china_hour
from streams.simulate.traffic import SimConfig, SimRecord, Traffic, malformed_kinds

START = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)  # 08:00 in China
DECODERS: dict[str, Callable[[bytes], Any]] = {
    topics.BEHAVIOR: decode_behavior,
    topics.REPAYMENT: decode_repayment,
    topics.INQUIRY: decode_inquiry,
}


@pytest.fixture(scope="module")
def day() -> tuple[Traffic, list[SimRecord]]:
    """A day of 1,500 customers with 3% malformed messages: enough bursts, applications and night hours."""
    traffic = Traffic(
        SimConfig(customers=1500, start=START, hours=24, burst_share=0.02, malformed_share=0.03)
    )
    return traffic, list(traffic.records())


@pytest.fixture(scope="module")
def decoded(day: tuple[Traffic, list[SimRecord]]) -> list[tuple[SimRecord, Any]]:
    return [(r, DECODERS[r.topic](r.value)) for r in day[1] if r.label != "malformed"]


def _digest(records: list[SimRecord]) -> str:
    h = hashlib.sha256()
    for r in records:
        h.update(repr((r.topic, r.key, r.ts_ms, r.label, r.episode_id, r.customer_id)).encode())
        h.update(r.value)
    return h.hexdigest()


def test_same_seed_same_bytes_and_another_seed_differs() -> None:
    config = SimConfig(customers=200, start=START, hours=3, burst_share=0.05, malformed_share=0.05)
    first, second = Traffic(config), Traffic(config)
    assert _digest(list(first.records())) == _digest(list(second.records()))
    assert _digest(list(first.records())) == _digest(list(first.records()))  # records() restarts cleanly
    assert first.bursts == second.bursts
    other = Traffic(config.model_copy(update={"seed": 8}))
    assert _digest(list(other.records())) != _digest(list(first.records()))


def test_determinism_does_not_depend_on_the_hash_seed() -> None:
    code = (
        "import hashlib;from datetime import datetime,UTC;"
        "from streams.simulate.traffic import SimConfig,Traffic;"
        "t=Traffic(SimConfig(customers=80,start=datetime(2026,1,5,tzinfo=UTC),hours=2,malformed_share=0.1));"
        "h=hashlib.sha256();[h.update(r.value+r.label.encode()) for r in t.records()];print(h.hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(digests) == 1


def test_records_are_in_event_time_order(day: tuple[Traffic, list[SimRecord]]) -> None:
    records = day[1]
    assert all(a.ts_ms <= b.ts_ms for a, b in zip(records, records[1:], strict=False))
    start, end = to_ms(START), to_ms(START + timedelta(hours=24))
    assert all(start <= r.ts_ms < end for r in records)


def test_every_valid_record_decodes_and_matches_its_envelope(decoded: list[tuple[SimRecord, Any]]) -> None:
    assert {r.topic for r, _ in decoded} == set(DECODERS)
    for record, event in decoded:
        assert record.key == event.customer_id.encode()
        assert record.customer_id == event.customer_id
        assert record.ts_ms == to_ms(event.ts)
    ids = [event.event_id for _, event in decoded]
    assert len(ids) == len(set(ids))


def test_every_malformed_record_is_refused(day: tuple[Traffic, list[SimRecord]]) -> None:
    malformed = [r for r in day[1] if r.label == "malformed"]
    assert malformed
    for record in malformed:
        assert record.topic == topics.BEHAVIOR
        with pytest.raises(ValueError):  # ValidationError and EventTooLarge are both ValueErrors
            decode_behavior(record.value)


EXPECTED_KIND = {
    "truncated_json": "not_json",
    "invalid_utf8": "invalid_utf8",
    "wrong_type": "validation",
    "unknown_event_type": "unknown_event_type",
    "missing_field": "validation",
    "naive_timestamp": "validation",
    "raw_phone_customer_id": "validation",
    "json_list": "validation",
    "empty": "not_json",
    "huge": "too_large",
}


@pytest.mark.parametrize("kind", malformed_kinds)
def test_each_malformed_kind_is_refused_for_its_reason(kind: Any) -> None:
    import random

    for seed in range(20):  # several draws: truncation points, missing fields and phones vary
        value = malformed_value(kind, random.Random(seed), f"m{seed}", "c_000001", to_ms(START))
        with pytest.raises(ValueError) as caught:
            decode_behavior(value)
        assert classify_error(value, caught.value)[0] == EXPECTED_KIND[kind]
    if kind == "huge":
        assert len(value) > 64 * 1024
    if kind == "raw_phone_customer_id":
        assert isinstance(caught.value, ValidationError)


def test_malformed_share_is_roughly_honoured(day: tuple[Traffic, list[SimRecord]]) -> None:
    labels = Counter(r.label for r in day[1])
    valid = labels.total() - labels["malformed"]
    assert labels["malformed"] == pytest.approx(0.03 * valid, rel=0.2)


def test_malformed_share_zero_adds_nothing_and_keeps_the_valid_stream() -> None:
    config = SimConfig(customers=100, start=START, hours=2, malformed_share=0.2)
    with_bad = [r for r in Traffic(config).records() if r.label != "malformed"]
    clean = list(Traffic(config.model_copy(update={"malformed_share": 0.0})).records())
    assert _digest(with_bad) == _digest(clean)


def _applications(decoded: list[tuple[SimRecord, Any]]) -> list[tuple[SimRecord, LoanApplication]]:
    return [(r, e) for r, e in decoded if isinstance(e, LoanApplication)]


def test_each_injected_burst_is_dense_labelled_and_detectable(
    day: tuple[Traffic, list[SimRecord]], decoded: list[tuple[SimRecord, Any]]
) -> None:
    traffic, _ = day
    assert len(traffic.bursts) == 30  # 2% of 1,500
    by_episode: dict[str, list[tuple[SimRecord, LoanApplication]]] = defaultdict(list)
    for record, event in _applications(decoded):
        if record.label == "multi_application_burst":
            by_episode[str(record.episode_id)].append((record, event))
    assert set(by_episode) == {b.episode_id for b in traffic.bursts}
    start, end = to_ms(START), to_ms(START + timedelta(hours=24))
    for burst in traffic.bursts:
        apps = by_episode[burst.episode_id]
        times = [r.ts_ms for r, _ in apps]
        assert 5 <= len(apps) <= 10 and len(apps) == burst.applications
        assert max(times) - min(times) <= 25 * MINUTE_MS
        assert (min(times), max(times)) == (burst.start_ms, burst.end_ms)
        assert {e.customer_id for _, e in apps} == {burst.customer_id}
        products = {e.product for _, e in apps}
        assert 2 <= len(products) <= 4 and products == set(burst.products)
        assert min(times) - start >= 30 * MINUTE_MS and end - max(times) >= 45 * MINUTE_MS
    # Only the applications of a burst carry the burst label; a record has an episode iff it is labelled.
    for record, event in decoded:
        assert (record.label != "normal") == (record.episode_id is not None)
        if record.label == "multi_application_burst":
            assert isinstance(event, LoanApplication)
    # Several channels in some episodes, a limit query before most of them.
    multi_channel = sum(len({e.channel for _, e in by_episode[b.episode_id]}) > 1 for b in traffic.bursts)
    assert 0 < multi_channel < len(traffic.bursts)


def test_no_ordinary_application_pattern_looks_like_a_burst(decoded: list[tuple[SimRecord, Any]]) -> None:
    normal: dict[str, list[int]] = defaultdict(list)
    for record, event in _applications(decoded):
        if record.label == "normal":
            normal[event.customer_id].append(record.ts_ms)
    assert sum(map(len, normal.values())) > 100  # ordinary customers do apply, just not in bursts
    for times in normal.values():
        times.sort()
        for a, b in zip(times, times[2:], strict=False):
            assert b - a > 30 * MINUTE_MS


def test_night_is_quieter_than_peak_hours(decoded: list[tuple[SimRecord, Any]]) -> None:
    by_hour = Counter(china_hour(r.ts_ms) for r, _ in decoded)
    night = sum(by_hour[h] for h in NIGHT_HOURS) / len(NIGHT_HOURS)
    peak = sum(by_hour[h] for h in PEAK_HOURS) / len(PEAK_HOURS)
    assert night * 4 < peak


def test_behaviour_is_plausible(decoded: list[tuple[SimRecord, Any]]) -> None:
    types = Counter(e.event_type for _, e in decoded)
    for event_type in (
        "login",
        "page_view",
        "limit_query",
        "drawdown",
        "repayment_click",
        "loan_application",
        "profile_change",
        "contact_upload",
        "installment_due",
        "payment",
        "missed",
        "dpd_update",
        "credit_inquiry",
    ):
        assert types[event_type] > 0, event_type
    assert types["page_view"] > types["login"] > types["limit_query"] > types["drawdown"]
    assert types["profile_change"] < types["loan_application"]
    for _, event in decoded:
        if isinstance(event, Drawdown):
            assert 0 < event.amount <= event.available_limit_before
        ip = getattr(event, "ip", None)
        if ip is not None:
            address = ipaddress.ip_address(ip)
            assert address.version == 4
            assert (
                address in ipaddress.ip_network("10.0.0.0/8")
                or address in ipaddress.ip_network("100.64.0.0/10")
                or address in ipaddress.ip_network("203.0.113.0/24")
            )
    devices: dict[str, set[str]] = defaultdict(set)
    for _, event in decoded:
        if hasattr(event, "device_id"):
            devices[event.customer_id].add(event.device_id)
    assert max(len(d) for d in devices.values()) <= 3  # 1-2 devices, plus one after a device change
    payments = Counter(e.kind for _, e in decoded if e.event_type == "payment")
    assert payments["full"] > payments["partial"]
    inquiries = Counter(e.institution_kind for _, e in decoded if e.event_type == "credit_inquiry")
    assert inquiries["bank"] > 0 and inquiries["non_bank"] > 0


def test_config_is_validated() -> None:
    with pytest.raises(ValidationError):
        SimConfig(customers=10, start=datetime(2026, 1, 5))  # noqa: DTZ001 — naive on purpose
    with pytest.raises(ValidationError, match="too short"):
        SimConfig(customers=100, start=START, hours=1.0, burst_share=0.5)
    SimConfig(customers=100, start=START, hours=1.0, burst_share=0.0)
    with pytest.raises(ValidationError):
        SimConfig(customers=10, start=START, products=("a", "a"))
    with pytest.raises(ValidationError):
        SimConfig(customers=10, start=START, channels=("carrier_pigeon",))


def test_topics_are_configurable() -> None:
    config = SimConfig(
        customers=30,
        start=START,
        hours=2,
        burst_share=0,
        behavior_topic="b",
        repayment_topic="r",
        inquiry_topic="i",
    )
    assert {r.topic for r in Traffic(config).records()} <= {"b", "r", "i"}


def test_two_thousand_customers_for_six_hours() -> None:
    traffic = Traffic(SimConfig(customers=2000, start=START, hours=6))
    count = sum(1 for _ in traffic.records())  # streamed, never held in a list
    assert count > 2000
    assert len(traffic.bursts) == 40
