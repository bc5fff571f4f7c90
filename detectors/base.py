"""What every detector returns, and the shape they share (River's: ``learn_one`` / ``score_one``).

A detector scores a customer in [0, 1] and says why: each reason names the feature, its value and the threshold
it was compared with. Scoring never changes a detector; learning happens only through ``learn_one``. Fusion of
several scores into a tier is a separate layer (score and decision apart, as in River's anomaly filters).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from schemas.outputs import Reason, Tier

Features = Mapping[str, float]
"""A customer's feature vector: name → value, as the rolling profile computes it."""


@dataclass(frozen=True, slots=True)
class DetectorScore:
    """One detector's verdict on one customer: a score in [0, 1] and the reasons behind it."""

    detector_id: str
    score: float
    reasons: tuple[Reason, ...] = field(default=())

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"{self.detector_id}: score {self.score} is outside [0, 1]")


def tier_reached(value: float, notice: float, attention: float, warning: float) -> Tier | None:
    """The highest tier whose threshold ``value`` reaches (thresholds inclusive), or None below notice."""
    if value >= warning:
        return "warning"
    if value >= attention:
        return "attention"
    if value >= notice:
        return "notice"
    return None


@runtime_checkable
class Detector(Protocol):
    """The River-shaped interface: learn from a feature vector, score one without changing state."""

    detector_id: str

    def learn_one(self, x: Features) -> None:
        """Update the detector with one observation (never called with vectors the detector flagged)."""

    def score_one(self, x: Features) -> DetectorScore:
        """Score one feature vector; must not change the detector."""
