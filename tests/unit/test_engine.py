"""The engine step on small hand-made sequences; expected scores, tiers and actions are worked out by hand."""

from __future__ import annotations

import doctest
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from detectors import engine as engine_module
from detectors import engine_state
from detectors.engine import CustomerState, Engine, EngineConfig, StepResult
from detectors.profile import InputEvent
from schemas.behavior import Drawdown, LoanApplication, Login, PageView, ProfileChange
from schemas.common import to_ms
from schemas.outputs import alert_id_for
from schemas.repayment import DpdUpdate, InstallmentDue, InstallmentMissed, Payment

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # 17:00 China time: no night features
CID = "c_1"
HEAD: dict[str, Any] = {"customer_id": CID, "device_id": "d_1", "ip": "10.0.0.1", "channel": "h5"}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def change(eid: str, minutes: float, field: str) -> ProfileChange:
    return ProfileChange(event_id=eid, ts=at(minutes), field=field, new_value_hash="h_x", **HEAD)


def drawdown(eid: str, minutes: float, amount: float, before: float) -> Drawdown:
    return Drawdown(
        event_id=eid, ts=at(minutes), product="cash_loan", loan_id="l_1", amount=amount,
        available_limit_before=before, term_months=6, **HEAD,
    )


def page(eid: str, minutes: float) -> PageView:
    return PageView(event_id=eid, ts=at(minutes), page="home", **HEAD)


def application(eid: str, minutes: float) -> LoanApplication:
    return LoanApplication(
        event_id=eid, ts=at(minutes), product="cash_loan", application_id=f"a_{eid}", amount=5000, term_months=12,
        **HEAD,
    )


def run(engine: Engine, events: list[InputEvent], state: CustomerState | None = None) -> list[StepResult]:
    state = state or CustomerState.empty(CID)
    steps = []
    for e in events:
        step = engine.process(state, e)
        steps.append(step)
        state = step.state
    return steps


def takeover() -> list[InputEvent]:
    return [change("e1", 0, "phone"), change("e2", 5, "bank_card"), drawdown("e3", 9, 9000, 10000)]


def score(step: StepResult, detector_id: str) -> float:
    return next(s.score for s in step.scores if s.detector_id == detector_id)


def test_takeover_sequence_scores_fuses_to_warning_and_freezes() -> None:
    steps = run(Engine(), takeover())
    # phone change alone: one step of a three-step chain scores 0, nothing fires.
    assert score(steps[0], "behavior_sequence") == 0.0 and steps[0].alerts == ()
    # phone → card: 2 of 3 steps = partial_score 0.5 → fused 0.5 ≥ notice 0.4; notice has no action.
    assert score(steps[1], "behavior_sequence") == 0.5
    assert [(a.rule_id, a.tier) for a in steps[1].alerts] == [("fused_risk", "notice")]
    assert steps[1].actions == ()
    # full chain: 1.0 → warning; the default policy freezes at warning; the alert links the notice.
    last = steps[2]
    assert score(last, "behavior_sequence") == 1.0
    # 90 % of the limit by day: 0.4 + 0.6 * (0.9 - 0.85) / (1.4 - 0.85) with the engine's limit band.
    assert score(last, "limit_usage") == pytest.approx(0.4 + 0.6 * 0.05 / 0.55, abs=1e-6)
    assert [(a.rule_id, a.tier) for a in last.alerts] == [("fused_risk", "warning")]
    assert last.alerts[0].previous_alert_id == steps[1].alerts[0].alert_id
    assert last.alerts[0].alert_id == alert_id_for(CID, "fused_risk", "warning", to_ms(at(5)))
    assert [(a.action, a.factor) for a in last.actions] == [("freeze", None)]


def test_a_replayed_event_resends_its_outputs_and_changes_nothing() -> None:
    engine = Engine()
    steps = run(engine, takeover())
    state = steps[-1].state
    before = state.to_bytes()
    again = engine.process(state, takeover()[2])
    assert again.alerts == steps[-1].alerts and again.actions == steps[-1].actions
    assert again.snapshot is None and again.scores == ()
    assert again.state.to_bytes()[:-1] != b"" and again.state.decision == state.decision
    # only the profile's replay counter moved
    assert again.state.profile.duplicate_events == 1
    assert CustomerState.from_bytes(before).decision == again.state.decision
    # an event that emitted nothing re-sends nothing
    assert engine.process(again.state, takeover()[0]).alerts == ()


def test_snapshots_every_30_minutes_of_event_time_and_on_tier_change() -> None:
    # T0 is 09:00 UTC, a 30-minute boundary: slots are [09:00, 09:30), [09:30, 10:00), ...
    events: list[InputEvent] = [page("p1", 0), page("p2", 10), page("p3", 29), page("p4", 31), page("p5", 40)]
    events += [change("c1", 41, "phone"), change("c2", 42, "bank_card"), page("p6", 43)]
    steps = run(Engine(), events)
    snapped = [bool(s.snapshot) for s in steps]
    # first event; new slot at 09:31; notice reached at c2 (tier change); p6 is still notice (no change)
    assert snapped == [True, False, False, True, False, False, True, False]
    snap = steps[6].snapshot
    assert snap is not None and snap.tier == "notice" and snap.score == 0.5
    assert snap.features["profile_changes_30m"] == 2.0 and snap.ts == at(42)


def test_a_burst_alerts_once_through_its_own_rule_and_feeds_fusion_below_notice() -> None:
    steps = run(Engine(), [application(f"a{i}", 2 * i) for i in range(6)])
    alerts = [(a.rule_id, a.tier) for s in steps for a in s.alerts]
    # 3 applications: burst notice; 5: burst attention; never a fused alert on top.
    assert alerts == [("multi_application_burst", "notice"), ("multi_application_burst", "attention")]
    # 6 in the window: 0.35 * (0.4 + 0.6 * (6 - 3) / (8 - 3))
    assert score(steps[-1], "multi_application_burst") == pytest.approx(0.35 * 0.76)


def test_burst_cap_at_or_above_notice_is_refused() -> None:
    with pytest.raises(ValueError, match="notice threshold"):
        EngineConfig(burst_fusion_cap=0.4)


def test_batch_scores_once_and_a_replayed_batch_resends() -> None:
    engine = Engine()
    step = engine.process_batch(CustomerState.empty(CID), takeover())
    # scored once, at the end: straight to warning, no intermediate notice
    assert [(a.tier, a.evidence_event_ids) for a in step.alerts] == [("warning", ["e3"])]
    assert [a.action for a in step.actions] == ["freeze"]
    again = engine.process_batch(step.state, takeover())
    assert again.alerts == step.alerts and again.actions == step.actions


def test_state_bytes_round_trip_and_continue_identically() -> None:
    engine = Engine()
    steps = run(engine, [application("a0", 0), application("a1", 1), application("a2", 2), *takeover()[:2]])
    state = steps[-1].state
    restored = CustomerState.from_bytes(state.to_bytes())
    assert restored == state and restored.to_bytes() == state.to_bytes()
    assert restored.burst.episode_tier == "notice" and restored.decision.last_tier == "notice"
    a = engine.process(state, takeover()[2])
    b = engine.process(restored, takeover()[2])
    assert a.alerts == b.alerts and a.actions == b.actions and a.state.to_bytes() == b.state.to_bytes()
    with pytest.raises(ValueError, match="version"):
        CustomerState.from_bytes(b"\x09" + state.to_bytes()[1:])
    with pytest.raises(ValueError, match="truncated"):
        CustomerState.from_bytes(state.to_bytes()[:20])


def test_repayment_outcomes_teach_the_delinquency_model() -> None:
    engine = Engine()
    models = engine.new_models(0)
    loan: dict[str, Any] = {"customer_id": CID, "loan_id": "l_9"}
    due: list[InputEvent] = [
        InstallmentDue(event_id="r1", ts=at(0), installment_no=1, amount_due=100, due_date=T0.date(), **loan),
        InstallmentDue(
            event_id="r2", ts=at(1), installment_no=1, amount_due=100, due_date=T0.date(),
            customer_id=CID, loan_id="l_8",
        ),
        Payment(event_id="r3", ts=at(2), installment_no=1, amount=100, kind="full", on_time=True, **loan),
        InstallmentMissed(event_id="r4", ts=at(3), installment_no=1, amount_due=100, customer_id=CID, loan_id="l_8"),
    ]
    state = CustomerState.empty(CID)
    for e in due[:2]:
        state = engine.process(state, e, models).state
    assert len(models.delinquency.pending) == 2 and state.open_installments == (("l_9", 1), ("l_8", 1))
    for e in due[2:]:
        state = engine.process(state, e, models).state
    assert (models.delinquency.n_learned, models.delinquency.n_positive) == (2, 1)
    assert state.open_installments == ()
    # a DPD update names only the loan: the open installment is found through the state
    state = engine.process(
        state, InstallmentDue(event_id="r5", ts=at(4), installment_no=2, amount_due=100, due_date=T0.date(), **loan),
        models,
    ).state
    state = engine.process(state, DpdUpdate(event_id="r6", ts=at(5), dpd=3, **loan), models).state
    assert models.delinquency.n_learned == 2 and state.open_installments == (("l_9", 2),)
    state = engine.process(state, DpdUpdate(event_id="r7", ts=at(6), dpd=7, **loan), models).state
    assert (models.delinquency.n_learned, models.delinquency.n_positive) == (3, 2)
    assert state.open_installments == ()


def test_models_score_and_learn_once_per_event_while_warming_up() -> None:
    engine = Engine()
    models = engine.new_models(0)
    login = Login(event_id="l1", ts=at(0), method="sms", success=True, **HEAD)
    step = engine.process(CustomerState.empty(CID), login, models)
    # warming up: both models score 0, and they are in the step's scores
    assert score(step, "profile_anomaly") == 0.0 and score(step, "delinquency") == 0.0
    assert models.anomaly.n_learned == 1
    # a replay is not scored again, so not learned twice
    engine.process(step.state, login, models)
    assert models.anomaly.n_learned == 1


def test_events_of_another_customer_are_refused() -> None:
    with pytest.raises(ValueError, match="not c_2"):
        Engine().process(CustomerState.empty("c_2"), page("p1", 0))


def test_module_doctests() -> None:
    assert doctest.testmod(engine_module).failed == 0
    assert doctest.testmod(engine_state).failed == 0
