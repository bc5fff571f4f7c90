"""Realistic, seeded, labelled traffic for ``loanwatch simulate``. Pure: no I/O, no clock reads.

The same :class:`SimConfig` always yields byte-identical records. Customers are independent generators (each
with its own ``random.Random`` derived from the seed and the customer's index) merged into one
event-time-ordered stream with ``heapq.merge``, so memory grows with the number of customers, not with the
number of events.

Labelled scenarios (:mod:`streams.simulate.scenarios`) are mixed in: each customer gets at most one, chosen by
``scenario_shares`` (and ``burst_share``); its records carry the scenario's name as label and an
``episode_id``, and :attr:`Traffic.episodes` is the ground truth. A scenario that needs more time than the span
has is compressed to fit (its order and plausible gaps kept; see each scenario module). A scenario that cannot
be placed at all (``night_limit_exhaustion`` in a span without night) is skipped when its share is a default,
and refused when it was asked for explicitly; :attr:`SimConfig.skipped_scenarios` says which and why.

Group scenarios (``fraud_ring``, ``decoy_public_wifi``, ``decoy_family``; :mod:`streams.simulate.scenarios.rings`)
link several customers through shared devices, addresses and card / phone hashes. Their shares are shares of
customers too (:attr:`SimConfig.group_counts`), every member has its own episode, and :attr:`Traffic.groups` lists
the groups themselves (members, shared entities). The decoys are innocent: nothing about them is risky.

What normal looks like (every customer outside an episode, checked by the tests from the records):

* loan applications at least 6 hours apart (never 3 within 30 minutes);
* external inquiries: at most 4 within any 7 days, at most 2 of them by non-bank lenders;
* at most one profile change (phone, card, address, device) within any 24 hours, so never phone → card;
* drawdowns within any 24 hours add up to at most 85 % of the available limit before the first of them, so no
  single drawdown and no night of drawdowns reaches 90 % (and none of a new device's first hour does);
* loans roll at most one day past due per day: on spans shorter than 30 days no ordinary loan goes from DPD 1
  to 31 (longer spans can show real, unlabelled deterioration of ordinary late payers).

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
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Annotated, Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas import topics
from schemas.behavior import Channel
from schemas.common import MAX_TIME, MIN_TIME, to_ms
from schemas.ids import ProductCode
from streams.simulate.customer import CustomerStream
from streams.simulate.events import Emitter, Topics
from streams.simulate.malformed import MALFORMED_KINDS, MalformedKind, inject_malformed
from streams.simulate.model import (
    GROUP_SCENARIO_NAMES,
    SCENARIO_NAMES,
    InjectedBurst,
    InjectedEpisode,
    ScenarioName,
    SimRecord,
)
from streams.simulate.population import make_customer, seeded_rng
from streams.simulate.scenarios import (
    DEFAULT_SCENARIO_SHARES,
    InjectedGroup,
    group_customers_used,
    plan_scenarios,
    unplaceable,
)
from streams.simulate.scenarios.burst import BURST_LEAD_MS, BURST_TAIL_MS

__all__ = [
    "BURST_LEAD_MS",
    "BURST_TAIL_MS",
    "DEFAULT_SCENARIO_SHARES",
    "GROUP_SCENARIO_NAMES",
    "SCENARIO_NAMES",
    "InjectedBurst",
    "InjectedEpisode",
    "InjectedGroup",
    "SimConfig",
    "SimRecord",
    "Traffic",
    "malformed_kinds",
]

malformed_kinds: Final[tuple[MalformedKind, ...]] = MALFORMED_KINDS
"""Every kind of hostile message :class:`Traffic` mixes in when ``malformed_share > 0``."""

DEFAULT_PRODUCTS: Final = (
    "cash_loan",
    "consumer_installment",
    "credit_line",
    "micro_business",
    "salary_advance",
)
DEFAULT_CHANNELS: Final[tuple[Channel, ...]] = ("app_android", "app_ios", "h5", "mini_program")
_BURST: Final = "multi_application_burst"
Share = Annotated[float, Field(ge=0, le=1)]


class SimConfig(BaseModel):
    """What to simulate. ``start`` is the event time where traffic begins (timezone required).

    ``scenario_shares`` maps scenario names to shares of customers; names left out get no episodes. The burst's
    share is ``burst_share`` unless ``scenario_shares`` names ``multi_application_burst`` itself.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    customers: int = Field(ge=1, le=10_000_000)
    seed: int = 7
    start: AwareDatetime
    hours: float = Field(default=6.0, gt=0, le=24 * 31, description="event-time span")
    burst_share: float = Field(default=0.02, ge=0, le=1, description="share of customers given a burst")
    scenario_shares: Mapping[ScenarioName, Share] = Field(
        default_factory=lambda: dict(DEFAULT_SCENARIO_SHARES),
        description="share of customers per scenario (other than the burst, by default)",
    )
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
        explicit = "burst_share" in self.model_fields_set
        if explicit and _BURST in self.scenario_shares and self.scenario_shares[_BURST] != self.burst_share:
            raise ValueError("burst_share and scenario_shares['multi_application_burst'] disagree; set one")
        asked = set(self.scenario_shares) if "scenario_shares" in self.model_fields_set else set()
        asked.add(_BURST)  # a burst that does not fit has always been an error
        for name, count in {**self._raw_counts(), **self._raw_group_counts()}.items():
            reason = unplaceable(name, self.start_ms, self.span_ms) if count else None
            if reason is not None and name in asked:
                raise ValueError(f"{reason}; set its share to 0")
        if sum(self.scenario_counts.values()) + sum(self.group_counts.values()) > self.customers:
            raise ValueError("scenario shares add up to more than all customers")
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
    def shares(self) -> dict[ScenarioName, float]:
        """The share of customers of every scenario (0 for those not asked for)."""
        shares: dict[ScenarioName, float] = {n: float(self.scenario_shares.get(n, 0.0)) for n in SCENARIO_NAMES}
        if _BURST not in self.scenario_shares:
            shares[_BURST] = self.burst_share
        return shares

    def _raw_counts(self) -> dict[ScenarioName, int]:
        return {name: round(share * self.customers) for name, share in self.shares.items()}

    def _raw_group_counts(self) -> dict[ScenarioName, int]:
        return {
            name: group_customers_used(name, round(float(self.scenario_shares.get(name, 0.0)) * self.customers))
            for name in GROUP_SCENARIO_NAMES
        }

    @property
    def group_counts(self) -> dict[ScenarioName, int]:
        """Customers taking part in each group scenario (0 when skipped), in no other scenario.

        Its share of the customers, rounded, less a remainder too small for a group: under 3 for a ring, under 100
        behind a public address, the odd one out of the couples.
        """
        skipped = self.skipped_scenarios
        return {name: 0 if name in skipped else count for name, count in self._raw_group_counts().items()}

    @property
    def skipped_scenarios(self) -> dict[ScenarioName, str]:
        """Scenarios with a (default) share that cannot be placed in this span, and why."""
        skipped: dict[ScenarioName, str] = {}
        for name, count in {**self._raw_counts(), **self._raw_group_counts()}.items():
            reason = unplaceable(name, self.start_ms, self.span_ms) if count else None
            if reason is not None:
                skipped[name] = reason
        return skipped

    @property
    def scenario_counts(self) -> dict[ScenarioName, int]:
        """How many episodes of each scenario: its share of the customers, rounded; 0 when skipped."""
        skipped = self.skipped_scenarios
        return {name: 0 if name in skipped else count for name, count in self._raw_counts().items()}

    @property
    def burst_count(self) -> int:
        """How many customers get a burst: their share of the customers, rounded to a whole customer."""
        return self.scenario_counts[_BURST]


class Traffic:
    """The simulated traffic of a :class:`SimConfig`: ``records()`` to iterate, ``episodes`` as ground truth."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self._topics = Topics(config.behavior_topic, config.repayment_topic, config.inquiry_topic)
        self._plans = plan_scenarios(
            config.seed,
            config.customers,
            {**config.scenario_counts, **config.group_counts},
            config.start_ms,
            config.span_ms,
            config.products,
            config.channels,
        )
        self.episodes: list[InjectedEpisode] = self._plans.episodes()
        """Every injected episode (all scenarios), by start time."""
        self.bursts: list[InjectedBurst] = self._plans.injected_bursts()
        """The ``multi_application_burst`` episodes in their burst-specific form, by start time."""
        self.groups: list[InjectedGroup] = list(self._plans.groups)
        """The fraud rings and decoys (members, shared entities), by start time; each member is also an episode."""

    def __iter__(self) -> Iterator[SimRecord]:
        return self.records()

    def records(self) -> Iterator[SimRecord]:
        """Every record in event-time order (ties: by customer index). A fresh iterator on every call."""
        cfg = self.config
        streams = (self._customer(index) for index in range(cfg.customers))
        merged = heapq.merge(*streams, key=_ts)
        if cfg.malformed_share <= 0:
            return merged
        rng = seeded_rng(cfg.seed, "malformed")
        return inject_malformed(merged, cfg.malformed_share, rng, cfg.behavior_topic, cfg.seed)

    def _customer(self, index: int) -> Iterator[SimRecord]:
        cfg = self.config
        rng = seeded_rng(cfg.seed, "customer", index)
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
            self._plans.by_customer.get(index),
            self._plans.drift,
        )
        return stream.records()


def _ts(record: SimRecord) -> int:
    return record.ts_ms
