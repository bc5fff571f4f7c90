"""What every rule detector shares: the config base, the notice/warning band, graded scoring, reasons."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from detectors.profile_layout import TailEvent
from schemas.outputs import Reason

__all__ = ["NOTICE_SCORE", "Band", "RuleConfig", "TailEvents", "feature", "graded", "reason"]

NOTICE_SCORE: Final = 0.4
"""Score of a value exactly at its notice threshold; it rises linearly to 1.0 at the warning threshold."""

TailEvents = Sequence[TailEvent]


class RuleConfig(BaseModel):
    """Base of every rule configuration: immutable, unknown keys refused (a typo in a rule file is an error)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Band(RuleConfig):
    """A notice and a warning threshold on one value (warning must exceed notice)."""

    notice: float = Field(gt=0, description="Value at which the score starts: 0.4, rising linearly to 1.0 at warning.")
    warning: float = Field(gt=0, description="Value from which the score is 1.0; must be greater than notice.")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.warning <= self.notice:
            raise ValueError("warning must be greater than notice")
        return self

    def threshold_for(self, value: float) -> float:
        """The threshold a value is reported against: warning once reached, notice before."""
        return self.warning if value >= self.warning else self.notice


def graded(value: float, band: Band) -> float:
    """0 below notice, :data:`NOTICE_SCORE` at notice, linear up to 1.0 at warning and above.

    >>> b = Band(notice=2, warning=6)
    >>> [graded(v, b) for v in (1, 2, 4, 6, 9)]
    [0.0, 0.4, 0.7, 1.0, 1.0]
    """
    if value < band.notice:
        return 0.0
    if value >= band.warning:
        return 1.0
    return round(NOTICE_SCORE + (1 - NOTICE_SCORE) * (value - band.notice) / (band.warning - band.notice), 6)


def feature(x: Mapping[str, float], name: str) -> float:
    """A feature value; absent means 0 (a fresh profile, or a feature this rule set does not compute)."""
    return float(x.get(name, 0.0))


def reason(code: str, name: str, value: float, threshold: float, message: str) -> Reason:
    """A reason naming the feature, its value and the threshold it was compared with."""
    return Reason(code=code, message=message, feature=name, value=value, threshold=threshold)
