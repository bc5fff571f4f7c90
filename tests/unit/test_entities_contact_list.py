"""The address book as an entity: keys, its small-book minimum, links, rings through it, and the empty-book decoy."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from pydantic import ValidationError

from detectors.entities.config import ContactListPolicy, EntityConfig, RingConfig
from detectors.entities.entity_state import EntityState, observe
from detectors.entities.events import LinkEvent
from detectors.entities.keys import MIN_CONTACTS, EntityKey, entity_keys
from detectors.entities.network import OfflineNetwork
from detectors.entities.ring_scoring import ring_score
from schemas import serde
from schemas.allowlist import AllowListEntry, allowlist_key
from schemas.behavior import BEHAVIOR_ADAPTER, BehaviorBase
from schemas.clickhouse.ddl import Features, render_ddl
from schemas.entities import EntityLink, EntityRef
from streams.entity_agent import EntityFanout

MIN = 60_000
DAY = 24 * 60 * MIN
T0 = 1_767_603_600_000  # 2026-01-05 09:00 UTC
EMPTY = "h_e3b0c44298fc1c14"  # one hash for every empty book
BOOK = "h_5a1f00c0ffee0001"  # an operator's prepared book


def upload(customer: str, count: int, book: str | None, ts_ms: int = T0, ip: str = "127.0.0.1") -> BehaviorBase:
    """An upload from the customer's own device; the default address is unroutable, so only the book can link."""
    parsed = BEHAVIOR_ADAPTER.validate_python({
        "event_type": "contact_upload", "event_id": f"e_{customer}_{ts_ms}", "customer_id": customer, "ts": ts_ms,
        "device_id": f"d_{customer}", "ip": ip, "channel": "app_android",
        "contacts_count": count, "contacts_hash": book,
    })  # fmt: skip
    assert isinstance(parsed, BehaviorBase)
    return parsed


def login(customer: str, device: str, ts_ms: int) -> BehaviorBase:
    parsed = BEHAVIOR_ADAPTER.validate_python({
        "event_type": "login", "event_id": f"l_{customer}_{ts_ms}", "customer_id": customer, "ts": ts_ms,
        "device_id": device, "ip": "10.1.2.3", "channel": "app_android", "method": "sms", "success": True,
    })  # fmt: skip
    assert isinstance(parsed, BehaviorBase)
    return parsed


# ---- keys ---------------------------------------------------------------------------------------------------------


def test_an_upload_with_a_hash_names_its_book_last() -> None:
    keys = entity_keys(upload("c_1", 214, BOOK, ip="10.9.8.7"))
    assert [k.kind for k in keys] == ["device", "ip", "net24", "contact_list"]
    assert keys[-1] == EntityKey("contact_list", BOOK)


def test_an_upload_without_a_hash_names_no_book() -> None:
    assert [k.kind for k in entity_keys(upload("c_1", 214, None, ip="10.9.8.7"))] == ["device", "ip", "net24"]


@pytest.mark.parametrize(("count", "minimum", "named"), [(19, 20, False), (20, 20, True), (0, 1, False), (0, 0, True)])
def test_the_minimum_book_size_decides(count: int, minimum: int, named: bool) -> None:
    keys = entity_keys(upload("c_1", count, BOOK), min_contacts=minimum)
    assert (EntityKey("contact_list", BOOK) in keys) is named


def test_the_default_minimum_is_the_configured_default() -> None:
    policy = EntityConfig().contact_list
    assert policy.min_contacts == MIN_CONTACTS > 0  # an empty book never counts by default
    assert (policy.min_customers, policy.max_customers, policy.link_horizon_minutes) == (2, 30, 30 * 1440)
    assert "contact_list" in RingConfig().ring_kinds


def test_contact_list_policy_is_validated_like_the_others() -> None:
    with pytest.raises(ValidationError, match="min_contacts"):
        EntityConfig.model_validate({"contact_list": {"min_contacts": -1}})
    with pytest.raises(ValidationError, match=re.escape("max_customers (80) must not exceed capacity (64)")):
        EntityConfig.model_validate({"contact_list": {"max_customers": 80}})
    config = EntityConfig.model_validate({"contact_list": {"min_contacts": 5}})
    assert config.contact_list == ContactListPolicy(min_contacts=5)


# ---- contracts ----------------------------------------------------------------------------------------------------


def test_contracts_carry_the_new_kind() -> None:
    link = EntityLink(customer_a="c_1", customer_b="c_2", entity=EntityRef(kind="contact_list", value=BOOK),
                      first_seen=T0, last_seen=T0 + MIN)  # fmt: skip
    assert EntityLink.model_validate(serde.loads(serde.dumps(link.model_dump(mode="json")))) == link
    entry = AllowListEntry(kind="contact_list", value=BOOK, reason="a partner's shared demo book", added_by="ops")
    assert allowlist_key(entry.kind, entry.value) == f"contact_list:{BOOK}"


@pytest.mark.parametrize("features", [Features.none(), Features.all()], ids=["18.16", "modern and chdb"])
def test_clickhouse_stores_entity_kinds_as_strings_not_enums(features: Features) -> None:
    ddl = "\n".join(render_ddl("lw", features))
    kind_columns = re.findall(r"^\s*(entity_kinds?) (.+?),?$", ddl, flags=re.MULTILINE)
    assert len(kind_columns) >= 3  # links, customer_links, rings
    for _, column_type in kind_columns:
        assert "Enum" not in column_type and "String" in column_type


# ---- links --------------------------------------------------------------------------------------------------------


def test_two_customers_uploading_one_book_are_linked() -> None:
    config = EntityConfig()
    state = EntityState(EntityKey("contact_list", BOOK))
    state, first = observe(state, "c_1", T0, config)
    state, second = observe(state, "c_2", T0 + 20 * DAY, config)  # weeks apart: one operator enrolling accounts
    assert first == ()
    (link,) = second
    assert isinstance(link, LinkEvent) and link.pair == ("c_1", "c_2") and link.entity.kind == "contact_list"


def test_the_same_book_beyond_the_link_horizon_does_not_link() -> None:
    config = EntityConfig()
    state, _ = observe(EntityState(EntityKey("contact_list", BOOK)), "c_1", T0, config)
    _, out = observe(state, "c_2", T0 + config.contact_list.link_horizon_ms + MIN, config)
    assert out == ()


def test_an_allow_listed_book_links_nobody() -> None:
    net = OfflineNetwork(allow=frozenset({("contact_list", BOOK)}))
    for n in range(5):
        net.observe(upload(f"c_{n}", 150, BOOK, T0 + n * MIN))
    assert net.links == 0 and net.step().alerts == ()


# ---- rings --------------------------------------------------------------------------------------------------------


def test_four_strangers_with_one_book_are_a_ring_at_attention() -> None:
    net = OfflineNetwork()
    for n in range(4):  # own devices, own addresses: only the book joins them
        net.observe(upload(f"c_{n}", 150, BOOK, T0 + n * MIN))
    changes = net.step()
    (alert,) = changes.alerts
    assert alert.ring is not None and sorted(alert.ring.members) == ["c_0", "c_1", "c_2", "c_3"]
    assert [(e.kind, e.value) for e in alert.ring.entities] == [("contact_list", BOOK)]
    assert alert.tier == "attention"


def test_a_book_joins_two_device_groups_into_one_ring() -> None:
    net = OfflineNetwork()
    events = [
        login("c_a1", "d_one", T0), login("c_a2", "d_one", T0 + MIN),  # two on one device
        login("c_b1", "d_two", T0 + 2 * MIN), login("c_b2", "d_two", T0 + 3 * MIN),  # two on another
        upload("c_a2", 90, BOOK, T0 + 4 * MIN), upload("c_b1", 90, BOOK, T0 + 5 * MIN),  # one book across
    ]  # fmt: skip
    for event in events[:4]:
        net.observe(event)
    assert net.step().snapshots == ()  # two pairs: no ring yet
    for event in events[4:]:
        net.observe(event)
    (snapshot,) = net.step().snapshots
    assert sorted(snapshot.members) == ["c_a1", "c_a2", "c_b1", "c_b2"]
    assert {e.kind for e in snapshot.entities} == {"device", "contact_list"}


def test_book_links_stay_out_of_rings_when_the_kind_is_not_a_ring_kind() -> None:
    net = OfflineNetwork(rings=RingConfig(ring_kinds=("device", "bank_card", "phone")))
    for n in range(4):
        net.observe(upload(f"c_{n}", 150, BOOK, T0 + n * MIN))
    assert net.links == 6 and net.step().snapshots == ()  # linked for analysts, no ring


# ---- the small-book decoy -----------------------------------------------------------------------------------------


def family_uploads() -> list[BehaviorBase]:
    """Twenty couples: ten upload the empty book, ten a few family numbers each couple shares."""
    events = []
    for n in range(20):
        book, count = (EMPTY, 0) if n < 10 else (f"h_fa{n:014x}", 3 + n % 8)
        events += [upload(f"c_{n:02d}a", count, book, T0 + n * MIN), upload(f"c_{n:02d}b", count, book, T0 + n * MIN)]
    return events


def test_empty_and_small_books_of_families_do_not_link() -> None:
    net = OfflineNetwork()
    for event in family_uploads():
        net.observe(event)
    changes = net.step()
    assert net.links == 0 and changes.alerts == () and changes.snapshots == ()


def test_without_the_minimum_the_empty_book_would_make_the_families_a_ring() -> None:
    # The control: the same events with every book counted link the empty-book families into one "ring".
    net = OfflineNetwork(entities=EntityConfig.model_validate({"contact_list": {"min_contacts": 0}}))
    for event in family_uploads():
        net.observe(event)
    alerts = net.step().alerts
    assert net.links > 0 and alerts
    assert any(a.ring is not None and ("contact_list", EMPTY) in [(e.kind, e.value) for e in a.ring.entities]
               for a in alerts)  # fmt: skip


def test_ring_score_of_a_shared_book_uses_its_weight() -> None:
    config = RingConfig()
    strong = RingConfig(kind_weights=config.kind_weights.model_copy(update={"contact_list": 0.95}))
    assert ring_score(4, ["contact_list"], [], strong) > ring_score(4, ["contact_list"], [], config) > 0


# ---- the worker's fan-out -----------------------------------------------------------------------------------------


class RecordingTopic:
    """A stand-in for the observation topic: keeps what was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, list[Any]]] = []

    async def send(self, key: bytes, value: bytes, partition: int) -> None:
        self.sent.append((partition, serde.loads(value)))


@pytest.mark.parametrize(("minimum", "books"), [(20, 1), (500, 0)])
def test_the_fanout_applies_the_minimum_in_force(minimum: int, books: int) -> None:
    topic = RecordingTopic()
    fanout = EntityFanout(topic, 4, lambda: minimum)  # type: ignore[arg-type]
    fanout.add(upload("c_1", 214, BOOK))
    sent = asyncio.run(fanout.flush())
    kinds = [kind for _, items in topic.sent for kind, *_ in items]
    assert sent == len(kinds) and kinds.count("contact_list") == books and "device" in kinds
