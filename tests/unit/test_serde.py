"""The one JSON module: models and plain data to bytes and back, one time format, orjson nowhere else."""

from __future__ import annotations

import ast
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from schemas import serde
from schemas.behavior import Login
from schemas.decode import decode_behavior
from schemas.outputs import Alert, Reason, alert_id_for

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def login() -> Login:
    return Login(
        event_id="e1",
        customer_id="c_1",
        ts=T0 + timedelta(milliseconds=5),
        device_id="d_1",
        ip="10.0.0.1",
        channel="h5",
        method="sms",
        success=True,
    )


def alert() -> Alert:
    return Alert(
        alert_id=alert_id_for("c_1", "multi_application_burst", "warning", T0),
        customer_id="c_1",
        rule_id="multi_application_burst",
        rule_version=2,
        tier="warning",
        score=1.0,
        reasons=[Reason(code="c", message="8 loan applications (≥8 is 预警)", feature="f", value=8, threshold=8)],
        evidence_event_ids=["e1"],
        first_seen=T0,
        last_seen=T0,
    )


@pytest.mark.parametrize("model", [login(), alert()], ids=["event", "alert"])
def test_model_fast_path_equals_orjson_of_the_json_dump(model: Login | Alert) -> None:
    # dumps() uses pydantic's compiled serializer; it must write exactly what the orjson route would.
    assert serde.dumps(model) == orjson.dumps(model.model_dump(mode="json"))


def test_model_bytes_decode_back_to_an_equal_model() -> None:
    event = login()
    raw = serde.dumps(event)
    assert decode_behavior(raw) == event
    assert json.loads(raw)["ts"] == "2026-01-05T09:00:00.005Z"


def test_non_ascii_is_written_as_utf8_not_escaped() -> None:
    raw = serde.dumps(alert())
    assert "预警".encode() in raw
    assert Alert.model_validate_json(raw).tier_label == "预警"


def test_plain_data_with_datetimes_and_nested_models() -> None:
    shanghai = timezone(timedelta(hours=8))
    data = {"at": T0.astimezone(shanghai), "n": 1, "events": [login()], 7: "seven", "tags": {"b", "a"}}
    out = serde.loads(serde.dumps(data))
    assert out["at"] == "2026-01-05T09:00:00.000Z"  # the contracts' format, converted to UTC
    assert out["events"][0]["ts"] == "2026-01-05T09:00:00.005Z"
    assert out["7"] == "seven"
    assert out["tags"] == ["a", "b"]


def test_naive_datetimes_and_unknown_objects_are_refused() -> None:
    with pytest.raises(TypeError):
        serde.dumps({"at": datetime(2026, 1, 5, 9, 0)})  # noqa: DTZ001 — the point of the test
    with pytest.raises(TypeError):
        serde.dumps({"x": object()})


def test_loads_accepts_bytes_memoryview_and_str() -> None:
    assert serde.loads(b'{"a": [1, 2.5, null]}') == {"a": [1, 2.5, None]}
    assert serde.loads(memoryview(b"[true]")) == [True]
    assert serde.loads('"文"') == "文"


def test_loads_raises_a_value_error_on_bad_json() -> None:
    with pytest.raises(serde.JSONDecodeError):
        serde.loads(b'{"a": ')
    assert issubclass(serde.JSONDecodeError, ValueError)


def test_output_is_compact() -> None:
    assert serde.dumps({"a": 1, "b": [1, 2]}) == b'{"a":1,"b":[1,2]}'


def _imports_orjson(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(alias.name.split(".")[0] == "orjson" for alias in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "orjson":
            return True
    return False


def test_orjson_is_imported_only_by_serde() -> None:
    sources = sorted(
        p for package in ("schemas", "detectors", "streams", "bench") for p in (ROOT / package).rglob("*.py")
    )
    assert (ROOT / "schemas" / "serde.py") in sources
    assert [p.relative_to(ROOT).as_posix() for p in sources if _imports_orjson(p)] == ["schemas/serde.py"]
