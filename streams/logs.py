"""Process-wide logging set-up for the command line (libraries only ever get loggers).

Two formats (``LOANWATCH_LOG_FORMAT``): ``text``, timestamped lines for a terminal, and ``json``, one object per
line for log shippers (``ts``, ``level``, ``logger``, ``message``, the record's ``extra=`` fields, and ``exc``
with the traceback). Both mask secrets on the way out: a pydantic ``SecretStr`` / ``SecretBytes`` value, the
password in a URL's user part, and the value after a password-like key (``password=…``, ``"token": …``).
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, Final, Literal

from pydantic import SecretBytes, SecretStr

from schemas import serde
from schemas.common import format_event_time

__all__ = ["MASK", "JsonFormatter", "MaskingFormatter", "configure_logging", "mask_secrets"]

LogFormat = Literal["text", "json"]

MASK: Final = "***"

TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# scheme://user:password@host -> scheme://user:***@host
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#@\s]*:)[^@/\s]+(?P<tail>@)")
# password=…, sasl.password: …, "token": "…" (the value up to a separator; quotes kept)
_KEY_VALUE = re.compile(
    r"(?P<head>\b[\w.-]*(?:password|passwd|secret|token|api_key|apikey)[\w.-]*[\"']?\s*[=:]\s*[\"']?)"
    r"[^\s\"',;&}]+",
    re.IGNORECASE,
)
_SECRET_KEY = re.compile(r"password|passwd|secret|token|api_?key|credential", re.IGNORECASE)

# Attributes every LogRecord has: anything else on a record came from ``extra=``.
_STANDARD_ATTRIBUTES: Final = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


def mask_secrets(text: str) -> str:
    """``text`` with URL passwords and the values of password-like keys replaced by :data:`MASK`."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}{m['tail']}", text)
    return _KEY_VALUE.sub(lambda m: f"{m['head']}{MASK}", text)


def _json_value(key: str, value: Any) -> Any:
    """An ``extra=`` value as JSON can carry it, with secrets masked."""
    if isinstance(value, SecretStr | SecretBytes) or _SECRET_KEY.search(key):
        return MASK
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, datetime):
        return format_event_time(value) if value.tzinfo is not None else mask_secrets(str(value))
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_value(key, item) for item in value]
    if isinstance(value, dict):
        return {str(k): _json_value(str(k), v) for k, v in value.items()}
    return mask_secrets(str(value))


class MaskingFormatter(logging.Formatter):
    """The standard text formatter, with :func:`mask_secrets` over the whole line (traceback included)."""

    def format(self, record: logging.LogRecord) -> str:
        """Format as usual, then mask."""
        return mask_secrets(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts (UTC, ms), level, logger, message, extra fields, exc; secrets masked."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        out: dict[str, Any] = {
            "ts": format_event_time(datetime.fromtimestamp(record.created, UTC)),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_secrets(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES and key not in out:
                out[key] = _json_value(key, value)
        if record.exc_info:
            out["exc"] = mask_secrets(self.formatException(record.exc_info))
        if record.stack_info:
            out["stack"] = mask_secrets(self.formatStack(record.stack_info))
        return serde.dumps(out).decode("utf-8")


def configure_logging(level: str, log_format: LogFormat = "text") -> None:
    """Log to stderr in ``log_format``; Kafka client chatter is kept at WARNING unless DEBUG is asked for."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else MaskingFormatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    if level != "DEBUG":
        for noisy in ("aiokafka", "faust", "mode", "kafka"):
            logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
