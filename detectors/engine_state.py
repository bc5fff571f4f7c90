"""One customer's engine state: rolling profile, burst and decision state, latest assessment, open installments.

The state is one value per customer in a plain Faust table. :meth:`CustomerState.to_bytes` reuses each part's own
serialisation (the profile's compact binary form, the burst and decision states' ``to_dict``) behind a version
byte, so a change of any part's layout is caught on load instead of being misread.

Positions: for each input stream the customer's events arrive on (a Kafka topic), the partition and offset of the
last event applied. A customer's events of one topic all sit in one partition, in order, so an event at or below
that offset has been applied already: a redelivery after a crash or a rebalance, recognised however long it is
(the profile's own id ring only remembers the last 32 events). Parts added later are optional keys of the JSON
part, so the format version stays: a state written before positions existed reads as having none.

Example:
    >>> s = CustomerState.empty("c_1")
    >>> CustomerState.from_bytes(s.to_bytes()) == s
    True
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace
from typing import Any, Final

from detectors.burst import BurstState
from detectors.decision.episodes import DecisionState
from detectors.profile import Profile
from schemas import serde
from schemas.outputs import Grade, Tier

__all__ = ["FORMAT_VERSION", "MAX_OPEN_INSTALLMENTS", "Assessment", "CustomerState", "Position", "RingMark"]

FORMAT_VERSION: Final = 1
#: Installments remembered per customer so a DPD update (which names the loan only) finds its installment.
MAX_OPEN_INSTALLMENTS: Final = 8
_HEAD: Final = struct.Struct("<BI")  # version, length of the profile bytes
_EMPTY_BURST: Final = BurstState()
_EMPTY_DECISION: Final = DecisionState()


@dataclass(frozen=True, slots=True)
class Position:
    """Where an event sits in its input stream: ``source`` (the topic), partition and offset."""

    source: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class RingMark:
    """The ring the customer belongs to, as the latest membership update said (risk propagation)."""

    ring_id: str
    score: float
    size: int
    via: tuple[str, ...]
    ts_ms: int
    event_id: str

    def to_list(self) -> list[Any]:
        """JSON-ready form."""
        return [self.ring_id, self.score, self.size, list(self.via), self.ts_ms, self.event_id]

    @classmethod
    def from_list(cls, data: list[Any]) -> RingMark:
        """Inverse of :meth:`to_list`."""
        ring_id, score, size, via, ts_ms, event_id = data
        return cls(str(ring_id), float(score), int(size), tuple(str(v) for v in via), int(ts_ms), str(event_id))


@dataclass(frozen=True, slots=True)
class Assessment:
    """The engine's latest verdict on the customer: fused score, grade, delinquency probability, rule set version.

    Kept so a lookup can answer without re-running the detectors. ``grade`` is None while the customer is
    allow-listed (no decision is taken); ``delinquency_p`` None while the partition's model is warming up.
    """

    at_ms: int
    score: float
    grade: Grade | None
    delinquency_p: float | None
    rule_version: int

    def to_list(self) -> list[Any]:
        """JSON-ready form."""
        return [self.at_ms, self.score, self.grade, self.delinquency_p, self.rule_version]

    @classmethod
    def from_list(cls, data: list[Any]) -> Assessment:
        """Inverse of :meth:`to_list`."""
        at_ms, score, grade, p, version = data
        return cls(int(at_ms), float(score), grade, None if p is None else float(p), int(version))


@dataclass(frozen=True, slots=True)
class CustomerState:
    """Everything the engine keeps per customer between events.

    ``profile`` is mutable and updated in place by the engine (as :func:`detectors.profile.update` does): copy a
    state with ``CustomerState.from_bytes(state.to_bytes())`` to keep the old one. ``open_installments`` maps
    loan id → installment number of the latest installment that fell due and still awaits its outcome.
    ``ring`` is the customer's current ring (None: in none); ``ring_seen_ms`` the event time of the newest
    membership update applied, so an older one arriving late is not applied over it. ``own_tier``: the tier
    the customer's own detectors reach without the ring (what the ring detector weighs members by).
    ``assessment`` is the latest score, grade and rule version (None before the first scored event).
    ``positions``: per source, the last applied event's position (see the module docstring).
    """

    profile: Profile
    burst: BurstState = field(default=_EMPTY_BURST)
    decision: DecisionState = field(default=_EMPTY_DECISION)
    last_snapshot_ms: int | None = None
    open_installments: tuple[tuple[str, int], ...] = ()
    ring: RingMark | None = None
    ring_seen_ms: int | None = None
    own_tier: Tier | None = None
    assessment: Assessment | None = None
    positions: tuple[Position, ...] = ()

    @classmethod
    def empty(cls, customer_id: str) -> CustomerState:
        """The state of a customer the engine has not seen."""
        return cls(Profile.empty(customer_id))

    @property
    def customer_id(self) -> str:
        """The customer this state belongs to."""
        return self.profile.customer_id

    def installment_of(self, loan_id: str) -> int | None:
        """The open installment of ``loan_id``, if one fell due and has no outcome yet."""
        for loan, number in self.open_installments:
            if loan == loan_id:
                return number
        return None

    def with_installment(self, loan_id: str, number: int | None) -> CustomerState:
        """A copy with ``loan_id``'s open installment set (None: removed); keeps the newest few."""
        kept = tuple(p for p in self.open_installments if p[0] != loan_id)
        if number is not None:
            kept = (*kept, (loan_id, number))[-MAX_OPEN_INSTALLMENTS:]
        return replace(self, open_installments=kept)

    def applied(self, position: Position) -> bool:
        """Whether the event at ``position`` has been applied (same source and partition, offset not beyond)."""
        return any(
            p.source == position.source and p.partition == position.partition and position.offset <= p.offset
            for p in self.positions
        )

    def with_position(self, position: Position) -> CustomerState:
        """A copy with ``position`` as its source's last applied event (a new partition replaces the old one)."""
        kept = tuple(p for p in self.positions if p.source != position.source)
        return replace(self, positions=(*kept, position))

    def to_bytes(self) -> bytes:
        """Version byte, the profile's bytes, then one compact JSON object for the rest (empty parts omitted)."""
        profile = self.profile.to_bytes()
        rest: dict[str, Any] = {}
        if self.burst != _EMPTY_BURST:
            rest["b"] = self.burst.to_dict()
        if self.decision != _EMPTY_DECISION:
            rest["d"] = self.decision.to_dict()
        if self.last_snapshot_ms is not None:
            rest["s"] = self.last_snapshot_ms
        if self.open_installments:
            rest["i"] = [list(p) for p in self.open_installments]
        if self.ring is not None:
            rest["r"] = self.ring.to_list()
        if self.ring_seen_ms is not None:
            rest["rs"] = self.ring_seen_ms
        if self.own_tier is not None:
            rest["ot"] = self.own_tier
        if self.assessment is not None:
            rest["a"] = self.assessment.to_list()
        if self.positions:
            rest["o"] = [[p.source, p.partition, p.offset] for p in self.positions]
        return b"".join((_HEAD.pack(FORMAT_VERSION, len(profile)), profile, serde.dumps(rest)))

    @classmethod
    def from_bytes(cls, data: bytes) -> CustomerState:
        """Inverse of :meth:`to_bytes`; ``ValueError`` on an unknown version or truncated bytes."""
        if len(data) < _HEAD.size:
            raise ValueError("truncated customer state")
        version, n = _HEAD.unpack_from(data)
        if version != FORMAT_VERSION:
            raise ValueError(f"unknown customer state format version {version} (this code reads {FORMAT_VERSION})")
        end = _HEAD.size + n
        if end > len(data):
            raise ValueError("truncated customer state")
        rest = serde.loads(data[end:])
        return cls(
            profile=Profile.from_bytes(data[_HEAD.size : end]),
            burst=BurstState.from_dict(rest["b"]) if "b" in rest else _EMPTY_BURST,
            decision=DecisionState.from_dict(rest["d"]) if "d" in rest else _EMPTY_DECISION,
            last_snapshot_ms=rest.get("s"),
            open_installments=tuple((str(loan), int(no)) for loan, no in rest.get("i", ())),
            ring=RingMark.from_list(rest["r"]) if "r" in rest else None,
            ring_seen_ms=rest.get("rs"),
            own_tier=rest.get("ot"),
            assessment=Assessment.from_list(rest["a"]) if "a" in rest else None,
            positions=tuple(Position(str(s), int(p), int(o)) for s, p, o in rest.get("o", ())),
        )
