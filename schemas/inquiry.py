"""External credit inquiries: topic ``loan.inquiry.v1``, keyed by ``customer_id``.

Each record is one credit-bureau inquiry made by another institution; many recent inquiries from different
lenders is the multi-lending (多头借贷) signal. :data:`InquiryEvent` is a tagged union of one member today, so
that new inquiry kinds can be added without changing how the topic is decoded.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal, TypeAlias, cast

from pydantic import Field, TypeAdapter

from schemas.common import EventBase
from schemas.ids import PseudoId

__all__ = ["INQUIRY_ADAPTER", "INQUIRY_EVENT_TYPES", "CreditInquiry", "InquiryEvent", "InquiryEventType"]


class CreditInquiry(EventBase):
    """A credit report pulled on the customer by a bank or a non-bank lender."""

    event_type: Literal["credit_inquiry"] = "credit_inquiry"
    institution_kind: Literal["bank", "non_bank"]
    institution_id: PseudoId
    purpose: Literal["loan_application", "credit_card", "post_loan", "other"]


InquiryEvent: TypeAlias = Annotated[CreditInquiry, Field(discriminator="event_type")]
"""Any event of ``loan.inquiry.v1``, selected by ``event_type``."""

InquiryEventType = Literal["credit_inquiry"]
INQUIRY_EVENT_TYPES: Final[tuple[InquiryEventType, ...]] = ("credit_inquiry",)

# cast(): mypy (1.20, incremental runs) can mistype an Annotated union passed as a value.
INQUIRY_ADAPTER: Final[TypeAdapter[InquiryEvent]] = TypeAdapter(cast(Any, InquiryEvent))
"""Validator of :data:`InquiryEvent`, built once (``INQUIRY_ADAPTER.validate_json(raw_bytes)``)."""
