"""One customer's traffic in event-time order: app sessions, an injected burst, repayments, inquiries.

Each customer has its own ``random.Random`` seeded from (seed, index), so a customer's events do not depend on
how many other customers there are or in which order the merge pulls them.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace

from schemas.behavior import Channel
from streams.simulate.events import Emitter, InquiryPurpose, LoginMethod, ProfileField, Session
from streams.simulate.model import InjectedBurst, SimRecord
from streams.simulate.population import Customer, hex_id, public_wifi_ip
from streams.simulate.repayments import repayment_records
from streams.simulate.rhythm import HOUR_MS, MINUTE_MS, SECOND_MS, next_arrival

# An ordinary customer applies at most once per 6 hours: they can never look like a burst (3 in 30 minutes).
ORDINARY_APPLICATION_GAP_MS = 6 * HOUR_MS
_PAGES = ("home", "bill", "repay/plan", "repay/history", "coupon", "message", "profile", "help", "limit")
_LOGIN_METHODS: tuple[LoginMethod, ...] = ("biometric", "sms", "password", "oauth")
_PROFILE_FIELDS: tuple[ProfileField, ...] = ("phone", "bank_card", "address", "device")
_BANKS = tuple(f"bank_{i:03d}" for i in range(1, 31))
_NON_BANKS = tuple(f"nbfi_{i:03d}" for i in range(1, 121))


@dataclass(frozen=True, slots=True)
class BurstPlan:
    """An injected multi-application burst for one customer: when, which products, through which channels."""

    episode_id: str
    customer_index: int
    times_ms: tuple[int, ...]
    products: tuple[str, ...]  # one per application
    channels: tuple[Channel, ...]  # one per application
    limit_query_first: bool

    def injected(self, customer_id: str) -> InjectedBurst:
        """Describe this burst publicly (the ground truth)."""
        return InjectedBurst(
            episode_id=self.episode_id,
            customer_id=customer_id,
            start_ms=self.times_ms[0],
            end_ms=self.times_ms[-1],
            applications=len(self.times_ms),
            products=tuple(dict.fromkeys(self.products)),
        )


class CustomerStream:
    """Generates one customer's records between ``start_ms`` (inclusive) and ``end_ms`` (exclusive)."""

    def __init__(
        self,
        rng: random.Random,
        emitter: Emitter,
        customer: Customer,
        all_products: tuple[str, ...],
        channels: tuple[Channel, ...],
        start_ms: int,
        end_ms: int,
        burst: BurstPlan | None,
    ) -> None:
        self.rng = rng
        self.em = emitter
        self.c = customer
        self.all_products = all_products
        self.channels = channels
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.burst = burst
        self.sessions = 0
        self.last_application_ms: int | None = None

    def records(self) -> Iterator[SimRecord]:
        """All of this customer's records in event-time order."""
        repayments = repayment_records(self.rng, self.em, self.c, self.start_ms, self.end_ms)
        return heapq.merge(self._behaviour(), iter(repayments), self._inquiries(), key=_ts)

    # -- app sessions ---------------------------------------------------------------------------------------

    def _session(self, ts_ms: int, channel: Channel | None = None) -> Session:
        self.sessions += 1
        rng = self.rng
        # Mostly the primary device; an IP from the customer's usual few, now and then a public Wi-Fi.
        device = self.c.devices[0] if len(self.c.devices) == 1 or rng.random() < 0.85 else self.c.devices[1]
        ip = public_wifi_ip(rng) if rng.random() < 0.01 else rng.choice(self.c.ips)
        chosen: Channel
        if channel is not None:
            chosen = channel
        elif rng.random() < 0.92:
            chosen = self.c.channel
        else:
            chosen = rng.choice(self.channels)
        return Session(f"s{self.em.customer.index}-{self.sessions}", device, ip, chosen)

    def _think(self) -> int:
        # Seconds between taps: mostly a few seconds, sometimes a minute of reading.
        return int((2 + self.rng.expovariate(1 / 20)) * SECOND_MS)

    def _behaviour(self) -> Iterator[SimRecord]:
        t = self.start_ms
        burst = self.burst
        while True:
            begin = next_arrival(self.rng, t, self.c.sessions_per_day, self.end_ms)
            if burst is not None and (begin is None or begin >= burst.times_ms[0] - 30 * MINUTE_MS):
                records = self._burst_session(burst)
                burst = None
            elif begin is None:
                return
            else:
                records = self._ordinary_session(begin)
                if burst is not None:
                    # Keep this customer's stream ordered: an ordinary session ends before the burst begins.
                    cut = burst.times_ms[0] - 10 * MINUTE_MS
                    records = [r for r in records if r.ts_ms < cut]
            records = [r for r in records if r.ts_ms < self.end_ms]
            yield from records
            # The next session starts after this one ended (plus a pause): one session at a time.
            last = records[-1].ts_ms if records else (begin or t)
            t = max(t, last) + 2 * MINUTE_MS

    def _ordinary_session(self, t: int) -> list[SimRecord]:
        rng, em, c = self.rng, self.em, self.c
        s = self._session(t)
        method = rng.choices(_LOGIN_METHODS, (0.35, 0.3, 0.3, 0.05))[0]
        out: list[SimRecord] = []
        if rng.random() < 0.03:  # a failed attempt (typo, expired code), then the retry
            out.append(em.login(s, t, method, success=False))
            t += rng.randint(8, 45) * SECOND_MS
        out.append(em.login(s, t, method, success=True))
        if rng.random() < 0.006:
            t += self._think()
            out.append(em.contact_upload(s, t, int(rng.lognormvariate(5.3, 0.7)), hex_id(rng, "h")))
        t += self._think()
        out.append(em.page_view(s, t, "home"))
        for page in rng.sample(_PAGES, rng.choices((0, 1, 2, 3, 4, 5), (0.2, 0.3, 0.2, 0.15, 0.1, 0.05))[0]):
            t += self._think()
            out.append(em.page_view(s, t, page))
        if rng.random() < 0.3:
            t += self._think()
            out.append(em.limit_query(s, t, c.available))
            if c.available >= 500 and rng.random() < 0.22:
                t += self._think()
                out.append(self._drawdown(s, t))
        if c.loans and rng.random() < 0.1:
            t += self._think()
            out.append(em.repayment_click(s, t, rng.choice(c.loans).loan_id))
        if self._may_apply(t) and rng.random() < 0.04:
            t += self._think()
            product = rng.choice(self.all_products)
            out.append(em.page_view(s, t, "loan/apply", product))
            t += self._think()
            out.append(self._application(s, t, product))
            self.last_application_ms = t
        if rng.random() < 0.004:
            t += self._think()
            changed = rng.choice(_PROFILE_FIELDS)
            new_hash = hex_id(rng, "h")
            out.append(em.profile_change(s, t, changed, new_hash))
            if changed == "device":
                c.devices.insert(0, hex_id(rng, "d"))  # the new phone is the primary device from now on
        return out

    def _may_apply(self, t: int) -> bool:
        # Burst customers make no ordinary applications: their only applications are the episode's.
        if self.burst is not None:
            return False
        return self.last_application_ms is None or t - self.last_application_ms >= ORDINARY_APPLICATION_GAP_MS

    def _drawdown(self, s: Session, t: int) -> SimRecord:
        rng, c = self.rng, self.c
        before = c.available
        # Never more than the available limit, in whole hundreds of yuan.
        amount = max(100.0, (int(before * rng.uniform(0.2, 1.0)) // 100) * 100.0)
        c.available = round(before - amount, 2)
        product = rng.choice(c.products)
        term = rng.choice((3, 6, 12))
        return self.em.drawdown(s, t, product, hex_id(rng, "l"), amount, before, term)

    def _application(self, s: Session, t: int, product: str, episode_id: str | None = None) -> SimRecord:
        rng = self.rng
        amount = float(rng.randrange(1_000, 50_001, 500))
        term = rng.choice((3, 6, 6, 12, 12, 24))
        return self.em.application(s, t, product, hex_id(rng, "a"), amount, term, episode_id)

    # -- injected burst -------------------------------------------------------------------------------------

    def _burst_session(self, plan: BurstPlan) -> list[SimRecord]:
        rng, em = self.rng, self.em
        first = plan.times_ms[0]
        lead = rng.randint(60, 240) * SECOND_MS
        sessions: dict[Channel, Session] = {}
        base = self._session(first - lead, plan.channels[0])
        sessions[base.channel] = base
        out = [em.login(base, first - lead, "sms", success=True)]
        out.append(em.page_view(base, first - lead + rng.randint(3, 15) * SECOND_MS, "home"))
        if plan.limit_query_first:
            # 集中申请 usually starts by checking how much credit is left.
            out.append(em.limit_query(base, first - lead + rng.randint(20, 50) * SECOND_MS, self.c.available))
        previous = out[-1].ts_ms
        for at, product, channel in zip(plan.times_ms, plan.products, plan.channels, strict=True):
            s = sessions.get(channel)
            if s is None:
                # Another channel is another session (same phone and network, different app or mini-program).
                s = sessions[channel] = replace(
                    base, session_id=f"{base.session_id}-{len(sessions)}", channel=channel
                )
            view_at = max(previous + 1, at - rng.randint(5, 20) * SECOND_MS)
            if view_at < at:
                out.append(em.page_view(s, view_at, "loan/apply", product))
            out.append(self._application(s, at, product, plan.episode_id))
            previous = at
        return out

    # -- external inquiries ---------------------------------------------------------------------------------

    def _inquiries(self) -> Iterator[SimRecord]:
        rng, t = self.rng, self.start_ms
        while True:
            at = next_arrival(rng, t, self.c.inquiries_per_day, self.end_ms)
            if at is None:
                return
            if rng.random() < 0.35:
                record = self.em.inquiry(
                    at, "bank", rng.choice(_BANKS), rng.choices(_BANK_PURPOSES, (0.5, 0.3, 0.15, 0.05))[0]
                )
            else:
                record = self.em.inquiry(
                    at, "non_bank", rng.choice(_NON_BANKS), rng.choices(_NB_PURPOSES, (0.7, 0.25, 0.05))[0]
                )
            yield record
            t = at


_BANK_PURPOSES: tuple[InquiryPurpose, ...] = ("loan_application", "credit_card", "post_loan", "other")
_NB_PURPOSES: tuple[InquiryPurpose, ...] = ("loan_application", "post_loan", "other")


def _ts(record: SimRecord) -> int:
    return record.ts_ms
