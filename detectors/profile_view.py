"""What the profile lookup API answers for one customer, built from the engine's state (pure: no I/O, no clock).

Everything is as of the customer's latest event (the profile's watermark), so two lookups without new events
give the same answer, whichever worker serves them and whenever they are made.

Example:
    >>> from datetime import UTC, datetime
    >>> from detectors.engine import Engine
    >>> from schemas.behavior import LoanApplication
    >>> engine, state = Engine(), CustomerState.empty("c_1")
    >>> for i in range(3):
    ...     state = engine.process(state, LoanApplication(
    ...         event_id=f"e{i}", customer_id="c_1", ts=datetime(2026, 1, 5, 9, i, tzinfo=UTC), device_id="d_1",
    ...         ip="10.0.0.1", channel="h5", product="cash_loan", application_id=f"a{i}", amount=5000,
    ...         term_months=12)).state
    >>> view = customer_view(state)
    >>> view.features["30m"]["loan_applications"], [(e.rule_id, e.tier) for e in view.open_episodes]
    (3.0, [('multi_application_burst', 'notice')])
"""

from __future__ import annotations

from typing import Final

from detectors.decision.episodes import RULE_ID as FUSED_RULE_ID
from detectors.engine import BURST_DETECTOR_ID
from detectors.engine_state import CustomerState
from detectors.profile_features import features
from schemas.outputs import EntityRef
from schemas.profile_api import HORIZONS, CustomerView, EpisodeView, Horizon, RestrictionView, RingView

__all__ = ["customer_view", "group_by_horizon"]

_SUFFIXES: Final[tuple[tuple[str, Horizon], ...]] = (("_30m", "30m"), ("_24h", "24h"), ("_7d", "7d"), ("_30d", "30d"))


def group_by_horizon(values: dict[str, float]) -> dict[Horizon, dict[str, float]]:
    """Feature values grouped by the horizon their name ends in; names without one go under ``current``.

    >>> group_by_horizon({"drawdowns_24h": 2.0, "dpd_max": 0.0})
    {'24h': {'drawdowns': 2.0}, 'current': {'dpd_max': 0.0}}
    """
    out: dict[Horizon, dict[str, float]] = {}
    for name, value in values.items():
        group: Horizon = "current"
        for suffix, horizon in _SUFFIXES:
            if name.endswith(suffix):
                name, group = name[: -len(suffix)], horizon
                break
        out.setdefault(group, {})[name] = value
    return {h: out[h] for h in HORIZONS if h in out}


def _episodes(state: CustomerState) -> list[EpisodeView]:
    episodes = []
    burst = state.burst
    if burst.episode_start_ms is not None and burst.episode_tier is not None:
        # The burst state keeps exactly the open episode's alerts; its rule id is the configured one.
        alerts = [e.alert for e in burst.emitted]
        episodes.append(
            EpisodeView(
                rule_id=alerts[0].rule_id if alerts else BURST_DETECTOR_ID,
                tier=burst.episode_tier,
                started_at=burst.episode_start_ms,
                alert_ids=[a.alert_id for a in alerts],
            )
        )
    decision = state.decision
    if decision.episode_start_ms is not None and decision.episode_tier is not None:
        episodes.append(
            EpisodeView(
                rule_id=FUSED_RULE_ID,
                tier=decision.episode_tier,
                started_at=decision.episode_start_ms,
                alert_ids=[alert_id for alert_id, _ in decision.episode_alerts],
            )
        )
    return episodes


def _entity(via: str) -> EntityRef:
    """A ring mark's ``"kind value"`` string (as :class:`EntityRef` prints itself) back as an entity."""
    kind, _, value = via.partition(" ")
    return EntityRef.model_validate({"kind": kind, "value": value})


def customer_view(state: CustomerState) -> CustomerView:
    """The API's answer for the customer of ``state`` (which must have seen at least one event)."""
    profile = state.profile
    if profile.watermark_ms < 0:
        raise ValueError(f"customer {state.customer_id} has no events yet")
    values = features(profile, profile.watermark_ms)
    assessment = state.assessment
    restriction = state.decision.restriction
    ring = state.ring
    return CustomerView(
        customer_id=state.customer_id,
        last_event_at=profile.watermark_ms,
        tier=state.decision.last_tier,
        own_tier=state.own_tier,
        score=None if assessment is None else assessment.score,
        grade=None if assessment is None else assessment.grade,
        delinquency_probability=None if assessment is None else assessment.delinquency_p,
        rule_version=None if assessment is None else assessment.rule_version,
        features=group_by_horizon(values),
        open_episodes=_episodes(state),
        restriction=None
        if restriction is None
        else RestrictionView(
            action=restriction.action, action_id=restriction.action_id, alert_ids=list(restriction.alert_ids)
        ),
        ring=None
        if ring is None
        else RingView(
            ring_id=ring.ring_id,
            score=ring.score,
            size=ring.size,
            via=[_entity(v) for v in ring.via],
            updated_at=ring.ts_ms,
        ),
    )
