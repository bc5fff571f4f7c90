"""Risk propagation: a ring membership raises a clean-looking member through fusion, once, and expires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from detectors.engine import CustomerState, Engine, EngineConfig
from schemas.behavior import Login
from schemas.common import to_ms
from schemas.entities import EntityLink, EntityRef, RingMembership, entity_link_id, ring_membership_id

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
RING = "4f1c2a9e0b7d6c35"


def login(eid: str, minute: float) -> Login:
    return Login(event_id=eid, customer_id="c_1", ts=T0 + timedelta(minutes=minute), device_id="d_1",
                 ip="10.0.0.1", channel="h5", method="password", success=True)


def membership(minute: float, score: float, ring: str = RING) -> RingMembership:
    ts = T0 + timedelta(minutes=minute)
    return RingMembership(
        event_id=ring_membership_id(ring, "c_1", to_ms(ts), score), customer_id="c_1", ts=ts, ring_id=ring,
        score=score, size=7, via=[EntityRef(kind="device", value="d_shared")],
    )


def test_a_quiet_member_of_a_hot_ring_is_raised_with_the_ring_as_reason() -> None:
    engine = Engine()
    state = engine.process(CustomerState.empty("c_1"), login("l1", 0)).state
    step = engine.process(state, membership(5, 0.9))
    assert [(a.rule_id, a.tier) for a in step.alerts] == [("fused_risk", "warning")]
    messages = [r.message for r in step.alerts[0].reasons]
    assert f"member of ring {RING} (7 customers) via device d_shared" in messages
    assert step.state.ring is not None and step.state.ring.score == 0.9
    # The same membership again (a replay) changes nothing; it re-sends the same alert (same id) for safety.
    again = engine.process(step.state, membership(5, 0.9))
    assert [a.alert_id for a in again.alerts] == [a.alert_id for a in step.alerts] and again.state == step.state


def test_an_older_membership_arriving_late_is_not_applied_over_a_newer_one() -> None:
    engine = Engine()
    state = engine.process(CustomerState.empty("c_1"), membership(10, 0.5)).state
    late = engine.process(state, membership(5, 0.95))
    assert late.alerts == () and late.state.ring is not None and late.state.ring.score == 0.5


def test_leaving_the_ring_clears_it_and_a_stale_membership_stops_counting() -> None:
    engine = Engine()
    state = engine.process(CustomerState.empty("c_1"), membership(0, 0.5)).state
    assert engine.process(state, membership(1, 0.0)).state.ring is None
    # Left another ring: this one stays.
    other = engine.process(state, membership(1, 0.0, ring="aaaaaaaaaaaaaaaa")).state
    assert other.ring is not None and other.ring.ring_id == RING
    ttl = EngineConfig().ring_propagation.ttl_minutes
    copy = CustomerState.from_bytes(state.to_bytes())  # the engine updates the profile in place
    later = engine.process(copy, login("l2", ttl + 1))
    assert all(s.score == 0 for s in later.scores if s.detector_id == "ring_membership")
    fresh = engine.process(state, login("l3", ttl - 1))
    assert [s.score for s in fresh.scores if s.detector_id == "ring_membership"] == [0.5]


def test_membership_round_trips_through_the_state_bytes() -> None:
    state = Engine().process(CustomerState.empty("c_1"), membership(0, 0.7)).state
    assert CustomerState.from_bytes(state.to_bytes()) == state


def test_link_ids_are_symmetric_and_checked() -> None:
    ref = EntityRef(kind="net24", value="10.1.2.0/24")
    link = EntityLink(customer_a="c_1", customer_b="c_2", entity=ref, first_seen=T0, last_seen=T0)
    assert link.link_id == entity_link_id("c_2", "c_1", "net24", "10.1.2.0/24")
    assert EntityLink.model_validate_json(link.model_dump_json()) == link
