"""Redelivery recognised by input position: however long, a replay changes nothing and re-sends the same outputs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from detectors.engine import CustomerState, Engine, Position, StepResult
from detectors.profile import SEEN_IDS, InputEvent
from schemas import serde
from tests.unit.test_engine import CID, application, page

TOPIC = "loan.behavior.v1"


def traffic() -> list[InputEvent]:
    """A burst (five applications in five minutes), page views over three hours (far more than SEEN_IDS events),
    then one more application, which moves the burst rule's window past the burst."""
    events: list[InputEvent] = [application(f"a{i}", i) for i in range(5)]
    events += [page(f"p{i}", 10 + 3 * i) for i in range(60)]
    events.append(application("a9", 200))
    assert len(events) > 2 * SEEN_IDS
    return events


def positions(n: int, partition: int = 2, first: int = 100) -> list[Position]:
    return [Position(TOPIC, partition, first + i) for i in range(n)]


def copy(state: CustomerState) -> CustomerState:
    """An independent copy: the engine updates the profile in place."""
    return CustomerState.from_bytes(state.to_bytes())


def run(engine: Engine, state: CustomerState, events: list[InputEvent], at: list[Position] | None) -> list[StepResult]:
    """Each event in turn from a copy of ``state`` (which stays as it was)."""
    state = copy(state)
    steps = []
    for i, event in enumerate(events):
        steps.append(engine.process(state, event, position=None if at is None else at[i]))
        state = steps[-1].state
    return steps


def without_replay_counter(state: CustomerState) -> bytes:
    bare = copy(state)
    bare.profile.duplicate_events = 0
    return bare.to_bytes()


def test_a_redelivery_longer_than_the_id_ring_changes_nothing_and_resends_only_what_was_sent() -> None:
    engine, events, at = Engine(), traffic(), positions(len(traffic()))
    first = run(engine, CustomerState.empty(CID), events, at)
    state = first[-1].state
    sent = {a.alert_id for s in first for a in s.alerts}
    assert sent, "the burst alerts"

    again = run(engine, state, events, at)
    replayed = again[-1].state
    assert without_replay_counter(replayed) == without_replay_counter(state)
    assert replayed.profile.duplicate_events == len(events)
    assert replayed.burst == state.burst, "the burst's late counter too"
    assert {a.alert_id for s in again for a in s.alerts} <= sent
    assert all(s.snapshot is None and s.scores == () for s in again)


def test_without_positions_the_same_redelivery_counts_events_twice() -> None:
    # Why positions: the id ring alone remembers the last SEEN_IDS events, the burst rule its window.
    engine, events = Engine(), traffic()
    state = run(engine, CustomerState.empty(CID), events, None)[-1].state
    replayed = run(engine, state, events, None)[-1].state
    assert without_replay_counter(replayed) != without_replay_counter(state)
    assert replayed.burst.late_events > state.burst.late_events


def test_the_resend_of_a_replayed_application_is_the_alert_it_raised() -> None:
    engine, events = Engine(), traffic()[:5]
    at = positions(len(events))
    first = run(engine, CustomerState.empty(CID), events, at)
    state = first[-1].state
    for i, step in enumerate(first):
        assert engine.process(copy(state), events[i], position=at[i]).alerts == step.alerts


def test_an_event_of_another_partition_or_a_recreated_topic_is_new() -> None:
    engine, events = Engine(), traffic()
    state = run(engine, CustomerState.empty(CID), events[:10], positions(10))[-1].state
    # Partitions added: the customer's events now arrive on another partition, offsets from 0.
    moved = engine.process(copy(state), events[10], position=Position(TOPIC, 5, 0)).state
    assert moved.profile.duplicate_events == 0 and moved.positions == (Position(TOPIC, 5, 0),)
    # The topic created again: offsets restart, but the event is newer than anything applied.
    recreated = engine.process(copy(state), events[10], position=Position(TOPIC, 2, 0)).state
    assert recreated.profile.duplicate_events == 0
    assert recreated.profile.watermark_ms > state.profile.watermark_ms
    # While an event no newer than the watermark at an offset already applied is a replay.
    assert engine.process(copy(state), events[3], position=Position(TOPIC, 2, 0)).state.profile.duplicate_events == 1


def test_positions_are_kept_per_source_and_survive_the_state_bytes() -> None:
    engine, events = Engine(), traffic()
    state = engine.process(CustomerState.empty(CID), events[0], position=Position(TOPIC, 2, 7)).state
    state = engine.process(state, events[1], position=Position("loan.repayment.v1", 2, 3)).state
    state = engine.process(state, events[2], position=Position(TOPIC, 2, 9)).state
    assert sorted(state.positions, key=lambda p: p.source) == [
        Position(TOPIC, 2, 9), Position("loan.repayment.v1", 2, 3),
    ]
    assert CustomerState.from_bytes(state.to_bytes()) == state
    assert state.applied(Position(TOPIC, 2, 8)) and not state.applied(Position(TOPIC, 2, 10))


def test_a_state_written_before_positions_existed_reads_as_having_none() -> None:
    state = Engine().process(CustomerState.empty(CID), traffic()[0], position=Position(TOPIC, 2, 7)).state
    raw = state.to_bytes()
    head = raw.index(b"{", len(raw) - len(serde.dumps({"o": [[TOPIC, 2, 7]]})) - 4096)
    rest = serde.loads(raw[head:])
    older = raw[:head] + serde.dumps({k: v for k, v in rest.items() if k != "o"})
    assert CustomerState.from_bytes(older) == replace(state, positions=())


def test_positions_must_match_the_events() -> None:
    with pytest.raises(ValueError, match="2 positions for 1 events"):
        Engine().process_batch(CustomerState.empty(CID), traffic()[:1], positions=positions(2))
