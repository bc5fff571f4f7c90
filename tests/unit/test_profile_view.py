"""The profile lookup's answer, built from engine state with no Faust: counts, tiers, episodes, restriction, ring."""

from __future__ import annotations

import doctest
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from detectors import profile_view
from detectors.engine import CustomerState, Engine, EngineConfig
from detectors.engine_state import Assessment
from detectors.profile import InputEvent
from detectors.profile_features import FEATURE_NAMES
from detectors.profile_view import customer_view, group_by_horizon
from schemas import profile_api
from schemas.behavior import Drawdown, LoanApplication, ProfileChange
from schemas.common import to_ms
from schemas.entities import RingMembership
from schemas.outputs import EntityRef
from schemas.profile_api import HORIZONS, CustomerView

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # 17:00 China time
HEAD: dict[str, Any] = {"customer_id": "c_1", "device_id": "d_1", "ip": "10.0.0.1", "channel": "h5"}


def application(n: int, minutes: float) -> LoanApplication:
    return LoanApplication(
        event_id=f"app{n}", ts=T0 + timedelta(minutes=minutes), product="cash_loan", application_id=f"a{n}",
        amount=5000, term_months=12, **HEAD,
    )


def run(events: Sequence[InputEvent | RingMembership], state: CustomerState | None = None) -> CustomerState:
    engine = Engine()
    state = state or CustomerState.empty("c_1")
    for event in events:
        state = engine.process(state, event).state
    return state


def takeover(start: float = 0) -> list[InputEvent | RingMembership]:
    """Phone change, bank-card change, then a drawdown of 90 % of the limit: a fused warning and a freeze."""

    def t(m: float) -> datetime:
        return T0 + timedelta(minutes=start + m)

    return [
        ProfileChange(event_id="e1", ts=t(0), field="phone", new_value_hash="h1", **HEAD),
        ProfileChange(event_id="e2", ts=t(5), field="bank_card", new_value_hash="h2", **HEAD),
        Drawdown(event_id="e3", ts=t(9), product="cash_loan", loan_id="l1", amount=9000,
                 available_limit_before=10000, term_months=6, **HEAD),
    ]


def test_counts_per_horizon_match_the_events_and_drop_the_suffix() -> None:
    # Two applications 25 h before, four now: the 30-minute and 24-hour windows see four, 30 days six.
    state = run([*(application(i, -25 * 60 + i) for i in range(2)), *(application(10 + i, i) for i in range(4))])
    view = customer_view(state)
    assert view.features["30m"]["loan_applications"] == 4
    assert view.features["24h"]["loan_applications"] == 4
    assert view.features["30d"]["loan_applications"] == 6
    assert view.last_event_at == T0 + timedelta(minutes=3)
    assert set(view.features) == set(HORIZONS)
    assert sum(len(group) for group in view.features.values()) == len(FEATURE_NAMES)


def test_group_by_horizon_keeps_every_value_once() -> None:
    values = {name: float(i) for i, name in enumerate(FEATURE_NAMES)}
    grouped = group_by_horizon(values)
    flat = sorted(v for group in grouped.values() for v in group.values())
    assert flat == sorted(values.values())
    assert grouped["current"].keys() >= {"dpd_max", "dpd_bucket", "late_events"}
    assert grouped["7d"].keys() == {"inquiries", "inquiries_bank", "inquiries_non_bank"}


def test_a_burst_is_an_open_episode_with_its_alerts() -> None:
    threshold = EngineConfig().burst.thresholds.notice
    state = run([application(i, i) for i in range(threshold)])
    view = customer_view(state)
    (episode,) = view.open_episodes
    assert episode.rule_id == "multi_application_burst"
    assert episode.tier == "notice"
    assert episode.started_at == T0  # the episode starts with the window of applications that reached notice
    assert episode.alert_ids == [e.alert.alert_id for e in state.burst.emitted]
    assert view.tier is None  # a burst alone stays below the fused notice threshold


def test_takeover_shows_tier_grade_score_and_the_freeze_in_force() -> None:
    state = run(takeover())
    view = customer_view(state)
    assert view.tier == "warning" and view.tier_label == "预警"
    assert view.own_tier == "warning"
    assert state.assessment is not None
    assert (view.score, view.grade, view.rule_version) == (
        state.assessment.score, state.assessment.grade, EngineConfig().version,
    )
    assert view.score is not None and view.score >= EngineConfig().decision.fusion.thresholds.warning
    assert view.restriction is not None and view.restriction.action == "freeze"
    assert state.decision.restriction is not None
    assert view.restriction.action_id == state.decision.restriction.action_id
    fused = [e for e in view.open_episodes if e.rule_id == "fused_risk"]
    assert len(fused) == 1 and fused[0].tier == "warning"
    assert fused[0].alert_ids == [alert_id for alert_id, _ in state.decision.episode_alerts]


def test_ring_membership_is_shown_with_its_entities() -> None:
    ts = T0 + timedelta(minutes=1)
    membership = RingMembership(
        event_id="0" * 32, customer_id="c_1", ts=ts, ring_id="ab" * 8, score=0.7, size=4,
        via=[EntityRef(kind="device", value="d_farm_01"), EntityRef(kind="phone", value="p_hash_9")],
    )
    view = customer_view(run([application(0, 0), membership]))
    assert view.ring is not None
    assert (view.ring.ring_id, view.ring.score, view.ring.size) == ("ab" * 8, 0.7, 4)
    assert view.ring.via == membership.via
    assert view.ring.updated_at == ts


def test_a_state_from_before_assessments_reads_as_unscored() -> None:
    state = run([application(0, 0)])
    older = CustomerState.from_bytes(state.to_bytes())
    older = CustomerState(older.profile, older.burst, older.decision)  # as stored before the assessment existed
    view = customer_view(CustomerState.from_bytes(older.to_bytes()))
    assert (view.score, view.grade, view.rule_version) == (None, None, None)
    assert view.features["30m"]["loan_applications"] == 1


def test_assessment_survives_the_table_round_trip() -> None:
    state = run(takeover())
    assert CustomerState.from_bytes(state.to_bytes()).assessment == state.assessment
    assert Assessment.from_list(Assessment(1, 0.5, None, None, 3).to_list()) == Assessment(1, 0.5, None, None, 3)


def test_a_customer_without_events_has_no_view() -> None:
    with pytest.raises(ValueError, match="no events"):
        customer_view(CustomerState.empty("c_1"))


def test_the_view_round_trips_through_json() -> None:
    view = customer_view(run(takeover()))
    assert CustomerView.model_validate_json(view.model_dump_json()) == view
    assert to_ms(view.last_event_at) == run(takeover()).profile.watermark_ms


@pytest.mark.parametrize("module", [profile_view, profile_api])
def test_docstring_examples_run(module: Any) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
