"""One customer's traffic in event-time order: app sessions, an injected episode, repayments, inquiries.

Each customer has its own ``random.Random`` seeded from (seed, index), so a customer's events do not depend on
how many other customers there are or in which order the merge pulls them. Ordinary behaviour is kept inside
the bounds of "what normal looks like" (:mod:`streams.simulate.traffic`), so that no ordinary customer shows a
scenario's defining signal.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Iterator
from typing import Final

from schemas.behavior import Channel
from streams.simulate.events import Emitter, InquiryPurpose, LoginMethod, ProfileField, Session
from streams.simulate.model import SimRecord
from streams.simulate.population import DAY_MS, Customer, hex_id, public_wifi_ip
from streams.simulate.repayments import repayment_records
from streams.simulate.rhythm import HOUR_MS, MINUTE_MS, SECOND_MS, next_arrival
from streams.simulate.scenarios import DriftPlan, EpisodePlan
from streams.simulate.scenarios.drift import DRAWDOWN_P, DRAWDOWN_SHARE, LIMIT_QUERY_P
from streams.simulate.scenarios.lending import BANKS, NON_BANKS

# An ordinary customer applies at most once per 6 hours: they can never look like a burst (3 in 30 minutes).
ORDINARY_APPLICATION_GAP_MS: Final = 6 * HOUR_MS
# Ordinary drawdowns within any 24 h add up to at most 85 % of the available limit before the first of them:
# draining the line (>= 90 %, at night or after a takeover) is what the scenarios do.
ORDINARY_DRAW_CAP: Final = 0.85
# At most one ordinary profile change (phone, card, address, device) per customer in any 24 h.
ORDINARY_PROFILE_CHANGE_GAP_MS: Final = DAY_MS
# Ordinary external inquiries within any 7 days: at most 4, of them at most 2 by non-bank lenders.
ORDINARY_INQUIRIES_7D: Final = 4
ORDINARY_NON_BANK_INQUIRIES_7D: Final = 2
_WEEK_MS: Final = 7 * DAY_MS
_PAGES = ("home", "bill", "repay/plan", "repay/history", "coupon", "message", "profile", "help", "limit")
_LOGIN_METHODS: tuple[LoginMethod, ...] = ("biometric", "sms", "password", "oauth")
_PROFILE_FIELDS: tuple[ProfileField, ...] = ("phone", "bank_card", "address", "device")


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
        plan: EpisodePlan | None = None,
        drift: DriftPlan | None = None,
    ) -> None:
        self.rng = rng
        self.em = emitter
        self.c = customer
        self.all_products = all_products
        self.channels = channels
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.plan = plan
        self.drift = drift if drift is not None and customer.index in drift.customers else None
        self.sessions = 0
        self.last_application_ms: int | None = None
        self.last_profile_change_ms: int | None = None
        self.draws: deque[tuple[int, float, float]] = deque()  # (ts, available before, amount) in the last 24 h
        self.inquiries: deque[tuple[int, bool]] = deque()  # (ts, by a non-bank) in the last 7 days

    def records(self) -> Iterator[SimRecord]:
        """All of this customer's records in event-time order."""
        repayments = repayment_records(self.rng, self.em, self.c, self.start_ms, self.end_ms)
        side = self.plan.side_records(self) if self.plan is not None else []
        return heapq.merge(self._behaviour(), iter(repayments), self._inquiries(), iter(side), key=_ts)

    # -- app sessions ---------------------------------------------------------------------------------------

    def session(self, ts_ms: int, channel: Channel | None = None) -> Session:
        """Open an app session on one of the customer's own devices."""
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
        plan = self.plan
        scripted = deque(enumerate(plan.session_starts())) if plan is not None else deque()
        while True:
            begin = next_arrival(self.rng, t, self.c.sessions_per_day, self.end_ms)
            anchor = scripted[0][1] if scripted else None
            if plan is not None and anchor is not None and (begin is None or begin >= anchor - 30 * MINUTE_MS):
                records = plan.run_session(scripted.popleft()[0], self)
            elif begin is None:
                return
            else:
                records = self._ordinary_session(begin)
                if anchor is not None:
                    # Keep this customer's stream ordered: an ordinary session ends before a scripted one begins.
                    cut = anchor - 10 * MINUTE_MS
                    records = [r for r in records if r.ts_ms < cut]
            records = [r for r in records if r.ts_ms < self.end_ms]
            yield from records
            # The next session starts after this one ended (plus a pause): one session at a time.
            last = records[-1].ts_ms if records else (begin or t)
            t = max(t, last) + 2 * MINUTE_MS

    def _ordinary_session(self, t: int) -> list[SimRecord]:
        drift = self.drift
        if drift is not None and t >= drift.start_ms:
            with self.em.tagged("population_drift", drift.episode_id):
                return self._session_records(t, drifted=True)
        return self._session_records(t, drifted=False)

    def _session_records(self, t: int, drifted: bool) -> list[SimRecord]:
        rng, em, c = self.rng, self.em, self.c
        s = self.session(t)
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
        if rng.random() < LIMIT_QUERY_P[drifted]:
            t += self._think()
            out.append(em.limit_query(s, t, c.available))
            if c.available >= 500 and rng.random() < DRAWDOWN_P[drifted]:
                t += self._think()
                draw = self._drawdown(s, t, *DRAWDOWN_SHARE[drifted])
                if draw is not None:
                    out.append(draw)
        if c.loans and rng.random() < 0.1:
            t += self._think()
            out.append(em.repayment_click(s, t, rng.choice(c.loans).loan_id))
        if self._may_apply(t) and rng.random() < 0.04:
            t += self._think()
            product = rng.choice(self.all_products)
            out.append(em.page_view(s, t, "loan/apply", product))
            t += self._think()
            out.append(self.application(s, t, product))
            self.last_application_ms = t
        if rng.random() < 0.004 and self._may_change_profile(t):
            t += self._think()
            changed = rng.choice(_PROFILE_FIELDS)
            new_hash = hex_id(rng, "h")
            out.append(em.profile_change(s, t, changed, new_hash))
            self.last_profile_change_ms = t
            if changed == "device":
                c.devices.insert(0, hex_id(rng, "d"))  # the new phone is the primary device from now on
        return out

    def _may_apply(self, t: int) -> bool:
        # Burst customers make no ordinary applications: their only applications are the episode's.
        if self.plan is not None and self.plan.blocks_applications:
            return False
        return self.last_application_ms is None or t - self.last_application_ms >= ORDINARY_APPLICATION_GAP_MS

    def _may_change_profile(self, t: int) -> bool:
        last = self.last_profile_change_ms
        return last is None or t - last >= ORDINARY_PROFILE_CHANGE_GAP_MS

    def _drawdown(self, s: Session, t: int, low: float, high: float) -> SimRecord | None:
        rng, c = self.rng, self.c
        before = c.available
        wanted = before * rng.uniform(low, high)
        product = rng.choice(c.products)
        term = rng.choice((3, 6, 12))
        loan_id = hex_id(rng, "l")
        if self.plan is not None and self.plan.uses_limit:
            return None  # the episode will find the line as it was
        draws = self.draws
        while draws and draws[0][0] <= t - DAY_MS:
            draws.popleft()
        base = draws[0][1] if draws else before
        room = ORDINARY_DRAW_CAP * base - sum(amount for _, _, amount in draws)
        # Whole hundreds of yuan, never more than the 24 h cap leaves (so never more than the available limit).
        amount = (int(min(wanted, room)) // 100) * 100.0
        if amount < 100:
            return None
        c.available = round(before - amount, 2)
        draws.append((t, before, amount))
        return self.em.drawdown(s, t, product, loan_id, amount, before, term)

    def application(self, s: Session, t: int, product: str, episode_id: str | None = None) -> SimRecord:
        """Build a loan application of this customer (of a burst with ``episode_id``)."""
        rng = self.rng
        amount = float(rng.randrange(1_000, 50_001, 500))
        term = rng.choice((3, 6, 6, 12, 12, 24))
        return self.em.application(s, t, product, hex_id(rng, "a"), amount, term, episode_id)

    # -- external inquiries ---------------------------------------------------------------------------------

    def _inquiries(self) -> Iterator[SimRecord]:
        rng, t, recent = self.rng, self.start_ms, self.inquiries
        while True:
            at = next_arrival(rng, t, self.c.inquiries_per_day, self.end_ms)
            if at is None:
                return
            t = at
            non_bank = rng.random() >= 0.35
            if non_bank:
                institution, purpose = rng.choice(NON_BANKS), rng.choices(_NB_PURPOSES, (0.7, 0.25, 0.05))[0]
            else:
                institution, purpose = rng.choice(BANKS), rng.choices(_BANK_PURPOSES, (0.5, 0.3, 0.15, 0.05))[0]
            while recent and recent[0][0] <= at - _WEEK_MS:
                recent.popleft()
            non_banks = sum(nb for _, nb in recent)
            if len(recent) >= ORDINARY_INQUIRIES_7D or (non_bank and non_banks >= ORDINARY_NON_BANK_INQUIRIES_7D):
                continue  # an ordinary borrower is not shopping around that hard
            recent.append((at, non_bank))
            yield self.em.inquiry(at, "non_bank" if non_bank else "bank", institution, purpose)


_BANK_PURPOSES: tuple[InquiryPurpose, ...] = ("loan_application", "credit_card", "post_loan", "other")
_NB_PURPOSES: tuple[InquiryPurpose, ...] = ("loan_application", "post_loan", "other")


def _ts(record: SimRecord) -> int:
    return record.ts_ms
