"""Risk propagation: a ring's score becomes a detector score of each of its members.

The ring agent sends every member a :class:`~schemas.entities.RingMembership` when the ring changes; the member's
engine step keeps the latest one (:class:`~detectors.engine_state.RingMark`) and fuses its score with the
member's own detectors. So a member who looks clean alone is raised by a hot ring, with the reason naming the
ring and the entities shared. A membership not renewed within ``ttl_minutes`` of event time stops counting.

Example:
    >>> from detectors.engine_state import RingMark
    >>> mark = RingMark("4f1c2a9e0b7d6c35", 0.9, 7, ("device d_9",), ts_ms=0, event_id="e")
    >>> score = ring_score(mark, 60_000, RingPropagationConfig())
    >>> score.detector_id, score.score, score.reasons[0].message
    ('ring_membership', 0.9, 'member of ring 4f1c2a9e0b7d6c35 (7 customers) via device d_9')
    >>> ring_score(mark, 2 * 86_400_000, RingPropagationConfig()).score
    0.0
"""

from __future__ import annotations

from typing import Final

from pydantic import Field

from detectors.base import DetectorScore
from detectors.engine_state import RingMark
from detectors.rules._common import reason
from schemas.common import Contract

__all__ = ["RING_DETECTOR_ID", "RingPropagationConfig", "ring_score"]

RING_DETECTOR_ID: Final = "ring_membership"
_MINUTE_MS: Final = 60_000


class RingPropagationConfig(Contract):
    """How a member's ring counts in the member's own fused score."""

    ttl_minutes: int = Field(
        default=1440, ge=1, le=43200,
        description="A ring membership not renewed for this long (event time) stops counting in fusion.",
    )
    via_shown: int = Field(default=3, ge=1, le=20, description="Shared entities named in a member's reason.")


def ring_score(ring: RingMark | None, at_ms: int, config: RingPropagationConfig) -> DetectorScore:
    """The member's ring score at ``at_ms``: the ring's score while the membership is fresh, else 0."""
    if ring is None or at_ms - ring.ts_ms > config.ttl_minutes * _MINUTE_MS:
        return DetectorScore(RING_DETECTOR_ID, 0.0)
    via = ", ".join(ring.via[: config.via_shown]) if ring.via else "shared entities"
    why = reason("ring_member", "ring_score", ring.score, 0.0,
                 f"member of ring {ring.ring_id} ({ring.size} customers) via {via}")
    return DetectorScore(RING_DETECTOR_ID, ring.score, (why,))
