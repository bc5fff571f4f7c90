"""What the console accepts from a request, checked against the contracts' id patterns, and SQL literals.

Neither ClickHouse backend binds query parameters (clickhouse-driver would, chdb cannot), so every value that
reaches SQL is first checked against the pattern its contract gives it, then written as a quoted literal by
:func:`sql_string`, which escapes the only two characters that end or alter a ClickHouse string literal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from schemas.clickhouse.analytics import quote_string
from schemas.ids import ID_PATTERN
from schemas.outputs import TIERS, Tier

__all__ = ["MAX_FEED_ROWS", "FeedFilter", "InvalidParameter", "customer_id_or_error", "sql_string"]

_CUSTOMER: Final = re.compile(ID_PATTERN)
_RULE: Final = re.compile(r"^[a-z][a-z0-9_]{0,63}$")  # schemas.ids.RuleId
_PRODUCT: Final = re.compile(r"^[A-Za-z0-9_\-]{1,32}$")  # schemas.ids.ProductCode
MAX_FEED_ROWS: Final = 500
_DEFAULT_FEED_ROWS: Final = 100


class InvalidParameter(ValueError):
    """A request parameter that does not match its contract; the message names it and says what is allowed."""


def sql_string(value: str) -> str:
    r"""``value`` as a ClickHouse string literal: backslash and quote escaped, control characters refused.

    >>> sql_string("it's")
    "'it\\'s'"
    """
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise InvalidParameter("control characters are not allowed in a query value")
    return quote_string(value)


def customer_id_or_error(value: str) -> str:
    """``value`` if it is a customer id as the contracts allow (``[A-Za-z0-9_.:-]{1,128}``)."""
    if not _CUSTOMER.fullmatch(value):
        raise InvalidParameter("customer id: 1 to 128 of letters, digits and _ . : -")
    return value


@dataclass(frozen=True)
class FeedFilter:
    """The feed's filters: tier, rule and product (None: any), and how many alerts to list."""

    tier: Tier | None = None
    rule: str | None = None
    product: str | None = None
    limit: int = _DEFAULT_FEED_ROWS

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> FeedFilter:
        """Read ``tier``, ``rule``, ``product`` and ``limit`` from a query string; empty values mean "any"."""
        tier = query.get("tier") or None
        if tier is not None and tier not in TIERS:
            raise InvalidParameter(f"tier: one of {', '.join(TIERS)}")
        rule = query.get("rule") or None
        if rule is not None and not _RULE.fullmatch(rule):
            raise InvalidParameter("rule: a rule id in snake case, e.g. multi_application_burst")
        product = query.get("product") or None
        if product is not None and not _PRODUCT.fullmatch(product):
            raise InvalidParameter("product: 1 to 32 of letters, digits, _ and -")
        raw_limit = query.get("limit") or str(_DEFAULT_FEED_ROWS)
        if not raw_limit.isdecimal() or not 1 <= int(raw_limit) <= MAX_FEED_ROWS:
            raise InvalidParameter(f"limit: a whole number from 1 to {MAX_FEED_ROWS}")
        return cls(tier=tier, rule=rule, product=product, limit=int(raw_limit))

    def as_query(self) -> dict[str, str]:
        """The filters that are set, as query-string parameters (the page links and polls with them)."""
        params = {"tier": self.tier, "rule": self.rule, "product": self.product}
        return {k: v for k, v in params.items() if v is not None}
