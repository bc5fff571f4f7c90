"""Generate the committed JSON Schema files (``schemas/json/<name>.schema.json``) from the models.

Usage::

    python -m schemas.jsonschema_gen           # (re)write every file
    python -m schemas.jsonschema_gen --check   # exit 1 and list the files that differ from the models

Input contracts (events producers send, the rule set and allow-list entries operators write) are generated in
pydantic's ``validation`` mode: they describe everything the decoder accepts, e.g. a timestamp as ISO-8601 *or*
epoch milliseconds. The rule set is :class:`detectors.engine.EngineConfig`: each detector owns its
configuration, so this generator, not the contracts, imports it. Output contracts (alerts, limit actions,
profiles, dead letters, and the profile API's responses) are generated in ``serialization`` mode: they describe
exactly what consumers receive, e.g. ``2026-01-05T09:00:00.250Z``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, TypeAdapter

from detectors.engine import EngineConfig
from schemas import topics
from schemas.allowlist import AllowListEntry
from schemas.decode import BEHAVIOR_ADAPTER, INQUIRY_ADAPTER, REPAYMENT_ADAPTER
from schemas.outputs import Alert, DeadLetter, LimitAction, ProfileSnapshot
from schemas.profile_api import ApiError, CustomerView

__all__ = ["JSON_DIR", "MODELS", "SCHEMA_DIALECT", "check", "generate", "main", "render", "write"]

JSON_DIR: Final = Path(__file__).resolve().parent / "json"
SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"

Contract = type[BaseModel] | TypeAdapter[Any]

#: Every contract in or out, by file name stem.
MODELS: Final[dict[str, Contract]] = {
    "behavior_event": BEHAVIOR_ADAPTER,
    "repayment_event": REPAYMENT_ADAPTER,
    "inquiry_event": INQUIRY_ADAPTER,
    "rule_set": EngineConfig,
    "allowlist_entry": AllowListEntry,
    "alert": Alert,
    "limit_action": LimitAction,
    "profile_snapshot": ProfileSnapshot,
    "dead_letter": DeadLetter,
    "customer_view": CustomerView,
    "api_error": ApiError,
}

_OUTPUTS: Final = frozenset(
    {"alert", "limit_action", "profile_snapshot", "dead_letter", "customer_view", "api_error"}
)
_TITLES: Final = {
    "behavior_event": ("BehaviorEvent", f"Any event of topic {topics.BEHAVIOR}, selected by event_type."),
    "repayment_event": ("RepaymentEvent", f"Any event of topic {topics.REPAYMENT}, selected by event_type."),
    "inquiry_event": ("InquiryEvent", f"Any event of topic {topics.INQUIRY}, selected by event_type."),
}


def _mode(name: str) -> Literal["validation", "serialization"]:
    return "serialization" if name in _OUTPUTS else "validation"


def _schema(name: str, contract: Contract) -> dict[str, Any]:
    mode = _mode(name)
    if isinstance(contract, TypeAdapter):
        body = contract.json_schema(mode=mode)
    else:
        body = contract.model_json_schema(mode=mode)
    if name in _TITLES:
        body["title"], body["description"] = _TITLES[name]
    return {"$schema": SCHEMA_DIALECT, **body}


def generate() -> dict[str, dict[str, Any]]:
    """Return the JSON Schema of every contract in :data:`MODELS`, by name."""
    return {name: _schema(name, contract) for name, contract in MODELS.items()}


def render(schema: dict[str, Any]) -> str:
    """Return the committed text of a schema: sorted keys, two-space indent, trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write(directory: Path = JSON_DIR) -> list[Path]:
    """(Re)write every schema file into ``directory``; returns the files that changed."""
    directory.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, schema in generate().items():
        path = directory / f"{name}.schema.json"
        text = render(schema)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


def check(directory: Path = JSON_DIR) -> list[str]:
    """List the problems of the committed files: missing, different from the models, or stale."""
    problems = []
    expected = {f"{name}.schema.json": render(schema) for name, schema in generate().items()}
    for file_name, text in expected.items():
        path = directory / file_name
        if not path.exists():
            problems.append(f"{path}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: differs from the models")
    for path in sorted(directory.glob("*.schema.json")):
        if path.name not in expected:
            problems.append(f"{path}: no model generates it (stale)")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m schemas.jsonschema_gen", description=(__doc__ or "").split("\n", 1)[0]
    )
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when files drifted")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("run `python -m schemas.jsonschema_gen` and commit schemas/json/", file=sys.stderr)
            return 1
        print(f"{len(MODELS)} schema files up to date")
        return 0
    changed = write()
    for path in changed:
        print(f"wrote {path}")
    print(f"{len(MODELS)} schema files, {len(changed)} changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
