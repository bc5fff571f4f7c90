"""The entities a behaviour event carries: device, IP address, network, bound phone / bank card, address book.

Organised rings (团伙) show up as many customers behind the same entities. :func:`entity_keys` names the entities
one decoded behaviour event carries, as :class:`EntityKey` values ``(kind, value)``, in a fixed order:

1. ``("device", device_id)`` — every event.
2. ``("ip", ip)`` — every event whose address is *routable* (see below), in the canonical form the schema keeps.
3. ``("net24", network)`` — the same address's network: ``a.b.c.0/24`` for IPv4, the ``/64`` for IPv6
   (``2001:db8:1:2::/64``; one IPv6 subscriber usually owns a whole /64, so it plays the role a /24 plays for
   IPv4). An IPv4-mapped IPv6 address (``::ffff:1.2.3.4``) counts as the IPv4 address it maps.
4. ``("phone", hash)`` / ``("bank_card", hash)`` — a :class:`~schemas.behavior.ProfileChange` of that field with
   a ``new_value_hash``: the salted hash of the newly bound phone or card.
5. ``("contact_list", hash)`` — a :class:`~schemas.behavior.ContactUpload` with a ``contacts_hash`` (the hash of
   the uploaded address book as a set) and at least ``min_contacts`` contacts.

Why the address book is an entity, and how it is bounded (defaults in
:class:`~detectors.entities.config.ContactListPolicy`):

- *Signal.* Two people's full address books are practically never the same set: a real book holds hundreds of
  entries and even a couple's differ (each holds the other, not themselves). The same hash from two customers
  means one operator's prepared book loaded into several accounts — a farm (养号) passing "has a social graph"
  checks. So two customers link (``min_customers`` 2), over 30 days like a bound card (books are uploaded at
  onboarding, members are enrolled over weeks), and the kind joins rings by default (``rings.ring_kinds``) with
  the weight of a bound phone (0.7): strong, but it does not move money as a shared card does.
- *Small books.* An empty book hashes to one value for every customer whose app read no contacts (permission
  refused), and a handful of family numbers set up together on relatives' phones can match exactly. Below
  ``min_contacts`` (20) a book names no entity: the count decides here, before any state is kept, because only
  the event carries it.
- *Public ceiling.* Above ``max_customers`` (30, as a device) the hash is a broken value — an SDK placeholder,
  a ROM's preset contacts — not a ring; a genuine ring that large is still held together by its devices and
  cards.

Left out on purpose:

- Unspecified, loopback, link-local and multicast addresses (``0.0.0.0``, ``127.0.0.1``, ``fe80::1``...): an SDK
  that could not read the address reports these, and they say nothing about where the customer was. Private
  and carrier-NAT space (10/8, 100.64/10, ...) is kept: it is what an internal gateway or the simulator reports,
  and a private address shared by strangers is caught by the public-entity ceiling
  (:attr:`~detectors.entities.config.KindPolicy.max_customers`) like any public Wi-Fi.
- ``profile_change`` of ``device`` (the new device appears as ``device_id`` on the customer's next events, in
  the id space links compare; the hash is in another) and of ``address`` (co-residents share addresses
  legitimately; not a ring signal by itself).

Example:
    >>> from schemas.behavior import BEHAVIOR_ADAPTER
    >>> event = BEHAVIOR_ADAPTER.validate_python({
    ...     "event_type": "profile_change", "event_id": "e1", "customer_id": "c_000123", "ts": 1767603600000,
    ...     "device_id": "d_9f2c", "ip": "100.64.7.9", "channel": "h5", "field": "bank_card",
    ...     "new_value_hash": "bc_77aa",
    ... })
    >>> [tuple(k) for k in entity_keys(event)]
    [('device', 'd_9f2c'), ('ip', '100.64.7.9'), ('net24', '100.64.7.0/24'), ('bank_card', 'bc_77aa')]
    >>> network_of("2001:db8:1:2:3:4:5:6"), network_of("::ffff:192.0.2.7"), network_of("127.0.0.1")
    ('2001:db8:1:2::/64', '192.0.2.0/24', None)
    >>> upload = BEHAVIOR_ADAPTER.validate_python({
    ...     "event_type": "contact_upload", "event_id": "e2", "customer_id": "c_000123", "ts": 1767603600000,
    ...     "device_id": "d_9f2c", "ip": "127.0.0.1", "channel": "h5", "contacts_count": 214,
    ...     "contacts_hash": "cl_51e0",
    ... })
    >>> [tuple(k) for k in entity_keys(upload)]  # 214 contacts: enough to name the book
    [('device', 'd_9f2c'), ('contact_list', 'cl_51e0')]
    >>> [tuple(k) for k in entity_keys(upload, min_contacts=500)]
    [('device', 'd_9f2c')]
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Final, NamedTuple

from schemas.behavior import BehaviorBase, ContactUpload, ProfileChange
from schemas.outputs import ENTITY_KINDS, EntityKind  # the contract's kinds (EntityRef); ``net24``: /24 or /64

__all__ = ["ENTITY_KINDS", "MIN_CONTACTS", "EntityKey", "EntityKind", "entity_keys", "network_of", "routable"]

MIN_CONTACTS: Final = 20
"""Default smallest address book that names a ``contact_list`` entity (see the module docstring)."""


class EntityKey(NamedTuple):
    """One entity: its kind and its pseudonymous value. A plain tuple too, so ``("ip", "1.2.3.4")`` equals it."""

    kind: EntityKind
    value: str

    def __str__(self) -> str:
        return f"{self.kind} {self.value}"


_PROFILE_KINDS: Final[dict[str, EntityKind]] = {"phone": "phone", "bank_card": "bank_card"}


@lru_cache(maxsize=65_536)
def _address(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_unspecified or address.is_loopback or address.is_link_local or address.is_multicast:
        return None
    return address


def routable(ip: str) -> bool:
    """Whether ``ip`` is an address that can locate a customer (not unspecified, loopback, link-local, multicast).

    >>> routable("203.0.113.9"), routable("10.1.2.3"), routable("::1"), routable("not an ip")
    (True, True, False, False)
    """
    return _address(ip) is not None


def network_of(ip: str) -> str | None:
    """The /24 (IPv4) or /64 (IPv6) network of ``ip`` as a string, or None if the address is not routable."""
    address = _address(ip)
    if address is None:
        return None
    prefix = 24 if address.version == 4 else 64
    return str(ipaddress.ip_network((address, prefix), strict=False))


def entity_keys(event: BehaviorBase, min_contacts: int = MIN_CONTACTS) -> tuple[EntityKey, ...]:
    """The entities ``event`` carries, in the order of the module docstring, without duplicates.

    ``min_contacts``: the configured ``entities.contact_list.min_contacts``; smaller address books name no entity.
    """
    keys = [EntityKey("device", event.device_id)]
    network = network_of(event.ip)
    if network is not None:
        address = _address(event.ip)
        keys.append(EntityKey("ip", str(address)))
        keys.append(EntityKey("net24", network))
    if isinstance(event, ProfileChange) and event.new_value_hash is not None:
        kind = _PROFILE_KINDS.get(event.field)
        if kind is not None:
            keys.append(EntityKey(kind, event.new_value_hash))
    elif isinstance(event, ContactUpload) and event.contacts_hash is not None and event.contacts_count >= min_contacts:
        keys.append(EntityKey("contact_list", event.contacts_hash))
    return tuple(keys)
