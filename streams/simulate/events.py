"""Build one customer's events through the real contract models and wrap them as labelled records.

Constructing :mod:`schemas` models (with validation) makes the simulated traffic valid by construction: a
simulator bug that produces an impossible value fails here, loudly, instead of surfacing as dead letters.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Literal

from schemas import serde
from schemas.behavior import (
    Channel,
    ContactUpload,
    Drawdown,
    LimitQuery,
    LoanApplication,
    Login,
    PageView,
    ProfileChange,
    RepaymentClick,
)
from schemas.common import EventBase, from_ms
from schemas.inquiry import CreditInquiry
from schemas.repayment import DpdUpdate, InstallmentDue, InstallmentMissed, Payment, Payoff
from streams.simulate.model import Label, SimRecord
from streams.simulate.population import Customer

LoginMethod = Literal["password", "sms", "biometric", "oauth"]
ProfileField = Literal["phone", "bank_card", "address", "device"]
InstitutionKind = Literal["bank", "non_bank"]
InquiryPurpose = Literal["loan_application", "credit_card", "post_loan", "other"]


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names the simulator writes to."""

    behavior: str
    repayment: str
    inquiry: str


@dataclass(frozen=True, slots=True)
class Session:
    """Where a session happens: the fields every behaviour event of the session shares."""

    session_id: str
    device_id: str
    ip: str
    channel: Channel


class Emitter:
    """Numbers one customer's events and turns them into :class:`SimRecord` values.

    Event ids are ``e<seed>-<customer index>-<n>``: unique across the run (one counter per customer) and the
    same for the same seed, so a re-run produces byte-identical traffic and consumers can dedupe replays.
    Records are labelled ``"normal"`` unless built inside :meth:`tagged`.
    """

    __slots__ = ("_episode_id", "_label", "_n", "_prefix", "customer", "topics")

    def __init__(self, seed: int, customer: Customer, topics: Topics) -> None:
        self.customer = customer
        self.topics = topics
        self._prefix = f"e{seed}-{customer.index}-"
        self._n = 0
        self._label: Label = "normal"
        self._episode_id: str | None = None

    @contextmanager
    def tagged(self, label: Label, episode_id: str | None) -> Iterator[None]:
        """Label every record built inside the ``with`` block as part of episode ``episode_id``."""
        saved = self._label, self._episode_id
        self._label, self._episode_id = label, episode_id
        try:
            yield
        finally:
            self._label, self._episode_id = saved

    def _next_id(self) -> str:
        self._n += 1
        return f"{self._prefix}{self._n}"

    def _wrap(
        self, topic: str, ts_ms: int, event: EventBase, label: Label | None = None, episode_id: str | None = None
    ) -> SimRecord:
        if label is None:
            label, episode_id = self._label, self._episode_id
        return SimRecord(
            topic, self.customer.key, serde.dumps(event), ts_ms, label, episode_id, self.customer.customer_id
        )

    # -- behaviour ------------------------------------------------------------------------------------------

    def login(self, s: Session, ts_ms: int, method: LoginMethod, success: bool) -> SimRecord:
        """Build a login attempt."""
        event = Login(
            event_id=self._next_id(),
            customer_id=self.customer.customer_id,
            ts=from_ms(ts_ms),
            device_id=s.device_id,
            ip=s.ip,
            channel=s.channel,
            session_id=s.session_id,
            method=method,
            success=success,
        )
        return self._wrap(self.topics.behavior, ts_ms, event)

    def page_view(self, s: Session, ts_ms: int, page: str, product: str | None = None) -> SimRecord:
        """Build a page view."""
        event = PageView(
            event_id=self._next_id(),
            customer_id=self.customer.customer_id,
            ts=from_ms(ts_ms),
            device_id=s.device_id,
            ip=s.ip,
            channel=s.channel,
            session_id=s.session_id,
            page=page,
            product=product,
        )
        return self._wrap(self.topics.behavior, ts_ms, event)

    def limit_query(self, s: Session, ts_ms: int, available: float) -> SimRecord:
        """Build a look-up of the available limit."""
        event = LimitQuery(
            event_id=self._next_id(),
            customer_id=self.customer.customer_id,
            ts=from_ms(ts_ms),
            device_id=s.device_id,
            ip=s.ip,
            channel=s.channel,
            session_id=s.session_id,
            available_limit=available,
        )
        return self._wrap(self.topics.behavior, ts_ms, event)

    def application(
        self,
        s: Session,
        ts_ms: int,
        product: str,
        application_id: str,
        amount: float,
        term_months: int,
        episode_id: str | None = None,
    ) -> SimRecord:
        """Build a loan application; with ``episode_id`` it is an application of an injected burst."""
        event = LoanApplication(
            event_id=self._next_id(),
            customer_id=self.customer.customer_id,
            ts=from_ms(ts_ms),
            device_id=s.device_id,
            ip=s.ip,
            channel=s.channel,
            session_id=s.session_id,
            product=product,
            application_id=application_id,
            amount=amount,
            term_months=term_months,
        )
        if episode_id is None:
            return self._wrap(self.topics.behavior, ts_ms, event)
        return self._wrap(self.topics.behavior, ts_ms, event, "multi_application_burst", episode_id)

    def drawdown(
        self,
        s: Session,
        ts_ms: int,
        product: str,
        loan_id: str,
        amount: float,
        available: float,
        term_months: int,
    ) -> SimRecord:
        """Build a drawdown from the credit line; ``available`` is the limit before it."""
        event = Drawdown(
            event_id=self._next_id(),
            customer_id=self.customer.customer_id,
            ts=from_ms(ts_ms),
            device_id=s.device_id,
            ip=s.ip,
            channel=s.channel,
            session_id=s.session_id,
            product=product,
            loan_id=loan_id,
            amount=amount,
            available_limit_before=available,
            term_months=term_months,
        )
        return self._wrap(self.topics.behavior, ts_ms, event)

    def repayment_click(self, s: Session, ts_ms: int, loan_id: str) -> SimRecord:
        """Build an opening of the repayment flow."""
        event = RepaymentClick(
            event_id=self._next_id(),
            customer_id=self.customer.customer_id,
            ts=from_ms(ts_ms),
            device_id=s.device_id,
            ip=s.ip,
            channel=s.channel,
            session_id=s.session_id,
            loan_id=loan_id,
        )
        return self._wrap(self.topics.behavior, ts_ms, event)

    def profile_change(self, s: Session, ts_ms: int, changed: ProfileField, new_value_hash: str) -> SimRecord:
        """Build a change of bound phone / card / address / device (only a hash of the new value)."""
        event = ProfileChange(
            event_id=self._next_id(),
            customer_id=self.customer.customer_id,
            ts=from_ms(ts_ms),
            device_id=s.device_id,
            ip=s.ip,
            channel=s.channel,
            session_id=s.session_id,
            field=changed,
            new_value_hash=new_value_hash,
        )
        return self._wrap(self.topics.behavior, ts_ms, event)

    def contact_upload(self, s: Session, ts_ms: int, count: int, contacts_hash: str) -> SimRecord:
        """Build an address-book upload (count and hash only)."""
        event = ContactUpload(
            event_id=self._next_id(),
            customer_id=self.customer.customer_id,
            ts=from_ms(ts_ms),
            device_id=s.device_id,
            ip=s.ip,
            channel=s.channel,
            session_id=s.session_id,
            contacts_count=count,
            contacts_hash=contacts_hash,
        )
        return self._wrap(self.topics.behavior, ts_ms, event)

    # -- repayment ------------------------------------------------------------------------------------------

    def installment_due(self, ts_ms: int, loan_id: str, no: int, amount: float, due: date) -> SimRecord:
        """Build an installment falling due."""
        event = InstallmentDue(
            event_id=self._next_id(),
            customer_id=self.customer.customer_id,
            ts=from_ms(ts_ms),
            loan_id=loan_id,
            installment_no=no,
            amount_due=amount,
            due_date=due,
        )
        return self._wrap(self.topics.repayment, ts_ms, event)

    def payment(
        self,
        ts_ms: int,
        loan_id: str,
        no: int,
        amount: float,
        kind: Literal["full", "partial"],
        on_time: bool,
    ) -> SimRecord:
        """Build a payment received for an installment."""
        event = Payment(
            event_id=self._next_id(),
            customer_id=self.customer.customer_id,
            ts=from_ms(ts_ms),
            loan_id=loan_id,
            installment_no=no,
            amount=amount,
            kind=kind,
            on_time=on_time,
        )
        return self._wrap(self.topics.repayment, ts_ms, event)

    def missed(self, ts_ms: int, loan_id: str, no: int, amount: float) -> SimRecord:
        """Build a missed installment (due date passed without full payment)."""
        event = InstallmentMissed(
            event_id=self._next_id(),
            customer_id=self.customer.customer_id,
            ts=from_ms(ts_ms),
            loan_id=loan_id,
            installment_no=no,
            amount_due=amount,
        )
        return self._wrap(self.topics.repayment, ts_ms, event)

    def dpd_update(self, ts_ms: int, loan_id: str, dpd: int) -> SimRecord:
        """Build a days-past-due update."""
        event = DpdUpdate(
            event_id=self._next_id(),
            customer_id=self.customer.customer_id,
            ts=from_ms(ts_ms),
            loan_id=loan_id,
            dpd=dpd,
        )
        return self._wrap(self.topics.repayment, ts_ms, event)

    def payoff(self, ts_ms: int, loan_id: str) -> SimRecord:
        """Build a payoff (the loan is fully repaid)."""
        event = Payoff(
            event_id=self._next_id(),
            customer_id=self.customer.customer_id,
            ts=from_ms(ts_ms),
            loan_id=loan_id,
        )
        return self._wrap(self.topics.repayment, ts_ms, event)

    # -- inquiry --------------------------------------------------------------------------------------------

    def inquiry(
        self, ts_ms: int, kind: InstitutionKind, institution_id: str, purpose: InquiryPurpose
    ) -> SimRecord:
        """Build a credit inquiry by another institution."""
        event = CreditInquiry(
            event_id=self._next_id(),
            customer_id=self.customer.customer_id,
            ts=from_ms(ts_ms),
            institution_kind=kind,
            institution_id=institution_id,
            purpose=purpose,
        )
        return self._wrap(self.topics.inquiry, ts_ms, event)
