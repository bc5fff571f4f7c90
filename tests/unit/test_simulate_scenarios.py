"""Every labelled scenario, checked from the records themselves (decoded with schemas.decode).

Each scenario's defining property is computed here independently of the generator (see the properties module
next to this file); every scenario customer satisfies their scenario's property, and no customer outside a
customer-level episode (ordinary and drifted customers) satisfies any of them.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.behavior import Drawdown, LimitQuery, Login
from schemas.common import to_ms
from streams.simulate.model import SCENARIO_NAMES, InjectedEpisode
from streams.simulate.traffic import SimConfig, SimRecord, Traffic
from tests.unit.test_simulate_scenarios_properties import (
    DECODERS,
    PROPERTIES,
    Event,
    dpd_rolls_to_m2,
    drawdown_share_24h,
    inquiry_peaks_7d,
    profile_change_gaps,
)

START = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)  # 08:00 China: the day's night is 16:00-22:00 UTC
DAY = 24 * 3_600_000
SHARES = dict.fromkeys(SCENARIO_NAMES, 0.03)


@dataclass
class Run:
    traffic: Traffic
    records: list[SimRecord]
    by_customer: dict[str, list[tuple[SimRecord, Event]]]

    def episodes(self, scenario: str) -> list[InjectedEpisode]:
        return [e for e in self.traffic.episodes if e.scenario == scenario]

    def customers_with_episode(self) -> set[str]:
        return {e.customer_id for e in self.traffic.episodes if e.customer_id is not None}

    def events(self, customer: str) -> list[Event]:
        return [e for _, e in self.by_customer[customer]]


def _run(config: SimConfig) -> Run:
    traffic = Traffic(config)
    records = list(traffic.records())
    by_customer: dict[str, list[tuple[SimRecord, Event]]] = defaultdict(list)
    for record in records:
        if record.label != "malformed":
            event = DECODERS[record.topic](record.value)
            by_customer[event.customer_id].append((record, event))
    return Run(traffic, records, by_customer)


@pytest.fixture(scope="module")
def day() -> Run:
    """A day of 2,500 customers, 3 % in each scenario, with malformed messages mixed in."""
    return _run(SimConfig(customers=2500, start=START, hours=24, scenario_shares=SHARES, malformed_share=0.01))


def test_every_scenario_gets_its_share_of_customers(day: Run) -> None:
    counts = Counter(e.scenario for e in day.traffic.episodes)
    assert counts == {**dict.fromkeys(SCENARIO_NAMES, 75), "population_drift": 1}
    (drift,) = day.episodes("population_drift")
    assert drift.customer_id is None and drift.details["customers"] == 75
    labelled = defaultdict(set)
    for record in day.records:
        if record.episode_id is not None:
            labelled[record.label].add(record.customer_id)
    for name in SCENARIO_NAMES:
        assert len(labelled[name]) == 75 if name != "population_drift" else 35 <= len(labelled[name]) <= 75
    # (Drifted customers who never open the app after the shift have no labelled records.) One scenario per
    # customer, and drifted customers are ordinary ones.
    customer_level = [e.customer_id for e in day.traffic.episodes if e.customer_id is not None]
    assert len(customer_level) == len(set(customer_level))
    assert not set(drift.details["customer_ids"]) & set(customer_level)


EXPECTED_TYPES: dict[str, Callable[[list[str]], bool]] = {
    "multi_application_burst": lambda t: set(t) == {"loan_application"},
    "multi_lending": lambda t: set(t) == {"credit_inquiry"} and 6 <= len(t) <= 15,
    "sequence_takeover": lambda t: t
    == ["login", "page_view", "profile_change", "login", "page_view", "profile_change"]
    + ["login", "limit_query", "page_view", "drawdown"],
    "sequence_new_device_cashout": lambda t: t == ["login", "page_view", "limit_query", "page_view", "drawdown"],
    "night_limit_exhaustion": lambda t: t[:2] == ["login", "limit_query"] and set(t[2:]) == {"drawdown"},
    "repayment_deterioration": lambda t: t[:2] == ["installment_due", "missed"] and t[-1] == "dpd_update",
}


def test_episode_records_are_labelled_in_order_and_inside_their_window(day: Run) -> None:
    by_episode: dict[str, list[tuple[SimRecord, Event]]] = defaultdict(list)
    for pairs in day.by_customer.values():
        for record, event in pairs:
            assert (record.label == "normal") == (record.episode_id is None)
            if record.episode_id is not None:
                by_episode[record.episode_id].append((record, event))
    episodes = {e.episode_id: e for e in day.traffic.episodes}
    assert set(by_episode) == set(episodes)
    span = (to_ms(START), to_ms(START + timedelta(hours=24)))
    for episode_id, pairs in by_episode.items():
        episode = episodes[episode_id]
        assert {r.label for r, _ in pairs} == {episode.scenario}
        times = [r.ts_ms for r, _ in pairs]  # one customer's records in stream order (drift: customer by customer)
        if episode.scenario == "population_drift":
            assert min(times) >= episode.start_ms and max(times) < span[1] and episode.end_ms == span[1] - 1
            assert {r.customer_id for r, _ in pairs} <= set(episode.details["customer_ids"])
            assert all(r.topic == "loan.behavior.v1" for r, _ in pairs)
            continue
        assert {r.customer_id for r, _ in pairs} == {episode.customer_id}
        assert times == sorted(times) and span[0] <= times[0] and times[-1] < span[1]
        assert (times[0], times[-1]) == (episode.start_ms, episode.end_ms)
        types = [e.event_type for _, e in pairs]
        assert EXPECTED_TYPES[episode.scenario](types), (episode.scenario, types)
    takeover = by_episode[day.episodes("sequence_takeover")[0].episode_id]
    assert [e.field for _, e in takeover if e.event_type == "profile_change"] == ["phone", "bank_card"]


@pytest.mark.parametrize("scenario", sorted(PROPERTIES))
def test_every_episode_satisfies_its_defining_property(day: Run, scenario: str) -> None:
    check = PROPERTIES[scenario]
    episodes = day.episodes(scenario)
    assert episodes
    for episode in episodes:
        assert episode.customer_id is not None
        assert check(day.events(episode.customer_id)), episode


@pytest.mark.parametrize("scenario", sorted(PROPERTIES))
def test_no_customer_outside_an_episode_satisfies_a_property(day: Run, scenario: str) -> None:
    check = PROPERTIES[scenario]
    outside = set(day.by_customer) - day.customers_with_episode()
    assert len(outside) > 1500  # ordinary and drifted customers (with any event in the day)
    assert not [c for c in outside if check(day.events(c))]
    # Within the scenario's own customers and the ordinary ones, the property picks exactly the scenario's.
    mine = {str(e.customer_id) for e in day.episodes(scenario)}
    assert {c for c in outside | mine if check(day.events(c))} == mine


def test_what_normal_looks_like(day: Run) -> None:
    outside = set(day.by_customer) - day.customers_with_episode()
    totals, non_banks, gaps, shares = [], [], [], []
    for customer in outside:
        events = day.events(customer)
        total, non_bank = inquiry_peaks_7d(events)
        totals.append(total)
        non_banks.append(non_bank)
        gaps.extend(profile_change_gaps(events))
        shares.append(drawdown_share_24h(events))
        assert not dpd_rolls_to_m2(events)
    assert max(totals) <= 4 and max(non_banks) <= 2 and max(totals) >= 2  # bounded, not absent
    assert all(g >= DAY for g in gaps)
    assert 0.5 < max(shares) <= 0.85


def test_population_drift_shifts_limit_queries_and_drawdowns(day: Run) -> None:
    def rates(pairs: list[tuple[SimRecord, Event]]) -> tuple[float, float]:
        logins = sum(isinstance(e, Login) and e.success for _, e in pairs)
        queries = sum(isinstance(e, LimitQuery) for _, e in pairs)
        draws = [e.amount / e.available_limit_before for _, e in pairs if isinstance(e, Drawdown)]
        return queries / logins, sum(draws) / len(draws)

    drifted = [(r, e) for pairs in day.by_customer.values() for r, e in pairs if r.label == "population_drift"]
    outside = set(day.by_customer) - day.customers_with_episode()
    normal = [(r, e) for c in outside for r, e in day.by_customer[c] if r.label == "normal"]
    drift_queries, drift_share = rates(drifted)
    normal_queries, normal_share = rates(normal)
    assert drift_queries > 1.8 * normal_queries
    assert drift_share > normal_share + 0.1


def test_shorter_spans_compress_scenarios_and_skip_night_without_night() -> None:
    shares = {n: 0.06 for n in SCENARIO_NAMES if n != "night_limit_exhaustion"}
    run = _run(SimConfig(customers=400, start=START, hours=2, scenario_shares=shares))
    span = (to_ms(START), to_ms(START) + 2 * 3_600_000)
    for episode in run.traffic.episodes:
        assert span[0] <= episode.start_ms <= episode.end_ms < span[1]
        if episode.scenario in PROPERTIES:
            assert episode.customer_id is not None
            assert PROPERTIES[episode.scenario](run.events(episode.customer_id)), episode
    assert Counter(e.scenario for e in run.traffic.episodes)["repayment_deterioration"] == 24
    # Night at 08:00-10:00 China: skipped when it is a default share, refused when asked for.
    default = SimConfig(customers=400, start=START, hours=2)
    assert set(default.skipped_scenarios) == {"night_limit_exhaustion"}
    assert default.scenario_counts["night_limit_exhaustion"] == 0
    with pytest.raises(ValidationError, match="China night"):
        SimConfig(customers=400, start=START, hours=2, scenario_shares={"night_limit_exhaustion": 0.01})
    # A span from 23:00 to 02:00 China time holds a night episode.
    late = _run(
        SimConfig(
            customers=300,
            start=START + timedelta(hours=15),
            hours=3,
            burst_share=0.0,
            scenario_shares={"night_limit_exhaustion": 0.1},
        )
    )
    nights = [e for e in late.traffic.episodes if e.scenario == "night_limit_exhaustion"]
    assert len(nights) == 30
    assert all(PROPERTIES["night_limit_exhaustion"](late.events(str(e.customer_id))) for e in nights)
    with pytest.raises(ValidationError, match="1 hour"):
        SimConfig(customers=10, start=START, hours=0.5, burst_share=0, scenario_shares={"multi_lending": 0.1})
    assert SimConfig(customers=10, start=START, hours=0.5, burst_share=0).scenario_counts == dict.fromkeys(
        SCENARIO_NAMES, 0
    )


def test_a_long_span_keeps_the_real_rhythm_of_multi_lending() -> None:
    run = _run(
        SimConfig(
            customers=150,
            start=START,
            hours=24 * 10,
            burst_share=0,
            scenario_shares={"multi_lending": 0.1, "repayment_deterioration": 0.1},
        )
    )
    lending = [e for e in run.traffic.episodes if e.scenario == "multi_lending"]
    assert len(lending) == 15
    assert max(e.end_ms - e.start_ms for e in lending) > 2 * DAY  # spread over days, as in life
    for episode in run.traffic.episodes:
        assert PROPERTIES[episode.scenario](run.events(str(episode.customer_id)))
    outside = set(run.by_customer) - run.customers_with_episode()
    peaks = [inquiry_peaks_7d(run.events(c)) for c in outside]
    assert max(t for t, _ in peaks) <= 4 and max(n for _, n in peaks) <= 2


def test_shares_are_validated_and_burst_share_still_works() -> None:
    assert SimConfig(customers=100, start=START, burst_share=0.05).scenario_counts["multi_application_burst"] == 5
    only = SimConfig(customers=100, start=START, scenario_shares={"multi_application_burst": 0.1})
    assert only.scenario_counts["multi_application_burst"] == 10 and sum(only.scenario_counts.values()) == 10
    defaults = SimConfig(customers=1000, start=START, hours=24)
    assert sum(defaults.shares.values()) == pytest.approx(0.10)
    with pytest.raises(ValidationError, match="disagree"):
        SimConfig(customers=100, start=START, burst_share=0.05, scenario_shares={"multi_application_burst": 0.1})
    with pytest.raises(ValidationError):
        SimConfig(customers=100, start=START, scenario_shares={"teleport": 0.1})
    with pytest.raises(ValidationError, match="more than all"):
        SimConfig(customers=100, start=START, hours=24, scenario_shares=dict.fromkeys(SCENARIO_NAMES, 0.2))


def test_scenarios_are_deterministic_and_leave_bursts_where_they_were() -> None:
    config = SimConfig(customers=300, start=START, hours=24, scenario_shares=SHARES)
    first, second = Traffic(config), Traffic(config)
    assert first.episodes == second.episodes
    assert [(r.ts_ms, r.value, r.label, r.episode_id) for r in first.records()] == [
        (r.ts_ms, r.value, r.label, r.episode_id) for r in second.records()
    ]
    plain = SimConfig(customers=300, start=START, hours=24)
    bursts_only = plain.model_copy(update={"scenario_shares": {}})
    assert Traffic(plain).bursts == Traffic(bursts_only).bursts
    assert [b.to_episode() for b in first.bursts] == [
        e for e in first.episodes if e.scenario == "multi_application_burst"
    ]


def test_twenty_thousand_customers_for_a_day(capsys: Any) -> None:
    traffic = Traffic(SimConfig(customers=20_000, start=START, hours=24))
    began = time.perf_counter()
    labels = Counter(r.label for r in traffic.records())  # streamed, never held in a list
    elapsed = time.perf_counter() - began
    assert labels["normal"] > 100_000 and all(labels[n] for n in SCENARIO_NAMES)
    with capsys.disabled():
        print(f"\n20,000 customers x 24 h: {labels.total():,} records in {elapsed:.1f} s; {dict(labels)}")
