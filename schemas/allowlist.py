"""Allow-list entries: customers and entities that never alert, on the compacted ``risk.allowlist.v1`` topic.

One record per entry, keyed by :func:`allowlist_key` (``kind:value``); the latest record for a key wins and a
tombstone (a record without a value) removes the entry. Events of an allow-listed customer still update the
profile and teach the models; only alerts and limit actions are withheld. Entity entries (a company's shared
office IP, a branch's test device) keep that entity out of entity links and rings.

Every entry says why it exists and who added it, and may expire: an allow-list is a standing exception to risk
control, and exceptions without an owner or an end date are how fraud rings get waved through.

Example:
    >>> entry = AllowListEntry(kind="customer", value="c_42", reason="staff test account", added_by="risk-ops")
    >>> allowlist_key(entry.kind, entry.value), entry.active_at(1_900_000_000_000)
    ('customer:c_42', True)
"""

from __future__ import annotations

import ipaddress
from typing import Final, Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from schemas.common import Contract, EventTime, SchemaVersion, to_ms
from schemas.ids import PseudoId

__all__ = ["ALLOWLIST_KINDS", "AllowListEntry", "AllowListKind", "allowlist_key"]

AllowListKind = Literal["customer", "device", "ip", "bank_card", "phone", "contact_list"]
ALLOWLIST_KINDS: Final[tuple[AllowListKind, ...]] = ("customer", "device", "ip", "bank_card", "phone", "contact_list")


def allowlist_key(kind: str, value: str) -> str:
    """The record key of an entry: ``kind:value``."""
    if kind not in ALLOWLIST_KINDS:
        raise ValueError(f"unknown allow-list kind {kind!r}; expected one of {', '.join(ALLOWLIST_KINDS)}")
    return f"{kind}:{value}"


class AllowListEntry(Contract):
    """One allow-listed customer or entity, with its reason, owner and optional expiry."""

    schema_version: SchemaVersion = 1
    kind: AllowListKind = Field(description="What the value names: a customer or an entity kind.")
    value: PseudoId = Field(description="The customer id, device id, IP, or bank-card / phone / contact-list hash.")
    reason: str = Field(min_length=3, max_length=500, description="Why this exception exists.")
    added_by: str = Field(min_length=1, max_length=128, description="Who is accountable for it.")
    expires_at: EventTime | None = Field(
        default=None, description="Event time from which the entry no longer applies; unset = until removed."
    )

    @field_validator("value")
    @classmethod
    def _canonical_ip(cls, value: str, info: ValidationInfo) -> str:
        # Events carry IPs in canonical form (schemas.ids.IpAddress); an entry must match them byte for byte.
        if info.data.get("kind") != "ip":
            return value
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise PydanticCustomError("ip_address", "value is not a valid IPv4 or IPv6 address") from None

    def active_at(self, at_ms: int) -> bool:
        """Whether the entry applies to an event at ``at_ms`` (epoch ms, event time)."""
        return self.expires_at is None or at_ms < to_ms(self.expires_at)
