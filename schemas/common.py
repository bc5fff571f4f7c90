"""Building blocks of every contract: the frozen base model, event time, money and the common event header.

Time on the wire
    Every timestamp is an :data:`EventTime`: a UTC ``datetime`` with millisecond precision. Producers may send
    an ISO-8601 string that carries a timezone (``2026-01-05T17:00:00.250+08:00``) or an integer of epoch
    milliseconds (``1767603600250``). Naive timestamps are refused, other offsets are converted to UTC, and
    sub-millisecond digits are truncated. We always emit the fixed-width form ``2026-01-05T09:00:00.250Z``
    (sortable as text, one spelling per instant); the JSON Schema of output contracts says exactly that.
    Times must lie in [2000-01-01, 2100-01-01): this catches epoch *seconds* sent as milliseconds and keeps
    every value inside the ClickHouse DateTime / DateTime64 ranges.

Money
    :data:`Money` is a float in yuan (元) with at most two decimals (cents), non-negative and finite. A float
    keeps decoding fast; two decimals are checked so that a producer's rounding bug is refused, not stored.

Example:
    >>> from pydantic import TypeAdapter
    >>> ta = TypeAdapter(EventTime)
    >>> ta.validate_python(1767603600250) == ta.validate_python("2026-01-05T17:00:00.250999+08:00")
    True
    >>> ta.dump_json(ta.validate_python(1767603600250))
    b'"2026-01-05T09:00:00.250Z"'
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
)
from pydantic_core import PydanticCustomError

from schemas.ids import EventId, PseudoId

__all__ = [
    "EPOCH",
    "MAX_TIME",
    "MIN_TIME",
    "Contract",
    "EventBase",
    "EventTime",
    "Money",
    "SchemaVersion",
    "format_event_time",
    "from_ms",
    "to_ms",
]

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
#: Earliest and (exclusive) latest accepted event time.
MIN_TIME: Final = datetime(2000, 1, 1, tzinfo=UTC)
MAX_TIME: Final = datetime(2100, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)
_MIN_MS: Final = (MIN_TIME - EPOCH) // _MS
_MAX_MS: Final = (MAX_TIME - EPOCH) // _MS
_NUMERIC_STRING = re.compile(r"\s*[+-]?[0-9]+(?:\.[0-9]*)?\s*")


def to_ms(dt: datetime) -> int:
    """Epoch milliseconds of an aware datetime (exact integer arithmetic, no float rounding).

    >>> to_ms(datetime(2026, 1, 5, 9, 0, 0, 250999, tzinfo=UTC))
    1767603600250
    """
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("to_ms needs an aware datetime; got a naive one")
    return (dt - EPOCH) // _MS


def from_ms(ms: int) -> datetime:
    """Return the UTC datetime of ``ms`` epoch milliseconds (inverse of :func:`to_ms`)."""
    return EPOCH + timedelta(milliseconds=ms)


def format_event_time(dt: datetime) -> str:
    """Return the wire form of an aware datetime: UTC, exactly three fractional digits, ``Z`` suffix."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise TypeError("refusing to serialise a naive datetime")
    if dt.tzinfo is not UTC:
        dt = dt.astimezone(UTC)
    return dt.isoformat(timespec="milliseconds")[:-6] + "Z"


def _time_error(name: str, message: str) -> PydanticCustomError:
    return PydanticCustomError("event_time", "{field} " + message, {"field": name})


def _validate_event_time(value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> datetime:
    name = info.field_name or "timestamp"
    if isinstance(value, int) and not isinstance(value, bool):
        if not _MIN_MS <= value < _MAX_MS:
            hint = " (looks like epoch seconds)" if 0 < value < _MIN_MS // 1000 * 100 else ""
            raise _time_error(name, f"must be epoch milliseconds between 2000 and 2100{hint}")
        return from_ms(value)
    if isinstance(value, float):
        raise _time_error(name, "must be an ISO-8601 string or integer epoch milliseconds, not a float")
    if isinstance(value, str):
        if _NUMERIC_STRING.fullmatch(value):
            raise _time_error(name, "must be ISO-8601 if a string; send epoch milliseconds as a JSON integer")
        try:
            dt = datetime.fromisoformat(value)  # C parser; accepts "Z" and every offset form of ISO-8601
        except ValueError:
            raise _time_error(name, "is not a valid ISO-8601 date-time") from None
    else:
        dt = handler(value)
    offset = dt.utcoffset()
    if offset is None:
        raise PydanticCustomError("timezone_required", "{field} must carry a timezone", {"field": name})
    if dt.tzinfo is not UTC:
        dt = dt.astimezone(UTC) if offset else dt.replace(tzinfo=UTC)
    if dt.microsecond % 1000:
        dt = dt.replace(microsecond=dt.microsecond - dt.microsecond % 1000)
    if not MIN_TIME <= dt < MAX_TIME:
        raise _time_error(name, "must lie between 2000-01-01 and 2100-01-01")
    return dt


_TIME_DESCRIPTION: Final = "UTC instant with millisecond precision"

EventTime = Annotated[
    datetime,
    WrapValidator(_validate_event_time),
    PlainSerializer(format_event_time, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "string",
                    "format": "date-time",
                    "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?"
                    r"([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)$",
                },
                {"type": "integer", "minimum": _MIN_MS, "exclusiveMaximum": _MAX_MS},
            ],
            "description": _TIME_DESCRIPTION + ": ISO-8601 with a timezone, or integer epoch milliseconds.",
        },
        mode="validation",
    ),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$",
            "description": _TIME_DESCRIPTION + ", always written as YYYY-MM-DDTHH:MM:SS.mmmZ.",
        },
        mode="serialization",
    ),
]
"""An aware UTC datetime truncated to milliseconds; see the module docstring for the accepted inputs."""


def _check_cents(value: float) -> float:
    scaled = value * 100
    if abs(scaled - round(scaled)) > 1e-6 + 1e-9 * scaled:
        raise PydanticCustomError("money_precision", "amount must have at most two decimals (yuan and cents)")
    return value


Money = Annotated[
    float,
    Field(ge=0, allow_inf_nan=False, description="Amount in yuan (元), at most two decimals, non-negative."),
    AfterValidator(_check_cents),
]
"""A non-negative finite amount in yuan with at most two decimals (cents)."""

SchemaVersion = Literal[1]


class Contract(BaseModel):
    """Base of every contract model: immutable, unknown fields refused, no NaN/inf, inputs kept out of errors.

    ``hide_input_in_errors`` keeps a refused raw phone number (or any other payload value) out of exception
    messages and logs (``exc.errors()`` still has it for code that needs it); the dead-letter record keeps the
    original bytes for whoever is allowed to read them.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        allow_inf_nan=False,
        hide_input_in_errors=True,
        # Output schemas (serialization mode) list every field as required: we always write all of them.
        json_schema_serialization_defaults_required=True,
    )


def _require_event_type(schema: dict[str, Any]) -> None:
    # event_type has a default (so Python callers need not repeat it) but the wire format always carries it.
    required = schema.setdefault("required", [])
    if "event_type" in schema.get("properties", {}) and "event_type" not in required:
        required.insert(0, "event_type")


class EventBase(Contract):
    """Header of every input event: version, type, idempotency id, pseudonymous customer, event time."""

    model_config = ConfigDict(json_schema_extra=_require_event_type)

    schema_version: SchemaVersion = 1
    event_type: str = Field(description="Discriminator: which event this is.")
    event_id: EventId = Field(description="Producer-assigned unique id; consumers dedupe on it.")
    customer_id: PseudoId
    ts: EventTime = Field(description="Event time: when it happened, not when it was sent.")
