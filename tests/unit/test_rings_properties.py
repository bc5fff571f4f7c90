"""Ring detection against a brute-force oracle on seeded random link streams (hypothesis is not a project dependency).

The oracle replays the same stream naively: live links are the latest ``last_seen`` per (pair, entity) within the
horizon behind the sweep time, minus links through public entities; components come from a fresh union-find.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from detectors.entities.config import RingConfig
from detectors.entities.events import EntityEvent, LinkEvent, PublicEntity
from detectors.entities.keys import ENTITY_KINDS, EntityKey, EntityKind
from detectors.entities.rings import RingDetector
from schemas.outputs import TIERS, Tier

MIN = 60_000
T0 = 1_767_603_600_000
KINDS: tuple[EntityKind, ...] = ("device", "ip", "bank_card")
LinkKey = tuple[str, str, EntityKey]


def stream(seed: int, n: int = 400, customers: int = 18) -> list[EntityEvent]:
    rng = random.Random(seed)
    t = T0
    out: list[EntityEvent] = []
    for _ in range(n):
        t += rng.choice((0, 10_000, MIN, 5 * MIN, 20 * MIN))
        if rng.random() < 0.02:
            entity = EntityKey(rng.choice(KINDS), f"e{rng.randrange(6)}")
            out.append(PublicEntity(entity, 99, False, 20, t, t + rng.choice((0, 30 * MIN, 3 * 60 * MIN))))
            continue
        a, b = rng.sample(range(customers), 2)
        last = t - (rng.randrange(90 * MIN) if rng.random() < 0.15 else 0)  # some out of order
        first = last - rng.randrange(60 * MIN)
        entity = EntityKey(rng.choice(KINDS), f"e{rng.randrange(6)}")
        out.append(LinkEvent.between(f"c{a:02d}", f"c{b:02d}", entity, first, last))
    return out


class Oracle:
    def __init__(self, horizon_ms: int) -> None:
        self.horizon_ms = horizon_ms
        self.links: dict[LinkKey, int] = {}
        self.public: dict[EntityKey, int] = {}

    def learn(self, event: EntityEvent) -> None:
        if isinstance(event, PublicEntity):
            self.public[event.entity] = max(self.public.get(event.entity, event.until_ms), event.until_ms)
            self.links = {k: v for k, v in self.links.items() if k[2] != event.entity}
            return
        until = self.public.get(event.entity)
        if until is not None and event.last_seen_ms <= until:
            return
        key = (event.customer_a, event.customer_b, event.entity)
        self.links[key] = max(self.links.get(key, event.last_seen_ms), event.last_seen_ms)

    def components(self, at_ms: int) -> set[frozenset[str]]:
        parent: dict[str, str] = {}

        def find(x: str) -> str:
            while parent.setdefault(x, x) != x:
                x = parent[x]
            return x

        for (a, b, _), last in self.links.items():
            if last >= at_ms - self.horizon_ms:
                parent[find(a)] = find(b)
        groups: dict[str, set[str]] = {}
        for x in parent:
            groups.setdefault(find(x), set()).add(x)
        return {frozenset(g) for g in groups.values()}


def components_of(rd: RingDetector) -> set[frozenset[str]]:
    return {frozenset(members) for _, _, _, members in rd.to_dict()["components"]}


@pytest.mark.parametrize("sweep_minutes", [1, 7])
@pytest.mark.parametrize("seed", range(40))
def test_components_match_the_oracle_after_every_sweep(seed: int, sweep_minutes: int) -> None:
    config = RingConfig(horizon_minutes=120, sweep_minutes=sweep_minutes, ring_kinds=ENTITY_KINDS)
    rd = RingDetector(config)
    oracle = Oracle(config.horizon_ms)
    for i, event in enumerate(stream(seed)):
        rd.learn_one(event)
        oracle.learn(event)
        if i % 7 == 0:
            assert rd.watermark_ms is not None
            at = (rd.watermark_ms // config.sweep_ms + 1) * config.sweep_ms  # a sweep boundary: expiry is exact
            rd.advance(at)
            expected = oracle.components(at)
            assert components_of(rd) == expected
            assert {frozenset(r.members) for r in rd.rings()} == {c for c in expected if len(c) >= 3}
            ids = [c[0] for c in rd.to_dict()["components"]]
            assert len(ids) == len(set(ids))


@pytest.mark.parametrize("seed", range(20))
def test_ring_ids_change_only_by_merging_into_an_earlier_ring(seed: int) -> None:
    # Nothing expires: growth and merges only.
    rd = RingDetector(RingConfig(horizon_minutes=10 * 1440, ring_kinds=ENTITY_KINDS))
    since: dict[str, int] = {}
    ring_of: dict[str, str] = {}
    for step, event in enumerate(e for e in stream(seed, 150, 40) if isinstance(e, LinkEvent)):
        rd.learn_one(event)
        for ring in rd.rings():
            since.setdefault(ring.ring_id, step)
            for m in ring.members:
                before = ring_of.get(m)
                if before is not None and before != ring.ring_id:
                    assert since[ring.ring_id] <= since[before], (m, before, ring.ring_id)
                ring_of[m] = ring.ring_id


@pytest.mark.parametrize("seed", range(10))
def test_same_stream_same_everything(seed: int) -> None:
    def run() -> tuple[Any, ...]:
        rd = RingDetector(RingConfig(horizon_minutes=120, ring_kinds=ENTITY_KINDS))
        alerts = []
        for event in stream(seed):
            rd.learn_one(event)
            alerts += [a.to_dict() for a in rd.emit_alerts({"c01": "warning", "c02": "attention"})]
        return rd.to_dict(), alerts, [rd.score_one(f"c{i:02d}", {"c03": "warning"}) for i in range(18)]

    assert run() == run()


@pytest.mark.parametrize("seed", range(10))
def test_checkpoint_anywhere_and_continue_alike(seed: int) -> None:
    config = RingConfig(horizon_minutes=120, ring_kinds=ENTITY_KINDS)  # mechanics over every kind
    events = stream(seed)
    cut = len(events) // 3 + seed
    straight = RingDetector(config)
    for event in events:
        straight.learn_one(event)
    resumed = RingDetector(config)
    for event in events[:cut]:
        resumed.learn_one(event)
    resumed = RingDetector.from_dict(resumed.to_dict(), config)
    for event in events[cut:]:
        resumed.learn_one(event)
    assert resumed.to_dict() == straight.to_dict()


@pytest.mark.parametrize("seed", range(15))
def test_incremental_alerts_equal_a_full_re_evaluation(seed: int) -> None:
    # emit_alerts scores only rings that changed or have tiered members; a detector restored from its checkpoint
    # before every call scores every ring. Both must emit the same alerts, with tiers coming and going.
    rng = random.Random(seed)
    config = RingConfig(horizon_minutes=120, ring_kinds=ENTITY_KINDS)  # mechanics over every kind
    incremental, full = RingDetector(config), RingDetector(config)
    names = [f"c{i:02d}" for i in range(18)]
    tiers: dict[str, Tier] = {}
    for i, event in enumerate(stream(seed)):
        incremental.learn_one(event)
        full.learn_one(event)
        if i % 5 == 0:
            tiers = {c: rng.choice(TIERS) for c in rng.sample(names, rng.randrange(4))}
            full = RingDetector.from_dict(full.to_dict(), config)
            assert incremental.emit_alerts(tiers) == full.emit_alerts(tiers)
