"""Entity links and fraud rings (团伙): what the entity and ring agents publish.

- :class:`EntityLink` on ``risk.links.v1``: two customers used the same device, IP, network, bank card, phone
  or address book within the entity's link horizon.
- :class:`RingSnapshot` on ``risk.rings.v1``: a connected group of linked customers, its score and members,
  each time the ring changes (analysts query a customer's neighbourhood from these in ClickHouse).
- :class:`RingMembership` on the worker's internal membership topic, keyed by customer: a customer's current
  ring score, which the customer's own engine step fuses with its other detectors (risk propagation).

Example:
    >>> link = EntityLink(customer_a="c_1", customer_b="c_2", entity=EntityRef(kind="device", value="d_9"),
    ...                   first_seen=1767603600000, last_seen=1767603660000)
    >>> link.link_id == entity_link_id("c_1", "c_2", "device", "d_9"), str(link.entity)
    (True, 'device d_9')
"""

from __future__ import annotations

from typing import Final, Literal, Self

from pydantic import Field, model_validator

from schemas.common import Contract, EventTime, SchemaVersion
from schemas.ids import PseudoId
from schemas.outputs import ENTITY_KINDS, EntityKind, EntityRef, EntityValue, RingRef, Tier, stable_digest

__all__ = [
    "ENTITY_KINDS",
    "EntityKind",
    "EntityLink",
    "EntityRef",
    "EntityValue",
    "RingRef",
    "RingMembership",
    "RingSnapshot",
    "entity_link_id",
    "ring_membership_id",
]

MAX_RING_MEMBERS: Final = 1000
MAX_RING_ENTITIES: Final = 200


def entity_link_id(customer_a: str, customer_b: str, kind: str, value: str) -> str:
    """The id of the link between two customers (in either order) through one entity: 32 hex of SHA-256."""
    a, b = sorted((customer_a, customer_b))
    return stable_digest("link/v1", a, b, kind, value)


def ring_membership_id(ring_id: str, customer_id: str, ts_ms: int, score: float) -> str:
    """The id of one membership update (deterministic, so a replay is recognised)."""
    return stable_digest("ring-member/v1", ring_id, customer_id, str(ts_ms), f"{score:.6f}")


class EntityLink(Contract):
    """Customers ``customer_a < customer_b`` both used ``entity`` within its link horizon (event time)."""

    schema_version: SchemaVersion = 1
    link_id: str = Field(default="", pattern=r"^([0-9a-f]{32})?$", description="Derived when left empty.")
    customer_a: PseudoId
    customer_b: PseudoId
    entity: EntityRef
    first_seen: EventTime = Field(description="Start of the two customers' co-use of the entity.")
    last_seen: EventTime = Field(description="Latest use of the entity by either of them.")
    refresh: bool = Field(default=False, description="A re-send because last_seen advanced, not a new link.")

    @model_validator(mode="after")
    def _ordered_with_id(self) -> Self:
        if not self.customer_a < self.customer_b:
            raise ValueError("customer_a must sort before customer_b")
        if self.last_seen < self.first_seen:
            raise ValueError("last_seen must not be before first_seen")
        derived = entity_link_id(self.customer_a, self.customer_b, self.entity.kind, self.entity.value)
        if self.link_id and self.link_id != derived:
            raise ValueError("link_id does not match the customers and the entity")
        object.__setattr__(self, "link_id", derived)
        return self


class RingSnapshot(Contract):
    """A fraud ring as it stands: members, shared entities, score and tier (None below notice)."""

    schema_version: SchemaVersion = 1
    ring_id: str = Field(pattern=r"^[0-9a-f]{16,64}$")
    ts: EventTime = Field(description="Event time of the latest link in the ring.")
    first_seen: EventTime
    size: int = Field(ge=2)
    score: float = Field(ge=0, le=1)
    tier: Tier | None = None
    members: list[PseudoId] = Field(max_length=MAX_RING_MEMBERS)
    entities: list[EntityRef] = Field(max_length=MAX_RING_ENTITIES)
    links: int = Field(ge=1, description="Live links joining the members.")
    dissolved: bool = Field(default=False, description="The ring's links expired: it no longer exists.")


class RingMembership(Contract):
    """A customer's ring score now: fused with the customer's own detectors; ``score`` 0 means it left the ring."""

    schema_version: SchemaVersion = 1
    event_type: Literal["ring_membership"] = "ring_membership"
    event_id: str = Field(pattern=r"^[0-9a-f]{32}$", description="ring_membership_id(ring, customer, ts, score)")
    customer_id: PseudoId
    ts: EventTime
    ring_id: str = Field(pattern=r"^[0-9a-f]{16,64}$")
    score: float = Field(ge=0, le=1)
    size: int = Field(ge=0)
    via: list[EntityRef] = Field(max_length=MAX_RING_ENTITIES, description="The entities this member shares.")
