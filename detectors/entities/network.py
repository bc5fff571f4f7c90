"""The entity and ring agents in one process, for offline replays (``loanwatch evaluate``) and tests.

Same pure steps as the Faust agents, wired directly: each behaviour event's entities go through
:func:`~detectors.entities.entity_state.observe` (one state per entity), the links feed a
:class:`~detectors.entities.rings.RingDetector`, customers' own tiers are kept for ring scoring, and
:class:`~detectors.entities.publish.RingPublisher` says what to publish after each batch.

Example:
    >>> from datetime import UTC, datetime, timedelta
    >>> from schemas.behavior import Login
    >>> net = OfflineNetwork()
    >>> t0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    >>> for i in range(4):  # four customers on one phone (device d_9) within minutes
    ...     net.observe(Login(event_id=f"e{i}", customer_id=f"c_{i}", ts=t0 + timedelta(minutes=i),
    ...                       device_id="d_9", ip=f"10.0.{i}.1", channel="h5", method="sms", success=True))
    >>> changes = net.step()
    >>> [s.size for s in changes.snapshots], len(changes.memberships)
    ([4], 4)
"""

from __future__ import annotations

from detectors.entities.config import EntityConfig, RingConfig
from detectors.entities.entity_state import EntityState, observe
from detectors.entities.events import LinkEvent, PublicEntity
from detectors.entities.keys import EntityKey, entity_keys
from detectors.entities.publish import RingChanges, RingPublisher
from detectors.entities.rings import RingDetector
from schemas.behavior import BehaviorBase
from schemas.common import to_ms
from schemas.outputs import Tier

__all__ = ["OfflineNetwork"]


class OfflineNetwork:
    """Entity states, the ring detector and the publisher in one object."""

    def __init__(
        self,
        entities: EntityConfig | None = None,
        rings: RingConfig | None = None,
        allow: frozenset[tuple[str, str]] = frozenset(),
    ) -> None:
        self.entity_config = entities if entities is not None else EntityConfig()
        self.rings = RingDetector(rings)
        self.publisher = RingPublisher()
        self.states: dict[EntityKey, EntityState] = {}
        self.tiers: dict[str, Tier] = {}
        self.allow = allow
        self.links = 0
        self._pending: list[LinkEvent | PublicEntity] = []
        self._tiers_changed = False

    def observe(self, event: BehaviorBase) -> None:
        """Record the entities ``event`` carries (links wait for :meth:`step`)."""
        ts = to_ms(event.ts)
        for key in entity_keys(event, self.entity_config.contact_list.min_contacts):
            state = self.states.get(key) or EntityState(key)
            state, out = observe(state, event.customer_id, ts, self.entity_config, self.allow)
            self.states[key] = state
            self._pending.extend(out)
            self.links += sum(1 for e in out if isinstance(e, LinkEvent))

    def tier(self, customer_id: str, tier: Tier | None) -> None:
        """A customer's own tier (without its ring) changed."""
        if tier is None:
            self.tiers.pop(customer_id, None)
        else:
            self.tiers[customer_id] = tier
        self._tiers_changed = True

    def step(self) -> RingChanges:
        """Feed the pending links to the ring detector and return what changed (nothing if nothing arrived)."""
        if not self._pending and not self._tiers_changed:
            return RingChanges()
        for event in self._pending:
            self.rings.learn_one(event)
        self._pending.clear()
        self._tiers_changed = False
        return self.publisher.changes(self.rings, self.tiers)
