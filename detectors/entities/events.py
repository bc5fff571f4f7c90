"""What the entity state emits and the ring detector consumes: links between customers and public entities.

These are plain frozen values with a JSON-ready ``to_dict`` / ``from_dict``, cheap to build in the entity agent's
hot loop; the stream layer publishes links as the contract :class:`~schemas.entities.EntityLink` (same fields) and
feeds both kinds to :class:`~detectors.entities.rings.RingDetector`: the ring detector needs the
:class:`PublicEntity` notices too, to retract the links an entity sent before it reached its ceiling.

Example:
    >>> link = LinkEvent.between("c_2", "c_1", EntityKey("device", "d_1"), 1_000, 2_000)
    >>> link.customer_a, link.customer_b, str(link.entity)
    ('c_1', 'c_2', 'device d_1')
    >>> LinkEvent.from_dict(link.to_dict()) == link
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

from detectors.entities.keys import ENTITY_KINDS, EntityKey

__all__ = ["EntityEvent", "LinkEvent", "PublicEntity", "entity_from", "event_from_dict"]


def entity_from(kind: str, value: str) -> EntityKey:
    """An :class:`EntityKey` from untyped parts (a decoded dict), refusing unknown kinds."""
    if kind not in ENTITY_KINDS:
        raise ValueError(f"unknown entity kind {kind!r}; expected one of {', '.join(ENTITY_KINDS)}")
    return EntityKey(kind, value)


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """Customers ``customer_a < customer_b`` both used ``entity`` within its link horizon.

    ``first_seen_ms`` is the later of the two customers' first use of the entity (the start of their co-use, as
    remembered); ``last_seen_ms`` is the latest use by either while both were within the horizon. ``refresh`` is
    False the first time a pair is sent in a horizon and True when it is re-sent because ``last_seen_ms``
    advanced, so downstream expiry keeps a live link alive.
    """

    customer_a: str
    customer_b: str
    entity: EntityKey
    first_seen_ms: int
    last_seen_ms: int
    refresh: bool = False

    def __post_init__(self) -> None:
        if not self.customer_a < self.customer_b:
            raise ValueError(f"link customers must be ordered and distinct: {self.customer_a!r}, {self.customer_b!r}")
        if self.last_seen_ms < self.first_seen_ms:
            raise ValueError("link last_seen_ms must not be earlier than first_seen_ms")

    @classmethod
    def between(
        cls, one: str, other: str, entity: EntityKey, first_seen_ms: int, last_seen_ms: int, refresh: bool = False
    ) -> LinkEvent:
        """A link between two customers given in any order."""
        a, b = (one, other) if one < other else (other, one)
        return cls(a, b, entity, first_seen_ms, last_seen_ms, refresh)

    @property
    def pair(self) -> tuple[str, str]:
        """The two customers, ordered."""
        return self.customer_a, self.customer_b

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "type": "link",
            "a": self.customer_a,
            "b": self.customer_b,
            "kind": self.entity.kind,
            "value": self.entity.value,
            "first": self.first_seen_ms,
            "last": self.last_seen_ms,
            "refresh": self.refresh,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LinkEvent:
        """Inverse of :meth:`to_dict`."""
        return cls(
            data["a"], data["b"], entity_from(data["kind"], data["value"]),
            int(data["first"]), int(data["last"]), bool(data["refresh"]),
        )


@dataclass(frozen=True, slots=True)
class PublicEntity:
    """``entity`` had more than ``max_customers`` distinct customers within its link horizon: it is public.

    Sent once when an entity becomes public; it stays public until ``until_ms`` of event time (extended while it
    stays over the ceiling, without another report). ``customers`` is the count that tripped the ceiling; when
    ``saturated`` it is a lower bound (customers were forgotten to keep the state bounded).
    """

    entity: EntityKey
    customers: int
    saturated: bool
    max_customers: int
    ts_ms: int
    until_ms: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "type": "public",
            "kind": self.entity.kind,
            "value": self.entity.value,
            "customers": self.customers,
            "saturated": self.saturated,
            "max": self.max_customers,
            "ts": self.ts_ms,
            "until": self.until_ms,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PublicEntity:
        """Inverse of :meth:`to_dict`."""
        return cls(
            entity_from(data["kind"], data["value"]), int(data["customers"]), bool(data["saturated"]),
            int(data["max"]), int(data["ts"]), int(data["until"]),
        )


EntityEvent: TypeAlias = LinkEvent | PublicEntity
"""Anything :func:`~detectors.entities.entity_state.observe` emits."""


def event_from_dict(data: dict[str, Any]) -> EntityEvent:
    """Decode either event from its ``to_dict`` form (by ``type``)."""
    if data.get("type") == "link":
        return LinkEvent.from_dict(data)
    if data.get("type") == "public":
        return PublicEntity.from_dict(data)
    raise ValueError(f"unknown entity event type {data.get('type')!r}")
