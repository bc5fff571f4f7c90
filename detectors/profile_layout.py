"""Memory layout of :mod:`detectors.profile`: bucket slots, time keys, small hashes and the tail event record.

Buckets are rows of unsigned 32-bit slots in one flat ``array('I')`` per level (minute, hour, day), sorted by
key. Fine levels (minute, hour) use the first :data:`FINE_STRIDE` slots; day rows add the repayment, inquiry
and delinquency slots after them, so one function updates the behaviour part of every level. Counters and
amounts saturate at 2**32 - 1 instead of wrapping.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from typing import Final

__all__ = [
    "BEHAVIOR_TYPES",
    "DAY_MS",
    "DAY_STRIDE",
    "FINE_STRIDE",
    "HOUR_MS",
    "MINUTE_MS",
    "PROFILE_FIELDS",
    "REPAYMENT_TYPES",
    "TailEvent",
    "channel_bit",
    "day_key",
    "dpd_bucket",
    "event_id_hash",
    "is_night",
    "small_hash",
]

MINUTE_MS: Final = 60_000
HOUR_MS: Final = 3_600_000
DAY_MS: Final = 86_400_000
#: China Standard Time (UTC+8): day buckets and night time follow the borrower's calendar, not UTC.
CHINA_OFFSET_MS: Final = 8 * HOUR_MS
NIGHT_END_HOUR: Final = 6
MAX_U32: Final = 0xFFFF_FFFF

# The order is part of the stored format (codes in saved profiles), so it is spelled out here rather than taken
# from schemas.behavior, where a reordering would be harmless to the contracts but would corrupt stored state.
BEHAVIOR_TYPES: Final = (
    "login",
    "page_view",
    "loan_application",
    "limit_query",
    "drawdown",
    "repayment_click",
    "profile_change",
    "contact_upload",
)
REPAYMENT_TYPES: Final = ("installment_due", "payment", "missed", "dpd_update", "payoff")
PROFILE_FIELDS: Final = ("phone", "bank_card", "address", "device")
CHANNELS: Final = ("app_ios", "app_android", "h5", "mini_program", "api_partner")

# Slots shared by every level.
KEY: Final = 0
TYPE0: Final = 1  # + index in BEHAVIOR_TYPES
DD_AMOUNT: Final = 9  # drawdown amount, whole yuan
LIMIT_MAX: Final = 10  # largest available_limit_before seen with a drawdown, whole yuan
SHARE_MAX: Final = 11  # largest amount / available_limit_before, per mille
NIGHT: Final = 12  # behaviour events 00:00-06:00 China time
NIGHT_DD: Final = 13  # drawdowns 00:00-06:00 China time
PROFILE_CHANGES: Final = 14  # four 8-bit counters, one per PROFILE_FIELDS entry (saturating at 255)
PRODUCTS: Final = 15  # 32-bit masks: one bit per hashed value, popcount of the OR = distinct values
CHANNELS_MASK: Final = 16
DEVICES: Final = 17
IPS: Final = 18
FINE_STRIDE: Final = 19
# Day-only slots.
REPAY0: Final = 19  # + index in REPAYMENT_TYPES
INQ_BANK: Final = 24
INQ_NON_BANK: Final = 25
PARTIAL: Final = 26
ON_TIME: Final = 27
DPD_MAX: Final = 28  # largest DPD reported that day
ROLLS: Final = 29  # DPD bucket rolled up (M0->M1, M1->M2, ...)
CURES: Final = 30  # delinquent -> M0
DAY_STRIDE: Final = 31

BEHAVIOR_INDEX: Final = {name: i for i, name in enumerate(BEHAVIOR_TYPES)}
REPAYMENT_INDEX: Final = {name: i for i, name in enumerate(REPAYMENT_TYPES)}
FIELD_INDEX: Final = {name: i for i, name in enumerate(PROFILE_FIELDS)}
_CHANNEL_BITS: Final = {name: 1 << i for i, name in enumerate(CHANNELS)}


def day_key(ts_ms: int) -> int:
    """Calendar day number in China time (UTC+8)."""
    return (ts_ms + CHINA_OFFSET_MS) // DAY_MS


def is_night(ts_ms: int) -> bool:
    """True from 00:00 to 06:00 China time (UTC+8)."""
    return (ts_ms + CHINA_OFFSET_MS) % DAY_MS < NIGHT_END_HOUR * HOUR_MS


def small_hash(value: str) -> int:
    """Deterministic 32-bit hash (CRC-32): the same on every process, unlike ``hash(str)``."""
    return zlib.crc32(value.encode())


def channel_bit(channel: str) -> int:
    """Exact bit of a known channel; an unknown one hashes into the upper bits."""
    bit = _CHANNEL_BITS.get(channel)
    return bit if bit is not None else 1 << (8 + small_hash(channel) % 24)


def event_id_hash(event_id: str) -> int:
    """64-bit BLAKE2b of an event id: replay detection keeps these, not the (up to 128-char) ids."""
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "little")


def dpd_bucket(dpd: int) -> int:
    """Delinquency bucket of days past due: 0 = M0 (current), 1 = M1 (1-30), 2 = M2 (31-60), 3 = M3, 4 = M4+."""
    return 0 if dpd <= 0 else min(4, (dpd - 1) // 30 + 1)


@dataclass(frozen=True, slots=True)
class TailEvent:
    """A recent behaviour event reduced to what sequence rules need.

    ``device`` and ``product`` are small hashes (8 and 16 bits): equal values mean "probably the same".
    ``new_device`` is true when the device had not been seen by this customer before (the very first device of
    an empty profile is the baseline, not new). ``field`` is set for profile changes only.
    """

    event_type: str
    ts_ms: int
    field: str | None = None
    amount: float = 0.0
    available_limit_before: float = 0.0
    new_device: bool = False
    device: int = 0
    product: int = 0

    @property
    def limit_share(self) -> float:
        """Share of the available limit a drawdown used (0 when unknown)."""
        if self.available_limit_before > 0:
            return self.amount / self.available_limit_before
        return 1.0 if self.amount > 0 else 0.0
