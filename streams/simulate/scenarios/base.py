"""What every scenario plan shares: the plan base class, the customer stream it acts through, and placement.

A plan is drawn when :class:`~streams.simulate.traffic.Traffic` is built (so the ground truth is known before a
single record is generated) and fixes the event time of every labelled record. The customer's stream carries it
out later, in event-time order, through :class:`StreamContext`: scripted app sessions start at
:meth:`EpisodePlan.session_starts`, records of other topics come from :meth:`EpisodePlan.side_records`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Protocol

from schemas.behavior import Channel
from streams.simulate.events import Emitter, Session
from streams.simulate.model import InjectedEpisode, ScenarioName, SimRecord
from streams.simulate.population import Customer, hex_id
from streams.simulate.rhythm import HOUR_MS, MINUTE_MS

# Episodes sit after a lead (the detector has seen the customer's normal behaviour first) and before a tail (the
# alert falls inside the span). Short spans shrink both, down to a quarter of the span each.
LEAD_MS: Final = 30 * MINUTE_MS
TAIL_MS: Final = 45 * MINUTE_MS
MIN_SPAN_MS: Final = HOUR_MS  # below this no scenario but the burst (which has its own rule) is placed


class StreamContext(Protocol):
    """The customer stream a plan acts through (implemented by ``CustomerStream``)."""

    rng: random.Random
    em: Emitter
    c: Customer

    def session(self, ts_ms: int, channel: Channel | None = None) -> Session:
        """Open an app session on one of the customer's own devices."""
        ...

    def application(self, s: Session, t: int, product: str, episode_id: str | None = None) -> SimRecord:
        """Build a loan application of the customer."""
        ...


@dataclass(frozen=True, slots=True)
class Placement:
    """The part of the span where an episode may lie: ``[earliest, latest]`` for its first and last record."""

    start_ms: int
    end_ms: int
    earliest: int
    latest: int

    @classmethod
    def of(cls, start_ms: int, span_ms: int) -> Placement:
        """The placement window of a span."""
        lead, tail = min(LEAD_MS, span_ms // 4), min(TAIL_MS, span_ms // 4)
        return cls(start_ms, start_ms + span_ms, start_ms + lead, start_ms + span_ms - tail)

    @property
    def room(self) -> int:
        """How long an episode may last, in ms."""
        return self.latest - self.earliest


@dataclass(frozen=True, slots=True)
class EpisodePlan:
    """One customer's planned episode. Subclasses add the scenario's times and draws and carry it out."""

    scenario: ClassVar[ScenarioName]
    uses_limit: ClassVar[bool] = False  # ordinary drawdowns are suppressed so the episode finds the limit intact
    blocks_applications: ClassVar[bool] = False  # the customer makes no ordinary loan applications

    episode_id: str
    customer_index: int
    start_ms: int
    end_ms: int

    def session_starts(self) -> tuple[int, ...]:
        """Event times of the scripted app sessions, ascending (each session's anchor, usually its login)."""
        return ()

    def run_session(self, number: int, ctx: StreamContext) -> list[SimRecord]:
        """Generate scripted session ``number`` (records in event-time order)."""
        raise IndexError(number)

    def side_records(self, ctx: StreamContext) -> list[SimRecord]:
        """Records on the repayment and inquiry topics, in event-time order."""
        return []

    def details(self) -> dict[str, Any]:
        """The scenario's own facts for the ground truth."""
        return {}

    def injected(self, customer_id: str) -> InjectedEpisode:
        """Describe this episode publicly (the ground truth)."""
        return InjectedEpisode(
            self.scenario, self.episode_id, customer_id, self.start_ms, self.end_ms, self.details()
        )


def between(rng: random.Random, low_ms: int, high_ms: int) -> int:
    """A time strictly between two event times when there is room (else ``low_ms + 1`` capped at ``high_ms``)."""
    if high_ms - low_ms < 2:
        return min(low_ms + 1, high_ms)
    return low_ms + 1 + int(rng.random() * (high_ms - low_ms - 1))


def share_of(available: float, share: float) -> float:
    """``share`` of the available limit in whole yuan, rounded up (so the share is really reached), at most all."""
    return float(min(math.floor(available), math.ceil(available * share)))


def drawdown(ctx: StreamContext, s: Session, ts_ms: int, amount: float) -> SimRecord:
    """Draw ``amount`` from the customer's line (the caller keeps it within the available limit)."""
    rng, c = ctx.rng, ctx.c
    before = c.available
    c.available = round(before - amount, 2)
    return ctx.em.drawdown(
        s, ts_ms, rng.choice(c.products), hex_id(rng, "l"), amount, before, rng.choice((3, 6, 12))
    )
