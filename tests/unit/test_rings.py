"""Ring detection: chains and decoys end to end, id stability through growth, merges and splits, expiry, scores."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from detectors.base import DetectorScore
from detectors.entities.config import EntityConfig, RingConfig
from detectors.entities.entity_state import EntityState, observe
from detectors.entities.events import LinkEvent, PublicEntity
from detectors.entities.keys import ENTITY_KINDS, EntityKey, EntityKind, entity_keys
from detectors.entities.rings import RingDetector
from schemas.behavior import BEHAVIOR_ADAPTER, BehaviorBase
from schemas.common import to_ms
from schemas.outputs import Tier

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
T0 = 1_767_603_600_000
ROOT = Path(__file__).resolve().parents[2]


def login(n: int, customer: str, device: str, ip: str, ts_ms: int) -> BehaviorBase:
    parsed = BEHAVIOR_ADAPTER.validate_python({
        "event_type": "login", "event_id": f"e{n}", "customer_id": customer, "ts": ts_ms, "device_id": device,
        "ip": ip, "channel": "app_android", "method": "sms", "success": True,
    })  # fmt: skip
    assert isinstance(parsed, BehaviorBase)
    return parsed


class Pipeline:
    """What the stream layer will do: re-key by entity, observe, feed links to the ring detector."""

    def __init__(self, entity_config: EntityConfig | None = None, ring_config: RingConfig | None = None) -> None:
        self.config = entity_config or EntityConfig()
        self.states: dict[EntityKey, EntityState] = {}
        self.rings = RingDetector(ring_config)
        self.alerts: list[Any] = []

    def feed(self, events: Iterable[BehaviorBase], tiers: dict[str, Tier] | None = None) -> None:
        for event in events:
            for key in entity_keys(event):
                state, out = observe(self.states.get(key) or EntityState(key), event.customer_id, to_ms(event.ts),
                                     self.config)  # fmt: skip
                self.states[key] = state
                for e in out:
                    self.rings.learn_one(e)
            self.alerts += self.rings.emit_alerts(tiers)


def link(
    a: str, b: str, entity: tuple[EntityKind, str] = ("device", "d_1"), first: int = T0, last: int | None = None
) -> LinkEvent:
    return LinkEvent.between(a, b, EntityKey(*entity), first, first if last is None else last)


def members(rd: RingDetector) -> list[tuple[str, ...]]:
    return [r.members for r in rd.rings()]


# ---- end to end: chains and decoys ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", [3, 4, 7, 15, 30])
def test_chain_of_shared_devices_is_one_ring(size: int) -> None:
    # c_00 - c_01 via d_00, c_01 - c_02 via d_01, ...; every customer on its own mobile IP.
    names = [f"c_{i:02d}" for i in range(size)]
    events = []
    for i in range(size - 1):
        t = T0 + i * 7 * MIN
        events.append(login(2 * i, names[i], f"d_{i:02d}", f"100.64.{i}.1", t))
        events.append(login(2 * i + 1, names[i + 1], f"d_{i:02d}", f"100.65.{i}.1", t + MIN))
    p = Pipeline()
    p.feed(events)
    [ring] = p.rings.rings()
    assert ring.members == tuple(names)
    assert [str(s.entity) for s in ring.entities] == [f"device d_{i:02d}" for i in range(size - 1)]
    assert ring.kinds == ("device",) and ring.links == size - 1
    score = p.rings.score_one(names[0])
    assert score.detector_id == "ring_membership" and score.score > 0
    assert score.reasons[0].message == f"member of ring {ring.ring_id} ({size} customers) via device d_00"
    assert (score.reasons[0].code, score.reasons[0].feature, score.reasons[0].value) == (
        "ring_member", "ring_score", score.score,
    )


def test_family_of_two_sharing_a_device_is_no_ring() -> None:
    p = Pipeline()
    p.feed([login(0, "c_mum", "d_home", "100.64.0.1", T0), login(1, "c_son", "d_home", "100.64.0.1", T0 + MIN)])
    assert p.rings.rings() == () and p.alerts == []
    assert p.rings.score_one("c_mum") == DetectorScore("ring_membership", 0.0)
    assert p.rings.stats()["links"] == 1  # the link is there; two customers are not a ring


def test_public_wifi_with_200_customers_is_no_ring() -> None:
    p = Pipeline()
    # 200 strangers, own devices, one cafe address, within 20 minutes; some risky customers among them.
    tiers: dict[str, Tier] = {f"c_{i:03d}": "warning" for i in range(0, 200, 50)}
    p.feed([login(i, f"c_{i:03d}", f"d_{i:03d}", "203.0.113.50", T0 + i * 6000) for i in range(200)])
    assert p.alerts == []  # not even while the address filled up towards its ceiling
    assert p.rings.rings() == ()
    assert p.states[EntityKey("ip", "203.0.113.50")].is_public()
    assert p.states[EntityKey("net24", "203.0.113.0/24")].is_public()
    assert p.rings.stats()["links"] == 0 and p.rings.stats()["public_entities"] == 2
    assert all(p.rings.score_one(c, tiers).score == 0 for c in tiers)


def test_without_public_notices_the_crowd_before_the_ceiling_stays_a_ring() -> None:
    # Why the ring detector must get PublicEntity notices, not only links: the first customers of the cafe address
    # were linked before it went public. Kept, they form a (silent: address-only) ring for a whole day.
    config = EntityConfig()
    states: dict[EntityKey, EntityState] = {}
    links_only = RingDetector(RingConfig(ring_kinds=ENTITY_KINDS))  # addresses joining rings, as configurable
    for i in range(200):
        event = login(i, f"c_{i:03d}", f"d_{i:03d}", "203.0.113.50", T0 + i * 6000)
        for key in entity_keys(event):
            states[key], out = observe(states.get(key) or EntityState(key), event.customer_id, to_ms(event.ts), config)
            for e in out:
                if isinstance(e, LinkEvent):
                    links_only.learn_one(e)
    [crowd] = links_only.rings()
    assert len(crowd.members) == 40 and crowd.kinds == ("ip", "net24")  # net24's ceiling is 40 customers
    assert links_only.emit_alerts() == ()  # address-only rings stay below notice with the default weights


def test_ring_behind_one_address_with_shared_devices_alerts() -> None:
    # Ten accounts on three phones and one address within the hour: a device farm. Rings join on devices (the
    # default ring_kinds), so each phone's accounts are a ring; the shared address does not glue them together.
    events = [login(i, f"c_{i:02d}", f"d_{i % 3}", "198.51.100.20", T0 + i * 3 * MIN) for i in range(10)]
    p = Pipeline()
    p.feed(events)
    rings = p.rings.rings()
    assert sorted(len(r.members) for r in rings) == [3, 3, 4] and {r.kinds for r in rings} == {("device",)}
    assert "attention" in [a.tier for a in p.alerts]


def test_a_crowd_behind_one_address_with_one_shared_phone_is_not_a_ring() -> None:
    # A mall's Wi-Fi: 200 strangers over the afternoon, two of whom share a phone (a couple). Address links do
    # not join rings by default, so the crowd never becomes a 'device ring' because of the couple.
    events = [login(i, f"c_{i:03d}", f"d_{i:03d}", "203.0.113.50", T0 + i * 60_000) for i in range(200)]
    events.append(login(200, "c_000", "d_001", "203.0.113.50", T0 + 200 * 60_000))
    p = Pipeline()
    p.feed(events)
    assert p.rings.rings() == () and p.alerts == []


# ---- ids: growth, merges, splits --------------------------------------------------------------------------------


def test_ring_id_is_stable_as_the_ring_grows() -> None:
    rd = RingDetector()
    rd.learn_one(link("c_1", "c_2", ("device", "d_1")))
    rd.learn_one(link("c_2", "c_3", ("device", "d_2")))
    [ring] = rd.rings()
    for i in range(3, 40):
        rd.learn_one(link(f"c_{i}", f"c_{i + 1}", ("device", f"d_{i}"), T0 + i * MIN))
        assert [r.ring_id for r in rd.rings()] == [ring.ring_id]


def test_merge_keeps_the_id_of_the_earlier_ring() -> None:
    rd = RingDetector()
    for a, b in [("a1", "a2"), ("a2", "a3")]:
        rd.learn_one(link(a, b, ("device", "da"), T0))
    for a, b in [("b1", "b2"), ("b2", "b3"), ("b3", "b4")]:  # larger, but a ring later
        rd.learn_one(link(a, b, ("device", "db"), T0 + HOUR))
    first, second = (rd.ring_of("a1"), rd.ring_of("b1"))
    assert first is not None and second is not None and first.ring_id != second.ring_id
    rd.learn_one(link("a3", "b1", ("bank_card", "bc_1"), T0 + 2 * HOUR))
    [merged] = rd.rings()
    assert merged.ring_id == first.ring_id and len(merged.members) == 7
    assert merged.kinds == ("device", "bank_card")


def test_an_older_pair_joining_a_ring_does_not_take_its_id() -> None:
    rd = RingDetector()
    rd.learn_one(link("p1", "p2", ("phone", "ph_1"), T0 - 10 * DAY, T0))  # a pair, founded long ago
    for a, b in [("r1", "r2"), ("r2", "r3")]:
        rd.learn_one(link(a, b, ("device", "dr"), T0 + HOUR))
    [ring] = rd.rings()
    rd.learn_one(link("p2", "r1", ("device", "dx"), T0 + 2 * HOUR))
    [merged] = rd.rings()
    assert merged.ring_id == ring.ring_id and len(merged.members) == 5


def test_split_by_expiry_keeps_the_id_on_the_largest_part() -> None:
    rd = RingDetector(RingConfig(horizon_minutes=60))
    rd.learn_one(link("x1", "x2", ("device", "d1"), T0, T0))  # the bridge, expires first
    for a, b in [("x2", "x3"), ("x3", "x4"), ("x4", "x5")]:
        rd.learn_one(link(a, b, ("device", "d2"), T0, T0 + 30 * MIN))
    rd.learn_one(link("x1", "y1", ("device", "d3"), T0, T0 + 30 * MIN))
    rd.learn_one(link("y1", "y2", ("device", "d4"), T0, T0 + 30 * MIN))
    [whole] = rd.rings()
    assert len(whole.members) == 7
    rd.advance(T0 + 62 * MIN)  # x1-x2 (last T0) expired; the rest (last T0+30m) live
    big, small = sorted(rd.rings(), key=lambda r: -len(r.members))
    assert big.members == ("x2", "x3", "x4", "x5") and big.ring_id == whole.ring_id
    assert small.members == ("x1", "y1", "y2") and small.ring_id != whole.ring_id
    rd.advance(T0 + 92 * MIN)
    assert rd.rings() == () and rd.stats()["customers"] == 0 and rd.stats()["components"] == 0


def test_outputs_do_not_depend_on_the_hash_seed() -> None:
    script = (
        "import hashlib, json\n"
        "from tests.unit.test_rings import scripted_run\n"
        "print(hashlib.sha256(json.dumps(scripted_run(), sort_keys=True).encode()).hexdigest())\n"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT,
            env={"PYTHONHASHSEED": str(seed), "PATH": ""},
        ).stdout.strip()
        for seed in (0, 1, 12345)
    }  # fmt: skip
    assert len(digests) == 1 and len(next(iter(digests))) == 64


def scripted_run() -> dict[str, Any]:
    """A run with merges, splits, public retraction and alerts; its full output, for the hash-seed test."""
    rd = RingDetector(RingConfig(horizon_minutes=120))
    out: list[Any] = []
    for i in range(60):
        a, b = f"c_{(i * 7) % 23:02d}", f"c_{(i * 11 + 3) % 23:02d}"
        if a != b:
            rd.learn_one(LinkEvent.between(a, b, EntityKey("device", f"d_{i % 9}"), T0 + i * 5 * MIN, T0 + i * 5 * MIN))
        if i == 30:
            rd.learn_one(PublicEntity(EntityKey("device", "d_3"), 31, False, 30, T0 + i * 5 * MIN, T0 + DAY))
        out += [a.to_dict() for a in rd.emit_alerts({"c_05": "warning", "c_07": "attention"})]
    return {"state": rd.to_dict(), "alerts": out, "rings": [[r.ring_id, list(r.members)] for r in rd.rings()]}


# ---- expiry, public entities, late links -------------------------------------------------------------------------


def test_links_older_than_the_horizon_drop_out_within_one_sweep() -> None:
    rd = RingDetector()  # 24 h horizon, 1-minute sweeps
    rd.learn_one(link("c_1", "c_2", first=T0))
    rd.learn_one(link("c_2", "c_3", first=T0))
    assert len(rd.rings()) == 1
    rd.advance(T0 + DAY)
    assert len(rd.rings()) == 1  # exactly at the horizon: still live
    rd.advance(T0 + DAY + MIN)
    assert rd.rings() == ()


def test_refreshed_links_stay_live() -> None:
    rd = RingDetector()
    for i in range(5):
        rd.learn_one(link("c_1", "c_2", first=T0, last=T0 + i * 20 * HOUR))
        rd.learn_one(link("c_2", "c_3", first=T0, last=T0 + i * 20 * HOUR))
        rd.advance(T0 + i * 20 * HOUR + 1)
        assert len(rd.rings()) == 1
    assert rd.stats()["links"] == 2


def test_late_links_are_counted_not_added() -> None:
    rd = RingDetector()
    rd.learn_one(link("c_1", "c_2", first=T0 + 2 * DAY))
    rd.learn_one(link("c_3", "c_4", first=T0))
    assert rd.late_links == 1 and rd.stats()["links"] == 1


def test_public_entity_retracts_its_links_and_keeps_new_ones_out() -> None:
    rd = RingDetector()
    shared = EntityKey("device", "d_emulator")
    for i in range(5):
        rd.learn_one(LinkEvent.between("c_0", f"c_{i + 1}", shared, T0, T0 + i * MIN))
    rd.learn_one(link("c_1", "c_9", ("bank_card", "bc_1"), T0 + 5 * MIN))
    assert len(rd.rings()) == 1
    rd.learn_one(PublicEntity(shared, 31, False, 30, T0 + 6 * MIN, T0 + DAY))
    assert rd.rings() == () and rd.stats()["links"] == 1
    rd.learn_one(LinkEvent.between("c_0", "c_7", shared, T0, T0 + 7 * MIN))
    assert rd.public_links == 1 and rd.stats()["links"] == 1


# ---- scores and alerts ------------------------------------------------------------------------------------------


def ring_of_three() -> RingDetector:
    # size_saturation 10 (not the default 4) keeps three customers on one device below notice until a member
    # is risky: the hand-worked scores below (0.3 x 0.6 = 0.18, 0.18 + 0.82 x 0.5 x 0.6 = 0.426) test the mechanics.
    rd = RingDetector(RingConfig(size_saturation=10))
    rd.learn_one(link("c_1", "c_2", ("device", "d_1")))
    rd.learn_one(link("c_2", "c_3", ("device", "d_2")))
    return rd


def test_member_score_counts_the_other_members_risk_only() -> None:
    rd = ring_of_three()
    tiers: dict[str, Tier] = {"c_1": "warning"}
    own = rd.score_one("c_1", tiers)
    other = rd.score_one("c_3", tiers)
    assert own.score == 0.18 and other.score == 0.426
    assert [r.code for r in own.reasons] == [r.code for r in other.reasons] == ["ring_member"]
    assert own.reasons[0].message.endswith("(3 customers) via device d_1")
    assert other.reasons[0].message.endswith("(3 customers) via device d_2; other members: 1 at 预警 warning")
    assert rd.score_one("c_2").reasons[0].message.endswith("(3 customers) via device d_1, device d_2")


def test_scoring_does_not_change_the_detector() -> None:
    rd = ring_of_three()
    before = json.dumps(rd.to_dict())
    rd.score_one("c_1", {"c_2": "warning"})
    rd.ring_alerts({"c_2": "warning"})
    rd.rings()
    assert json.dumps(rd.to_dict()) == before


def test_alerts_are_emitted_on_first_tier_escalation_and_new_members_only() -> None:
    rd = ring_of_three()
    assert rd.emit_alerts() == ()  # 0.18: below notice
    [notice] = rd.emit_alerts({"c_1": "warning"})
    assert notice.tier == "notice" and notice.members == ("c_1", "c_2", "c_3") and notice.previous_alert_id is None
    assert notice.risky_members == ("c_1",)
    assert rd.emit_alerts({"c_1": "warning"}) == ()
    assert rd.emit_alerts() == ()  # the tier fell: nothing new
    rd.learn_one(link("c_3", "c_4", ("device", "d_3")))
    [grown] = rd.emit_alerts({"c_1": "warning"})
    assert grown.members == ("c_1", "c_2", "c_3", "c_4") and grown.previous_alert_id == notice.alert_id
    [escalated] = rd.emit_alerts({"c_1": "warning", "c_2": "warning", "c_3": "warning"})
    assert escalated.tier == "attention" and escalated.ring_id == notice.ring_id
    assert [r.code for r in escalated.reasons] == ["ring_size", "ring_risky_members"]
    assert escalated.reasons[1].message == "members c_1, c_2, c_3: 3 at 预警 warning"
    # Same input, same ids (replay-safe).
    again = ring_of_three()
    assert again.emit_alerts({"c_1": "warning"})[0].alert_id == notice.alert_id


def test_ring_alert_names_every_member_and_entity() -> None:
    rd = RingDetector()
    for i in range(12):
        rd.learn_one(link(f"c_{i:02d}", f"c_{i + 1:02d}", ("device", f"d_{i}")))
    rd.learn_one(link("c_00", "c_12", ("bank_card", "bc_1")))
    [alert] = rd.emit_alerts()
    assert len(alert.members) == 13 and len(alert.entities) == 13 and alert.tier == "warning"
    assert alert.to_dict()["entities"][-1] == {"kind": "bank_card", "value": "bc_1", "members": ["c_00", "c_12"]}
    assert alert.reasons[0].message.endswith("and 8 more (shares device, bank_card, kind score 0.92)")


# ---- checkpoint -------------------------------------------------------------------------------------------------


def test_to_dict_from_dict_round_trip_and_continue_alike() -> None:
    run = scripted_run()
    config = RingConfig(horizon_minutes=120)
    restored = RingDetector.from_dict(json.loads(json.dumps(run["state"])), config)
    assert restored.to_dict() == run["state"]
    original = RingDetector.from_dict(run["state"], config)
    for rd in (original, restored):
        for i in range(60, 90):
            rd.learn_one(LinkEvent.between("c_01", f"c_{i}", EntityKey("phone", f"p_{i % 4}"), T0 + i * 5 * MIN,
                                           T0 + i * 5 * MIN))  # fmt: skip
    assert original.to_dict() == restored.to_dict()
    assert [r.ring_id for r in original.rings()] == [r.ring_id for r in restored.rings()]
