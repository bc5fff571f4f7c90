"""Burst counting over event time: thresholds, late and out-of-order events, replays, episodes."""

from __future__ import annotations

import itertools
import pickle
from datetime import UTC, datetime, timedelta

import pytest

from detectors.burst import Application, BurstResult, BurstState, update
from schemas.common import to_ms
from schemas.rules import BurstRuleConfig, TierThresholds

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
RULE = BurstRuleConfig(version=3, thresholds=TierThresholds(notice=3, attention=5, warning=8))


def app(n: int, minute: float, product: str = "p1") -> Application:
    return Application(f"e{n}", to_ms(T0 + timedelta(minutes=minute)), product, "app_android")


def feed(apps: list[Application], state: BurstState | None = None) -> tuple[BurstState, list[BurstResult]]:
    state = state or BurstState()
    results = []
    for a in apps:
        result = update(state, "c_000001", a, RULE)
        state = result.state
        results.append(result)
    return state, results


def alerts_of(results: list[BurstResult]) -> list[tuple[str, str]]:
    return [(a.tier, a.alert_id) for r in results for a in r.alerts]


def test_below_notice_no_alert() -> None:
    _, results = feed([app(0, 0), app(1, 10)])
    assert alerts_of(results) == []
    assert results[-1].applications_in_window == 2


def test_tiers_escalate_once_each_and_link() -> None:
    _, results = feed([app(i, i * 2, product=f"p{i % 3}") for i in range(9)])
    tiers = [t for t, _ in alerts_of(results)]
    assert tiers == ["notice", "attention", "warning"]
    notice, attention, warning = (a for r in results for a in r.alerts)
    assert attention.previous_alert_id == notice.alert_id
    assert warning.previous_alert_id == attention.alert_id
    assert warning.rule_version == 3
    assert warning.score == 1.0
    assert warning.reasons[0].value == 8.0 and warning.reasons[0].threshold == 8.0
    assert warning.evidence_event_ids == [f"e{i}" for i in range(8)]
    assert warning.reasons[1].value == 3.0  # three distinct products


def test_applications_spread_beyond_window_do_not_alert() -> None:
    # One application every 16 minutes: never 3 within 30 minutes.
    _, results = feed([app(i, i * 16) for i in range(10)])
    assert alerts_of(results) == []


def test_window_edge_is_inclusive() -> None:
    _, results = feed([app(0, 0), app(1, 15), app(2, 30)])
    assert [t for t, _ in alerts_of(results)] == ["notice"]
    _, results = feed([app(0, 0), app(1, 15), app(2, 30.01)])
    assert alerts_of(results) == []


def test_out_of_order_arrival_finds_the_same_burst() -> None:
    apps = [app(i, i * 3) for i in range(6)]
    _, in_order = feed(apps)
    _, shuffled = feed([apps[i] for i in (3, 0, 5, 1, 4, 2)])
    assert [t for t, _ in alerts_of(in_order)] == ["notice", "attention"]
    assert [t for t, _ in alerts_of(shuffled)] == ["notice", "attention"]


def test_same_arrival_order_gives_same_ids() -> None:
    # A replay after a restart sees the partition in the same order: ids must not depend on anything else.
    apps = [app(i, i * 3) for i in range(6)]
    order = [apps[i] for i in (3, 0, 5, 1, 4, 2)]
    assert alerts_of(feed(order)[1]) == alerts_of(feed(order)[1])


def test_late_event_completes_an_earlier_burst() -> None:
    # 0, 5 and 34 min: no 30-minute window holds three. A late one at 4 min (exactly one window behind the
    # newest) makes 0, 4, 5: a burst that only counting every window through the late event finds.
    state, results = feed([app(0, 0), app(1, 5), app(2, 34)])
    assert alerts_of(results) == []
    late = update(state, "c_000001", app(3, 4), RULE)
    assert late.outcome == "counted"
    assert [a.tier for a in late.alerts] == ["notice"]
    assert late.alerts[0].first_seen == T0


def test_event_older_than_horizon_is_counted_as_late_not_dropped_silently() -> None:
    state, _ = feed([app(0, 100)])
    result = update(state, "c_000001", app(1, 100 - 31), RULE)
    assert result.outcome == "late"
    assert result.state.late_events == 1
    assert result.alerts == ()
    assert all(a.event_id != "e1" for a in result.state.applications)


def test_replay_changes_nothing_and_resends_the_same_alert() -> None:
    apps = [app(i, i) for i in range(3)]
    state, results = feed(apps)
    first = results[-1].alerts
    replay = update(state, "c_000001", apps[-1], RULE)
    assert replay.outcome == "duplicate"
    assert replay.state == state
    assert replay.alerts == first
    # Replaying an application that triggered nothing re-sends nothing.
    assert update(state, "c_000001", apps[0], RULE).alerts == ()


def test_cooldown_closes_episode_and_a_new_burst_gets_a_new_id() -> None:
    first = [app(i, i) for i in range(3)]
    second = [app(10 + i, 120 + i) for i in range(3)]
    _, results = feed(first + second)
    ids = alerts_of(results)
    assert [t for t, _ in ids] == ["notice", "notice"]
    assert ids[0][1] != ids[1][1]


def test_continuing_burst_within_episode_does_not_realert() -> None:
    # Applications every 10 minutes for two hours keep three in every 30-minute window: one notice only.
    _, results = feed([app(i, i * 10) for i in range(13)])
    assert [t for t, _ in alerts_of(results)] == ["notice"]


def test_disabled_rule_never_alerts() -> None:
    rule = RULE.model_copy(update={"enabled": False})
    state = BurstState()
    for i in range(10):
        result = update(state, "c_1", app(i, i), rule)
        assert result.alerts == ()
        state = result.state


def test_state_round_trips_through_json_dict_and_pickle() -> None:
    from schemas import serde

    state, _ = feed([app(i, i * 2) for i in range(6)])
    via_json = BurstState.from_dict(serde.loads(serde.dumps(state.to_dict())))
    assert via_json == state
    assert pickle.loads(pickle.dumps(state)) == state  # noqa: S301 — our own bytes


def test_old_applications_are_pruned() -> None:
    state, _ = feed([app(i, i * 20) for i in range(50)])
    assert len(state.applications) <= 4  # only the last two windows' worth (60 min / 20 min + 1)


@pytest.mark.parametrize("perm", list(itertools.permutations(range(4)))[:12])
def test_any_arrival_order_of_four_within_window_gives_exactly_one_notice(perm: tuple[int, ...]) -> None:
    apps = [app(i, i * 4) for i in range(4)]
    _, results = feed([apps[i] for i in perm])
    assert [t for t, _ in alerts_of(results)] == ["notice"]
