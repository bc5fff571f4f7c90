"""The per-customer risk step: profile → burst rule → detectors → fusion → episodes, actions and snapshots.

Pure composition of the existing parts (no I/O, no clock): ``Engine(config).process(state, event, models)`` or
``process_batch(state, events, models)`` for one customer's micro-batch; the Faust agent reads the customer's
:class:`~detectors.engine_state.CustomerState`, calls it, writes the state back once and publishes the outputs.

Per batch (a single event is a batch of one): every event updates the profile; loan applications go through the
burst rule; then, once, at the customer's event-time watermark: features, the four rule detectors with
``(features, tail, at_ms)``, a burst score, the anomaly and delinquency models (score, then learn: the models
refuse vectors they flag), fusion and :func:`~detectors.decision.episodes.decide`. Repayment outcomes then teach
the delinquency model: ``installment_due`` keeps the features, a full payment is a good outcome, ``missed`` a bad
one, a ``dpd_update`` at or above the model's threshold a bad one.

Burst alerts and fused alerts — one alert per real problem
    The burst rule keeps its own alerts (rule ``multi_application_burst``, tiers by application count), exactly
    what the running worker publishes today. It also feeds fusion, but through a score capped at
    ``burst_fusion_cap`` (default 0.35), below the fused notice threshold (validated). So a burst on its own
    raises only its burst alert, never a second ``fused_risk`` alert for the same problem; a burst together with
    another signal (multi-lending, a takeover chain, ...) adds up with it and raises a fused alert whose reasons
    name the burst count: a compound problem, which operators see as the fused alert next to the burst alert
    that started it. The price: a burst alone recommends no limit action (actions follow fused tiers); raise the
    cap above notice to change that and accept the second alert.

Replays
    An event the profile refuses (a replay it remembers, or one past the 30-day horizon) is not scored again: the
    burst rule re-sends the alerts that application triggered, and the decision layer's remembered outputs for
    that event id are re-sent, with the same ids. Given each event's position in its input stream (the worker
    passes topic, partition and offset), a redelivered event is recognised by offset however far back it lies,
    changes nothing (not even the burst rule's late counter) and re-sends the same way; without positions, by
    the profile's ring of recent event ids. Snapshots are not re-sent (the next one follows within
    ``snapshot_every_minutes``). In a batch, new events are scored once and the last of them is the trigger.

Example:
    >>> from datetime import UTC, datetime
    >>> from schemas.behavior import ProfileChange, Drawdown
    >>> t = lambda m: datetime(2026, 1, 5, 9, m, tzinfo=UTC)
    >>> head = dict(customer_id="c_1", device_id="d_1", ip="10.0.0.1", channel="h5")
    >>> events = [ProfileChange(event_id="e1", ts=t(0), field="phone", new_value_hash="h1", **head),
    ...           ProfileChange(event_id="e2", ts=t(5), field="bank_card", new_value_hash="h2", **head),
    ...           Drawdown(event_id="e3", ts=t(9), product="cash_loan", loan_id="l1", amount=9000,
    ...                    available_limit_before=10000, term_months=6, **head)]
    >>> engine, state = Engine(), CustomerState.empty("c_1")
    >>> for e in events:
    ...     step = engine.process(state, e)
    ...     state = step.state
    >>> [(a.rule_id, a.tier) for a in step.alerts], [a.action for a in step.actions]
    ([('fused_risk', 'warning')], ['freeze'])
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Literal, Self, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, model_validator

from detectors.base import DetectorScore
from detectors.burst import Application, BurstState
from detectors.burst import update as burst_update
from detectors.decision.config import DecisionConfig, FusionConfig
from detectors.decision.episodes import decide
from detectors.decision.fusion import fuse
from detectors.engine_state import Assessment, CustomerState, Position, RingMark
from detectors.entities.config import EntityConfig, RingConfig
from detectors.entities.propagation import RING_DETECTOR_ID, RingPropagationConfig, ring_score
from detectors.models.anomaly import AnomalyConfig, AnomalyModel, FeatureRange
from detectors.models.checkpoint import ModelSet
from detectors.models.delinquency import DelinquencyConfig, DelinquencyModel
from detectors.models.drift import DriftEvent
from detectors.profile import InputEvent, features
from detectors.rules import (
    LimitUsageConfig,
    LimitUsageDetector,
    MultiLendingConfig,
    MultiLendingDetector,
    RepaymentConfig,
    RepaymentDetector,
    SequenceConfig,
    SequenceDetector,
)
from detectors.rules._common import Band, graded, reason
from schemas.behavior import BehaviorBase, LoanApplication
from schemas.common import to_ms
from schemas.entities import RingMembership
from schemas.outputs import Alert, LimitAction, ProfileSnapshot
from schemas.repayment import DpdUpdate, InstallmentDue, InstallmentMissed, Payment
from schemas.rules import BurstRuleConfig

__all__ = [
    "BURST_DETECTOR_ID",
    "ENGINE_ANOMALY_FEATURES",
    "RING_DETECTOR_ID",
    "CustomerState",
    "Engine",
    "EngineConfig",
    "EngineInput",
    "Position",
    "StepResult",
]

EngineInput: TypeAlias = InputEvent | RingMembership
"""What the engine steps on: the customer's own events, and updates of the ring the customer belongs to."""

BURST_DETECTOR_ID: Final = "multi_application_burst"
_MINUTE_MS: Final = 60_000
_VIA_KEPT: Final = 5  # shared entities a member's state remembers for its reason; the ring snapshot has them all


def _r(name: str, high: float, log: bool = True) -> FeatureRange:
    return FeatureRange(name=name, high=high, log=log)


ENGINE_ANOMALY_FEATURES: Final[tuple[FeatureRange, ...]] = (
    _r("limit_queries_30m", 30),
    _r("logins_30m", 30),
    _r("page_views_30m", 60),
    _r("drawdowns_24h", 20),
    _r("distinct_devices_24h", 10),
    _r("distinct_ips_24h", 20),
    _r("night_share_24h", 1, log=False),
    _r("profile_changes_24h", 10),
    _r("contact_uploads_24h", 5),
)
"""The anomaly model's default features, renamed to the profile's feature names.

Overrides :data:`detectors.models.anomaly.DEFAULT_FEATURES`, whose names follow the synthetic test vectors
(``applications_30m``, ``current_dpd``, ...): four of its thirteen features do not exist in the profile. The
model watches the behaviour no rule scores: features a rule already grades (applications, limit share,
inquiries, DPD, misses) are left out, because counted twice they lifted every rule notice to attention (a
day-time limit exhaustion is also "anomalous") and the model would only repeat the rule.
"""


def _default_limit_usage() -> LimitUsageConfig:
    # Exhausting the line by day is common (a quarter of ordinary drawdowns use 80 %+ of what is left): alone it
    # reaches notice at most (share 1.0 scores 0.52); at night the combined bonus lifts it to attention.
    # A night drawdown alone is a notice (0.4), two make attention: night_weight 1.
    return LimitUsageConfig(share=Band(notice=0.85, warning=1.4), night_weight=1.0, combined_bonus=0.25)


def _default_multi_lending() -> MultiLendingConfig:
    # A heavy but ordinary inquirer (about 2 a day, two thirds non-bank) reaches notice, not attention, within a
    # day; five non-bank inquiries plus one bank (weighted 11) are attention.
    return MultiLendingConfig(band_7d=Band(notice=8, warning=16))


def _default_repayment() -> RepaymentConfig:
    # Deterioration, not state: one late installment (M1, one roll, one miss) stays a notice (0.5), a roll on to
    # M2 with the miss behind it is attention (0.73); a customer already deep in collections whose first DPD
    # report the profile sees (M2-M4, one apparent roll) stays a notice until it rolls again.
    return RepaymentConfig(
        bucket_scores=(0.0, 0.25, 0.35, 0.4, 0.44), roll_weight=0.15, missed_weight=0.08, partial_weight=0.05
    )


def _default_decision() -> DecisionConfig:
    # Overrides of the decision layer's defaults for this detector suite (measured with `loanwatch evaluate`):
    # the models are weaker evidence than the rules, so on their own they reach notice at most.
    return DecisionConfig(
        fusion=FusionConfig(weights={"profile_anomaly": 0.25, "delinquency": 0.3}),
    )


def _with_membership(state: CustomerState, event: RingMembership) -> CustomerState | None:
    """``state`` with the membership applied, or None if it is a replay or older than the newest one applied."""
    at_ms = to_ms(event.ts)
    if state.ring is not None and state.ring.event_id == event.event_id:
        return None
    if state.ring_seen_ms is not None and at_ms < state.ring_seen_ms:
        return None
    mark = None
    if event.score > 0:
        via = tuple(str(v) for v in event.via[:_VIA_KEPT])
        mark = RingMark(event.ring_id, event.score, event.size, via, at_ms, event.event_id)
    elif state.ring is not None and state.ring.ring_id != event.ring_id:
        mark = state.ring  # left another ring, not this one
    return replace(state, ring=mark, ring_seen_ms=at_ms)


def _redelivered(state: CustomerState, event: EngineInput, position: Position) -> bool:
    """Whether ``event`` at ``position`` was applied already: at or below its stream's last applied offset.

    An event newer than anything applied is taken as new whatever its offset: a topic deleted and created again
    numbers its records from 0, and its new events must not be mistaken for old ones.
    """
    if not state.applied(position):
        return False
    newest = max(state.profile.watermark_ms, state.ring_seen_ms or 0)
    return to_ms(event.ts) <= newest


def _resend_decision(state: CustomerState, event_id: str, alerts: list[Alert], actions: list[LimitAction]) -> None:
    """Add what the decision layer produced for ``event_id`` the first time (a replay re-sends it, same ids)."""
    for emitted in state.decision.emitted:
        if emitted.trigger_event_id == event_id:
            alerts.extend(emitted.alerts)
            actions.extend(emitted.actions)


def _window_only(before: BurstState, after: BurstState) -> BurstState:
    """``after``'s application window with ``before``'s episode: an allow-listed burst counts but never opens one."""
    return replace(
        after,
        episode_start_ms=before.episode_start_ms,
        episode_last_ms=before.episode_last_ms,
        episode_tier=before.episode_tier,
        emitted=before.emitted,
    )


def _gate(score: DetectorScore, threshold: float) -> DetectorScore:
    return score if score.score >= threshold else DetectorScore(score.detector_id, 0.0)


class EngineConfig(BaseModel):
    """The rule set: the burst rule, the rule detectors, the models and the decision layer, one field each.

    This is what a rules YAML file holds and what ``loanwatch rules push`` publishes to ``risk.rules.v1``; every
    field has a default, so a file names only what it changes. Frozen, unknown keys refused. ``version``
    identifies the whole rule set and must grow with every push: fused alerts record it as their
    ``rule_version`` (their score depends on every detector's settings), burst alerts record ``burst.version``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = Field(default=1, description="Format of this configuration.")
    version: int = Field(default=1, ge=1, description="Version of the rule set; recorded on every fused alert.")
    burst: BurstRuleConfig = Field(default_factory=BurstRuleConfig)
    burst_fusion_cap: float = Field(
        default=0.35, ge=0, le=1, description="Largest burst score fed to fusion; kept below the notice threshold."
    )
    multi_lending: MultiLendingConfig = Field(default_factory=_default_multi_lending)
    sequence: SequenceConfig = Field(default_factory=SequenceConfig)
    limit_usage: LimitUsageConfig = Field(default_factory=_default_limit_usage)
    repayment: RepaymentConfig = Field(default_factory=_default_repayment)
    anomaly: AnomalyConfig = Field(default_factory=lambda: AnomalyConfig(features=ENGINE_ANOMALY_FEATURES))
    delinquency: DelinquencyConfig = Field(default_factory=DelinquencyConfig)
    decision: DecisionConfig = Field(default_factory=_default_decision)
    snapshot_every_minutes: int = Field(default=30, ge=1, le=1440, description="Snapshot slot, event time.")
    entities: EntityConfig = Field(default_factory=EntityConfig)
    rings: RingConfig = Field(default_factory=RingConfig)
    ring_propagation: RingPropagationConfig = Field(default_factory=RingPropagationConfig)

    @model_validator(mode="before")
    @classmethod
    def _over_engine_defaults(cls, data: Any) -> Any:
        # A rules file names only what it changes: merge it over the engine's defaults key by key, so naming
        # one field of a section does not rebuild that section from its class's (untuned) defaults.
        return _merged(_engine_defaults(), data) if isinstance(data, Mapping) else data

    @model_validator(mode="after")
    def _burst_alone_never_fuses_to_an_alert(self) -> Self:
        fusion = self.decision.fusion
        products: list[str | None] = [None, *fusion.products]
        for product in products:
            top = self.burst_fusion_cap * fusion.weight_for(BURST_DETECTOR_ID, product)
            notice = fusion.thresholds_for(product).notice
            if top >= notice:
                raise ValueError(
                    f"burst_fusion_cap x weight ({top:g}) must stay below the notice threshold ({notice:g}"
                    f"{'' if product is None else ' of ' + product}): a burst alone would alert twice"
                )
        return self


@functools.cache
def _engine_defaults() -> dict[str, Any]:
    """The default configuration as plain data (built without validation: the defaults are the engine's own)."""
    return EngineConfig.model_construct().model_dump(mode="json")


def _merged(base: Any, override: Any) -> Any:
    """``override`` over ``base``: mappings merge key by key, anything else (lists, values, models) replaces."""
    if not isinstance(base, Mapping) or not isinstance(override, Mapping):
        return override
    return {**base, **{k: _merged(base.get(k), v) for k, v in override.items()}}


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one step produced: the new state and the outputs to publish (``drift``: operational, not alerts)."""

    state: CustomerState
    alerts: tuple[Alert, ...] = ()
    actions: tuple[LimitAction, ...] = ()
    snapshot: ProfileSnapshot | None = None
    scores: tuple[DetectorScore, ...] = ()
    drift: tuple[DriftEvent, ...] = ()
    own_tier_changed: bool = False


class Engine:
    """The per-customer step; build once per configuration (detectors are built here, not per event)."""

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config if config is not None else EngineConfig()
        cfg = self.config
        self.rules = (
            MultiLendingDetector(cfg.multi_lending),
            SequenceDetector(cfg.sequence),
            LimitUsageDetector(cfg.limit_usage),
            RepaymentDetector(cfg.repayment),
        )
        self._burst_band = Band(notice=cfg.burst.thresholds.notice, warning=cfg.burst.thresholds.warning)
        # Fused alerts record the rule set's version (see EngineConfig), not the decision layer's own.
        self._decision = cfg.decision.model_copy(update={"version": cfg.version})

    def new_models(self, partition: int) -> ModelSet:
        """A fresh model set for ``partition`` with this configuration's anomaly and delinquency settings."""
        return ModelSet(
            partition, anomaly=AnomalyModel(self.config.anomaly), delinquency=DelinquencyModel(self.config.delinquency)
        )

    def process(
        self,
        state: CustomerState,
        event: EngineInput,
        models: ModelSet | None = None,
        allowlisted: bool = False,
        position: Position | None = None,
    ) -> StepResult:
        """Apply one decoded event of ``state``'s customer and return the new state and the outputs."""
        return self.process_batch(state, (event,), models, allowlisted, None if position is None else (position,))

    def process_batch(
        self,
        state: CustomerState,
        events: Sequence[EngineInput],
        models: ModelSet | None = None,
        allowlisted: bool = False,
        positions: Sequence[Position | None] | None = None,
    ) -> StepResult:
        """Apply one customer's events (in produced order), scoring once at the end; see the module docstring.

        ``allowlisted``: the customer is on the allow-list. Its events update the profile and the burst window
        and teach the models, but no alert or limit action is raised and the burst and decision episodes stand
        still, so nothing is remembered as sent that never was; after removal the customer is judged afresh.
        ``positions``: each event's place in its input stream (None where unknown), which recognises a
        redelivered event however far back it lies (see :class:`~detectors.engine_state.CustomerState`).
        """
        cfg = self.config
        customer_id = state.customer_id
        profile = state.profile
        burst = state.burst
        alerts: list[Alert] = []
        actions: list[LimitAction] = []
        fresh: list[EngineInput] = []
        if positions is not None and len(positions) != len(events):
            raise ValueError(f"{len(positions)} positions for {len(events)} events")
        for i, event in enumerate(events):
            if event.customer_id != customer_id:
                raise ValueError(f"event {event.event_id} is for {event.customer_id}, not {customer_id}")
            position = positions[i] if positions is not None else None
            if position is not None:
                if _redelivered(state, event, position):
                    profile.duplicate_events += 1
                    alerts.extend(e.alert for e in burst.emitted if e.trigger_event_id == event.event_id)
                    _resend_decision(state, event.event_id, alerts, actions)
                    continue
                state = state.with_position(position)
            if isinstance(event, RingMembership):
                updated = _with_membership(state, event)
                if updated is not None:
                    state = updated
                    fresh.append(event)
                    continue
                added = False
            else:
                added = profile.add(event)
            if isinstance(event, LoanApplication):
                app = Application(event.event_id, to_ms(event.ts), event.product, event.channel)
                result = burst_update(burst, customer_id, app, cfg.burst)
                if allowlisted:
                    burst = _window_only(burst, result.state)
                else:
                    burst = result.state
                    alerts.extend(result.alerts)
            if added:
                fresh.append(event)
                continue
            _resend_decision(state, event.event_id, alerts, actions)
        state = replace(state, burst=burst)
        if not fresh:
            return StepResult(state, tuple(alerts), tuple(actions))

        at_ms = max(t for t in (profile.watermark_ms, state.ring_seen_ms) if t is not None)
        x = features(profile, at_ms)
        tail = profile.tail_events()
        scores = [d.score_one(x, tail, at_ms) for d in self.rules]
        scores.append(self._burst_score(burst, at_ms))
        scores.append(ring_score(state.ring, at_ms, cfg.ring_propagation))
        drift: list[DriftEvent] = []
        p: float | None = None
        if models is not None:
            # A membership update alone brings no new behaviour: score with the models, teach them nothing.
            behaviour = any(not isinstance(e, RingMembership) for e in fresh)
            if behaviour:
                anomaly, delinquency, drift = models.process_one(x)
            else:
                anomaly, delinquency = models.score_one(x)
            # Below their explain thresholds the models' scores are the normal population's noise (HalfSpaceTrees
            # give ordinary profiles 0.3-0.6); fused, that noise would lift every rule notice to attention.
            scores.append(_gate(anomaly, models.anomaly.config.explain_threshold))
            scores.append(_gate(delinquency, models.delinquency.config.explain_threshold))
            if models.delinquency.n_learned >= models.delinquency.config.warm_up:
                p = min(max(models.delinquency.predict_proba(x), 0.0), 1.0)
        trigger = fresh[-1]
        product = next((e.product for e in reversed(fresh) if isinstance(e, BehaviorBase) and e.product), None)
        fused = fuse(scores, cfg.decision.fusion, product)
        # The tier the customer's own behaviour reaches, without its ring: what the ring detector weighs members
        # by (with the ring included, a ring would raise its members and then itself, in a loop).
        ring_counts = any(sc.detector_id == RING_DETECTOR_ID and sc.score > 0 for sc in scores)
        own_scores = [sc for sc in scores if sc.detector_id != RING_DETECTOR_ID]
        own = fuse(own_scores, cfg.decision.fusion, product) if ring_counts else fused
        own_tier = None if allowlisted else cfg.decision.fusion.thresholds_for(product).tier_for(own.score)
        if allowlisted:
            decision_state, tier, grade = state.decision, state.decision.last_tier, None
        else:
            decision = decide(
                state.decision, customer_id, fused, trigger.event_id, to_ms(trigger.ts), self._decision, p
            )
            alerts.extend(decision.alerts)
            actions.extend(decision.actions)
            decision_state, tier, grade = decision.state, decision.tier, decision.grade
        if models is not None:
            state = self._learn_outcomes(state, fresh, x, models.delinquency)

        snapshot = None
        slot = cfg.snapshot_every_minutes * _MINUTE_MS
        last = state.last_snapshot_ms
        if last is None or at_ms // slot > last // slot or tier != state.decision.last_tier:
            values = {k: v for k, v in x.items() if math.isfinite(v)}
            snapshot = ProfileSnapshot(
                customer_id=customer_id, ts=at_ms, features=values, score=fused.score, tier=tier, grade=grade
            )
            last = at_ms if last is None else max(last, at_ms)
        changed = own_tier != state.own_tier
        assessment = Assessment(at_ms, fused.score, grade, p, cfg.version)
        state = replace(
            state, decision=decision_state, last_snapshot_ms=last, own_tier=own_tier, assessment=assessment
        )
        return StepResult(state, tuple(alerts), tuple(actions), snapshot, tuple(scores), tuple(drift), changed)

    def _burst_score(self, burst: BurstState, at_ms: int) -> DetectorScore:
        """The burst rule's count in the window ending at ``at_ms``, graded and capped for fusion."""
        rule = self.config.burst
        if not rule.enabled:
            return DetectorScore(BURST_DETECTOR_ID, 0.0)
        since = at_ms - rule.window_minutes * _MINUTE_MS
        count = sum(1 for a in burst.applications if since <= a.ts_ms <= at_ms)
        score = round(self.config.burst_fusion_cap * graded(count, self._burst_band), 6)
        if score <= 0:
            return DetectorScore(BURST_DETECTOR_ID, 0.0)
        name = f"applications_{rule.window_minutes}m"
        why = reason("applications_in_window", name, float(count), float(rule.thresholds.notice),
                     f"{count} loan applications within {rule.window_minutes} min")
        return DetectorScore(BURST_DETECTOR_ID, score, (why,))

    @staticmethod
    def _learn_outcomes(
        state: CustomerState, events: Sequence[EngineInput], x: dict[str, float], model: DelinquencyModel
    ) -> CustomerState:
        """Teach the delinquency model from repayment events (after scoring, so nothing leaks into the score)."""
        for e in events:
            if isinstance(e, InstallmentDue):
                model.observe_due((e.loan_id, e.installment_no), x)
                state = state.with_installment(e.loan_id, e.installment_no)
            elif isinstance(e, Payment) and e.kind == "full":
                model.observe_outcome((e.loan_id, e.installment_no), False)
                if state.installment_of(e.loan_id) == e.installment_no:
                    state = state.with_installment(e.loan_id, None)
            elif isinstance(e, InstallmentMissed):
                model.observe_outcome((e.loan_id, e.installment_no), True)
                if state.installment_of(e.loan_id) == e.installment_no:
                    state = state.with_installment(e.loan_id, None)
            elif isinstance(e, DpdUpdate):
                number = state.installment_of(e.loan_id)
                if number is not None and model.observe_dpd((e.loan_id, number), e.dpd):
                    state = state.with_installment(e.loan_id, None)
        return state
