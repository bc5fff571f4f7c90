"""JSON bytes in and out: the only module that imports orjson.

- A pydantic model is written by its own compiled serializer (``__pydantic_serializer__.to_json``): it
  applies the contracts' field serializers (timestamps as ``...mmmZ``) and was measured faster than
  ``orjson.dumps(model.model_dump(mode="json"))`` (``tests/unit/test_serde.py`` checks they agree).
- Anything else goes through orjson with :data:`OPTIONS`. Models nested inside plain containers, and aware
  datetimes, are written exactly as the contracts write them; naive datetimes are refused.

Example:
    >>> from datetime import UTC, datetime
    >>> dumps({"n": 1, "at": datetime(2026, 1, 5, 9, 0, tzinfo=UTC)})
    b'{"n":1,"at":"2026-01-05T09:00:00.000Z"}'
    >>> loads(b'{"n":1}')
    {'n': 1}
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import orjson
from pydantic import BaseModel

from schemas.common import format_event_time

__all__ = ["OPTIONS", "JSONDecodeError", "JSONEncodeError", "dumps", "loads"]

#: orjson options used for every non-model value: datetimes go through :func:`_default` (one time format for
#: the whole project), dict keys may be ints/enums (written as strings).
OPTIONS: Final = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS

JSONEncodeError = orjson.JSONEncodeError
"""Raised by :func:`dumps` on a value JSON cannot carry (a subclass of ``TypeError``)."""

JSONDecodeError = orjson.JSONDecodeError
"""Raised by :func:`loads` on malformed JSON (a subclass of ``json.JSONDecodeError`` and ``ValueError``)."""


def _default(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if isinstance(obj, datetime):
        return format_event_time(obj)
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON bytes of a contract model or of plain JSON-able data."""
    if isinstance(obj, BaseModel):
        return obj.__pydantic_serializer__.to_json(obj)
    return orjson.dumps(obj, default=_default, option=OPTIONS)


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse JSON bytes (or text); raises :data:`JSONDecodeError` on malformed input."""
    return orjson.loads(data)
