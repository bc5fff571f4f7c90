"""Feature vector of a :class:`~detectors.profile.Profile` at an event time; the feature table is in that module.

Sums run over strided array slices (C loops), so the cost is a few dozen slice operations per horizon
regardless of how many buckets are filled.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from functools import reduce
from operator import or_
from typing import TYPE_CHECKING, Final

from detectors import profile_layout as L

if TYPE_CHECKING:
    from detectors.profile import Profile

__all__ = ["FEATURE_NAMES", "features"]

_TYPE_STEMS: Final = (
    "logins",
    "page_views",
    "loan_applications",
    "limit_queries",
    "drawdowns",
    "repayment_clicks",
    "profile_changes",
    "contact_uploads",
)
_REPAYMENT_STEMS: Final = ("installments_due", "payments", "missed_payments", "dpd_updates", "payoffs")
_BEHAVIOR_STEMS: Final = (
    *_TYPE_STEMS,
    "distinct_products_applied",
    "distinct_channels_applied",
    "distinct_devices",
    "distinct_ips",
    "drawdown_amount",
    "drawdown_limit_share_max",
    "drawdown_limit_share_total",
    "night_events",
    "night_drawdowns",
    "night_share",
    *(f"profile_changes_{f}" for f in L.PROFILE_FIELDS),
)
_HORIZONS: Final = ("30m", "24h", "30d")
_ZEROS: Final = {h: dict.fromkeys((f"{s}_{h}" for s in _BEHAVIOR_STEMS), 0.0) for h in _HORIZONS}

FEATURE_NAMES: Final[tuple[str, ...]] = (
    *(name for h in _HORIZONS for name in _ZEROS[h]),
    *(f"inquiries{k}_{h}" for h in ("7d", "30d") for k in ("", "_bank", "_non_bank")),
    *(f"{s}_30d" for s in _REPAYMENT_STEMS),
    "partial_payments_30d",
    "on_time_payments_30d",
    "dpd_max",
    "dpd_bucket",
    "dpd_bucket_max_30d",
    "dpd_rolls_30d",
    "dpd_cures_30d",
    "days_since_on_time_payment",
    "late_events",
    "duplicate_events",
)
"""Every key :func:`features` returns, in a stable order."""


def _span(rows: array[int], stride: int, lo: int, hi: int) -> tuple[int, int]:
    keys = rows[::stride]
    return bisect_left(keys, lo) * stride, bisect_right(keys, hi) * stride


def _behavior(out: dict[str, float], rows: array[int], stride: int, s: int, e: int, h: str) -> None:
    if s == e:
        out.update(_ZEROS[h])
        return
    total = 0
    for i, stem in enumerate(_TYPE_STEMS):
        n = sum(rows[s + L.TYPE0 + i : e : stride])
        total += n
        out[f"{stem}_{h}"] = float(n)
    out[f"distinct_products_applied_{h}"] = float(reduce(or_, rows[s + L.PRODUCTS : e : stride], 0).bit_count())
    out[f"distinct_channels_applied_{h}"] = float(reduce(or_, rows[s + L.CHANNELS_MASK : e : stride], 0).bit_count())
    out[f"distinct_devices_{h}"] = float(reduce(or_, rows[s + L.DEVICES : e : stride], 0).bit_count())
    out[f"distinct_ips_{h}"] = float(reduce(or_, rows[s + L.IPS : e : stride], 0).bit_count())
    amount = sum(rows[s + L.DD_AMOUNT : e : stride])
    limit = max(rows[s + L.LIMIT_MAX : e : stride])
    share_max = max(rows[s + L.SHARE_MAX : e : stride]) / 1000
    out[f"drawdown_amount_{h}"] = float(amount)
    out[f"drawdown_limit_share_max_{h}"] = share_max
    out[f"drawdown_limit_share_total_{h}"] = amount / limit if limit else share_max
    night = sum(rows[s + L.NIGHT : e : stride])
    out[f"night_events_{h}"] = float(night)
    out[f"night_drawdowns_{h}"] = float(sum(rows[s + L.NIGHT_DD : e : stride]))
    out[f"night_share_{h}"] = night / total if total else 0.0
    packed = rows[s + L.PROFILE_CHANGES : e : stride]
    for i, name in enumerate(L.PROFILE_FIELDS):
        # 8-bit lanes: sum each lane separately (summing packed words would carry into the next lane)
        out[f"profile_changes_{name}_{h}"] = float(sum((v >> 8 * i) & 0xFF for v in packed)) if any(packed) else 0.0


def features(profile: Profile, at_ms: int) -> dict[str, float]:
    """Every feature of :data:`FEATURE_NAMES` at event time ``at_ms`` (usually the event just applied).

    Windows end at ``at_ms``'s bucket and reach back 30 minute buckets, 24 hour buckets, 7 or 30 China days;
    events after ``at_ms``'s bucket are not counted, so a feature vector can be recomputed for any past time
    still within the kept buckets.
    """
    out: dict[str, float] = {}
    minute, hour, day = at_ms // L.MINUTE_MS, at_ms // L.HOUR_MS, L.day_key(at_ms)
    fine = L.FINE_STRIDE
    s, e = _span(profile.minutes, fine, minute - 29, minute)
    _behavior(out, profile.minutes, fine, s, e, "30m")
    s, e = _span(profile.hours, fine, hour - 23, hour)
    _behavior(out, profile.hours, fine, s, e, "24h")
    days, ds = profile.days, L.DAY_STRIDE
    s, e = _span(days, ds, day - 29, day)
    _behavior(out, days, ds, s, e, "30d")
    s7, _ = _span(days, ds, day - 6, day)
    for h, start in (("7d", s7), ("30d", s)):
        bank = sum(days[start + L.INQ_BANK : e : ds])
        non_bank = sum(days[start + L.INQ_NON_BANK : e : ds])
        out[f"inquiries_{h}"] = float(bank + non_bank)
        out[f"inquiries_bank_{h}"] = float(bank)
        out[f"inquiries_non_bank_{h}"] = float(non_bank)
    for i, stem in enumerate(_REPAYMENT_STEMS):
        out[f"{stem}_30d"] = float(sum(days[s + L.REPAY0 + i : e : ds]))
    out["partial_payments_30d"] = float(sum(days[s + L.PARTIAL : e : ds]))
    out["on_time_payments_30d"] = float(sum(days[s + L.ON_TIME : e : ds]))
    dpd = profile.dpd_max()
    out["dpd_max"] = float(dpd)
    out["dpd_bucket"] = float(L.dpd_bucket(dpd))
    worst = max(days[s + L.DPD_MAX : e : ds], default=0)
    out["dpd_bucket_max_30d"] = float(max(L.dpd_bucket(worst), L.dpd_bucket(dpd)))
    out["dpd_rolls_30d"] = float(sum(days[s + L.ROLLS : e : ds]))
    out["dpd_cures_30d"] = float(sum(days[s + L.CURES : e : ds]))
    last = profile.last_on_time_ms
    out["days_since_on_time_payment"] = max(0.0, (at_ms - last) / L.DAY_MS) if last >= 0 else -1.0
    out["late_events"] = float(profile.late_events)
    out["duplicate_events"] = float(profile.duplicate_events)
    return out
