"""Exceptions of the contracts package.

Bad *data* surfaces as pydantic's ``ValidationError`` (a ``ValueError``) or as one of the classes below, which
all derive from :class:`SchemaError`::

    Exception
    └── SchemaError
        ├── EventTooLarge (also a ValueError)   payload over MAX_EVENT_BYTES, refused without parsing
        └── NoValue (also a ValueError)         a record without a value (a tombstone), refused
"""

from __future__ import annotations

__all__ = ["EventTooLarge", "NoValue", "SchemaError"]


class SchemaError(Exception):
    """Root of the exceptions raised by :mod:`schemas`."""


class EventTooLarge(SchemaError, ValueError):
    """A message value is larger than the decoder accepts."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"event of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit


class NoValue(SchemaError, ValueError):
    """A message has no value at all (a tombstone: a key and a null value), so there is no event to decode."""

    def __init__(self) -> None:
        super().__init__("the message has no value (a tombstone)")
