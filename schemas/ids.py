"""Identifier types shared by every contract.

People and devices only ever appear under pseudonymous identifiers (``PseudoId``): an internal customer
number such as ``c_000123``, a device id, or a salted hash of a phone number or bank card. A value that looks
like a raw mainland-China mobile number or resident ID card number is refused outright, so a producer that
forgets to hash cannot leak personal data into the pipeline (DESIGN "Contracts").

Example:
    >>> from pydantic import TypeAdapter
    >>> TypeAdapter(PseudoId).validate_python("c_000123")
    'c_000123'
    >>> try:
    ...     TypeAdapter(PseudoId).validate_python("+86 138-0013-8000")
    ... except ValueError as exc:
    ...     print(exc.errors()[0]["msg"])
    identifier fields must be pseudonymous: value looks like a raw mobile phone number
    >>> TypeAdapter(IpAddress).validate_python("2001:DB8:0:0::1")
    '2001:db8::1'
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Final

from pydantic import BeforeValidator, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError

__all__ = [
    "ID_PATTERN",
    "AlertId",
    "EventId",
    "IpAddress",
    "ProductCode",
    "PseudoId",
    "RefId",
    "RuleId",
    "looks_like_personal_data",
    "refuse_personal_data",
]

#: Characters allowed in pseudonymous identifiers: letters, digits and ``_ . : -``, 1 to 128 of them.
ID_PATTERN: Final = r"^[A-Za-z0-9_.:\-]{1,128}$"
_VISIBLE_ASCII: Final = r"^[!-~]{1,128}$"

_PHONE = re.compile(r"(?:\+?86|0086)?1[3-9][0-9]{9}")
_MONTH_DAY: Final = r"(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
# region (6 digits) + birth date + sequence (3) [+ check character]; 18-char since 1999, 15-char before.
_ID_18 = re.compile(r"[1-9][0-9]{5}(?:18|19|20)[0-9]{2}" + _MONTH_DAY + r"[0-9]{3}[0-9Xx]")
_ID_15 = re.compile(r"[1-9][0-9]{5}[0-9]{2}" + _MONTH_DAY + r"[0-9]{3}")
_ID_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS: Final = "10X98765432"
_SEPARATORS = re.compile(r"[\s_.:()\-]+")
# Cheap pre-filter: a phone or ID number needs at least 11 digits in a row, allowing separators between them.
_DIGIT_RUN = re.compile(r"[0-9](?:[\s_.:()+\-]*[0-9]){10}")
_OCTET: Final = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_IPV4 = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")
# Segment lengths worth a closer look: a phone (11, with 86 / 0086 prefix 13 / 15) or an ID number (15, 18).
_SUSPECT_LENGTHS: Final = frozenset({11, 13, 15, 18})

_REFUSED: Final = "identifier fields must be pseudonymous: value looks like a raw"
_PHONE_MESSAGE: Final = f"{_REFUSED} mobile phone number"
_ID_CARD_MESSAGE: Final = f"{_REFUSED} resident ID card number"


def _is_id_card(value: str) -> bool:
    if len(value) == 18 and _ID_18.fullmatch(value):
        # Raw ID numbers carry a valid ISO 7064 MOD 11-2 check character; requiring it keeps 18-digit internal
        # numbers (snowflake-style ids) that merely resemble the layout from being refused.
        total = sum(int(d) * w for d, w in zip(value, _ID_WEIGHTS, strict=False))
        return _ID_CHECK_CHARS[total % 11] == value[17].upper()
    return len(value) == 15 and _ID_15.fullmatch(value) is not None


def looks_like_personal_data(value: str) -> str | None:
    """Return why ``value`` is refused, or None if it looks pseudonymous.

    Refused: the value, or one of its ``_ . : -`` separated parts, looks like a raw mobile phone number or
    resident ID card number. The message never repeats the value.

    >>> looks_like_personal_data("d_9f2c4e")
    >>> looks_like_personal_data("phone:13800138000")
    'identifier fields must be pseudonymous: value looks like a raw mobile phone number'
    >>> looks_like_personal_data("11010519491231002X")
    'identifier fields must be pseudonymous: value looks like a raw resident ID card number'
    """
    if _DIGIT_RUN.search(value) is None:
        return None
    compact = _SEPARATORS.sub("", value)
    candidates = [compact] if compact[:1].isdigit() or compact[:1] == "+" else []
    if len(compact) != len(value):
        candidates.extend(part for part in _SEPARATORS.split(value) if len(part) in _SUSPECT_LENGTHS)
    for candidate in candidates:
        if _PHONE.fullmatch(candidate):
            return _PHONE_MESSAGE
        if _is_id_card(candidate):
            return _ID_CARD_MESSAGE
    return None


def refuse_personal_data(value: Any) -> Any:
    """``value`` unchanged, or a validation error if it looks like a raw phone or ID-card number."""
    # Runs before the character-set check, so "+86 138 0013 8000" gets the clear message, not a pattern error.
    if isinstance(value, str):
        message = looks_like_personal_data(value)
        if message is not None:
            raise PydanticCustomError("pseudonymous_id", message)
    return value


def _normalise_ip(value: Any) -> Any:
    if not isinstance(value, str) or _CANONICAL_IPV4.fullmatch(value):
        return value
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise PydanticCustomError("ip_address", "value is not a valid IPv4 or IPv6 address") from None


PseudoId = Annotated[
    str,
    BeforeValidator(refuse_personal_data),
    StringConstraints(pattern=ID_PATTERN),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": ID_PATTERN,
            "not": {"pattern": r"^(?:86|0086)?1[3-9][0-9]{9}$"},
            "description": "Pseudonymous id; raw mobile phone and resident ID card numbers are refused.",
        }
    ),
]
"""A pseudonymous id of a person, device, card or phone: 1..128 of ``[A-Za-z0-9_.:-]``, never raw PII."""

EventId = Annotated[str, StringConstraints(pattern=_VISIBLE_ASCII)]
"""A producer-assigned event id (idempotency key): 1..128 visible ASCII characters, e.g. a UUID or ULID."""

RefId = Annotated[str, StringConstraints(pattern=_VISIBLE_ASCII)]
"""A reference to a business object (loan, application): 1..128 visible ASCII characters."""

ProductCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]{1,32}$")]
"""A loan product code: 1..32 of ``[A-Za-z0-9_-]``."""

RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
"""A detector / rule id in snake case, e.g. ``multi_application_burst``."""

AlertId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
"""A deterministic 32-hex-character id (see :func:`schemas.outputs.alert_id_for`)."""

IpAddress = Annotated[
    str,
    BeforeValidator(_normalise_ip),
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": 64,
            "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}],
            "description": "IPv4 or IPv6 address; stored in canonical (compressed, lower-case) form.",
        }
    ),
]
"""An IPv4 or IPv6 address, validated and stored as its canonical string (``2001:db8::1``)."""
