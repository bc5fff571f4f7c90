"""Group scenarios: a fraud ring (团伙) linked by shared entities, and two innocent look-alikes.

``fraud_ring``: 3-30 customers (mostly 3-6, some up to 14, a few up to 30) behind shared entities, in one of
three patterns:

* ``star``: every member uses one device, or binds one bank card (a ``profile_change`` of ``bank_card`` to the
  same ``new_value_hash``);
* ``chain``: neighbours share one entity each (A-B a device, B-C an IP, C-D a card hash, D-E a phone hash …), so
  the ring hangs together only transitively;
* ``mixed``: a few devices, each shared by a subset, and IPs shared by members of different subsets (and by a
  few members with no shared device) that tie the subsets together.

In about 40 % of the rings (any pattern) the operator also loads one prepared address book (40-400 contacts,
one ``contacts_hash``) into half or more of the members' accounts: a ``contact_upload`` right after the login
of their first scripted session.

About 70 % of the members are active: within an organised window of 20 minutes to 4 hours each applies for a
loan (mostly the same product and amount) and, in a later session, draws 55-78 % of the available limit. The
others are quiet (养号): one session with the shared entity (a login, a look at the limit, the binding of the
shared card or phone if that is their link) and no application or drawdown in the whole span. A member touches
at most one shared device, one shared IP and one shared card or phone; apart from its scripted sessions it is an
ordinary customer (its own devices and addresses, its repayments and inquiries).

``decoy_public_wifi``: 100-300 unrelated ordinary customers each open the app once through one busy public
address within a day: a mall's Wi-Fi (TEST-NET-3, 203.0.113.0/24, 10:00-22:00 local if the span allows) or a
carrier-grade NAT gateway (100.64.0.0/10). ``decoy_family``: two customers (a couple) share one device and one
home address over a few ordinary sessions; in about 60 % of the couples both upload their address book in their
first session, and the two books hash alike: either both are empty (no contacts readable: the one hash of the
empty set, :data:`EMPTY_BOOK_HASH`, shared with every other empty book of the run) or both hold the same handful
of family numbers (1-12 contacts). Neither decoy applies, draws or changes anything in its sessions: a ring
detector must not alert on them, and small or empty books must not link anybody.

Every member of every group has its own episode (``ep<seed>-<scenario>-<customer id>``) whose labelled records
are its scripted sessions; ``details`` describe the whole group (:meth:`InjectedGroup.details`) plus the
member's ``role`` (``active``, ``quiet`` or ``decoy``). Shared entity values are valid by construction: device
ids ``d_<hex>``, card and phone hashes ``h_<hex>`` (never a raw number), canonical IPv4 addresses.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Final, Literal

from streams.simulate.events import LoginMethod, ProfileField
from streams.simulate.model import GroupScenarioName, ScenarioName, SimRecord
from streams.simulate.population import china_midnight_ms, customer_id_for, hex_id, seeded_rng
from streams.simulate.rhythm import HOUR_MS, MINUTE_MS, SECOND_MS, daytime_ms
from streams.simulate.scenarios.base import EpisodePlan, Placement, StreamContext, drawdown, share_of

__all__ = [
    "EMPTY_BOOK_HASH",
    "MAX_RING",
    "MIN_RING",
    "RING_PATTERNS",
    "EntityKind",
    "GroupMemberPlan",
    "InjectedGroup",
    "SharedEntity",
    "plan_groups",
]

MIN_RING: Final = 3
MAX_RING: Final = 30
RING_PATTERNS: Final = ("star", "chain", "mixed")
QUIET_SHARE: Final = 0.3  # expected share of a ring's members who only log in with the shared entity
RING_DRAW_SHARE: Final = (0.55, 0.78)  # below the 80 % of a takeover and the 90 % of a night / new-device cash-out
MIN_WIFI, MAX_WIFI = 100, 300  # customers behind one public address
_RING_WINDOW_MS: Final = (20 * MINUTE_MS, 4 * HOUR_MS)  # the organised window of a ring's applications and draws
_QUIET_BEFORE_MS: Final = 6 * HOUR_MS  # quiet members log in up to this long before the window
_SESSION_GAP_MS: Final = 3 * MINUTE_MS  # between two scripted sessions of one customer
_FAMILY_GAP_MS: Final = 8 * MINUTE_MS  # between two sessions on the family's shared device (longer than one)
_MALL_HOURS: Final = (10, 22)  # China time
_TEST_NET_3: Final = tuple(f"203.0.113.{n}" for n in range(1, 255))

_BOOK_RING_SHARE: Final = 0.4  # rings whose operator loads one address book into several members' accounts
_RING_BOOK_CONTACTS: Final = (40, 400)  # a prepared book looks real: well above any small-book threshold
_FAMILY_BOOK_SHARE: Final = 0.6  # couples who both upload their (identical, empty or tiny) address book
_FAMILY_BOOK_CONTACTS: Final = (1, 12)
EMPTY_BOOK_HASH: Final = "h_e3b0c44298fc1c14"  # the hash of the empty set (SHA-256 of nothing), the same for all

EntityKind = Literal["device", "ip", "bank_card", "phone", "contact_list"]
ENTITY_KINDS: Final[tuple[EntityKind, ...]] = ("device", "ip", "bank_card", "phone", "contact_list")
_CHAIN_KINDS: Final[tuple[EntityKind, ...]] = ("device", "ip", "bank_card", "phone")  # a book comes on top
StepKind = Literal["login", "page", "limit_query", "profile_change", "contact_upload", "application", "drawdown"]
Role = Literal["active", "quiet", "decoy"]


@dataclass(frozen=True, slots=True)
class SharedEntity:
    """An entity several customers of a group use: a session's device or IP, a bound card or phone, a book uploaded."""

    kind: EntityKind
    value: str
    members: tuple[str, ...]  # customer ids, sorted

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (inside an episode's details)."""
        return {"kind": self.kind, "value": self.value, "members": list(self.members)}


@dataclass(frozen=True, slots=True)
class InjectedGroup:
    """One injected group (a ring or a decoy): the ground truth a ring detector is scored against."""

    scenario: GroupScenarioName
    group_id: str
    pattern: str  # star / chain / mixed (rings), public_ip (public Wi-Fi), household (family)
    members: tuple[str, ...]  # customer ids, sorted
    quiet_members: tuple[str, ...]  # rings only: members with no application or drawdown
    shared_entities: tuple[SharedEntity, ...]
    start_ms: int  # first labelled record of any member
    end_ms: int  # last labelled record of any member
    venue: str | None = None  # public Wi-Fi only: mall_wifi or carrier_nat

    def details(self) -> dict[str, Any]:
        """The group's facts as every member's episode carries them."""
        out: dict[str, Any] = {"group_id": self.group_id}
        if self.scenario == "fraud_ring":
            out["ring_id"] = self.group_id
        out["pattern"] = self.pattern
        if self.venue is not None:
            out["venue"] = self.venue
        out["members"] = list(self.members)
        if self.scenario == "fraud_ring":
            out["quiet_members"] = list(self.quiet_members)
        out["shared_entities"] = [e.to_json() for e in self.shared_entities]
        out["group_start_ms"], out["group_end_ms"] = self.start_ms, self.end_ms
        return out


@dataclass(frozen=True, slots=True)
class Step:
    """One planned record of a scripted session."""

    ts_ms: int
    what: StepKind
    page: str = ""  # page views: the page
    product: str | None = None  # page views of a product page
    method: LoginMethod = "sms"  # logins
    changed: ProfileField = "bank_card"  # profile changes: which field
    value_hash: str = ""  # profile changes: the hash of the new value; contact uploads: the book's hash
    contacts: int = 0  # contact uploads: the book's size


@dataclass(frozen=True, slots=True)
class ScriptedSession:
    """A planned session: its records, and the shared device / address it runs on (None: the customer's own)."""

    steps: tuple[Step, ...]
    device_id: str | None = None
    ip: str | None = None

    @property
    def end_ms(self) -> int:
        """Event time of the session's last record."""
        return self.steps[-1].ts_ms


@dataclass(frozen=True, slots=True)
class GroupMemberPlan(EpisodePlan):
    """One member of a group: its scripted sessions, and the group it belongs to."""

    group: InjectedGroup | None = None
    role: Role = "decoy"
    sessions: tuple[ScriptedSession, ...] = ()
    amount: float = 0.0  # active ring members: the application
    term_months: int = 12
    product: str = ""
    draw_share: float = 0.0  # active ring members: share of the available limit drawn

    def session_starts(self) -> tuple[int, ...]:
        """The scripted sessions, each anchored at its login."""
        return tuple(s.steps[0].ts_ms for s in self.sessions)

    def details(self) -> dict[str, Any]:
        """The group's facts and this member's role."""
        assert self.group is not None  # noqa: S101 — every planned member has its group
        return {**self.group.details(), "role": self.role}

    def run_session(self, number: int, ctx: StreamContext) -> list[SimRecord]:
        """Scripted session ``number``, labelled, on the shared device / address where the plan says so."""
        planned = self.sessions[number]
        rng, em = ctx.rng, ctx.em
        s = ctx.session(planned.steps[0].ts_ms)
        s = replace(s, device_id=planned.device_id or s.device_id, ip=planned.ip or s.ip)
        out: list[SimRecord] = []
        with em.tagged(self.scenario, self.episode_id):
            for step in planned.steps:
                at = step.ts_ms
                if step.what == "login":
                    out.append(em.login(s, at, step.method, success=True))
                elif step.what == "page":
                    out.append(em.page_view(s, at, step.page, step.product))
                elif step.what == "limit_query":
                    out.append(em.limit_query(s, at, ctx.c.available))
                elif step.what == "profile_change":
                    out.append(em.profile_change(s, at, step.changed, step.value_hash))
                elif step.what == "contact_upload":
                    out.append(em.contact_upload(s, at, step.contacts, step.value_hash))
                elif step.what == "application":
                    out.append(em.application(s, at, self.product, hex_id(rng, "a"), self.amount, self.term_months))
                else:
                    out.append(drawdown(ctx, s, at, share_of(ctx.c.available, self.draw_share)))
        return out


@dataclass(frozen=True, slots=True)
class RingMemberPlan(GroupMemberPlan):
    """A fraud-ring member: its ring's application and drawdown are its only ones (quiet members: none at all)."""

    scenario: ClassVar[ScenarioName] = "fraud_ring"
    uses_limit: ClassVar[bool] = True
    blocks_applications: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class PublicWifiPlan(GroupMemberPlan):
    """An ordinary customer who opened the app once through a busy public address."""

    scenario: ClassVar[ScenarioName] = "decoy_public_wifi"


@dataclass(frozen=True, slots=True)
class FamilyPlan(GroupMemberPlan):
    """One of a couple sharing a device and a home address."""

    scenario: ClassVar[ScenarioName] = "decoy_family"


@dataclass
class GroupPlans:
    """Every planned group member (by customer index) and the groups themselves."""

    by_customer: dict[int, GroupMemberPlan] = field(default_factory=dict)
    groups: list[InjectedGroup] = field(default_factory=list)


def plan_groups(
    seed: int, chosen: Mapping[GroupScenarioName, Sequence[int]], place: Placement, products: tuple[str, ...]
) -> GroupPlans:
    """Plan the groups of every group scenario from its customers ``chosen`` (indices, in random order)."""
    out = GroupPlans()
    rings = chosen.get("fraud_ring", ())
    for n, members in enumerate(_split(_ring_sizes(seeded_rng(seed, "fraud_ring"), len(rings)), rings), 1):
        _plan_ring(seeded_rng(seed, "fraud_ring", n), seed, f"ring{seed}-{n:03d}", members, place, products, out)
    wifi = chosen.get("decoy_public_wifi", ())
    wifi_rng = seeded_rng(seed, "decoy_public_wifi")
    addresses = list(_TEST_NET_3)
    wifi_rng.shuffle(addresses)
    for n, members in enumerate(_split(_wifi_sizes(wifi_rng, len(wifi)), wifi), 1):
        mall = addresses.pop() if addresses and wifi_rng.random() < 0.6 else None
        group_id = f"wifi{seed}-{n:03d}"
        _plan_wifi(seeded_rng(seed, "decoy_public_wifi", n), seed, group_id, members, mall, place, out)
    family = chosen.get("decoy_family", ())
    for n in range(len(family) // 2):
        pair = family[2 * n : 2 * n + 2]
        _plan_family(seeded_rng(seed, "decoy_family", n + 1), seed, f"family{seed}-{n + 1:03d}", pair, place, out)
    return out


def group_customers_used(scenario: GroupScenarioName, customers: int) -> int:
    """How many of ``customers`` allotted to a group scenario end up in one of its groups (the rest stay ordinary)."""
    if scenario == "fraud_ring":
        return customers if customers >= MIN_RING else 0
    if scenario == "decoy_public_wifi":
        return customers if customers >= MIN_WIFI else 0
    return customers // 2 * 2


# -- sizes ----------------------------------------------------------------------------------------------------


def _ring_sizes(rng: random.Random, budget: int) -> list[int]:
    """Ring sizes using up ``budget`` customers exactly (none below 3): mostly small rings, a few large ones."""
    sizes: list[int] = []
    left = budget
    while left >= MIN_RING:
        draw = rng.random()
        size = rng.randint(3, 6) if draw < 0.55 else rng.randint(7, 14) if draw < 0.85 else rng.randint(15, 30)
        size = min(size, left)
        if 0 < left - size < MIN_RING:  # the rest would be too small for a ring: take it in, or leave 3
            size = left if left <= MAX_RING else left - MIN_RING
        sizes.append(size)
        left -= size
    return sizes


def _wifi_sizes(rng: random.Random, budget: int) -> list[int]:
    """Sizes of 100-300 adding up to ``budget`` (none below 100 customers: no decoy)."""
    if budget < MIN_WIFI:
        return []
    low, high = -(-budget // MAX_WIFI), budget // MIN_WIFI
    count = min(high, max(low, round(budget / 200)))
    sizes, left = [], budget
    for n in range(count, 0, -1):
        size = rng.randint(max(MIN_WIFI, left - MAX_WIFI * (n - 1)), min(MAX_WIFI, left - MIN_WIFI * (n - 1)))
        sizes.append(size)
        left -= size
    return sizes


def _split(sizes: Sequence[int], indices: Sequence[int]) -> list[list[int]]:
    out, at = [], 0
    for size in sizes:
        out.append(list(indices[at : at + size]))
        at += size
    return out


# -- fraud rings ----------------------------------------------------------------------------------------------


def _ring_ip(rng: random.Random) -> str:
    # A home broadband, office or mobile hotspot: the same private / carrier-NAT space customers' own addresses use.
    if rng.random() < 0.5:
        return f"100.{rng.randint(64, 127)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def _value(rng: random.Random, kind: EntityKind) -> str:
    if kind == "device":
        return hex_id(rng, "d")
    if kind == "ip":
        return _ring_ip(rng)
    return hex_id(rng, "h")  # a salted hash of the card or phone number, never the number


Links = list[tuple[EntityKind, list[int]]]  # (kind, positions in the ring's member order)


def _star(rng: random.Random, k: int) -> Links:
    kind: EntityKind = "device" if rng.random() < 0.55 else "bank_card"
    return [(kind, list(range(k)))]


def _chain(rng: random.Random, k: int) -> Links:
    # Neighbours share one entity each. A member's two links differ in kind and are never card and phone both,
    # so it binds at most one shared card or phone and uses at most one shared device and one shared IP.
    links: Links = []
    previous: EntityKind | None = None
    for n in range(k - 1):
        allowed = [
            kind
            for kind in _CHAIN_KINDS
            if kind != previous and not (previous in ("bank_card", "phone") and kind in ("bank_card", "phone"))
        ]
        kind = rng.choice(allowed)
        links.append((kind, [n, n + 1]))
        previous = kind
    return links


def _mixed(rng: random.Random, k: int) -> Links:
    # Devices each shared by a subset (a phone passed around a table); IPs join members of different subsets in a
    # tree, so the ring is one piece; a few members with no shared device hang on an IP only.
    order = list(range(k))
    free_count = rng.randint(0, k // 4)
    free, grouped = order[:free_count], order[free_count:]
    most = max(1, min(6, len(grouped) // 3))
    count = rng.randint(min(2, most), most)
    sizes = [2] * count
    for _ in range(len(grouped) - 2 * count):
        sizes[rng.randrange(count)] += 1
    groups = _split(sizes, grouped)
    links: Links = [("device", list(g)) for g in groups]
    spare = [rng.sample(g, len(g)) for g in groups]  # members of each subset not yet on a shared IP
    ips: list[list[int]] = []
    for j in range(1, count):
        parent = rng.choice([i for i in range(j) if spare[i]])  # there always is one: every subset has 2+
        ips.append([spare[parent].pop(), spare[j].pop()])
    if not ips:
        ips.append([spare[0].pop()])
        if not free:
            ips[0].append(spare[0].pop())
    for member in free:
        rng.choice(ips).append(member)
    pool = [m for s in spare for m in s]
    if len(pool) >= 2 and rng.random() < 0.5:  # one more address shared by a few: the graph gets a cycle
        ips.append(rng.sample(pool, rng.randint(2, min(4, len(pool)))))
    links += [("ip", sorted(members)) for members in ips]
    return links


def _seconds(rng: random.Random, low: int, high: int) -> int:
    return rng.randint(low, high) * SECOND_MS


def _plan_ring(
    rng: random.Random,
    seed: int,
    ring_id: str,
    indices: list[int],
    place: Placement,
    products: tuple[str, ...],
    out: GroupPlans,
) -> None:
    k = len(indices)
    pattern = rng.choice(RING_PATTERNS)
    links = _star(rng, k) if pattern == "star" else _chain(rng, k) if pattern == "chain" else _mixed(rng, k)
    ids = [customer_id_for(i) for i in indices]
    device: dict[int, str] = {}
    ip: dict[int, str] = {}
    bound: dict[int, tuple[ProfileField, str]] = {}
    entities = []
    for kind, positions in links:
        value = _value(rng, kind)
        for p in positions:
            if kind == "device":
                device[p] = value
            elif kind == "ip":
                ip[p] = value
            elif kind in ("bank_card", "phone"):  # the links drawn here never hold an address book
                bound[p] = (kind, value)
        entities.append(SharedEntity(kind, value, tuple(sorted(ids[p] for p in positions))))
    quiet_count = min(k - 2, int(k * QUIET_SHARE + rng.random()))
    quiet = set(rng.sample(range(k), quiet_count))
    # The organised part: one product and nearly one amount, within a window of 20 minutes to 4 hours.
    product = rng.choice(products)
    amount = float(rng.randrange(5_000, 30_001, 1_000))
    term = rng.choice((6, 12, 12, 24))
    window = min(rng.randint(*_RING_WINDOW_MS), place.room)
    first = daytime_ms(rng, place.earliest, place.latest - window + 1)
    sessions: dict[int, list[ScriptedSession]] = {}  # by position in the ring
    plans: dict[int, RingMemberPlan] = {}
    for p, index in enumerate(indices):
        episode_id = f"ep{seed}-fraud_ring-{ids[p]}"
        profile = bound.get(p)
        if p in quiet:
            steps = _quiet_steps(rng, profile, new_device=p in device)
            low = max(place.earliest, first - _QUIET_BEFORE_MS)
            high = max(low, min(first + window, place.latest) - steps[-1].ts_ms)
            sessions[p] = [ScriptedSession(_shift(steps, daytime_ms(rng, low, high + 1)), device.get(p), ip.get(p))]
            plans[p] = RingMemberPlan(episode_id, index, 0, 0, role="quiet")
            continue
        mine = product if rng.random() < 0.85 else rng.choice(products)
        apply_steps = _apply_steps(rng, profile, mine, new_device=p in device)
        draw_steps = _draw_steps(rng)
        busy = apply_steps[-1].ts_ms + _SESSION_GAP_MS + draw_steps[-1].ts_ms
        apply_at = first + int(rng.random() * max(0, window - busy) * 0.6)
        draw_at = apply_at + apply_steps[-1].ts_ms + _SESSION_GAP_MS
        draw_at += int(rng.random() * max(0, first + window - busy - apply_at))
        sessions[p] = [
            ScriptedSession(_shift(apply_steps, apply_at), device.get(p), ip.get(p)),
            ScriptedSession(_shift(draw_steps, draw_at), device.get(p), ip.get(p)),
        ]
        own = amount if rng.random() < 0.6 else max(1_000.0, amount + rng.choice((-1_000, -500, 500, 1_000)))
        plans[p] = RingMemberPlan(
            episode_id,
            index,
            0,
            0,
            role="active",
            amount=own,
            term_months=term,
            product=mine,
            draw_share=round(rng.uniform(*RING_DRAW_SHARE), 3),
        )
    _one_at_a_time(rng, sessions, device, place.latest)
    # Its own stream of draws: adding address books moves nothing else of the ring.
    book = _ring_book(seeded_rng(seed, "fraud_ring_book", ring_id), k)
    if book is not None:
        contacts, value, uploaders = book
        for p in uploaders:
            sessions[p][0] = _with_upload(sessions[p][0], contacts, value)
        entities.append(SharedEntity("contact_list", value, tuple(sorted(ids[p] for p in uploaders))))
    for p, plan in plans.items():
        done = tuple(sessions[p])
        plans[p] = replace(plan, start_ms=done[0].steps[0].ts_ms, end_ms=done[-1].end_ms, sessions=done)
    group = InjectedGroup(
        "fraud_ring",
        ring_id,
        pattern,
        tuple(sorted(ids)),
        tuple(sorted(ids[p] for p in quiet)),
        tuple(entities),
        min(plan.start_ms for plan in plans.values()),
        max(plan.end_ms for plan in plans.values()),
    )
    out.groups.append(group)
    out.by_customer.update({plan.customer_index: replace(plan, group=group) for plan in plans.values()})


def _one_at_a_time(
    rng: random.Random, sessions: dict[int, list[ScriptedSession]], device: Mapping[int, str], latest: int
) -> None:
    """Move the sessions on each shared device so they follow one another (one phone, accounts switched).

    A member uses at most one shared device, so each device's timeline is independent. If the span has no room
    for the sessions in a row (a large ring in a short span), they stay as planned.
    """
    users: dict[str, list[int]] = {}
    for p, value in device.items():
        users.setdefault(value, []).append(p)
    for positions in users.values():
        moved = {p: list(sessions[p]) for p in positions}
        queue = sorted((s.steps[0].ts_ms, p, n) for p in positions for n, s in enumerate(sessions[p]))
        free_at: int | None = None
        for _, p, n in queue:
            session = moved[p][n]
            at = session.steps[0].ts_ms
            if free_at is not None:
                at = max(at, free_at + _seconds(rng, 20, 120))  # log out, log in as the next account
            if n > 0:
                at = max(at, moved[p][n - 1].end_ms + _SESSION_GAP_MS)
            session = replace(session, steps=_shift(session.steps, at - session.steps[0].ts_ms))
            moved[p][n] = session
            free_at = session.end_ms
        if free_at is not None and free_at <= latest:
            sessions.update(moved)


def _ring_book(rng: random.Random, k: int) -> tuple[int, str, list[int]] | None:
    """The ring's shared address book, if it has one: size, hash and the uploaders (positions, half or more)."""
    if rng.random() >= _BOOK_RING_SHARE:
        return None
    uploaders = sorted(rng.sample(range(k), rng.randint(max(2, -(-k // 2)), k)))
    return rng.randint(*_RING_BOOK_CONTACTS), hex_id(rng, "h"), uploaders


def _with_upload(session: ScriptedSession, contacts: int, value: str) -> ScriptedSession:
    """``session`` with an address-book upload a second after its login (the permission prompt of a new login)."""
    login, *rest = session.steps
    upload = Step(login.ts_ms + SECOND_MS, "contact_upload", value_hash=value, contacts=contacts)
    return replace(session, steps=(login, upload, *rest))


def _shift(steps: Sequence[Step], at: int) -> tuple[Step, ...]:
    return tuple(replace(s, ts_ms=s.ts_ms + at) for s in steps)


def _login(rng: random.Random, new_device: bool) -> Step:
    method: LoginMethod = "sms" if new_device else rng.choice(("password", "biometric", "sms"))
    return Step(0, "login", method=method)


def _bind(rng: random.Random, t: int, profile: tuple[ProfileField, str] | None, out: list[Step]) -> int:
    """Append the binding of a shared card or phone (page, then change); return the new time."""
    if profile is None:
        return t
    changed, value = profile
    t += _seconds(rng, 5, 40)
    out.append(Step(t, "page", page=f"profile/{changed}"))
    t += _seconds(rng, 30, 120)
    out.append(Step(t, "profile_change", changed=changed, value_hash=value))
    return t


def _apply_steps(
    rng: random.Random, profile: tuple[ProfileField, str] | None, product: str, new_device: bool
) -> list[Step]:
    """Login, home, the shared card or phone bound (if that is the link), the application page, the application."""
    out = [_login(rng, new_device)]
    t = _seconds(rng, 3, 15)
    out.append(Step(t, "page", page="home"))
    t = _bind(rng, t, profile, out)
    t += _seconds(rng, 10, 60)
    out.append(Step(t, "page", page="loan/apply", product=product))
    t += _seconds(rng, 30, 180)
    out.append(Step(t, "application", product=product))
    return out


def _draw_steps(rng: random.Random) -> list[Step]:
    """Login, a look at the limit, the drawdown page, the drawdown."""
    out = [_login(rng, new_device=False)]  # the device is known by now (it applied from it)
    t = _seconds(rng, 10, 60)
    out.append(Step(t, "limit_query"))
    t += _seconds(rng, 5, 30)
    out.append(Step(t, "page", page="loan/drawdown"))
    t += _seconds(rng, 20, 120)
    out.append(Step(t, "drawdown"))
    return out


def _quiet_steps(rng: random.Random, profile: tuple[ProfileField, str] | None, new_device: bool) -> list[Step]:
    """Login, home, the shared card or phone bound (if that is the link), a look at the limit."""
    out = [_login(rng, new_device)]
    t = _seconds(rng, 3, 15)
    out.append(Step(t, "page", page="home"))
    t = _bind(rng, t, profile, out)
    t += _seconds(rng, 10, 60)
    out.append(Step(t, "limit_query"))
    return out


# -- decoys ---------------------------------------------------------------------------------------------------


def _browse_steps(rng: random.Random, login: LoginMethod) -> list[Step]:
    """An ordinary look around: login, home, a few pages, sometimes the limit. Nothing is changed or drawn."""
    out = [Step(0, "login", method=login)]
    t = _seconds(rng, 3, 15)
    out.append(Step(t, "page", page="home"))
    pages = ("bill", "repay/plan", "coupon", "message", "profile", "help")
    for page in rng.sample(pages, rng.choices((0, 1, 2, 3), (0.3, 0.35, 0.25, 0.1))[0]):
        t += _seconds(rng, 5, 40)
        out.append(Step(t, "page", page=page))
    if rng.random() < 0.3:
        t += _seconds(rng, 10, 60)
        out.append(Step(t, "limit_query"))
    return out


def _carrier_nat_ip(rng: random.Random) -> str:
    return f"100.{rng.randint(64, 127)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def _venue_window(place: Placement, mall: bool, rng: random.Random) -> tuple[int, int]:
    """Where a public address is busy: one day's mall opening hours (if the span holds an hour of them), or a day."""
    if mall:
        midnight = china_midnight_ms(place.earliest)
        options = []
        while midnight < place.latest:
            low = max(place.earliest, midnight + _MALL_HOURS[0] * HOUR_MS)
            high = min(place.latest, midnight + _MALL_HOURS[1] * HOUR_MS)
            if high - low >= HOUR_MS:
                options.append((low, high))
            midnight += 24 * HOUR_MS
        if options:
            return rng.choice(options)
    length = min(place.room, 24 * HOUR_MS)
    low = place.earliest + int(rng.random() * (place.room - length + 1))
    return low, low + length


def _plan_wifi(
    rng: random.Random,
    seed: int,
    group_id: str,
    indices: list[int],
    mall: str | None,
    place: Placement,
    out: GroupPlans,
) -> None:
    address = mall if mall is not None else _carrier_nat_ip(rng)
    low, high = _venue_window(place, mall is not None, rng)
    plans: dict[int, PublicWifiPlan] = {}
    for index in indices:
        steps = _browse_steps(rng, rng.choice(("password", "biometric", "sms")))
        at = daytime_ms(rng, low, max(low + 1, high - steps[-1].ts_ms))
        session = ScriptedSession(_shift(steps, at), None, address)
        episode_id = f"ep{seed}-decoy_public_wifi-{customer_id_for(index)}"
        plans[index] = PublicWifiPlan(episode_id, index, at, session.end_ms, role="decoy", sessions=(session,))
    ids = tuple(sorted(customer_id_for(i) for i in indices))
    group = InjectedGroup(
        "decoy_public_wifi",
        group_id,
        "public_ip",
        ids,
        (),
        (SharedEntity("ip", address, ids),),
        min(p.start_ms for p in plans.values()),
        max(p.end_ms for p in plans.values()),
        venue="mall_wifi" if mall is not None else "carrier_nat",
    )
    out.groups.append(group)
    out.by_customer.update({i: replace(plan, group=group) for i, plan in plans.items()})


def _plan_family(
    rng: random.Random, seed: int, group_id: str, pair: Sequence[int], place: Placement, out: GroupPlans
) -> None:
    device, home = hex_id(rng, "d"), _ring_ip(rng)
    # A few sessions over an evening or a day, one at a time on the shared device; each partner uses it at least
    # once (the other sessions: sometimes their own phone on the home network).
    window = min(place.room, rng.randint(4 * HOUR_MS, 16 * HOUR_MS))
    count = max(2, min(rng.randint(3, 7), (window - 5 * MINUTE_MS) // _FAMILY_GAP_MS))
    low = place.earliest + int(rng.random() * (place.room - window + 1))
    free = max(low + 1, low + window - count * _FAMILY_GAP_MS)
    times = sorted(daytime_ms(rng, low, free) for _ in range(count))
    times = [t + n * _FAMILY_GAP_MS for n, t in enumerate(times)]
    who = [0, 1] if rng.random() < 0.5 else [1, 0]
    who += [rng.randrange(2) for _ in range(count - 2)]
    sessions: list[list[ScriptedSession]] = [[], []]
    for n, (at, partner) in enumerate(zip(times, who, strict=True)):
        shared = n < 2 or rng.random() < 0.7
        steps = _browse_steps(rng, "password" if shared else rng.choice(("password", "biometric", "sms")))
        sessions[partner].append(ScriptedSession(_shift(steps, at), device if shared else None, home))
    book = _family_book(seeded_rng(seed, "decoy_family_book", group_id))
    if book is not None:  # both partners, in their first session
        for partner_sessions in sessions:
            partner_sessions[0] = _with_upload(partner_sessions[0], *book)
    plans: dict[int, FamilyPlan] = {}
    for partner, index in enumerate(pair):
        mine = tuple(sessions[partner])
        episode_id = f"ep{seed}-decoy_family-{customer_id_for(index)}"
        plans[index] = FamilyPlan(
            episode_id, index, mine[0].steps[0].ts_ms, mine[-1].end_ms, role="decoy", sessions=mine
        )
    ids = tuple(sorted(customer_id_for(i) for i in pair))
    group = InjectedGroup(
        "decoy_family",
        group_id,
        "household",
        ids,
        (),
        (
            SharedEntity("device", device, ids),
            SharedEntity("ip", home, ids),
            *([SharedEntity("contact_list", book[1], ids)] if book is not None else []),
        ),
        min(p.start_ms for p in plans.values()),
        max(p.end_ms for p in plans.values()),
    )
    out.groups.append(group)
    out.by_customer.update({i: replace(plan, group=group) for i, plan in plans.items()})


def _family_book(rng: random.Random) -> tuple[int, str] | None:
    """The couple's identical address book, if they upload one: empty (one hash for all) or a few family numbers."""
    if rng.random() >= _FAMILY_BOOK_SHARE:
        return None
    if rng.random() < 0.5:
        return 0, EMPTY_BOOK_HASH
    return rng.randint(*_FAMILY_BOOK_CONTACTS), hex_id(rng, "h")
