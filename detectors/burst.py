"""Multi-application burst (集中申请多笔贷款): many loan applications by one customer in a short span of event time.

The state is a small plain value per customer, ``update(state, application, rule) -> BurstResult``; the caller
stores it. Everything runs on event time carried by the events, so late and out-of-order applications land where
they belong and a replay of the same events gives the same alerts with the same ids.

Example:
    >>> from datetime import datetime, timedelta, timezone
    >>> from schemas.rules import BurstRuleConfig
    >>> rule = BurstRuleConfig(version=1)
    >>> state = BurstState()
    >>> t0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
    >>> for i in range(3):
    ...     app = Application(event_id=f"e{i}", ts_ms=to_ms(t0 + timedelta(minutes=i)), product="p1", channel="h5")
    ...     result = update(state, "c_1", app, rule)
    ...     state = result.state
    >>> [a.tier for a in result.alerts]
    ['notice']
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from detectors.base import tier_reached
from schemas.common import to_ms
from schemas.outputs import TIER_LABELS, TIER_ORDER, Alert, Reason, Tier, alert_id_for
from schemas.rules import BurstRuleConfig

__all__ = ["Application", "BurstResult", "BurstState", "to_ms", "update"]

_MINUTE_MS = 60_000
# Evidence ids an alert carries; the window can hold more applications than an analyst needs listed.
_MAX_EVIDENCE = 50

Outcome = Literal["counted", "duplicate", "late"]


@dataclass(frozen=True, slots=True)
class Application:
    """The part of a loan application the burst rule needs."""

    event_id: str
    ts_ms: int
    product: str
    channel: str


@dataclass(frozen=True, slots=True)
class _Emitted:
    """An alert of the open episode and the application that triggered it (re-sent if that event replays)."""

    trigger_event_id: str
    alert: Alert


@dataclass(frozen=True, slots=True)
class BurstState:
    """One customer's burst state: recent applications (sorted by time) and the open alert episode."""

    applications: tuple[Application, ...] = ()
    watermark_ms: int | None = None
    late_events: int = 0
    episode_start_ms: int | None = None
    episode_last_ms: int | None = None
    episode_tier: Tier | None = None
    emitted: tuple[_Emitted, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for a Faust table value."""
        return {
            "apps": [[a.event_id, a.ts_ms, a.product, a.channel] for a in self.applications],
            "wm": self.watermark_ms,
            "late": self.late_events,
            "ep": [self.episode_start_ms, self.episode_last_ms, self.episode_tier],
            "emitted": [[e.trigger_event_id, e.alert.model_dump(mode="json")] for e in self.emitted],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BurstState:
        """Inverse of :meth:`to_dict`."""
        start, last, tier = data["ep"]
        return cls(
            applications=tuple(Application(e, int(t), p, c) for e, t, p, c in data["apps"]),
            watermark_ms=data["wm"],
            late_events=int(data["late"]),
            episode_start_ms=start,
            episode_last_ms=last,
            episode_tier=tier,
            emitted=tuple(_Emitted(trig, Alert.model_validate(a)) for trig, a in data["emitted"]),
        )


@dataclass(frozen=True, slots=True)
class BurstResult:
    """What one application did: the new state, alerts to publish, and how the event was counted."""

    state: BurstState
    alerts: tuple[Alert, ...]
    outcome: Outcome
    applications_in_window: int = 0


def _tier_for(count: int, rule: BurstRuleConfig) -> Tier | None:
    t = rule.thresholds
    return tier_reached(count, t.notice, t.attention, t.warning)


def _threshold(tier: Tier, rule: BurstRuleConfig) -> int:
    return int(getattr(rule.thresholds, tier))


def _densest_window(apps: tuple[Application, ...], ts_ms: int, window_ms: int) -> tuple[Application, ...]:
    """The applications of the fullest window of length ``window_ms`` that contains ``ts_ms``.

    Looking at every window through the new event (not only the one ending at the newest event) is what makes
    a late application that completes an earlier burst count.
    """
    times = [a.ts_ms for a in apps]
    lo = bisect.bisect_left(times, ts_ms - window_ms)
    hi = bisect.bisect_right(times, ts_ms)
    best: tuple[int, int] = (0, 0)
    end = lo
    for start in range(lo, hi):
        end = max(end, start)
        while end + 1 < len(times) and times[end + 1] - times[start] <= window_ms:
            end += 1
        if end - start + 1 > best[1] - best[0]:
            best = (start, end + 1)
    return apps[best[0] : best[1]]


def update(state: BurstState, customer_id: str, app: Application, rule: BurstRuleConfig) -> BurstResult:
    """Add one loan application and return the alerts it raises.

    - An application already in the state (a replay after a restart) changes nothing and re-sends the alerts it
      triggered the first time, with the same ids: downstream dedupes by id, so nothing is lost or doubled.
    - An application older than the window behind the newest one seen is counted as late, not dropped silently.
    - One alert per (customer, rule, tier, episode); a higher tier in the same episode escalates and links the
      earlier alert; the episode closes after ``cooldown_minutes`` of event time without a burst.
    """
    window_ms = rule.window_minutes * _MINUTE_MS
    if any(a.event_id == app.event_id for a in state.applications):
        resent = tuple(e.alert for e in state.emitted if e.trigger_event_id == app.event_id)
        return BurstResult(state, resent, "duplicate")
    if state.watermark_ms is not None and app.ts_ms < state.watermark_ms - window_ms:
        return BurstResult(replace(state, late_events=state.late_events + 1), (), "late")

    watermark = app.ts_ms if state.watermark_ms is None else max(state.watermark_ms, app.ts_ms)
    # A late application may still join a window reaching back one more window length.
    keep_after = watermark - 2 * window_ms
    apps = [a for a in state.applications if a.ts_ms > keep_after]
    bisect.insort(apps, app, key=lambda a: (a.ts_ms, a.event_id))
    applications = tuple(apps)

    episode_start, episode_last, episode_tier = (
        state.episode_start_ms,
        state.episode_last_ms,
        state.episode_tier,
    )
    emitted = state.emitted
    if episode_last is not None and watermark - episode_last > rule.cooldown_minutes * _MINUTE_MS:
        episode_start, episode_last, episode_tier, emitted = None, None, None, ()

    window = _densest_window(applications, app.ts_ms, window_ms)
    count = len(window)
    tier = _tier_for(count, rule) if rule.enabled else None
    new_alerts: list[Alert] = []
    if tier is not None:
        if episode_start is None:
            episode_start = window[0].ts_ms
        episode_last = max(episode_last or app.ts_ms, app.ts_ms)
        if episode_tier is None or TIER_ORDER[tier] > TIER_ORDER[episode_tier]:
            alert = _alert(customer_id, rule, tier, episode_start, window, emitted)
            new_alerts.append(alert)
            emitted = (*emitted, _Emitted(app.event_id, alert))
            episode_tier = tier

    new_state = BurstState(
        applications=applications,
        watermark_ms=watermark,
        late_events=state.late_events,
        episode_start_ms=episode_start,
        episode_last_ms=episode_last,
        episode_tier=episode_tier,
        emitted=emitted,
    )
    return BurstResult(new_state, tuple(new_alerts), "counted", count)


def _alert(
    customer_id: str,
    rule: BurstRuleConfig,
    tier: Tier,
    episode_start_ms: int,
    window: tuple[Application, ...],
    emitted: tuple[_Emitted, ...],
) -> Alert:
    count = len(window)
    threshold = _threshold(tier, rule)
    products = sorted({a.product for a in window})
    channels = sorted({a.channel for a in window})
    reasons = [
        Reason(
            code="applications_in_window",
            message=(
                f"{count} loan applications within {rule.window_minutes} min "
                f"(≥{threshold} is {TIER_LABELS[tier]} {tier})"
            ),
            feature=f"applications_{rule.window_minutes}m",
            value=float(count),
            threshold=float(threshold),
        ),
        Reason(
            code="distinct_products",
            message=f"applied to {len(products)} product(s) {', '.join(products)} via {', '.join(channels)}",
            feature=f"distinct_products_{rule.window_minutes}m",
            value=float(len(products)),
            threshold=0.0,
        ),
    ]
    return Alert(
        alert_id=alert_id_for(customer_id, rule.rule_id, tier, episode_start_ms),
        customer_id=customer_id,
        rule_id=rule.rule_id,
        rule_version=rule.version,
        tier=tier,
        tier_label=TIER_LABELS[tier],
        score=min(1.0, count / rule.thresholds.warning),
        reasons=reasons,
        evidence_event_ids=[a.event_id for a in window[-_MAX_EVIDENCE:]],
        first_seen=window[0].ts_ms,
        last_seen=window[-1].ts_ms,
        previous_alert_id=emitted[-1].alert.alert_id if emitted else None,
    )
