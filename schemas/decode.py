"""Bytes from Kafka to contract models, and why a message could not be decoded.

``decode_*`` parse and validate in one pass (``TypeAdapter.validate_json`` on the raw bytes, built once
here). They raise :class:`EventTooLarge` for payloads over :data:`MAX_EVENT_BYTES` (without parsing them),
:class:`NoValue` for a record without a value (a tombstone) and pydantic's ``ValidationError`` for everything
else; all three are ``ValueError``. :func:`classify_error` turns any such failure into the
:data:`~schemas.outputs.ErrorKind` and the human-readable reason a :class:`~schemas.outputs.DeadLetter`
records.

Example:
    >>> raw = b'{"event_type": "foo"}'
    >>> try:
    ...     decode_behavior(raw)
    ... except ValueError as exc:
    ...     kind, reason = classify_error(raw, exc)
    >>> kind
    'unknown_event_type'
    >>> reason
    "unknown_event_type: 'foo' is not one of login, page_view, loan_application, limit_query, drawdown, \
repayment_click, profile_change, contact_upload"
"""

from __future__ import annotations

import json
from typing import Final

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from schemas.behavior import BEHAVIOR_ADAPTER, BehaviorEvent
from schemas.errors import EventTooLarge, NoValue
from schemas.inquiry import INQUIRY_ADAPTER, InquiryEvent
from schemas.outputs import MAX_REASON_CHARS, ErrorKind, truncate_reason
from schemas.repayment import REPAYMENT_ADAPTER, RepaymentEvent

__all__ = [
    "BEHAVIOR_ADAPTER",
    "INQUIRY_ADAPTER",
    "MAX_EVENT_BYTES",
    "REPAYMENT_ADAPTER",
    "EventTooLarge",
    "NoValue",
    "classify_error",
    "decode_behavior",
    "decode_inquiry",
    "decode_repayment",
]

#: Largest accepted input event, in bytes. Real events are well under 2 KiB; bigger ones are refused unparsed.
MAX_EVENT_BYTES: Final = 64 * 1024


_JSON_TYPES: Final = {
    list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean",
}


#: How much of an unknown ``event_type`` a reason repeats: enough to recognise it, never a payload's worth.
_MAX_TAG_CHARS: Final = 64


def _checked(raw: bytes | None) -> bytes:
    # Kafka hands a tombstone's value over as None: refuse it like any other bad value, never with a TypeError.
    if raw is None:
        raise NoValue
    if len(raw) > MAX_EVENT_BYTES:
        raise EventTooLarge(len(raw), MAX_EVENT_BYTES)
    return raw


def decode_behavior(raw: bytes | None) -> BehaviorEvent:
    """Decode one ``loan.behavior.v1`` message value."""
    return BEHAVIOR_ADAPTER.validate_json(_checked(raw))


def decode_repayment(raw: bytes | None) -> RepaymentEvent:
    """Decode one ``loan.repayment.v1`` message value."""
    return REPAYMENT_ADAPTER.validate_json(_checked(raw))


def decode_inquiry(raw: bytes | None) -> InquiryEvent:
    """Decode one ``loan.inquiry.v1`` message value."""
    return INQUIRY_ADAPTER.validate_json(_checked(raw))


def _location(err: ErrorDetails) -> str:
    return ".".join(str(part) for part in err["loc"]) or "(top level)"


def _validation_reason(exc: ValidationError, raw: bytes) -> tuple[ErrorKind, str]:
    errors = exc.errors(include_url=False, include_input=False)
    for err in errors:
        if err["type"] == "json_invalid":
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as bad:
                return "invalid_utf8", f"invalid_utf8: {bad}"
            detail = str((err.get("ctx") or {}).get("error", err["msg"]))
            return "not_json", f"not_json: {detail}"
        if err["type"] == "union_tag_invalid":
            ctx = err.get("ctx") or {}
            expected = str(ctx.get("expected_tags", "")).replace("'", "")
            tag = truncate_reason(str(ctx.get("tag")), _MAX_TAG_CHARS)
            return "unknown_event_type", f"unknown_event_type: {tag!r} is not one of {expected}"
    parts = []
    for err in errors:
        if err["type"] in ("dict_type", "model_type", "model_attributes_type") and not err["loc"]:
            parts.append(f"(top level): an event must be a JSON object, got {_top_level_kind(raw)}")
        elif err["type"] == "union_tag_not_found":
            parts.append("event_type: Field required (no event_type to select the event model)")
        else:
            parts.append(f"{_location(err)}: {err['msg']}")
    return "validation", "validation: " + "; ".join(parts)


def _top_level_kind(raw: bytes) -> str:
    try:
        value = json.loads(raw)
    except ValueError:
        return "something else"
    return "null" if value is None else _JSON_TYPES.get(type(value), "something else")


def classify_error(raw: bytes, exc: Exception) -> tuple[ErrorKind, str]:
    """Return the dead-letter kind and a human-readable reason for ``exc``, raised while handling ``raw``.

    Decoding failures map to ``too_large``, ``invalid_utf8``, ``not_json`` (a tombstone too),
    ``unknown_event_type`` (repeating at most 64 characters of the unknown type) or
    ``validation`` (every pydantic error as ``location: message``, joined by ``; ``). Any other exception
    (a bug or failure after a successful decode) is ``processing`` with its type and message. The reason never
    contains payload values and is at most :data:`~schemas.outputs.MAX_REASON_CHARS` characters long.
    """
    kind: ErrorKind
    if isinstance(exc, NoValue):
        kind, reason = "not_json", f"not_json: {exc}"
    elif isinstance(exc, EventTooLarge) or len(raw) > MAX_EVENT_BYTES:
        kind, reason = "too_large", f"too_large: {len(raw)} bytes, over the limit of {MAX_EVENT_BYTES} bytes"
    elif isinstance(exc, ValidationError):
        kind, reason = _validation_reason(exc, raw)
    elif isinstance(exc, UnicodeDecodeError):
        kind, reason = "invalid_utf8", f"invalid_utf8: {exc}"
    elif isinstance(exc, json.JSONDecodeError):  # also orjson.JSONDecodeError, from serde.loads
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            kind, reason = "invalid_utf8", f"invalid_utf8: {bad}"
        else:
            kind, reason = "not_json", f"not_json: {exc}"
    else:
        kind, reason = "processing", f"processing: {type(exc).__name__}: {exc}"
    return kind, truncate_reason(reason, MAX_REASON_CHARS)

