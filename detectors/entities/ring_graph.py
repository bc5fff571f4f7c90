"""The link graph under :class:`~detectors.entities.rings.RingDetector`: components with expiry and stable ids.

:class:`RingGraph` keeps the live links (:class:`~detectors.entities.events.LinkEvent`) of the last
``horizon_minutes`` of event time as a graph of customers and maintains its connected components:

- **Adding** a link merges two components (the smaller member set moves into the larger), near O(1) amortised.
- **Expiry** is by event time: a link whose ``last_seen_ms`` is more than the horizon behind the watermark drops
  out. Links are kept in a heap by ``last_seen_ms``; every ``sweep_minutes`` of event time (so at most that late)
  the expired ones are removed and only the components that lost a link are re-walked (BFS) and split.
- **Public entities** (:class:`~detectors.entities.events.PublicEntity`) remove every link through the entity at
  once and keep later ones out until the entity's ``until_ms`` (remembered until a link from the public period
  would be late anyway).

Ring ids
    A component gets its id when it is founded by its first link: 16 hex of SHA-256 over that link
    (customers, entity, first_seen). The id must not change while operators look at a ring, so on a **merge**
    the id of the component that became a ring (reached ``min_size``) first is kept; if neither was a ring yet,
    the older component's. "First" and "older" are in the order the graph took its inputs (a checkpointed step
    counter), not by the links' event times: an old pair (a long-shared card) joining a ring must not rename it,
    and equal event times must not make the choice arbitrary. On a **split** the largest part keeps the id (ties:
    the part with the smallest customer id); every other part gets a new id derived from the old id, its smallest
    customer and the watermark. Everything depends only on the sequence of inputs, never on hash seeds.

Example:
    >>> from detectors.entities.keys import EntityKey
    >>> g = RingGraph(RingConfig(horizon_minutes=60))
    >>> g.learn_one(LinkEvent.between("a", "b", EntityKey("device", "d1"), 0, 0))
    >>> g.learn_one(LinkEvent.between("b", "c", EntityKey("device", "d2"), 0, 30 * 60_000))
    >>> first = g.comp_of["a"].ring_id
    >>> g.advance(62 * 60_000)  # a-b (last seen at 0) expired: a leaves, b-c stays, under the same id
    >>> sorted(g.comp_of), g.comp_of["b"].ring_id == first, g.stats()["links"]
    (['b', 'c'], True, 1)
"""

from __future__ import annotations

import hashlib
import heapq
from typing import Any

from detectors.entities.config import RingConfig
from detectors.entities.events import EntityEvent, LinkEvent, PublicEntity, entity_from
from detectors.entities.keys import ENTITY_KINDS, EntityKey
from detectors.entities.ring_scoring import Ring, SharedEntity

__all__ = ["Component", "RingGraph"]

Pair = tuple[str, str]


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]


class Component:
    """A connected component: its id, when it was founded / became a ring, members, live links per entity."""

    __slots__ = ("entities", "founded", "members", "ring_id", "ring_since")

    def __init__(self, ring_id: str, founded: int, members: set[str], ring_since: int | None = None) -> None:
        self.ring_id = ring_id
        self.founded = founded  # the graph's step counter when the component was founded
        self.ring_since = ring_since  # ... and when it last reached min_size (None: not a ring)
        self.members = members
        self.entities: dict[EntityKey, int] = {}

    def precedence(self) -> tuple[int, int, int, str]:
        """Smaller wins a merge: rings before non-rings, then the earlier ring, then the older, then the id."""
        since = self.ring_since
        return (0 if since is not None else 1, since if since is not None else 0, self.founded, self.ring_id)


class RingGraph:
    """Live links and their connected components; see the module docstring (changed by learn_one and advance)."""

    def __init__(self, config: RingConfig) -> None:
        self.config = config
        self.watermark_ms: int | None = None
        self.late_links = 0
        self.public_links = 0
        self.step = 0  # inputs taken: orders foundings and merges without relying on (tied) event times
        self._next_sweep_ms: int | None = None
        # pair -> entity -> (first_ms, last_ms); tuples of ints, which the garbage collector stops tracking
        self._pairs: dict[Pair, dict[EntityKey, tuple[int, int]]] = {}
        self._adj: dict[str, set[str]] = {}
        self._by_entity: dict[EntityKey, set[Pair]] = {}
        self._heap: list[tuple[int, str, str, str, str]] = []  # (last_ms, a, b, kind, value), lazily deleted
        self._links = 0
        self.comp_of: dict[str, Component] = {}
        self.comps: dict[str, Component] = {}
        self._public: dict[EntityKey, int] = {}
        # Components changed (or gone) since the last take_changed(): a reader that re-evaluates rings only when
        # they change (RingDetector.emit_alerts) starts from these. Not checkpointed: a restored graph marks all.
        self.changed: set[str] = set()

    # ---- learning -------------------------------------------------------------------------------------------

    def learn_one(self, event: EntityEvent) -> None:
        """Take one link (or public-entity notice)."""
        self.step += 1
        if isinstance(event, PublicEntity):
            self._learn_public(event)
            return
        wm = self._tick(event.last_seen_ms)
        if event.last_seen_ms < wm - self.config.horizon_ms:
            self.late_links += 1
            return
        until = self._public.get(event.entity)
        if until is not None and event.last_seen_ms <= until:
            self.public_links += 1
            return
        self._add(event)

    def advance(self, ts_ms: int) -> None:
        """Move event time forward without a link, expiring links that are due."""
        self._tick(ts_ms)

    def _tick(self, ts_ms: int) -> int:
        wm = ts_ms if self.watermark_ms is None else max(self.watermark_ms, ts_ms)
        self.watermark_ms = wm
        sweep = self.config.sweep_ms
        if self._next_sweep_ms is None:
            self._next_sweep_ms = (wm // sweep + 1) * sweep
        elif wm >= self._next_sweep_ms:
            self._sweep(wm)
            self._next_sweep_ms = (wm // sweep + 1) * sweep
        return wm

    def _add(self, link: LinkEvent) -> None:
        a, b, entity = link.customer_a, link.customer_b, link.entity
        entities = self._pairs.get((a, b))
        if entities is None:
            entities = self._pairs[(a, b)] = {}
            _add_to(self._adj, a, b)
            _add_to(self._adj, b, a)
        times = entities.get(entity)
        if times is None:
            entities[entity] = (link.first_seen_ms, link.last_seen_ms)
            _add_to(self._by_entity, entity, (a, b))
            self._links += 1
            heapq.heappush(self._heap, (link.last_seen_ms, a, b, entity.kind, entity.value))
        else:
            first, last = min(times[0], link.first_seen_ms), max(times[1], link.last_seen_ms)
            if (first, last) != times:
                entities[entity] = (first, last)
            if last > times[1]:
                heapq.heappush(self._heap, (link.last_seen_ms, a, b, entity.kind, entity.value))
                if len(self._heap) > 4 * self._links + 1024:
                    self._compact_heap()
        comp = self._join(a, b, link)
        self.changed.add(comp.ring_id)
        if times is None:
            comp.entities[entity] = comp.entities.get(entity, 0) + 1

    def _join(self, a: str, b: str, link: LinkEvent) -> Component:
        ca, cb = self.comp_of.get(a), self.comp_of.get(b)
        if ca is None and cb is None:
            seed = _digest("ring/v1", a, b, link.entity.kind, link.entity.value, str(link.first_seen_ms))
            comp = Component(self._unique(seed), self.step, {a, b})
            self.comps[comp.ring_id] = comp
            self.comp_of[a] = self.comp_of[b] = comp
        elif ca is None or cb is None:
            comp = self._attach(cb, a) if ca is None else self._attach(ca, b)
        elif ca is not cb:
            comp = self._merge(ca, cb)
        else:
            return ca
        if comp.ring_since is None and len(comp.members) >= self.config.min_size:
            comp.ring_since = self.step
        return comp

    def _attach(self, comp: Component | None, newcomer: str) -> Component:
        if comp is None:  # pragma: no cover - the caller checked that exactly one end is new
            raise RuntimeError("attach needs the component of the other end")
        comp.members.add(newcomer)
        self.comp_of[newcomer] = comp
        return comp

    def _merge(self, x: Component, y: Component) -> Component:
        keep, lose = (x, y) if x.precedence() <= y.precedence() else (y, x)
        big, small = (x, y) if len(x.members) >= len(y.members) else (y, x)
        ring_id, founded, since = keep.ring_id, keep.founded, keep.ring_since
        del self.comps[lose.ring_id]
        self.changed.add(lose.ring_id)
        for m in small.members:
            self.comp_of[m] = big
        big.members |= small.members
        for entity, n in small.entities.items():
            big.entities[entity] = big.entities.get(entity, 0) + n
        big.ring_id, big.founded, big.ring_since = ring_id, founded, since
        self.comps[ring_id] = big
        return big

    def _learn_public(self, event: PublicEntity) -> None:
        self._tick(event.ts_ms)
        entity = event.entity
        self._public[entity] = max(self._public.get(entity, event.until_ms), event.until_ms)
        affected: dict[str, Component] = {}
        for a, b in sorted(self._by_entity.get(entity, ())):
            comp = self._remove_link(a, b, entity)
            affected[comp.ring_id] = comp
        for ring_id in sorted(affected):
            self._resolve(affected[ring_id])

    # ---- expiry -----------------------------------------------------------------------------------------------

    def _sweep(self, wm: int) -> None:
        cutoff = wm - self.config.horizon_ms
        affected: dict[str, Component] = {}
        heap = self._heap
        while heap and heap[0][0] < cutoff:
            last, a, b, kind, value = heapq.heappop(heap)
            entity = EntityKey(kind, value)  # type: ignore[arg-type]  # pushed from an EntityKey
            times = self._pairs.get((a, b), {}).get(entity)
            if times is None or times[1] != last:
                continue  # refreshed or already removed: a stale heap entry
            comp = self._remove_link(a, b, entity)
            affected[comp.ring_id] = comp
        for ring_id in sorted(affected):
            self._resolve(affected[ring_id])
        # Ids of components gone need not wait for a reader that may never come: keep the set bounded (amortised).
        if len(self.changed) > 2 * len(self.comps) + 1024:
            self.changed.intersection_update(self.comps.keys())
        # Kept past until_ms while a link from the public period could still arrive without being late.
        for entity in [e for e, until in self._public.items() if until < cutoff]:
            del self._public[entity]

    def _remove_link(self, a: str, b: str, entity: EntityKey) -> Component:
        entities = self._pairs[(a, b)]
        del entities[entity]
        self._links -= 1
        pairs = self._by_entity[entity]
        pairs.discard((a, b))
        if not pairs:
            del self._by_entity[entity]
        if not entities:
            del self._pairs[(a, b)]
            self._adj[a].discard(b)
            self._adj[b].discard(a)
        comp = self.comp_of[a]
        left = comp.entities[entity] - 1
        if left:
            comp.entities[entity] = left
        else:
            del comp.entities[entity]
        return comp

    def _resolve(self, comp: Component) -> None:
        """Re-walk a component that lost links: drop lone customers, split it into its connected parts."""
        self.changed.add(comp.ring_id)
        parts: list[set[str]] = []
        seen: set[str] = set()
        for start in sorted(comp.members):
            if start in seen:
                continue
            if not self._adj.get(start):
                self._adj.pop(start, None)
                del self.comp_of[start]
                continue
            part = {start}
            frontier = [start]
            while frontier:
                for n in self._adj[frontier.pop()]:
                    if n not in part:
                        part.add(n)
                        frontier.append(n)
            seen |= part
            parts.append(part)
        if not parts:
            del self.comps[comp.ring_id]
            return
        if len(parts) == 1 and len(parts[0]) == len(comp.members):
            return
        keeper = max(range(len(parts)), key=lambda i: (len(parts[i]), -i))  # parts come ordered by smallest member
        wm = self._wm()
        for i, part in enumerate(parts):
            if i == keeper:
                target = comp
                target.members = part
                if len(part) < self.config.min_size:
                    target.ring_since = None
            else:
                seed = _digest("ring-split/v1", comp.ring_id, min(part), str(wm))
                target = Component(self._unique(seed), self.step, part)
                if len(part) >= self.config.min_size:
                    target.ring_since = self.step
                self.comps[target.ring_id] = target
                self.changed.add(target.ring_id)
                for m in part:
                    self.comp_of[m] = target
            target.entities = self._count_entities(part)

    def _count_entities(self, members: set[str]) -> dict[EntityKey, int]:
        counts: dict[EntityKey, int] = {}
        for m in members:
            for n in self._adj[m]:
                if m < n:
                    for entity in self._pairs[(m, n)]:
                        counts[entity] = counts.get(entity, 0) + 1
        return counts

    def _compact_heap(self) -> None:
        self._heap = [(t[1], a, b, e.kind, e.value) for (a, b), es in self._pairs.items() for e, t in es.items()]
        heapq.heapify(self._heap)

    def _unique(self, ring_id: str) -> str:
        while ring_id in self.comps:
            ring_id = _digest("ring-again/v1", ring_id)
        return ring_id

    def _wm(self) -> int:
        return self.watermark_ms if self.watermark_ms is not None else 0

    # ---- reading -------------------------------------------------------------------------------------------

    def view(self, comp: Component) -> Ring:
        """The component as a :class:`Ring` value (members, shared entities, link count and times)."""
        sharing: dict[EntityKey, set[str]] = {}
        first, last, links = None, None, 0
        for m in comp.members:
            for n in self._adj[m]:
                if m < n:
                    for entity, (f, t) in self._pairs[(m, n)].items():
                        sharing.setdefault(entity, set()).update((m, n))
                        first = f if first is None else min(first, f)
                        last = t if last is None else max(last, t)
                        links += 1
        entities = tuple(
            SharedEntity(e, tuple(sorted(ms))) for e, ms in sorted(sharing.items(), key=lambda kv: _kind_order(kv[0]))
        )
        return Ring(comp.ring_id, tuple(sorted(comp.members)), entities, links, first or 0, last or 0)

    def take_changed(self) -> set[str]:
        """The ids of components changed or gone since the last call (and forget them)."""
        changed, self.changed = self.changed, set()
        return changed

    def own_entities(self, customer_id: str) -> list[EntityKey]:
        """The entities through which ``customer_id`` has live links."""
        return list({e for n in self._adj.get(customer_id, ()) for e in self._pairs[_pair(customer_id, n)]})

    def stats(self) -> dict[str, int]:
        """Sizes, for metrics and benchmarks."""
        size = self.config.min_size
        return {
            "links": self._links,
            "customers": len(self.comp_of),
            "components": len(self.comps),
            "rings": sum(1 for c in self.comps.values() if len(c.members) >= size),
            "public_entities": len(self._public),
            "heap": len(self._heap),
            "late_links": self.late_links,
            "public_links": self.public_links,
        }

    # ---- checkpoint -----------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready checkpoint, sorted (equal graphs give equal bytes)."""
        return {
            "wm": self.watermark_ms,
            "next_sweep": self._next_sweep_ms,
            "step": self.step,
            "late": self.late_links,
            "public_links": self.public_links,
            "links": sorted(
                [a, b, e.kind, e.value, t[0], t[1]] for (a, b), es in self._pairs.items() for e, t in es.items()
            ),
            "components": sorted(
                [c.ring_id, c.founded, c.ring_since, sorted(c.members)] for c in self.comps.values()
            ),
            "public": sorted([e.kind, e.value, until] for e, until in self._public.items()),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], config: RingConfig) -> RingGraph:
        """Inverse of :meth:`to_dict`."""
        g = cls(config)
        g.watermark_ms, g._next_sweep_ms = data["wm"], data["next_sweep"]
        g.step, g.late_links, g.public_links = int(data["step"]), int(data["late"]), int(data["public_links"])
        for a, b, kind, value, first, last in data["links"]:
            entity = entity_from(kind, value)
            g._pairs.setdefault((a, b), {})[entity] = (int(first), int(last))
            _add_to(g._adj, a, b)
            _add_to(g._adj, b, a)
            _add_to(g._by_entity, entity, (a, b))
            g._links += 1
        g._compact_heap()
        for ring_id, founded, since, members in data["components"]:
            comp = Component(ring_id, int(founded), set(members), since)
            comp.entities = g._count_entities(comp.members)
            g.comps[ring_id] = comp
            for m in members:
                g.comp_of[m] = comp
        g._public = {entity_from(k, v): int(until) for k, v, until in data["public"]}
        g.changed = set(g.comps)
        return g


def _add_to(index: dict[Any, set[Any]], key: Any, item: Any) -> None:
    members = index.get(key)
    if members is None:
        index[key] = {item}
    else:
        members.add(item)


def _pair(x: str, y: str) -> Pair:
    return (x, y) if x < y else (y, x)


def _kind_order(entity: EntityKey) -> tuple[int, str]:
    return ENTITY_KINDS.index(entity.kind), entity.value
