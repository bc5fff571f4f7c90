"""Each scenario's defining property, computed from a customer's decoded events alone (no generator internals).

The functions take one customer's events in stream order. The tests in this file pin the checkers down on small
hand-built histories, so the scenario tests cannot pass because a checker is vacuous.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeAlias

from schemas import topics
from schemas.behavior import Drawdown, LimitQuery, LoanApplication, Login, ProfileChange
from schemas.common import to_ms
from schemas.decode import decode_behavior, decode_inquiry, decode_repayment
from schemas.inquiry import CreditInquiry
from schemas.repayment import DpdUpdate, InstallmentDue, InstallmentMissed, Payment

Event: TypeAlias = Any  # any decoded input event
DECODERS: dict[str, Callable[[bytes], Any]] = {
    topics.BEHAVIOR: decode_behavior,
    topics.REPAYMENT: decode_repayment,
    topics.INQUIRY: decode_inquiry,
}
HOUR = 3_600_000
DAY = 24 * HOUR
CHINA = 8 * HOUR


def _ts(event: Event) -> int:
    return to_ms(event.ts)


def burst(events: list[Event]) -> bool:
    """At least 5 loan applications within 25 minutes, for at least 2 products."""
    apps = [e for e in events if isinstance(e, LoanApplication)]
    for i, first in enumerate(apps):
        window = [a for a in apps[i:] if _ts(a) - _ts(first) <= 25 * 60_000]
        if len(window) >= 5 and len({a.product for a in window}) >= 2:
            return True
    return False


def inquiry_peaks_7d(events: list[Event]) -> tuple[int, int]:
    """The most inquiries, and the most by non-bank lenders, within any 7 days."""
    inquiries = [e for e in events if isinstance(e, CreditInquiry)]
    best_total = best_non_bank = 0
    for i, first in enumerate(inquiries):
        window = [q for q in inquiries[i:] if _ts(q) - _ts(first) < 7 * DAY]
        best_total = max(best_total, len(window))
        best_non_bank = max(best_non_bank, sum(q.institution_kind == "non_bank" for q in window))
    return best_total, best_non_bank


def multi_lending(events: list[Event]) -> bool:
    """At least 6 inquiries, at least 5 of them by non-bank lenders, within 7 days."""
    inquiries = [e for e in events if isinstance(e, CreditInquiry)]
    for i, first in enumerate(inquiries):
        window = [q for q in inquiries[i:] if _ts(q) - _ts(first) < 7 * DAY]
        if len(window) >= 6 and sum(q.institution_kind == "non_bank" for q in window) >= 5:
            return True
    return False


def takeover(events: list[Event]) -> bool:
    """Phone change, then bank-card change, then a drawdown of >= 80 % of the available limit, within 24 h."""
    changes = [e for e in events if isinstance(e, ProfileChange)]
    draws = [e for e in events if isinstance(e, Drawdown) and e.amount >= 0.8 * e.available_limit_before]
    return any(
        _ts(phone) < _ts(card) < _ts(draw) and _ts(draw) - _ts(phone) <= DAY
        for phone in changes
        if phone.field == "phone"
        for card in changes
        if card.field == "bank_card"
        for draw in draws
    )


def new_device_cashout(events: list[Event]) -> bool:
    """A login from a device not used before (after some history), then on it a limit query and a drawdown of
    >= 90 % of the available limit, within an hour of the login."""
    behaviour = [e for e in events if hasattr(e, "device_id")]
    seen: set[str] = set()
    for i, event in enumerate(behaviour):
        if isinstance(event, Login) and event.success and seen and event.device_id not in seen:
            queried = False
            for later in behaviour[i + 1 :]:
                if _ts(later) - _ts(event) > HOUR:
                    break
                if later.device_id != event.device_id:
                    continue
                queried = queried or isinstance(later, LimitQuery)
                if queried and isinstance(later, Drawdown) and later.amount >= 0.9 * later.available_limit_before:
                    return True
        seen.add(event.device_id)
    return False


def _night_of(ts_ms: int) -> int | None:
    local = ts_ms + CHINA
    return local // DAY if local % DAY < 6 * HOUR else None


def night_exhaustion(events: list[Event]) -> bool:
    """Drawdowns within one China night (00:00-06:00) adding up to >= 90 % of the limit before the first."""
    draws = [e for e in events if isinstance(e, Drawdown)]
    for i, first in enumerate(draws):
        night = _night_of(_ts(first))
        if night is None:
            continue
        total = 0.0
        for later in draws[i:]:
            if _night_of(_ts(later)) != night:
                break
            total += later.amount
            if total >= 0.9 * first.available_limit_before:
                return True
    return False


def drawdown_share_24h(events: list[Event]) -> float:
    """The largest share of the available limit (before the first) drawn within any 24 h."""
    draws = [e for e in events if isinstance(e, Drawdown)]
    best = 0.0
    for i, first in enumerate(draws):
        total = sum(d.amount for d in draws[i:] if _ts(d) - _ts(first) < DAY)
        best = max(best, total / first.available_limit_before)
    return best


def profile_change_gaps(events: list[Event]) -> list[int]:
    """Time between consecutive profile changes."""
    times = [_ts(e) for e in events if isinstance(e, ProfileChange)]
    return [b - a for a, b in zip(times, times[1:], strict=False)]


def _by_loan(events: list[Event]) -> dict[str, list[Event]]:
    loans: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        if hasattr(event, "loan_id") and not hasattr(event, "device_id"):
            loans[event.loan_id].append(event)
    return loans


def dpd_rolls_to_m2(events: list[Event]) -> bool:
    """Some loan's days past due go from <= 1 to >= 31 within the events."""
    for loan in _by_loan(events).values():
        dpd = [e.dpd for e in loan if isinstance(e, DpdUpdate)]
        if any(a <= 1 and b >= 31 for i, a in enumerate(dpd) for b in dpd[i + 1 :]):
            return True
    return False


def _step(event: Event) -> str:
    if isinstance(event, InstallmentDue):
        return "due"
    if isinstance(event, InstallmentMissed):
        return "missed"
    if isinstance(event, Payment):
        return event.kind  # full | partial
    return "dpd" if isinstance(event, DpdUpdate) else "other"


def deterioration(events: list[Event]) -> bool:
    """One loan: installment due → missed → partial payment, and DPD rolling 1 → 15..30 → >= 31 (M0→M1→M2)."""
    for loan in _by_loan(events).values():
        kinds = [_step(e) for e in loan]
        if not {"due", "missed", "partial"} <= set(kinds):
            continue
        due, missed = kinds.index("due"), kinds.index("missed")
        partial = kinds.index("partial", missed) if "partial" in kinds[missed:] else -1
        dpd = [e.dpd for e in loan[missed:] if isinstance(e, DpdUpdate)]
        if (
            due < missed < partial
            and dpd
            and dpd == sorted(dpd)
            and dpd[0] <= 1
            and any(15 <= v <= 30 for v in dpd)
            and dpd[-1] >= 31
        ):
            return True
    return False


PROPERTIES: dict[str, Callable[[list[Event]], bool]] = {
    "multi_application_burst": burst,
    "multi_lending": multi_lending,
    "sequence_takeover": takeover,
    "sequence_new_device_cashout": new_device_cashout,
    "night_limit_exhaustion": night_exhaustion,
    "repayment_deterioration": deterioration,
}


# -- the checkers on hand-built histories ---------------------------------------------------------------------

T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)  # 10:00 China
_common = {"customer_id": "c_000001", "ip": "10.0.0.1", "channel": "app_android"}


def _at(minutes: float) -> dict[str, Any]:
    return {"ts": T0 + timedelta(minutes=minutes)}


def _login(n: int, minutes: float, device: str) -> Login:
    return Login(event_id=f"e{n}", device_id=device, method="sms", success=True, **_at(minutes), **_common)


def _query(n: int, minutes: float, device: str) -> LimitQuery:
    return LimitQuery(event_id=f"e{n}", device_id=device, available_limit=1000.0, **_at(minutes), **_common)


def _draw(n: int, minutes: float, amount: float, device: str = "d_1") -> Drawdown:
    return Drawdown(
        event_id=f"e{n}",
        device_id=device,
        product="cash_loan",
        loan_id=f"l_{n}",
        amount=amount,
        available_limit_before=1000.0,
        term_months=6,
        **_at(minutes),
        **_common,
    )


def _change(n: int, minutes: float, field: str) -> ProfileChange:
    return ProfileChange(event_id=f"e{n}", device_id="d_1", field=field, **_at(minutes), **_common)


def test_takeover_checker_needs_the_order_the_window_and_the_share() -> None:
    assert takeover([_change(1, 0, "phone"), _change(2, 30, "bank_card"), _draw(3, 60, 800.0)])
    assert not takeover([_change(1, 0, "bank_card"), _change(2, 30, "phone"), _draw(3, 60, 800.0)])
    assert not takeover([_change(1, 0, "phone"), _change(2, 30, "bank_card"), _draw(3, 60, 790.0)])
    assert not takeover([_change(1, 0, "phone"), _change(2, 30, "bank_card"), _draw(3, 24 * 60 + 1, 900.0)])


def test_new_device_checker_needs_history_a_query_and_the_hour() -> None:
    history = [_login(1, 0, "d_1")]
    assert new_device_cashout([*history, _login(2, 30, "d_2"), _query(3, 31, "d_2"), _draw(4, 40, 900.0, "d_2")])
    assert not new_device_cashout([_login(2, 30, "d_2"), _query(3, 31, "d_2"), _draw(4, 40, 900.0, "d_2")])
    assert not new_device_cashout([*history, _login(2, 30, "d_2"), _draw(4, 40, 900.0, "d_2")])
    assert not new_device_cashout([*history, _login(2, 30, "d_2"), _query(3, 31, "d_2"), _draw(4, 91, 900.0, "d_2")])
    assert not new_device_cashout([*history, _login(2, 30, "d_1"), _query(3, 31, "d_1"), _draw(4, 40, 900.0)])


def test_night_checker_adds_one_nights_drawdowns() -> None:
    night = -10 * 60  # 00:00 China is 10 hours before T0
    assert night_exhaustion([_draw(1, night + 60, 500.0), _draw(2, night + 70, 400.0)])
    assert not night_exhaustion([_draw(1, night + 60, 500.0), _draw(2, night + 70, 300.0)])
    assert not night_exhaustion([_draw(1, 0, 950.0)])  # 10:00 China


def test_multi_lending_checker_counts_non_banks_within_a_week() -> None:
    def inquiry(n: int, days: float, kind: str) -> CreditInquiry:
        return CreditInquiry(
            event_id=f"e{n}",
            customer_id="c_000001",
            ts=T0 + timedelta(days=days),
            institution_kind=kind,
            institution_id=f"i_{n}",
            purpose="loan_application",
        )

    five = [inquiry(n, n, "non_bank") for n in range(5)]
    assert multi_lending([*five, inquiry(9, 5.5, "bank")])
    assert not multi_lending([*five, inquiry(9, 7.5, "bank")])
    assert inquiry_peaks_7d([*five, inquiry(9, 5.5, "bank")]) == (6, 5)


def test_deterioration_checker_needs_the_whole_roll() -> None:
    loan = {"customer_id": "c_000001", "loan_id": "l_1"}

    def history(*dpd: int, partial: bool = True) -> list[Event]:
        out: list[Event] = [
            InstallmentDue(
                event_id="e1", installment_no=1, amount_due=100.0, due_date=date(2026, 1, 5), **_at(0), **loan
            ),
            InstallmentMissed(event_id="e2", installment_no=1, amount_due=100.0, **_at(1), **loan),
        ]
        if partial:
            out.append(
                Payment(
                    event_id="e3", installment_no=1, amount=30.0, kind="partial", on_time=False, **_at(2), **loan
                )
            )
        out += [DpdUpdate(event_id=f"d{n}", dpd=v, **_at(3 + n), **loan) for n, v in enumerate(dpd)]
        return out

    assert deterioration(history(1, 15, 31)) and dpd_rolls_to_m2(history(1, 15, 31))
    assert not deterioration(history(1, 15, 31, partial=False))
    assert not deterioration(history(1, 31))
    assert not deterioration(history(1, 15, 30)) and not dpd_rolls_to_m2(history(1, 15, 30))
