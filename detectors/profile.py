"""The rolling customer profile: one compact value per customer, updated in event time, no I/O, no clock reads.

Levels (buckets by event time, flat ``array('I')`` rows, see :mod:`detectors.profile_layout`):

- minute buckets for the last 30 minutes, hour buckets for the last 24 hours, day buckets (China calendar
  days, UTC+8) for the last 30 days; only non-empty buckets are stored;
- a tail of the last :data:`TAIL_SIZE` sequence-relevant behaviour events (everything except page views,
  repayment clicks and logins from known devices), for sequence rules;
- a ring of the last :data:`SEEN_IDS` event-id hashes (replays), the last :data:`KNOWN_DEVICES` devices
  (``new_device``), and current DPD of up to :data:`MAX_LOANS` open loans.

Event time: the *watermark* is the newest event time seen. A late or out-of-order event lands in every level
whose bucket for it is still kept (a 2-hour-late event counts in its hour and day but not in a minute
bucket). An event whose day is 30 or more days behind the watermark's day is counted in ``late_events`` only.

Replays: an event whose id is among the last :data:`SEEN_IDS` ids of this customer changes nothing but
``duplicate_events``. On its own the bound means a replay arriving after 32 newer events of the same customer
counts twice; the worker does not rely on it: it passes each event's input offset to the engine, which skips
anything at or below the last offset applied (:class:`detectors.engine_state.CustomerState`), however long the
redelivery after a crash. The id ring still catches a producer that sends the same event twice.

Mutability: :class:`Profile` is mutable for speed (a Faust agent updates thousands per second); ``update`` and
``Profile.add`` change it in place and depend only on the profile and the event, so replaying the same
events into ``Profile.empty`` always gives byte-identical ``to_bytes()``. Copy with ``from_bytes(to_bytes())``.

Features (:func:`features`, ``h`` is the horizon suffix; a window is the buckets ending at ``at_ms``'s bucket,
so 24h means the current hour plus the 23 before it, 30d the current China day plus the 29 before it):

=============================================  ==========  ==================================================
feature                                        horizons    meaning
=============================================  ==========  ==================================================
logins_h, page_views_h, loan_applications_h,   30m 24h 30d behaviour events by type
limit_queries_h, drawdowns_h,
repayment_clicks_h, profile_changes_h,
contact_uploads_h
distinct_products_applied_h                    30m 24h 30d products applied to (approx.: hashed 32-bit mask)
distinct_channels_applied_h                    30m 24h 30d channels applied through
distinct_devices_h, distinct_ips_h             30m 24h 30d devices / IPs seen (approx.: hashed 32-bit mask)
drawdown_amount_h                              30m 24h 30d sum of drawdown amounts, whole yuan
drawdown_limit_share_max_h                     30m 24h 30d max of amount / available_limit_before
drawdown_limit_share_total_h                   30m 24h 30d drawdown_amount_h / largest available_limit_before
night_events_h, night_drawdowns_h              30m 24h 30d behaviour events / drawdowns 00:00-06:00 UTC+8
night_share_h                                  30m 24h 30d night_events_h / behaviour events (0 if none)
profile_changes_phone_h, _bank_card_h,         30m 24h 30d profile changes by field
_address_h, _device_h
inquiries_h, inquiries_bank_h,                 7d 30d      external credit inquiries, all / bank / non-bank
inquiries_non_bank_h
installments_due_30d, payments_30d,            30d         repayment events by type
missed_payments_30d, dpd_updates_30d,
payoffs_30d
partial_payments_30d, on_time_payments_30d     30d         payments by kind / punctuality
dpd_max                                        now         largest current DPD over open loans
dpd_bucket                                     now         0 = M0, 1 = M1 (1-30), 2 = M2, 3 = M3, 4 = M4+
dpd_bucket_max_30d                             30d         worst bucket reported in the window
dpd_rolls_30d, dpd_cures_30d                   30d         bucket rolled up / delinquent back to M0
days_since_on_time_payment                     now         days from the last on-time payment; -1 if none
late_events, duplicate_events                  lifetime    events past the horizon / replays ignored
=============================================  ==========  ==================================================

Example:
    >>> from datetime import UTC, datetime
    >>> from schemas.behavior import LoanApplication
    >>> p = Profile.empty("c_1")
    >>> for i, product in enumerate(["cash_loan", "credit_line", "cash_loan"]):
    ...     p = update(p, LoanApplication(
    ...         event_id=f"e{i}", customer_id="c_1", ts=datetime(2026, 1, 5, 9, i, tzinfo=UTC), device_id="d_1",
    ...         ip="10.0.0.1", channel="h5", product=product, application_id=f"a{i}", amount=5000,
    ...         term_months=12))
    >>> f = features(p, at_ms=p.watermark_ms)
    >>> f["loan_applications_30m"], f["distinct_products_applied_30m"], f["night_share_24h"]
    (3.0, 2.0, 0.0)
    >>> Profile.from_bytes(p.to_bytes()).to_bytes() == p.to_bytes()
    True
"""

from __future__ import annotations

import struct
import sys
from array import array
from typing import Final, TypeAlias

from detectors import profile_layout as L
from detectors.profile_features import features
from detectors.profile_layout import TailEvent
from schemas.behavior import BehaviorBase, BehaviorEvent, Drawdown, LoanApplication, ProfileChange
from schemas.common import to_ms
from schemas.inquiry import CreditInquiry
from schemas.repayment import DpdUpdate, Payment, Payoff, RepaymentEvent

__all__ = [
    "KNOWN_DEVICES",
    "MAX_LOANS",
    "SEEN_IDS",
    "TAIL_SIZE",
    "InputEvent",
    "Profile",
    "TailEvent",
    "features",
    "update",
]

TAIL_SIZE: Final = 16
SEEN_IDS: Final = 32
KNOWN_DEVICES: Final = 8
MAX_LOANS: Final = 8
_LOAN_STRIDE: Final = 3  # loan hash, dpd, second of the last dpd update
_TAIL_STRIDE: Final = 3  # ts_ms, code | amount cents << 32, available_limit_before cents
_KEEP_MINUTES: Final = 30
_KEEP_HOURS: Final = 24
_KEEP_DAYS: Final = 30
_FORMAT_VERSION: Final = 1
# version, watermark, late, duplicates, last on-time payment, id cursor, device cursor, then element counts
_HEADER: Final = struct.Struct("<BqIIqBB HHHBBBB")
_SWAP: Final = sys.byteorder != "little"  # the wire form is little-endian on every machine
_TAIL_TYPES: Final = frozenset({"loan_application", "limit_query", "drawdown", "profile_change", "contact_upload"})


InputEvent: TypeAlias = BehaviorEvent | RepaymentEvent | CreditInquiry
"""Any decoded event of the three input topics."""


class Profile:
    """One customer's rolling profile (see the module docstring). Build with :meth:`empty` or :meth:`from_bytes`."""

    __slots__ = (
        "customer_id",
        "days",
        "devices",
        "device_pos",
        "duplicate_events",
        "hours",
        "id_pos",
        "ids",
        "last_on_time_ms",
        "late_events",
        "loans",
        "minutes",
        "tail",
        "watermark_ms",
    )

    def __init__(self, customer_id: str) -> None:
        self.customer_id = customer_id
        self.watermark_ms = -1  # newest event time seen; -1 before the first event
        self.late_events = 0
        self.duplicate_events = 0
        self.last_on_time_ms = -1
        self.minutes = array("I")
        self.hours = array("I")
        self.days = array("I")
        self.tail = array("q")
        self.ids = array("Q")
        self.id_pos = 0
        self.devices = array("I")
        self.device_pos = 0
        self.loans = array("I")

    @classmethod
    def empty(cls, customer_id: str) -> Profile:
        """A profile that has seen nothing."""
        return cls(customer_id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Profile) and self.to_bytes() == other.to_bytes()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Profile({self.customer_id!r}, watermark_ms={self.watermark_ms}, {len(self.to_bytes())} bytes)"

    def add(self, event: InputEvent) -> bool:
        """Apply one decoded event in place; False if it was a replay or past the horizon (and only counted)."""
        digest = L.event_id_hash(event.event_id)
        if digest in self.ids:
            self.duplicate_events += 1
            return False
        ts_ms = to_ms(event.ts)
        watermark = max(self.watermark_ms, ts_ms)
        if L.day_key(ts_ms) <= L.day_key(watermark) - _KEEP_DAYS:
            self.late_events += 1
            return False
        self._remember(digest)
        if watermark != self.watermark_ms:
            self.watermark_ms = watermark
            self._prune()
        if isinstance(event, CreditInquiry):
            day = self._row(self.days, L.DAY_STRIDE, L.day_key(ts_ms))
            _inc(self.days, day + (L.INQ_BANK if event.institution_kind == "bank" else L.INQ_NON_BANK))
        elif isinstance(event, BehaviorBase):
            self._behavior(event, ts_ms)
        else:
            self._repayment(event, ts_ms)
        return True

    # -- behaviour ---------------------------------------------------------------------------------------------

    def _behavior(self, e: BehaviorBase, ts_ms: int) -> None:
        kind = e.event_type
        night = L.is_night(ts_ms)
        device = L.small_hash(e.device_id)
        device_bit, ip_bit = 1 << (device & 31), 1 << (L.small_hash(e.ip) & 31)
        new_device = self._see_device(device)
        amount = limit = 0.0
        field = -1
        product_bit = channel_bit = 0
        if isinstance(e, Drawdown):
            amount, limit = e.amount, e.available_limit_before
        elif isinstance(e, ProfileChange):
            field = L.FIELD_INDEX[e.field]
        elif isinstance(e, LoanApplication):
            product_bit, channel_bit = 1 << (L.small_hash(e.product) & 31), L.channel_bit(e.channel)
        type_slot = L.TYPE0 + L.BEHAVIOR_INDEX[kind]
        wm = self.watermark_ms
        for rows, stride, key, low in (
            (self.minutes, L.FINE_STRIDE, ts_ms // L.MINUTE_MS, wm // L.MINUTE_MS - _KEEP_MINUTES + 1),
            (self.hours, L.FINE_STRIDE, ts_ms // L.HOUR_MS, wm // L.HOUR_MS - _KEEP_HOURS + 1),
            (self.days, L.DAY_STRIDE, L.day_key(ts_ms), L.day_key(wm) - _KEEP_DAYS + 1),
        ):
            if key < low:
                continue  # this level no longer keeps the event's bucket
            o = self._row(rows, stride, key)
            _inc(rows, o + type_slot)
            rows[o + L.DEVICES] |= device_bit
            rows[o + L.IPS] |= ip_bit
            if night:
                _inc(rows, o + L.NIGHT)
            if kind == "drawdown":
                _add(rows, o + L.DD_AMOUNT, round(amount))
                rows[o + L.LIMIT_MAX] = max(rows[o + L.LIMIT_MAX], min(round(limit), L.MAX_U32))
                share = round(1000 * amount / limit) if limit > 0 else (1000 if amount > 0 else 0)
                rows[o + L.SHARE_MAX] = max(rows[o + L.SHARE_MAX], min(share, L.MAX_U32))
                if night:
                    _inc(rows, o + L.NIGHT_DD)
            elif field >= 0:
                shift = 8 * field
                if (rows[o + L.PROFILE_CHANGES] >> shift) & 0xFF != 0xFF:
                    rows[o + L.PROFILE_CHANGES] += 1 << shift
            elif product_bit:
                rows[o + L.PRODUCTS] |= product_bit
                rows[o + L.CHANNELS_MASK] |= channel_bit
        if kind in _TAIL_TYPES or (new_device and kind != "page_view"):
            code = L.BEHAVIOR_INDEX[kind] | (field + 1) << 4 | int(new_device) << 7 | (device & 0xFF) << 8
            code |= (L.small_hash(e.product) & 0xFFFF) << 16 if e.product else 0
            self._push_tail(ts_ms, code | round(amount * 100) << 32, round(limit * 100))

    def _see_device(self, device: int) -> bool:
        if device in self.devices:
            return False
        first = not self.devices
        if len(self.devices) < KNOWN_DEVICES:
            self.devices.append(device)
        else:
            self.devices[self.device_pos] = device
            self.device_pos = (self.device_pos + 1) % KNOWN_DEVICES
        return not first  # the first device of an empty profile is the baseline, not "new"

    def _push_tail(self, ts_ms: int, code: int, limit_cents: int) -> None:
        tail = self.tail
        i = len(tail)
        while i and tail[i - _TAIL_STRIDE] > ts_ms:  # keep event-time order; late events slot in
            i -= _TAIL_STRIDE
        tail[i:i] = array("q", (ts_ms, code, limit_cents))
        if len(tail) > TAIL_SIZE * _TAIL_STRIDE:
            del tail[:_TAIL_STRIDE]

    def tail_events(self) -> tuple[TailEvent, ...]:
        """The tail, oldest first, decoded for sequence rules."""
        out = []
        t = self.tail
        for i in range(0, len(t), _TAIL_STRIDE):
            code = t[i + 1]
            field = (code >> 4) & 7
            out.append(
                TailEvent(
                    event_type=L.BEHAVIOR_TYPES[code & 0xF],
                    ts_ms=t[i],
                    field=L.PROFILE_FIELDS[field - 1] if field else None,
                    amount=(code >> 32) / 100,
                    available_limit_before=t[i + 2] / 100,
                    new_device=bool(code >> 7 & 1),
                    device=(code >> 8) & 0xFF,
                    product=(code >> 16) & 0xFFFF,
                )
            )
        return tuple(out)

    # -- repayment ---------------------------------------------------------------------------------------------

    def _repayment(self, e: RepaymentEvent, ts_ms: int) -> None:
        day = self._row(self.days, L.DAY_STRIDE, L.day_key(ts_ms))
        _inc(self.days, day + L.REPAY0 + L.REPAYMENT_INDEX[e.event_type])
        if isinstance(e, Payment):
            if e.kind == "partial":
                _inc(self.days, day + L.PARTIAL)
            if e.on_time:
                _inc(self.days, day + L.ON_TIME)
                self.last_on_time_ms = max(self.last_on_time_ms, ts_ms)
        elif isinstance(e, DpdUpdate):
            dpd = min(e.dpd, L.MAX_U32)
            before = L.dpd_bucket(self.dpd_max())
            self._set_loan_dpd(L.small_hash(e.loan_id), dpd, ts_ms // 1000)
            after = L.dpd_bucket(self.dpd_max())
            self.days[day + L.DPD_MAX] = max(self.days[day + L.DPD_MAX], dpd)
            if after > before:
                _inc(self.days, day + L.ROLLS)
            elif before and not after:
                _inc(self.days, day + L.CURES)
        elif isinstance(e, Payoff):
            self._set_loan_dpd(L.small_hash(e.loan_id), -1, ts_ms // 1000)

    def _set_loan_dpd(self, loan: int, dpd: int, ts_s: int) -> None:
        loans = self.loans
        for i in range(0, len(loans), _LOAN_STRIDE):
            if loans[i] == loan:
                if ts_s < loans[i + 2]:
                    return  # an older report than the one we hold
                if dpd < 0:
                    del loans[i : i + _LOAN_STRIDE]
                else:
                    loans[i + 1], loans[i + 2] = dpd, ts_s
                return
        if dpd < 0:
            return
        if len(loans) >= MAX_LOANS * _LOAN_STRIDE:  # evict the least telling loan: current first, then oldest
            victim = min(range(0, len(loans), _LOAN_STRIDE), key=lambda j: (loans[j + 1] > 0, loans[j + 2]))
            del loans[victim : victim + _LOAN_STRIDE]
        loans.extend((loan, dpd, ts_s))

    def dpd_max(self) -> int:
        """Largest current days past due over the open loans (0 if none)."""
        return max(self.loans[1 :: _LOAN_STRIDE], default=0)

    # -- buckets, rings ----------------------------------------------------------------------------------------

    @staticmethod
    def _row(rows: array[int], stride: int, key: int) -> int:
        """Offset of the row for ``key``, inserted in key order if missing."""
        n = len(rows)
        if n and rows[n - stride] == key:
            return n - stride
        i = n - stride
        while i >= 0 and rows[i] > key:
            i -= stride
        if i >= 0 and rows[i] == key:
            return i
        row = array("I", bytes(4 * stride))
        row[0] = key
        rows[i + stride : i + stride] = row
        return i + stride

    def _prune(self) -> None:
        wm = self.watermark_ms
        for rows, stride, low in (
            (self.minutes, L.FINE_STRIDE, wm // L.MINUTE_MS - _KEEP_MINUTES + 1),
            (self.hours, L.FINE_STRIDE, wm // L.HOUR_MS - _KEEP_HOURS + 1),
            (self.days, L.DAY_STRIDE, L.day_key(wm) - _KEEP_DAYS + 1),
        ):
            i = 0
            while i < len(rows) and rows[i] < low:
                i += stride
            if i:
                del rows[:i]

    def _remember(self, digest: int) -> None:
        if len(self.ids) < SEEN_IDS:
            self.ids.append(digest)
        else:
            self.ids[self.id_pos] = digest
            self.id_pos = (self.id_pos + 1) % SEEN_IDS

    # -- serialisation -----------------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Compact little-endian form for a Faust table value (header, customer id, then the raw arrays)."""
        parts = (self.minutes, self.hours, self.days, self.tail, self.ids, self.devices, self.loans)
        cid = self.customer_id.encode()
        head = _HEADER.pack(
            _FORMAT_VERSION,
            self.watermark_ms,
            min(self.late_events, L.MAX_U32),
            min(self.duplicate_events, L.MAX_U32),
            self.last_on_time_ms,
            self.id_pos,
            self.device_pos,
            len(self.minutes) // L.FINE_STRIDE,
            len(self.hours) // L.FINE_STRIDE,
            len(self.days) // L.DAY_STRIDE,
            len(self.tail) // _TAIL_STRIDE,
            len(self.ids),
            len(self.devices),
            len(self.loans) // _LOAN_STRIDE,
        )
        body = [_le(a) for a in parts]
        return b"".join((head, bytes((len(cid),)), cid, *body))

    @classmethod
    def from_bytes(cls, data: bytes) -> Profile:
        """Inverse of :meth:`to_bytes`; raises ``ValueError`` on an unknown format version or truncated data."""
        fields = _HEADER.unpack_from(data)
        if fields[0] != _FORMAT_VERSION:
            raise ValueError(f"unknown profile format version {fields[0]}")
        pos = _HEADER.size
        cid_len = data[pos]
        p = cls(data[pos + 1 : pos + 1 + cid_len].decode())
        pos += 1 + cid_len
        (_, p.watermark_ms, p.late_events, p.duplicate_events, p.last_on_time_ms, p.id_pos, p.device_pos) = fields[:7]
        counts = fields[7:]
        sizes = (
            counts[0] * L.FINE_STRIDE,
            counts[1] * L.FINE_STRIDE,
            counts[2] * L.DAY_STRIDE,
            counts[3] * _TAIL_STRIDE,
            counts[4],
            counts[5],
            counts[6] * _LOAN_STRIDE,
        )
        for name, size in zip(("minutes", "hours", "days", "tail", "ids", "devices", "loans"), sizes, strict=True):
            a: array[int] = getattr(p, name)
            end = pos + size * a.itemsize
            if end > len(data):
                raise ValueError("truncated profile bytes")
            a.frombytes(data[pos:end])
            if _SWAP:
                a.byteswap()
            pos = end
        return p


def update(profile: Profile, event: InputEvent) -> Profile:
    """Apply one decoded input event (behaviour, repayment or inquiry contract model) in place; returns ``profile``."""
    profile.add(event)
    return profile


def _inc(rows: array[int], i: int) -> None:
    if rows[i] != L.MAX_U32:
        rows[i] += 1


def _add(rows: array[int], i: int, amount: int) -> None:
    rows[i] = min(rows[i] + max(amount, 0), L.MAX_U32)


def _le(a: array[int]) -> bytes:
    if not _SWAP:
        return a.tobytes()
    b = array(a.typecode, a)
    b.byteswap()
    return b.tobytes()
