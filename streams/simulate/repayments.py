"""The repayment topic for one customer: installments falling due, payments, misses, days past due, payoffs.

Each existing loan has one installment around the simulated span (monthly due dates are spread over the month,
so a 6-hour span sees about 1/120 of them). Servicing systems run on the lender's calendar (China time): an
installment falls due at local midnight, a miss is booked just after the due day ends, and days past due are
recomputed by a nightly batch.
"""

from __future__ import annotations

import random

from streams.simulate.events import Emitter
from streams.simulate.model import SimRecord
from streams.simulate.population import DAY_MS, Customer, Loan, china_date, china_midnight_ms
from streams.simulate.rhythm import HOUR_MS, MINUTE_MS, SECOND_MS, daytime_ms

__all__ = ["repayment_records"]


class _Span:
    """Records of one customer, kept only when their event time falls inside the simulated span."""

    def __init__(self, start_ms: int, end_ms: int) -> None:
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.records: list[SimRecord] = []

    def __contains__(self, ts_ms: int) -> bool:
        return self.start_ms <= ts_ms < self.end_ms


def repayment_records(
    rng: random.Random, em: Emitter, customer: Customer, start_ms: int, end_ms: int
) -> list[SimRecord]:
    """All repayment records of ``customer`` inside ``[start_ms, end_ms)``, in event-time order."""
    span = _Span(start_ms, end_ms)
    for loan in customer.loans:
        if loan.dpd_at_start > 0:
            _delinquent(rng, em, loan, span)
        else:
            _current(rng, em, loan, span)
    span.records.sort(key=lambda r: r.ts_ms)  # stable: equal times keep their causal order
    return span.records


def _batch_time(rng: random.Random, day_start_ms: int, hour: int) -> int:
    # Servicing batches run at a fixed local hour and take a while to get through the book.
    return day_start_ms + hour * HOUR_MS + rng.randint(0, 25 * 60) * SECOND_MS


def _dpd_updates(
    rng: random.Random, em: Emitter, loan: Loan, span: _Span, first_day_ms: int, dpd: int, until_ms: int
) -> None:
    """Add nightly (02:00 China time) days-past-due updates from ``first_day_ms`` until ``until_ms``."""
    day = first_day_ms
    while day < span.end_ms:
        at = _batch_time(rng, day, 2)
        if at >= until_ms or at >= span.end_ms:
            return
        if at in span:
            span.records.append(em.dpd_update(at, loan.loan_id, dpd))
        day += DAY_MS
        dpd += 1


def _delinquent(rng: random.Random, em: Emitter, loan: Loan, span: _Span) -> None:
    today = china_midnight_ms(span.start_ms)
    # A few delinquent borrowers pay up during the span (cure); the rest keep rolling.
    cure_at = (
        daytime_ms(rng, span.start_ms, span.start_ms + 3 * DAY_MS) if rng.random() < 0.1 else span.end_ms
    )
    _dpd_updates(rng, em, loan, span, today, loan.dpd_at_start, cure_at)
    if cure_at in span:
        overdue = round(loan.installment_amount * (1 + loan.dpd_at_start // 30), 2)
        span.records.append(
            em.payment(cure_at, loan.loan_id, loan.installment_no, overdue, "full", on_time=False)
        )
        at = cure_at + rng.randint(1, 10) * MINUTE_MS
        if at in span:
            span.records.append(em.dpd_update(at, loan.loan_id, 0))


def _current(rng: random.Random, em: Emitter, loan: Loan, span: _Span) -> None:
    due = loan.due_ms
    due_at = due + rng.randint(0, 20 * 60) * SECOND_MS
    if due_at in span:
        span.records.append(
            em.installment_due(
                due_at, loan.loan_id, loan.installment_no, loan.installment_amount, china_date(due)
            )
        )
    missed_at = due + DAY_MS + rng.randint(0, 20 * 60) * SECOND_MS
    if loan.outcome == "prompt":
        draw = rng.random()
        if draw < 0.4:
            paid_at = (
                due + rng.randint(6 * 3600, 9 * 3600) * SECOND_MS
            )  # auto-debit (代扣) batch on the due day
        elif draw < 0.75:
            paid_at = daytime_ms(rng, due_at + MINUTE_MS, due + 22 * HOUR_MS)  # by hand on the due day
        else:
            paid_at = daytime_ms(rng, due - 2 * DAY_MS, due)  # early
        partial = rng.random() < 0.05
        amount = (
            round(loan.installment_amount * rng.uniform(0.3, 0.8), 2) if partial else loan.installment_amount
        )
        if paid_at in span:
            span.records.append(
                em.payment(
                    paid_at,
                    loan.loan_id,
                    loan.installment_no,
                    amount,
                    "partial" if partial else "full",
                    on_time=True,
                )
            )
            payoff_at = paid_at + rng.randint(1, 30) * SECOND_MS
            if not partial and loan.installment_no == loan.installments_total and payoff_at in span:
                span.records.append(em.payoff(payoff_at, loan.loan_id))
        if partial:
            _missed(rng, em, loan, span, missed_at, round(loan.installment_amount - amount, 2), span.end_ms)
        return
    paid_at = daytime_ms(rng, due + 2 * DAY_MS, due + 10 * DAY_MS) if loan.outcome == "late" else span.end_ms
    _missed(rng, em, loan, span, missed_at, loan.installment_amount, paid_at)
    if loan.outcome == "late" and paid_at in span:
        span.records.append(
            em.payment(
                paid_at, loan.loan_id, loan.installment_no, loan.installment_amount, "full", on_time=False
            )
        )
        cured_at = paid_at + rng.randint(1, 10) * MINUTE_MS
        if cured_at in span:
            span.records.append(em.dpd_update(cured_at, loan.loan_id, 0))


def _missed(
    rng: random.Random, em: Emitter, loan: Loan, span: _Span, missed_at: int, owed: float, paid_at: int
) -> None:
    if missed_at in span:
        span.records.append(em.missed(missed_at, loan.loan_id, loan.installment_no, owed))
    _dpd_updates(rng, em, loan, span, loan.due_ms + DAY_MS, 1, paid_at)
