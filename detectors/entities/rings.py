"""Rings (团伙): connected components of recent customer links, with stable ids, scores and propagated risk.

:class:`RingDetector` keeps the live links of the last ``horizon_minutes`` of event time in a
:class:`~detectors.entities.ring_graph.RingGraph` (connected components, expiry, public entities and the ring-id
rules are documented there) and turns components of at least ``min_size`` customers into rings: their score
(formula on :class:`~detectors.entities.config.RingConfig`), the ``ring_membership`` score propagated to each
member, and ring alerts naming every member and shared entity.

Why a mutable object
    The graph of a partition's links is far too large to copy per link the way per-customer states are; like the
    River model sets (DESIGN decision 5) the detector lives in the worker and is checkpointed with
    :meth:`RingDetector.to_dict` / :meth:`RingDetector.from_dict`. ``score_one`` and ``ring_alerts`` never change
    it; ``learn_one``, ``advance`` and ``emit_alerts`` (which remembers what it emitted) do.

Feeding it
    Links involve arbitrary customers, so the detector needs every link of the rings it should see: one instance
    over the whole link stream (one partition), which ``bench/bench_rings.py`` sizes. The ``tiers`` mapping given
    to ``score_one`` / ``emit_alerts`` must hold each customer's tier **before** ring propagation (from its other
    detectors), or ring risk feeds back on itself.

Example:
    >>> from detectors.entities.events import LinkEvent
    >>> from detectors.entities.keys import EntityKey
    >>> rd = RingDetector()
    >>> for i in range(3):  # c_0 - c_1 via d_0, c_1 - c_2 via d_1: a chain
    ...     rd.learn_one(LinkEvent.between(f"c_{i}", f"c_{i + 1}", EntityKey("device", f"d_{i}"), 0, 60_000 * i))
    >>> [(r.members, r.kinds) for r in rd.rings()]
    [(('c_0', 'c_1', 'c_2', 'c_3'), ('device',))]
    >>> score = rd.score_one("c_0", {"c_2": "warning"})
    >>> score.score, score.reasons[0].message
    (0.72, 'member of ring 1ea56c545062f16e (4 customers) via device d_0; other members: 1 at 预警 warning')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from detectors.base import DetectorScore
from detectors.entities.config import RingConfig
from detectors.entities.events import EntityEvent, LinkEvent
from detectors.entities.keys import ENTITY_KINDS, EntityKey, EntityKind
from detectors.entities.ring_graph import Component, RingGraph
from detectors.entities.ring_scoring import Ring, RingAlert, member_reason, ring_alert_id, ring_reasons, ring_score
from schemas.outputs import TIER_LABELS, TIER_ORDER, Tier

__all__ = ["RingDetector"]

_RISKY: frozenset[str] = frozenset({"attention", "warning"})


@dataclass(frozen=True, slots=True)
class _Emitted:
    alert_id: str
    tier: Tier
    members: frozenset[str]


class RingDetector:
    """Rings over a link graph, their scores and alerts; see the module docstring."""

    detector_id = "ring_membership"

    def __init__(self, config: RingConfig | None = None) -> None:
        self.config = config or RingConfig()
        self._graph = RingGraph(self.config)
        self._emitted: dict[str, _Emitted] = {}

    @property
    def watermark_ms(self) -> int | None:
        """The latest event time seen (links' ``last_seen_ms``, public notices, :meth:`advance`)."""
        return self._graph.watermark_ms

    @property
    def late_links(self) -> int:
        """Links that arrived with ``last_seen_ms`` more than the horizon behind the watermark (not added)."""
        return self._graph.late_links

    @property
    def public_links(self) -> int:
        """Links refused because their entity was public at their ``last_seen_ms``."""
        return self._graph.public_links

    def learn_one(self, event: EntityEvent) -> None:
        """Take one link (or public-entity notice) into the graph.

        A link of a kind not in ``ring_kinds`` only moves event time on.
        """
        if isinstance(event, LinkEvent) and event.entity.kind not in self.config.ring_kinds:
            self._graph.advance(event.last_seen_ms)
            return
        self._graph.learn_one(event)

    def advance(self, ts_ms: int) -> None:
        """Move event time forward without a link (the caller's watermark), expiring links that are due."""
        self._graph.advance(ts_ms)

    # ---- reading (never changes the detector) -------------------------------------------------------------------

    def rings(self) -> tuple[Ring, ...]:
        """Every current ring (component of at least ``min_size`` members), sorted by id."""
        size = self.config.min_size
        return tuple(self._graph.view(c) for _, c in sorted(self._graph.comps.items()) if len(c.members) >= size)

    def ring_of(self, customer_id: str) -> Ring | None:
        """The ring ``customer_id`` belongs to, or None."""
        comp = self._graph.comp_of.get(customer_id)
        return self._graph.view(comp) if comp is not None and len(comp.members) >= self.config.min_size else None

    def score_one(self, customer_id: str, tiers: Mapping[str, Tier] | None = None) -> DetectorScore:
        """The ring risk propagated to one customer (0 outside rings), from the *other* members' tiers."""
        comp = self._graph.comp_of.get(customer_id)
        if comp is None or len(comp.members) < self.config.min_size:
            return DetectorScore(self.detector_id, 0.0)
        tiers = tiers or {}
        risky = {m: t for m in comp.members if m != customer_id and (t := tiers.get(m)) in _RISKY}
        others = [tiers.get(m) for m in comp.members if m != customer_id]
        kinds = _kinds(comp.entities)
        score = ring_score(len(comp.members), kinds, others, self.config)
        own = self._graph.own_entities(customer_id)
        why = member_reason(comp.ring_id, len(comp.members), score, own, kinds, risky, self.config)
        return DetectorScore(self.detector_id, score, (why,))

    def _tiers_by_ring(self, tiers: Mapping[str, Tier]) -> dict[str, list[Tier]]:
        """The given tiers grouped by component: one pass over ``tiers`` instead of one lookup per ring member."""
        out: dict[str, list[Tier]] = {}
        comp_of = self._graph.comp_of
        for customer, tier in tiers.items():
            comp = comp_of.get(customer)
            if comp is not None:
                out.setdefault(comp.ring_id, []).append(tier)
        return out

    def _tiered(self, comp: Component, member_tiers: list[Tier]) -> tuple[float, Tier | None]:
        """A component's ring score and tier, from its size, kinds and members' tiers (no view built)."""
        score = ring_score(len(comp.members), _kinds(comp.entities), member_tiers, self.config)
        return score, self.config.thresholds.tier_for(score)

    def _alert(self, comp: Component, tiers: Mapping[str, Tier], score: float, tier: Tier) -> RingAlert:
        ring = self._graph.view(comp)
        risky = {m: t for m in ring.members if (t := tiers.get(m)) in _RISKY}
        previous = self._emitted.get(ring.ring_id)
        alert_id = ring_alert_id(ring.ring_id, tier, ring.members)
        return RingAlert(
            alert_id=alert_id,
            ring_id=ring.ring_id,
            rule_id=self.config.rule_id,
            rule_version=self.config.version,
            tier=tier,
            tier_label=TIER_LABELS[tier],
            score=score,
            members=ring.members,
            entities=ring.entities,
            risky_members=tuple(sorted(risky)),
            reasons=ring_reasons(ring, risky, self.config),
            first_seen_ms=ring.first_seen_ms,
            last_seen_ms=ring.last_seen_ms,
            previous_alert_id=previous.alert_id if previous and previous.alert_id != alert_id else None,
        )

    def ring_alerts(self, tiers: Mapping[str, Tier] | None = None) -> tuple[RingAlert, ...]:
        """The alert every current ring would carry now, sorted by ring id (rings below notice carry none)."""
        tiers = tiers or {}
        by_ring = self._tiers_by_ring(tiers)
        out = []
        for ring_id, comp in sorted(self._graph.comps.items()):
            if len(comp.members) >= self.config.min_size:
                score, tier = self._tiered(comp, by_ring.get(ring_id, []))
                if tier is not None:
                    out.append(self._alert(comp, tiers, score, tier))
        return tuple(out)

    def emit_alerts(self, tiers: Mapping[str, Tier] | None = None) -> tuple[RingAlert, ...]:
        """Ring alerts to publish now, sorted by ring id; remembers them (the only reader that changes state).

        A ring alerts when it first reaches a tier, when it reaches a higher tier than it alerted at, and when it has
        members its last alert did not name. A ring whose tier falls or that loses members raises nothing new; a
        ring that disappears is forgotten.

        Cost: only rings that changed since the last call or have a member in ``tiers`` are scored (a ring with
        neither scores what it scored last time, so it cannot alert anew), and only alerting rings are rendered.
        Give ``tiers`` the customers that have a tier, not every customer.
        """
        tiers = tiers or {}
        by_ring = self._tiers_by_ring(tiers)
        changed = self._graph.take_changed()
        fresh = []
        for ring_id in changed | by_ring.keys():
            comp = self._graph.comps.get(ring_id)
            if comp is None or len(comp.members) < self.config.min_size:
                continue
            score, tier = self._tiered(comp, by_ring.get(ring_id, []))
            if tier is None:
                continue
            before = self._emitted.get(ring_id)
            if before is not None and TIER_ORDER[tier] <= TIER_ORDER[before.tier] and comp.members <= before.members:
                continue
            fresh.append(self._alert(comp, tiers, score, tier))
        for alert in fresh:
            before = self._emitted.get(alert.ring_id)
            highest = alert.tier if before is None else max(alert.tier, before.tier, key=TIER_ORDER.__getitem__)
            self._emitted[alert.ring_id] = _Emitted(alert.alert_id, highest, frozenset(alert.members))
        for ring_id in [r for r in self._emitted if r not in self._graph.comps]:
            del self._emitted[ring_id]
        return tuple(sorted(fresh, key=lambda a: a.ring_id))

    def stats(self) -> dict[str, int]:
        """Sizes, for metrics and benchmarks."""
        return self._graph.stats()

    # ---- checkpoint -----------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready checkpoint (sorted: equal detectors give equal bytes); the config is not included."""
        data = self._graph.to_dict()
        data["emitted"] = sorted([r, e.alert_id, e.tier, sorted(e.members)] for r, e in self._emitted.items())
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], config: RingConfig | None = None) -> RingDetector:
        """Inverse of :meth:`to_dict` (with the config to run under)."""
        rd = cls(config)
        rd._graph = RingGraph.from_dict(data, rd.config)
        rd._emitted = {r: _Emitted(a, t, frozenset(ms)) for r, a, t, ms in data["emitted"]}
        return rd


def _kinds(entities: Mapping[EntityKey, int]) -> list[EntityKind]:
    present = {e.kind for e in entities}
    return [k for k in ENTITY_KINDS if k in present]
