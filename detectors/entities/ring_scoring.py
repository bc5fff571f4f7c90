"""What a ring is worth: its score, a member's propagated score with reasons, and the ring alert operators read.

Pure functions over plain values; :class:`~detectors.entities.rings.RingDetector` calls them. The score formula is
documented on :class:`~detectors.entities.config.RingConfig`.

Example:
    >>> from detectors.entities.config import RingConfig
    >>> config = RingConfig()
    >>> ring_score(3, ["device"], [None, None, None], config)
    0.45
    >>> ring_score(3, ["device"], [None, None, "warning"], config)
    0.615
    >>> ring_score(10, ["device", "bank_card"], [], config)
    0.92
    >>> ring_score(20, ["ip"], [], config)  # twenty customers behind one IP, nobody risky: below notice
    0.3
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from detectors.entities.config import RingConfig
from detectors.entities.keys import ENTITY_KINDS, EntityKey, EntityKind
from schemas.outputs import TIER_LABELS, Reason, Tier, TierLabel

__all__ = [
    "Ring",
    "RingAlert",
    "SharedEntity",
    "kind_score",
    "member_reason",
    "member_risk",
    "ring_alert_id",
    "ring_reasons",
    "ring_score",
]

_SEP = "\x1f"


def _order(entity: EntityKey) -> tuple[int, str]:
    return ENTITY_KINDS.index(entity.kind), entity.value


@dataclass(frozen=True, slots=True)
class SharedEntity:
    """One entity a ring shares, and the ring members linked through it (sorted)."""

    entity: EntityKey
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Ring:
    """A connected component of live links with at least ``min_size`` members, as of the detector's watermark.

    ``entities`` are sorted by kind (in :data:`~detectors.entities.keys.ENTITY_KINDS` order) then value;
    ``first_seen_ms`` / ``last_seen_ms`` span its live links.
    """

    ring_id: str
    members: tuple[str, ...]
    entities: tuple[SharedEntity, ...]
    links: int
    first_seen_ms: int
    last_seen_ms: int

    @property
    def kinds(self) -> tuple[EntityKind, ...]:
        """The distinct entity kinds the ring shares, in ENTITY_KINDS order."""
        present = {s.entity.kind for s in self.entities}
        return tuple(k for k in ENTITY_KINDS if k in present)


@dataclass(frozen=True, slots=True)
class RingAlert:
    """A ring at a tier, naming every member and every shared entity.

    The stream layer maps it onto the contracts (:class:`~schemas.entities.RingSnapshot`, an ``Alert`` with a
    ``RingRef``); ``to_dict`` is a plain JSON form for tests and logs.

    ``alert_id`` is deterministic over (ring id, tier, members): a replay gives the same ids, and a ring that
    gains members gets a new alert that links the previous one through ``previous_alert_id``.
    """

    alert_id: str
    ring_id: str
    rule_id: str
    rule_version: int
    tier: Tier
    tier_label: TierLabel
    score: float
    members: tuple[str, ...]
    entities: tuple[SharedEntity, ...]
    risky_members: tuple[str, ...]
    reasons: tuple[Reason, ...]
    first_seen_ms: int
    last_seen_ms: int
    previous_alert_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "alert_id": self.alert_id,
            "ring_id": self.ring_id,
            "rule_id": self.rule_id,
            "rule_version": self.rule_version,
            "tier": self.tier,
            "tier_label": self.tier_label,
            "score": self.score,
            "members": list(self.members),
            "entities": [
                {"kind": s.entity.kind, "value": s.entity.value, "members": list(s.members)} for s in self.entities
            ],
            "risky_members": list(self.risky_members),
            "reasons": [r.model_dump(mode="json") for r in self.reasons],
            "first_seen_ms": self.first_seen_ms,
            "last_seen_ms": self.last_seen_ms,
            "previous_alert_id": self.previous_alert_id,
        }


def ring_alert_id(ring_id: str, tier: Tier, members: Iterable[str]) -> str:
    """32 hex of SHA-256 over (ring id, tier, sorted members): the idempotency key of a ring alert."""
    text = _SEP.join(("ring_alert/v1", ring_id, tier, "\x1e".join(sorted(members))))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def kind_score(kinds: Iterable[EntityKind], config: RingConfig) -> float:
    """Noisy-OR of the weights of the distinct kinds shared: ``1 - Π(1 - w_k)``."""
    miss = 1.0
    for kind in set(kinds):
        miss *= 1.0 - config.kind_weights.of(kind)
    return 1.0 - miss


def member_risk(tiers: Iterable[Tier | None], config: RingConfig) -> float:
    """Summed tier weights of the members, over ``risk_saturation``, capped at 1."""
    weights = config.tier_weights
    total = sum(weights.of(t) for t in tiers if t is not None)
    return min(1.0, total / config.risk_saturation)


def ring_score(size: int, kinds: Iterable[EntityKind], tiers: Iterable[Tier | None], config: RingConfig) -> float:
    """The ring score in [0, 1] (rounded to 6 places); formula on :class:`RingConfig`."""
    ks = kind_score(kinds, config)
    structure = min(1.0, size / config.size_saturation) * ks
    score = structure + (1.0 - structure) * member_risk(tiers, config) * ks
    return round(min(1.0, max(0.0, score)), 6)


def _listed(items: list[str], limit: int) -> str:
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown} and {len(items) - limit} more"


def _tier_counts(tiers: dict[str, Tier]) -> str:
    parts = []
    for tier in ("warning", "attention"):
        n = sum(1 for t in tiers.values() if t == tier)
        if n:
            parts.append(f"{n} at {TIER_LABELS[tier]} {tier}")
    return ", ".join(parts)


def member_reason(
    ring_id: str,
    size: int,
    score: float,
    own_entities: list[EntityKey],
    kinds: list[EntityKind],
    risky_others: dict[str, Tier],
    config: RingConfig,
) -> Reason:
    """Why a member carries the ring's risk: the ring, the entities it shares with it, the kinds, risky members.

    Code, feature and the start of the message are those of the engine's propagated ring reason
    (:mod:`detectors.entities.propagation`), so one code means one thing wherever the score is computed.
    """
    own = [str(e) for e in sorted(own_entities, key=_order)]
    message = f"member of ring {ring_id} ({size} customers) via {_listed(own, config.max_listed_entities)}"
    if len(kinds) > 1:
        message += f"; the ring shares {', '.join(kinds)}"
    if risky_others:
        message += f"; other members: {_tier_counts(risky_others)}"
    return Reason(code="ring_member", message=message, feature="ring_score", value=score, threshold=0.0)


def ring_reasons(ring: Ring, risky: dict[str, Tier], config: RingConfig) -> tuple[Reason, ...]:
    """Why a ring alert was raised: its size, the entities and kinds it shares, and its risky members."""
    listed = _listed([str(s.entity) for s in ring.entities], config.max_listed_entities)
    reasons = [
        Reason(
            code="ring_size",
            message=(
                f"ring {ring.ring_id}: {len(ring.members)} customers linked through {listed} "
                f"(shares {', '.join(ring.kinds)}, kind score {kind_score(ring.kinds, config):.2f})"
            ),
            feature="ring_size",
            value=float(len(ring.members)),
            threshold=float(config.min_size),
        ),
    ]
    if risky:
        reasons.append(
            Reason(
                code="ring_risky_members",
                message=f"members {_listed(sorted(risky), config.max_listed_entities)}: {_tier_counts(risky)}",
                feature="ring_risky_members",
                value=float(len(risky)),
                threshold=1.0,
            )
        )
    return tuple(reasons)
