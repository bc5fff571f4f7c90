"""``night_limit_exhaustion`` (夜间额度耗尽): the line drained in the small hours.

One session between 00:00 and 06:00 China time (UTC+8) draws 92-100 % of the available limit in one to three
drawdowns within half an hour.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from streams.simulate.model import ScenarioName, SimRecord
from streams.simulate.population import DAY_MS, china_midnight_ms
from streams.simulate.rhythm import HOUR_MS, MINUTE_MS, SECOND_MS
from streams.simulate.scenarios.base import EpisodePlan, Placement, StreamContext, drawdown, share_of

NIGHT_MIN_SHARE: Final = 0.9
NIGHT_END_HOUR: Final = 6  # China time: the night is 00:00-06:00
_SESSION_MS: Final = 45 * MINUTE_MS  # the longest a night session can take (it is planned to take at most 25)


@dataclass(frozen=True, slots=True)
class NightPlan(EpisodePlan):
    """Login, limit query, then drawdowns at ``drawdown_times`` adding up to ``share`` of the available limit."""

    scenario: ClassVar[ScenarioName] = "night_limit_exhaustion"
    uses_limit: ClassVar[bool] = True

    limit_query: int = 0
    drawdown_times: tuple[int, ...] = ()
    weights: tuple[float, ...] = ()  # how the total splits over the drawdowns
    share: float = 1.0

    def session_starts(self) -> tuple[int, ...]:
        """One night session."""
        return (self.start_ms,)

    def details(self) -> dict[str, Any]:
        """How many drawdowns and the share of the limit they use together."""
        return {"drawdowns": len(self.drawdown_times), "drawdown_share": self.share}

    def run_session(self, number: int, ctx: StreamContext) -> list[SimRecord]:
        """The labelled night session."""
        rng, em, c = ctx.rng, ctx.em, ctx.c
        with em.tagged(self.scenario, self.episode_id):
            s = ctx.session(self.start_ms)
            out = [
                em.login(s, self.start_ms, rng.choice(("password", "biometric", "sms")), success=True),
                em.limit_query(s, self.limit_query, c.available),
            ]
            total = share_of(c.available, self.share)
            left = total
            for n, at in enumerate(self.drawdown_times):
                last = n == len(self.drawdown_times) - 1
                amount = left if last else max(1.0, float(round(total * self.weights[n])))
                amount = min(amount, left - (len(self.drawdown_times) - 1 - n))  # leave >= 1 yuan for each later one
                out.append(drawdown(ctx, s, at, amount))
                left -= amount
        return out


def night_windows(place: Placement) -> list[tuple[int, int]]:
    """The parts of the placement window in China night (00:00-06:00) long enough for a night session."""
    windows = []
    midnight = china_midnight_ms(place.earliest)
    while midnight < place.latest:
        low, high = max(midnight, place.earliest), min(midnight + NIGHT_END_HOUR * HOUR_MS, place.latest)
        if high - low >= _SESSION_MS:
            windows.append((low, high))
        midnight += DAY_MS
    return windows


def plan_night(rng: random.Random, index: int, episode_id: str, place: Placement) -> NightPlan:
    """Plan a night session in one of :func:`night_windows` (the caller checked there is one)."""
    windows = night_windows(place)
    low, high = rng.choices(windows, weights=[b - a for a, b in windows])[0]
    login = low + int(rng.random() * (high - low - _SESSION_MS))
    query = login + rng.randint(20, 90) * SECOND_MS
    count = rng.choices((1, 2, 3), (0.5, 0.3, 0.2))[0]
    times = [query + rng.randint(20, 180) * SECOND_MS]
    for _ in range(count - 1):
        times.append(times[-1] + rng.randint(30, 600) * SECOND_MS)
    raw = [rng.uniform(0.3, 1.0) for _ in range(count)]
    return NightPlan(
        episode_id=episode_id,
        customer_index=index,
        start_ms=login,
        end_ms=times[-1],
        limit_query=query,
        drawdown_times=tuple(times),
        weights=tuple(w / sum(raw) for w in raw),
        share=round(rng.uniform(0.92, 1.0), 3),
    )
