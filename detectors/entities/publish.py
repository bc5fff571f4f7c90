"""From the ring detector's state to what is published: ring alerts, ring snapshots and member updates.

:class:`RingPublisher` remembers what it last published per ring and, after each batch of links and tier
changes, returns only what changed: a ring alert when the detector emits one (its first tier, a higher tier, new
members), a :class:`~schemas.entities.RingSnapshot` for every ring whose members, links or score changed (and a
``dissolved`` one when a ring is gone), and a :class:`~schemas.entities.RingMembership` for each member of such a
ring (score 0 for a customer who left it). The Faust ring agent and the offline evaluation both use it, so they
publish the same things for the same inputs.

Example:
    >>> from detectors.entities.events import LinkEvent
    >>> from detectors.entities.keys import EntityKey
    >>> from detectors.entities.rings import RingDetector
    >>> rings, publisher = RingDetector(), RingPublisher()
    >>> t0 = 1_767_603_600_000  # 2026-01-05 09:00 UTC
    >>> for i in range(1, 4):
    ...     rings.learn_one(LinkEvent.between("c_0", f"c_{i}", EntityKey("device", "d_1"), t0, t0 + 60_000 * i))
    >>> out = publisher.changes(rings, {"c_1": "warning", "c_2": "attention"})
    >>> [s.size for s in out.snapshots], sorted(m.customer_id for m in out.memberships)
    ([4], ['c_0', 'c_1', 'c_2', 'c_3'])
    >>> publisher.changes(rings, {"c_1": "warning", "c_2": "attention"}).memberships  # nothing changed
    ()
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from detectors.entities.ring_scoring import Ring, RingAlert, ring_score
from detectors.entities.rings import RingDetector
from schemas.common import from_ms
from schemas.entities import RingMembership, RingSnapshot, ring_membership_id
from schemas.outputs import Alert, EntityRef, Reason, RingRef, Tier

__all__ = ["RingChanges", "RingPublisher", "ring_alert_contract"]

_MAX_MEMBERS = 1000
_MAX_ENTITIES = 200


def ring_alert_contract(alert: RingAlert) -> Alert:
    """The published form of a ring alert: anchored on the ring's first member, naming all of them."""
    return Alert(
        alert_id=alert.alert_id, customer_id=alert.members[0], rule_id=alert.rule_id,
        rule_version=alert.rule_version, tier=alert.tier, score=round(alert.score, 6),
        reasons=[Reason.model_validate(r.model_dump()) for r in alert.reasons][:20], evidence_event_ids=[],
        first_seen=from_ms(alert.first_seen_ms), last_seen=from_ms(alert.last_seen_ms),
        previous_alert_id=alert.previous_alert_id,
        ring=RingRef(ring_id=alert.ring_id, members=list(alert.members)[:_MAX_MEMBERS], entities=_refs(alert)),
    )


def _refs(ring: Ring | RingAlert, member: str | None = None) -> list[EntityRef]:
    shared = (s for s in ring.entities if member is None or member in s.members)
    return [EntityRef(kind=s.entity.kind, value=s.entity.value) for s in shared][:_MAX_ENTITIES]


def _snapshot(ring: Ring, score: float, tier: Tier | None, dissolved: bool = False) -> RingSnapshot:
    return RingSnapshot(
        ring_id=ring.ring_id, ts=from_ms(ring.last_seen_ms), first_seen=from_ms(ring.first_seen_ms),
        size=len(ring.members), score=round(score, 6), tier=tier, members=list(ring.members)[:_MAX_MEMBERS],
        entities=_refs(ring), links=max(ring.links, 1), dissolved=dissolved,
    )


def _membership(customer: str, ring: Ring, score: float, via: list[EntityRef]) -> RingMembership:
    ts = max(ring.last_seen_ms, ring.first_seen_ms)
    score = round(min(max(score, 0.0), 1.0), 6)
    return RingMembership(
        event_id=ring_membership_id(ring.ring_id, customer, ts, score), customer_id=customer, ts=from_ms(ts),
        ring_id=ring.ring_id, score=score, size=len(ring.members), via=via,
    )


@dataclass(frozen=True, slots=True)
class RingChanges:
    """What one batch changed."""

    alerts: tuple[Alert, ...] = ()
    snapshots: tuple[RingSnapshot, ...] = ()
    memberships: tuple[RingMembership, ...] = ()


@dataclass
class RingPublisher:
    """Remembers, per ring, the members, links and score last published."""

    published: dict[str, tuple[frozenset[str], int, float, Ring]] = field(default_factory=dict)

    def changes(self, rings: RingDetector, tiers: Mapping[str, Tier]) -> RingChanges:
        """Alerts, snapshots and memberships since the last call (``emit_alerts`` is remembered by ``rings``)."""
        alerts = tuple(ring_alert_contract(a) for a in rings.emit_alerts(tiers))
        snapshots: list[RingSnapshot] = []
        memberships: list[RingMembership] = []
        current = {ring.ring_id: ring for ring in rings.rings()}
        for ring_id, ring in sorted(current.items()):
            members = frozenset(ring.members)
            score = ring_score(len(ring.members), ring.kinds, (tiers.get(m) for m in ring.members), rings.config)
            before = self.published.get(ring_id)
            if before is not None and before[:3] == (members, ring.links, score):
                continue
            snapshots.append(_snapshot(ring, score, rings.config.thresholds.tier_for(score)))
            for member in ring.members:
                memberships.append(_membership(member, ring, rings.score_one(member, tiers).score, _refs(ring, member)))
            for member in sorted(before[0] - members if before is not None else ()):
                memberships.append(_membership(member, ring, 0.0, []))
            self.published[ring_id] = (members, ring.links, score, ring)
        for ring_id in [r for r in self.published if r not in current]:
            members, _, _, ring = self.published.pop(ring_id)
            snapshots.append(_snapshot(ring, 0.0, None, dissolved=True))
            memberships.extend(_membership(m, ring, 0.0, []) for m in sorted(members))
        return RingChanges(alerts, tuple(snapshots), tuple(memberships))
