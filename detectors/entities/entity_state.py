"""Per-entity state: which customers used one device / IP / network / card / phone / address book, and the links.

One :class:`EntityState` per entity key ``(kind, value)``; the stream layer re-keys behaviour events by entity,
keeps the state in a table and calls ``observe(state, customer_id, ts_ms, config) -> (state, events)``
(Bytewax's ``stateful_map`` shape). Everything runs on event time; no clock is read.

What the state remembers
    Each customer's first and last event time on the entity, for the longest horizon (default 30 days), and at
    most ``capacity`` customers (default 64): beyond it the least recently seen customer is forgotten and
    counted (``evicted``, ``evicted_last_ms``), so a huge public IP is still known to be huge. A forgotten customer
    who comes back starts again with a new first time.

Clock
    The entity's watermark is the latest event time it has seen. "Live" means seen within the kind's link horizon
    before the watermark; late events are placed by their own time (first/last) but judged at the watermark.
    Events older than the retention behind the watermark are counted as late and change nothing else.

When links are emitted
    While the entity has at least ``min_customers`` live customers (and is not public), every pair of live
    customers is a :class:`~detectors.entities.events.LinkEvent`. A pair is sent once while both stay live; it is
    re-sent as a *refresh* when its ``last_seen_ms`` has advanced by more than ``refresh_minutes`` since it was
    last sent, so downstream expiry keeps live links and drops dead ones. A pair in which one customer is no
    longer live is forgotten; if both are live again later it is a new link.

Public entities
    More than ``max_customers`` live customers (or any forgotten customer still within the horizon) make the
    entity public for ``public_hold_minutes`` after the last time it was over the ceiling: one
    :class:`~detectors.entities.events.PublicEntity` is emitted when it becomes public, no links while it is.
    Entities in the allow-list passed to :func:`observe` are ignored entirely (state unchanged, nothing emitted).

Example:
    >>> from detectors.entities.config import EntityConfig
    >>> config = EntityConfig()
    >>> state = EntityState(EntityKey("device", "d_1"))
    >>> state, out = observe(state, "c_1", 0, config)
    >>> out
    ()
    >>> state, out = observe(state, "c_2", 60_000, config)
    >>> [(e.pair, e.first_seen_ms, e.last_seen_ms, e.refresh) for e in out]
    [(('c_1', 'c_2'), 60000, 60000, False)]
    >>> observe(state, "c_2", 120_000, config)[1]  # within refresh_minutes: already sent
    ()
    >>> state.distinct(30)
    DistinctCount(customers=2, saturated=False)
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from detectors.entities.config import MINUTE_MS, EntityConfig
from detectors.entities.events import EntityEvent, LinkEvent, PublicEntity, entity_from
from detectors.entities.keys import EntityKey

__all__ = ["DistinctCount", "EntityState", "observe"]

Seen = tuple[int, int]
"""A customer's (first_ms, last_ms) on the entity."""
Pair = tuple[str, str]
PairMemory = tuple[int, int]
"""A sent pair's (first_seen_ms it was sent with, last_seen_ms of its latest sending)."""


class DistinctCount(NamedTuple):
    """Distinct customers within a horizon; when ``saturated`` the count is a lower bound (some were forgotten)."""

    customers: int
    saturated: bool


@dataclass(frozen=True, slots=True)
class EntityState:
    """One entity's customers, sent pairs, clock and public status. Treat as immutable: observe returns a new one."""

    key: EntityKey
    customers: dict[str, Seen] = field(default_factory=dict)
    pairs: dict[Pair, PairMemory] = field(default_factory=dict)
    watermark_ms: int | None = None
    evicted: int = 0
    evicted_last_ms: int | None = None
    public_until_ms: int | None = None
    late_events: int = 0

    def distinct(self, horizon_minutes: int) -> DistinctCount:
        """Distinct customers seen within ``horizon_minutes`` before the watermark."""
        if self.watermark_ms is None:
            return DistinctCount(0, False)
        cutoff = self.watermark_ms - horizon_minutes * MINUTE_MS
        count = sum(1 for _, last in self.customers.values() if last >= cutoff)
        return DistinctCount(count, self.evicted_last_ms is not None and self.evicted_last_ms >= cutoff)

    def counts(self, config: EntityConfig) -> dict[int, DistinctCount]:
        """:meth:`distinct` for every configured horizon, keyed by its minutes."""
        return {h: self.distinct(h) for h in config.horizons_minutes}

    def is_public(self) -> bool:
        """Whether the entity is public at its watermark."""
        return _public_at(self, self.watermark_ms)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for a table value (sorted, so equal states give equal bytes)."""
        return {
            "kind": self.key.kind,
            "value": self.key.value,
            "customers": [[c, f, last] for c, (f, last) in sorted(self.customers.items())],
            "pairs": [[a, b, f, last] for (a, b), (f, last) in sorted(self.pairs.items())],
            "wm": self.watermark_ms,
            "evicted": self.evicted,
            "evicted_last": self.evicted_last_ms,
            "public_until": self.public_until_ms,
            "late": self.late_events,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EntityState:
        """Inverse of :meth:`to_dict`."""
        return cls(
            key=entity_from(data["kind"], data["value"]),
            customers={c: (int(f), int(last)) for c, f, last in data["customers"]},
            pairs={(a, b): (int(f), int(last)) for a, b, f, last in data["pairs"]},
            watermark_ms=data["wm"],
            evicted=int(data["evicted"]),
            evicted_last_ms=data["evicted_last"],
            public_until_ms=data["public_until"],
            late_events=int(data["late"]),
        )


def _public_at(state: EntityState, wm: int | None) -> bool:
    return state.public_until_ms is not None and wm is not None and wm <= state.public_until_ms


def observe(
    state: EntityState,
    customer_id: str,
    ts_ms: int,
    config: EntityConfig,
    allow: AbstractSet[tuple[str, str]] = frozenset(),
) -> tuple[EntityState, tuple[EntityEvent, ...]]:
    """Record that ``customer_id`` used the entity at ``ts_ms``; return the new state and what it emits.

    ``allow`` holds allow-listed ``(kind, value)`` entities: they are ignored. Emitted links are sorted by pair.
    See the module docstring for the rules.
    """
    key = state.key
    if key in allow:
        return state, ()
    policy = config.policy(key.kind)
    wm = ts_ms if state.watermark_ms is None else max(state.watermark_ms, ts_ms)
    if ts_ms < wm - config.retention_ms:
        return replace(state, late_events=state.late_events + 1), ()

    customers = dict(state.customers)
    seen = customers.get(customer_id)
    customers[customer_id] = (ts_ms, ts_ms) if seen is None else (min(seen[0], ts_ms), max(seen[1], ts_ms))
    retained = wm - config.retention_ms
    if any(last < retained for _, last in customers.values()):
        customers = {c: s for c, s in customers.items() if s[1] >= retained}
    evicted, evicted_last = state.evicted, state.evicted_last_ms
    if len(customers) > config.capacity:
        oldest = sorted(customers.items(), key=lambda item: (item[1][1], item[0]))[: len(customers) - config.capacity]
        for c, (_, last) in oldest:
            del customers[c]
            evicted += 1
            evicted_last = last if evicted_last is None else max(evicted_last, last)

    live_after = wm - policy.link_horizon_ms
    live = sorted(c for c, (_, last) in customers.items() if last >= live_after)
    live_set = set(live)
    saturated = evicted_last is not None and evicted_last >= live_after
    new = replace(
        state, customers=customers, watermark_ms=wm, evicted=evicted, evicted_last_ms=evicted_last, pairs={}
    )

    was_public = _public_at(state, wm)
    if len(live) > policy.max_customers or saturated:
        until = wm + config.public_hold_minutes * MINUTE_MS
        if state.public_until_ms is not None:
            until = max(until, state.public_until_ms)
        new = replace(new, public_until_ms=until)
        if was_public:
            return new, ()
        return new, (PublicEntity(key, len(live), saturated, policy.max_customers, ts_ms, until),)

    pairs = {p: m for p, m in state.pairs.items() if p[0] in live_set and p[1] in live_set}
    if was_public or len(live) < policy.min_customers:
        return replace(new, pairs=pairs), ()

    refresh_ms = config.refresh_minutes * MINUTE_MS
    links: list[LinkEvent] = []

    def visit(a: str, b: str) -> None:
        (fa, la), (fb, lb) = customers[a], customers[b]
        first, last = max(fa, fb), max(la, lb)
        sent = pairs.get((a, b))
        if sent is None:
            links.append(LinkEvent(a, b, key, first, last))
            pairs[(a, b)] = (first, last)
        elif last - sent[1] > refresh_ms:
            links.append(LinkEvent(a, b, key, sent[0], last, refresh=True))
            pairs[(a, b)] = (sent[0], last)

    # Only pairs with the acting customer can have advanced; other pairs are visited when some are missing
    # (the entity just reached min_customers, or came back from public).
    if customer_id in live_set:
        for other in live:
            if other != customer_id:
                visit(*((customer_id, other) if customer_id < other else (other, customer_id)))
    if len(pairs) < len(live) * (len(live) - 1) // 2:
        for i, a in enumerate(live):
            for b in live[i + 1 :]:
                if (a, b) not in pairs:
                    visit(a, b)
    links.sort(key=lambda link: link.pair)
    return replace(new, pairs=pairs), tuple(links)
