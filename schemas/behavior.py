"""What borrowers do in the app: topic ``loan.behavior.v1``, keyed by ``customer_id``.

Every event carries the :class:`BehaviorBase` fields (device, IP, channel, optional product and session) and
an ``event_type`` that selects its model in the :data:`BehaviorEvent` tagged union.

Example:
    >>> from pydantic import TypeAdapter
    >>> raw = (
    ...     b'{"event_type":"login","event_id":"e1","customer_id":"c_000123","ts":1767603600000,'
    ...     b'"device_id":"d_9f2c","ip":"10.0.0.1","channel":"h5","method":"sms","success":true}'
    ... )
    >>> event = TypeAdapter(BehaviorEvent).validate_json(raw)
    >>> type(event).__name__, event.ts.isoformat()
    ('Login', '2026-01-05T09:00:00+00:00')
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal, TypeAlias, cast

from pydantic import Field, StringConstraints, TypeAdapter

from schemas.common import EventBase, Money
from schemas.ids import IpAddress, ProductCode, PseudoId, RefId

__all__ = [
    "BEHAVIOR_ADAPTER",
    "BEHAVIOR_EVENT_TYPES",
    "BehaviorBase",
    "BehaviorEvent",
    "BehaviorEventType",
    "Channel",
    "ContactUpload",
    "Drawdown",
    "LimitQuery",
    "LoanApplication",
    "Login",
    "PageView",
    "ProfileChange",
    "RepaymentClick",
]

Channel = Literal["app_ios", "app_android", "h5", "mini_program", "api_partner"]
"""Where the borrower acted: native apps, mobile web (H5), a mini-program, or a partner's API."""

TermMonths = Annotated[int, Field(ge=1, le=60, description="Loan term in months.")]
SessionId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:\-]{1,128}$")]
PageName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_./:\-]{1,128}$")]


class BehaviorBase(EventBase):
    """Fields every behaviour event carries."""

    device_id: PseudoId
    ip: IpAddress
    channel: Channel
    product: ProductCode | None = Field(default=None, description="Loan product code, if the screen has one.")
    session_id: SessionId | None = None


class Login(BehaviorBase):
    """A login attempt (successful or not)."""

    event_type: Literal["login"] = "login"
    method: Literal["password", "sms", "biometric", "oauth"]
    success: bool


class PageView(BehaviorBase):
    """A screen or page opened in the app."""

    event_type: Literal["page_view"] = "page_view"
    page: PageName


class LoanApplication(BehaviorBase):
    """A loan application submitted (one of the signals of a multi-application burst)."""

    event_type: Literal["loan_application"] = "loan_application"
    product: ProductCode
    application_id: RefId
    amount: Money
    term_months: TermMonths


class LimitQuery(BehaviorBase):
    """The borrower looked up their available credit limit."""

    event_type: Literal["limit_query"] = "limit_query"
    available_limit: Money


class Drawdown(BehaviorBase):
    """Money drawn from a credit line (借款/提现).

    ``available_limit_before`` is the limit left before this drawdown: ``amount`` against it shows how much of
    the line the borrower used (limit exhaustion).
    """

    event_type: Literal["drawdown"] = "drawdown"
    product: ProductCode
    loan_id: RefId
    amount: Money
    available_limit_before: Money
    term_months: TermMonths


class RepaymentClick(BehaviorBase):
    """The borrower opened the repayment flow for a loan (intent, not a payment)."""

    event_type: Literal["repayment_click"] = "repayment_click"
    loan_id: RefId


class ProfileChange(BehaviorBase):
    """A change of bound phone, bank card, address or device; only a hash of the new value travels."""

    event_type: Literal["profile_change"] = "profile_change"
    field: Literal["phone", "bank_card", "address", "device"]
    new_value_hash: PseudoId | None = Field(
        default=None, description="Salted hash of the new phone, card, address or device, not the value."
    )


class ContactUpload(BehaviorBase):
    """The app uploaded the address book (count and a hash of the set, never the contacts)."""

    event_type: Literal["contact_upload"] = "contact_upload"
    contacts_count: int = Field(ge=0, le=1_000_000)
    contacts_hash: PseudoId | None = None


BehaviorEvent: TypeAlias = Annotated[
    Login
    | PageView
    | LoanApplication
    | LimitQuery
    | Drawdown
    | RepaymentClick
    | ProfileChange
    | ContactUpload,
    Field(discriminator="event_type"),
]
"""Any event of ``loan.behavior.v1``, selected by ``event_type``."""

BehaviorEventType = Literal[
    "login",
    "page_view",
    "loan_application",
    "limit_query",
    "drawdown",
    "repayment_click",
    "profile_change",
    "contact_upload",
]
BEHAVIOR_EVENT_TYPES: Final[tuple[BehaviorEventType, ...]] = (
    "login",
    "page_view",
    "loan_application",
    "limit_query",
    "drawdown",
    "repayment_click",
    "profile_change",
    "contact_upload",
)

# cast(): mypy (1.20, incremental runs) can mistype an Annotated union passed as a value.
BEHAVIOR_ADAPTER: Final[TypeAdapter[BehaviorEvent]] = TypeAdapter(cast(Any, BehaviorEvent))
"""Validator of :data:`BehaviorEvent`, built once (``BEHAVIOR_ADAPTER.validate_json(raw_bytes)``)."""
