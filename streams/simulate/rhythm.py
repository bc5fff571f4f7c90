"""The daily rhythm of borrower activity, and arrival times drawn from it.

Timestamps are UTC epoch milliseconds, but people live in China time (UTC+8): the rhythm is indexed by the
local hour. Arrivals follow a non-homogeneous Poisson process, drawn by thinning (Lewis & Shedler): candidates
at the peak rate, each kept with probability ``weight(t) / peak``. Pure: the caller passes the
``random.Random``.
"""

from __future__ import annotations

import random

HOUR_MS = 3_600_000
MINUTE_MS = 60_000
SECOND_MS = 1_000
CHINA_OFFSET_MS = 8 * HOUR_MS

# Relative activity by China local hour (index 0 = 00:00-00:59). Shape of consumer-finance app traffic: a deep
# trough 01:00-06:00, a late-morning peak 10:00-12:00, a lunch dip, the main evening peak 20:00-23:00.
HOURLY_WEIGHT: tuple[float, ...] = (
    0.55,
    0.25,
    0.12,
    0.08,
    0.07,
    0.10,  # 00-05
    0.25,
    0.55,
    0.90,
    1.20,
    1.60,
    1.70,  # 06-11
    1.50,
    1.10,
    1.05,
    1.05,
    1.05,
    1.10,  # 12-17
    1.20,
    1.40,
    1.75,
    1.85,
    1.70,
    1.05,  # 18-23
)
PEAK_WEIGHT = max(HOURLY_WEIGHT)
MEAN_WEIGHT = sum(HOURLY_WEIGHT) / len(HOURLY_WEIGHT)
NIGHT_HOURS = frozenset(range(1, 6))
PEAK_HOURS = frozenset({10, 11, 20, 21, 22})


def china_hour(ts_ms: int) -> int:
    """Local hour of day (0-23) in China time for a UTC epoch-millisecond timestamp."""
    return ((ts_ms + CHINA_OFFSET_MS) // HOUR_MS) % 24


def weight(ts_ms: int) -> float:
    """Relative activity at ``ts_ms``; averages 1.0 over a day."""
    return HOURLY_WEIGHT[china_hour(ts_ms)] / MEAN_WEIGHT


def next_arrival(rng: random.Random, after_ms: int, per_day: float, end_ms: int) -> int | None:
    """Draw the next arrival after ``after_ms`` at ``per_day`` a day on average; None past ``end_ms``."""
    if per_day <= 0:
        return None
    peak_per_ms = per_day * (PEAK_WEIGHT / MEAN_WEIGHT) / (24 * HOUR_MS)
    t = float(after_ms)
    while True:
        t += rng.expovariate(peak_per_ms)
        if t >= end_ms:
            return None
        if rng.random() * PEAK_WEIGHT < HOURLY_WEIGHT[china_hour(int(t))]:
            return int(t)


def daytime_ms(rng: random.Random, after_ms: int, end_ms: int) -> int:
    """Draw a time in ``[after_ms, end_ms)`` following the daily rhythm (one-off events such as a payment)."""
    span = max(1, end_ms - after_ms)
    for _ in range(64):
        t = after_ms + int(rng.random() * span)
        if rng.random() * PEAK_WEIGHT < HOURLY_WEIGHT[china_hour(t)]:
            return t
    # Only reachable for a span lying wholly in the night: any time in it will do.
    return after_ms + int(rng.random() * span)
