"""Fused-risk episodes and limit actions over event time: escalation, cooldown, replays, restore, state round trips."""

from __future__ import annotations

import doctest
import hashlib
import importlib
import json
import pickle
from collections.abc import Sequence

import pytest

from detectors.decision.config import DecisionConfig, EpisodeConfig, FusionConfig, TierThresholds
from detectors.decision.episodes import Decision, DecisionState, decide
from detectors.decision.fusion import FusedScore
from schemas.common import from_ms
from schemas.outputs import alert_id_for

T0 = 1_767_603_600_000  # 2026-01-05 09:00 UTC
MIN = 60_000
CUSTOMER = "c_000042"
# Thresholds 0.25 / 0.5 / 0.75 so that scores map to tiers by eye: 0.3 notice, 0.6 attention, 0.8 warning.
CONFIG = DecisionConfig(
    version=7,
    fusion=FusionConfig(thresholds=TierThresholds(notice=0.25, attention=0.5, warning=0.75)),
    episodes=EpisodeConfig(cooldown_minutes=30),
)
THRESHOLDS = CONFIG.fusion.thresholds


def fused(score: float) -> FusedScore:
    return FusedScore(score, THRESHOLDS.tier_for(score), (("multi_application_burst", score),), (), THRESHOLDS)


def run(
    steps: Sequence[tuple[float, ...]],
    config: DecisionConfig = CONFIG,
    state: DecisionState | None = None,
    first: int = 0,
) -> list[Decision]:
    """Feed (minute, score[, p]) steps as events e{first}, e{first+1}, ...; p defaults to 0.01 (grade A)."""
    state = state or DecisionState()
    out = []
    for i, step in enumerate(steps, start=first):
        minute, score = step[0], step[1]
        p = step[2] if len(step) == 3 else 0.01
        d = decide(state, CUSTOMER, fused(score), f"e{i}", T0 + int(minute * MIN), config, delinquency_p=p)
        state = d.state
        out.append(d)
    return out


def alerts(decisions: list[Decision]) -> list[tuple[int, str]]:
    return [(i, a.tier) for i, d in enumerate(decisions) for a in d.alerts]


def actions(decisions: list[Decision]) -> list[tuple[int, str]]:
    return [(i, a.action) for i, d in enumerate(decisions) for a in d.actions]


def expected_action_id(action: str, key: int | str) -> str:
    # The documented definition: 32 hex of SHA-256 over "limit_action/v1", customer, action, key (0x1f-separated).
    return hashlib.sha256(f"limit_action/v1\x1f{CUSTOMER}\x1f{action}\x1f{key}".encode()).hexdigest()[:32]


def test_escalation_links_each_alert_to_the_previous_one() -> None:
    ds = run([(0, 0.1), (1, 0.3), (2, 0.6), (3, 0.8)])
    assert alerts(ds) == [(1, "notice"), (2, "attention"), (3, "warning")]
    notice, attention, warning = ds[1].alerts[0], ds[2].alerts[0], ds[3].alerts[0]
    start = T0 + MIN  # the episode began with the first score at or above notice
    for alert in (notice, attention, warning):
        assert alert.alert_id == alert_id_for(CUSTOMER, "fused_risk", alert.tier, start)
        assert alert.rule_id == "fused_risk" and alert.rule_version == 7
        assert alert.first_seen == from_ms(start)
    assert notice.previous_alert_id is None
    assert attention.previous_alert_id == notice.alert_id
    assert warning.previous_alert_id == attention.alert_id
    assert warning.last_seen == from_ms(T0 + 3 * MIN)
    assert warning.tier_label == "预警"
    assert warning.evidence_event_ids == ["e1", "e2", "e3"]
    summary = warning.reasons[0]
    assert (summary.code, summary.value, summary.threshold) == ("fused_risk_score", 0.8, 0.75)


def test_jumping_straight_to_warning_alerts_once() -> None:
    ds = run([(0, 0.9), (1, 0.3), (2, 0.6)])
    assert alerts(ds) == [(0, "warning")]


def test_no_repeat_at_same_or_lower_tier_within_the_episode() -> None:
    ds = run([(0, 0.6), (1, 0.6), (5, 0.3), (10, 0.1), (20, 0.6), (29, 0.55)])
    assert alerts(ds) == [(0, "attention")]


def test_cooldown_closes_the_episode_and_a_later_one_has_a_new_id() -> None:
    # Last hot score at minute 1; 30 minutes of cooldown: still open at 30, closed at 31 (= 1 + 30).
    ds = run([(0, 0.3), (1, 0.3), (30, 0.1), (30.5, 0.3), (60.5, 0.0), (61, 0.3)])
    assert alerts(ds) == [(0, "notice"), (5, "notice")]
    assert ds[2].state.episode_start_ms == T0
    assert ds[3].alerts == ()  # minute 30.5: the episode was still open
    assert ds[4].state.episode_start_ms is None  # 30 minutes after 30.5
    later = ds[5].alerts[0]
    assert later.alert_id == alert_id_for(CUSTOMER, "fused_risk", "notice", T0 + 61 * MIN)
    assert later.alert_id != ds[0].alerts[0].alert_id
    assert later.previous_alert_id is None


def test_a_gap_without_scores_also_closes_the_episode() -> None:
    ds = run([(0, 0.6), (45, 0.6)])
    assert alerts(ds) == [(0, "attention"), (1, "attention")]
    assert ds[0].alerts[0].alert_id != ds[1].alerts[0].alert_id


def test_realert_policy_reopens_a_long_episode() -> None:
    config = CONFIG.model_copy(update={"episodes": EpisodeConfig(cooldown_minutes=30, realert_after_minutes=60)})
    ds = run([(m, 0.3) for m in range(0, 130, 10)], config)
    assert [i for i, _ in alerts(ds)] == [0, 6, 12]  # minutes 0, 60, 120
    assert len({a.alert_id for d in ds for a in d.alerts}) == 3


def test_replay_resends_identical_outputs_and_keeps_the_state() -> None:
    ds = run([(0, 0.3), (1, 0.6), (2, 0.8), (3, 0.1)], state=None)
    state = ds[-1].state
    for i in (1, 2):
        replay = decide(state, CUSTOMER, fused(0.8 if i == 2 else 0.6), f"e{i}", T0 + i * MIN, CONFIG, 0.01)
        assert replay.replayed
        assert replay.alerts == ds[i].alerts and replay.actions == ds[i].actions
        assert replay.state is state
    # A replay after a restart from the stored table value.
    restored = DecisionState.from_dict(json.loads(json.dumps(state.to_dict())))
    replay = decide(restored, CUSTOMER, fused(0.8), "e2", T0 + 2 * MIN, CONFIG, 0.01)
    assert [a.alert_id for a in replay.alerts] == [a.alert_id for a in ds[2].alerts]
    assert [a.action_id for a in replay.actions] == [a.action_id for a in ds[2].actions]


def test_replay_memory_is_bounded() -> None:
    config = CONFIG.model_copy(update={"episodes": EpisodeConfig(cooldown_minutes=30, replay_memory=2)})
    # Three episodes, each emitting one notice alert.
    ds = run([(0, 0.3), (40, 0.3), (80, 0.3)], config)
    assert [e.trigger_event_id for e in ds[-1].state.emitted] == ["e1", "e2"]
    forgotten = decide(ds[-1].state, CUSTOMER, fused(0.3), "e0", T0, config, 0.01)
    assert not forgotten.replayed and forgotten.alerts == ()  # processed anew: the open episode is at notice


def test_late_event_is_decided_at_the_watermark() -> None:
    ds = run([(10, 0.1), (5, 0.3)])
    assert ds[1].state.watermark_ms == T0 + 10 * MIN
    assert ds[1].alerts[0].first_seen == from_ms(T0 + 10 * MIN)


# Actions --------------------------------------------------------------------------------------------------------

def test_policy_table() -> None:
    # (score, p) -> action under the default policy; each case is a fresh customer.
    cases = [
        (0.3, 0.5, []),  # notice: no action whatever the grade
        (0.6, 0.01, ["review"]),  # attention, grade C (attention caps at C)
        (0.6, 0.15, ["reduce_limit"]),  # attention, grade D
        (0.6, 0.5, ["reduce_limit"]),  # attention, grade E
        (0.8, 0.01, ["freeze"]),  # warning, any grade
    ]
    for score, p, expected in cases:
        [d] = run([(0, score, p)])
        assert [a.action for a in d.actions] == expected, (score, p)


def test_action_contents() -> None:
    [review] = run([(0, 0.6, 0.01)])[0].actions
    assert review.action_id == expected_action_id("review", T0)
    assert (review.grade, review.factor) == ("C", None)
    assert review.ts == from_ms(T0) and review.expires_at == from_ms(T0 + 3 * 24 * 60 * MIN)
    [reduce] = run([(0, 0.6, 0.15)])[0].actions
    assert (reduce.action, reduce.factor, reduce.grade, reduce.expires_at) == ("reduce_limit", 0.5, "D", None)
    ds = run([(0, 0.3), (2, 0.8)])
    [freeze] = ds[1].actions
    assert freeze.action_id == expected_action_id("freeze", T0)
    assert freeze.alert_ids == [ds[0].alerts[0].alert_id, ds[1].alerts[0].alert_id]
    assert (freeze.grade, freeze.expires_at) == ("D", None)


def test_actions_escalate_once_each_within_an_episode() -> None:
    ds = run([(0, 0.6), (1, 0.6), (2, 0.6, 0.15), (3, 0.6, 0.15), (4, 0.8), (5, 0.6), (6, 0.8)])
    assert actions(ds) == [(0, "review"), (2, "reduce_limit"), (4, "freeze")]
    # The grade change alone (no new alert) raised review to reduce_limit.
    assert ds[2].alerts == ()


def test_restore_once_after_risk_clears() -> None:
    day = 24 * 60
    ds = run([(0, 0.8), (10, 0.8), (10 + day - 0.001, 0.1), (10 + day, 0.1), (11 + day, 0.0), (12 + day, 0.2)])
    assert actions(ds) == [(0, "freeze"), (3, "restore")]
    [restore] = ds[3].actions
    freeze = ds[0].actions[0]
    assert restore.action_id == expected_action_id("restore", freeze.action_id)
    assert restore.alert_ids == freeze.alert_ids
    assert restore.ts == from_ms(T0 + (10 + day) * MIN)
    assert (restore.factor, restore.expires_at) == (None, None)
    assert restore.grade == "D"  # the warning a day ago still caps the grade


def test_restore_follows_reduce_limit_too() -> None:
    ds = run([(0, 0.6, 0.15), (24 * 60, 0.0, 0.15)])
    assert actions(ds) == [(0, "reduce_limit"), (1, "restore")]


def test_no_restore_without_a_prior_freeze_or_reduce() -> None:
    ds = run([(0, 0.3), (1, 0.6), (2 * 24 * 60, 0.0), (3 * 24 * 60, 0.0)])
    assert actions(ds) == [(1, "review")]


def test_no_restore_while_risk_stays_elevated() -> None:
    # Scores keep returning above notice: the 24 hours below notice never complete.
    steps = [(m, 0.8 if m == 0 else (0.3 if m % 120 == 0 else 0.1)) for m in range(0, 3 * 24 * 60, 60)]
    assert [a for _, a in actions(run(steps))] == ["freeze"]


def test_a_new_episode_does_not_repeat_a_freeze_that_stands() -> None:
    # Frozen at 0; quiet 2 hours (episode closed, restore not due); warning again: a new alert, no second freeze.
    ds = run([(0, 0.8), (120, 0.1), (121, 0.8), (121 + 24 * 60, 0.0)])
    assert alerts(ds) == [(0, "warning"), (2, "warning")]
    assert actions(ds) == [(0, "freeze"), (3, "restore")]


# State and determinism -------------------------------------------------------------------------------------------

STEPS = [(0, 0.1), (1, 0.3), (2, 0.6, 0.15), (3, 0.8), (4, 0.3), (40, 0.1), (60, 0.6), (24 * 60 + 61, 0.0)]


def test_state_round_trips_through_json_and_pickle() -> None:
    for d in run(STEPS):
        state = d.state
        assert DecisionState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
        assert pickle.loads(pickle.dumps(state)) == state  # noqa: S301 - our own bytes


def test_resuming_from_a_stored_state_matches_an_uninterrupted_run() -> None:
    whole = run(STEPS)
    head = run(STEPS[:4])
    stored = DecisionState.from_dict(json.loads(json.dumps(head[-1].state.to_dict())))
    tail = run(STEPS[4:], state=stored, first=4)
    assert [(d.alerts, d.actions, d.grade) for d in whole[4:]] == [(d.alerts, d.actions, d.grade) for d in tail]


def test_determinism() -> None:
    first, second = run(STEPS), run(STEPS)
    assert [(d.alerts, d.actions, d.grade, d.state) for d in first] == [
        (d.alerts, d.actions, d.grade, d.state) for d in second
    ]
    assert actions(first) == [(2, "reduce_limit"), (3, "freeze"), (7, "restore")]


def test_episodes_doctest_runs() -> None:
    result = doctest.testmod(importlib.import_module("detectors.decision.episodes"))
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("module", ["detectors.decision"])
def test_package_exports(module: str) -> None:
    package = importlib.import_module(module)
    assert {"fuse", "decide", "grade_for", "DecisionConfig"} <= set(package.__all__)
