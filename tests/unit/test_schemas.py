"""Committed examples and JSON Schema files against the models: round trips, independent validation, drift."""

from __future__ import annotations

import copy
import doctest
import importlib
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel, TypeAdapter, ValidationError

from schemas import serde
from schemas.behavior import BEHAVIOR_ADAPTER, BEHAVIOR_EVENT_TYPES
from schemas.inquiry import INQUIRY_ADAPTER, INQUIRY_EVENT_TYPES
from schemas.jsonschema_gen import JSON_DIR, MODELS, check, generate, main, render, write
from schemas.repayment import REPAYMENT_ADAPTER, REPAYMENT_EVENT_TYPES

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "schemas" / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.json"))
_PREFIX_TO_CONTRACT = {
    "behavior": "behavior_event",
    "repayment": "repayment_event",
    "inquiry": "inquiry_event",
}
SCHEMAS = generate()


def contract_name(path: Path) -> str:
    prefix = path.name.split(".")[0]
    return _PREFIX_TO_CONTRACT.get(prefix, prefix)


def validate(name: str, raw: bytes) -> BaseModel:
    contract = MODELS[name]
    if isinstance(contract, TypeAdapter):
        value = contract.validate_json(raw)
    else:
        value = contract.model_validate_json(raw)
    assert isinstance(value, BaseModel)
    return value


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(SCHEMAS[name], format_checker=Draft202012Validator.FORMAT_CHECKER)


def example(file_name: str) -> dict[str, Any]:
    data = json.loads((EXAMPLES_DIR / file_name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_there_is_an_example_for_every_event_type_and_every_output() -> None:
    names = {p.name for p in EXAMPLES}
    expected = (
        {f"behavior.{t}.json" for t in BEHAVIOR_EVENT_TYPES}
        | {f"repayment.{t}.json" for t in REPAYMENT_EVENT_TYPES}
        | {f"inquiry.{t}.json" for t in INQUIRY_EVENT_TYPES}
        | {f"{name}.json" for name in MODELS if not name.endswith("_event")}
    )
    assert names == expected


@pytest.mark.parametrize(
    ("adapter", "types"),
    [
        (BEHAVIOR_ADAPTER, BEHAVIOR_EVENT_TYPES),
        (REPAYMENT_ADAPTER, REPAYMENT_EVENT_TYPES),
        (INQUIRY_ADAPTER, INQUIRY_EVENT_TYPES),
    ],
)
def test_event_type_constants_match_the_unions(adapter: TypeAdapter[Any], types: tuple[str, ...]) -> None:
    mapping = adapter.json_schema()["discriminator"]["mapping"]
    assert sorted(mapping) == sorted(types)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_round_trips_through_bytes(path: Path) -> None:
    raw = path.read_bytes()
    model = validate(contract_name(path), raw)
    again = validate(contract_name(path), serde.dumps(model))
    assert again == model
    # Examples are written in the canonical form: exactly what we emit for them.
    assert serde.loads(serde.dumps(model)) == json.loads(raw)
    if path.name.count(".") == 2:  # <topic>.<event_type>.json
        assert getattr(model, "event_type") == path.name.split(".")[1]  # noqa: B009


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_validates_against_its_json_schema(path: Path) -> None:
    name = contract_name(path)
    Draft202012Validator.check_schema(SCHEMAS[name])
    errors = [e.message for e in validator(name).iter_errors(json.loads(path.read_bytes()))]
    assert errors == []


def _set(data: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(data)
    changed[key] = value
    return changed


BAD_DOCUMENTS = [
    ("behavior_event", _set(example("behavior.login.json"), "nickname", "x"), "extra field"),
    ("behavior_event", _set(example("behavior.login.json"), "ts", "2026-01-05T09:00:00"), "naive time"),
    ("behavior_event", _set(example("behavior.login.json"), "event_type", "logout"), "unknown type"),
    ("behavior_event", _set(example("behavior.login.json"), "customer_id", "13800138000"), "raw phone"),
    ("behavior_event", _set(example("behavior.loan_application.json"), "amount", -1), "negative amount"),
    ("behavior_event", _set(example("behavior.loan_application.json"), "term_months", 61), "term too long"),
    ("behavior_event", _set(example("behavior.login.json"), "channel", "wechat"), "unknown channel"),
    ("repayment_event", _set(example("repayment.payment.json"), "kind", "most"), "unknown kind"),
    (
        "repayment_event",
        _set(example("repayment.installment_due.json"), "installment_no", 0),
        "installment 0",
    ),
    ("inquiry_event", _set(example("inquiry.credit_inquiry.json"), "institution_kind", "p2p"), "kind"),
    ("alert", _set(example("alert.json"), "score", 1.5), "score above 1"),
    ("alert", _set(example("alert.json"), "reasons", []), "no reasons"),
    ("limit_action", _set(example("limit_action.json"), "grade", "F"), "unknown grade"),
    ("dead_letter", _set(example("dead_letter.json"), "error_kind", "oops"), "unknown error kind"),
    ("rule_set", {"burst": {"window_minutes": 0}}, "zero window"),
]


@pytest.mark.parametrize(("name", "document", "what"), BAD_DOCUMENTS, ids=[b[2] for b in BAD_DOCUMENTS])
def test_models_and_json_schemas_both_refuse(name: str, document: dict[str, Any], what: str) -> None:
    with pytest.raises(ValidationError):
        validate(name, json.dumps(document).encode())
    assert list(validator(name).iter_errors(document)), f"JSON Schema accepted {what}"


def test_input_schemas_accept_epoch_ms_and_output_schemas_do_not() -> None:
    login = _set(example("behavior.login.json"), "ts", 1767603600120)
    assert list(validator("behavior_event").iter_errors(login)) == []
    assert validate("behavior_event", json.dumps(login).encode()) == validate(
        "behavior_event", (EXAMPLES_DIR / "behavior.login.json").read_bytes()
    )
    # Outputs are described as emitted (always the ISO string); the model itself still reads epoch ms.
    alert = _set(example("alert.json"), "first_seen", 1767603672005)
    assert list(validator("alert").iter_errors(alert))
    assert validate("alert", json.dumps(alert).encode()) == validate(
        "alert", (EXAMPLES_DIR / "alert.json").read_bytes()
    )


def test_committed_json_schemas_match_the_models() -> None:
    for name, schema in SCHEMAS.items():
        path = JSON_DIR / f"{name}.schema.json"
        assert path.exists(), f"{path} missing: run `python -m schemas.jsonschema_gen`"
        fix = "run `python -m schemas.jsonschema_gen`, commit schemas/json/"
        drifted = f"{path.name} drifted from the models: {fix}"
        assert path.read_text(encoding="utf-8") == render(schema), drifted
    assert check() == []


def test_check_reports_drifted_missing_and_stale_files(tmp_path: Path) -> None:
    assert len(write(tmp_path)) == len(MODELS)
    assert write(tmp_path) == []  # idempotent
    assert check(tmp_path) == []
    alert = tmp_path / "alert.schema.json"
    alert.write_text(
        alert.read_text(encoding="utf-8").replace('"maximum": 1', '"maximum": 2'), encoding="utf-8"
    )
    (tmp_path / "rule_set.schema.json").unlink()
    (tmp_path / "old_thing.schema.json").write_text("{}\n", encoding="utf-8")
    problems = check(tmp_path)
    assert sorted(problems) == [
        f"{alert}: differs from the models",
        f"{tmp_path / 'old_thing.schema.json'}: no model generates it (stale)",
        f"{tmp_path / 'rule_set.schema.json'}: missing",
    ]


def test_cli_check_passes_on_the_committed_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_schema_files_are_sorted_two_space_json_with_trailing_newline() -> None:
    text = (JSON_DIR / "alert.schema.json").read_text(encoding="utf-8")
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert json.loads(text)["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_output_schemas_describe_the_emitted_time_format() -> None:
    first_seen = SCHEMAS["alert"]["properties"]["first_seen"]
    assert first_seen["type"] == "string"
    assert first_seen["pattern"].endswith(r"\.[0-9]{3}Z$")
    ts = SCHEMAS["behavior_event"]["$defs"]["Login"]["properties"]["ts"]
    assert {branch["type"] for branch in ts["anyOf"]} == {"string", "integer"}


@pytest.mark.parametrize(
    "module",
    ["ids", "common", "behavior", "outputs", "rules", "serde", "decode"],
)
def test_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(f"schemas.{module}"), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
