"""Simulated borrowers: who they are (devices, IPs, channel, credit line, loans) and how active they are.

Everything is drawn from the ``random.Random`` passed in, so one customer's profile depends only on the seed
and the customer's index. Identifiers are pseudonymous by construction: ``c_000001``, ``d_<hex>``,
``l_<hex>``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from schemas.behavior import Channel
from streams.simulate.rhythm import CHINA_OFFSET_MS, HOUR_MS

DAY_MS = 24 * HOUR_MS

Outcome = Literal["prompt", "late", "never"]


def seeded_rng(seed: int, *stream: object) -> random.Random:
    """A ``random.Random`` for one named stream of draws of a run, e.g. ``seeded_rng(7, "customer", 12)``."""
    # A simulator wants reproducible pseudo-randomness, never secrecy: `random` is the right tool (S311 is
    # about secrets). A string seed is hashed with SHA-512 by `random`, independent of PYTHONHASHSEED, so
    # every (seed, stream) pair gives the same sequence on every run and machine.
    return random.Random(":".join(map(str, (seed, *stream))))  # noqa: S311


def hex_id(rng: random.Random, prefix: str, bits: int = 64) -> str:
    """Draw a pseudonymous id such as ``d_3f9c0a1b2c3d4e5f`` (64 bits: collisions are negligible)."""
    return f"{prefix}_{rng.getrandbits(bits):0{bits // 4}x}"


def customer_id_for(index: int) -> str:
    """Return the pseudonymous id of customer ``index`` (0-based): ``c_000001`` for index 0."""
    return f"c_{index + 1:06d}"


def china_midnight_ms(ts_ms: int) -> int:
    """Return the UTC epoch ms of the China-time (UTC+8) midnight that starts the local day of ``ts_ms``."""
    return (ts_ms + CHINA_OFFSET_MS) // DAY_MS * DAY_MS - CHINA_OFFSET_MS


def china_date(ts_ms: int) -> date:
    """Return the China-time calendar date of ``ts_ms`` (the lender's calendar for due dates)."""
    return date.fromordinal(date(1970, 1, 1).toordinal() + (ts_ms + CHINA_OFFSET_MS) // DAY_MS)


def _ip(rng: random.Random) -> str:
    # Carrier-grade NAT (100.64.0.0/10, what mobile data looks like) or private 10.0.0.0/8 space: valid IPv4
    # that can never be mistaken for a real subscriber's address, and large enough that unrelated customers
    # almost never share one by accident.
    if rng.random() < 0.6:
        return f"100.{rng.randint(64, 127)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def public_wifi_ip(rng: random.Random) -> str:
    """Draw a public Wi-Fi address from TEST-NET-3 (203.0.113.0/24), legitimately shared by strangers."""
    return f"203.0.113.{rng.randint(1, 254)}"


@dataclass(slots=True)
class Loan:
    """An existing loan of the customer and how its current installment will go."""

    loan_id: str
    product: str
    installment_amount: float
    installment_no: int
    installments_total: int
    due_ms: int  # China-time midnight starting the due day, as UTC epoch ms
    outcome: Outcome
    dpd_at_start: int  # > 0: already delinquent when the simulation starts


@dataclass(slots=True)
class Customer:
    """One borrower's profile plus the little mutable state the behaviour stream keeps (available limit)."""

    index: int
    customer_id: str
    devices: list[str]
    ips: tuple[str, ...]
    channel: Channel
    products: tuple[str, ...]
    credit_limit: float
    available: float
    sessions_per_day: float
    inquiries_per_day: float
    loans: tuple[Loan, ...] = field(default=())

    @property
    def key(self) -> bytes:
        """The Kafka key of every record of this customer."""
        return self.customer_id.encode("ascii")


def _loan(rng: random.Random, products: tuple[str, ...], start_ms: int) -> Loan:
    total = rng.choice((3, 6, 6, 12, 12, 12, 24))
    principal = rng.randrange(1_000, 50_001, 500)
    # Equal installments at ~1.5% a month: real cents, so Money's two-decimal check is exercised.
    installment = round(principal * (1 + 0.015 * total) / total, 2)
    # Monthly due dates spread evenly over the month around the start.
    due_ms = china_midnight_ms(start_ms) + rng.randint(-3, 27) * DAY_MS
    draw = rng.random()
    outcome: Outcome = "prompt" if draw < 0.86 else "late" if draw < 0.96 else "never"
    dpd = rng.choice((3, 8, 15, 31, 45, 62, 95)) if rng.random() < 0.04 else 0
    return Loan(
        loan_id=hex_id(rng, "l"),
        product=rng.choice(products),
        installment_amount=installment,
        installment_no=rng.randint(1, total),
        installments_total=total,
        due_ms=due_ms,
        outcome=outcome,
        dpd_at_start=dpd,
    )


def make_customer(
    rng: random.Random, index: int, products: tuple[str, ...], channels: tuple[Channel, ...], start_ms: int
) -> Customer:
    """Draw one customer's profile."""
    devices = [hex_id(rng, "d") for _ in range(1 if rng.random() < 0.75 else 2)]
    ips = tuple(_ip(rng) for _ in range(rng.randint(2, 4)))
    # Channel mix of a typical consumer lender: Android-heavy, then iOS, then H5 / mini-program.
    weights = {"app_android": 0.5, "app_ios": 0.28, "h5": 0.12, "mini_program": 0.08, "api_partner": 0.02}
    channel = rng.choices(channels, weights=[weights.get(c, 0.1) for c in channels])[0]
    held = tuple(rng.sample(products, 1 if rng.random() < 0.7 else 2))
    credit_limit = float(rng.randrange(2_000, 50_001, 1_000))
    available = round(credit_limit * rng.uniform(0.05, 1.0) / 100) * 100.0
    # Activity is heavy-tailed: most borrowers open the app a few times a day, some almost never, a few a lot.
    sessions_per_day = min(20.0, rng.lognormvariate(0.55, 0.8))
    inquiries_per_day = rng.uniform(0.8, 2.0) if rng.random() < 0.08 else rng.uniform(0.02, 0.25)
    loans = tuple(
        _loan(rng, products, start_ms) for _ in range(rng.choices((0, 1, 2, 3), (0.2, 0.5, 0.2, 0.1))[0])
    )
    return Customer(
        index=index,
        customer_id=customer_id_for(index),
        devices=devices,
        ips=ips,
        channel=channel,
        products=held,
        credit_limit=credit_limit,
        available=available,
        sessions_per_day=sessions_per_day,
        inquiries_per_day=inquiries_per_day,
        loans=loans,
    )
