"""Configuration of entity links and rings: data, validated by pydantic (DESIGN "Rules are data").

Both models are frozen and refuse unknown keys (a typo in a rule file is an error); every field has a description
and a default, and validation errors name the field, e.g. ``device.max_customers``:
``max_customers (80) must not exceed capacity (64)``.

Defaults, per entity kind (see :class:`KindPolicy`):

============ ============= ============= ============ ================================================================
kind         min customers max customers link horizon why
============ ============= ============= ============ ================================================================
device       2             30            24 h         a phone is personal; a "device" with dozens of customers is a
                                                      broken id (emulators, a default Android ID), not a ring
bank_card    2             20            30 d         a card bound by two customers is a hard signal even weeks apart
phone        2             20            30 d         the same for a bound phone number
ip           3             20            30 min       addresses are reassigned; only near-simultaneous use counts,
                                                      and a household of two is normal
net24        5             40            30 min       a whole /24 (/64): weak, meaningful only in numbers
contact_list 2             30            30 d         one address book (of at least ``min_contacts`` 20 entries)
                                                      uploaded by two customers is one operator's; smaller books and
                                                      the empty book hash alike for strangers and name no entity
                                                      (see :mod:`detectors.entities.keys`)
============ ============= ============= ============ ================================================================

Example:
    >>> config = EntityConfig.model_validate({"ip": {"min_customers": 4}})
    >>> config.policy("ip").min_customers, config.policy("ip").max_customers, config.policy("device").min_customers
    (4, 20, 2)
    >>> RingConfig().horizon_minutes, RingConfig().min_size
    (1440, 3)
"""

from __future__ import annotations

from typing import Final

from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from detectors.decision.config import TierThresholds
from detectors.entities.keys import MIN_CONTACTS, EntityKind
from schemas.common import Contract
from schemas.outputs import Tier

__all__ = ["MINUTE_MS", "ContactListPolicy", "EntityConfig", "KindPolicy", "KindWeights", "RingConfig", "TierWeights"]

MINUTE_MS: Final = 60_000
_MAX_MINUTES: Final = 366 * 1440


class KindPolicy(Contract):
    """When an entity of one kind links its customers, and when it is too public to mean anything."""

    min_customers: int = Field(
        default=2, ge=2, le=1000, description="Distinct customers within the link horizon from which links are emitted."
    )
    max_customers: int = Field(
        default=20,
        ge=2,
        le=1000,
        validate_default=True,
        description="More distinct customers than this within the link horizon make the entity public: no links.",
    )
    link_horizon_minutes: int = Field(
        default=1440,
        ge=1,
        le=_MAX_MINUTES,
        description="Customers seen on the entity within this much event time of each other are linked.",
    )

    @field_validator("max_customers")
    @classmethod
    def _not_below_min(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min_customers")
        if low is not None and value < low:
            raise PydanticCustomError(
                "customers_order", "max_customers ({value}) must not be below min_customers ({low})",
                {"value": value, "low": low},
            )
        return value

    @property
    def link_horizon_ms(self) -> int:
        """The link horizon in milliseconds."""
        return self.link_horizon_minutes * MINUTE_MS


class ContactListPolicy(KindPolicy):
    """The policy of address-book hashes, and the smallest book that names one."""

    min_contacts: int = Field(
        default=MIN_CONTACTS,
        ge=0,
        le=1_000_000,
        description=(
            "Contact uploads with fewer contacts than this name no contact_list entity: an empty or tiny address "
            "book hashes alike for unrelated customers (0: every upload with a hash counts)."
        ),
    )


class EntityConfig(Contract):
    """Per-entity state and link emission: horizons, memory bound, refresh interval and one policy per kind."""

    version: int = Field(default=1, ge=1, description="Version of this configuration, recorded with what it emits.")
    horizons_minutes: tuple[int, ...] = Field(
        default=(30, 1440, 43200),
        min_length=1,
        max_length=8,
        description="Horizons (minutes, increasing) of the distinct-customer counts; the longest is the retention.",
    )
    capacity: int = Field(
        default=64,
        ge=2,
        le=4096,
        description="Customers remembered per entity; beyond it the least recently seen is forgotten and counted.",
    )
    refresh_minutes: int = Field(
        default=60,
        ge=1,
        le=_MAX_MINUTES,
        description="A linked pair is re-sent (a refresh) once its last_seen has advanced by more than this.",
    )
    public_hold_minutes: int = Field(
        default=1440,
        ge=1,
        le=_MAX_MINUTES,
        description="How long (event time) an entity stays public after it was last over max_customers.",
    )
    device: KindPolicy = Field(
        default=KindPolicy(min_customers=2, max_customers=30, link_horizon_minutes=1440),
        validate_default=True,
        description="Policy for device ids.",
    )
    ip: KindPolicy = Field(
        default=KindPolicy(min_customers=3, max_customers=20, link_horizon_minutes=30),
        validate_default=True,
        description="Policy for IP addresses.",
    )
    net24: KindPolicy = Field(
        default=KindPolicy(min_customers=5, max_customers=40, link_horizon_minutes=30),
        validate_default=True,
        description="Policy for IPv4 /24 and IPv6 /64 networks.",
    )
    bank_card: KindPolicy = Field(
        default=KindPolicy(min_customers=2, max_customers=20, link_horizon_minutes=43200),
        validate_default=True,
        description="Policy for bank-card hashes.",
    )
    phone: KindPolicy = Field(
        default=KindPolicy(min_customers=2, max_customers=20, link_horizon_minutes=43200),
        validate_default=True,
        description="Policy for phone hashes.",
    )
    contact_list: ContactListPolicy = Field(
        default=ContactListPolicy(min_customers=2, max_customers=30, link_horizon_minutes=43200),
        validate_default=True,
        description="Policy for address-book hashes (contact uploads), with the smallest book that counts.",
    )

    @field_validator("horizons_minutes")
    @classmethod
    def _increasing(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        for low, high in zip(value, value[1:], strict=False):
            if high <= low:
                raise PydanticCustomError(
                    "horizons_order", "horizons must increase: {high} follows {low}", {"high": high, "low": low}
                )
        if value[0] < 1 or value[-1] > _MAX_MINUTES:
            raise PydanticCustomError(
                "horizons_range", "horizons must lie in [1, {max}] minutes", {"max": _MAX_MINUTES}
            )
        return value

    @field_validator("device", "ip", "net24", "bank_card", "phone", "contact_list")
    @classmethod
    def _fits(cls, policy: KindPolicy, info: ValidationInfo) -> KindPolicy:
        capacity = info.data.get("capacity")
        # Public is decided exactly only while max_customers + 1 customers can be remembered or counted as evicted.
        if capacity is not None and policy.max_customers > capacity:
            raise PydanticCustomError(
                "max_customers", "max_customers ({value}) must not exceed capacity ({capacity})",
                {"value": policy.max_customers, "capacity": capacity},
            )
        horizons = info.data.get("horizons_minutes")
        if horizons and policy.link_horizon_minutes > horizons[-1]:
            raise PydanticCustomError(
                "link_horizon", "link_horizon_minutes ({value}) must not exceed the longest horizon ({longest})",
                {"value": policy.link_horizon_minutes, "longest": horizons[-1]},
            )
        return policy

    def policy(self, kind: EntityKind) -> KindPolicy:
        """The policy of entities of ``kind``."""
        policy: KindPolicy = getattr(self, kind)
        return policy

    @property
    def retention_ms(self) -> int:
        """How long a customer is remembered on an entity after it was last seen there: the longest horizon."""
        return self.horizons_minutes[-1] * MINUTE_MS



class KindWeights(Contract):
    """How much sharing an entity of each kind says about a ring, in [0, 1] (combined by noisy-OR over kinds).

    With the defaults, sharing only addresses (``ip`` and ``net24``: 1 - 0.7 * 0.9 = 0.37) stays below the default
    notice threshold (0.4) however large the ring: customers behind one network need a shared device, card or
    phone, or risky members, before they raise anything. Public Wi-Fi filling up towards its ``max_customers``
    ceiling therefore never alerts on its own.
    """

    device: float = Field(default=0.6, ge=0, le=1, description="Weight of a shared device.")
    ip: float = Field(default=0.3, ge=0, le=1, description="Weight of a shared IP address.")
    net24: float = Field(default=0.1, ge=0, le=1, description="Weight of a shared /24 (/64) network.")
    bank_card: float = Field(default=0.8, ge=0, le=1, description="Weight of a shared bank card.")
    phone: float = Field(default=0.7, ge=0, le=1, description="Weight of a shared phone.")
    contact_list: float = Field(
        default=0.7, ge=0, le=1, description="Weight of a shared address book (one operator's prepared contacts)."
    )

    def of(self, kind: EntityKind) -> float:
        """The weight of ``kind``."""
        weight: float = getattr(self, kind)
        return weight


class TierWeights(Contract):
    """How much a member at each tier adds to the ring's member risk (members without a tier add 0)."""

    notice: float = Field(default=0.0, ge=0, le=1, description="Added per member at 提示 notice.")
    attention: float = Field(default=0.5, ge=0, le=1, description="Added per member at 关注 attention.")
    warning: float = Field(default=1.0, ge=0, le=1, description="Added per member at 预警 warning.")

    def of(self, tier: Tier) -> float:
        """The weight of ``tier``."""
        weight: float = getattr(self, tier)
        return weight


class RingConfig(Contract):
    """Ring detection over link events: expiry, minimum size, score and alert tiers.

    The score of a ring of ``n`` members sharing the entity kinds ``K`` is::

        kind_score = 1 - Π_{k in K} (1 - kind_weights[k])
        structure  = min(1, n / size_saturation) * kind_score
        risk       = min(1, Σ_{members} tier_weights[tier of member] / risk_saturation)
        score      = structure + (1 - structure) * risk * kind_score

    Size and shared kinds make the structure; risky members add to it only as far as the shared kinds are strong
    (risky customers behind one /24 say little about each other). Defaults: 3 customers on one device score 0.45
    (notice: three unrelated people on one phone within a day is already unusual; a family of two is not a
    ring), with one of them at warning 0.615 (attention); 4 or more on one device 0.6 (attention); 10 sharing
    devices and a bank card 0.92 (warning). Customers sharing only addresses stay below notice (0.37 at most).
    ``size_saturation`` 4 was chosen with ``loanwatch evaluate`` on simulated rings and decoys (10 gave ring
    recall 0.1). A member's propagated score counts the *other* members' risk only, so it never raises itself.
    """

    rule_id: str = Field(default="fraud_ring", pattern=r"^[a-z][a-z0-9_]{0,63}$", description="rule_id of ring alerts.")
    version: int = Field(default=1, ge=1, description="Recorded on every ring alert.")
    horizon_minutes: int = Field(
        default=1440, ge=1, le=_MAX_MINUTES, description="Links whose last_seen is older than this drop out."
    )
    sweep_minutes: int = Field(
        default=1,
        ge=1,
        le=1440,
        description="Expired links are removed at most this much event time late (the expiry sweep interval).",
    )
    min_size: int = Field(default=3, ge=2, le=1000, description="Members a connected component needs to be a ring.")
    size_saturation: int = Field(
        default=4, ge=2, le=100_000, validate_default=True, description="Ring size at which size counts fully."
    )
    risk_saturation: float = Field(
        default=2.0, gt=0, le=1000, description="Summed member tier weights at which member risk counts fully."
    )
    kind_weights: KindWeights = Field(default_factory=KindWeights, description="Strength of each shared kind.")
    tier_weights: TierWeights = Field(default_factory=TierWeights, description="Risk added by each member tier.")
    thresholds: TierThresholds = Field(
        default_factory=TierThresholds, description="Ring scores at which ring alerts reach each tier."
    )
    max_listed_entities: int = Field(
        default=5, ge=1, le=50, description="Entities named in one reason message (the rest are counted)."
    )
    ring_kinds: tuple[EntityKind, ...] = Field(
        default=("device", "bank_card", "phone", "contact_list"),
        min_length=1,
        description=(
            "Kinds whose links join customers into rings. Addresses (ip, net24) are left out by default: a mall's "
            "Wi-Fi links hundreds of strangers over a day, and one shared phone among them would make all of them "
            "one 'device ring'. Their links are still published to risk.links.v1 for analysts. An address book "
            "shared by several customers (contact_list) is one operator's and joins rings."
        ),
    )

    @field_validator("size_saturation")
    @classmethod
    def _saturation_not_below_min_size(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min_size")
        if low is not None and value < low:
            raise PydanticCustomError(
                "size_saturation", "size_saturation ({value}) must not be below min_size ({low})",
                {"value": value, "low": low},
            )
        return value

    @field_validator("sweep_minutes")
    @classmethod
    def _sweep_within_horizon(cls, value: int, info: ValidationInfo) -> int:
        horizon = info.data.get("horizon_minutes")
        if horizon is not None and value > horizon:
            raise PydanticCustomError(
                "sweep_minutes", "sweep_minutes ({value}) must not exceed horizon_minutes ({horizon})",
                {"value": value, "horizon": horizon},
            )
        return value

    @property
    def horizon_ms(self) -> int:
        """The ring horizon in milliseconds."""
        return self.horizon_minutes * MINUTE_MS

    @property
    def sweep_ms(self) -> int:
        """The sweep interval in milliseconds."""
        return self.sweep_minutes * MINUTE_MS
