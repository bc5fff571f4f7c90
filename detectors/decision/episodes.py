"""Fused-risk episodes: tiered alerts, limit actions and restores from one customer's fused scores over event time.

``decide(state, ...) -> Decision`` is a pure step in Bytewax's ``stateful_map`` shape: the caller keeps the small
per-customer :class:`DecisionState` (``to_dict`` for a Faust table value, or pickle) and publishes the outputs.

Episodes
    An episode opens at the first fused score at or above notice and closes once ``cooldown_minutes`` of event
    time pass with no such score (checked when the next score arrives). It alerts once per tier it reaches, with
    ``alert_id_for(customer, "fused_risk", tier, episode start)``; the same or a lower tier never re-alerts, and
    a higher tier emits a new alert whose ``previous_alert_id`` links the episode's previous alert. With
    ``realert_after_minutes`` set, an episode that has lasted that long is closed so continuing risk re-alerts.

Limit actions
    At each score at or above notice the :class:`~detectors.decision.config.ActionPolicy` picks an action for
    (current tier, grade); it is emitted only if more severe than what this episode (or a restriction still in
    force) already recommended, so each action appears at most once per episode, with
    ``action_id = sha256(customer, action, episode start)``. After a freeze or reduce_limit, one ``restore``
    follows when a score below notice arrives ``restore_after_minutes`` after the last score at or above notice.

Time and replays
    Decisions use the customer's event-time watermark (the latest ``event_ts_ms`` seen), so a late event never
    moves time backwards. A ``trigger_event_id`` that emitted something is remembered with its outputs (the last
    ``replay_memory`` such triggers per customer, default 8; an episode has at most 3 emitting alert triggers and
    3 action triggers plus one restore, so at least the latest whole episode is covered); when it comes again (a
    replay after a crash) the same alerts and actions are re-sent with the same ids and the state is unchanged.
    A trigger that emitted nothing, or one older than that bound, is processed as a new observation: it cannot
    re-alert a tier the open episode already reached, but a replayed hot event arriving after its episode closed
    would open a new one. The remembered outputs dominate the state's size (about 1-2 KiB per alert in JSON).

Example:
    >>> from detectors.base import DetectorScore
    >>> from detectors.decision.config import DecisionConfig
    >>> from detectors.decision.fusion import fuse
    >>> config = DecisionConfig()
    >>> t0 = 1767603600000  # 2026-01-05 09:00 UTC
    >>> state = DecisionState()
    >>> for i, s in enumerate([0.2, 0.45, 0.7, 0.9]):
    ...     fused = fuse([DetectorScore("multi_application_burst", s)], config.fusion)
    ...     d = decide(state, "c_1", fused, f"e{i}", t0 + i * 60_000, config, delinquency_p=0.01)
    ...     state = d.state
    ...     print(i, [a.tier for a in d.alerts], [a.action for a in d.actions], d.grade)
    0 [] [] A
    1 ['notice'] [] A
    2 ['attention'] ['review'] C
    3 ['warning'] ['freeze'] D
    >>> d.alerts[0].previous_alert_id == state.episode_alerts[1][0]
    True
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from detectors.decision.config import ACTION_RANK, ActionRule, DecisionConfig
from detectors.decision.fusion import FusedScore
from detectors.decision.grades import grade_for
from schemas.outputs import (
    MAX_EVIDENCE,
    TIER_LABELS,
    TIER_ORDER,
    TIERS,
    Alert,
    Grade,
    LimitAction,
    Reason,
    Tier,
    alert_id_for,
)

__all__ = ["RULE_ID", "Decision", "DecisionState", "Restriction", "action_id_for", "decide"]

RULE_ID: Final = "fused_risk"
"""The rule id of every alert this layer raises."""
_MINUTE_MS: Final = 60_000
_SEP: Final = "\x1f"


def action_id_for(customer_id: str, action: str, key: str | int) -> str:
    """Deterministic id of a limit action: 32 hex of SHA-256 over (customer, action, key).

    ``key`` is the episode start (ms) for policy actions and the restricting action's id for a restore.
    """
    raw = _SEP.join(("limit_action/v1", customer_id, action, str(key)))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Restriction:
    """A freeze or reduce_limit still in force, waiting for its restore."""

    action: Literal["freeze", "reduce_limit"]
    action_id: str
    alert_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Emitted:
    """What one trigger event emitted, kept to re-send identically if that event is replayed."""

    trigger_event_id: str
    alerts: tuple[Alert, ...]
    actions: tuple[LimitAction, ...]


@dataclass(frozen=True, slots=True)
class DecisionState:
    """One customer's decision state: time, tier history, the open episode, a pending restore, replay memory.

    ``tier_last_ms`` holds the latest event time at notice, attention and warning (in that order);
    ``episode_alerts`` the open episode's ``(alert_id, trigger_event_id)`` pairs, lowest tier first.
    """

    watermark_ms: int | None = None
    last_hot_ms: int | None = None
    last_tier: Tier | None = None
    tier_last_ms: tuple[int | None, int | None, int | None] = (None, None, None)
    episode_start_ms: int | None = None
    episode_tier: Tier | None = None
    episode_alerts: tuple[tuple[str, str], ...] = ()
    episode_action_rank: int = 0
    restriction: Restriction | None = None
    emitted: tuple[_Emitted, ...] = field(default=())

    @property
    def tier_history(self) -> dict[Tier, int]:
        """Tier → latest event time (ms) the customer was at it; tiers never reached are absent."""
        return _history(self.tier_last_ms)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for a Faust table value."""
        r = self.restriction
        return {
            "wm": self.watermark_ms,
            "hot": self.last_hot_ms,
            "tier": self.last_tier,
            "hist": list(self.tier_last_ms),
            "ep": [self.episode_start_ms, self.episode_tier, [list(p) for p in self.episode_alerts],
                   self.episode_action_rank],
            "restr": None if r is None else [r.action, r.action_id, list(r.alert_ids)],
            "emitted": [
                [e.trigger_event_id, [a.model_dump(mode="json") for a in e.alerts],
                 [a.model_dump(mode="json") for a in e.actions]]
                for e in self.emitted
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DecisionState:
        """Inverse of :meth:`to_dict`."""
        start, tier, alerts, rank = data["ep"]
        notice, attention, warning = data["hist"]
        restr = data["restr"]
        return cls(
            watermark_ms=data["wm"],
            last_hot_ms=data["hot"],
            last_tier=data["tier"],
            tier_last_ms=(notice, attention, warning),
            episode_start_ms=start,
            episode_tier=tier,
            episode_alerts=tuple((alert_id, trigger) for alert_id, trigger in alerts),
            episode_action_rank=int(rank),
            restriction=None if restr is None else Restriction(restr[0], restr[1], tuple(restr[2])),
            emitted=tuple(
                _Emitted(trigger, tuple(Alert.model_validate(a) for a in alerts_),
                         tuple(LimitAction.model_validate(a) for a in actions))
                for trigger, alerts_, actions in data["emitted"]
            ),
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one fused score: the new state, outputs to publish, the grade and the current tier.

    ``replayed`` is True when the trigger was recognised as a replay (outputs re-sent, state unchanged).
    """

    state: DecisionState
    alerts: tuple[Alert, ...]
    actions: tuple[LimitAction, ...]
    grade: Grade
    tier: Tier | None
    replayed: bool = False


def decide(
    state: DecisionState,
    customer_id: str,
    fused: FusedScore,
    trigger_event_id: str,
    event_ts_ms: int,
    config: DecisionConfig,
    delinquency_p: float | None = None,
) -> Decision:
    """Turn one fused score (scored on the event ``trigger_event_id`` at ``event_ts_ms``) into alerts and actions.

    See the module docstring for episodes, actions, time and replays. ``delinquency_p`` is the customer's
    current delinquency probability (None if the model has none); it and the tier history set the grade.
    """
    for emitted in state.emitted:
        if emitted.trigger_event_id == trigger_event_id:
            now = event_ts_ms if state.watermark_ms is None else state.watermark_ms
            grade = grade_for(delinquency_p, state.tier_history, now, config.grades)
            return Decision(state, emitted.alerts, emitted.actions, grade, state.last_tier, replayed=True)

    now = event_ts_ms if state.watermark_ms is None else max(state.watermark_ms, event_ts_ms)
    episodes = config.episodes
    start, ep_tier, ep_alerts, ep_rank = (
        state.episode_start_ms, state.episode_tier, state.episode_alerts, state.episode_action_rank,
    )
    if start is not None:
        quiet = state.last_hot_ms is not None and now - state.last_hot_ms >= episodes.cooldown_minutes * _MINUTE_MS
        realert = episodes.realert_after_minutes
        too_long = realert is not None and now - start >= realert * _MINUTE_MS
        if quiet or too_long:
            start, ep_tier, ep_alerts, ep_rank = None, None, (), 0

    tier = fused.tier
    history = list(state.tier_last_ms)
    last_hot = state.last_hot_ms
    if tier is not None:
        last_hot = now
        history[TIER_ORDER[tier] - 1] = now
    tier_last_ms = (history[0], history[1], history[2])
    grade = grade_for(delinquency_p, _history(tier_last_ms), now, config.grades)

    alerts: list[Alert] = []
    actions: list[LimitAction] = []
    restriction = state.restriction
    if tier is not None:
        if start is None:
            start = now
            # A restriction still in force carries over: a new episode does not re-send a freeze that stands.
            ep_rank = ACTION_RANK[restriction.action] if restriction is not None else 0
        if ep_tier is None or TIER_ORDER[tier] > TIER_ORDER[ep_tier]:
            alert = _alert(customer_id, fused, tier, start, now, trigger_event_id, ep_alerts, config.version)
            alerts.append(alert)
            ep_alerts = (*ep_alerts, (alert.alert_id, trigger_event_id))
            ep_tier = tier
        rule = config.actions.rule_for(tier, grade)
        if rule is not None and ACTION_RANK[rule.action] > ep_rank:
            alert_ids = tuple(alert_id for alert_id, _ in ep_alerts)
            action = _action(customer_id, rule, grade, alert_ids, start, now)
            actions.append(action)
            ep_rank = ACTION_RANK[rule.action]
            if rule.action != "review":
                restriction = Restriction(rule.action, action.action_id, alert_ids)
    elif (
        restriction is not None
        and last_hot is not None
        and now - last_hot >= config.actions.restore_after_minutes * _MINUTE_MS
    ):
        actions.append(
            LimitAction(
                action_id=action_id_for(customer_id, "restore", restriction.action_id),
                customer_id=customer_id,
                action="restore",
                grade=grade,
                alert_ids=list(restriction.alert_ids),
                ts=now,
            )
        )
        restriction = None

    emitted_log = state.emitted
    if alerts or actions:
        emitted_log = (*emitted_log, _Emitted(trigger_event_id, tuple(alerts), tuple(actions)))
        emitted_log = emitted_log[-episodes.replay_memory :]
    new_state = DecisionState(
        watermark_ms=now,
        last_hot_ms=last_hot,
        last_tier=tier,
        tier_last_ms=tier_last_ms,
        episode_start_ms=start,
        episode_tier=ep_tier,
        episode_alerts=ep_alerts,
        episode_action_rank=ep_rank,
        restriction=restriction,
        emitted=emitted_log,
    )
    return Decision(new_state, tuple(alerts), tuple(actions), grade, tier)


def _history(tier_last_ms: tuple[int | None, int | None, int | None]) -> dict[Tier, int]:
    return {tier: ts for tier, ts in zip(TIERS, tier_last_ms, strict=True) if ts is not None}


def _alert(
    customer_id: str,
    fused: FusedScore,
    tier: Tier,
    start_ms: int,
    now_ms: int,
    trigger_event_id: str,
    episode_alerts: tuple[tuple[str, str], ...],
    version: int,
) -> Alert:
    threshold = fused.thresholds.of(tier)
    top = ", ".join(f"{detector_id} {c:.3f}" for detector_id, c in fused.contributions[:3] if c > 0)
    summary = Reason(
        code="fused_risk_score",
        message=f"fused risk score {fused.score:.3f} ≥ {threshold:g} ({TIER_LABELS[tier]} {tier}); top: {top}",
        feature="fused_risk_score",
        value=fused.score,
        threshold=threshold,
    )
    evidence = list(dict.fromkeys([*(trigger for _, trigger in episode_alerts), trigger_event_id]))
    return Alert(
        alert_id=alert_id_for(customer_id, RULE_ID, tier, start_ms),
        customer_id=customer_id,
        rule_id=RULE_ID,
        rule_version=version,
        tier=tier,
        tier_label=TIER_LABELS[tier],
        score=fused.score,
        reasons=[summary, *fused.reasons],
        evidence_event_ids=evidence[-MAX_EVIDENCE:],
        first_seen=start_ms,
        last_seen=now_ms,
        previous_alert_id=episode_alerts[-1][0] if episode_alerts else None,
    )


def _action(
    customer_id: str, rule: ActionRule, grade: Grade, alert_ids: tuple[str, ...], start_ms: int, now_ms: int
) -> LimitAction:
    expires = None if rule.expires_after_minutes is None else now_ms + rule.expires_after_minutes * _MINUTE_MS
    return LimitAction(
        action_id=action_id_for(customer_id, rule.action, start_ms),
        customer_id=customer_id,
        action=rule.action,
        factor=rule.factor,
        grade=grade,
        alert_ids=list(alert_ids[-MAX_EVIDENCE:]),
        ts=now_ms,
        expires_at=expires,
    )
