"""Per-entity state: link thresholds per kind, dedupe and refresh, expiry, public ceiling, allow-list, memory bound."""

from __future__ import annotations

import json
import random

import pytest

from detectors.entities.config import EntityConfig
from detectors.entities.entity_state import DistinctCount, EntityState, observe
from detectors.entities.events import EntityEvent, LinkEvent, PublicEntity, event_from_dict
from detectors.entities.keys import EntityKey, EntityKind

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
T0 = 1_767_603_600_000  # 2026-01-05 09:00 UTC
CONFIG = EntityConfig()


def feed(
    key: EntityKey,
    visits: list[tuple[str, int]],
    config: EntityConfig = CONFIG,
    state: EntityState | None = None,
    allow: frozenset[tuple[str, str]] = frozenset(),
) -> tuple[EntityState, list[tuple[EntityEvent, ...]]]:
    state = state or EntityState(key)
    outs = []
    for customer, ts in visits:
        state, out = observe(state, customer, ts, config, allow)
        outs.append(out)
    return state, outs


def links(outs: list[tuple[EntityEvent, ...]]) -> list[LinkEvent]:
    return [e for out in outs for e in out if isinstance(e, LinkEvent)]


def publics(outs: list[tuple[EntityEvent, ...]]) -> list[PublicEntity]:
    return [e for out in outs for e in out if isinstance(e, PublicEntity)]


def customers(n: int) -> list[str]:
    return [f"c_{i:04d}" for i in range(n)]


@pytest.mark.parametrize(
    ("kind", "k"), [("device", 2), ("bank_card", 2), ("phone", 2), ("ip", 3), ("net24", 5)]
)
def test_links_start_at_the_kinds_threshold(kind: EntityKind, k: int) -> None:
    key = EntityKey(kind, "x_1")
    _, outs = feed(key, [(c, T0 + i * MIN) for i, c in enumerate(customers(k))])
    assert all(out == () for out in outs[:-1])
    # Reaching k links every pair of live customers at once, sorted by pair.
    names = customers(k)
    assert [link.pair for link in links(outs[-1:])] == [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    assert all(isinstance(e, LinkEvent) and e.entity == key and not e.refresh for e in outs[-1])


def test_link_times_are_the_start_and_latest_of_co_use() -> None:
    _, outs = feed(EntityKey("device", "d_1"), [("c_1", T0), ("c_1", T0 + MIN), ("c_2", T0 + 5 * MIN)])
    [link] = links(outs)
    assert (link.first_seen_ms, link.last_seen_ms) == (T0 + 5 * MIN, T0 + 5 * MIN)
    _, outs = feed(EntityKey("device", "d_1"), [("c_2", T0 + 5 * MIN), ("c_1", T0 + 2 * MIN)])  # late but live
    [link] = links(outs)
    assert (link.first_seen_ms, link.last_seen_ms) == (T0 + 5 * MIN, T0 + 5 * MIN)


def test_pair_is_sent_once_then_refreshed_when_last_seen_advances_past_the_interval() -> None:
    visits = [("c_1", T0), ("c_2", T0 + MIN)] + [("c_2", T0 + MIN + i * 10 * MIN) for i in range(1, 13)]
    _, outs = feed(EntityKey("device", "d_1"), visits)
    sent = links(outs)
    # refresh_minutes=60: every 70 minutes of advancing last_seen (strictly more than 60).
    assert [(s.last_seen_ms - T0) // MIN for s in sent] == [1, 71]
    assert [s.refresh for s in sent] == [False, True]
    assert sent[1].first_seen_ms == sent[0].first_seen_ms


def test_customers_outside_the_link_horizon_are_not_linked() -> None:
    # ip: link horizon 30 minutes, three customers needed.
    visits = [("c_1", T0), ("c_2", T0 + 20 * MIN), ("c_3", T0 + 40 * MIN)]
    state, outs = feed(EntityKey("ip", "203.0.113.1"), visits)
    assert links(outs) == []
    assert state.distinct(30) == DistinctCount(2, False) and state.distinct(1440) == DistinctCount(3, False)
    _, outs = feed(EntityKey("ip", "203.0.113.1"), [("c_2", T0 + 41 * MIN)], state=state)
    assert [link.pair for link in links(outs)] == []  # c_1 is 41 minutes old: still only two live
    _, outs = feed(EntityKey("ip", "203.0.113.1"), [("c_1", T0 + 42 * MIN)], state=state)
    assert [link.pair for link in links(outs)] == [("c_1", "c_2"), ("c_1", "c_3"), ("c_2", "c_3")]


def test_a_pair_whose_customer_left_the_horizon_is_forgotten_and_relinked_as_new() -> None:
    key = EntityKey("device", "d_1")
    state, outs = feed(key, [("c_1", T0), ("c_2", T0)])
    assert len(links(outs)) == 1
    state, outs = feed(key, [("c_2", T0 + DAY + MIN)], state=state)  # c_1 last seen more than 24 h ago
    assert links(outs) == [] and state.pairs == {}
    state, outs = feed(key, [("c_1", T0 + DAY + 2 * MIN)], state=state)
    [again] = links(outs)
    assert not again.refresh and again.first_seen_ms == T0 and again.last_seen_ms == T0 + DAY + 2 * MIN


def test_public_ceiling_reports_once_and_stops_links() -> None:
    key = EntityKey("ip", "203.0.113.9")
    names = customers(200)
    state, outs = feed(key, [(c, T0 + i * 5_000) for i, c in enumerate(names)])
    [public] = publics(outs)
    assert public.entity == key and public.customers == 21 and public.max_customers == 20 and not public.saturated
    assert public.until_ms == public.ts_ms + DAY
    first_public = next(i for i, out in enumerate(outs) if out and isinstance(out[0], PublicEntity))
    assert first_public == 20  # the 21st customer
    assert links(outs[first_public:]) == []
    assert state.is_public() and state.pairs == {}
    # Over the ceiling again later in the hold: no second report.
    state, outs = feed(key, [("c_new", T0 + 2 * HOUR)], state=state)
    assert outs == [()] and state.is_public()


def test_public_ends_after_the_hold_and_links_resume() -> None:
    key = EntityKey("ip", "203.0.113.9")
    state, _ = feed(key, [(c, T0 + i * 1000) for i, c in enumerate(customers(21))])
    assert state.is_public()
    later = T0 + DAY + HOUR  # hold (24 h) over, the crowd long gone (30-minute horizon)
    state, outs = feed(key, [("c_a", later), ("c_b", later), ("c_c", later)], state=state)
    assert not state.is_public()
    assert [link.pair for link in links(outs)] == [("c_a", "c_b"), ("c_a", "c_c"), ("c_b", "c_c")]


def test_allow_listed_entity_is_ignored() -> None:
    key = EntityKey("ip", "198.51.100.1")
    allow = frozenset({("ip", "198.51.100.1")})
    state, outs = feed(key, [(c, T0) for c in customers(50)], allow=allow)
    assert outs == [()] * 50 and state == EntityState(key)


def test_memory_is_bounded_and_overflow_is_counted() -> None:
    config = EntityConfig(device={"min_customers": 2, "max_customers": 30, "link_horizon_minutes": 1440})
    key = EntityKey("net24", "10.0.0.0/24")
    names = customers(1000)
    state, outs = feed(key, [(c, T0 + i * 10 * MIN) for i, c in enumerate(names)], config)  # 10 min apart
    assert len(state.customers) == 64 and state.evicted == 1000 - 64
    assert sorted(state.customers) == names[-64:]  # the least recently seen were forgotten
    assert state.distinct(30) == DistinctCount(4, False)  # 30 minutes hold 4 customers: exact
    assert state.distinct(43200).saturated  # 30 days hold more than 64: a lower bound
    assert all(len(out) <= 4 for out in outs)


def test_saturated_entity_is_public_even_with_few_remembered_customers() -> None:
    config = EntityConfig(capacity=4, device={"max_customers": 4}, ip={"max_customers": 4},
                          net24={"min_customers": 2, "max_customers": 4}, bank_card={"max_customers": 4},
                          phone={"max_customers": 4}, contact_list={"max_customers": 4})  # fmt: skip
    state, outs = feed(EntityKey("net24", "10.0.0.0/24"), [(c, T0) for c in customers(6)], config)
    [public] = publics(outs)
    # The fifth customer overflows capacity: four remembered, one forgotten within the horizon, so "at least 4".
    assert public.customers == 4 and public.saturated
    assert state.evicted == 2 and state.distinct(30).saturated


def test_customers_are_forgotten_after_the_retention_and_very_late_events_are_counted() -> None:
    key = EntityKey("bank_card", "bc_1")
    state, _ = feed(key, [("c_1", T0), ("c_2", T0 + 31 * DAY)])
    assert set(state.customers) == {"c_2"}
    state, outs = feed(key, [("c_3", T0 - DAY)], state=state)
    assert outs == [()] and state.late_events == 1 and set(state.customers) == {"c_2"}


def test_bank_card_links_customers_weeks_apart() -> None:
    _, outs = feed(EntityKey("bank_card", "bc_1"), [("c_1", T0), ("c_2", T0 + 20 * DAY)])
    [link] = links(outs)
    assert (link.first_seen_ms, link.last_seen_ms) == (T0 + 20 * DAY, T0 + 20 * DAY)


def random_visits(seed: int, n: int = 300) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    t = T0
    visits = []
    for _ in range(n):
        t += rng.choice((0, 1000, MIN, 10 * MIN, HOUR, 5 * HOUR))
        late = rng.random() < 0.1
        visits.append((f"c_{rng.randrange(12):02d}", t - (rng.randrange(2 * HOUR) if late else 0)))
    return visits


@pytest.mark.parametrize("seed", range(5))
def test_to_dict_round_trip_through_json(seed: int) -> None:
    key = EntityKey("ip", "100.64.1.2")
    visits = random_visits(seed)
    state = EntityState(key)
    for i, (customer, ts) in enumerate(visits):
        state, out = observe(state, customer, ts, CONFIG)
        restored = EntityState.from_dict(json.loads(json.dumps(state.to_dict())))
        assert restored == state
        for e in out:
            assert event_from_dict(json.loads(json.dumps(e.to_dict()))) == e
        if i % 50 == 0:  # continuing from a restored state gives the same outputs
            a = feed(key, visits[i + 1 :], state=state)
            b = feed(key, visits[i + 1 :], state=restored)
            assert a == b


@pytest.mark.parametrize("seed", range(5))
def test_invariants_on_random_streams(seed: int) -> None:
    key = EntityKey("ip", "100.64.1.2")
    config = EntityConfig(refresh_minutes=30)
    state = EntityState(key)
    sent: dict[tuple[str, str], LinkEvent] = {}
    for customer, ts in random_visits(seed, 500):
        state, out = observe(state, customer, ts, config)
        assert len(state.customers) <= config.capacity
        for e in out:
            assert isinstance(e, LinkEvent)
            assert e.first_seen_ms <= e.last_seen_ms
            before = sent.get(e.pair)
            if e.refresh:  # a refresh follows a sent pair and moves last_seen on by more than the interval
                assert before is not None and e.last_seen_ms - before.last_seen_ms > 30 * MIN
                assert e.first_seen_ms == before.first_seen_ms
            sent[e.pair] = e
        pairs = [link.pair for link in links([out])]
        assert pairs == sorted(set(pairs))  # sorted, no duplicates within one observation
