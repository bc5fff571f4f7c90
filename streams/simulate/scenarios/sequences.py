"""Behaviour-sequence scenarios: "A then B within T" chains that precede a cash-out.

``sequence_takeover`` (账户盗用/身份冒用): the bound phone is changed, then the bank card, then most of the line
is drawn, all within 24 hours on the customer's own device (a stolen phone or a social-engineered victim).
``sequence_new_device_cashout``: a device never seen before logs in by SMS, looks up the limit and draws
(nearly) all of it within the hour. The customer has an ordinary session on a known device earlier in the span
(labelled normal) so that the device is new against history a detector could have seen.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Final

from streams.simulate.model import ScenarioName, SimRecord
from streams.simulate.population import hex_id
from streams.simulate.rhythm import HOUR_MS, MINUTE_MS, SECOND_MS, daytime_ms
from streams.simulate.scenarios.base import EpisodePlan, Placement, StreamContext, between, drawdown, share_of

TAKEOVER_MIN_SHARE: Final = 0.8
TAKEOVER_WITHIN_MS: Final = 24 * HOUR_MS
CASHOUT_MIN_SHARE: Final = 0.9
CASHOUT_WITHIN_MS: Final = HOUR_MS
_MIN_GAP_MS: Final = 3 * MINUTE_MS  # a compressed chain still leaves a plausible pause between its sessions


def _seconds(rng: random.Random, low: int, high: int) -> int:
    return rng.randint(low, high) * SECOND_MS


@dataclass(frozen=True, slots=True)
class TakeoverPlan(EpisodePlan):
    """Phone change → bank-card change → drawdown of ``share`` of the available limit, in three sessions."""

    scenario: ClassVar[ScenarioName] = "sequence_takeover"
    uses_limit: ClassVar[bool] = True

    phone_login: int = 0
    phone_change: int = 0
    card_login: int = 0
    card_change: int = 0
    draw_login: int = 0
    limit_query: int = 0
    share: float = 1.0

    def session_starts(self) -> tuple[int, ...]:
        """Three sessions: phone change, card change, drawdown."""
        return (self.phone_login, self.card_login, self.draw_login)

    def details(self) -> dict[str, Any]:
        """The defining times and the share drawn."""
        return {
            "phone_change_ms": self.phone_change,
            "bank_card_change_ms": self.card_change,
            "drawdown_ms": self.end_ms,
            "drawdown_share": self.share,
        }

    def run_session(self, number: int, ctx: StreamContext) -> list[SimRecord]:
        """One of the chain's sessions, labelled."""
        rng, em = ctx.rng, ctx.em
        with em.tagged(self.scenario, self.episode_id):
            if number == 0:
                s = ctx.session(self.phone_login)
                return [
                    em.login(s, self.phone_login, rng.choice(("password", "biometric")), success=True),
                    em.page_view(s, between(rng, self.phone_login, self.phone_change), "profile/phone"),
                    em.profile_change(s, self.phone_change, "phone", hex_id(rng, "h")),
                ]
            if number == 1:
                # The new phone receives the verification code now.
                s = ctx.session(self.card_login)
                return [
                    em.login(s, self.card_login, "sms", success=True),
                    em.page_view(s, between(rng, self.card_login, self.card_change), "profile/bank_card"),
                    em.profile_change(s, self.card_change, "bank_card", hex_id(rng, "h")),
                ]
            s = ctx.session(self.draw_login)
            out = [
                em.login(s, self.draw_login, "sms", success=True),
                em.limit_query(s, self.limit_query, ctx.c.available),
                em.page_view(s, between(rng, self.limit_query, self.end_ms), "loan/drawdown"),
            ]
            out.append(drawdown(ctx, s, self.end_ms, share_of(ctx.c.available, self.share)))
            return out


def plan_takeover(rng: random.Random, index: int, episode_id: str, place: Placement) -> TakeoverPlan:
    """Plan a takeover chain inside ``place``; the pauses shrink (never below 3 minutes) when room is short."""
    d1, d2 = _seconds(rng, 40, 180), _seconds(rng, 30, 120)  # login → change, in each profile session
    q, d3 = _seconds(rng, 15, 90), _seconds(rng, 20, 300)  # login → limit query → drawdown
    gap1 = rng.randint(10 * MINUTE_MS, 8 * HOUR_MS)  # phone change → next login
    gap2 = rng.randint(5 * MINUTE_MS, 12 * HOUR_MS)  # card change → drawdown session
    fixed = d1 + d2 + q + d3
    room = min(place.room, TAKEOVER_WITHIN_MS - MINUTE_MS) - fixed
    if gap1 + gap2 > room:
        scale = max(0.0, room - 2 * _MIN_GAP_MS) / (gap1 + gap2 - 2 * _MIN_GAP_MS)
        gap1 = _MIN_GAP_MS + int((gap1 - _MIN_GAP_MS) * scale)
        gap2 = _MIN_GAP_MS + int((gap2 - _MIN_GAP_MS) * scale)
    total = fixed + gap1 + gap2
    phone_login = daytime_ms(rng, place.earliest, place.latest - total + 1)
    card_login = phone_login + d1 + gap1
    draw_login = card_login + d2 + gap2
    return TakeoverPlan(
        episode_id=episode_id,
        customer_index=index,
        start_ms=phone_login,
        end_ms=draw_login + q + d3,
        phone_login=phone_login,
        phone_change=phone_login + d1,
        card_login=card_login,
        card_change=card_login + d2,
        draw_login=draw_login,
        limit_query=draw_login + q,
        share=round(rng.uniform(0.85, 1.0), 3),
    )


@dataclass(frozen=True, slots=True)
class CashoutPlan(EpisodePlan):
    """An ordinary session, later a new device: SMS login → limit query → drawdown of ``share`` of the limit."""

    scenario: ClassVar[ScenarioName] = "sequence_new_device_cashout"
    uses_limit: ClassVar[bool] = True

    warm_login: int = 0
    limit_query: int = 0
    share: float = 1.0

    def session_starts(self) -> tuple[int, ...]:
        """The ordinary warm-up session (labelled normal), then the cash-out session."""
        return (self.warm_login, self.start_ms)

    def details(self) -> dict[str, Any]:
        """The defining times and the share drawn."""
        return {"login_ms": self.start_ms, "limit_query_ms": self.limit_query, "drawdown_share": self.share}

    def run_session(self, number: int, ctx: StreamContext) -> list[SimRecord]:
        """The warm-up session on a known device, or the labelled cash-out on a new one."""
        rng, em = ctx.rng, ctx.em
        if number == 0:
            s = ctx.session(self.warm_login)
            home = self.warm_login + _seconds(rng, 3, 15)
            return [
                em.login(s, self.warm_login, rng.choice(("password", "biometric")), success=True),
                em.page_view(s, home, "home"),
                em.page_view(s, home + _seconds(rng, 5, 40), rng.choice(("bill", "message", "coupon"))),
            ]
        s = ctx.session(self.start_ms)
        s = replace(s, device_id=hex_id(rng, "d"))  # a device this customer never used
        with em.tagged(self.scenario, self.episode_id):
            out = [
                em.login(s, self.start_ms, "sms", success=True),
                em.page_view(s, between(rng, self.start_ms, self.limit_query), "limit"),
                em.limit_query(s, self.limit_query, ctx.c.available),
                em.page_view(s, between(rng, self.limit_query, self.end_ms), "loan/drawdown"),
            ]
            out.append(drawdown(ctx, s, self.end_ms, share_of(ctx.c.available, self.share)))
        return out


def plan_cashout(rng: random.Random, index: int, episode_id: str, place: Placement) -> CashoutPlan:
    """Plan a new-device cash-out inside ``place``, with the warm-up session 10 minutes to 6 hours before it."""
    q, d = _seconds(rng, 30, 300), _seconds(rng, 30, 1800)
    login = daytime_ms(rng, place.earliest, place.latest - q - d + 1)
    # The warm-up session lasts at most ~1 minute and ends well before the cash-out.
    latest_warm = login - 10 * MINUTE_MS
    earliest_warm = max(place.start_ms, login - 6 * HOUR_MS)
    warm = earliest_warm + int(rng.random() * max(1, latest_warm - earliest_warm))
    return CashoutPlan(
        episode_id=episode_id,
        customer_index=index,
        start_ms=login,
        end_ms=login + q + d,
        warm_login=warm,
        limit_query=login + q,
        share=round(rng.uniform(0.95, 1.0), 3),
    )
