"""How borrowers repay: topic ``loan.repayment.v1``, keyed by ``customer_id``.

Events follow an installment's life: it falls due (``installment_due``), is paid in full or in part
(``payment``) or not (``missed``); the servicing system reports days past due (``dpd_update``) and finally the
loan is paid off (``payoff``). Amounts are :data:`~schemas.common.Money` (yuan, two decimals).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Final, Literal, TypeAlias, cast

from pydantic import Field, TypeAdapter

from schemas.common import EventBase, Money
from schemas.ids import RefId

__all__ = [
    "REPAYMENT_ADAPTER",
    "REPAYMENT_EVENT_TYPES",
    "DpdUpdate",
    "InstallmentDue",
    "InstallmentMissed",
    "LoanEventBase",
    "Payment",
    "Payoff",
    "RepaymentEvent",
    "RepaymentEventType",
]

InstallmentNo = Annotated[int, Field(ge=1, le=600, description="1-based installment number within the loan.")]


class LoanEventBase(EventBase):
    """Fields every repayment event carries: the loan it is about."""

    loan_id: RefId


class InstallmentDue(LoanEventBase):
    """An installment fell due (the moment the delinquency model records the features it will learn from)."""

    event_type: Literal["installment_due"] = "installment_due"
    installment_no: InstallmentNo
    amount_due: Money
    due_date: date = Field(description="Calendar due date (ISO YYYY-MM-DD, lender's local calendar).")


class Payment(LoanEventBase):
    """Money received for an installment."""

    event_type: Literal["payment"] = "payment"
    installment_no: InstallmentNo
    amount: Money
    kind: Literal["full", "partial"]
    on_time: bool


class InstallmentMissed(LoanEventBase):
    """An installment's due date passed without full payment."""

    event_type: Literal["missed"] = "missed"
    installment_no: InstallmentNo
    amount_due: Money


class DpdUpdate(LoanEventBase):
    """Days past due of the loan as the servicing system counts them (0 means current / cured)."""

    event_type: Literal["dpd_update"] = "dpd_update"
    dpd: int = Field(ge=0, le=100_000)


class Payoff(LoanEventBase):
    """The loan is fully repaid and closed."""

    event_type: Literal["payoff"] = "payoff"


RepaymentEvent: TypeAlias = Annotated[
    InstallmentDue | Payment | InstallmentMissed | DpdUpdate | Payoff,
    Field(discriminator="event_type"),
]
"""Any event of ``loan.repayment.v1``, selected by ``event_type``."""

RepaymentEventType = Literal["installment_due", "payment", "missed", "dpd_update", "payoff"]
REPAYMENT_EVENT_TYPES: Final[tuple[RepaymentEventType, ...]] = (
    "installment_due",
    "payment",
    "missed",
    "dpd_update",
    "payoff",
)

# cast(): mypy (1.20, incremental runs) can mistype an Annotated union passed as a value.
REPAYMENT_ADAPTER: Final[TypeAdapter[RepaymentEvent]] = TypeAdapter(cast(Any, RepaymentEvent))
"""Validator of :data:`RepaymentEvent`, built once (``REPAYMENT_ADAPTER.validate_json(raw_bytes)``)."""
