"""Seeded synthetic profile vectors for the model tests and benchmarks (pure, no I/O).

The shapes follow what the rolling profile computes: small counts per horizon (Poisson), shares in [0, 1] (Beta)
and repayment state. ``anomalous_profile`` exaggerates the in-loan fraud signature (application burst, many
devices, limit exhausted at night); ``delinquency_stream`` draws labels from a known logistic model of the same
features, so a learner's AUC can be compared with the best one possible.

Example:
    >>> rng = random.Random(7)
    >>> x = normal_profile(rng)
    >>> sorted(x) == sorted(FEATURES)
    True
    >>> normal_profile(random.Random(7)) == x
    True
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Final

__all__ = ["FEATURES", "anomalous_profile", "delinquency_stream", "normal_profile", "poisson", "true_logit"]

FEATURES: Final[tuple[str, ...]] = (
    "applications_30m",
    "limit_queries_30m",
    "logins_30m",
    "drawdowns_24h",
    "limit_used_share",
    "distinct_devices_24h",
    "distinct_ips_24h",
    "night_share_24h",
    "profile_changes_24h",
    "inquiries_nonbank_30d",
    "inquiries_bank_30d",
    "current_dpd",
    "missed_payments_30d",
)


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw (Knuth's method; fine for the small rates used here)."""
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def normal_profile(rng: random.Random) -> dict[str, float]:
    """One ordinary customer's profile vector."""
    return {
        "applications_30m": float(poisson(rng, 0.1)),
        "limit_queries_30m": float(poisson(rng, 0.3)),
        "logins_30m": float(poisson(rng, 1.0)),
        "drawdowns_24h": float(poisson(rng, 0.2)),
        "limit_used_share": rng.betavariate(2, 5),
        "distinct_devices_24h": float(1 + poisson(rng, 0.05)),
        "distinct_ips_24h": float(1 + poisson(rng, 0.4)),
        "night_share_24h": rng.betavariate(1, 9),
        "profile_changes_24h": float(poisson(rng, 0.02)),
        "inquiries_nonbank_30d": float(poisson(rng, 1.0)),
        "inquiries_bank_30d": float(poisson(rng, 0.5)),
        "current_dpd": float(poisson(rng, 0.3) if rng.random() < 0.1 else 0),
        "missed_payments_30d": float(rng.random() < 0.05),
    }


def anomalous_profile(rng: random.Random) -> dict[str, float]:
    """A customer in the fraud / bust-out pattern: burst of applications, new devices, limit drained at night."""
    x = normal_profile(rng)
    x.update(
        applications_30m=float(4 + poisson(rng, 3.0)),
        limit_queries_30m=float(3 + poisson(rng, 3.0)),
        limit_used_share=rng.uniform(0.9, 1.0),
        distinct_devices_24h=float(2 + poisson(rng, 1.5)),
        night_share_24h=rng.uniform(0.6, 1.0),
        profile_changes_24h=float(1 + poisson(rng, 1.0)),
        inquiries_nonbank_30d=float(6 + poisson(rng, 6.0)),
    )
    return x


def true_logit(x: dict[str, float]) -> float:
    """The log-odds of delinquency the synthetic labels are drawn from (base rate about 8 %)."""
    return (
        -4.2
        + 2.2 * x["limit_used_share"]
        + 0.35 * x["inquiries_nonbank_30d"]
        + 0.15 * x["inquiries_bank_30d"]
        + 0.5 * x["current_dpd"]
        + 1.2 * x["missed_payments_30d"]
        + 1.5 * x["night_share_24h"]
        + 0.4 * x["applications_30m"]
    )


def delinquency_stream(seed: int, n: int) -> Iterator[tuple[dict[str, float], bool]]:
    """``n`` (profile at due date, delinquent) pairs; one in 20 profiles is anomalous (riskier)."""
    rng = random.Random(seed)  # noqa: S311  # synthetic data, not security
    for _ in range(n):
        x = anomalous_profile(rng) if rng.random() < 0.05 else normal_profile(rng)
        p = 1.0 / (1.0 + math.exp(-true_logit(x)))
        yield x, rng.random() < p
