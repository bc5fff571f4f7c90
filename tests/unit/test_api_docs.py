"""docs/api.md shows answers that the contract accepts: the same ones as the committed examples."""

from __future__ import annotations

import json
import re
from pathlib import Path

from schemas.profile_api import ApiError, CustomerView

ROOT = Path(__file__).resolve().parents[2]


def json_blocks() -> list[object]:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, flags=re.S)]


def test_the_documented_answers_are_the_examples_and_valid() -> None:
    view, error = json_blocks()
    CustomerView.model_validate(view)
    ApiError.model_validate(error)
    examples = ROOT / "schemas" / "examples"
    assert view == json.loads((examples / "customer_view.json").read_text(encoding="utf-8"))
    assert error == json.loads((examples / "api_error.json").read_text(encoding="utf-8"))


def test_every_field_of_the_view_is_documented() -> None:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    missing = [name for name in CustomerView.model_fields if name != "schema_version" and f"`{name}`" not in text]
    assert not missing
