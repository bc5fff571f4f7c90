"""JSON and text log formats: one object per line with the agreed keys, extra fields kept, secrets never shown."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from schemas import serde
from streams.logs import MASK, JsonFormatter, MaskingFormatter, configure_logging, mask_secrets
from streams.settings import Settings

PASSWORD = "s3cr3t-Pa55"  # noqa: S105 — the value the tests must never see in a log line


def record(message: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise RuntimeError(f"connect to clickhouse://writer:{PASSWORD}@ch1:9000 failed")
        except RuntimeError:
            exc_info = sys.exc_info()
    rec = logging.LogRecord("loanwatch.writer", logging.WARNING, __file__, 10, message, args, exc_info)
    rec.__dict__.update(extra)
    return rec


def as_json(rec: logging.LogRecord) -> dict[str, object]:
    line = JsonFormatter().format(rec)
    assert "\n" not in line
    parsed = serde.loads(line)
    assert isinstance(parsed, dict)
    return parsed


def test_json_line_has_time_level_logger_message_and_extra_fields() -> None:
    rec = record("inserted %d rows into %s", 12, "events", table="events", rows=12, ok=True, ratio=0.5)
    rec.created = datetime(2026, 1, 5, 9, 30, 1, 250_000, tzinfo=UTC).timestamp()
    out = as_json(rec)
    assert out["ts"] == "2026-01-05T09:30:01.250Z"
    assert out["level"] == "WARNING"
    assert out["logger"] == "loanwatch.writer"
    assert out["message"] == "inserted 12 rows into events"
    assert (out["table"], out["rows"], out["ok"], out["ratio"]) == ("events", 12, True, 0.5)
    # The LogRecord's own bookkeeping is not repeated as fields.
    assert not {"args", "msg", "levelno", "pathname", "created"} & set(out)


def test_json_carries_values_json_has_no_type_for_as_text() -> None:
    out = as_json(record("x", where=("topic", 3), at=datetime(2026, 1, 5, tzinfo=UTC), obj=object()))
    assert out["where"] == ["topic", 3]
    assert out["at"] == "2026-01-05T00:00:00.000Z"
    assert isinstance(out["obj"], str) and out["obj"].startswith("<object")


@pytest.mark.parametrize(
    "rec",
    [
        record("url is %s", f"clickhouse://writer:{PASSWORD}@ch1:9000/loanwatch"),
        record("config %s", {"sasl.password": PASSWORD, "bootstrap.servers": "b:9092"}),
        record("password=%s and more", PASSWORD),
        record("settings", password=PASSWORD),
        record("settings", sasl=SecretStr(PASSWORD)),
        record("settings", nested={"url": f"https://u:{PASSWORD}@host/x", "api_token": PASSWORD}),
        record("boom", exc=True),
    ],
    ids=["url-in-message", "dict-arg", "key-value", "secret-named-extra", "secretstr-extra", "nested", "traceback"],
)
def test_secrets_are_masked_in_both_formats(rec: logging.LogRecord) -> None:
    json_line = JsonFormatter().format(rec)
    text_line = MaskingFormatter("%(levelname)s %(name)s: %(message)s").format(rec)
    for line in (json_line, text_line):
        assert PASSWORD not in line
    assert MASK in json_line


def test_settings_secret_logged_by_its_repr_stays_hidden() -> None:
    settings = Settings(clickhouse_url=f"clickhouse://writer:{PASSWORD}@ch1:9000/loanwatch")
    line = JsonFormatter().format(record("starting with %r", settings))
    assert PASSWORD not in line


def test_mask_keeps_what_is_not_secret() -> None:
    text = "clickhouse://ch1:9000/db user=writer topic=loan.behavior.v1 http://host:8123/ping"
    assert mask_secrets(text) == text
    assert mask_secrets("kafka://u:p@b:9092") == f"kafka://u:{MASK}@b:9092"


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_configure_logging_json_writes_one_object_per_line_to_stderr(
    restore_root_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    configure_logging("INFO", "json")
    logging.getLogger("loanwatch.test").info("hello %s", "world", extra={"partition": 3})
    logging.getLogger("loanwatch.test").debug("not at INFO")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    out = serde.loads(lines[0])
    assert (out["message"], out["partition"], out["level"]) == ("hello world", 3, "INFO")


def test_configure_logging_text_is_one_plain_line(restore_root_logging: None, monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    configure_logging("INFO", "text")
    logging.getLogger("loanwatch.test").warning("url %s", f"clickhouse://w:{PASSWORD}@h:9000")
    line = stream.getvalue().strip()
    assert line.endswith(f"WARNING loanwatch.test: url clickhouse://w:{MASK}@h:9000")
