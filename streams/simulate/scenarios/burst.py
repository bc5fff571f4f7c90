"""``multi_application_burst`` (集中申请多笔贷款): 5-10 loan applications within 3-25 minutes.

Several products (2-4), sometimes through several channels of the same lender at once, usually after a look at
the available limit. Only the applications carry the label; the session's login and page views stay normal.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Final

from schemas.behavior import Channel
from streams.simulate.events import Session
from streams.simulate.model import InjectedBurst, ScenarioName, SimRecord
from streams.simulate.population import customer_id_for
from streams.simulate.rhythm import MINUTE_MS, SECOND_MS, daytime_ms
from streams.simulate.scenarios.base import EpisodePlan, StreamContext

# Where a burst may sit: late enough that the detector has seen the customer's normal behaviour, early enough
# that the whole episode (and the alert after it) is inside the span.
BURST_LEAD_MS: Final = 30 * MINUTE_MS
BURST_TAIL_MS: Final = 45 * MINUTE_MS
LOGIN_BEFORE_BURST_MS: Final = 5 * MINUTE_MS  # the burst session's login and limit query come first
MIN_BURST_MS: Final = 3 * MINUTE_MS
MAX_BURST_MS: Final = 25 * MINUTE_MS
BURST_MIN_SPAN_MS: Final = BURST_LEAD_MS + BURST_TAIL_MS + LOGIN_BEFORE_BURST_MS + MIN_BURST_MS


@dataclass(frozen=True, slots=True)
class BurstPlan(EpisodePlan):
    """An injected multi-application burst for one customer: when, which products, through which channels."""

    scenario: ClassVar[ScenarioName] = "multi_application_burst"
    blocks_applications: ClassVar[bool] = True  # the episode's applications are the customer's only ones

    times_ms: tuple[int, ...] = ()
    products: tuple[str, ...] = ()  # one per application
    channels: tuple[Channel, ...] = ()  # one per application
    limit_query_first: bool = True

    def burst(self, customer_id: str) -> InjectedBurst:
        """Describe this burst publicly (the ground truth, in the burst-specific form)."""
        return InjectedBurst(
            episode_id=self.episode_id,
            customer_id=customer_id,
            start_ms=self.times_ms[0],
            end_ms=self.times_ms[-1],
            applications=len(self.times_ms),
            products=tuple(dict.fromkeys(self.products)),
        )

    def details(self) -> dict[str, Any]:
        """Applications and distinct products."""
        return {"applications": len(self.times_ms), "products": list(dict.fromkeys(self.products))}

    def session_starts(self) -> tuple[int, ...]:
        """One session, anchored at the first application (its login comes 1-4 minutes earlier)."""
        return (self.times_ms[0],)

    def run_session(self, number: int, ctx: StreamContext) -> list[SimRecord]:
        """The burst session: login, a look at the limit, then the applications."""
        rng, em = ctx.rng, ctx.em
        first = self.times_ms[0]
        lead = rng.randint(60, 240) * SECOND_MS
        sessions: dict[Channel, Session] = {}
        base = ctx.session(first - lead, self.channels[0])
        sessions[base.channel] = base
        out = [em.login(base, first - lead, "sms", success=True)]
        out.append(em.page_view(base, first - lead + rng.randint(3, 15) * SECOND_MS, "home"))
        if self.limit_query_first:
            # 集中申请 usually starts by checking how much credit is left.
            out.append(em.limit_query(base, first - lead + rng.randint(20, 50) * SECOND_MS, ctx.c.available))
        previous = out[-1].ts_ms
        for at, product, channel in zip(self.times_ms, self.products, self.channels, strict=True):
            s = sessions.get(channel)
            if s is None:
                # Another channel is another session (same phone and network, different app or mini-program).
                s = sessions[channel] = replace(
                    base, session_id=f"{base.session_id}-{len(sessions)}", channel=channel
                )
            view_at = max(previous + 1, at - rng.randint(5, 20) * SECOND_MS)
            if view_at < at:
                out.append(em.page_view(s, view_at, "loan/apply", product))
            out.append(ctx.application(s, at, product, self.episode_id))
            previous = at
        return out


def plan_bursts(
    rng: random.Random,
    seed: int,
    chosen: Sequence[int],
    start_ms: int,
    span_ms: int,
    products: tuple[str, ...],
    channels: tuple[Channel, ...],
) -> dict[int, BurstPlan]:
    """Plan a burst for each customer index in ``chosen`` (ascending), drawing from ``rng``."""
    earliest = start_ms + BURST_LEAD_MS + LOGIN_BEFORE_BURST_MS
    latest_end = start_ms + span_ms - BURST_TAIL_MS
    plans: dict[int, BurstPlan] = {}
    for index in chosen:
        duration = min(
            rng.randint(MIN_BURST_MS // SECOND_MS, MAX_BURST_MS // SECOND_MS) * SECOND_MS,
            latest_end - earliest,
        )
        first = daytime_ms(rng, earliest, latest_end - duration + 1)
        count = rng.randint(5, 10)
        middle = sorted(first + 1 + int(rng.random() * (duration - 1)) for _ in range(count - 2))
        times = (first, *middle, first + duration)
        plans[index] = BurstPlan(
            episode_id=f"ep{seed}-{customer_id_for(index)}",
            customer_index=index,
            start_ms=first,
            end_ms=first + duration,
            times_ms=times,
            products=_products(rng, products, count),
            channels=_channels(rng, channels, count),
            limit_query_first=rng.random() < 0.85,
        )
    return plans


def _products(rng: random.Random, products: tuple[str, ...], count: int) -> tuple[str, ...]:
    # 2-4 different products, every one of them applied for at least once.
    kinds = rng.sample(products, min(len(products), rng.randint(2, 4)))
    picks = kinds + [rng.choice(kinds) for _ in range(count - len(kinds))]
    rng.shuffle(picks)
    return tuple(picks)


def _channels(rng: random.Random, channels: tuple[Channel, ...], count: int) -> tuple[Channel, ...]:
    primary = rng.choice(channels)
    if len(channels) == 1 or rng.random() < 0.6:
        return (primary,) * count
    # Sometimes through several channels at once (app, H5 and mini-program of the same lender).
    extra = rng.sample([c for c in channels if c != primary], min(len(channels) - 1, rng.randint(1, 2)))
    return tuple(primary if rng.random() < 0.5 else rng.choice(extra) for _ in range(count))
