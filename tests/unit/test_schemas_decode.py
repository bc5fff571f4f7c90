"""Decoding raw Kafka values, and the dead-letter kind and reason for each way a message can be bad."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from schemas import serde
from schemas.behavior import LoanApplication, Login
from schemas.decode import (
    MAX_EVENT_BYTES,
    EventTooLarge,
    classify_error,
    decode_behavior,
    decode_inquiry,
    decode_repayment,
)
from schemas.inquiry import CreditInquiry
from schemas.outputs import MAX_REASON_CHARS
from schemas.repayment import Payment

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "schemas" / "examples"
LOGIN: dict[str, Any] = json.loads((EXAMPLES_DIR / "behavior.login.json").read_bytes())


def failure(raw: bytes, decode: Callable[[bytes], object] = decode_behavior) -> tuple[str, str]:
    with pytest.raises(ValueError) as exc:  # ValidationError and EventTooLarge are both ValueErrors
        decode(raw)
    return classify_error(raw, exc.value)


def with_(**changes: Any) -> bytes:
    return json.dumps({**LOGIN, **changes}).encode()


def test_each_topic_decodes_its_examples_to_the_right_model() -> None:
    assert isinstance(decode_behavior((EXAMPLES_DIR / "behavior.login.json").read_bytes()), Login)
    application = decode_behavior((EXAMPLES_DIR / "behavior.loan_application.json").read_bytes())
    assert isinstance(application, LoanApplication) and application.product == "cash_fast"
    assert isinstance(decode_repayment((EXAMPLES_DIR / "repayment.payment.json").read_bytes()), Payment)
    assert isinstance(
        decode_inquiry((EXAMPLES_DIR / "inquiry.credit_inquiry.json").read_bytes()), CreditInquiry
    )


def test_an_event_of_another_topic_is_an_unknown_event_type() -> None:
    kind, reason = failure((EXAMPLES_DIR / "repayment.payment.json").read_bytes())
    assert kind == "unknown_event_type"
    assert reason.startswith("unknown_event_type: 'payment' is not one of login, page_view, loan_application")


def test_truncated_json_is_not_json() -> None:
    raw = with_()[:-7]
    kind, reason = failure(raw)
    assert kind == "not_json"
    assert reason.startswith("not_json: EOF while parsing") and "line 1 column" in reason


@pytest.mark.parametrize(
    "raw", [b"\xff\xfe{}", b'{"event_type":"login","event_id":"e\xc3\x28"}', b"\xe4\xb8"]
)
def test_invalid_utf8_is_its_own_kind(raw: bytes) -> None:
    kind, reason = failure(raw)
    assert kind == "invalid_utf8"
    assert reason.startswith("invalid_utf8: 'utf-8' codec can't decode byte")


def test_wrong_types_are_validation_errors_with_locations() -> None:
    kind, reason = failure(with_(success="maybe", ip=5))
    assert kind == "validation"
    assert reason == (
        "validation: login.ip: Input should be a valid string; "
        "login.success: Input should be a valid boolean, unable to interpret input"
    )


def test_unknown_event_type_lists_the_known_ones() -> None:
    kind, reason = failure(with_(event_type="foo"))
    assert (kind, reason) == (
        "unknown_event_type",
        "unknown_event_type: 'foo' is not one of login, page_view, loan_application, limit_query, drawdown, "
        "repayment_click, profile_change, contact_upload",
    )
    kind, reason = failure(with_(event_type="foo"), decode_inquiry)
    assert reason == "unknown_event_type: 'foo' is not one of credit_inquiry"


def test_missing_event_type_is_a_validation_error() -> None:
    event = {k: v for k, v in LOGIN.items() if k != "event_type"}
    assert failure(json.dumps(event).encode()) == (
        "validation",
        "validation: event_type: Field required (no event_type to select the event model)",
    )


@pytest.mark.parametrize(
    ("raw", "what"),
    [(b"[1, 2]", "an array"), (b'"login"', "a string"), (b"42", "a number"), (b"null", "null")],
)
def test_json_that_is_not_an_object_is_a_validation_error(raw: bytes, what: str) -> None:
    assert failure(raw) == (
        "validation",
        f"validation: (top level): an event must be a JSON object, got {what}",
    )


def test_too_large_payload_is_refused_without_parsing() -> None:
    raw = b"{" + b" " * MAX_EVENT_BYTES + b"}"  # would be valid JSON: the size alone refuses it
    with pytest.raises(EventTooLarge) as exc:
        decode_repayment(raw)
    assert exc.value.size == MAX_EVENT_BYTES + 2
    assert classify_error(raw, exc.value) == (
        "too_large",
        f"too_large: {MAX_EVENT_BYTES + 2} bytes, over the limit of {MAX_EVENT_BYTES} bytes",
    )


def test_payload_at_the_limit_is_still_parsed() -> None:
    raw = with_()
    padded = raw[:-1] + b" " * (MAX_EVENT_BYTES - len(raw)) + b"}"
    assert len(padded) == MAX_EVENT_BYTES
    assert isinstance(decode_behavior(padded), Login)


def test_refused_raw_phone_number_is_not_repeated_in_the_reason() -> None:
    kind, reason = failure(with_(customer_id="13800138000"))
    assert kind == "validation"
    assert reason == (
        "validation: login.customer_id: identifier fields must be pseudonymous: "
        "value looks like a raw mobile phone number"
    )
    assert "13800138000" not in reason


def test_reason_is_cut_to_the_dead_letter_limit() -> None:
    kind, reason = failure(with_(**{f"unexpected_field_{i:03d}": i for i in range(200)}))
    assert kind == "validation"
    assert len(reason) == MAX_REASON_CHARS and reason.endswith("…")
    assert reason.startswith("validation: login.unexpected_field_000: Extra inputs are not permitted; ")


def test_other_exceptions_are_processing_errors() -> None:
    assert classify_error(with_(), KeyError("burst-state")) == (
        "processing",
        "processing: KeyError: 'burst-state'",
    )


def test_errors_from_serde_loads_are_classified_too() -> None:
    for raw, kind in [(b'{"a": ', "not_json"), (b'{"a": "\xff"}', "invalid_utf8")]:
        with pytest.raises(serde.JSONDecodeError) as exc:
            serde.loads(raw)
        assert classify_error(raw, exc.value)[0] == kind
