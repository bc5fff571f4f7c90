"""Realistic, seeded, labelled traffic for ``loanwatch simulate``. Pure: no I/O, no clock reads.

The same :class:`SimConfig` always yields byte-identical records. Customers are independent generators (each
with its own ``random.Random`` derived from the seed and the customer's index) merged into one
event-time-ordered stream with ``heapq.merge``, so memory grows with the number of customers, not with the
number of events.

Example:
    >>> from datetime import UTC, datetime
    >>> traffic = Traffic(SimConfig(customers=50, start=datetime(2026, 1, 5, tzinfo=UTC), hours=3))
    >>> records = list(traffic.records())
    >>> all(a.ts_ms <= b.ts_ms for a, b in zip(records, records[1:]))
    True
    >>> len(traffic.bursts), {r.label for r in records} >= {"normal", "multi_application_burst"}
    (1, True)
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas import topics
from schemas.behavior import Channel
from schemas.common import MAX_TIME, MIN_TIME, to_ms
from schemas.ids import ProductCode
from streams.simulate.customer import BurstPlan, CustomerStream
from streams.simulate.events import Emitter, Topics
from streams.simulate.malformed import MALFORMED_KINDS, MalformedKind, inject_malformed
from streams.simulate.model import InjectedBurst, SimRecord
from streams.simulate.population import customer_id_for, make_customer
from streams.simulate.rhythm import MINUTE_MS, SECOND_MS, daytime_ms

__all__ = ["InjectedBurst", "SimConfig", "SimRecord", "Traffic", "malformed_kinds"]

malformed_kinds: Final[tuple[MalformedKind, ...]] = MALFORMED_KINDS
"""Every kind of hostile message :class:`Traffic` mixes in when ``malformed_share > 0``."""

# Where a burst may sit: late enough that the detector has seen the customer's normal behaviour, early enough
# that the whole episode (and the alert after it) is inside the span.
BURST_LEAD_MS: Final = 30 * MINUTE_MS
BURST_TAIL_MS: Final = 45 * MINUTE_MS
_LOGIN_BEFORE_BURST_MS: Final = 5 * MINUTE_MS  # the burst session's login and limit query come first
_MIN_BURST_MS: Final = 3 * MINUTE_MS
_MAX_BURST_MS: Final = 25 * MINUTE_MS

DEFAULT_PRODUCTS: Final = (
    "cash_loan",
    "consumer_installment",
    "credit_line",
    "micro_business",
    "salary_advance",
)
DEFAULT_CHANNELS: Final[tuple[Channel, ...]] = ("app_android", "app_ios", "h5", "mini_program")


class SimConfig(BaseModel):
    """What to simulate. ``start`` is the event time where traffic begins (timezone required)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    customers: int = Field(ge=1, le=10_000_000)
    seed: int = 7
    start: AwareDatetime
    hours: float = Field(default=6.0, gt=0, le=24 * 31, description="event-time span")
    burst_share: float = Field(default=0.02, ge=0, le=1, description="share of customers given a burst")
    malformed_share: float = Field(default=0.0, ge=0, le=1, description="malformed messages per valid record")
    products: Annotated[tuple[ProductCode, ...], Field(min_length=2)] = DEFAULT_PRODUCTS
    channels: Annotated[tuple[Channel, ...], Field(min_length=1)] = DEFAULT_CHANNELS
    behavior_topic: str = topics.BEHAVIOR
    repayment_topic: str = topics.REPAYMENT
    inquiry_topic: str = topics.INQUIRY

    @field_validator("products", "channels")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("must not repeat a value")
        return value

    @model_validator(mode="after")
    def _fits(self) -> SimConfig:
        if not (MIN_TIME <= self.start and self.end <= MAX_TIME):
            raise ValueError(
                "start .. start + hours must lie between 2000 and 2100 (the contracts' time range)"
            )
        if (
            self.burst_count
            and self.span_ms < BURST_LEAD_MS + BURST_TAIL_MS + _LOGIN_BEFORE_BURST_MS + _MIN_BURST_MS
        ):
            raise ValueError(
                "hours is too short to place a burst (needs at least 83 minutes); set burst_share=0"
            )
        return self

    @property
    def start_ms(self) -> int:
        """Event time of the span's start, epoch ms."""
        return to_ms(self.start)

    @property
    def span_ms(self) -> int:
        """Length of the span in ms."""
        return int(self.hours * 3_600_000)

    @property
    def end(self) -> AwareDatetime:
        """Event time where the span ends (exclusive)."""
        return self.start + timedelta(hours=self.hours)

    @property
    def burst_count(self) -> int:
        """How many customers get a burst: ``burst_share`` of them, rounded to the nearest whole customer."""
        return round(self.burst_share * self.customers)


class Traffic:
    """The simulated traffic of a :class:`SimConfig`: ``records()`` to iterate, ``bursts`` as ground truth."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self._topics = Topics(config.behavior_topic, config.repayment_topic, config.inquiry_topic)
        self._plans = self._plan_bursts()
        self.bursts: list[InjectedBurst] = sorted(
            (plan.injected(customer_id_for(plan.customer_index)) for plan in self._plans.values()),
            key=lambda b: (b.start_ms, b.episode_id),
        )

    def __iter__(self) -> Iterator[SimRecord]:
        return self.records()

    def records(self) -> Iterator[SimRecord]:
        """Every record in event-time order (ties: by customer index). A fresh iterator on every call."""
        cfg = self.config
        streams = (self._customer(index) for index in range(cfg.customers))
        merged = heapq.merge(*streams, key=_ts)
        if cfg.malformed_share <= 0:
            return merged
        rng = _rng(cfg.seed, "malformed")
        return inject_malformed(merged, cfg.malformed_share, rng, cfg.behavior_topic, cfg.seed)

    def _customer(self, index: int) -> Iterator[SimRecord]:
        cfg = self.config
        rng = _rng(cfg.seed, "customer", index)
        start_ms = cfg.start_ms
        customer = make_customer(rng, index, cfg.products, cfg.channels, start_ms)
        stream = CustomerStream(
            rng,
            Emitter(cfg.seed, customer, self._topics),
            customer,
            cfg.products,
            cfg.channels,
            start_ms,
            start_ms + cfg.span_ms,
            self._plans.get(index),
        )
        return stream.records()

    def _plan_bursts(self) -> dict[int, BurstPlan]:
        cfg = self.config
        rng = _rng(cfg.seed, "bursts")
        chosen = sorted(rng.sample(range(cfg.customers), cfg.burst_count))
        earliest = cfg.start_ms + BURST_LEAD_MS + _LOGIN_BEFORE_BURST_MS
        latest_end = cfg.start_ms + cfg.span_ms - BURST_TAIL_MS
        plans: dict[int, BurstPlan] = {}
        for index in chosen:
            duration = min(
                rng.randint(_MIN_BURST_MS // SECOND_MS, _MAX_BURST_MS // SECOND_MS) * SECOND_MS,
                latest_end - earliest,
            )
            first = daytime_ms(rng, earliest, latest_end - duration + 1)
            count = rng.randint(5, 10)
            middle = sorted(first + 1 + int(rng.random() * (duration - 1)) for _ in range(count - 2))
            times = (first, *middle, first + duration)
            products = self._burst_products(rng, count)
            channels = self._burst_channels(rng, count)
            plans[index] = BurstPlan(
                episode_id=f"ep{cfg.seed}-{customer_id_for(index)}",
                customer_index=index,
                times_ms=times,
                products=products,
                channels=channels,
                limit_query_first=rng.random() < 0.85,
            )
        return plans

    def _burst_products(self, rng: random.Random, count: int) -> tuple[str, ...]:
        # 2-4 different products, every one of them applied for at least once.
        kinds = rng.sample(self.config.products, min(len(self.config.products), rng.randint(2, 4)))
        picks = kinds + [rng.choice(kinds) for _ in range(count - len(kinds))]
        rng.shuffle(picks)
        return tuple(picks)

    def _burst_channels(self, rng: random.Random, count: int) -> tuple[Channel, ...]:
        channels = self.config.channels
        primary = rng.choice(channels)
        if len(channels) == 1 or rng.random() < 0.6:
            return (primary,) * count
        # Sometimes through several channels at once (app, H5 and mini-program of the same lender).
        extra = rng.sample([c for c in channels if c != primary], min(len(channels) - 1, rng.randint(1, 2)))
        return tuple(primary if rng.random() < 0.5 else rng.choice(extra) for _ in range(count))


def _rng(seed: int, *stream: object) -> random.Random:
    # A simulator wants reproducible pseudo-randomness, never secrecy: `random` is the right tool (S311 is
    # about secrets). A string seed is hashed with SHA-512 by `random`, independent of PYTHONHASHSEED, so
    # every (seed, stream) pair gives the same sequence on every run and machine.
    return random.Random(":".join(map(str, (seed, *stream))))  # noqa: S311


def _ts(record: SimRecord) -> int:
    return record.ts_ms
