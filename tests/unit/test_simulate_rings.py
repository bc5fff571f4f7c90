"""Group scenarios (fraud rings and their decoys), checked from the decoded records themselves.

The links between customers are recomputed here from the events (devices and IPs of sessions, card and phone
hashes of profile changes, hashes of address books big enough to name an entity) with a union-find,
independently of the generator, and compared with the ground truth (:attr:`Traffic.groups` and the members'
episodes).
"""

from __future__ import annotations

import ipaddress
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from detectors.entities.keys import MIN_CONTACTS
from schemas.behavior import ContactUpload, Drawdown, LimitQuery, LoanApplication, Login, ProfileChange
from schemas.common import to_ms
from schemas.ids import IpAddress, PseudoId
from streams.evaluate import load_episodes, write_labels
from streams.simulate.model import DECOY_SCENARIO_NAMES, GROUP_SCENARIO_NAMES, SCENARIO_NAMES, scenario_of
from streams.simulate.scenarios import DEFAULT_SCENARIO_SHARES
from streams.simulate.scenarios.rings import (
    EMPTY_BOOK_HASH,
    MAX_RING,
    MAX_WIFI,
    MIN_RING,
    MIN_WIFI,
    RING_PATTERNS,
    InjectedGroup,
)
from streams.simulate.traffic import SimConfig, SimRecord, Traffic
from tests.unit.test_simulate_scenarios_properties import DECODERS, Event

START = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)  # 08:00 China
HOUR = 3_600_000
SHARES = {
    "fraud_ring": 0.06,
    "decoy_public_wifi": 0.1,
    "decoy_family": 0.02,
    "multi_application_burst": 0.02,
    "sequence_takeover": 0.02,
    "population_drift": 0.03,
}
PUBLIC_WIFI = ipaddress.ip_network("203.0.113.0/24")  # where ordinary customers' public Wi-Fi sessions come from
PSEUDO_ID: TypeAdapter[str] = TypeAdapter(PseudoId)
IP: TypeAdapter[str] = TypeAdapter(IpAddress)


@dataclass
class Run:
    traffic: Traffic
    records: list[SimRecord]
    pairs: list[tuple[SimRecord, Event]]
    by_customer: dict[str, list[tuple[SimRecord, Event]]]

    def groups(self, scenario: str) -> list[InjectedGroup]:
        return [g for g in self.traffic.groups if g.scenario == scenario]

    def labelled(self, customer: str) -> list[Event]:
        return [e for r, e in self.by_customer[customer] if r.episode_id is not None]


def _run(config: SimConfig) -> Run:
    traffic = Traffic(config)
    records = list(traffic.records())
    pairs = [(r, DECODERS[r.topic](r.value)) for r in records if r.label != "malformed"]
    by_customer: dict[str, list[tuple[SimRecord, Event]]] = defaultdict(list)
    for record, event in pairs:
        by_customer[event.customer_id].append((record, event))
    return Run(traffic, records, pairs, by_customer)


@pytest.fixture(scope="module")
def day() -> Run:
    """3,000 customers for a day: ~180 ring members, 300 behind public addresses, 30 couples, other scenarios."""
    return _run(SimConfig(customers=3000, start=START, hours=24, scenario_shares=SHARES, malformed_share=0.01))


class Links:
    """Customers joined by the entities their events show (a union-find over customer ids)."""

    def __init__(self, pairs: Iterable[tuple[SimRecord, Event]], ignore_ips: set[str]) -> None:
        self.parent: dict[str, str] = {}
        self.users: dict[tuple[str, str], set[str]] = defaultdict(set)
        for _, event in pairs:
            customer = event.customer_id
            self.parent.setdefault(customer, customer)
            if hasattr(event, "device_id"):
                self.users["device", event.device_id].add(customer)
                if event.ip not in ignore_ips and ipaddress.ip_address(event.ip) not in PUBLIC_WIFI:
                    self.users["ip", event.ip].add(customer)
            if isinstance(event, ProfileChange) and event.field in ("bank_card", "phone") and event.new_value_hash:
                self.users[event.field, event.new_value_hash].add(customer)
            if isinstance(event, ContactUpload) and event.contacts_hash and event.contacts_count >= MIN_CONTACTS:
                self.users["contact_list", event.contacts_hash].add(customer)
        for customers in self.users.values():
            first, *rest = customers
            for other in rest:
                self.parent[self.find(other)] = self.find(first)

    def find(self, customer: str) -> str:
        while self.parent[customer] != customer:
            self.parent[customer] = self.parent[self.parent[customer]]
            customer = self.parent[customer]
        return customer

    def component(self, customer: str) -> set[str]:
        root = self.find(customer)
        return {c for c in self.parent if self.find(c) == root}


@pytest.fixture(scope="module")
def links(day: Run) -> Links:
    public = {e.value for g in day.groups("decoy_public_wifi") for e in g.shared_entities}
    return Links(day.pairs, public)


def test_same_seed_same_groups_and_bytes_another_seed_differs() -> None:
    config = SimConfig(customers=600, start=START, hours=12, scenario_shares=SHARES)
    first, second = Traffic(config), Traffic(config)
    assert first.groups == second.groups and first.episodes == second.episodes
    assert [(r.ts_ms, r.value, r.label, r.episode_id) for r in first.records()] == [
        (r.ts_ms, r.value, r.label, r.episode_id) for r in second.records()
    ]
    other = Traffic(config.model_copy(update={"seed": 8}))
    assert other.groups != first.groups


def test_every_record_decodes_and_shared_values_are_valid(day: Run) -> None:
    assert len(day.pairs) == sum(r.label != "malformed" for r in day.records)  # all decoded (else it raised)
    for record, event in day.pairs:
        if scenario_of(record.label) in GROUP_SCENARIO_NAMES and hasattr(event, "ip"):
            assert json.loads(record.value)["ip"] == event.ip == IP.validate_python(event.ip)  # canonical
    for group in day.traffic.groups:
        for entity in group.shared_entities:
            if entity.kind == "ip":
                assert IP.validate_python(entity.value) == entity.value
                assert ipaddress.ip_address(entity.value).version == 4
            else:
                assert PSEUDO_ID.validate_python(entity.value) == entity.value
                assert entity.value.startswith("d_" if entity.kind == "device" else "h_")


def test_ring_sizes_and_patterns() -> None:
    traffic = Traffic(SimConfig(customers=20_000, start=START, hours=24))  # planned at once: no records needed
    rings = [g for g in traffic.groups if g.scenario == "fraud_ring"]
    assert 20 <= len(rings) <= 40
    sizes = [len(g.members) for g in rings]
    assert all(MIN_RING <= k <= MAX_RING for k in sizes) and sum(sizes) == 250
    assert min(sizes) <= 4 and max(sizes) >= 15  # mostly small rings, a few large ones
    assert {g.pattern for g in rings} == set(RING_PATTERNS)


def test_each_ring_is_one_component_of_exactly_its_members(day: Run, links: Links) -> None:
    rings = day.groups("fraud_ring")
    assert len(rings) >= 15 and {g.pattern for g in rings} == set(RING_PATTERNS)
    for ring in rings:
        members = set(ring.members)
        assert links.component(ring.members[0]) == members, ring.group_id
        # The ground truth's shared entities are exactly what the events show.
        for entity in ring.shared_entities:
            assert links.users[entity.kind, entity.value] == set(entity.members), entity
            assert len(entity.members) >= 2
        assert set().union(*(e.members for e in ring.shared_entities)) == members
        pattern = [e for e in ring.shared_entities if e.kind != "contact_list"]  # a shared book comes on top
        assert set().union(*(e.members for e in pattern)) == members
        kinds = Counter(e.kind for e in pattern)
        if ring.pattern == "star":
            assert len(pattern) == 1 and set(pattern[0].members) == members
            assert set(kinds) <= {"device", "bank_card"}
        elif ring.pattern == "chain":
            # Pairs of neighbours: connected only transitively (no entity spans the ring unless it has 2 members).
            assert all(len(e.members) == 2 for e in pattern)
            assert len(pattern) == len(members) - 1
        else:
            assert set(kinds) == {"device", "ip"}
        # A member touches at most one shared device, one shared IP, one shared card or phone.
        for member in members:
            touched = Counter(
                "hash" if e.kind in ("bank_card", "phone") else e.kind
                for e in ring.shared_entities
                if member in e.members
            )
            assert touched and max(touched.values()) == 1, (ring.group_id, member, touched)
    chains = [g for g in rings if g.pattern == "chain" and len(g.members) >= 4]
    assert chains and any(len({e.kind for e in g.shared_entities}) >= 3 for g in chains)


def test_active_members_apply_and_draw_together_quiet_ones_only_log_in(day: Run) -> None:
    quiet_total = active_total = 0
    for ring in day.groups("fraud_ring"):
        assert set(ring.quiet_members) < set(ring.members)
        applied = []
        for member in ring.members:
            events = [e for _, e in day.by_customer[member]]
            labelled = day.labelled(member)
            assert any(isinstance(e, Login) for e in labelled)
            if member in ring.quiet_members:
                quiet_total += 1
                assert not [e for e in events if isinstance(e, LoanApplication | Drawdown)]
                quiet_types = {"login", "page_view", "limit_query", "profile_change", "contact_upload"}
                assert {e.event_type for e in labelled} <= quiet_types
                assert any(isinstance(e, LimitQuery) for e in labelled)
                continue
            active_total += 1
            apps = [e for e in events if isinstance(e, LoanApplication)]
            draws = [e for e in labelled if isinstance(e, Drawdown)]
            assert len(apps) == 1 and apps[0] in labelled and len(draws) == 1
            assert to_ms(apps[0].ts) < to_ms(draws[0].ts)
            assert 0.55 <= draws[0].amount / draws[0].available_limit_before <= 0.79
            applied.append(to_ms(apps[0].ts))
        # Organised: within a few hours (longer only when many take turns on one shared device).
        assert len(applied) >= 2 and max(applied) - min(applied) <= 6 * HOUR
        for entity in ring.shared_entities:
            if entity.kind == "device":
                assert _one_session_at_a_time(day, entity.members, entity.value), (ring.group_id, entity)
    assert quiet_total >= 0.15 * (quiet_total + active_total) and active_total > quiet_total


def test_public_wifi_decoys(day: Run, links: Links) -> None:
    decoys = day.groups("decoy_public_wifi")
    assert decoys and sum(len(d.members) for d in decoys) == 300
    for decoy in decoys:
        assert MIN_WIFI <= len(decoy.members) <= MAX_WIFI and decoy.venue in ("mall_wifi", "carrier_nat")
        ((entity),) = decoy.shared_entities
        assert entity.kind == "ip" and set(entity.members) == set(decoy.members)
        times = []
        for member in decoy.members:
            labelled = day.labelled(member)
            assert [e.event_type for e in labelled][0] == "login"
            assert {e.ip for e in labelled} == {entity.value}
            assert {e.event_type for e in labelled} <= {"login", "page_view", "limit_query"}
            times += [to_ms(e.ts) for e in labelled]
        assert max(times) - min(times) <= 24 * HOUR
        # Without the public address, decoy customers are not linked to one another.
        assert len(links.component(decoy.members[0]) & set(decoy.members)) == 1


def test_family_decoys(day: Run, links: Links) -> None:
    families = day.groups("decoy_family")
    assert len(families) == 30
    for family in families:
        assert len(family.members) == 2 and family.pattern == "household"
        device, home = sorted((e for e in family.shared_entities if e.kind != "contact_list"), key=lambda e: e.kind)
        assert (device.kind, home.kind) == ("device", "ip")
        for member in family.members:
            labelled = day.labelled(member)
            assert device.value in {e.device_id for e in labelled} and {e.ip for e in labelled} == {home.value}
            assert {e.event_type for e in labelled} <= {"login", "page_view", "limit_query", "contact_upload"}
        assert links.component(family.members[0]) == set(family.members)
        assert _one_session_at_a_time(day, family.members, device.value)


def uploads(day: Run, member: str) -> list[ContactUpload]:
    return [e for e in day.labelled(member) if isinstance(e, ContactUpload)]


def test_some_rings_share_one_address_book_uploaded_by_half_or_more(day: Run, links: Links) -> None:
    rings = day.groups("fraud_ring")
    booked = [r for r in rings if any(e.kind == "contact_list" for e in r.shared_entities)]
    assert 0.2 * len(rings) <= len(booked) <= 0.7 * len(rings)
    assert {r.pattern for r in booked} == set(RING_PATTERNS)  # on top of every pattern
    for ring in booked:
        (book,) = [e for e in ring.shared_entities if e.kind == "contact_list"]
        assert 2 * len(book.members) >= len(ring.members) and len(book.members) >= 2
        assert links.users["contact_list", book.value] == set(book.members)
        counts = set()
        for member in ring.members:
            mine = uploads(day, member)
            if member not in book.members:
                assert not mine
                continue
            (upload,) = mine
            counts.add(upload.contacts_count)
            assert upload.contacts_hash == book.value
            # Right after the login of the member's first scripted session, on its device.
            first = day.labelled(member)[:2]
            assert isinstance(first[0], Login) and first[1] == upload and first[0].device_id == upload.device_id
        (count,) = counts  # one book: one size
        assert count >= 2 * MIN_CONTACTS


def test_families_upload_identical_small_or_empty_books_that_name_no_entity(day: Run, links: Links) -> None:
    families = day.groups("decoy_family")
    books = {f.group_id: [e for e in f.shared_entities if e.kind == "contact_list"] for f in families}
    booked = [f for f in families if books[f.group_id]]
    assert 0.3 * len(families) <= len(booked) <= 0.9 * len(families)
    empty = [f for f in booked if books[f.group_id][0].value == EMPTY_BOOK_HASH]
    assert len(empty) >= 3 and len(booked) - len(empty) >= 3  # both kinds, the empty hash across families
    for family in families:
        seen = [u for m in family.members for u in uploads(day, m)]
        if family not in booked:
            assert not seen
            continue
        (book,) = books[family.group_id]
        assert len(seen) == 2 and {u.customer_id for u in seen} == set(family.members)
        assert {u.contacts_hash for u in seen} == {book.value} and len({u.contacts_count for u in seen}) == 1
        count = seen[0].contacts_count
        assert count < MIN_CONTACTS and (count == 0) == (book.value == EMPTY_BOOK_HASH)
        assert ("contact_list", book.value) not in links.users  # too small to name an entity


def _one_session_at_a_time(day: Run, members: Iterable[str], device: str) -> bool:
    """Whether the sessions of ``members`` on ``device`` never overlap (one phone, accounts switched in turn)."""
    spans: dict[str, list[int]] = defaultdict(list)
    for member in members:
        for event in day.labelled(member):
            if event.device_id == device:
                spans[event.session_id].append(to_ms(event.ts))
    ordered = sorted(spans.values(), key=min)
    return len(ordered) >= 2 and all(max(a) < min(b) for a, b in zip(ordered, ordered[1:], strict=False))


def test_every_member_has_an_episode_carrying_its_group(day: Run) -> None:
    episodes = {e.episode_id: e for e in day.traffic.episodes}
    by_customer = {e.customer_id: e for e in day.traffic.episodes if e.customer_id is not None}
    labelled: dict[str, list[SimRecord]] = defaultdict(list)
    for record in day.records:
        if record.label != "malformed":
            assert (record.label == "normal") == (record.episode_id is None)
        if record.episode_id is not None:
            labelled[record.episode_id].append(record)
    assert set(labelled) == set(episodes)
    drifted = set(next(e for e in episodes.values() if e.scenario == "population_drift").details["customer_ids"])
    for group in day.traffic.groups:
        assert not set(group.members) & drifted
        for member in group.members:
            episode = by_customer[member]
            assert episode.scenario == group.scenario
            assert episode.episode_id == f"ep7-{group.scenario}-{member}"
            records = labelled[episode.episode_id]
            assert {r.label for r in records} == {group.scenario} and {r.customer_id for r in records} == {member}
            assert (records[0].ts_ms, records[-1].ts_ms) == (episode.start_ms, episode.end_ms)
            details = episode.details
            assert details["group_id"] == group.group_id and details["members"] == list(group.members)
            assert details["shared_entities"] == [
                {"kind": e.kind, "value": e.value, "members": list(e.members)} for e in group.shared_entities
            ]
            assert (details["group_start_ms"], details["group_end_ms"]) == (group.start_ms, group.end_ms)
            if group.scenario == "fraud_ring":
                assert details["ring_id"] == group.group_id and details["pattern"] in RING_PATTERNS
                assert details["quiet_members"] == list(group.quiet_members)
                assert details["role"] == ("quiet" if member in group.quiet_members else "active")
            else:
                assert details["role"] == "decoy" and "ring_id" not in details
        assert group.start_ms == min(by_customer[m].start_ms for m in group.members)
        assert group.end_ms == max(by_customer[m].end_ms for m in group.members)
    counts = Counter(e.scenario for e in episodes.values())
    assert counts["fraud_ring"] == 180 and counts["decoy_public_wifi"] == 300 and counts["decoy_family"] == 60
    assert DECOY_SCENARIO_NAMES == {"decoy_public_wifi", "decoy_family"}


def test_labels_file_carries_the_groups_and_the_reader_still_reads_it(tmp_path: Path) -> None:
    traffic = Traffic(SimConfig(customers=400, start=START, hours=6, scenario_shares=SHARES))
    path = tmp_path / "labels.jsonl"
    write_labels(traffic.records(), path, episodes=traffic.episodes)
    written = json.loads(path.with_name(path.name + ".episodes.json").read_bytes())
    rings = [e for e in written if e["scenario"] == "fraud_ring"]
    assert rings and {e["scenario"] for e in written} >= {"fraud_ring", "decoy_family", "multi_application_burst"}
    for entry in rings:
        details = entry["details"]
        assert entry["customer_id"] in details["members"] and details["ring_id"].startswith("ring7-")
        assert {"kind", "value", "members"} == set(details["shared_entities"][0])
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert {r["scenario"] for r in rows if r["label"] == "fraud_ring"} == {"fraud_ring"}
    loaded = load_episodes(path, {})
    assert len(loaded) == len(written)
    assert {(e.scenario, e.customer_id) for e in loaded} == {(e["scenario"], e["customer_id"] or "") for e in written}


def test_default_shares_and_counts_in_a_twenty_thousand_customer_day() -> None:
    config = SimConfig(customers=20_000, start=START, hours=24)
    assert config.group_counts == {"fraud_ring": 250, "decoy_public_wifi": 600, "decoy_family": 100}
    assert sum(config.shares.values()) == pytest.approx(0.10)  # the customer scenarios' shares are unchanged
    traffic = Traffic(config)
    counts = Counter(g.scenario for g in traffic.groups)
    assert 20 <= counts["fraud_ring"] <= 40 and counts["decoy_public_wifi"] == 3 and counts["decoy_family"] == 50
    # Adding the groups moves no other episode.
    without = {k: v for k, v in DEFAULT_SCENARIO_SHARES.items() if k not in GROUP_SCENARIO_NAMES}
    plain = Traffic(config.model_copy(update={"scenario_shares": without}))
    assert [e for e in traffic.episodes if e.scenario in SCENARIO_NAMES] == plain.episodes
    assert plain.groups == []


def test_group_shares_are_validated_and_small_remainders_stay_ordinary() -> None:
    tiny = SimConfig(customers=150, start=START, hours=3)
    assert tiny.group_counts == {"fraud_ring": 0, "decoy_public_wifi": 0, "decoy_family": 0}  # 2, 4 and 1 allotted
    assert Traffic(tiny).groups == []
    short = SimConfig(customers=4000, start=START, hours=0.5, burst_share=0)
    assert set(short.skipped_scenarios) >= set(GROUP_SCENARIO_NAMES)
    assert short.group_counts == dict.fromkeys(GROUP_SCENARIO_NAMES, 0)
    with pytest.raises(ValidationError, match="1 hour"):
        SimConfig(customers=1000, start=START, hours=0.5, burst_share=0, scenario_shares={"fraud_ring": 0.1})
    with pytest.raises(ValidationError, match="more than all"):
        SimConfig(customers=100, start=START, scenario_shares={"fraud_ring": 0.6, "decoy_family": 0.6})
    odd = SimConfig(customers=101, start=START, hours=2, burst_share=0, scenario_shares={"decoy_family": 0.05})
    assert odd.group_counts["decoy_family"] == 4  # 5 allotted: two couples, the fifth stays ordinary
    assert len(Traffic(odd).groups) == 2


def test_a_one_hour_span_still_places_every_group() -> None:
    shares = {"fraud_ring": 0.1, "decoy_public_wifi": 0.4, "decoy_family": 0.1}
    run = _run(SimConfig(customers=300, start=START, hours=1, burst_share=0, scenario_shares=shares))
    span = (to_ms(START), to_ms(START) + HOUR)
    assert Counter(g.scenario for g in run.traffic.groups)["decoy_public_wifi"] == 1
    for group in run.traffic.groups:
        assert span[0] <= group.start_ms <= group.end_ms < span[1]
    for episode in run.traffic.episodes:
        records = [r for r, _ in run.by_customer[str(episode.customer_id)] if r.episode_id == episode.episode_id]
        assert (records[0].ts_ms, records[-1].ts_ms) == (episode.start_ms, episode.end_ms)
