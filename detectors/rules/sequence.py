"""Behaviour-sequence rules (行为序列): configurable chains "A then B then C within T" over the profile's tail.

A chain is a list of steps and a maximum span; a step matches a tail event by event type (None = any) and
optional predicates: the profile-change ``field``, a drawdown's ``min_limit_share`` of the available limit, and
``new_device`` (first time this customer used the device). Steps match in order, each strictly after the
previous one, all within ``max_span_minutes`` of the first. The score reflects the longest matched prefix:
0 for one step, ``partial_score * (k - 1) / (n - 2)`` for k of n steps, 1.0 for the full chain; the detector
score is the highest over its chains. Chains whose first step lies more than their span before ``at_ms``
(default: the newest tail event) are stale and ignored.

Defaults: phone change → bank-card change → drawdown of ≥ 80 % of the available limit within 24 h (account
takeover / cash-out); new device → limit query → drawdown of ≥ 80 % within 1 h.

Example:
    >>> from detectors.profile_layout import TailEvent
    >>> h = 3_600_000
    >>> tail = [TailEvent("profile_change", 0, field="phone"), TailEvent("profile_change", h, field="bank_card")]
    >>> d = SequenceDetector()
    >>> d.score_one({}, tail).score
    0.5
    >>> full = d.score_one({}, [*tail, TailEvent("drawdown", 2 * h, amount=9000, available_limit_before=10000)])
    >>> full.score, full.reasons[0].feature, full.reasons[0].value, full.reasons[0].threshold
    (1.0, 'chain_phone_card_drawdown', 3.0, 3.0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from detectors.base import DetectorScore
from detectors.profile_layout import TailEvent
from detectors.rules._common import RuleConfig, TailEvents, reason
from schemas.behavior import BehaviorEventType

__all__ = ["DEFAULT_CHAINS", "ChainStep", "SequenceChain", "SequenceConfig", "SequenceDetector"]

_MINUTE_MS = 60_000


class ChainStep(RuleConfig):
    """One step of a chain: which tail event matches it."""

    event_type: BehaviorEventType | None = Field(default=None, description="Event type; None matches any.")
    field: Literal["phone", "bank_card", "address", "device"] | None = Field(
        default=None, description="Profile-change field that must have changed."
    )
    min_limit_share: float | None = Field(
        default=None, gt=0, description="Drawdown amount / available limit before it must be at least this."
    )
    new_device: bool | None = Field(default=None, description="The event must (true) / must not (false) be new.")

    def matches(self, e: TailEvent) -> bool:
        """True if the tail event satisfies every set condition."""
        return (
            (self.event_type is None or e.event_type == self.event_type)
            and (self.field is None or e.field == self.field)
            and (self.min_limit_share is None or e.limit_share >= self.min_limit_share)
            and (self.new_device is None or e.new_device == self.new_device)
        )


class SequenceChain(RuleConfig):
    """A named chain of at least two steps that must happen within ``max_span_minutes``."""

    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,40}$")] = Field(
        description="Names the chain in reasons (feature chain_<name>)."
    )
    steps: tuple[ChainStep, ...] = Field(
        min_length=2, max_length=8, description="Steps in order; each matches an event after the previous step's."
    )
    max_span_minutes: int = Field(gt=0, le=30 * 24 * 60, description="Longest event time from first to last step.")


DEFAULT_CHAINS: tuple[SequenceChain, ...] = (
    SequenceChain(
        name="phone_card_drawdown",
        steps=(
            ChainStep(event_type="profile_change", field="phone"),
            ChainStep(event_type="profile_change", field="bank_card"),
            ChainStep(event_type="drawdown", min_limit_share=0.8),
        ),
        max_span_minutes=24 * 60,
    ),
    SequenceChain(
        name="new_device_limit_drawdown",
        steps=(
            ChainStep(new_device=True),
            ChainStep(event_type="limit_query"),
            ChainStep(event_type="drawdown", min_limit_share=0.8),
        ),
        max_span_minutes=60,
    ),
)


class SequenceConfig(RuleConfig):
    """The chains and how a partial match scores."""

    chains: tuple[SequenceChain, ...] = Field(
        default=DEFAULT_CHAINS, max_length=32, description="Chains scored; the detector scores the best-matched one."
    )
    partial_score: float = Field(
        default=0.5, ge=0, le=1, description="Score of all steps but the last; one step scores 0, all steps 1."
    )


def longest_prefix(chain: SequenceChain, tail: Sequence[TailEvent], since_ms: int) -> list[TailEvent]:
    """The events of the longest matched prefix of ``chain`` starting at or after ``since_ms`` (tail: oldest first).

    From each possible first event, matching every next step to the earliest fitting event is optimal.
    """
    span = chain.max_span_minutes * _MINUTE_MS
    first, rest = chain.steps[0], chain.steps[1:]
    best: list[TailEvent] = []
    for i, start in enumerate(tail):
        if start.ts_ms < since_ms or not first.matches(start):
            continue
        matched = [start]
        j = i + 1
        for step in rest:
            while j < len(tail) and tail[j].ts_ms - start.ts_ms <= span and not step.matches(tail[j]):
                j += 1
            if j >= len(tail) or tail[j].ts_ms - start.ts_ms > span:
                break
            matched.append(tail[j])
            j += 1
        if len(matched) > len(best):
            best = matched
            if len(best) == len(chain.steps):
                break
    return best


class SequenceDetector:
    """Scores configurable event chains over the profile's tail; see the module docstring."""

    detector_id = "behavior_sequence"

    def __init__(self, config: SequenceConfig | None = None) -> None:
        self.config = config or SequenceConfig()

    def learn_one(self, x: Mapping[str, float]) -> None:
        """Rules do not learn."""

    def score_one(self, x: Mapping[str, float], tail: TailEvents = (), at_ms: int | None = None) -> DetectorScore:
        """Score the tail (``x`` is not used: chains are about order, which the feature counts do not keep)."""
        if not tail:
            return DetectorScore(self.detector_id, 0.0)
        now = max(e.ts_ms for e in tail) if at_ms is None else at_ms
        events = sorted((e for e in tail if e.ts_ms <= now), key=lambda e: e.ts_ms)
        score, reasons = 0.0, []
        for chain in self.config.chains:
            n = len(chain.steps)
            matched = longest_prefix(chain, events, now - chain.max_span_minutes * _MINUTE_MS)
            k = len(matched)
            s = 1.0 if k == n else (self.config.partial_score * (k - 1) / (n - 2) if k >= 2 else 0.0)
            if s <= 0:
                continue
            steps = " → ".join(_describe(e) for e in matched)
            reasons.append(
                reason(
                    "sequence_chain",
                    f"chain_{chain.name}",
                    float(k),
                    float(n),
                    f"{chain.name}: {k} of {n} steps within {chain.max_span_minutes} min ({steps})",
                )
            )
            score = max(score, s)
        return DetectorScore(self.detector_id, round(score, 6), tuple(reasons))


def _describe(e: TailEvent) -> str:
    if e.field:
        return f"{e.event_type}:{e.field}"
    if e.event_type == "drawdown":
        return f"drawdown {e.limit_share:.0%} of limit"
    return e.event_type + (" (new device)" if e.new_device else "")
