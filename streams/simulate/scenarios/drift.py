"""``population_drift``: from a point in the span on, a share of ordinary customers behave differently.

It is a population-level signal (input drift for ADWIN-style monitors), not a customer alert: the drifted
customers look up their limit more than twice as often, draw more often and draw larger shares (50-85 % of
what is left instead of 20-85 %), but each of them stays within what normal looks like per customer (see
:mod:`streams.simulate.traffic`). Their app records from the shift on carry the label; one episode covers the
shift, from its start to the end of the span.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from streams.simulate.model import InjectedEpisode
from streams.simulate.population import customer_id_for

# Probabilities per ordinary session (before → after the shift) and the drawdown's share of the available limit.
LIMIT_QUERY_P: Final = (0.3, 0.7)
DRAWDOWN_P: Final = (0.22, 0.45)
DRAWDOWN_SHARE: Final = ((0.2, 0.85), (0.5, 0.85))


@dataclass(frozen=True, slots=True)
class DriftPlan:
    """The shift: when it starts, which customers drift, the episode id their records carry."""

    episode_id: str
    start_ms: int
    end_ms: int
    customers: frozenset[int]

    def injected(self) -> InjectedEpisode:
        """The one population-level episode (``customer_id`` None; details list the drifted customers)."""
        return InjectedEpisode(
            "population_drift",
            self.episode_id,
            None,
            self.start_ms,
            self.end_ms,
            {
                "customers": len(self.customers),
                "customer_ids": [customer_id_for(i) for i in sorted(self.customers)],
                "limit_query_p": list(LIMIT_QUERY_P),
                "drawdown_p": list(DRAWDOWN_P),
                "drawdown_share": [list(r) for r in DRAWDOWN_SHARE],
            },
        )


def plan_drift(rng: random.Random, seed: int, chosen: Iterable[int], start_ms: int, span_ms: int) -> DriftPlan:
    """The shift starts 35-60 % into the span (enough before it to learn normal, enough after to see it)."""
    shift = start_ms + int(span_ms * rng.uniform(0.35, 0.6))
    return DriftPlan(f"ep{seed}-population_drift", shift, start_ms + span_ms - 1, frozenset(chosen))
