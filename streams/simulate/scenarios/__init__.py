"""The scenario registry: every labelled risk scenario the simulator mixes into normal traffic.

Each scenario has a name (also the label of its records), a default share of customers and a planner. A
customer gets at most one scenario; ``population_drift`` picks its customers among those left ordinary.

Scenario (default share): defining property, computed from the records.

* ``multi_application_burst`` (2 %, ``burst_share``): 5-10 loan applications, 2-4 products, within 25 minutes.
* ``multi_lending`` (1.5 %): >= 6 credit inquiries, >= 5 of them by non-bank lenders, within 7 days.
* ``sequence_takeover`` (1 %): phone change → bank-card change → drawdown >= 80 % of the available limit, all
  within 24 h.
* ``sequence_new_device_cashout`` (1 %): login from a device not seen before → limit query → drawdown >= 90 %
  of the available limit, within 1 h of the login.
* ``night_limit_exhaustion`` (1 %): drawdowns within one China night (00:00-06:00) adding up to >= 90 % of the
  available limit before the first.
* ``repayment_deterioration`` (1.5 %): one loan: installment due → missed → partial payment, DPD 1 → 15 → 31.
* ``population_drift`` (2 %): from the shift on, drifted customers query their limit and draw more often, and
  draw larger shares (a population-level signal, one episode).

Group scenarios (:mod:`~streams.simulate.scenarios.rings`; share = customers taking part, one episode each, the
group in its ``details``), drawn after all the above from the customers still ordinary and not drifted:

* ``fraud_ring`` (1.25 %): rings of 3-30 customers linked through shared devices, IPs, card and phone hashes (star,
  chain or mixed), some also through one address book uploaded by several members; active members apply and draw
  within a few hours of each other, quiet ones only log in.
* ``decoy_public_wifi`` (3 %): 100-300 unrelated ordinary customers behind one public address within a day.
* ``decoy_family`` (0.5 %): couples sharing one device and one home address, behaving normally; many upload
  identical empty or tiny address books.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from schemas.behavior import Channel
from streams.simulate.model import (
    GROUP_SCENARIO_NAMES,
    SCENARIO_NAMES,
    GroupScenarioName,
    InjectedBurst,
    InjectedEpisode,
    ScenarioName,
)
from streams.simulate.population import customer_id_for, seeded_rng
from streams.simulate.scenarios.base import MIN_SPAN_MS, EpisodePlan, Placement, StreamContext
from streams.simulate.scenarios.burst import BURST_MIN_SPAN_MS, BurstPlan, plan_bursts
from streams.simulate.scenarios.drift import DriftPlan, plan_drift
from streams.simulate.scenarios.lending import plan_deterioration, plan_multi_lending
from streams.simulate.scenarios.night import night_windows, plan_night
from streams.simulate.scenarios.rings import InjectedGroup, group_customers_used, plan_groups
from streams.simulate.scenarios.sequences import plan_cashout, plan_takeover

__all__ = [
    "DEFAULT_SCENARIO_SHARES",
    "GROUP_SCENARIO_NAMES",
    "SCENARIO_NAMES",
    "DriftPlan",
    "EpisodePlan",
    "InjectedGroup",
    "Plans",
    "StreamContext",
    "group_customers_used",
    "plan_scenarios",
    "unplaceable",
]

DEFAULT_SCENARIO_SHARES: Final[Mapping[ScenarioName, float]] = MappingProxyType(
    {
        "multi_lending": 0.015,
        "sequence_takeover": 0.01,
        "sequence_new_device_cashout": 0.01,
        "night_limit_exhaustion": 0.01,
        "repayment_deterioration": 0.015,
        "population_drift": 0.02,
        "fraud_ring": 0.0125,
        "decoy_public_wifi": 0.03,
        "decoy_family": 0.005,
    }
)
"""Default shares of customers per scenario; ``multi_application_burst`` comes from ``burst_share`` (2 %).

Group scenarios count customers too: a 20,000-customer day has 250 ring members (30 rings with seed 7; ring sizes
are drawn, so 20-40), 600 customers behind 3 busy public addresses and 50 couples.
"""

Planner = Callable[[random.Random, int, str, Placement], EpisodePlan]
_PLANNERS: Final[Mapping[ScenarioName, Planner]] = MappingProxyType(
    {
        "multi_lending": plan_multi_lending,
        "sequence_takeover": plan_takeover,
        "sequence_new_device_cashout": plan_cashout,
        "night_limit_exhaustion": plan_night,
        "repayment_deterioration": plan_deterioration,
    }
)


def unplaceable(name: ScenarioName, start_ms: int, span_ms: int) -> str | None:
    """Why scenario ``name`` cannot be placed in the span, or None if it can."""
    if name == "multi_application_burst":
        if span_ms < BURST_MIN_SPAN_MS:
            return "hours is too short to place a burst (needs at least 83 minutes)"
        return None
    if span_ms < MIN_SPAN_MS:
        return f"hours is too short to place {name} (needs at least 1 hour)"
    if name == "night_limit_exhaustion" and not night_windows(Placement.of(start_ms, span_ms)):
        return "the span holds no 45 minutes of China night (00:00-06:00, UTC+8) away from its edges"
    return None


@dataclass(frozen=True)
class Plans:
    """Every planned episode of a run."""

    bursts: Mapping[int, BurstPlan] = field(default_factory=dict)
    by_customer: Mapping[int, EpisodePlan] = field(default_factory=dict)  # bursts included
    drift: DriftPlan | None = None
    groups: tuple[InjectedGroup, ...] = ()  # rings and decoys; their members' plans are in by_customer

    def episodes(self) -> list[InjectedEpisode]:
        """The ground truth: every episode, by start time."""
        found = [plan.injected(customer_id_for(index)) for index, plan in self.by_customer.items()]
        if self.drift is not None:
            found.append(self.drift.injected())
        return sorted(found, key=lambda e: (e.start_ms, e.episode_id))

    def injected_bursts(self) -> list[InjectedBurst]:
        """The bursts in their own ground-truth form, by start time."""
        found = [plan.burst(customer_id_for(index)) for index, plan in self.bursts.items()]
        return sorted(found, key=lambda b: (b.start_ms, b.episode_id))


def plan_scenarios(
    seed: int,
    customers: int,
    counts: Mapping[ScenarioName, int],
    start_ms: int,
    span_ms: int,
    products: tuple[str, ...],
    channels: tuple[Channel, ...],
) -> Plans:
    """Choose the customers of every scenario and plan their episodes (``counts`` are already placeable).

    Group scenarios' counts are customers taking part (see :func:`group_customers_used`); their members are drawn
    last, from their own stream, among customers with no other scenario: adding them moves no other episode.
    """
    # Bursts draw first, from their own stream, exactly as before other scenarios existed: adding scenarios
    # does not move a seed's bursts.
    burst_rng = seeded_rng(seed, "bursts")
    chosen_bursts = sorted(burst_rng.sample(range(customers), counts.get("multi_application_burst", 0)))
    bursts = plan_bursts(burst_rng, seed, chosen_bursts, start_ms, span_ms, products, channels)
    others = [n for n in SCENARIO_NAMES if n != "multi_application_burst" and counts.get(n, 0)]
    taken = set(chosen_bursts)
    # A random sample of the whole range, burst customers removed, is a random sample of the rest (and needs no
    # list of every customer).
    needed = sum(counts[n] for n in others)
    drawn = seeded_rng(seed, "scenarios").sample(range(customers), needed + len(taken))
    picked = [i for i in drawn if i not in taken][:needed]
    by_customer: dict[int, EpisodePlan] = dict(bursts)
    drift: DriftPlan | None = None
    place = Placement.of(start_ms, span_ms)
    for name in others:
        chosen, picked = sorted(picked[: counts[name]]), picked[counts[name] :]
        if name == "population_drift":
            drift = plan_drift(seeded_rng(seed, name), seed, chosen, start_ms, span_ms)
            continue
        for index in chosen:
            episode_id = f"ep{seed}-{name}-{customer_id_for(index)}"
            by_customer[index] = _PLANNERS[name](seeded_rng(seed, name, index), index, episode_id, place)
    groups = [n for n in GROUP_SCENARIO_NAMES if counts.get(n, 0)]
    if not groups:
        return Plans(bursts, by_customer, drift)
    taken = set(by_customer) | (drift.customers if drift is not None else frozenset())
    needed = sum(counts[n] for n in groups)
    drawn = seeded_rng(seed, "groups").sample(range(customers), needed + len(taken))
    free = [i for i in drawn if i not in taken][:needed]
    members: dict[GroupScenarioName, list[int]] = {}
    for group in groups:
        members[group], free = free[: counts[group]], free[counts[group] :]
    planned = plan_groups(seed, members, place, products)
    by_customer.update(planned.by_customer)
    ordered = tuple(sorted(planned.groups, key=lambda g: (g.start_ms, g.group_id)))
    return Plans(bursts, by_customer, drift, ordered)
